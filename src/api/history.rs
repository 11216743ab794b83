//! Health history over HTTP (README "History and SQL"): one stream with its
//! uptime, its raw checks and state changes, an extractor's uptime series for
//! charts, and the stored runs. Every list is newest first behind an opaque
//! cursor; times accept RFC 3339 or unix seconds.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{Object, Schema};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{
    ErrorBody, TAG_EXTRACTION, TAG_STREAMS, string_enum, string_enum_with_default, time_schema,
};
use super::streams::{StreamDto, stream_type_schema};
use super::{ApiError, ApiQuery, AppState, public_base};
use crate::db::{
    CheckRow, EventKind, EventRow, ExtractorRunRow, Position, RunRow, SeriesOf, Step, Tally, TimeRange,
};
use crate::model::{RunTrigger, format_timestamp};

/// `limit` when none is given.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest `limit` a history list accepts.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Most buckets one uptime series may have.
pub const MAX_SERIES_POINTS: i64 = 10_000;
/// Span of an uptime series without `from`, per step.
const DEFAULT_SERIES_SPAN_HOURLY: TimeDelta = TimeDelta::hours(24);
const DEFAULT_SERIES_SPAN_DAILY: TimeDelta = TimeDelta::days(30);

/// The history routes, merged into the API router.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stream_detail))
        .routes(routes!(stream_history))
        .routes(routes!(stream_events))
        .routes(routes!(extractor_uptime))
        .routes(routes!(stream_uptime))
        .routes(routes!(list_runs))
        .routes(routes!(run_detail))
}

/// One stored health check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "id": 4711, "run_id": 12, "checked_at": "2026-03-08T04:58:01.000Z", "is_live": true,
    "response_time_ms": 182, "ttfb_ms": 95, "http_status": 200, "bitrate": 5000000,
    "error_kind": null, "error": null, "playlist_kind": "master", "stream_type": "live"
}))]
pub struct CheckDto {
    /// Row id.
    pub id: i64,
    /// The run it belongs to.
    #[schema(required = true)]
    pub run_id: Option<i64>,
    /// When the check started.
    pub checked_at: String,
    /// Healthy.
    pub is_live: bool,
    /// Request start to body read, ms.
    #[schema(required = true)]
    pub response_time_ms: Option<i64>,
    /// Request start to response head, ms.
    #[schema(required = true)]
    pub ttfb_ms: Option<i64>,
    /// Final HTTP status.
    #[schema(required = true)]
    pub http_status: Option<i64>,
    /// Highest declared bitrate (bits/s).
    pub bitrate: i64,
    /// Why it failed.
    #[schema(required = true)]
    pub error_kind: Option<String>,
    /// Failure message.
    #[schema(required = true)]
    pub error: Option<String>,
    /// `master` or `media`.
    #[schema(required = true)]
    pub playlist_kind: Option<String>,
    /// `live`, `event`, `vod` or `unknown`.
    #[schema(schema_with = stream_type_schema)]
    pub stream_type: String,
}

impl From<CheckRow> for CheckDto {
    fn from(row: CheckRow) -> Self {
        Self {
            id: row.id,
            run_id: row.run_id,
            checked_at: row.checked_at,
            is_live: row.is_live,
            response_time_ms: row.response_time_ms,
            ttfb_ms: row.ttfb_ms,
            http_status: row.http_status,
            bitrate: row.bitrate,
            error_kind: row.error_kind,
            error: row.error,
            playlist_kind: row.playlist_kind,
            stream_type: row.stream_type,
        }
    }
}

/// One state change of a stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EventDto {
    /// Row id.
    pub id: i64,
    /// `appeared`, `went_down`, `recovered` or `inactive`.
    #[schema(schema_with = event_kind_schema)]
    pub kind: String,
    /// When it happened.
    pub at: String,
    /// The run that saw it.
    #[schema(required = true)]
    pub run_id: Option<i64>,
    /// The check that caused it (`None` for `inactive`; may be pruned since).
    #[schema(required = true)]
    pub check_id: Option<i64>,
    /// Health after the change.
    pub is_live: bool,
    /// Error kind of the causing check.
    #[schema(required = true)]
    pub error_kind: Option<String>,
    /// Error message of the causing check.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<EventRow> for EventDto {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            at: row.at,
            run_id: row.run_id,
            check_id: row.check_id,
            is_live: row.is_live,
            error_kind: row.error_kind,
            error: row.error,
        }
    }
}

