//! Durable health history: hourly rollups and state-change events
//! written inside [`Database::store_run`]'s transaction, the reads behind the
//! history API (checks, events, uptime over any range, runs), and the
//! retention primitives (batched pruning, `PRAGMA optimize`, incremental
//! vacuum). The schema is `migrations/0003_history.sql`, documented for SQL
//! users in `docs/SQL.md`.

use std::ops::{Add, AddAssign};
use std::path::Path;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::{Database, DbError, RunRow, StreamRow};
use crate::model::{HealthResult, format_timestamp};

/// Lower bound of an open range: before every stored timestamp.
const MIN_TIMESTAMP: &str = "0000-01-01T00:00:00.000Z";
/// Upper bound of an open range: after every stored timestamp.
const MAX_TIMESTAMP: &str = "9999-12-31T23:59:59.999Z";
/// Setting holding the hour before which raw checks have been pruned. Hours
/// before it are answered from rollups alone (see [`Database::stream_tallies`]).
pub const PRUNED_BEFORE_SETTING: &str = "history_pruned_before";
/// An existing database without incremental auto-vacuum is converted (one
/// `VACUUM`) at open when it is at most this big; a bigger one would stall
/// startup, so it is left as is with a warning (see `docs/SQL.md`).
pub const AUTO_VACUUM_CONVERT_MAX_BYTES: i64 = 256 * 1024 * 1024;
/// `PRAGMA auto_vacuum` value of `INCREMENTAL`.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;
/// Rows `PRAGMA optimize` may read per index, so it stays quick on big tables.
const ANALYSIS_LIMIT: u32 = 1000;

/// What changed about a stream (`stream_events.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// First seen, or reported again after being inactive.
    Appeared,
    /// Healthy before, unhealthy now.
    WentDown,
    /// Unhealthy before, healthy now.
    Recovered,
    /// Its extractor stopped reporting it.
    Inactive,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 4] = [Self::Appeared, Self::WentDown, Self::Recovered, Self::Inactive];

    /// The name stored in `stream_events.kind` and served by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appeared => "appeared",
            Self::WentDown => "went_down",
            Self::Recovered => "recovered",
            Self::Inactive => "inactive",
        }
    }
}

/// A time range, `from` inclusive and `to` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time included.
    pub from: Option<DateTime<Utc>>,
    /// First time excluded.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// The page bounds as stored text: the first time included, and where
    /// the newest-first page starts, `(at, id)` inclusive: just below `to`
    /// (stored times are whole milliseconds), or at `after` when that is
    /// earlier. One inclusive upper bound keeps the whole condition an index
    /// range, so a deep page costs what the first one does; open ends become
    /// sentinels instead of `? IS NULL OR ...`, which no index serves.
    fn page_bounds(&self, after: Option<&Position>) -> (String, String, i64) {
        let from = self
            .from
            .map_or_else(|| MIN_TIMESTAMP.to_owned(), format_timestamp);
        let below_to = self.to.map_or_else(
            || MAX_TIMESTAMP.to_owned(),
            |to| format_timestamp(to.trunc_subsecs(3) - TimeDelta::milliseconds(1)),
        );
        match after {
            // After the last row served: rows before its time, or at its
            // time with a smaller id (the query's `at < ?3 OR id < ?4`).
            Some(p) if p.at <= below_to => (from, p.at.clone(), p.id),
            _ => (from, below_to, i64::MAX),
        }
    }
}

/// Where a newest-first page ends: the last row's timestamp and id. The next
/// page holds the rows strictly before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// `checked_at` (checks) or `at` (events) of the last row served.
    pub at: String,
    /// Its id, which breaks ties between equal timestamps.
    pub id: i64,
}

/// One stored health check (`health_checks`).
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct CheckRow {
    /// Row id.
    pub id: i64,
    /// The stream checked.
    pub stream_id: i64,
    /// The run it belongs to.
    pub run_id: Option<i64>,
    /// When the check started.
    pub checked_at: String,
    /// Healthy.
    pub is_live: bool,
    /// Request start to body read, ms.
    pub response_time_ms: Option<i64>,
    /// Request start to response head, ms.
    pub ttfb_ms: Option<i64>,
    /// Final HTTP status.
    pub http_status: Option<i64>,
    /// Highest declared bitrate.
    pub bitrate: i64,
    /// Why it failed.
    pub error_kind: Option<String>,
    /// Failure message.
    pub error: Option<String>,
    /// `master` or `media`.
    pub playlist_kind: Option<String>,
    /// `live`, `event`, `vod` or `unknown`.
    pub stream_type: String,
}

