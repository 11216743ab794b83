//! Stream list, extractor status and manual runs (README "HTTP API").

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorBody, TAG_EXTRACTION, TAG_STREAMS, string_enum, string_enum_with_default};
use super::{ApiError, ApiQuery, AppState, public_base};
use crate::db::{StreamFilter, StreamRow};
use crate::model::{HealthState, RankingOrder, RunTrigger, SessionType, StreamType, is_valid_site_key};
use crate::proxy::token::{Kind, Signer};

/// Largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 10_000;

/// `session=` value meaning "the session live now" (per the F1 calendar).
pub const LIVE_SESSION: &str = "live";

/// The stream routes and the extractor routes without history.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_streams))
        .routes(routes!(list_all_streams))
        .routes(routes!(list_extractors))
        .routes(routes!(extract))
}

/// A stream as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "id": 7, "url": "https://cdn.example.net/f1/live/master.m3u8", "site_key": "example",
    "site_name": "Example streams", "quality": "1080p", "title": "F1 Race", "session": "race",
    "extracted_at": "2026-03-08T04:58:00.000Z", "is_live": true, "response_time_ms": 182,
    "checked_at": "2026-03-08T04:58:01.000Z", "bitrate": 5000000, "stream_type": "live",
    "error_kind": null, "error": null,
    "proxy_url": "http://127.0.0.1:8080/proxy/aHR0cHM6Ly9jZG4uZXhhbXBsZS5uZXQvZjEvbGl2ZS9tYXN0ZXIubTN1OA.example.c2lnbmF0dXJl/master.m3u8",
    "state": "healthy", "score": 91.25, "ewma_response_ms": 190.0, "variant_count": 3,
    "throughput_ratio": 2.5
}))]
pub struct StreamDto {
    /// Stable id (the database row).
    pub id: i64,
    /// Playlist URL.
    pub url: String,
    /// Extractor key.
    pub site_key: String,
    /// Extractor name.
    pub site_name: String,
    /// Quality label.
    #[schema(required = true)]
    pub quality: Option<String>,
    /// Title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// Session type.
    #[schema(required = true)]
    pub session: Option<String>,
    /// When the extractor last reported it.
    pub extracted_at: String,
    /// Latest check healthy.
    pub is_live: bool,
    /// Latest response time in ms.
    #[schema(required = true)]
    pub response_time_ms: Option<i64>,
    /// When it was last checked.
    #[schema(required = true)]
    pub checked_at: Option<String>,
    /// Highest declared bitrate (bits/s).
    pub bitrate: i64,
    /// `live`, `event`, `vod` or `unknown`.
    #[schema(schema_with = stream_type_schema)]
    pub stream_type: String,
    /// Why the latest check failed.
    #[schema(required = true)]
    pub error_kind: Option<String>,
    /// Message of the latest failure.
    #[schema(required = true)]
    pub error: Option<String>,
    /// Ready-to-play signed URL of the stream through our HLS proxy.
    pub proxy_url: String,
    /// `healthy`, `pending` (failed lately, still served) or `down`.
    #[schema(schema_with = health_state_schema)]
    pub state: String,
    /// The `order=score` value, 0–100 (see the README's ranking section).
    pub score: f64,
    /// Smoothed (EWMA) response time in ms.
    #[schema(required = true)]
    pub ewma_response_ms: Option<f64>,
    /// Variants of a master playlist.
    #[schema(required = true)]
    pub variant_count: Option<i64>,
    /// Measured segment throughput ÷ declared bandwidth.
    #[schema(required = true)]
    pub throughput_ratio: Option<f64>,
}