/// Uptime and latency of a stream over one window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UptimeDto {
    /// Window start (inclusive).
    pub from: String,
    /// Window end (exclusive): now.
    pub to: String,
    /// Checks in the window.
    pub checks: i64,
    /// Healthy checks.
    pub healthy: i64,
    /// `healthy / checks`, `null` without checks.
    #[schema(required = true)]
    pub uptime: Option<f64>,
    /// Mean response time of the checks that got a response, ms.
    #[schema(required = true)]
    pub mean_response_ms: Option<f64>,
    /// Fastest response, ms.
    #[schema(required = true)]
    pub min_response_ms: Option<i64>,
    /// Slowest response, ms.
    #[schema(required = true)]
    pub max_response_ms: Option<i64>,
}

impl UptimeDto {
    fn new(from: DateTime<Utc>, to: DateTime<Utc>, tally: Tally) -> Self {
        Self {
            from: format_timestamp(from),
            to: format_timestamp(to),
            checks: tally.checks,
            healthy: tally.healthy,
            uptime: tally.uptime(),
            mean_response_ms: tally.mean_response_ms(),
            min_response_ms: tally.response_ms_min,
            max_response_ms: tally.response_ms_max,
        }
    }
}

/// The uptime windows of `GET /streams/{id}`, all ending now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UptimeWindows {
    /// The last hour.
    #[serde(rename = "1h")]
    pub hour: UptimeDto,
    /// The last 24 hours.
    #[serde(rename = "24h")]
    pub day: UptimeDto,
    /// The last 7 days.
    #[serde(rename = "7d")]
    pub week: UptimeDto,
    /// The last 30 days.
    #[serde(rename = "30d")]
    pub month: UptimeDto,
}

/// `GET /streams/{id}`: the stream object plus its history summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StreamDetail {
    /// The stream, as in `/streams`.
    #[serde(flatten)]
    pub stream: StreamDto,
    /// Reported by its extractor's latest run.
    pub active: bool,
    /// When it was first reported.
    pub first_seen: String,
    /// Its newest stored check (`null` when none is kept).
    #[schema(required = true)]
    pub latest_check: Option<CheckDto>,
    /// Uptime and latency over 1 h, 24 h, 7 d and 30 d.
    pub uptime: UptimeWindows,
}

/// `GET /streams/{id}/history`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct HistoryPage {
    /// The stream.
    pub stream_id: i64,
    /// Its checks, newest first.
    pub checks: Vec<CheckDto>,
    /// Their number.
    pub count: usize,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `GET /streams/{id}/events`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EventsPage {
    /// The stream.
    pub stream_id: i64,
    /// Its state changes, newest first.
    pub events: Vec<EventDto>,
    /// Their number.
    pub count: usize,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One bucket of an uptime series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SeriesPoint {
    /// Bucket start.
    pub ts: String,
    /// Checks in the bucket.
    pub checks: i64,
    /// Healthy checks.
    pub healthy: i64,
    /// `healthy / checks`, `null` without checks.
    #[schema(required = true)]
    pub uptime: Option<f64>,
    /// Mean response time, ms.
    #[schema(required = true)]
    pub mean_ms: Option<f64>,
}

impl SeriesPoint {
    fn new(ts: String, tally: Tally) -> Self {
        Self {
            ts,
            checks: tally.checks,
            healthy: tally.healthy,
            uptime: tally.uptime(),
            mean_ms: tally.mean_response_ms(),
        }
    }
}

/// `GET /extractors/{site_key}/uptime`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UptimeSeries {
    /// The extractor.
    pub site_key: String,
    /// Its buckets.
    #[serde(flatten)]
    pub buckets: Buckets,
}