/// One state change (`stream_events`).
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// The stream.
    pub stream_id: i64,
    /// `appeared`, `went_down`, `recovered` or `inactive`.
    pub kind: String,
    /// When: the causing check's `checked_at`, or the run's end for `inactive`.
    pub at: String,
    /// The run that saw the change.
    pub run_id: Option<i64>,
    /// The causing check (it may have been pruned since).
    pub check_id: Option<i64>,
    /// Health after the change.
    pub is_live: bool,
    /// Error kind of the causing check.
    pub error_kind: Option<String>,
    /// Error message of the causing check.
    pub error: Option<String>,
}

/// A stream with the columns only its detail view shows.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct StreamDetailRow {
    /// The columns every stream query returns.
    #[sqlx(flatten)]
    pub stream: StreamRow,
    /// Reported by its extractor's latest run.
    pub active: bool,
    /// When it was first reported.
    pub first_seen: String,
}

/// Additive counts of a set of checks: one rollup row, a sum of them, or an
/// aggregate of raw checks; adding two gives the counts of the union.
#[derive(Debug, Clone, Copy, Default, FromRow, PartialEq, Eq)]
pub struct Tally {
    /// Checks.
    pub checks: i64,
    /// Healthy checks.
    pub healthy: i64,
    /// Checks with a response time.
    pub response_samples: i64,
    /// Sum of those response times, ms.
    pub response_ms_sum: i64,
    /// Smallest response time, ms.
    pub response_ms_min: Option<i64>,
    /// Largest response time, ms.
    pub response_ms_max: Option<i64>,
}

impl Tally {
    /// Share of healthy checks, `None` without checks.
    pub fn uptime(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.healthy as f64 / self.checks as f64)
    }

    /// Mean response time over the checks that have one, ms.
    pub fn mean_response_ms(&self) -> Option<f64> {
        (self.response_samples > 0).then(|| self.response_ms_sum as f64 / self.response_samples as f64)
    }
}

impl Add for Tally {
    type Output = Tally;

    fn add(self, other: Tally) -> Tally {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        Tally {
            checks: self.checks + other.checks,
            healthy: self.healthy + other.healthy,
            response_samples: self.response_samples + other.response_samples,
            response_ms_sum: self.response_ms_sum + other.response_ms_sum,
            response_ms_min: pick(self.response_ms_min, other.response_ms_min, i64::min),
            response_ms_max: pick(self.response_ms_max, other.response_ms_max, i64::max),
        }
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        *self = *self + other;
    }
}

/// One bucket of an extractor's uptime series.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct SeriesRow {
    /// Start of the bucket.
    pub ts: String,
    /// The bucket's counts.
    #[sqlx(flatten)]
    pub tally: Tally,
}

/// Whose checks an uptime series sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesOf<'a> {
    /// Every stream of the extractor with this key.
    Extractor(&'a str),
    /// The stream with this id.
    Stream(i64),
}

/// Width of the buckets of an uptime series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One hour (one rollup row per stream).
    Hour,
    /// One UTC day.
    Day,
}

impl Step {
    /// The bucket width.
    pub fn duration(self) -> TimeDelta {
        match self {
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// Start of the bucket holding `at`.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        floor_to(at, self.duration().num_seconds())
    }

    /// The name used by the API (`1h`, `1d`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }
}

/// One extractor's outcome in a run (`extractor_runs`).
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ExtractorRunRow {
    /// The run.
    pub run_id: i64,
    /// The extractor.
    pub site_key: String,
    /// Streams it reported.
    pub stream_count: i64,
    /// ...of which healthy.
    pub live_count: i64,
    /// Its own duration (not the checks), ms.
    pub duration_ms: i64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What one retention batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBatch {
    /// Raw checks deleted.
    pub deleted: u64,
}

/// Size figures of the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes per page.
    pub page_size: i64,
    /// Pages in the file.
    pub page_count: i64,
    /// Unused pages (returned to the OS by incremental vacuum).
    pub freelist_count: i64,
    /// `PRAGMA auto_vacuum`: 0 none, 1 full, 2 incremental.
    pub auto_vacuum: i64,
}

impl StorageStats {
    /// Whether pruned pages can be returned to the file system.
    pub fn is_incremental(&self) -> bool {
        self.auto_vacuum == AUTO_VACUUM_INCREMENTAL
    }
}

/// Start of the UTC hour holding `at`.
pub fn hour_start(at: DateTime<Utc>) -> DateTime<Utc> {
    floor_to(at, 3600)
}

fn floor_to(at: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(seconds) * seconds, 0).unwrap_or(at)
}

