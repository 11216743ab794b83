//! The HLS proxy endpoints (README "HLS proxy"): `/proxy` fetches and rewrites a
//! playlist, `/relay` streams segments, keys and init sections. Both take the
//! path form `/<kind>/<token>/<name>` and the query form `?url=&sig=&src=`.
//!
//! Only the HTTP side lives here: extracting the token, raw query, headers
//! and method, handing them to the pipelines of [`crate::proxy`], sending
//! their answer, mapping their errors to statuses, the metrics, and the
//! OpenAPI description of all of it.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{
    self, Content, ContentBuilder, Ref, RefOr, Required, ResponseBuilder, ResponsesBuilder,
};
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::ClientAddress;
use super::openapi::{ErrorBody, TAG_PROXY};
use super::{ApiError, ApiQuery, AppState, public_base};
use crate::proxy::limits::RelayLimit;
use crate::proxy::playlist::PLAYLIST_CONTENT_TYPE;
use crate::proxy::token::{self, Kind, ParsedToken};
use crate::proxy::upstream::UpstreamError;
use crate::proxy::{Answer, ProxyError};

/// Query form of both endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The upstream absolute http(s) URL, base64url (padding optional).
    #[param(value_type = String, required = true, nullable = false, pattern = "^[A-Za-z0-9_-]*={0,2}$",
        max_length = 8192, example = "aHR0cHM6Ly9jZG4uZXhhbXBsZS5uZXQvbGl2ZS9tYXN0ZXIubTN1OA")]
    url: Option<String>,
    /// HMAC-SHA256 of `kind|url|src`, base64url; required unless
    /// `proxy.require_signature = false`.
    #[param(value_type = String, required = false, nullable = false)]
    sig: Option<String>,
    /// Site key of the extractor whose request headers go upstream.
    #[param(value_type = String, required = false, nullable = false, pattern = r"^[a-z0-9_-]{0,64}$")]
    src: Option<String>,
}

/// LL-HLS delivery directives (RFC 8216bis §6.2.5) of a playlist request:
/// passed to the upstream URL, not covered by the signature. Documentation
/// only; the handlers read them from the raw query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documentation only: never constructed")]
struct LlHlsDirectives {
    /// Media sequence number the playlist must contain (blocking reload).
    #[param(rename = "_HLS_msn", required = false, nullable = false, minimum = 0)]
    msn: Option<u64>,
    /// Part index within `_HLS_msn`.
    #[param(rename = "_HLS_part", required = false, nullable = false, minimum = 0)]
    part: Option<u64>,
    /// Playlist delta update: `YES`, or `v2` to also skip date ranges.
    #[param(rename = "_HLS_skip", value_type = String, required = false, nullable = false, pattern = "^(YES|v2)$")]
    skip: Option<String>,
}

/// The `Range` request header of a relay. Documentation only; the handlers
/// forward it from the request headers.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(dead_code, reason = "documentation only: never constructed")]
struct RangeHeader {
    /// Forwarded upstream.
    #[param(rename = "Range", value_type = String, required = false, nullable = false, example = "bytes=0-1023")]
    range: Option<String>,
}

/// Path parameters of `/proxy/{token}/{name}` (documentation only).
struct PlaylistPath;

impl IntoParams for PlaylistPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        token_path_params("master.m3u8")
    }
}

/// Path parameters of `/relay/{token}/{name}` (documentation only).
struct RelayPath;

impl IntoParams for RelayPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        token_path_params("segment100.ts")
    }
}

/// `token` and `name` of a path-form URL; `name_example` fits the endpoint.
fn token_path_params(name_example: &str) -> Vec<Parameter> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    vec![
        ParameterBuilder::new()
            .name("token")
            .parameter_in(ParameterIn::Path)
            .description(Some(
                "`<b64url(url)>.<sig>` or `<b64url(url)>.<sig>.<src>` (see the README's proxy section).",
            ))
            .required(Required::True)
            .schema(Some(string().pattern(Some(
                r"^[A-Za-z0-9_-]*={0,2}(\.[A-Za-z0-9_-]*={0,2}(\.[a-z0-9_-]{0,64})?)?$",
            ))))
            .example(Some(json!(
                "aHR0cHM6Ly9jZG4uZXhhbXBsZS5uZXQvbGl2ZS9tYXN0ZXIubTN1OA.c2lnbmF0dXJl"
            )))
            .build(),
        ParameterBuilder::new()
            .name("name")
            .parameter_in(ParameterIn::Path)
            .description(Some(
                "The upstream file name; cosmetic, not signed (players pick a demuxer by extension).",
            ))
            .required(Required::True)
            .schema(Some(string()))
            .example(Some(json!(name_example)))
            .build(),
    ]
}

