//! The only place with SQL: opening SQLite (WAL, busy timeout, migrations),
//! storing a run in one transaction, and the typed queries the API serves.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::config::ExtractorConfig;
use crate::model::{HealthResult, RunTrigger, StreamCandidate, format_timestamp};

/// How long a writer waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool; SQLite has one writer, readers run in parallel.
const MAX_CONNECTIONS: u32 = 8;

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database URL is not a usable SQLite location.
    #[error("invalid database URL {url:?}: {message}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The folder for the database file could not be created.
    #[error("cannot create database folder {path}: {source}")]
    CreateFolder {
        /// The folder.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any query failed.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Handle to the SQLite database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

/// One extractor's part of a finished run, ready to store.
#[derive(Debug, Clone)]
pub struct ExtractorOutcome {
    /// The extractor.
    pub site_key: String,
    /// Milliseconds the extractor took (not the checks).
    pub duration_ms: u64,
    /// Why the extractor failed, if it did.
    pub error: Option<String>,
    /// What it found, each with its check.
    pub streams: Vec<CheckedStream>,
}

/// A discovered stream and the verdict of its check in this run.
#[derive(Debug, Clone)]
pub struct CheckedStream {
    /// What the source reported.
    pub candidate: StreamCandidate,
    /// The check.
    pub health: HealthResult,
}

/// A complete run, stored atomically by [`Database::store_run`].
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// What started it.
    pub trigger: RunTrigger,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When checks finished.
    pub finished_at: DateTime<Utc>,
    /// One entry per extractor that ran.
    pub extractors: Vec<ExtractorOutcome>,
}

impl RunRecord {
    /// Streams found by every extractor.
    pub fn stream_count(&self) -> usize {
        self.extractors.iter().map(|e| e.streams.len()).sum()
    }

    /// Streams whose check was healthy.
    pub fn live_count(&self) -> usize {
        self.extractors
            .iter()
            .flat_map(|e| &e.streams)
            .filter(|s| s.health.is_live)
            .count()
    }
}

/// A stream as served by the API: stored fields plus its extractor's name.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct StreamRow {
    /// Row id.
    pub id: i64,
    /// Extractor key.
    pub site_key: String,
    /// Extractor display name.
    pub site_name: String,
    /// Playlist URL.
    pub url: String,
    /// Title.
    pub title: Option<String>,
    /// Quality label.
    pub quality: Option<String>,
    /// Session type.
    pub session: Option<String>,
    /// When the extractor last reported it.
    pub last_seen: String,
    /// Latest check healthy.
    pub is_live: bool,
    /// Latest response time.
    pub response_time_ms: Option<i64>,
    /// Latest check time.
    pub checked_at: Option<String>,
    /// Highest declared bitrate.
    pub bitrate: i64,
    /// Live, event, VOD or unknown.
    pub stream_type: String,
    /// Latest error kind.
    pub error_kind: Option<String>,
    /// Latest error message.
    pub error: Option<String>,
}

/// Filters of the ranked list.
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    /// Only streams tagged with this session, or untagged.
    pub session: Option<String>,
    /// Only this extractor's streams.
    pub site_key: Option<String>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// Per-extractor state for `/extractors`.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct ExtractorStatus {
    /// Extractor key.
    pub site_key: String,
    /// Display name.
    pub site_name: String,
    /// Kind of source.
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
    /// Streams its latest run returned.
    pub last_stream_count: Option<i64>,
}

/// A stored run's headline.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// What started it.
    pub trigger: String,
    /// Start time.
    pub started_at: String,
    /// End time.
    pub finished_at: String,
    /// Streams found.
    pub stream_count: i64,
    /// Healthy streams.
    pub live_count: i64,
}

/// The SELECT list and join shared by every stream query (a macro so the
/// queries stay `&'static str` literals, as sqlx wants).
macro_rules! select_streams {
    () => {
        "SELECT s.id, s.site_key, e.site_name, s.url, s.title, s.quality, s.session, \
         s.last_seen, s.is_live, s.response_time_ms, s.checked_at, s.bitrate, s.stream_type, \
         s.error_kind, s.error \
         FROM streams s JOIN extractors e ON e.site_key = s.site_key "
    };
}

