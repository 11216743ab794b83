//! Stream list, extractor status and manual runs (SPEC §7.2–7.3).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use axum::http::HeaderMap;

use super::{ApiError, ApiQuery, AppState, public_base};
use crate::config::RankingOrder;
use crate::config::is_valid_site_key;
use crate::db::{StreamFilter, StreamRow};
use crate::model::{RunTrigger, SessionType, StreamType};
use crate::proxy::token::{Kind, Signer};

/// Largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 10_000;

/// `session=` value meaning "the session live now" (per the F1 calendar).
pub const LIVE_SESSION: &str = "live";

/// A stream as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    pub quality: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Session type.
    pub session: Option<String>,
    /// When the extractor last reported it.
    pub extracted_at: String,
    /// Latest check healthy.
    pub is_live: bool,
    /// Latest response time in ms.
    pub response_time_ms: Option<i64>,
    /// When it was last checked.
    pub checked_at: Option<String>,
    /// Highest declared bitrate (bits/s).
    pub bitrate: i64,
    /// `live`, `event`, `vod` or `unknown`.
    pub stream_type: String,
    /// Why the latest check failed.
    pub error_kind: Option<String>,
    /// Message of the latest failure.
    pub error: Option<String>,
    /// Ready-to-play signed URL of the stream through our HLS proxy.
    pub proxy_url: String,
    /// `healthy`, `pending` (failed lately, still served) or `down`.
    pub state: String,
    /// The `order=score` value, 0–100 (see the README's ranking section).
    pub score: f64,
    /// Smoothed (EWMA) response time in ms.
    pub ewma_response_ms: Option<f64>,
    /// Variants of a master playlist.
    pub variant_count: Option<i64>,
    /// Measured segment throughput ÷ declared bandwidth.
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamList {
    /// The streams, in ranking order.
    pub streams: Vec<StreamDto>,
    /// Their number.
    pub count: usize,
}

impl StreamList {
    fn from_rows(rows: Vec<StreamRow>, state: &AppState, headers: &HeaderMap) -> Self {
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
#[derive(Debug, Default, Deserialize)]
pub struct StreamsQuery {
    session: Option<String>,
    site_key: Option<String>,
    limit: Option<String>,
    stream_type: Option<String>,
    order: Option<String>,
}

impl StreamsQuery {
    fn into_filter(self, default_order: RankingOrder) -> Result<StreamFilter, ApiError> {
        let session = match self.session.as_deref() {
            None | Some("") => None,
            Some(value) => Some(value.parse::<SessionType>().map_err(|_| {
                let names: Vec<_> = SessionType::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!(
                    "session: {value:?} is not one of {}, {LIVE_SESSION}",
                    names.join(", ")
                ))
            })?),
        };
        let site_key = match self.site_key.as_deref() {
            None | Some("") => None,
            Some(key) if is_valid_site_key(key) => Some(key.to_owned()),
            Some(key) => {
                return Err(ApiError::BadRequest(format!(
                    "site_key: {key:?} is not a valid site key"
                )));
            }
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => None,
            Some(value) => Some(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit: {value:?} is not an integer from 1 to {MAX_LIMIT}"
                        ))
                    })?,
            ),
        };
        let stream_type = match self.stream_type.as_deref() {
            None | Some("") => None,
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
        let order = match self.order.as_deref() {
            None | Some("") => default_order,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    pub last_error: Option<String>,
    /// Duration of its latest run.
    pub last_duration_ms: Option<i64>,
}

/// `GET /extractors`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExtractorsResponse {
    /// Every configured extractor.
    pub extractors: Vec<ExtractorDto>,
    /// Active streams over all extractors.
    pub total_cached_streams: i64,
    /// Active healthy streams over all extractors.
    pub total_live_streams: i64,
    /// Start of the latest run.
    pub last_run: Option<String>,
    /// Streams found by the latest run.
    pub last_run_stream_count: i64,
}

/// `POST /extract`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
        let calendar = state.schedule.calendar().await?;
        let now = state.schedule.now();
        match state.schedule.timing().window_session(&calendar, now) {
            Some((_, session)) => filter.session = Some(session.session_type.as_str().to_owned()),
            None => return Ok(Json(StreamList::from_rows(Vec::new(), &state, &headers))),
        }
    }
    let rows = state.db.ranked_streams(&filter).await?;
    Ok(Json(StreamList::from_rows(rows, &state, &headers)))
}

pub(super) async fn list_all_streams(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StreamList>, ApiError> {
    let rows = state.db.all_active_streams().await?;
    Ok(Json(StreamList::from_rows(rows, &state, &headers)))
}

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
