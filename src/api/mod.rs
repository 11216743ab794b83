//! The REST API: the router, the one error type that maps to HTTP, and the
//! feature modules' handlers and DTOs. Handlers validate input, then ask the
//! database or the extraction runner; they hold no state of their own.

pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, ServerConfig};
use crate::db::{Database, DbError};
use crate::extraction::Extraction;

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
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
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

/// The API's routes with CORS and request tracing.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.server);
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/streams", get(streams::list_streams))
        .route("/streams/all", get(streams::list_all_streams))
        .route("/extractors", get(streams::list_extractors))
        .route("/extract", post(streams::extract))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// CORS as SPEC §7.5: configured origins, read-only methods, `Range` allowed.
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

async fn index() -> Json<serde_json::Value> {
    Json(json!({ "service": "f1-stream", "version": env!("CARGO_PKG_VERSION") }))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