/// Responses of both `/proxy` operations (documentation only).
struct PlaylistResponses;

impl IntoResponses for PlaylistResponses {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let playlist = ContentBuilder::new()
            .schema(Some(String::schema()))
            .example(Some(json!(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5000000\n\
                 /proxy/aHR0cHM6Ly9jZG4uZXhhbXBsZS5uZXQvaGlnaC5tM3U4.c2ln/high.m3u8\n"
            )))
            .build();
        ResponsesBuilder::new()
            .response(
                "200",
                ResponseBuilder::new()
                    .description(
                        "The upstream playlist with every URI rewritten through this proxy; \
                         `Cache-Control: no-cache, no-store, must-revalidate`.",
                    )
                    .content(PLAYLIST_CONTENT_TYPE, playlist),
            )
            .responses_from_iter(token_errors())
            .response(
                "502",
                error_response(
                    "The upstream failed, answered non-2xx, or with something that is not a playlist or \
                     is too large.",
                    "upstream answered HTTP 404",
                ),
            )
            .response(
                "504",
                error_response("The upstream did not answer in time.", "upstream timed out"),
            )
            .build()
            .responses
    }
}

/// Responses of the four `/relay` operations (GET and HEAD, path and query
/// form; documentation only).
/// `Retry-After` of a relay refused by a limit: a segment's worth of time,
/// after which a player's next request usually finds a place.
const RELAY_RETRY_AFTER_SECS: u64 = 2;

struct RelayResponses;

impl IntoResponses for RelayResponses {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        let bytes = |description: &str, content_types: &[&str]| {
            content_types.iter().fold(
                ResponseBuilder::new().description(description),
                |response, content_type| {
                    response.content(*content_type, Content::new(Some(<Vec<u8>>::schema())))
                },
            )
        };
        ResponsesBuilder::new()
            .response(
                "200",
                bytes(
                    "The upstream bytes, streamed as they arrive; `Content-Type` (default by extension, \
                     e.g. `video/mp2t`), `Content-Length` and `Accept-Ranges` passed through.",
                    &["video/mp2t", "application/octet-stream", "*/*"],
                ),
            )
            .response(
                "206",
                bytes(
                    "A byte range of the upstream resource (`Range` forwarded); `Content-Range` passed \
                     through.",
                    &["*/*"],
                ),
            )
            .responses_from_iter(token_errors())
            .response(
                "416",
                bytes("The upstream could not satisfy the forwarded `Range`.", &["*/*"]),
            )
            .response(
                "429",
                error_response(
                    "`proxy.max_relays` relays (or `proxy.max_relays_per_client` for this client) are \
                     streaming now; `Retry-After` says when to ask again.",
                    "too many relays from this client (proxy.max_relays_per_client)",
                ),
            )
            .response(
                "502",
                error_response(
                    "The upstream failed or answered another status.",
                    "upstream answered HTTP 404",
                ),
            )
            .response(
                "504",
                error_response("The upstream sent no first byte in time.", "upstream timed out"),
            )
            .build()
            .responses
    }
}

/// The 400 and 403 every proxy endpoint answers for a bad URL or signature.
fn token_errors() -> [(&'static str, openapi::Response); 2] {
    [
        (
            "400",
            error_response(
                "The URL does not decode to an http(s) URL, or `src` names no extractor.",
                "URL is not valid base64url",
            ),
        ),
        (
            "403",
            error_response(
                "Missing or invalid signature, or the upstream address is guarded.",
                "missing or invalid signature",
            ),
        ),
    ]
}

/// A JSON error response whose example says `message`.
fn error_response(description: &str, message: &str) -> openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .example(Some(json!({ "error": message })))
                .build(),
        )
        .build()
}

