//! When the calendar is fetched: at start when the stored one is older than
//! a day, daily at `refresh_hour_utc`, and after a failure with a backoff
//! from one minute doubling to one hour. Pure timing helpers.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

/// Age after which the stored calendar is refreshed at start.
pub const MAX_AGE: TimeDelta = TimeDelta::hours(24);
/// First retry delay after a failed refresh.
pub const BACKOFF_START: Duration = Duration::from_secs(60);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// The first instant after `now` at `hour`:00:00 UTC.
pub fn next_daily(now: DateTime<Utc>, hour: u8) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(u32::from(hour.min(23)), 0, 0).unwrap_or(NaiveTime::MIN);
    let today = now.date_naive().and_time(time).and_utc();
    if today > now {
        today
    } else {
        today + TimeDelta::days(1)
    }
}

/// Whether a calendar stored at `updated_at` (`None`: never) is missing or
/// older than [`MAX_AGE`] at `now`.
pub fn is_stale(now: DateTime<Utc>, updated_at: Option<DateTime<Utc>>) -> bool {
    updated_at.is_none_or(|at| now - at >= MAX_AGE)
}

/// When to refresh first: now when the stored calendar [`is_stale`], else
/// at the next daily hour.
pub fn first_refresh(now: DateTime<Utc>, updated_at: Option<DateTime<Utc>>, hour: u8) -> DateTime<Utc> {
    if is_stale(now, updated_at) {
        now
    } else {
        next_daily(now, hour)
    }
}

/// Retry delays after failures: 1 min, 2, 4, … capped at 1 h; reset by a
/// success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_START }
    }
}

impl Backoff {
    /// The delay before the next retry; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn daily_refresh_is_the_next_occurrence_of_the_hour() {
        assert_eq!(
            next_daily(at("2026-04-05T02:59:59Z"), 3),
            at("2026-04-05T03:00:00Z")
        );
        assert_eq!(
            next_daily(at("2026-04-05T03:00:00Z"), 3),
            at("2026-04-06T03:00:00Z")
        );
        assert_eq!(
            next_daily(at("2026-04-05T17:00:00Z"), 3),
            at("2026-04-06T03:00:00Z")
        );
        assert_eq!(
            next_daily(at("2026-12-31T23:30:00Z"), 0),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_missing_or_day_old_calendar_is_refreshed_at_start() {
        let now = at("2026-04-05T10:00:00Z");
        assert_eq!(first_refresh(now, None, 3), now);
        assert_eq!(first_refresh(now, Some(at("2026-04-04T10:00:00Z")), 3), now);
        assert_eq!(
            first_refresh(now, Some(at("2026-04-04T10:00:01Z")), 3),
            at("2026-04-06T03:00:00Z")
        );
    }

    #[test]
    fn backoff_doubles_from_a_minute_to_an_hour_and_resets() {
        let mut backoff = Backoff::default();
        let minutes: Vec<u64> = (0..9).map(|_| backoff.next_delay().as_secs() / 60).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), BACKOFF_START);
    }
}