/// One stream with its extractor name and detail columns (the shared
/// stream columns, so [`StreamRow`] always matches, plus the detail ones).
const STREAM_DETAIL_SQL: &str = concat!(
    "SELECT d.*, t.active, t.first_seen FROM (",
    select_streams!(),
    "WHERE s.id = ?1) d JOIN streams t ON t.id = d.id"
);

/// A stream's newest raw check.
const LATEST_CHECK_SQL: &str =
    "SELECT id, stream_id, run_id, checked_at, is_live, response_time_ms, ttfb_ms, http_status,
     bitrate, error_kind, error, playlist_kind, stream_type
     FROM health_checks WHERE stream_id = ?1
     ORDER BY checked_at DESC, id DESC LIMIT 1";

/// A page of a stream's raw checks, newest first.
const CHECKS_PAGE_SQL: &str =
    "SELECT id, stream_id, run_id, checked_at, is_live, response_time_ms, ttfb_ms, http_status,
     bitrate, error_kind, error, playlist_kind, stream_type
     FROM health_checks
     WHERE stream_id = ?1 AND checked_at >= ?2 AND checked_at <= ?3
     AND (checked_at < ?3 OR id < ?4)
     ORDER BY checked_at DESC, id DESC LIMIT ?5";

/// A page of a stream's events, newest first.
const EVENTS_PAGE_SQL: &str = "SELECT id, stream_id, kind, at, run_id, check_id, is_live, error_kind, error
     FROM stream_events
     WHERE stream_id = ?1 AND at >= ?2 AND at <= ?3 AND (at < ?3 OR id < ?4)
     ORDER BY at DESC, id DESC LIMIT ?5";

/// A stream's rollup hours in a range, summed.
const ROLLUP_TALLY_SQL: &str =
    "SELECT COALESCE(SUM(checks), 0) AS checks, COALESCE(SUM(healthy), 0) AS healthy,
     COALESCE(SUM(response_samples), 0) AS response_samples,
     COALESCE(SUM(response_ms_sum), 0) AS response_ms_sum,
     MIN(response_ms_min) AS response_ms_min,
     MAX(response_ms_max) AS response_ms_max
     FROM health_rollups_hourly
     WHERE stream_id = ?1 AND hour >= ?2 AND hour < ?3";

/// A stream's raw checks in a range, aggregated like a rollup.
const RAW_TALLY_SQL: &str = "SELECT COUNT(*) AS checks, COALESCE(SUM(is_live), 0) AS healthy,
     COUNT(response_time_ms) AS response_samples,
     COALESCE(SUM(response_time_ms), 0) AS response_ms_sum,
     MIN(response_time_ms) AS response_ms_min,
     MAX(response_time_ms) AS response_ms_max
     FROM health_checks
     WHERE stream_id = ?1 AND checked_at >= ?2 AND checked_at < ?3";

/// One retention batch. CROSS JOIN keeps `streams` the outer loop: each
/// stream's old checks are found by one `(stream_id, checked_at)` index probe.
const PRUNE_BATCH_SQL: &str = "DELETE FROM health_checks WHERE id IN (
     SELECT h.id FROM streams s CROSS JOIN health_checks h
     WHERE h.stream_id = s.id AND h.checked_at < ?1
     LIMIT ?2)";

/// A stream's state just before this run's check of it is stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct PreviousState {
    /// Health of its latest check.
    is_live: bool,
    /// Whether it has any check (false only for rows never checked).
    checked: bool,
}

impl PreviousState {
    /// The state a check of health `is_live` leaves behind.
    pub(super) fn after_check(is_live: bool) -> Self {
        Self {
            is_live,
            checked: true,
        }
    }
}

/// The stored state of every stream of `site_key`, by URL (absent: a new
/// stream), read in one query for a whole run: one query per stream cost
/// more than the rest of storing it.
pub(super) async fn previous_states(
    conn: &mut SqliteConnection,
    site_key: &str,
) -> Result<std::collections::HashMap<String, PreviousState>, sqlx::Error> {
    let rows: Vec<(String, bool, bool)> =
        sqlx::query_as("SELECT url, is_live, checked_at IS NOT NULL FROM streams WHERE site_key = ?1")
            .bind(site_key)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(url, is_live, checked)| (url, PreviousState { is_live, checked }))
        .collect())
}