impl StreamDto {
    /// The API view of `row`, its `proxy_url` rooted at `public_base`.
    pub fn new(row: StreamRow, signer: &Signer, public_base: &str) -> Self {
        let proxy_url = format!(
            "{public_base}{}",
            signer.path(Kind::Proxy, &row.url, Some(&row.site_key))
        );
        Self {
            proxy_url,
            id: row.id,
            url: row.url,
            site_key: row.site_key,
            site_name: row.site_name,
            quality: row.quality,
            title: row.title,
            session: row.session,
            extracted_at: row.last_seen,
            is_live: row.is_live,
            response_time_ms: row.response_time_ms,
            checked_at: row.checked_at,
            bitrate: row.bitrate,
            stream_type: row.stream_type,
            error_kind: row.error_kind,
            error: row.error,
            state: row.health_state,
            // Two decimals are all a ranking needs, and stable in JSON.
            score: (row.score * 100.0).round() / 100.0,
            ewma_response_ms: row.ewma_response_ms.map(|ms| ms.round()),
            variant_count: row.variant_count,
            throughput_ratio: row.throughput_ratio.map(|r| (r * 1000.0).round() / 1000.0),
        }
    }
}

/// `{"streams": [...], "count": N}`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StreamList {
    /// The streams, in ranking order.
    pub streams: Vec<StreamDto>,
    /// Their number.
    pub count: usize,
}

impl StreamList {
    /// The DTOs of `rows`, their proxy URLs signed on this request's public base.
    pub(super) fn from_rows(rows: Vec<StreamRow>, state: &AppState, headers: &HeaderMap) -> Self {
        let base = public_base(&state.config.server, headers);
        let signer = &state.proxy.signer;
        let streams: Vec<StreamDto> = rows
            .into_iter()
            .map(|row| StreamDto::new(row, signer, &base))
            .collect();
        Self {
            count: streams.len(),
            streams,
        }
    }
}

/// Raw query of `GET /streams`; parsed by hand so errors name the parameter.
/// The `param` attributes document what the parsing accepts; an empty value
/// counts as absent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamsQuery {
    /// Only streams tagged with this session type, or untagged; `live`: the
    /// session live now per the F1 calendar (none live: an empty list).
    #[param(schema_with = session_param_schema, required = false, example = "race")]
    session: Option<String>,
    /// Only this extractor's streams (empty: all).
    #[param(value_type = String, required = false, nullable = false, pattern = r"^[a-z0-9_-]{0,64}$", example = "demo")]
    site_key: Option<String>,
    /// At most this many streams (default: all).
    #[param(value_type = u32, required = false, nullable = false, minimum = 1, maximum = 10000, example = 10)]
    limit: Option<String>,
    /// Only streams of this type.
    #[param(schema_with = stream_type_param_schema, required = false, example = "live")]
    stream_type: Option<String>,
    /// `fastest`: live broadcasts first, then fastest response; `score`: by
    /// the ranking score. Default: `ranking.default_order` (`fastest`).
    #[param(schema_with = order_schema, required = false, example = "score")]
    order: Option<String>,
}

/// `session`: the session types, or `live`.
fn session_param_schema() -> Object {
    string_enum(
        SessionType::ALL.iter().map(|s| s.as_str()).chain([LIVE_SESSION]),
        "Only streams tagged with this session type, or untagged; `live`: the session \
live now per the F1 calendar (none live: an empty list).",
    )
}

/// Every type a playlist can have, in the API's order.
const STREAM_TYPES: [StreamType; 4] = [
    StreamType::Live,
    StreamType::Event,
    StreamType::Vod,
    StreamType::Unknown,
];

/// `stream_type`: what a playlist's type can be.
pub(super) fn stream_type_schema() -> Object {
    string_enum(
        STREAM_TYPES.map(StreamType::as_str),
        "`live` (a live broadcast), `event`, `vod` or `unknown`.",
    )
}

/// `stream_type` of `GET /streams`.
fn stream_type_param_schema() -> Object {
    string_enum(
        STREAM_TYPES.map(StreamType::as_str),
        "Only streams of this type (`live`: a live broadcast).",
    )
}

/// `state`: the damped health states.
fn health_state_schema() -> Object {
    string_enum(
        [HealthState::Healthy, HealthState::Pending, HealthState::Down].map(HealthState::as_str),
        "`healthy`, `pending` (failed lately, still served) or `down`.",
    )
}