/// The proxy routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(proxy_by_query))
        .routes(routes!(proxy_by_path))
        .routes(routes!(relay_by_query, relay_head_by_query))
        .routes(routes!(relay_by_path, relay_head))
}

impl From<token::TokenError> for ApiError {
    fn from(err: token::TokenError) -> Self {
        ApiError::BadRequest(err.to_string())
    }
}

impl From<ProxyError> for ApiError {
    fn from(err: ProxyError) -> Self {
        let message = err.to_string();
        match err {
            ProxyError::Signature => ApiError::Forbidden(message),
            ProxyError::UnknownSrc(_) => ApiError::BadRequest(message),
            ProxyError::Upstream(UpstreamError::Refused(_)) => ApiError::BadRequest(message),
            ProxyError::Upstream(UpstreamError::Blocked) => ApiError::Forbidden(message),
            ProxyError::Upstream(UpstreamError::Timeout) => ApiError::GatewayTimeout(message),
            ProxyError::Upstream(
                UpstreamError::Status(_)
                | UpstreamError::NotPlaylist
                | UpstreamError::TooLarge(_)
                | UpstreamError::Failed(_),
            ) => ApiError::BadGateway(message),
        }
    }
}

fn parse_query(query: TokenQuery) -> Result<ParsedToken, ApiError> {
    let url = query
        .url
        .ok_or_else(|| ApiError::BadRequest("url: missing (base64url of an http(s) URL)".into()))?;
    Ok(token::from_query(
        &url,
        query.sig.as_deref(),
        query.src.as_deref(),
    )?)
}

/// The proxy's answer as an HTTP response, its body made by `body`.
fn respond<B>(answer: Answer<B>, body: impl FnOnce(B) -> Body) -> Response {
    let mut response = Response::new(body(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

/// Counts the request's outcome under its endpoint and answers it.
fn counted(state: &AppState, kind: Kind, result: Result<Response, ApiError>) -> Response {
    let response = result.into_response();
    state
        .metrics
        .record_proxy_request(kind.as_str(), response.status().as_u16());
    response
}

/// An upstream playlist, rewritten so every URI goes through this proxy (query form).
#[utoipa::path(
    get,
    path = "/proxy",
    tag = TAG_PROXY,
    operation_id = "proxy_playlist_by_query",
    params(
        TokenQuery,
        LlHlsDirectives,
    ),
    responses(PlaylistResponses)
)]
async fn proxy_by_query(
    State(state): State<AppState>,
    query: Result<ApiQuery<TokenQuery>, ApiError>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let ApiQuery(query) = query?;
        serve_playlist(&state, parse_query(query)?, raw.as_deref(), &headers).await
    };
    counted(&state, Kind::Proxy, result.await)
}

/// The token of a path-form URL; a path that does not decode (percent
/// escapes of invalid UTF-8) is a JSON 400 like any other bad token.
fn path_token(path: Result<Path<(String, String)>, PathRejection>) -> Result<ParsedToken, ApiError> {
    let Path((token, _name)) = path.map_err(|e| ApiError::BadRequest(format!("token: {}", e.body_text())))?;
    Ok(token::parse_token(&token)?)
}

/// An upstream playlist, rewritten so every URI goes through this proxy (path
/// form, as in `proxy_url` and rewritten playlists).
#[utoipa::path(
    get,
    path = "/proxy/{token}/{name}",
    tag = TAG_PROXY,
    operation_id = "proxy_playlist",
    params(PlaylistPath, LlHlsDirectives),
    responses(PlaylistResponses)
)]
async fn proxy_by_path(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async { serve_playlist(&state, path_token(path)?, raw.as_deref(), &headers).await };
    counted(&state, Kind::Proxy, result.await)
}

async fn serve_playlist(
    state: &AppState,
    parsed: ParsedToken,
    raw_query: Option<&str>,
    request_headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let base = public_base(&state.config.server, request_headers);
    let answer = state.proxy.playlist(parsed, raw_query, &base).await?;
    state
        .metrics
        .record_upstream_head(Kind::Proxy.as_str(), answer.upstream_head_time);
    Ok(respond(answer, Body::from))
}