/// One stored check, as [`push_check_events`] needs it.
pub(super) struct StoredCheck<'a> {
    /// The run.
    pub run_id: i64,
    /// The stream.
    pub stream_id: i64,
    /// The new `health_checks` row.
    pub check_id: i64,
    /// Its stored `checked_at`.
    pub checked_at: &'a str,
    /// Its verdict.
    pub health: &'a HealthResult,
}

/// A `stream_events` row waiting for [`insert_events`].
pub(super) struct PendingEvent<'a> {
    check: StoredCheck<'a>,
    kind: EventKind,
}

/// Queues the events `check` causes: the stream appears when it is new or
/// was not active before this run (`was_active`), and goes down or
/// recovers when its health differs from its previous check's.
pub(super) fn push_check_events<'a>(
    events: &mut Vec<PendingEvent<'a>>,
    check: StoredCheck<'a>,
    previous: Option<PreviousState>,
    was_active: bool,
) {
    let health = check.health;
    let appeared = previous.is_none() || !was_active;
    let changed = previous
        .filter(|previous| previous.checked && previous.is_live != health.is_live)
        .map(|_| {
            if health.is_live {
                EventKind::Recovered
            } else {
                EventKind::WentDown
            }
        });
    let kinds = [appeared.then_some(EventKind::Appeared), changed];
    for kind in kinds.into_iter().flatten() {
        events.push(PendingEvent {
            check: StoredCheck { ..check },
            kind,
        });
    }
}

/// Rows per multi-row `INSERT` of [`insert_events`] (8 parameters each).
const EVENT_BATCH: usize = 500;

