//! Who may change things. Every request with a method other than `GET`,
//! `HEAD` and `OPTIONS` (today `POST /extract` and `POST /schedule/refresh`,
//! and any added later, since the rule looks at the method, not a list)
//! passes [`guard_mutations`]:
//!
//! - with `auth.admin_token` set, it must carry `Authorization: Bearer
//!   <token>`: none or another scheme is 401 with `WWW-Authenticate`, a wrong
//!   token 403. Tokens are compared as SHA-256 digests in constant time, so
//!   neither their content nor their length shows in the answer's timing;
//! - without a token, only a client on this machine is answered: a loopback
//!   peer that sent no forwarding headers, or, through a proxy listed in
//!   `server.trusted_proxies`, a loopback client named by `X-Forwarded-For`.
//!   A default install behind a reverse proxy is therefore not open.
//!
//! A mutating request sent by a browser for a page of another origin
//! (`Origin` not this service's host) is refused first, token or not: such
//! a `POST` needs no CORS preflight, so this is what stops a foreign page
//! from using a viewer's browser on this machine (cross-site request
//! forgery).
//!
//! The client address comes from [`vouched_client`], the one rule for
//! whom to believe about it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState, Challenge};

/// The `X-Forwarded-For` header (not in `http`'s constants).
const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// The standard forwarding header (RFC 7239).
const FORWARDED: &str = "forwarded";

/// Whether `method` changes nothing (and so needs no admin rights).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The client's address as far as this service can vouch for it: the peer
/// itself when it sent no forwarding headers; through a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy
/// (the leftmost when all are). `None` when it cannot be told: forwarding
/// headers from a peer that is not trusted (anyone can write them), an
/// unreadable `X-Forwarded-For`, or only a `Forwarded` header.
pub fn vouched_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let forwarded = !forwarded_for.is_empty() || headers.contains_key(FORWARDED);
    let is_trusted = |address: &IpAddr| is_trusted_proxy(trusted, address);
    if !is_trusted(&peer) {
        return (!forwarded).then_some(peer);
    }
    if forwarded_for.is_empty() {
        return (!headers.contains_key(FORWARDED)).then_some(peer);
    }
    let mut nearest = None;
    for entry in forwarded_for.iter().rev() {
        let address: IpAddr = entry.parse().ok()?;
        nearest = Some(address);
        if !is_trusted(&address) {
            break;
        }
    }
    nearest
}

/// Whether `address` is one of `server.trusted_proxies`.
fn is_trusted_proxy(trusted: &[IpNet], address: &IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(address))
}

/// The peer's address, which the listener (`http_server`) puts on every
/// request; `None` for a router driven in-process.
fn peer_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The token of an `Authorization: Bearer <token>` header; `None` for any
/// other scheme, an empty token, or a header that is not text.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `given` is `expected`, in time independent of both.
fn token_matches(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// Whether a browser sent this request for a page of another origin. A
/// cross-origin `POST` without custom headers needs no CORS preflight, so
/// without this a page anywhere could make a viewer's browser (on this
/// machine, where no token is needed) trigger runs. Browsers always send
/// `Origin` with a `POST`; scripts send none. An `Origin` whose host and
/// port differ from `Host`, or that cannot be read, counts as foreign.
fn is_cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_authority = origin
        .to_str()
        .ok()
        .and_then(|origin| url::Url::parse(origin).ok())
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        });
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
    match (origin_authority, host) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// The admin rule (see the module docs) for one request.
fn authorize(
    method: &Method,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    admin_token: &str,
    trusted: &[IpNet],
) -> Result<(), ApiError> {
    if is_safe(method) {
        return Ok(());
    }
    if is_cross_origin(headers) {
        return Err(ApiError::Forbidden(
            "a page of another origin may not change things here".to_owned(),
        ));
    }
    if !admin_token.is_empty() {
        return match bearer_token(headers) {
            None => Err(ApiError::Unauthorized {
                message: "this request needs an Authorization: Bearer header with auth.admin_token"
                    .to_owned(),
                challenge: Challenge::Bearer,
            }),
            Some(token) if token_matches(token, admin_token) => Ok(()),
            Some(_) => Err(ApiError::Forbidden(
                "the bearer token is not auth.admin_token".to_owned(),
            )),
        };
    }
    match peer.and_then(|peer| vouched_client(peer, headers, trusted)) {
        Some(client) if client.is_loopback() => Ok(()),
        _ => Err(ApiError::Forbidden(
            "changes are allowed only from this machine without a proxy: set auth.admin_token to allow others"
                .to_owned(),
        )),
    }
}

