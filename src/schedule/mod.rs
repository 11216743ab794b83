//! The F1 calendar: fetched from an Ergast-compatible API, persisted in
//! SQLite (so a restart without network still knows it), kept in memory for
//! the scheduler and the API, and refreshed daily with backoff on failure.
//!
//! - [`calendar`]: the Ergast document → races and sessions, and DB rows.
//! - [`status`]: `past` / `live` / `upcoming` and fast-polling windows.
//! - [`planner`]: the pure "when is the next run" decision.
//! - [`scheduler`]: the async polling loop around the planner.
//! - [`refresh`]: when to refresh the calendar (daily hour, backoff).
//! - [`clock`]: the injectable source of "now".

pub mod calendar;
pub mod clock;
pub mod planner;
pub mod refresh;
pub mod scheduler;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use reqwest::header::{ACCEPT, HeaderValue};
use tokio::sync::{Mutex, OnceCell, watch};
use url::Url;

use crate::config::ScheduleConfig;
use crate::db::{Database, DbError, ScheduleMetaRow};
use crate::model::format_timestamp;
use crate::net::{Fetch, FetchError, FetchFailure, Http, UrlRefused};

pub use calendar::{Calendar, CalendarError, Race, Session};
pub use clock::{Clock, SystemClock, TokioClock};
pub use planner::{Decision, PollPolicy, RunHistory, WakeReason, plan};
pub use refresh::Backoff;
pub use scheduler::Scheduler;
pub use status::{SessionStatus, SessionTiming, Window};

