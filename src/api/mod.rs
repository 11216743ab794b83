//! The REST API: the router, the one error type that maps to HTTP, and the
//! feature modules' handlers and DTOs. Handlers validate input, then ask the
//! database or the extraction runner; they hold no state of their own.

pub mod access;
pub mod channels;
pub mod history;
pub mod openapi;
pub mod page;
pub mod proxy;
pub mod schedule;
pub mod streams;
pub mod viewers;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::{Config, ServerConfig};
use crate::db::{Database, DbError};
use crate::extraction::Extraction;
use crate::proxy::Proxy;
use openapi::{ErrorBody, TAG_SERVICE};

/// How long browsers may cache a CORS preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(3600);

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Database,
    /// The extraction runner (for `POST /extract`).
    pub extraction: Extraction,
    /// The HLS proxy: its playlist and relay pipelines and its signer.
    pub proxy: Arc<Proxy>,
    /// The F1 calendar (`/schedule`, `session=live`).
    pub schedule: crate::schedule::Schedule,
    /// Prometheus registry (`/metrics`, HTTP and proxy counters).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The failover channels (`/channels`); the relay reports failures to them.
    pub channels: crate::channel::Channels,
    /// `auth.viewers` and the credentials verified lately.
    pub viewers: Arc<viewers::Viewers>,
    /// The watch page's Content-Security-Policy, made from the config once.
    pub page_policy: HeaderValue,
}

/// Every failure a handler can answer with; rendered as `{"error": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message says which parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing at that path or id.
    #[error("{0}")]
    NotFound(String),
    /// The method is not served at this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No credentials where they are required.
    #[error("{message}")]
    Unauthorized {
        /// What is needed.
        message: String,
        /// The `WWW-Authenticate` challenge: which credentials.
        challenge: Challenge,
    },
    /// Refused: a bad signature, a guarded address, a wrong token.
    #[error("{0}")]
    Forbidden(String),
    /// The upstream failed or answered with something unusable.
    #[error("{0}")]
    BadGateway(String),
    /// The upstream did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// A limit is full for now; ask again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        /// Which limit.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Nothing to serve now; ask again after `retry_after_secs`.
    #[error("{message}")]
    Unavailable {
        /// What is missing.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Something failed on our side; details are logged, not returned.
    #[error("internal error")]
    Internal,
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        tracing::error!(error = %err, "database error while serving a request");
        Self::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let challenge = match &self {
            Self::Unauthorized { challenge, .. } => Some(*challenge),
            _ => None,
        };
        let retry_after = match &self {
            Self::Unavailable { retry_after_secs, .. } | Self::TooManyRequests { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge.header()),
            );
        }
        // An error is about this moment: no cache keeps it.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Which credentials a 401 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// `auth.admin_token` (mutating requests).
    Bearer,
    /// A viewer of `auth.viewers` (reading).
    Basic,
}

impl Challenge {
    /// The `WWW-Authenticate` value.
    pub fn header(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer realm=\"f1-stream\"",
            Self::Basic => "Basic realm=\"f1-stream\", charset=\"UTF-8\"",
        }
    }
}

/// `Query` whose rejection is a JSON 400 instead of axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// Every route with its OpenAPI operation: the one list both the router and
/// the document ([`openapi::openapi`]) are built from.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document())
        .routes(routes!(index))
        .routes(routes!(health))
        .routes(routes!(render_metrics))
        .routes(routes!(openapi::openapi_document))
        .routes(routes!(openapi::docs_page))
        .routes(routes!(openapi::docs_asset))
        .merge(streams::routes())
        .merge(history::routes())
        .merge(proxy::routes())
        .merge(schedule::routes())
        .merge(channels::routes())
        .merge(page::routes())
}

/// The API's routes with CORS and request tracing.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.server);
    let (routes, _document) = api_routes().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::drop_untrusted_forwarding,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard_mutations,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            viewers::require_viewer,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn(preflight_no_content))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            crate::metrics::track_http,
        ))
        // Spans name the route template, never the URI: proxy tokens carry
        // signatures, which must not reach the logs.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::debug_span!("http", method = %request.method(), route)
        }))
        // Outermost, so on every answer (preflights, errors, playlists and
        // relayed media included): no content sniffing, and no Referer to
        // whatever a page or player fetches next.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// CORS for players on other origins: the configured origins
/// (`server.cors_allow_origins`), read-only methods, `Range` allowed.
pub fn cors_layer(server: &ServerConfig) -> CorsLayer {
    let origins = if server.cors_allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            server
                .cors_allow_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::RANGE])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::ACCEPT_RANGES,
            header::AGE,
            HeaderName::from_static("retry-after"),
        ])
        .max_age(CORS_MAX_AGE)
}

