//! Session status at a given instant (`past`, `live`, `upcoming`) and the
//! fast-polling window around each session. Pure: "now" is a parameter.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde::Serialize;

use crate::config::ScheduleConfig;
use crate::model::SessionType;

use super::calendar::{Calendar, Race, Session};

/// Where a session stands relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Over: past its planned end plus the overrun allowance (or, without a
    /// start time, its day is over).
    Past,
    /// Started and not yet past its planned end plus the overrun allowance.
    Live,
    /// Not started (a session without a time stays upcoming through its day).
    Upcoming,
}

impl SessionStatus {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Past => "past",
            Self::Live => "live",
            Self::Upcoming => "upcoming",
        }
    }
}

/// The fast-polling interval of one session: `[open, close)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `lead` before the start.
    pub open: DateTime<Utc>,
    /// The overrun allowance after the planned end.
    pub close: DateTime<Utc>,
}

impl Window {
    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.open <= now && now < self.close
    }
}

/// How long before and after a session it counts: the lead and the overrun
/// allowances of `[schedule]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTiming {
    /// Fast polling starts this long before a session.
    pub lead: TimeDelta,
    /// ...and ends this long after a race's planned end.
    pub overrun_race: TimeDelta,
    /// ...or this long after any other session's planned end.
    pub overrun_other: TimeDelta,
}

impl SessionTiming {
    /// The timing `[schedule]` describes.
    pub fn from_config(schedule: &ScheduleConfig) -> Self {
        let minutes = |m: u32| TimeDelta::minutes(i64::from(m));
        Self {
            lead: minutes(schedule.lead_minutes),
            overrun_race: minutes(schedule.overrun_minutes),
            overrun_other: minutes(schedule.overrun_minutes_other),
        }
    }

    /// The overrun allowance of a session type.
    pub fn overrun(&self, session: SessionType) -> TimeDelta {
        if session == SessionType::Race {
            self.overrun_race
        } else {
            self.overrun_other
        }
    }

    /// The end of a session's `live` status: planned end plus overrun.
    pub fn live_until(&self, session: &Session) -> Option<DateTime<Utc>> {
        session.end().map(|end| end + self.overrun(session.session_type))
    }

    /// The fast-polling window of a session; `None` without a start time.
    pub fn window(&self, session: &Session) -> Option<Window> {
        let start = session.start?;
        Some(Window {
            open: start - self.lead,
            close: self.live_until(session)?,
        })
    }

    /// The status of `session` at `now`.
    pub fn status(&self, session: &Session, now: DateTime<Utc>) -> SessionStatus {
        match (session.start, self.live_until(session)) {
            (Some(start), _) if now < start => SessionStatus::Upcoming,
            (Some(_), Some(until)) if now < until => SessionStatus::Live,
            (Some(_), _) => SessionStatus::Past,
            (None, _) => {
                // No time: upcoming until its (UTC) day is over, never live.
                let day_over = session
                    .date
                    .succ_opt()
                    .map(|next_day| next_day.and_time(NaiveTime::MIN).and_utc());
                match day_over {
                    Some(over) if now >= over => SessionStatus::Past,
                    _ => SessionStatus::Upcoming,
                }
            }
        }
    }

    /// The live session at `now` (the most recently started one if windows
    /// overlap).
    pub fn live_session<'a>(
        &self,
        calendar: &'a Calendar,
        now: DateTime<Utc>,
    ) -> Option<(&'a Race, &'a Session)> {
        calendar
            .sessions()
            .filter(|(_, s)| self.status(s, now) == SessionStatus::Live)
            .max_by_key(|(_, s)| s.start)
    }

    /// The session whose fast-polling window is open at `now`: of several,
    /// the most recently started one, else the next to start. This is what
    /// `session=live` filters on, so streams tagged for a session are served
    /// from `lead` before it.
    pub fn window_session<'a>(
        &self,
        calendar: &'a Calendar,
        now: DateTime<Utc>,
    ) -> Option<(&'a Race, &'a Session)> {
        // A started session inside its window is a live one (the window
        // closes when `live` ends); else the window opened by the lead.
        self.live_session(calendar, now).or_else(|| {
            calendar
                .sessions()
                .filter(|(_, s)| s.start.is_some_and(|start| now < start))
                .filter(|(_, s)| self.window(s).is_some_and(|w| w.contains(now)))
                .min_by_key(|(_, s)| s.start)
        })
    }
}

/// The next session to start after `now` (start time known).
pub fn next_session(calendar: &Calendar, now: DateTime<Utc>) -> Option<(&Race, &Session)> {
    calendar
        .sessions()
        .filter(|(_, s)| s.start.is_some_and(|start| start > now))
        .min_by_key(|(_, s)| s.start)
}
