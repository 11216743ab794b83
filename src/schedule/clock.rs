//! Where "now" comes from: the system clock in the service, a clock that
//! follows tokio's (pausable) time in tests and simulations.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current UTC time, injected so status and scheduling can
/// be tested at chosen instants.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that advances with tokio's clock from a chosen start: under
/// `tokio::time::pause()` a test drives days of schedule in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now and advances with `tokio::time`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.origin.elapsed()).unwrap_or(TimeDelta::MAX);
        self.start
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
