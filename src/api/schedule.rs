//! The F1 calendar over HTTP (README "F1 calendar and polling"):
//! `GET /schedule` with statuses
//! computed at request time, and `POST /schedule/refresh`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::Object;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorBody, TAG_SCHEDULE, string_enum};
use super::{ApiError, AppState};
use crate::model::SessionType;
use crate::model::format_timestamp;
use crate::schedule::status::{SessionTiming, next_session};
use crate::schedule::{Calendar, Race, ScheduleError, Session, SessionStatus};

/// The schedule routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_schedule))
        .routes(routes!(refresh))
}

/// `GET /schedule`
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ScheduleResponse {
    /// Season of the calendar; `null` before the first refresh.
    #[schema(required = true)]
    pub season: Option<String>,
    /// Races in round order.
    pub races: Vec<RaceDto>,
    /// When the calendar was fetched; `null` before the first refresh.
    #[schema(required = true)]
    pub updated_at: Option<String>,
    /// The next session to start (time known).
    #[schema(required = true)]
    pub next_session: Option<SessionRefDto>,
    /// The session live now, if any.
    #[schema(required = true)]
    pub live_session: Option<SessionRefDto>,
}

/// One race weekend.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct RaceDto {
    /// Round within the season.
    pub round: u32,
    /// Grand Prix name.
    pub race_name: String,
    /// Circuit name.
    pub circuit: String,
    /// Circuit id.
    pub circuit_id: String,
    /// Country.
    pub country: String,
    /// Town.
    pub locality: String,
    /// Race day, `YYYY-MM-DD`.
    pub date: String,
    /// Reference page.
    #[schema(required = true)]
    pub url: Option<String>,
    /// Sessions in time order.
    pub sessions: Vec<SessionDto>,
}

/// One session with its status at request time.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "type": "race", "name": "Race", "date": "2026-03-08", "start_utc": "2026-03-08T04:00:00.000Z",
    "duration_minutes": 120, "status": "upcoming"
}))]
pub struct SessionDto {
    /// `fp1`, `fp2`, `fp3`, `sprint_qualifying`, `sprint`, `qualifying`, `race`.
    #[serde(rename = "type")]
    #[schema(schema_with = session_type_schema)]
    pub session_type: String,
    /// Display name.
    pub name: String,
    /// Day (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Start (RFC 3339 UTC); `null` when not yet announced.
    #[schema(required = true)]
    pub start_utc: Option<String>,
    /// Planned duration.
    pub duration_minutes: u32,
    /// `past`, `live` or `upcoming`.
    #[schema(schema_with = session_status_schema)]
    pub status: SessionStatus,
}

/// A session named with its race (`next_session`, `live_session`).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct SessionRefDto {
    /// Round of its race.
    pub round: u32,
    /// Its race's name.
    pub race_name: String,
    /// The session.
    #[serde(flatten)]
    pub session: SessionDto,
}

/// `POST /schedule/refresh`
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct RefreshResponse {
    /// Always `refreshed`.
    pub status: String,
}

/// `type` of a session.
fn session_type_schema() -> Object {
    string_enum(SessionType::ALL.iter().map(|s| s.as_str()), "The session type.")
}

/// `status` of a session, computed at request time.
fn session_status_schema() -> Object {
    string_enum(
        [SessionStatus::Past, SessionStatus::Live, SessionStatus::Upcoming].map(SessionStatus::as_str),
        "`past`, `live` or `upcoming`, computed when asked.",
    )
}

impl ScheduleResponse {
    /// The calendar as seen at `now`.
    pub fn new(calendar: &Calendar, timing: &SessionTiming, now: DateTime<Utc>) -> Self {
        let session_dto = |session: &Session| SessionDto {
            session_type: session.session_type.as_str().to_owned(),
            name: session.name.clone(),
            date: session.date.to_string(),
            start_utc: session.start.map(format_timestamp),
            duration_minutes: session.duration_minutes,
            status: timing.status(session, now),
        };
        let reference = |(race, session): (&Race, &Session)| SessionRefDto {
            round: race.round,
            race_name: race.race_name.clone(),
            session: session_dto(session),
        };
        Self {
            season: calendar.season.clone(),
            races: calendar
                .races
                .iter()
                .map(|race| RaceDto {
                    round: race.round,
                    race_name: race.race_name.clone(),
                    circuit: race.circuit.clone(),
                    circuit_id: race.circuit_id.clone(),
                    country: race.country.clone(),
                    locality: race.locality.clone(),
                    date: race.date.to_string(),
                    url: race.url.clone(),
                    sessions: race.sessions.iter().map(session_dto).collect(),
                })
                .collect(),
            updated_at: calendar.updated_at.map(format_timestamp),
            next_session: next_session(calendar, now).map(reference),
            live_session: timing.live_session(calendar, now).map(reference),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(err: ScheduleError) -> Self {
        if err.is_upstream() {
            tracing::warn!(error = %err, "calendar refresh failed; the stored calendar is kept");
            Self::BadGateway(format!("{err}; the stored calendar is kept"))
        } else {
            tracing::error!(error = %err, "calendar unavailable");
            Self::Internal
        }
    }
}

/// The stored F1 calendar with each session's status at request time.
#[utoipa::path(
    get,
    path = "/schedule",
    tag = TAG_SCHEDULE,
    operation_id = "get_schedule",
    responses(
        (status = 200, description = "The calendar (empty before the first refresh).",
            body = ScheduleResponse),
        (status = 500, description = "The stored calendar could not be read (details are logged).",
            body = ErrorBody, example = json!({"error": "internal error"})),
    )
)]
async fn get_schedule(State(state): State<AppState>) -> Result<Json<ScheduleResponse>, ApiError> {
    let calendar = state.schedule.calendar().await?;
    let now = state.schedule.now();
    Ok(Json(ScheduleResponse::new(
        &calendar,
        &state.schedule.timing(),
        now,
    )))
}

/// Fetches the calendar now from `schedule.url` and stores it.
#[utoipa::path(
    post,
    path = "/schedule/refresh",
    tag = TAG_SCHEDULE,
    operation_id = "refresh_schedule",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The calendar was fetched and stored.", body = RefreshResponse,
            example = json!({"status": "refreshed"})),
        (status = 401, description = "`auth.admin_token` is set and the request has no bearer token.",
            body = ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"f1-stream\"`")),
            example = json!({"error": "this request needs an Authorization: Bearer header with auth.admin_token"})),
        (status = 403, description = "A wrong token; or no token is configured and the request does not come \
from this machine directly.", body = ErrorBody,
            example = json!({"error": "the bearer token is not auth.admin_token"})),
        (status = 500, description = "The calendar could not be stored (details are logged).",
            body = ErrorBody, example = json!({"error": "internal error"})),
        (status = 502, description = "The calendar source failed or answered something unusable; \
the stored calendar is kept.", body = ErrorBody,
            example = json!({"error": "calendar source answered HTTP 503; the stored calendar is kept"})),
    )
)]
async fn refresh(State(state): State<AppState>) -> Result<Json<RefreshResponse>, ApiError> {
    state.schedule.refresh().await?;
    Ok(Json(RefreshResponse {
        status: "refreshed".to_owned(),
    }))
}