/// `GET /streams/{id}/uptime`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StreamUptimeSeries {
    /// The stream.
    pub stream_id: i64,
    /// Its buckets.
    #[serde(flatten)]
    pub buckets: Buckets,
}

/// An uptime series: every bucket of a range, empty ones too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Buckets {
    /// `1h` or `1d`.
    #[schema(schema_with = step_schema)]
    pub step: String,
    /// Start of the first bucket.
    pub from: String,
    /// The requested end.
    pub to: String,
    /// Every bucket from `from` to `to`, oldest first (empty ones too).
    pub series: Vec<SeriesPoint>,
    /// All buckets together.
    pub total: SeriesPoint,
}

/// One extractor's part of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ExtractorRunDto {
    /// The extractor.
    pub site_key: String,
    /// Streams it reported.
    pub stream_count: i64,
    /// ...of which healthy.
    pub live_count: i64,
    /// Its own duration (not the checks), ms.
    pub duration_ms: i64,
    /// Why it failed, if it did.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<ExtractorRunRow> for ExtractorRunDto {
    fn from(row: ExtractorRunRow) -> Self {
        Self {
            site_key: row.site_key,
            stream_count: row.stream_count,
            live_count: row.live_count,
            duration_ms: row.duration_ms,
            error: row.error,
        }
    }
}

/// One extraction run with its per-extractor outcomes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "id": 12, "trigger": "schedule", "started_at": "2026-03-08T04:58:00.000Z",
    "finished_at": "2026-03-08T04:58:03.000Z", "stream_count": 8, "live_count": 5,
    "extractors": [{"site_key": "demo", "stream_count": 3, "live_count": 2, "duration_ms": 412, "error": null}]
}))]
pub struct RunDto {
    /// Run id.
    pub id: i64,
    /// `startup`, `schedule`, `manual` or `cli`.
    #[schema(schema_with = trigger_schema)]
    pub trigger: String,
    /// Start.
    pub started_at: String,
    /// End of the checks.
    pub finished_at: String,
    /// Streams found.
    pub stream_count: i64,
    /// Healthy streams.
    pub live_count: i64,
    /// Each extractor that ran, by site_key.
    pub extractors: Vec<ExtractorRunDto>,
}

impl RunDto {
    fn new(row: RunRow, extractors: Vec<ExtractorRunDto>) -> Self {
        Self {
            id: row.id,
            trigger: row.trigger,
            started_at: row.started_at,
            finished_at: row.finished_at,
            stream_count: row.stream_count,
            live_count: row.live_count,
            extractors,
        }
    }
}

/// `GET /runs`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RunsPage {
    /// Runs, newest first.
    pub runs: Vec<RunDto>,
    /// Their number.
    pub count: usize,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Raw query of the paginated stream lists; parsed by hand so errors name
/// the parameter. The `param` attributes document what the parsing accepts;
/// an empty value counts as absent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only entries at or after this time: RFC 3339 or unix seconds.
    #[param(schema_with = page_from_schema, required = false, example = "2026-03-08T00:00:00Z")]
    from: Option<String>,
    /// Only entries before this time: RFC 3339 or unix seconds; after `from`.
    #[param(schema_with = page_to_schema, required = false, example = 1772946000)]
    to: Option<String>,
    /// Page size.
    #[param(value_type = u32, required = false, nullable = false, minimum = 1, maximum = 1000, default = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (opaque).
    #[param(value_type = String, required = false, nullable = false, pattern = "^[A-Za-z0-9_-]*={0,2}$")]
    cursor: Option<String>,
}

/// Raw query of `GET /extractors/{site_key}/uptime`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Start: RFC 3339 or unix seconds.
    #[param(schema_with = series_from_schema, required = false, example = "2026-03-07T00:00:00Z")]
    from: Option<String>,
    /// End: RFC 3339 or unix seconds.
    #[param(schema_with = series_to_schema, required = false, example = "2026-03-08T00:00:00Z")]
    to: Option<String>,
    /// Bucket width; at most 10000 buckets per series.
    #[param(schema_with = step_param_schema, required = false)]
    step: Option<String>,
}