impl Database {
    /// Opens (creating file and folder when missing) and migrates the database.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::InvalidUrl {
                url: url.to_owned(),
                message: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed run survives power loss, not only a crash;
            // runs commit rarely, so the extra fsync is cheap.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let path = options.get_filename();
        let is_memory = path.as_os_str().is_empty() || path == Path::new(":memory:");
        if !is_memory
            && let Some(folder) = path.parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|source| DbError::CreateFolder {
                path: folder.display().to_string(),
                source,
            })?;
        }
        // An in-memory database exists per connection: keep exactly one.
        let max_connections = if is_memory { 1 } else { MAX_CONNECTIONS };
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for callers (tests, tools) that run their own SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records the configured extractors, so SQL users can join on them.
    #[tracing::instrument(skip_all, fields(count = extractors.len()))]
    pub async fn sync_extractors(&self, extractors: &[ExtractorConfig]) -> Result<(), DbError> {
        let now = format_timestamp(Utc::now());
        let mut tx = self.pool.begin().await?;
        for extractor in extractors {
            sqlx::query(
                "INSERT INTO extractors (site_key, site_name, kind, enabled, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (site_key) DO UPDATE SET
                     site_name = excluded.site_name, kind = excluded.kind,
                     enabled = excluded.enabled, updated_at = excluded.updated_at",
            )
            .bind(&extractor.site_key)
            .bind(&extractor.site_name)
            .bind(extractor.kind.as_str())
            .bind(extractor.enabled)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a whole run in one transaction: the run, each extractor's
    /// outcome, every stream (active exactly when its extractor reported it
    /// in this run) and every check. Returns the run id.
    #[tracing::instrument(skip_all, fields(streams = run.stream_count()))]
    pub async fn store_run(&self, run: &RunRecord) -> Result<i64, DbError> {
        let mut tx = self.pool.begin().await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO extraction_runs (trigger, started_at, finished_at, stream_count, live_count)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .bind(run.trigger.as_str())
        .bind(format_timestamp(run.started_at))
        .bind(format_timestamp(run.finished_at))
        .bind(run.stream_count() as i64)
        .bind(run.live_count() as i64)
        .fetch_one(&mut *tx)
        .await?;

        // A run is the complete picture: whatever it did not report is no
        // longer served, including streams of disabled or removed extractors.
        sqlx::query("UPDATE streams SET active = 0 WHERE active = 1")
            .execute(&mut *tx)
            .await?;

        let seen_at = format_timestamp(run.finished_at);
        for outcome in &run.extractors {
            let live = outcome.streams.iter().filter(|s| s.health.is_live).count();
            sqlx::query(
                "INSERT INTO extractor_runs (run_id, site_key, stream_count, live_count, duration_ms, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(run_id)
            .bind(&outcome.site_key)
            .bind(outcome.streams.len() as i64)
            .bind(live as i64)
            .bind(outcome.duration_ms as i64)
            .bind(&outcome.error)
            .execute(&mut *tx)
            .await?;

            for stream in &outcome.streams {
                let health = &stream.health;
                let checked_at = format_timestamp(health.checked_at);
                let stream_id: i64 = sqlx::query_scalar(
                    "INSERT INTO streams (site_key, url, title, quality, session, first_seen, last_seen,
                         active, is_live, response_time_ms, ttfb_ms, http_status, bitrate,
                         playlist_kind, stream_type, checked_at, error_kind, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                     ON CONFLICT (site_key, url) DO UPDATE SET
                         title = excluded.title, quality = excluded.quality,
                         session = excluded.session, last_seen = excluded.last_seen, active = 1,
                         is_live = excluded.is_live, response_time_ms = excluded.response_time_ms,
                         ttfb_ms = excluded.ttfb_ms, http_status = excluded.http_status,
                         bitrate = excluded.bitrate, playlist_kind = excluded.playlist_kind,
                         stream_type = excluded.stream_type, checked_at = excluded.checked_at,
                         error_kind = excluded.error_kind, error = excluded.error
                     RETURNING id",
                )
                .bind(&outcome.site_key)
                .bind(&stream.candidate.url)
                .bind(&stream.candidate.title)
                .bind(&stream.candidate.quality)
                .bind(stream.candidate.session.map(|s| s.as_str()))
                .bind(&seen_at)
                .bind(health.is_live)
                .bind(health.response_time_ms.map(|v| v as i64))
                .bind(health.ttfb_ms.map(|v| v as i64))
                .bind(health.http_status.map(i64::from))
                .bind(health.bitrate as i64)
                .bind(health.playlist_kind.map(|k| k.as_str()))
                .bind(health.stream_type.as_str())
                .bind(&checked_at)
                .bind(health.error_kind.map(|k| k.as_str()))
                .bind(&health.error)
                .fetch_one(&mut *tx)
                .await?;

                sqlx::query(
                    "INSERT INTO health_checks (stream_id, run_id, checked_at, is_live, response_time_ms,
                         ttfb_ms, http_status, bitrate, error_kind, error, playlist_kind, stream_type)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .bind(stream_id)
                .bind(run_id)
                .bind(&checked_at)
                .bind(health.is_live)
                .bind(health.response_time_ms.map(|v| v as i64))
                .bind(health.ttfb_ms.map(|v| v as i64))
                .bind(health.http_status.map(i64::from))
                .bind(health.bitrate as i64)
                .bind(health.error_kind.map(|k| k.as_str()))
                .bind(&health.error)
                .bind(health.playlist_kind.map(|k| k.as_str()))
                .bind(health.stream_type.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(run_id)
    }

    /// The served list: active streams whose latest check is healthy, live
    /// broadcasts first, then fastest, then higher bitrate, then id. Reads
    /// only the streams table.
    pub async fn ranked_streams(&self, filter: &StreamFilter) -> Result<Vec<StreamRow>, DbError> {
        const SQL: &str = concat!(
            select_streams!(),
            "WHERE s.active = 1 AND s.is_live = 1
               AND (?1 IS NULL OR s.session = ?1 OR s.session IS NULL)
               AND (?2 IS NULL OR s.site_key = ?2)
             ORDER BY (s.stream_type = 'live') DESC, s.response_time_ms ASC, s.bitrate DESC, s.id ASC
             LIMIT ?3"
        );
        let rows = sqlx::query_as::<_, StreamRow>(SQL)
            .bind(&filter.session)
            .bind(&filter.site_key)
            .bind(filter.limit.map_or(-1, i64::from))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// Every active stream: healthy first, then fastest.
    pub async fn all_active_streams(&self) -> Result<Vec<StreamRow>, DbError> {
        const SQL: &str = concat!(
            select_streams!(),
            "WHERE s.active = 1
             ORDER BY s.is_live DESC, s.response_time_ms IS NULL, s.response_time_ms ASC,
                      s.bitrate DESC, s.id ASC"
        );
        Ok(sqlx::query_as::<_, StreamRow>(SQL).fetch_all(&self.pool).await?)
    }

    /// State of every configured extractor: active counts and its latest outcome.
    pub async fn extractor_statuses(&self) -> Result<Vec<ExtractorStatus>, DbError> {
        let rows = sqlx::query_as::<_, ExtractorStatus>(
            "SELECT e.site_key, e.site_name, e.kind, e.enabled,
                    (SELECT COUNT(*) FROM streams s WHERE s.site_key = e.site_key AND s.active = 1)
                        AS cached_streams,
                    (SELECT COUNT(*) FROM streams s
                        WHERE s.site_key = e.site_key AND s.active = 1 AND s.is_live = 1)
                        AS live_streams,
                    latest.error AS last_error,
                    latest.duration_ms AS last_duration_ms,
                    latest.stream_count AS last_stream_count
             FROM extractors e
             LEFT JOIN extractor_runs latest ON latest.site_key = e.site_key
                 AND latest.run_id = (SELECT MAX(run_id) FROM extractor_runs r WHERE r.site_key = e.site_key)
             ORDER BY e.site_key",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The stored value of setting `key`, storing `value` first when there
    /// is none (atomic: concurrent callers all get the first stored value).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, DbError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The newest stored run, if any.
    pub async fn last_run(&self) -> Result<Option<RunRow>, DbError> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT id, trigger, started_at, finished_at, stream_count, live_count
             FROM extraction_runs ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// One row of `schedule_sessions`: a session of the stored F1 calendar with
/// its race's columns.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ScheduleSessionRow {
    /// Season, e.g. `2026`.
    pub season: String,
    /// Round within the season.
    pub round: i64,
    /// Grand Prix name.
    pub race_name: String,
    /// The race's reference page.
    pub race_url: Option<String>,
    /// Circuit name.
    pub circuit: String,
    /// Ergast circuit id.
    pub circuit_id: String,
    /// Country of the circuit.
    pub country: String,
    /// Town of the circuit.
    pub locality: String,
    /// Race day, `YYYY-MM-DD`.
    pub race_date: String,
    /// `fp1` … `race`.
    pub session_type: String,
    /// Display name.
    pub session_name: String,
    /// Session day (UTC), `YYYY-MM-DD`.
    pub date: String,
    /// Start, RFC 3339 UTC; `None` when the calendar gives no time.
    pub start_utc: Option<String>,
    /// Planned duration when the row was written.
    pub duration_minutes: i64,
}

/// The one row of `schedule_meta`: where and when the calendar was fetched.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ScheduleMetaRow {
    /// Season of the calendar, when the source named one.
    pub season: Option<String>,
    /// URL it was fetched from.
    pub source_url: String,
    /// When it was fetched, RFC 3339 UTC.
    pub updated_at: String,
}

impl Database {
    /// Replaces the stored calendar with `sessions` in one transaction: a
    /// failure leaves the previous calendar intact.
    #[tracing::instrument(skip_all, fields(sessions = sessions.len()))]
    pub async fn replace_schedule(
        &self,
        meta: &ScheduleMetaRow,
        sessions: &[ScheduleSessionRow],
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM schedule_sessions")
            .execute(&mut *tx)
            .await?;
        for row in sessions {
            sqlx::query(
                "INSERT INTO schedule_sessions (season, round, race_name, race_url, circuit, circuit_id,
                     country, locality, race_date, session_type, session_name, date, start_utc,
                     duration_minutes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .bind(&row.season)
            .bind(row.round)
            .bind(&row.race_name)
            .bind(&row.race_url)
            .bind(&row.circuit)
            .bind(&row.circuit_id)
            .bind(&row.country)
            .bind(&row.locality)
            .bind(&row.race_date)
            .bind(&row.session_type)
            .bind(&row.session_name)
            .bind(&row.date)
            .bind(&row.start_utc)
            .bind(row.duration_minutes)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO schedule_meta (id, season, source_url, updated_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
                 season = excluded.season, source_url = excluded.source_url,
                 updated_at = excluded.updated_at",
        )
        .bind(&meta.season)
        .bind(&meta.source_url)
        .bind(&meta.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored calendar: its metadata (`None` before the first successful
    /// refresh) and every session in round, then start order.
    pub async fn load_schedule(&self) -> Result<(Option<ScheduleMetaRow>, Vec<ScheduleSessionRow>), DbError> {
        // One read transaction, so a refresh committing in between cannot
        // pair new metadata with old sessions.
        let mut tx = self.pool.begin().await?;
        let meta = sqlx::query_as::<_, ScheduleMetaRow>(
            "SELECT season, source_url, updated_at FROM schedule_meta WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let sessions = sqlx::query_as::<_, ScheduleSessionRow>(
            "SELECT season, round, race_name, race_url, circuit, circuit_id, country, locality,
                    race_date, session_type, session_name, date, start_utc, duration_minutes
             FROM schedule_sessions
             ORDER BY season, round, date, start_utc IS NULL, start_utc",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((meta, sessions))
    }
}