/// A router serving only `/metrics`, for `server.metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

/// Prometheus metrics (text exposition format 0.0.4); calendar gauges are
/// computed at scrape time.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = TAG_SERVICE,
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format.",
            content_type = "text/plain", body = String,
            example = "# TYPE f1stream_extractor_up gauge\nf1stream_extractor_up{site_key=\"demo\"} 1\n"),
    )
)]
async fn render_metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let (live_window_open, next_session) = state.schedule.live_window();
    state
        .metrics
        .set_schedule(live_window_open, next_session.map(|at| at.timestamp()));
    state
        .metrics
        .set_signature_cache(state.proxy.signer.path_cache_stats());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// Answers CORS preflights with 204 No Content (the CORS layer says 200):
/// they have no body, and some clients and proxies expect 204.
async fn preflight_no_content(request: Request, next: axum::middleware::Next) -> Response {
    let is_preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = next.run(request).await;
    if is_preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// `GET /`: what this service is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"service": "f1-stream", "version": "0.1.0"}))]
pub struct ServiceInfo {
    /// Always `f1-stream`.
    pub service: String,
    /// The crate version serving.
    pub version: String,
}

/// `GET /health`: liveness.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct HealthStatus {
    /// Always `ok` while the service answers.
    pub status: String,
}

/// The service's name and version, or the watch page for browsers.
#[utoipa::path(
    get,
    path = "/",
    tag = TAG_SERVICE,
    operation_id = "service_info",
    responses((status = 200, description = "JSON: the service and its version. A request whose \
`Accept` prefers `text/html` to `application/json` (a browser navigating) gets the watch page \
instead; `Vary: Accept` says so to caches.",
        content(
            (ServiceInfo = "application/json"),
            (String = "text/html"),
        ))),
)]
async fn index(axum::extract::State(state): axum::extract::State<AppState>, headers: HeaderMap) -> Response {
    let mut response = if page::prefers_html(&headers) {
        page::shell(&state, &headers)
    } else {
        Json(ServiceInfo {
            service: "f1-stream".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
        .into_response()
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// Liveness: answers as long as the service serves requests.
#[utoipa::path(
    get,
    path = "/health",
    tag = TAG_SERVICE,
    operation_id = "health",
    responses((status = 200, description = "The service is up.", body = HealthStatus)),
)]
async fn health() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".to_owned(),
    })
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A query value as the handlers read it: trimmed, and `None` when absent
/// or empty (`?limit=` counts as no limit), the same for every endpoint.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// `limit=` as an integer from 1 to `max`; `None` when absent.
pub(crate) fn parse_limit(value: Option<&str>, max: u32) -> Result<Option<u32>, ApiError> {
    let Some(value) = present(value) else {
        return Ok(None);
    };
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest(format!("limit: {value:?} is not an integer from 1 to {max}")))
}

/// The scheme and authority clients reach us at, for absolute URIs in
/// rewritten playlists and `proxy_url`: `server.public_url`, else
/// `X-Forwarded-Proto` + `X-Forwarded-Host` (present only from a trusted
/// proxy: `access::drop_untrusted_forwarding`), else `Host` over http; empty
/// (root-relative URIs) when none is usable. Header values are only used when
/// they look like a host, so a client cannot inject text into playlists.
pub fn public_base(server: &ServerConfig, headers: &axum::http::HeaderMap) -> String {
    if !server.public_url.is_empty() {
        return server.public_url.trim_end_matches('/').to_owned();
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let is_host = |host: &str| {
        host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
    };
    let proto = match first("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    match first("x-forwarded-host").or_else(|| first("host")) {
        Some(host) if is_host(host) => format!("{proto}://{host}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn public_base_prefers_config_then_forwarded_then_host() {
        let mut server = ServerConfig::default();
        let forwarded = headers(&[
            ("host", "10.0.0.2:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "f1.example.com, proxy.internal"),
        ]);
        assert_eq!(public_base(&server, &forwarded), "https://f1.example.com");
        assert_eq!(
            public_base(&server, &headers(&[("host", "localhost:8080")])),
            "http://localhost:8080"
        );
        assert_eq!(public_base(&server, &headers(&[("host", "evil\" #EXT")])), "");
        assert_eq!(public_base(&server, &HeaderMap::new()), "");
        server.public_url = "https://streams.example.org/".into();
        assert_eq!(public_base(&server, &forwarded), "https://streams.example.org");
    }
}