/// Middleware applying the admin rule to every route.
pub(super) async fn guard_mutations(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Without the peer's address (a router driven in-process), only a
    // token can authorize.
    match authorize(
        request.method(),
        request.headers(),
        peer_address(request.extensions()),
        state.config.auth.admin_token.expose(),
        &state.config.server.trusted_proxies,
    ) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// The address a request's limits count against: the client as
/// [`vouched_client`] tells it, else the peer (forwarding headers nobody
/// vouches for are ignored); `None` for a router driven in-process.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_address(&parts.extensions).map(|peer| {
            vouched_client(peer, &parts.headers, &state.config.server.trusted_proxies).unwrap_or(peer)
        })))
    }
}

/// Middleware: removes the forwarding headers (`Forwarded`,
/// `X-Forwarded-*`) of a request whose peer is not in
/// `server.trusted_proxies`, so nothing after it (the base of playlist
/// URLs, the client address) believes what any client can write. Runs
/// after [`guard_mutations`], which refuses such a request when it would
/// change things.
pub(super) async fn drop_untrusted_forwarding(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let trusted = peer_address(request.extensions())
        .is_some_and(|peer| is_trusted_proxy(&state.config.server.trusted_proxies, &peer));
    if !trusted {
        let headers = request.headers_mut();
        let forwarding: Vec<header::HeaderName> = headers
            .keys()
            .filter(|name| *name == FORWARDED || name.as_str().starts_with("x-forwarded-"))
            .cloned()
            .collect();
        for name in forwarding {
            headers.remove(name);
        }
    }
    next.run(request).await
}