/// Raw query of `GET /runs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Page size.
    #[param(value_type = u32, required = false, nullable = false, minimum = 1, maximum = 1000, default = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (opaque).
    #[param(value_type = String, required = false, nullable = false, pattern = "^[A-Za-z0-9_-]*={0,2}$")]
    cursor: Option<String>,
}

fn page_from_schema() -> Schema {
    time_schema("Only entries at or after this time (RFC 3339 or unix seconds).")
}

fn page_to_schema() -> Schema {
    time_schema("Only entries before this time (RFC 3339 or unix seconds); after `from`.")
}

fn series_from_schema() -> Schema {
    time_schema(
        "Start (RFC 3339 or unix seconds), floored to the step; default: 24 hours before `to` \
for `1h`, 30 days for `1d`.",
    )
}

fn series_to_schema() -> Schema {
    time_schema("End (RFC 3339 or unix seconds), after `from`; default: now.")
}

/// `step`: the widths of an uptime bucket.
fn step_schema() -> Object {
    string_enum(
        [Step::Hour.as_str(), Step::Day.as_str()],
        "Bucket width: an hour or a day.",
    )
}

/// `step` of `GET /extractors/{site_key}/uptime`.
fn step_param_schema() -> Object {
    string_enum_with_default(
        [Step::Hour.as_str(), Step::Day.as_str()],
        "Bucket width: an hour or a day; at most 10000 buckets per series.",
        Step::Hour.as_str(),
    )
}

/// `kind` of a state change.
fn event_kind_schema() -> Object {
    string_enum(
        EventKind::ALL.map(EventKind::as_str),
        "`appeared`, `went_down`, `recovered` or `inactive`.",
    )
}

/// `trigger` of a run.
fn trigger_schema() -> Object {
    string_enum(RunTrigger::ALL.map(RunTrigger::as_str), "What started the run.")
}

/// Parses a time parameter: RFC 3339 (any offset) or unix seconds.
pub fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = super::present(value) else {
        return Ok(None);
    };
    let parsed = if value.bytes().all(|b| b.is_ascii_digit()) || value.starts_with('-') {
        value
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    };
    parsed
        // Stored timestamps have four-digit years; beyond them text order breaks.
        .filter(|at| (0..=9999).contains(&chrono::Datelike::year(at)))
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name}: {value:?} is not an RFC 3339 time or unix seconds"
            ))
        })
}

fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<TimeRange, ApiError> {
    let range = TimeRange {
        from: parse_time("from", from)?,
        to: parse_time("to", to)?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && from >= to
    {
        return Err(ApiError::BadRequest("from: must be before to".to_owned()));
    }
    Ok(range)
}

fn parse_limit(value: Option<&str>) -> Result<u32, ApiError> {
    Ok(super::parse_limit(value, MAX_PAGE_LIMIT)?.unwrap_or(DEFAULT_PAGE_LIMIT))
}

fn parse_id(what: &str, path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::BadRequest(format!("{what}: {}", e.body_text())))?;
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("{what}: {raw:?} is not a positive integer id")))
}

/// Cursors are base64url of `tag|fields`, so one endpoint's cursor is not
/// mistaken for another's; clients treat them as opaque.
fn encode_cursor(tag: &str, fields: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}|{fields}"))
}

fn decode_cursor(tag: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest(format!("cursor: {value:?} is not a cursor of this list"));
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix('|'))
        .map(|fields| Some(fields.to_owned()))
        .ok_or_else(bad)
}

fn encode_position(tag: &str, position: &Position) -> String {
    encode_cursor(tag, &format!("{}|{}", position.at, position.id))
}

fn decode_position(tag: &str, value: Option<&str>) -> Result<Option<Position>, ApiError> {
    let Some(fields) = decode_cursor(tag, value)? else {
        return Ok(None);
    };
    fields
        .split_once('|')
        .and_then(|(at, id)| {
            Some(Position {
                at: at.to_owned(),
                id: id.parse().ok()?,
            })
        })
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest("cursor: not a cursor of this list".to_owned()))
}