/// Why the calendar could not be refreshed or read.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// `schedule.url` does not parse as a URL.
    #[error("schedule.url {0:?} is not a valid URL")]
    InvalidUrl(String),
    /// The address guard refused `schedule.url`.
    #[error("schedule.url refused: {0}")]
    Refused(#[from] UrlRefused),
    /// No usable answer: connection, DNS, TLS, timeout or a broken body.
    #[error("calendar fetch failed: {0}")]
    Fetch(String),
    /// The source answered with a non-success status.
    #[error("calendar source answered HTTP {0}")]
    Status(u16),
    /// The document is larger than `schedule.max_bytes`.
    #[error("calendar document exceeds {0} bytes (schedule.max_bytes)")]
    TooLarge(u64),
    /// The document is not a calendar; the stored one is kept.
    #[error("calendar document rejected: {0}")]
    Invalid(#[from] CalendarError),
    /// The stored calendar could not be read back.
    #[error("stored calendar is unreadable: {0}")]
    Stored(#[source] CalendarError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<FetchError> for ScheduleError {
    fn from(err: FetchError) -> Self {
        match err.failure() {
            FetchFailure::Refused(refused) => Self::Refused(refused.clone()),
            FetchFailure::Status(status) => Self::Status(*status),
            FetchFailure::TooLarge(limit) => Self::TooLarge(*limit),
            _ => Self::Fetch(err.to_string()),
        }
    }
}

impl ScheduleError {
    /// Whether the calendar source (not our side) is at fault.
    pub fn is_upstream(&self) -> bool {
        !matches!(self, Self::Stored(_) | Self::Database(_))
    }
}

/// Everything the calendar service needs.
#[derive(Debug)]
pub struct ScheduleParts {
    /// Where the calendar is persisted.
    pub db: Database,
    /// The shared, guarded HTTP client.
    pub http: Http,
    /// `[schedule]`.
    pub config: ScheduleConfig,
    /// The source of "now".
    pub clock: Arc<dyn Clock>,
}

/// The calendar service; cheap to clone, clones share the calendar.
#[derive(Debug, Clone)]
pub struct Schedule {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    http: Http,
    config: ScheduleConfig,
    timing: SessionTiming,
    clock: Arc<dyn Clock>,
    /// The calendar in force; the polling loop subscribes, so a refresh
    /// re-plans it at once.
    calendar: watch::Sender<Arc<Calendar>>,
    /// Set once the stored calendar has been read (lazily, at most once).
    loaded: OnceCell<()>,
    /// One refresh at a time (daily task and `POST /schedule/refresh`).
    refreshing: Mutex<()>,
}

impl Schedule {
    /// A service over `parts`; nothing is read or fetched yet.
    pub fn new(parts: ScheduleParts) -> Self {
        let (calendar, _) = watch::channel(Arc::new(Calendar::default()));
        Self {
            inner: Arc::new(Inner {
                db: parts.db,
                http: parts.http,
                timing: SessionTiming::from_config(&parts.config),
                config: parts.config,
                clock: parts.clock,
                calendar,
                loaded: OnceCell::new(),
                refreshing: Mutex::new(()),
            }),
        }
    }

    /// The current time by the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The injected clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    /// `[schedule]`.
    pub fn config(&self) -> &ScheduleConfig {
        &self.inner.config
    }

    /// Lead and overrun allowances.
    pub fn timing(&self) -> SessionTiming {
        self.inner.timing
    }

    /// A receiver that sees every new calendar.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Calendar>> {
        self.inner.calendar.subscribe()
    }

    /// The calendar in memory, without touching the database (empty until
    /// the stored one is loaded at start).
    pub fn snapshot(&self) -> Arc<Calendar> {
        Arc::clone(&self.inner.calendar.borrow())
    }

    /// The calendar, reading the stored one first if that has not happened.
    pub async fn calendar(&self) -> Result<Arc<Calendar>, ScheduleError> {
        self.ensure_loaded().await?;
        Ok(self.snapshot())
    }

    /// The type of the session whose window is open now
    /// ([`SessionTiming::window_session`]): what `session=live` means for
    /// the stream list and the channels. `None` when no window is open.
    pub async fn window_session_type(&self) -> Result<Option<crate::model::SessionType>, ScheduleError> {
        let calendar = self.calendar().await?;
        Ok(self
            .timing()
            .window_session(&calendar, self.now())
            .map(|(_, session)| session.session_type))
    }

    /// For the metrics `f1stream_schedule_live` and
    /// `f1stream_schedule_next_session_timestamp_seconds`: whether a
    /// session's fast-polling window is open now, and when the next session
    /// starts. Cheap: reads the in-memory calendar only.
    pub fn live_window(&self) -> (bool, Option<DateTime<Utc>>) {
        let now = self.now();
        let calendar = self.snapshot();
        let open = self.inner.timing.window_session(&calendar, now).is_some();
        let next = status::next_session(&calendar, now).and_then(|(_, s)| s.start);
        (open, next)
    }

    async fn ensure_loaded(&self) -> Result<(), ScheduleError> {
        self.inner
            .loaded
            .get_or_try_init(|| async {
                let (meta, rows) = self.inner.db.load_schedule().await?;
                let calendar = Calendar::from_rows(meta.as_ref(), &rows, &self.inner.config.durations)
                    .map_err(ScheduleError::Stored)?;
                self.inner.calendar.send_replace(Arc::new(calendar));
                Ok::<(), ScheduleError>(())
            })
            .await?;
        Ok(())
    }

    /// Fetches, parses and stores the calendar, then puts it in force. On any
    /// failure the calendar in force and in the database stays as it was.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self) -> Result<Arc<Calendar>, ScheduleError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        // Read the stored calendar first so a late lazy load cannot replace
        // the fresh one. A stored calendar that cannot be read is exactly
        // what a refresh repairs, so its error does not stop this one.
        if let Err(err) = self.ensure_loaded().await {
            tracing::warn!(error = %err, "stored calendar unreadable; refreshing over it");
        }
        let config = &self.inner.config;
        let body = self.fetch().await?;
        let mut calendar = calendar::parse(&body, &config.durations)?;
        let now = self.now().trunc_subsecs(3);
        calendar.updated_at = Some(now);
        let meta = ScheduleMetaRow {
            season: calendar.season.clone(),
            source_url: config.url.clone(),
            updated_at: format_timestamp(now),
        };
        self.inner.db.replace_schedule(&meta, &calendar.to_rows()).await?;
        let calendar = Arc::new(calendar);
        self.inner.calendar.send_replace(Arc::clone(&calendar));
        let _ = self.inner.loaded.set(());
        tracing::info!(
            season = calendar.season.as_deref().unwrap_or(""),
            races = calendar.races.len(),
            "calendar refreshed"
        );
        Ok(calendar)
    }

    async fn fetch(&self) -> Result<bytes::Bytes, ScheduleError> {
        let config = &self.inner.config;
        let url = Url::parse(&config.url).map_err(|_| ScheduleError::InvalidUrl(config.url.clone()))?;
        let fetch = Fetch::get(url, config.max_bytes)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .timeout(Duration::from_secs(config.timeout_secs));
        Ok(self.inner.http.fetch(fetch).await?.body)
    }

    /// The background task: reads the stored calendar, then (when
    /// `schedule.enabled`) refreshes it at start if it is older than a day,
    /// daily at `refresh_hour_utc`, and after a failure with a backoff of 1
    /// minute doubling to 1 hour. Ends when `stop` turns true.
    pub async fn maintain(self, mut stop: watch::Receiver<bool>) {
        if let Err(err) = self.ensure_loaded().await {
            tracing::error!(error = %err, "cannot read the stored calendar");
        }
        if !self.inner.config.enabled {
            return;
        }
        let hour = self.inner.config.refresh_hour_utc;
        let mut backoff = Backoff::default();
        let mut next = refresh::first_refresh(self.now(), self.snapshot().updated_at, hour);
        loop {
            loop {
                let now = self.now();
                if now >= next {
                    break;
                }
                let wait = (next - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(scheduler::MAX_SLEEP);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
            let result = tokio::select! {
                result = self.refresh() => result,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            next = match result {
                Ok(_) => {
                    backoff.reset();
                    refresh::next_daily(self.now(), hour)
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = %err,
                        retry_in_secs = delay.as_secs(),
                        "calendar refresh failed; keeping the stored calendar"
                    );
                    self.now() + chrono::TimeDelta::from_std(delay).unwrap_or(refresh::MAX_AGE)
                }
            };
        }
    }
}