/// Whether the service listens beyond this machine with no admin token, in
/// which case mutating requests are refused from elsewhere (said once at
/// startup, so the refusals are not a surprise).
pub fn mutations_local_only(listen: SocketAddr, admin_token: &str) -> bool {
    admin_token.is_empty() && !listen.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("network")).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let none = headers(&[]);
        let xff = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            vouched_client(ip("198.51.100.1"), &none, &[]),
            Some(ip("198.51.100.1"))
        );
        assert_eq!(
            vouched_client(LOOPBACK, &xff, &[]),
            None,
            "untrusted peer with XFF"
        );
        assert_eq!(
            vouched_client(LOOPBACK, &headers(&[("forwarded", "for=127.0.0.1")]), &[]),
            None
        );
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(vouched_client(LOOPBACK, &xff, &trusted), Some(ip("203.0.113.9")));
        assert_eq!(vouched_client(LOOPBACK, &none, &trusted), Some(LOOPBACK));
        // A client cannot hide behind a forged entry: the nearest untrusted one counts.
        let chain = headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(
            vouched_client(LOOPBACK, &chain, &trusted),
            Some(ip("203.0.113.9"))
        );
        let split = headers(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            vouched_client(LOOPBACK, &split, &trusted),
            Some(ip("203.0.113.9"))
        );
        let local = headers(&[("x-forwarded-for", "::1, 10.0.0.2")]);
        assert_eq!(vouched_client(LOOPBACK, &local, &trusted), Some(ip("::1")));
        for bad in ["unknown", "203.0.113.9:443", ""] {
            let odd = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(vouched_client(LOOPBACK, &odd, &trusted), None, "{bad:?}");
        }
    }

    #[test]
    fn with_a_token_only_the_right_bearer_passes() {
        let post = Method::POST;
        let check = |pairs: &[(&str, &str)]| authorize(&post, &headers(pairs), Some(LOOPBACK), "s3cret", &[]);
        assert!(matches!(check(&[]), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(
            check(&[("authorization", "Basic czNjcmV0")]),
            Err(ApiError::Unauthorized { .. })
        ));
        assert!(matches!(
            check(&[("authorization", "Bearer ")]),
            Err(ApiError::Unauthorized { .. })
        ));
        assert!(matches!(
            check(&[("authorization", "Bearer s3cre")]),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            check(&[("authorization", "Bearer s3cret!")]),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check(&[("authorization", "Bearer s3cret")]).is_ok());
        assert!(check(&[("authorization", "bearer  s3cret ")]).is_ok());
        // Reads need nothing.
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(authorize(&method, &headers(&[]), None, "s3cret", &[]).is_ok());
        }
        // Every other method is a change.
        for method in [Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(authorize(&method, &headers(&[]), Some(LOOPBACK), "s3cret", &[]).is_err());
        }
    }

    #[test]
    fn without_a_token_only_this_machine_may_change_things() {
        let post = Method::POST;
        let none = headers(&[]);
        assert!(authorize(&post, &none, Some(LOOPBACK), "", &[]).is_ok());
        assert!(authorize(&post, &none, Some(ip("::1")), "", &[]).is_ok());
        assert!(authorize(&post, &none, Some(ip("192.168.1.5")), "", &[]).is_err());
        assert!(authorize(&post, &none, None, "", &[]).is_err(), "unknown peer");
        let xff = headers(&[("x-forwarded-for", "127.0.0.1")]);
        assert!(
            authorize(&post, &xff, Some(LOOPBACK), "", &[]).is_err(),
            "came through a proxy"
        );
        let trusted = nets(&["127.0.0.1/32"]);
        assert!(authorize(&post, &xff, Some(LOOPBACK), "", &trusted).is_ok());
        let remote = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert!(authorize(&post, &remote, Some(LOOPBACK), "", &trusted).is_err());
    }

    #[test]
    fn a_foreign_page_may_not_change_things_even_from_this_machine() {
        let post = Method::POST;
        let from = |origin: &str| headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]);
        assert!(authorize(&post, &from("http://127.0.0.1:8080"), Some(LOOPBACK), "", &[]).is_ok());
        for foreign in [
            "https://evil.example",
            "http://127.0.0.1:9999",
            "null",
            "http://localhost:8080",
        ] {
            assert!(
                matches!(
                    authorize(&post, &from(foreign), Some(LOOPBACK), "", &[]),
                    Err(ApiError::Forbidden(_))
                ),
                "{foreign}"
            );
            let with_token = headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", foreign),
                ("authorization", "Bearer t"),
            ]);
            assert!(
                authorize(&post, &with_token, Some(LOOPBACK), "t", &[]).is_err(),
                "{foreign}"
            );
        }
        // Reads stay open to every origin (CORS decides what a page may read).
        assert!(
            authorize(
                &Method::GET,
                &from("https://evil.example"),
                Some(LOOPBACK),
                "",
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn the_startup_warning_is_for_a_non_loopback_listener_without_a_token() {
        let any: SocketAddr = "0.0.0.0:8080".parse().expect("address");
        let local: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        assert!(mutations_local_only(any, ""));
        assert!(!mutations_local_only(any, "token"));
        assert!(!mutations_local_only(local, ""));
    }

    proptest! {
        /// Whatever a client sends, parsing never panics and nothing but the
        /// exact token is accepted.
        #[test]
        fn no_authorization_header_but_the_token_is_accepted(value in "\\PC{0,80}", token in "[!-~]{1,40}") {
            let Ok(value) = HeaderValue::from_str(&value) else { return Ok(()) };
            let mut map = HeaderMap::new();
            map.insert(header::AUTHORIZATION, value);
            let accepted = authorize(&Method::POST, &map, Some(ip("203.0.113.9")), &token, &[]).is_ok();
            prop_assert_eq!(accepted, bearer_token(&map) == Some(token.as_str()));
        }

        /// Forwarding chains of any shape never panic, and a client that is
        /// not loopback is never vouched for as loopback.
        #[test]
        fn forged_forwarding_never_makes_a_remote_client_local(
            entries in proptest::collection::vec("[0-9a-f:., ]{0,20}", 0..5),
        ) {
            let mut map = HeaderMap::new();
            for entry in &entries {
                if let Ok(value) = HeaderValue::from_str(entry) {
                    map.append(X_FORWARDED_FOR, value);
                }
            }
            map.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
            let trusted = nets(&["127.0.0.1/32"]);
            let client = vouched_client(LOOPBACK, &map, &trusted);
            prop_assert!(client.is_none_or(|c| !c.is_loopback()));
        }
    }
}
