//! The HLS proxy endpoints (SPEC §7.5): `/proxy` fetches and rewrites a
//! playlist, `/relay` streams segments, keys and init sections. Both take the
//! path form `/<kind>/<token>/<name>` and the query form `?url=&sig=&src=`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
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

use super::openapi::{ErrorBody, TAG_PROXY};
use super::{ApiError, ApiQuery, AppState, public_base};
use crate::proxy::rewrite::{RewriteContext, rewrite};
use crate::proxy::token::{self, Kind, ParsedToken, Signer};
use crate::proxy::upstream::{FORWARDED_REQUEST_HEADERS, Upstream, UpstreamError, relay_content_type};

/// Content type of every proxied playlist.
const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists change with every reload; no cache may keep one.
const PLAYLIST_CACHE_CONTROL: &str = "no-cache, no-store, must-revalidate";
/// Target durations remembered for blocking reloads; cleared when full.
const TARGET_DURATION_CACHE_ENTRIES: usize = 4096;
/// Slack on top of 3 × target duration for an LL-HLS blocking reload.
const BLOCKING_RELOAD_SLACK: Duration = Duration::from_secs(2);

/// What the proxy endpoints share.
pub struct ProxyState {
    /// Upstream access with the proxy's limits.
    pub upstream: Upstream,
    /// Signs rewritten URIs and verifies incoming ones.
    pub signer: Signer,
    /// Refuse unsigned or badly signed URLs.
    pub require_signature: bool,
    /// Request headers per extractor, selected by `src`.
    pub src_headers: HashMap<String, HeaderMap>,
    /// Deadline of an ordinary playlist fetch.
    pub playlist_timeout: Duration,
    /// Target duration of recently proxied playlists, by upstream URL, so a
    /// blocking reload may wait up to 3 × target duration.
    target_durations: Mutex<HashMap<String, f64>>,
}

impl ProxyState {
    /// Proxy state with an empty target-duration memory.
    pub fn new(
        upstream: Upstream,
        signer: Signer,
        require_signature: bool,
        src_headers: HashMap<String, HeaderMap>,
        playlist_timeout: Duration,
    ) -> Self {
        Self {
            upstream,
            signer,
            require_signature,
            src_headers,
            playlist_timeout,
            target_durations: Mutex::new(HashMap::new()),
        }
    }

    fn remember_target_duration(&self, url: &str, seconds: f64) {
        let mut cache = self.target_durations.lock().unwrap_or_else(|p| p.into_inner());
        // Every reload of a live playlist lands here: update in place, and
        // allocate a key only for a playlist not seen before.
        if let Some(known) = cache.get_mut(url) {
            *known = seconds;
            return;
        }
        if cache.len() >= TARGET_DURATION_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(url.to_owned(), seconds);
    }

    fn playlist_deadline(&self, url: &str, blocking: bool) -> Duration {
        if !blocking {
            return self.playlist_timeout;
        }
        let cache = self.target_durations.lock().unwrap_or_else(|p| p.into_inner());
        let blocking_wait = cache
            .get(url)
            .map(|seconds| Duration::from_secs_f64(seconds * 3.0) + BLOCKING_RELOAD_SLACK);
        blocking_wait.map_or(self.playlist_timeout, |wait| wait.max(self.playlist_timeout))
    }
}

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

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        let message = err.to_string();
        match err {
            UpstreamError::Refused(_) => ApiError::BadRequest(message),
            UpstreamError::Blocked => ApiError::Forbidden(message),
            UpstreamError::Timeout => ApiError::GatewayTimeout(message),
            UpstreamError::Status(_)
            | UpstreamError::NotPlaylist
            | UpstreamError::TooLarge(_)
            | UpstreamError::Failed(_) => ApiError::BadGateway(message),
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

/// Checks the signature (when required) and picks the extractor's headers.
fn authorize(state: &AppState, parsed: &ParsedToken, kind: Kind) -> Result<HeaderMap, ApiError> {
    let proxy = &state.proxy;
    if proxy.require_signature && !parsed.is_signed_by(&proxy.signer, kind) {
        return Err(ApiError::Forbidden("missing or invalid signature".into()));
    }
    match parsed.src.as_deref() {
        None => Ok(HeaderMap::new()),
        Some(src) => proxy
            .src_headers
            .get(src)
            .cloned()
            .ok_or_else(|| ApiError::BadRequest(format!("src: no extractor {src:?}"))),
    }
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
    let upstream_headers = authorize(state, &parsed, Kind::Proxy)?;
    let proxy = &state.proxy;
    let mut url = parsed.url;
    // LL-HLS delivery directives travel to the upstream, outside the signature.
    let blocking = {
        let mut directives = url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
            .filter(|(name, _)| name.starts_with("_HLS_"))
            .peekable();
        let blocking = directives.peek().is_some();
        if blocking {
            url.query_pairs_mut().extend_pairs(directives);
        }
        blocking
    };
    let deadline = proxy.playlist_deadline(&parsed.url_text, blocking);
    let fetched = proxy
        .upstream
        .fetch_playlist(url, upstream_headers, deadline)
        .await?;
    state
        .metrics
        .record_upstream_head(Kind::Proxy.as_str(), fetched.head_time);
    let base = public_base(&state.config.server, request_headers);
    let rewritten = rewrite(
        &fetched.text,
        &RewriteContext {
            base: &fetched.final_url,
            public_base: &base,
            src: parsed.src.as_deref(),
            signer: &proxy.signer,
        },
    );
    if let Some(seconds) = rewritten.summary.target_duration {
        proxy.remember_target_duration(&parsed.url_text, seconds);
    }
    Ok((
        [
            (header::CONTENT_TYPE, PLAYLIST_CONTENT_TYPE),
            (header::CACHE_CONTROL, PLAYLIST_CACHE_CONTROL),
        ],
        rewritten.text,
    )
        .into_response())
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
    method: Method,
    query: Result<ApiQuery<TokenQuery>, ApiError>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let ApiQuery(query) = query?;
        serve_relay(&state, method, parse_query(query)?, &headers).await
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
    method: Method,
    query: Result<ApiQuery<TokenQuery>, ApiError>,
    headers: HeaderMap,
) -> Response {
    relay_by_query(state, method, query, headers).await
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
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async { serve_relay(&state, method, path_token(path)?, &headers).await };
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
    method: Method,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    relay_by_path(state, method, path, headers).await
}

async fn serve_relay(
    state: &AppState,
    method: Method,
    parsed: ParsedToken,
    request_headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut upstream_headers = authorize(state, &parsed, Kind::Relay)?;
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = request_headers.get(&name) {
            upstream_headers.insert(name, value.clone());
        }
    }
    let is_head = method == Method::HEAD;
    let path = parsed.url.path().to_owned();
    let relay = state
        .proxy
        .upstream
        .open_relay(method, parsed.url, upstream_headers)
        .await?;
    state
        .metrics
        .record_upstream_head(Kind::Relay.as_str(), relay.head_time);
    let mut response = if is_head {
        Response::new(Body::empty())
    } else {
        let meter = state.metrics.relay_started();
        Response::new(Body::from_stream(relay.body.inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                meter.bytes.increment(bytes.len() as u64);
            }
        })))
    };
    *response.status_mut() = relay.status;
    let headers = response.headers_mut();
    headers.extend(relay.headers);
    headers.insert(
        header::CONTENT_TYPE,
        relay_content_type(relay.content_type.as_ref(), &path),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
