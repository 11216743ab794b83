//! The HLS proxy endpoints (SPEC §7.5): `/proxy` fetches and rewrites a
//! playlist, `/relay` streams segments, keys and init sections. Both take the
//! path form `/<kind>/<token>/<name>` and the query form `?url=&sig=&src=`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Deserialize;

use super::{ApiError, ApiQuery, AppState, public_base};
use crate::hls;
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
        if cache.len() >= TARGET_DURATION_CACHE_ENTRIES && !cache.contains_key(url) {
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
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    url: Option<String>,
    sig: Option<String>,
    src: Option<String>,
}

/// The proxy routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/proxy", get(proxy_by_query))
        .route("/proxy/{token}/{name}", get(proxy_by_path))
        .route("/relay", get(relay_by_query))
        .route("/relay/{token}/{name}", get(relay_by_path))
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

async fn proxy_by_path(
    State(state): State<AppState>,
    Path((token, _name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result =
        async { serve_playlist(&state, token::parse_token(&token)?, raw.as_deref(), &headers).await };
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
    let mut url = parsed.url.clone();
    // LL-HLS delivery directives travel to the upstream, outside the signature.
    let directives: Vec<(String, String)> = raw_query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name.starts_with("_HLS_"))
        .collect();
    if !directives.is_empty() {
        url.query_pairs_mut().extend_pairs(&directives);
    }
    let deadline = proxy.playlist_deadline(&parsed.url_text, !directives.is_empty());
    let fetched = proxy
        .upstream
        .fetch_playlist(url, &upstream_headers, deadline)
        .await?;
    state
        .metrics
        .record_upstream_head(Kind::Proxy.as_str(), fetched.head_time);
    if let Some(seconds) = hls::target_duration(&fetched.text) {
        proxy.remember_target_duration(&parsed.url_text, seconds);
    }
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
    Ok((
        [
            (header::CONTENT_TYPE, PLAYLIST_CONTENT_TYPE),
            (header::CACHE_CONTROL, PLAYLIST_CACHE_CONTROL),
        ],
        rewritten,
    )
        .into_response())
}

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

async fn relay_by_path(
    State(state): State<AppState>,
    method: Method,
    Path((token, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = async { serve_relay(&state, method, token::parse_token(&token)?, &headers).await };
    counted(&state, Kind::Relay, result.await)
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
