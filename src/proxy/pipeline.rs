//! What both proxy pipelines share: the [`Proxy`] (upstream access, signer,
//! per-extractor headers, playlist deadlines), the authorization of a token
//! for an endpoint, the one error type of a proxied request and the
//! [`Answer`] the HTTP layer sends. The pipelines themselves are in
//! [`super::playlist`] and [`super::relay`]; neither knows the web framework.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::kind::Kind;
use super::playlist::TargetDurations;
use super::token::{ParsedToken, Signer};
use super::upstream::{Upstream, UpstreamError};

/// The HLS proxy: everything a `/proxy` or `/relay` request needs.
pub struct Proxy {
    /// Signs rewritten URIs and verifies incoming ones; also what
    /// `f1-stream sign` signs with.
    pub signer: Signer,
    /// Upstream access with the proxy's limits.
    pub(super) upstream: Upstream,
    /// Refuse unsigned or badly signed URLs.
    require_signature: bool,
    /// Request headers per extractor, selected by `src`.
    src_headers: HashMap<String, HeaderMap>,
    /// Deadline of an ordinary playlist fetch.
    pub(super) playlist_timeout: Duration,
    /// Target durations of recently proxied playlists, so a blocking reload
    /// may wait up to 3 × target duration.
    pub(super) target_durations: TargetDurations,
    /// Relays in flight, in total and per client.
    pub relay_limits: super::limits::RelayLimits,
}

/// What a [`Proxy`] is built from.
pub struct ProxyParts {
    /// Upstream access with the proxy's limits.
    pub upstream: Upstream,
    /// The signer of `proxy.signing_key` (or the stored generated key).
    pub signer: Signer,
    /// `proxy.require_signature`.
    pub require_signature: bool,
    /// Request headers per extractor site key.
    pub src_headers: HashMap<String, HeaderMap>,
    /// `proxy.playlist_timeout_secs`.
    pub playlist_timeout: Duration,
    /// `proxy.max_relays` and `proxy.max_relays_per_client`.
    pub relay_limits: super::limits::RelayLimits,
}

impl Proxy {
    /// A proxy that remembers no target durations yet.
    pub fn new(parts: ProxyParts) -> Self {
        Self {
            signer: parts.signer,
            upstream: parts.upstream,
            require_signature: parts.require_signature,
            src_headers: parts.src_headers,
            playlist_timeout: parts.playlist_timeout,
            target_durations: TargetDurations::default(),
            relay_limits: parts.relay_limits,
        }
    }

    /// Checks the token's signature for `kind` (when signatures are
    /// required) and answers the request headers its `src` extractor sends
    /// upstream (none without `src`).
    pub fn authorize(&self, token: &ParsedToken, kind: Kind) -> Result<HeaderMap, ProxyError> {
        if self.require_signature && !token.is_signed_by(&self.signer, kind) {
            return Err(ProxyError::Signature);
        }
        match token.src.as_deref() {
            None => Ok(HeaderMap::new()),
            Some(src) => self
                .src_headers
                .get(src)
                .cloned()
                .ok_or_else(|| ProxyError::UnknownSrc(src.to_owned())),
        }
    }
}

/// Why a proxied request gets no answer from upstream.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The signature is missing or wrong while signatures are required.
    #[error("missing or invalid signature")]
    Signature,
    /// `src` names no configured extractor.
    #[error("src: no extractor {0:?}")]
    UnknownSrc(String),
    /// The upstream request failed or gave nothing to serve.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// A proxied answer, ready for the HTTP layer to send as it is.
#[derive(Debug)]
pub struct Answer<B> {
    /// The status to answer with.
    pub status: StatusCode,
    /// The response headers, content type included.
    pub headers: HeaderMap,
    /// The body: a rewritten playlist, or relayed bytes.
    pub body: B,
    /// Time to the upstream's response head, for the metrics.
    pub upstream_head_time: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::net::Http;
    use reqwest::header::{HeaderValue, REFERER};

    /// A proxy over a real (unused) client; `require_signature` as given,
    /// one extractor `site` sending a Referer.
    fn proxy(require_signature: bool, playlist_timeout: Duration) -> Proxy {
        let http = Http::new(&NetworkConfig::default(), "test").expect("client builds");
        let mut site = HeaderMap::new();
        site.insert(REFERER, HeaderValue::from_static("https://site.example/"));
        Proxy::new(ProxyParts {
            upstream: Upstream::new(http, Duration::from_secs(1), Duration::from_secs(1), 1024),
            signer: Signer::new(b"test key"),
            require_signature,
            src_headers: HashMap::from([("site".to_owned(), site)]),
            playlist_timeout,
            relay_limits: crate::proxy::limits::RelayLimits::new(0, 0),
        })
    }

    fn token(proxy: &Proxy, kind: Kind, src: Option<&str>) -> ParsedToken {
        let path = proxy.signer.path(kind, "https://cdn.example/a.m3u8", src);
        let token = path.split('/').nth(2).expect("path has a token");
        super::super::token::parse_token(token).expect("signed token parses")
    }

    #[test]
    fn a_token_signed_for_its_endpoint_is_authorized_with_its_extractors_headers() {
        let proxy = proxy(true, Duration::from_secs(1));
        let headers = proxy
            .authorize(&token(&proxy, Kind::Proxy, Some("site")), Kind::Proxy)
            .expect("authorized");
        assert_eq!(headers[REFERER], "https://site.example/");
        let none = proxy
            .authorize(&token(&proxy, Kind::Relay, None), Kind::Relay)
            .expect("authorized");
        assert!(none.is_empty());
    }

    #[test]
    fn a_token_signed_for_the_other_endpoint_or_unsigned_is_refused() {
        let proxy = proxy(true, Duration::from_secs(1));
        let relay = token(&proxy, Kind::Relay, None);
        assert!(matches!(
            proxy.authorize(&relay, Kind::Proxy),
            Err(ProxyError::Signature)
        ));
        let unsigned = ParsedToken { sig: None, ..relay };
        assert!(matches!(
            proxy.authorize(&unsigned, Kind::Relay),
            Err(ProxyError::Signature)
        ));
        let lenient = self::proxy(false, Duration::from_secs(1));
        assert!(lenient.authorize(&unsigned, Kind::Relay).is_ok());
    }

    #[test]
    fn an_unknown_src_is_refused_by_name() {
        let proxy = proxy(true, Duration::from_secs(1));
        let err = proxy
            .authorize(&token(&proxy, Kind::Proxy, Some("gone")), Kind::Proxy)
            .expect_err("no such extractor");
        assert_eq!(err.to_string(), "src: no extractor \"gone\"");
    }
}