/// `order`: the ranking orders.
fn order_schema() -> Object {
    string_enum_with_default(
        ["fastest", "score"],
        "`fastest`: live broadcasts first, then fastest response; `score`: by the ranking \
score (see the README). The default is `ranking.default_order`, `fastest` unless configured.",
        "fastest",
    )
}

impl StreamsQuery {
    fn into_filter(self, default_order: RankingOrder) -> Result<StreamFilter, ApiError> {
        let session = match super::present(self.session.as_deref()) {
            None => None,
            Some(value) => Some(value.parse::<SessionType>().map_err(|_| {
                let names: Vec<_> = SessionType::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!(
                    "session: {value:?} is not one of {}, {LIVE_SESSION}",
                    names.join(", ")
                ))
            })?),
        };
        let site_key = match super::present(self.site_key.as_deref()) {
            None => None,
            Some(key) if is_valid_site_key(key) => Some(key.to_owned()),
            Some(key) => {
                return Err(ApiError::BadRequest(format!(
                    "site_key: {key:?} is not a valid site key"
                )));
            }
        };
        let limit = super::parse_limit(self.limit.as_deref(), MAX_LIMIT)?;
        let stream_type = match super::present(self.stream_type.as_deref()) {
            None => None,
            Some(value) => Some(
                value
                    .parse::<StreamType>()
                    .map_err(|_| {
                        ApiError::BadRequest(format!(
                            "stream_type: {value:?} is not one of live, event, vod, unknown"
                        ))
                    })?
                    .as_str()
                    .to_owned(),
            ),
        };
        let order = match super::present(self.order.as_deref()) {
            None => default_order,
            Some("fastest") => RankingOrder::Fastest,
            Some("score") => RankingOrder::Score,
            Some(value) => {
                return Err(ApiError::BadRequest(format!(
                    "order: {value:?} is not one of fastest, score"
                )));
            }
        };
        Ok(StreamFilter {
            session: session.map(|s| s.as_str().to_owned()),
            site_key,
            limit,
            stream_type,
            order,
        })
    }
}

/// One extractor in `GET /extractors`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ExtractorDto {
    /// Key.
    pub site_key: String,
    /// Name.
    pub site_name: String,
    /// Source kind.
    pub kind: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Active streams.
    pub cached_streams: i64,
    /// Active healthy streams.
    pub live_streams: i64,
    /// Error of its latest run.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// Duration of its latest run.
    #[schema(required = true)]
    pub last_duration_ms: Option<i64>,
}

/// `GET /extractors`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ExtractorsResponse {
    /// Every configured extractor.
    pub extractors: Vec<ExtractorDto>,
    /// Active streams over all extractors.
    pub total_cached_streams: i64,
    /// Active healthy streams over all extractors.
    pub total_live_streams: i64,
    /// Start of the latest run.
    #[schema(required = true)]
    pub last_run: Option<String>,
    /// Streams found by the latest run.
    pub last_run_stream_count: i64,
}

/// `POST /extract`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "status": "extraction_complete", "run_id": 12, "streams_found": 8,
    "live_streams": 5, "extractors_run": 2
}))]
pub struct ExtractResponse {
    /// Always `extraction_complete`.
    pub status: String,
    /// Id of the stored run.
    pub run_id: i64,
    /// Streams found.
    pub streams_found: usize,
    /// Healthy streams.
    pub live_streams: usize,
    /// Extractors that ran.
    pub extractors_run: usize,
}