/// Splits a fetched `limit + 1` rows into the page and whether more follow.
fn take_page<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    (rows, more)
}

async fn require_stream(state: &AppState, id: i64) -> Result<(), ApiError> {
    if state.db.stream_exists(id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no stream with id {id}")))
    }
}

/// A request for one page of a stream's timeline (its checks or its
/// events), validated: every parameter parsed and the stream known.
struct StreamPage {
    id: i64,
    range: TimeRange,
    limit: u32,
    /// Where the previous page ended; `None` for the first page.
    after: Option<Position>,
}

impl StreamPage {
    /// Parses the path and query; `tag` marks the list the cursor belongs to.
    async fn parse(
        state: &AppState,
        path: Result<Path<String>, PathRejection>,
        query: &PageQuery,
        tag: &str,
    ) -> Result<Self, ApiError> {
        let id = parse_id("id", path)?;
        let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
        let limit = parse_limit(query.limit.as_deref())?;
        let after = decode_position(tag, query.cursor.as_deref())?;
        require_stream(state, id).await?;
        Ok(Self {
            id,
            range,
            limit,
            after,
        })
    }

    /// Cuts `rows`, fetched as `limit + 1`, to the page, with the cursor of
    /// the next page when more follow (`position` of the last row).
    fn cut<T>(&self, rows: Vec<T>, tag: &str, position: impl Fn(&T) -> Position) -> (Vec<T>, Option<String>) {
        let (rows, more) = take_page(rows, self.limit);
        let next_cursor = rows
            .last()
            .filter(|_| more)
            .map(|last| encode_position(tag, &position(last)));
        (rows, next_cursor)
    }
}