/// A segment, key, init section or other resource streamed from upstream (query form).
#[utoipa::path(
    get,
    path = "/relay",
    tag = TAG_PROXY,
    operation_id = "relay_by_query",
    params(TokenQuery, RangeHeader),
    responses(RelayResponses)
)]
async fn relay_by_query(
    State(state): State<AppState>,
    client: ClientAddress,
    method: Method,
    query: Result<ApiQuery<TokenQuery>, ApiError>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let ApiQuery(query) = query?;
        serve_relay(&state, client, method, parse_query(query)?, &headers).await
    };
    counted(&state, Kind::Relay, result.await)
}

/// The headers `GET` would answer with, without the body (the upstream is
/// asked with `HEAD` too). Its own operation, so operation ids stay unique.
#[utoipa::path(
    head,
    path = "/relay",
    tag = TAG_PROXY,
    operation_id = "relay_head_by_query",
    params(TokenQuery, RangeHeader),
    responses(RelayResponses)
)]
async fn relay_head_by_query(
    state: State<AppState>,
    client: ClientAddress,
    method: Method,
    query: Result<ApiQuery<TokenQuery>, ApiError>,
    headers: HeaderMap,
) -> Response {
    relay_by_query(state, client, method, query, headers).await
}

/// A segment, key, init section or other resource streamed from upstream (path
/// form, as written into rewritten playlists).
#[utoipa::path(
    get,
    path = "/relay/{token}/{name}",
    tag = TAG_PROXY,
    operation_id = "relay",
    params(RelayPath, RangeHeader),
    responses(RelayResponses)
)]
async fn relay_by_path(
    State(state): State<AppState>,
    client: ClientAddress,
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async { serve_relay(&state, client, method, path_token(path)?, &headers).await };
    counted(&state, Kind::Relay, result.await)
}

/// The headers `GET` would answer with, without the body (the upstream is
/// asked with `HEAD` too). Its own operation, so operation ids stay unique.
#[utoipa::path(
    head,
    path = "/relay/{token}/{name}",
    tag = TAG_PROXY,
    operation_id = "relay_head",
    params(RelayPath, RangeHeader),
    responses(RelayResponses)
)]
async fn relay_head(
    state: State<AppState>,
    client: ClientAddress,
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    relay_by_path(state, client, method, path, headers).await
}

async fn serve_relay(
    state: &AppState,
    ClientAddress(client): ClientAddress,
    method: Method,
    parsed: ParsedToken,
    request_headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // Held until the body ends (moved into the stream below), taken before
    // the upstream is asked, so a refused relay costs the upstream nothing.
    let permit = state.proxy.relay_limits.acquire(client).map_err(|limit| {
        state.metrics.relay_refused(limit);
        ApiError::TooManyRequests {
            message: match limit {
                RelayLimit::Total => "too many relays streaming now (proxy.max_relays)",
                RelayLimit::PerClient => "too many relays from this client (proxy.max_relays_per_client)",
            }
            .to_owned(),
            retry_after_secs: RELAY_RETRY_AFTER_SECS,
        }
    })?;
    // Kept for the channels: a failed segment of a channel's source counts
    // against that source.
    let url_text = parsed.url_text.clone();
    let answer = match state.proxy.relay(method, parsed, request_headers).await {
        Ok(answer) => answer,
        Err(err) => {
            if matches!(err, ProxyError::Upstream(_)) {
                state.channels.report_relay_failure(&url_text);
            }
            return Err(err.into());
        }
    };
    state
        .metrics
        .record_upstream_head(Kind::Relay.as_str(), answer.upstream_head_time);
    Ok(respond(answer, |body| match body {
        None => Body::empty(),
        Some(stream) => {
            let meter = state.metrics.relay_started();
            Body::from_stream(stream.inspect(move |chunk| {
                let _held = &permit;
                if let Ok(bytes) = chunk {
                    meter.bytes.increment(bytes.len() as u64);
                }
            }))
        }
    }))
}