/// Served streams, ranked: live broadcasts first, then fastest (or by score).
#[utoipa::path(
    get,
    path = "/streams",
    tag = TAG_STREAMS,
    operation_id = "list_streams",
    params(StreamsQuery),
    responses(
        (status = 200, description = "Active streams that are served (state `healthy`, then `pending`), \
in ranking order.",
            body = StreamList),
        (status = 400, description = "A query parameter is invalid; the message names it.",
            body = ErrorBody, example = json!({"error": "limit: \"0\" is not an integer from 1 to 10000"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
pub(super) async fn list_streams(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StreamsQuery>,
    headers: HeaderMap,
) -> Result<Json<StreamList>, ApiError> {
    let mut query = query;
    // `session=live`: the session whose fast-polling window is open now;
    // none open means nothing is live, an empty list.
    let live = query.session.as_deref() == Some(LIVE_SESSION);
    if live {
        query.session = None;
    }
    let mut filter = query.into_filter(state.config.ranking.default_order)?;
    if live {
        match state.schedule.window_session_type().await? {
            Some(session) => filter.session = Some(session.as_str().to_owned()),
            None => return Ok(Json(StreamList::from_rows(Vec::new(), &state, &headers))),
        }
    }
    let rows = state.db.ranked_streams(&filter).await?;
    Ok(Json(StreamList::from_rows(rows, &state, &headers)))
}

/// Every active stream, healthy or not: healthy first, then fastest.
#[utoipa::path(
    get,
    path = "/streams/all",
    tag = TAG_STREAMS,
    operation_id = "list_all_streams",
    responses(
        (status = 200, description = "Every active stream.", body = StreamList),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
pub(super) async fn list_all_streams(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StreamList>, ApiError> {
    let rows = state.db.all_active_streams().await?;
    Ok(Json(StreamList::from_rows(rows, &state, &headers)))
}

/// The configured extractors with their stream counts and latest outcome.
#[utoipa::path(
    get,
    path = "/extractors",
    tag = TAG_EXTRACTION,
    operation_id = "list_extractors",
    responses(
        (status = 200, description = "Every configured extractor and the latest run.",
            body = ExtractorsResponse),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
pub(super) async fn list_extractors(
    State(state): State<AppState>,
) -> Result<Json<ExtractorsResponse>, ApiError> {
    let configured: Vec<&str> = state
        .config
        .extractors
        .iter()
        .map(|e| e.site_key.as_str())
        .collect();
    let extractors: Vec<ExtractorDto> = state
        .db
        .extractor_statuses()
        .await?
        .into_iter()
        .filter(|s| configured.contains(&s.site_key.as_str()))
        .map(|s| ExtractorDto {
            site_key: s.site_key,
            site_name: s.site_name,
            kind: s.kind,
            enabled: s.enabled,
            cached_streams: s.cached_streams,
            live_streams: s.live_streams,
            last_error: s.last_error,
            last_duration_ms: s.last_duration_ms,
        })
        .collect();
    let last_run = state.db.last_run().await?;
    Ok(Json(ExtractorsResponse {
        total_cached_streams: extractors.iter().map(|e| e.cached_streams).sum(),
        total_live_streams: extractors.iter().map(|e| e.live_streams).sum(),
        last_run: last_run.as_ref().map(|r| r.started_at.clone()),
        last_run_stream_count: last_run.map_or(0, |r| r.stream_count),
        extractors,
    }))
}

/// Runs an extraction now (joining one already running) and answers when done.
#[utoipa::path(
    post,
    path = "/extract",
    tag = TAG_EXTRACTION,
    operation_id = "extract",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The run finished; its counts.", body = ExtractResponse),
        (status = 401, description = "`auth.admin_token` is set and the request has no bearer token.",
            body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"f1-stream\"`")),
            example = json!({"error": "this request needs an Authorization: Bearer header with auth.admin_token"})),
        (status = 403, description = "A wrong token; or no token is configured and the request does not come \
from this machine directly.", body = ErrorBody,
            example = json!({"error": "the bearer token is not auth.admin_token"})),
        (status = 500, description = "The run could not be stored (details are logged).",
            body = ErrorBody, example = json!({"error": "internal error"})),
    )
)]
pub(super) async fn extract(State(state): State<AppState>) -> Result<Json<ExtractResponse>, ApiError> {
    // The failure is logged by the run itself; the client gets a generic 500.
    let summary = state
        .extraction
        .run(RunTrigger::Manual)
        .await
        .map_err(|_| ApiError::Internal)?;
    Ok(Json(ExtractResponse {
        status: "extraction_complete".to_owned(),
        run_id: summary.run_id,
        streams_found: summary.streams_found,
        live_streams: summary.live_streams,
        extractors_run: summary.extractors_run,
    }))
}