/// One stream (any, active or not) with its uptime over 1 h, 24 h, 7 d and 30 d.
#[utoipa::path(
    get,
    path = "/streams/{id}",
    tag = TAG_STREAMS,
    operation_id = "get_stream",
    params(("id" = i64, Path, description = "Stream id.", minimum = 1, example = 7)),
    responses(
        (status = 200, description = "The stream object plus its history summary.", body = StreamDetail),
        (status = 400, description = "`id` is not a positive integer.", body = ErrorBody,
            example = json!({"error": "id: \"x\" is not a positive integer id"})),
        (status = 404, description = "No stream with that id.", body = ErrorBody,
            example = json!({"error": "no stream with id 7"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn stream_detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<StreamDetail>, ApiError> {
    let id = parse_id("id", path)?;
    let detail = state
        .db
        .stream_detail(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no stream with id {id}")))?;
    let latest_check = state.db.latest_check(id).await?.map(CheckDto::from);
    let now = Utc::now();
    let spans = [
        TimeDelta::hours(1),
        TimeDelta::hours(24),
        TimeDelta::days(7),
        TimeDelta::days(30),
    ];
    let windows = spans.map(|span| (now - span, now));
    let tallies = state.db.stream_tallies(id, &windows).await?;
    let window = |i: usize| UptimeDto::new(windows[i].0, now, tallies.get(i).copied().unwrap_or_default());
    let base = public_base(&state.config.server, &headers);
    Ok(Json(StreamDetail {
        stream: StreamDto::new(detail.stream, &state.proxy.signer, &base),
        active: detail.active,
        first_seen: detail.first_seen,
        latest_check,
        uptime: UptimeWindows {
            hour: window(0),
            day: window(1),
            week: window(2),
            month: window(3),
        },
    }))
}

/// A stream's stored health checks, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/streams/{id}/history",
    tag = TAG_STREAMS,
    operation_id = "get_stream_history",
    params(("id" = i64, Path, description = "Stream id.", minimum = 1, example = 7), PageQuery),
    responses(
        (status = 200, description = "One page of checks.", body = HistoryPage),
        (status = 400, description = "`id` or a query parameter is invalid; the message names it.",
            body = ErrorBody, example = json!({"error": "from: must be before to"})),
        (status = 404, description = "No stream with that id.", body = ErrorBody,
            example = json!({"error": "no stream with id 7"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn stream_history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    const TAG: &str = "h";
    let page = StreamPage::parse(&state, path, &query, TAG).await?;
    let rows = state
        .db
        .stream_checks(page.id, page.range, page.after.as_ref(), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page.cut(rows, TAG, |last| Position {
        at: last.checked_at.clone(),
        id: last.id,
    });
    let checks: Vec<CheckDto> = rows.into_iter().map(CheckDto::from).collect();
    Ok(Json(HistoryPage {
        stream_id: page.id,
        count: checks.len(),
        checks,
        next_cursor,
    }))
}

/// A stream's state changes (appeared, went down, recovered, inactive), newest first.
#[utoipa::path(
    get,
    path = "/streams/{id}/events",
    tag = TAG_STREAMS,
    operation_id = "get_stream_events",
    params(("id" = i64, Path, description = "Stream id.", minimum = 1, example = 7), PageQuery),
    responses(
        (status = 200, description = "One page of state changes.", body = EventsPage),
        (status = 400, description = "`id` or a query parameter is invalid; the message names it.",
            body = ErrorBody, example = json!({"error": "cursor: \"x\" is not a cursor of this list"})),
        (status = 404, description = "No stream with that id.", body = ErrorBody,
            example = json!({"error": "no stream with id 7"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn stream_events(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    const TAG: &str = "e";
    let page = StreamPage::parse(&state, path, &query, TAG).await?;
    let rows = state
        .db
        .stream_events(page.id, page.range, page.after.as_ref(), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page.cut(rows, TAG, |last| Position {
        at: last.at.clone(),
        id: last.id,
    });
    let events: Vec<EventDto> = rows.into_iter().map(EventDto::from).collect();
    Ok(Json(EventsPage {
        stream_id: page.id,
        count: events.len(),
        events,
        next_cursor,
    }))
}

/// An extractor's uptime as a series of hourly or daily buckets, for charts.
#[utoipa::path(
    get,
    path = "/extractors/{site_key}/uptime",
    tag = TAG_EXTRACTION,
    operation_id = "get_extractor_uptime",
    params(("site_key" = String, Path, description = "Extractor key.", example = "demo"), SeriesQuery),
    responses(
        (status = 200, description = "Every bucket from `from` to `to`, empty ones too.", body = UptimeSeries),
        (status = 400, description = "A query parameter is invalid, or the range has too many buckets.",
            body = ErrorBody, example = json!({"error": "step: \"5m\" is not one of 1h, 1d"})),
        (status = 404, description = "No extractor with that key.", body = ErrorBody,
            example = json!({"error": "no extractor with site_key \"nope\""})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn extractor_uptime(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<SeriesQuery>,
) -> Result<Json<UptimeSeries>, ApiError> {
    let Path(site_key) = path.map_err(|e| ApiError::BadRequest(format!("site_key: {}", e.body_text())))?;
    let range = SeriesRange::parse(&query)?;
    if !state.db.extractor_exists(&site_key).await? {
        return Err(ApiError::NotFound(format!(
            "no extractor with site_key {site_key:?}"
        )));
    }
    let buckets = range.buckets(&state, SeriesOf::Extractor(&site_key)).await?;
    Ok(Json(UptimeSeries { site_key, buckets }))
}

/// A stream's uptime and response time as a series of hourly or daily
/// buckets, for charts (the watch page's uptime bars and history).
#[utoipa::path(
    get,
    path = "/streams/{id}/uptime",
    tag = TAG_STREAMS,
    operation_id = "get_stream_uptime",
    params(("id" = i64, Path, description = "Stream id.", minimum = 1, example = 7), SeriesQuery),
    responses(
        (status = 200, description = "Every bucket from `from` to `to`, empty ones too.", body = StreamUptimeSeries),
        (status = 400, description = "`id` or a query parameter is invalid, or the range has too many buckets.",
            body = ErrorBody, example = json!({"error": "step: \"5m\" is not one of 1h, 1d"})),
        (status = 404, description = "No stream with that id.", body = ErrorBody,
            example = json!({"error": "no stream with id 7"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn stream_uptime(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<SeriesQuery>,
) -> Result<Json<StreamUptimeSeries>, ApiError> {
    let id = parse_id("id", path)?;
    let range = SeriesRange::parse(&query)?;
    require_stream(&state, id).await?;
    let buckets = range.buckets(&state, SeriesOf::Stream(id)).await?;
    Ok(Json(StreamUptimeSeries {
        stream_id: id,
        buckets,
    }))
}

/// The buckets a series query asks for, checked.
struct SeriesRange {
    step: Step,
    /// Start of the first bucket.
    first: DateTime<Utc>,
    to: DateTime<Utc>,
    buckets: i64,
}

impl SeriesRange {
    fn parse(query: &SeriesQuery) -> Result<Self, ApiError> {
        let step = match query.step.as_deref().map(str::trim) {
            None | Some("") | Some("1h") => Step::Hour,
            Some("1d") => Step::Day,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "step: {other:?} is not one of 1h, 1d"
                )));
            }
        };
        let to = parse_time("to", query.to.as_deref())?.unwrap_or_else(Utc::now);
        let from = match parse_time("from", query.from.as_deref())? {
            Some(from) => from,
            None => {
                to - match step {
                    Step::Hour => DEFAULT_SERIES_SPAN_HOURLY,
                    Step::Day => DEFAULT_SERIES_SPAN_DAILY,
                }
            }
        };
        if from >= to {
            return Err(ApiError::BadRequest("from: must be before to".to_owned()));
        }
        let first = step.floor(from);
        let (span, width) = (
            (to - first).num_milliseconds(),
            step.duration().num_milliseconds(),
        );
        let buckets = (span + width - 1) / width;
        if buckets > MAX_SERIES_POINTS {
            return Err(ApiError::BadRequest(format!(
                "step: {buckets} buckets of {} from {} to {}; at most {MAX_SERIES_POINTS} (use a longer step or a shorter range)",
                step.as_str(),
                format_timestamp(first),
                format_timestamp(to)
            )));
        }
        Ok(Self {
            step,
            first,
            to,
            buckets,
        })
    }

    /// Every bucket of the range for `of`, empty ones too, and their total.
    async fn buckets(&self, state: &AppState, of: SeriesOf<'_>) -> Result<Buckets, ApiError> {
        let rows = state.db.uptime_series(of, self.first, self.to, self.step).await?;
        let mut rows = rows.into_iter().peekable();
        let mut series = Vec::with_capacity(self.buckets.max(0) as usize);
        let mut total = Tally::default();
        let mut ts = self.first;
        while ts < self.to {
            let key = format_timestamp(ts);
            let tally = match rows.peek() {
                Some(row) if row.ts == key => rows.next().map(|row| row.tally).unwrap_or_default(),
                _ => Tally::default(),
            };
            total += tally;
            series.push(SeriesPoint::new(key, tally));
            ts += self.step.duration();
        }
        Ok(Buckets {
            step: self.step.as_str().to_owned(),
            from: format_timestamp(self.first),
            to: format_timestamp(self.to),
            series,
            total: SeriesPoint::new(format_timestamp(self.first), total),
        })
    }
}

/// Stored extraction runs with per-extractor outcomes, newest first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = TAG_EXTRACTION,
    operation_id = "list_runs",
    params(RunsQuery),
    responses(
        (status = 200, description = "One page of runs.", body = RunsPage),
        (status = 400, description = "A query parameter is invalid; the message names it.",
            body = ErrorBody, example = json!({"error": "limit: \"0\" is not an integer from 1 to 1000"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<RunsPage>, ApiError> {
    const TAG: &str = "r";
    let limit = parse_limit(query.limit.as_deref())?;
    let before = match decode_cursor(TAG, query.cursor.as_deref())? {
        None => None,
        Some(fields) => Some(
            fields
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest("cursor: not a cursor of this list".to_owned()))?,
        ),
    };
    let rows = state.db.runs_page(before, limit + 1).await?;
    let (rows, more) = take_page(rows, limit);
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(TAG, &last.id.to_string()));
    let mut outcomes = match (rows.last(), rows.first()) {
        (Some(oldest), Some(newest)) => state.db.extractor_runs_between(oldest.id, newest.id).await?,
        _ => Vec::new(),
    }
    .into_iter()
    .peekable();
    // Both lists are ordered by run id, newest first: one merge pass.
    let runs: Vec<RunDto> = rows
        .into_iter()
        .map(|row| {
            let mut extractors = Vec::new();
            while let Some(outcome) = outcomes.next_if(|o| o.run_id >= row.id) {
                if outcome.run_id == row.id {
                    extractors.push(ExtractorRunDto::from(outcome));
                }
            }
            RunDto::new(row, extractors)
        })
        .collect();
    Ok(Json(RunsPage {
        count: runs.len(),
        runs,
        next_cursor,
    }))
}

/// One extraction run with its per-extractor outcomes.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = TAG_EXTRACTION,
    operation_id = "get_run",
    params(("id" = i64, Path, description = "Run id.", minimum = 1, example = 12)),
    responses(
        (status = 200, description = "The run.", body = RunDto),
        (status = 400, description = "`id` is not a positive integer.", body = ErrorBody,
            example = json!({"error": "id: \"x\" is not a positive integer id"})),
        (status = 404, description = "No run with that id.", body = ErrorBody,
            example = json!({"error": "no run with id 12"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn run_detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RunDto>, ApiError> {
    let id = parse_id("id", path)?;
    let row = state
        .db
        .run_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no run with id {id}")))?;
    let extractors = state
        .db
        .extractor_runs_between(id, id)
        .await?
        .into_iter()
        .map(ExtractorRunDto::from)
        .collect();
    Ok(Json(RunDto::new(row, extractors)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_request(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn times_parse_from_rfc3339_and_unix_seconds() {
        let expected = DateTime::from_timestamp(1_772_946_000, 0);
        assert_eq!(parse_time("from", Some("1772946000")).ok().flatten(), expected);
        assert_eq!(
            parse_time("from", Some("2026-03-08T05:00:00Z")).ok().flatten(),
            expected
        );
        assert_eq!(
            parse_time("from", Some("2026-03-08T06:00:00+01:00"))
                .ok()
                .flatten(),
            expected
        );
        assert_eq!(parse_time("from", Some("")).ok().flatten(), None);
        assert_eq!(parse_time("from", None).ok().flatten(), None);
    }

    #[test]
    fn bad_times_name_their_parameter() {
        assert!(bad_request(parse_time("to", Some("yesterday"))).starts_with("to: "));
        assert!(bad_request(parse_time("from", Some("2026-13-01T00:00:00Z"))).starts_with("from: "));
        assert!(bad_request(parse_time("from", Some("99999999999999999"))).starts_with("from: "));
        assert!(bad_request(parse_range(Some("20"), Some("10"))).starts_with("from: "));
    }

    #[test]
    fn limits_default_and_stay_in_bounds() {
        assert_eq!(parse_limit(None).ok(), Some(DEFAULT_PAGE_LIMIT));
        assert_eq!(parse_limit(Some("1000")).ok(), Some(1000));
        for bad in ["0", "1001", "-1", "ten"] {
            assert!(bad_request(parse_limit(Some(bad))).starts_with("limit: "));
        }
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let position = Position {
            at: "2026-03-08T05:00:00.000Z".to_owned(),
            id: 42,
        };
        let cursor = encode_position("h", &position);
        assert_eq!(decode_position("h", Some(&cursor)).ok().flatten(), Some(position));
        assert!(bad_request(decode_position("e", Some(&cursor))).starts_with("cursor: "));
        assert!(bad_request(decode_position("h", Some("!!"))).starts_with("cursor: "));
        assert!(bad_request(decode_position("h", Some(&encode_cursor("h", "x")))).starts_with("cursor: "));
    }
}