/// Inserts queued events in order, many per statement, inside
/// `store_run`'s transaction.
pub(super) async fn insert_events(
    conn: &mut SqliteConnection,
    events: &[PendingEvent<'_>],
) -> Result<(), sqlx::Error> {
    for batch in events.chunks(EVENT_BATCH) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO stream_events (stream_id, kind, at, run_id, check_id, is_live, error_kind, error) ",
        );
        insert.push_values(batch, |mut row, event| {
            let check = &event.check;
            row.push_bind(check.stream_id)
                .push_bind(event.kind.as_str())
                .push_bind(check.checked_at)
                .push_bind(check.run_id)
                .push_bind(check.check_id)
                .push_bind(check.health.is_live)
                .push_bind(check.health.error_kind.map(|k| k.as_str()))
                .push_bind(check.health.error.as_deref());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds the checks of run `run_id` to their hours' rollups: one statement
/// for the whole run, same sums as adding each check on its own.
pub(super) async fn record_rollups(conn: &mut SqliteConnection, run_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO health_rollups_hourly (stream_id, hour, checks, healthy, response_samples,
             response_ms_sum, response_ms_min, response_ms_max)
         SELECT stream_id, substr(checked_at, 1, 13) || ':00:00.000Z', COUNT(*), SUM(is_live),
                COUNT(response_time_ms), COALESCE(SUM(response_time_ms), 0), MIN(response_time_ms),
                MAX(response_time_ms)
         FROM health_checks WHERE run_id = ?1
         GROUP BY stream_id, substr(checked_at, 1, 13)
         ON CONFLICT (stream_id, hour) DO UPDATE SET
             checks = checks + excluded.checks,
             healthy = healthy + excluded.healthy,
             response_samples = response_samples + excluded.response_samples,
             response_ms_sum = response_ms_sum + excluded.response_ms_sum,
             -- min()/max() of SQLite are NULL when either side is: keep the other.
             response_ms_min = min(COALESCE(response_ms_min, excluded.response_ms_min),
                                   COALESCE(excluded.response_ms_min, response_ms_min)),
             response_ms_max = max(COALESCE(response_ms_max, excluded.response_ms_max),
                                   COALESCE(excluded.response_ms_max, response_ms_max))",
    )
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Streams per statement of [`record_inactive`].
const INACTIVE_BATCH: usize = 500;

/// Writes an `inactive` event for each of `stream_ids` (active before the
/// run, not reported by it), in id order, at `at` (the run's end).
pub(super) async fn record_inactive(
    conn: &mut SqliteConnection,
    run_id: i64,
    at: &str,
    stream_ids: impl IntoIterator<Item = i64>,
) -> Result<(), sqlx::Error> {
    let mut ids: Vec<i64> = stream_ids.into_iter().collect();
    ids.sort_unstable();
    for batch in ids.chunks(INACTIVE_BATCH) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO stream_events (stream_id, kind, at, run_id, check_id, is_live, error_kind, error)
             SELECT id, 'inactive', ",
        );
        insert.push_bind(at).push(", ").push_bind(run_id);
        insert.push(", NULL, is_live, error_kind, error FROM streams WHERE id IN (");
        let mut list = insert.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        insert.push(") ORDER BY id");
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Makes vacuuming incremental, so pruned checks give disk space back.
/// `auto_vacuum` only takes effect before the first table exists (new
/// databases get it from the connect options) or through a `VACUUM`: an
/// existing database up to [`AUTO_VACUUM_CONVERT_MAX_BYTES`] is converted
/// now; a bigger one keeps reusing freed pages without shrinking, and a
/// warning says how to convert it offline.
pub(super) async fn ensure_incremental_vacuum(pool: &SqlitePool, path: &Path) -> Result<(), DbError> {
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(pool).await?;
    if mode == AUTO_VACUUM_INCREMENTAL {
        return Ok(());
    }
    let size: i64 =
        sqlx::query_scalar("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            .fetch_one(pool)
            .await?;
    if size > AUTO_VACUUM_CONVERT_MAX_BYTES {
        tracing::warn!(
            path = %path.display(),
            bytes = size,
            "database has no incremental auto-vacuum, so pruning frees pages without shrinking \
             the file; convert it once while the service is stopped: \
             sqlite3 FILE 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'"
        );
        return Ok(());
    }
    tracing::info!(path = %path.display(), bytes = size, "converting the database to incremental auto-vacuum");
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM").execute(&mut *conn).await?;
    Ok(())
}

/// A piece of a range: whole rollup hours, or raw checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// Rollup rows with `hour` in `[from, to)`.
    Rollups(DateTime<Utc>, DateTime<Utc>),
    /// Raw checks with `checked_at` in `[from, to)`.
    Raw(DateTime<Utc>, DateTime<Utc>),
}

/// Splits `[from, to)` into whole hours (rollups) and the partial hours at
/// its edges (raw checks, exact). A partial hour before `pruned_before` has
/// no raw checks left, so its whole rollup hour counts instead: the range
/// widens to the hour there rather than losing the checks.
fn plan(from: DateTime<Utc>, to: DateTime<Utc>, pruned_before: Option<DateTime<Utc>>) -> Vec<Segment> {
    let hour = TimeDelta::hours(1);
    let raw_kept = |hour_start: DateTime<Utc>| pruned_before.is_none_or(|p| hour_start >= p);
    let edge = |hour_start: DateTime<Utc>, a: DateTime<Utc>, b: DateTime<Utc>| {
        if raw_kept(hour_start) {
            Segment::Raw(a, b)
        } else {
            Segment::Rollups(hour_start, hour_start + hour)
        }
    };
    if from >= to {
        return Vec::new();
    }
    let (first, last) = (hour_start(from), hour_start(to));
    if first == last {
        return vec![edge(first, from, to)];
    }
    let mut segments = Vec::with_capacity(3);
    let mut whole_from = first;
    if from > first {
        segments.push(edge(first, from, first + hour));
        whole_from = first + hour;
    }
    if whole_from < last {
        segments.push(Segment::Rollups(whole_from, last));
    }
    if to > last {
        segments.push(edge(last, last, to));
    }
    segments
}

impl Database {
    /// The stream `id` with its detail columns, `None` when unknown.
    pub async fn stream_detail(&self, id: i64) -> Result<Option<StreamDetailRow>, DbError> {
        Ok(sqlx::query_as::<_, StreamDetailRow>(STREAM_DETAIL_SQL)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The newest stored check of a stream (`None` when none, or all pruned).
    pub async fn latest_check(&self, stream_id: i64) -> Result<Option<CheckRow>, DbError> {
        Ok(sqlx::query_as::<_, CheckRow>(LATEST_CHECK_SQL)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Up to `limit` raw checks of a stream within `range`, newest first,
    /// strictly before `after` when given. One index range scan.
    pub async fn stream_checks(
        &self,
        stream_id: i64,
        range: TimeRange,
        after: Option<&Position>,
        limit: u32,
    ) -> Result<Vec<CheckRow>, DbError> {
        self.stream_page(CHECKS_PAGE_SQL, stream_id, range, after, limit)
            .await
    }

    /// Up to `limit` state changes of a stream within `range`, newest first,
    /// strictly before `after` when given.
    pub async fn stream_events(
        &self,
        stream_id: i64,
        range: TimeRange,
        after: Option<&Position>,
        limit: u32,
    ) -> Result<Vec<EventRow>, DbError> {
        self.stream_page(EVENTS_PAGE_SQL, stream_id, range, after, limit)
            .await
    }

    /// One page of a stream's timeline: `sql` takes the stream id, the
    /// range's start, the upper bound, the id below which rows at that bound
    /// count, and the limit (see [`TimeRange::page_bounds`]).
    async fn stream_page<Row>(
        &self,
        sql: &'static str,
        stream_id: i64,
        range: TimeRange,
        after: Option<&Position>,
        limit: u32,
    ) -> Result<Vec<Row>, DbError>
    where
        Row: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        let (from, upper, below_id) = range.page_bounds(after);
        Ok(sqlx::query_as::<_, Row>(sql)
            .bind(stream_id)
            .bind(from)
            .bind(upper)
            .bind(below_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    /// The counts of a stream's checks in each of `windows` (`[from, to)`),
    /// read in one transaction. Whole hours come from rollups, the partial
    /// hours at the edges from raw checks, so a window is exact to the
    /// millisecond while its raw checks exist; where they were pruned, the
    /// edge hour's whole rollup counts instead. Never scans more than the two
    /// edge hours of raw checks.
    pub async fn stream_tallies(
        &self,
        stream_id: i64,
        windows: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<Vec<Tally>, DbError> {
        let mut tx = self.pool.begin().await?;
        let pruned_before = pruned_before(&mut tx).await?;
        let mut tallies = Vec::with_capacity(windows.len());
        for &(from, to) in windows {
            let mut tally = Tally::default();
            for segment in plan(from, to, pruned_before) {
                let (sql, a, b) = match segment {
                    Segment::Rollups(a, b) => (ROLLUP_TALLY_SQL, a, b),
                    Segment::Raw(a, b) => (RAW_TALLY_SQL, a, b),
                };
                tally += sqlx::query_as::<_, Tally>(sql)
                    .bind(stream_id)
                    .bind(format_timestamp(a))
                    .bind(format_timestamp(b))
                    .fetch_one(&mut *tx)
                    .await?;
            }
            tallies.push(tally);
        }
        tx.commit().await?;
        Ok(tallies)
    }

    /// Whether a stream with `id` is stored (active or not).
    pub async fn stream_exists(&self, id: i64) -> Result<bool, DbError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM streams WHERE id = ?1)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Whether `site_key` is a known extractor (configured now or before).
    pub async fn extractor_exists(&self, site_key: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM extractors WHERE site_key = ?1)")
                .bind(site_key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The checks of `of` (an extractor's streams, or one stream) summed
    /// per `step` over the rollup hours in `[step.floor(from), to)`, oldest
    /// first; buckets without checks are absent. Reads rollups only.
    pub async fn uptime_series(
        &self,
        of: SeriesOf<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Step,
    ) -> Result<Vec<SeriesRow>, DbError> {
        macro_rules! series {
            ($bucket:expr, $rows:expr) => {
                concat!(
                    "SELECT ",
                    $bucket,
                    " AS ts, SUM(r.checks) AS checks, SUM(r.healthy) AS healthy,
                            SUM(r.response_samples) AS response_samples,
                            SUM(r.response_ms_sum) AS response_ms_sum,
                            MIN(r.response_ms_min) AS response_ms_min,
                            MAX(r.response_ms_max) AS response_ms_max ",
                    $rows,
                    " GROUP BY ts ORDER BY ts"
                )
            };
        }
        macro_rules! of_extractor {
            () => {
                "FROM streams s
                 JOIN health_rollups_hourly r ON r.stream_id = s.id AND r.hour >= ?2 AND r.hour < ?3
                 WHERE s.site_key = ?1"
            };
        }
        macro_rules! of_stream {
            () => {
                "FROM health_rollups_hourly r WHERE r.stream_id = ?1 AND r.hour >= ?2 AND r.hour < ?3"
            };
        }
        macro_rules! day {
            () => {
                "substr(r.hour, 1, 10) || 'T00:00:00.000Z'"
            };
        }
        let sql = match (of, step) {
            (SeriesOf::Extractor(_), Step::Hour) => series!("r.hour", of_extractor!()),
            (SeriesOf::Extractor(_), Step::Day) => series!(day!(), of_extractor!()),
            (SeriesOf::Stream(_), Step::Hour) => series!("r.hour", of_stream!()),
            (SeriesOf::Stream(_), Step::Day) => series!(day!(), of_stream!()),
        };
        let query = sqlx::query_as::<_, SeriesRow>(sql);
        let query = match of {
            SeriesOf::Extractor(site_key) => query.bind(site_key),
            SeriesOf::Stream(id) => query.bind(id),
        };
        Ok(query
            .bind(format_timestamp(step.floor(from)))
            .bind(format_timestamp(to))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Up to `limit` runs, newest first, with ids below `before` when given.
    pub async fn runs_page(&self, before: Option<i64>, limit: u32) -> Result<Vec<RunRow>, DbError> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT id, trigger, started_at, finished_at, stream_count, live_count
             FROM extraction_runs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The run `id`, `None` when unknown.
    pub async fn run_by_id(&self, id: i64) -> Result<Option<RunRow>, DbError> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT id, trigger, started_at, finished_at, stream_count, live_count
             FROM extraction_runs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Per-extractor outcomes of the runs with ids in `[first, last]`.
    pub async fn extractor_runs_between(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<ExtractorRunRow>, DbError> {
        Ok(sqlx::query_as::<_, ExtractorRunRow>(
            "SELECT run_id, site_key, stream_count, live_count, duration_ms, error
             FROM extractor_runs WHERE run_id BETWEEN ?1 AND ?2
             ORDER BY run_id DESC, site_key",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The hour before which raw checks have been pruned, if any were.
    pub async fn history_pruned_before(&self) -> Result<Option<DateTime<Utc>>, DbError> {
        let mut conn = self.pool.acquire().await?;
        pruned_before(&mut conn).await
    }

    /// Deletes up to `batch` raw checks older than the start of `cutoff`'s
    /// hour, in one short transaction that also records that hour as
    /// [`PRUNED_BEFORE_SETTING`] (whole hours are pruned, so a range edge is
    /// either fully raw or fully rollup). Rollups and events stay. Each
    /// stream's old checks are found through its `(stream_id, checked_at)`
    /// index, so no batch scans the table.
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn prune_checks_batch(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<PruneBatch, DbError> {
        let cutoff = format_timestamp(hour_start(cutoff));
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        )
        .bind(PRUNED_BEFORE_SETTING)
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(PRUNE_BATCH_SQL)
            .bind(&cutoff)
            .bind(i64::from(batch))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(PruneBatch { deleted })
    }

    /// `PRAGMA optimize` (bounded by an analysis limit): refreshes the
    /// planner's statistics where they are stale.
    pub async fn optimize(&self) -> Result<(), DbError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA analysis_limit = {ANALYSIS_LIMIT}"
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::query("PRAGMA optimize").execute(&mut *conn).await?;
        Ok(())
    }

    /// Returns up to `pages` free pages to the file system (a no-op without
    /// incremental auto-vacuum) and checkpoints the WAL without waiting, so
    /// the file shrinks. Returns the free pages left.
    pub async fn incremental_vacuum(&self, pages: u32) -> Result<i64, DbError> {
        let mut conn = self.pool.acquire().await?;
        // The page count is an integer, so formatting it into the pragma is safe.
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA incremental_vacuum({pages})")))
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *conn)
            .await?;
        Ok(sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *conn)
            .await?)
    }

    /// Page size, page count, free pages and auto-vacuum mode.
    pub async fn storage_stats(&self) -> Result<StorageStats, DbError> {
        let mut conn = self.pool.acquire().await?;
        let mut pragma = async |name: &'static str| -> Result<i64, DbError> {
            Ok(sqlx::query_scalar(name).fetch_one(&mut *conn).await?)
        };
        Ok(StorageStats {
            page_size: pragma("PRAGMA page_size").await?,
            page_count: pragma("PRAGMA page_count").await?,
            freelist_count: pragma("PRAGMA freelist_count").await?,
            auto_vacuum: pragma("PRAGMA auto_vacuum").await?,
        })
    }
}

async fn pruned_before(conn: &mut SqliteConnection) -> Result<Option<DateTime<Utc>>, DbError> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
        .bind(PRUNED_BEFORE_SETTING)
        .fetch_optional(conn)
        .await?;
    Ok(value
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|at| at.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn plan_splits_a_range_into_raw_edges_and_whole_rollup_hours() {
        let (from, to) = (at("2026-03-08T05:20:00Z"), at("2026-03-08T09:10:00Z"));
        assert_eq!(
            plan(from, to, None),
            [
                Segment::Raw(from, at("2026-03-08T06:00:00Z")),
                Segment::Rollups(at("2026-03-08T06:00:00Z"), at("2026-03-08T09:00:00Z")),
                Segment::Raw(at("2026-03-08T09:00:00Z"), to),
            ]
        );
    }

    #[test]
    fn plan_uses_rollups_alone_for_hour_aligned_ranges() {
        let (from, to) = (at("2026-03-08T05:00:00Z"), at("2026-03-08T07:00:00Z"));
        assert_eq!(plan(from, to, None), [Segment::Rollups(from, to)]);
    }

    #[test]
    fn plan_inside_one_hour_reads_raw_checks_only() {
        let (from, to) = (at("2026-03-08T05:10:00Z"), at("2026-03-08T05:50:00Z"));
        assert_eq!(plan(from, to, None), [Segment::Raw(from, to)]);
        assert!(plan(to, from, None).is_empty());
        assert!(plan(from, from, None).is_empty());
    }

    #[test]
    fn plan_widens_a_pruned_edge_to_its_whole_hour() {
        let (from, to) = (at("2026-03-08T05:20:00Z"), at("2026-03-08T09:10:00Z"));
        let pruned = Some(at("2026-03-08T08:00:00Z"));
        assert_eq!(
            plan(from, to, pruned),
            [
                Segment::Rollups(at("2026-03-08T05:00:00Z"), at("2026-03-08T06:00:00Z")),
                Segment::Rollups(at("2026-03-08T06:00:00Z"), at("2026-03-08T09:00:00Z")),
                Segment::Raw(at("2026-03-08T09:00:00Z"), to),
            ]
        );
        let inside = (at("2026-03-08T05:20:00Z"), at("2026-03-08T05:30:00Z"));
        assert_eq!(
            plan(inside.0, inside.1, pruned),
            [Segment::Rollups(
                at("2026-03-08T05:00:00Z"),
                at("2026-03-08T06:00:00Z")
            )]
        );
    }

    #[test]
    fn tallies_add_like_the_union_of_their_checks() {
        let a = Tally {
            checks: 2,
            healthy: 1,
            response_samples: 1,
            response_ms_sum: 40,
            response_ms_min: Some(40),
            response_ms_max: Some(40),
        };
        let b = Tally {
            checks: 3,
            healthy: 3,
            response_samples: 3,
            response_ms_sum: 60,
            response_ms_min: Some(10),
            response_ms_max: Some(30),
        };
        let sum = a + b + Tally::default();
        assert_eq!(sum.checks, 5);
        assert_eq!(sum.response_ms_min, Some(10));
        assert_eq!(sum.response_ms_max, Some(40));
        assert_eq!(sum.uptime(), Some(0.8));
        assert_eq!(sum.mean_response_ms(), Some(25.0));
        assert_eq!(Tally::default().uptime(), None);
        assert_eq!(Tally::default().mean_response_ms(), None);
    }

    #[tokio::test]
    async fn history_reads_use_indexes_and_never_scan_history_tables() {
        use sqlx::Row;
        let db = Database::open("sqlite::memory:").await.expect("opens");
        let queries = [
            (STREAM_DETAIL_SQL, 1),
            (LATEST_CHECK_SQL, 1),
            (CHECKS_PAGE_SQL, 5),
            (EVENTS_PAGE_SQL, 5),
            (ROLLUP_TALLY_SQL, 3),
            (RAW_TALLY_SQL, 3),
            (PRUNE_BATCH_SQL, 2),
        ];
        for (sql, params) in queries {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
            for _ in 0..params {
                query = query.bind("2026-03-08T05:00:00.000Z");
            }
            let plan: Vec<String> = query
                .fetch_all(db.pool())
                .await
                .expect("explains")
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();
            let plan = plan.join("\n");
            for table in [
                "health_checks",
                "health_rollups_hourly",
                "stream_events",
                " h",
                " r",
            ] {
                assert!(
                    !plan.contains(&format!("SCAN{table}")) && !plan.contains(&format!("SCAN {table}")),
                    "{sql}\n{plan}"
                );
            }
            assert!(!plan.contains("TEMP B-TREE"), "sorts in memory:\n{sql}\n{plan}");
        }
    }

    #[test]
    fn hours_and_days_floor_in_utc() {
        let t = at("2026-03-08T05:59:59.999Z");
        assert_eq!(hour_start(t), at("2026-03-08T05:00:00Z"));
        assert_eq!(Step::Day.floor(t), at("2026-03-08T00:00:00Z"));
        assert_eq!(
            Step::Hour.floor(at("1969-12-31T23:30:00Z")),
            at("1969-12-31T23:00:00Z")
        );
    }
}
