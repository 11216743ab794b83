//! The scheduler's decision, as a pure function of (now, calendar, policy,
//! run history): when the next extraction run is due and why. The async loop
//! in [`super::scheduler`] only sleeps until the answer.
//!
//! Rules: idle runs every `interval` after the last run; a session's window
//! (`lead` before its start to the overrun after its planned end) gets a run
//! exactly at its opening, then one every `live_interval` while it is open;
//! once it closes, the idle interval applies again. Windows of sessions
//! without a start time do not exist.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Config;
use crate::model::SessionType;

use super::calendar::Calendar;
use super::status::SessionTiming;

/// Longest interval honoured (a year): longer ones are clamped, so adding one
/// to a date can never overflow.
pub const MAX_INTERVAL_SECS: u64 = 366 * 24 * 3600;

/// What the planner needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// Plan on the calendar; `false` (schedule disabled) means fixed interval.
    pub use_calendar: bool,
    /// Between runs when no window is open.
    pub interval: TimeDelta,
    /// Between runs while a window is open.
    pub live_interval: TimeDelta,
    /// Window bounds around each session.
    pub timing: SessionTiming,
}

impl PollPolicy {
    /// The policy `[extraction]` and `[schedule]` describe.
    pub fn from_config(config: &Config) -> Self {
        let seconds = |s: u64| TimeDelta::seconds(s.min(MAX_INTERVAL_SECS) as i64);
        Self {
            use_calendar: config.schedule.enabled,
            interval: seconds(config.extraction.interval_secs),
            live_interval: seconds(config.extraction.live_interval_secs),
            timing: SessionTiming::from_config(&config.schedule),
        }
    }
}

/// The loop's memory: when it started and when it last triggered a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunHistory {
    /// When polling began (anchors the first idle run when none ran yet).
    pub since: DateTime<Utc>,
    /// Start of the last run the loop triggered.
    pub last_run: Option<DateTime<Utc>>,
}

impl RunHistory {
    /// The instant the idle interval counts from.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.last_run.unwrap_or(self.since)
    }
}

/// Why a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WakeReason {
    /// The run at service start.
    Startup,
    /// The idle interval elapsed.
    Idle,
    /// A session's window opens (or is open and has had no run yet).
    WindowOpens,
    /// The fast cadence inside an open window.
    Fast,
}

impl WakeReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Idle => "idle",
            Self::WindowOpens => "window_opens",
            Self::Fast => "fast",
        }
    }

    /// Tie-break between candidates due at the same instant.
    fn precedence(self) -> u8 {
        match self {
            Self::Idle => 0,
            Self::Fast => 1,
            Self::WindowOpens => 2,
            Self::Startup => 3,
        }
    }
}

impl fmt::Display for WakeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The session a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    /// Round of its race.
    pub round: u32,
    /// Its race's name.
    pub race_name: String,
    /// Which session.
    pub session_type: SessionType,
}

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round {} {}", self.round, self.session_type)
    }
}

/// When the next run is due and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Due time; never before the `now` it was planned at.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: WakeReason,
    /// The session whose window drives it (none for idle runs).
    pub session: Option<SessionRef>,
}

impl Decision {
    /// Whether this run belongs to a session window (fast polling).
    pub fn is_fast(&self) -> bool {
        matches!(self.reason, WakeReason::WindowOpens | WakeReason::Fast)
    }
}

/// The next run after `history`, as seen at `now`. Deterministic and
/// idempotent: planning again at the same inputs gives the same answer, so
/// the loop may re-plan whenever it wakes.
pub fn plan(now: DateTime<Utc>, calendar: &Calendar, policy: &PollPolicy, history: &RunHistory) -> Decision {
    let mut best = Decision {
        at: history.anchor() + policy.interval,
        reason: WakeReason::Idle,
        session: None,
    };
    if policy.use_calendar {
        for (race, session) in calendar.sessions() {
            let Some(window) = policy.timing.window(session) else {
                continue;
            };
            if window.close <= now {
                continue;
            }
            let candidate = match history.last_run {
                // Inside the window already: keep the fast cadence while it lasts.
                Some(last) if last >= window.open => {
                    let next = last + policy.live_interval;
                    if next >= window.close {
                        continue;
                    }
                    (next, WakeReason::Fast)
                }
                // No run since it opened: run at the opening (now, if it is
                // already open).
                _ => (window.open, WakeReason::WindowOpens),
            };
            let better = candidate.0 < best.at
                || (candidate.0 == best.at && candidate.1.precedence() > best.reason.precedence());
            if better {
                best = Decision {
                    at: candidate.0,
                    reason: candidate.1,
                    session: Some(SessionRef {
                        round: race.round,
                        race_name: race.race_name.clone(),
                        session_type: session.session_type,
                    }),
                };
            }
        }
    }
    best.at = best.at.max(now);
    best
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::schedule::calendar::{Race, Session};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn session(kind: SessionType, start: Option<&str>, minutes: u32) -> Session {
        let start = start.map(at);
        Session {
            session_type: kind,
            name: kind.as_str().to_owned(),
            date: start.map_or(NaiveDate::MIN, |s| s.date_naive()),
            start,
            duration_minutes: minutes,
        }
    }

    fn calendar(sessions: Vec<Session>) -> Calendar {
        Calendar {
            season: Some("2026".into()),
            updated_at: None,
            races: vec![Race {
                season: "2026".into(),
                round: 1,
                race_name: "Test GP".into(),
                url: None,
                circuit: "Ring".into(),
                circuit_id: "ring".into(),
                country: "Land".into(),
                locality: "Town".into(),
                date: NaiveDate::MIN,
                sessions,
            }],
        }
    }

    fn policy() -> PollPolicy {
        PollPolicy {
            use_calendar: true,
            interval: TimeDelta::minutes(30),
            live_interval: TimeDelta::minutes(5),
            timing: SessionTiming {
                lead: TimeDelta::minutes(15),
                overrun_race: TimeDelta::minutes(30),
                overrun_other: TimeDelta::minutes(15),
            },
        }
    }

    fn ran(since: &str, last: Option<&str>) -> RunHistory {
        RunHistory {
            since: at(since),
            last_run: last.map(at),
        }
    }

    /// A race 13:00–15:00, window 12:45–15:30.
    fn race_day() -> Calendar {
        calendar(vec![session(
            SessionType::Race,
            Some("2026-04-05T13:00:00Z"),
            120,
        )])
    }

    #[test]
    fn idle_interval_counts_from_the_last_run() {
        let decision = plan(
            at("2026-04-05T08:10:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T08:00:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T08:30:00Z"));
        assert_eq!(decision.reason, WakeReason::Idle);
        assert!(!decision.is_fast());
        assert_eq!(decision.session, None);
    }

    #[test]
    fn without_a_run_the_idle_interval_counts_from_the_start_of_polling() {
        let decision = plan(
            at("2026-04-05T08:10:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T08:00:00Z", None),
        );
        assert_eq!(decision.at, at("2026-04-05T08:30:00Z"));
    }

    #[test]
    fn the_window_opening_preempts_the_idle_run_to_the_second() {
        // Last idle run 12:30; the next idle one would be 13:00, but the
        // window opens at 12:45 (lead 15 min before 13:00).
        let decision = plan(
            at("2026-04-05T12:31:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:30:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T12:45:00Z"));
        assert_eq!(decision.reason, WakeReason::WindowOpens);
        assert!(decision.is_fast());
        assert_eq!(
            decision.session.map(|s| (s.round, s.session_type)),
            Some((1, SessionType::Race))
        );
    }

    #[test]
    fn an_idle_run_just_before_the_opening_does_not_replace_the_opening_run() {
        let decision = plan(
            at("2026-04-05T12:44:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:44:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T12:45:00Z"));
        assert_eq!(decision.reason, WakeReason::WindowOpens);
    }

    #[test]
    fn inside_the_window_runs_follow_the_live_interval() {
        let decision = plan(
            at("2026-04-05T12:45:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:45:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T12:50:00Z"));
        assert_eq!(decision.reason, WakeReason::Fast);
        // During the race and during the overrun alike.
        for last in [
            "2026-04-05T14:00:00Z",
            "2026-04-05T15:10:00Z",
            "2026-04-05T15:24:59Z",
        ] {
            let decision = plan(
                at(last),
                &race_day(),
                &policy(),
                &ran("2026-04-05T06:00:00Z", Some(last)),
            );
            assert_eq!(
                decision.at,
                at(last) + TimeDelta::minutes(5),
                "after a run at {last}"
            );
            assert_eq!(decision.reason, WakeReason::Fast);
        }
    }

    #[test]
    fn a_run_that_overruns_the_cadence_is_followed_at_once() {
        // The 13:00 run took 7 minutes: the 13:05 one is overdue.
        let decision = plan(
            at("2026-04-05T13:07:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T13:00:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T13:07:00Z"));
        assert_eq!(decision.reason, WakeReason::Fast);
    }

    #[test]
    fn after_the_race_overrun_the_idle_interval_returns() {
        // Window closes 15:30 (planned end 15:00 + 30). A run at 15:25 has
        // no fast successor: 15:30 is outside.
        let decision = plan(
            at("2026-04-05T15:25:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T15:25:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T15:55:00Z"));
        assert_eq!(decision.reason, WakeReason::Idle);
    }

    #[test]
    fn other_sessions_overrun_fifteen_minutes() {
        // Qualifying 14:00–15:00, window 13:45–15:15.
        let quali = calendar(vec![session(
            SessionType::Qualifying,
            Some("2026-04-04T14:00:00Z"),
            60,
        )]);
        let last = "2026-04-04T15:05:00Z";
        let decision = plan(
            at(last),
            &quali,
            &policy(),
            &ran("2026-04-04T06:00:00Z", Some(last)),
        );
        assert_eq!(decision.at, at("2026-04-04T15:10:00Z"));
        assert_eq!(decision.reason, WakeReason::Fast);
        let last = "2026-04-04T15:10:00Z";
        let decision = plan(
            at(last),
            &quali,
            &policy(),
            &ran("2026-04-04T06:00:00Z", Some(last)),
        );
        assert_eq!(decision.at, at("2026-04-04T15:40:00Z"));
        assert_eq!(decision.reason, WakeReason::Idle);
    }

    #[test]
    fn starting_inside_an_open_window_runs_at_once() {
        let decision = plan(
            at("2026-04-05T13:20:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T13:20:00Z", None),
        );
        assert_eq!(decision.at, at("2026-04-05T13:20:00Z"));
        assert_eq!(decision.reason, WakeReason::WindowOpens);
        // Also when the last run predates the opening (a run in flight
        // across it, or a calendar that gained the session meanwhile).
        let decision = plan(
            at("2026-04-05T12:46:00Z"),
            &race_day(),
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:40:00Z")),
        );
        assert_eq!(decision.at, at("2026-04-05T12:46:00Z"));
        assert_eq!(decision.reason, WakeReason::WindowOpens);
    }

    #[test]
    fn a_session_added_to_the_calendar_moves_the_wake_up_earlier() {
        let history = ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:30:00Z"));
        let now = at("2026-04-05T12:35:00Z");
        let empty = plan(now, &Calendar::default(), &policy(), &history);
        assert_eq!(empty.at, at("2026-04-05T13:00:00Z"));
        let sprint = calendar(vec![session(
            SessionType::Sprint,
            Some("2026-04-05T12:50:00Z"),
            30,
        )]);
        let with_session = plan(now, &sprint, &policy(), &history);
        assert_eq!(
            with_session.at,
            at("2026-04-05T12:35:00Z"),
            "window opened at 12:35"
        );
        assert_eq!(with_session.reason, WakeReason::WindowOpens);
    }

    #[test]
    fn disabled_or_empty_schedule_means_the_fixed_interval() {
        let history = ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:40:00Z"));
        let now = at("2026-04-05T12:41:00Z");
        let disabled = PollPolicy {
            use_calendar: false,
            ..policy()
        };
        for (calendar, policy) in [(race_day(), disabled), (Calendar::default(), policy())] {
            let decision = plan(now, &calendar, &policy, &history);
            assert_eq!(decision.at, at("2026-04-05T13:10:00Z"));
            assert_eq!(decision.reason, WakeReason::Idle);
        }
    }

    #[test]
    fn sessions_without_a_time_have_no_window() {
        let untimed = calendar(vec![session(SessionType::Race, None, 120)]);
        let decision = plan(
            at("2026-04-05T12:41:00Z"),
            &untimed,
            &policy(),
            &ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:40:00Z")),
        );
        assert_eq!(decision.reason, WakeReason::Idle);
    }

    #[test]
    fn overlapping_windows_hand_over_without_a_gap() {
        // Sprint 10:00–10:30 (window to 10:45); qualifying at 10:50 opens
        // its window at 10:35, inside the sprint's.
        let both = calendar(vec![
            session(SessionType::Sprint, Some("2026-04-04T10:00:00Z"), 30),
            session(SessionType::Qualifying, Some("2026-04-04T10:50:00Z"), 60),
        ]);
        let history = ran("2026-04-04T06:00:00Z", Some("2026-04-04T10:33:00Z"));
        let decision = plan(at("2026-04-04T10:33:00Z"), &both, &policy(), &history);
        assert_eq!(decision.at, at("2026-04-04T10:35:00Z"));
        assert_eq!(decision.reason, WakeReason::WindowOpens);
        assert_eq!(
            decision.session.map(|s| s.session_type),
            Some(SessionType::Qualifying)
        );
        let history = ran("2026-04-04T06:00:00Z", Some("2026-04-04T10:35:00Z"));
        let decision = plan(at("2026-04-04T10:35:00Z"), &both, &policy(), &history);
        assert_eq!(decision.at, at("2026-04-04T10:40:00Z"));
        assert_eq!(decision.reason, WakeReason::Fast);
    }

    #[test]
    fn past_windows_are_ignored_and_the_next_one_is_found() {
        let weekend = calendar(vec![
            session(SessionType::Fp1, Some("2026-04-03T11:30:00Z"), 60),
            session(SessionType::Fp2, Some("2026-04-03T15:00:00Z"), 60),
        ]);
        let history = ran("2026-04-03T06:00:00Z", Some("2026-04-03T14:30:00Z"));
        let decision = plan(at("2026-04-03T14:31:00Z"), &weekend, &policy(), &history);
        assert_eq!(decision.at, at("2026-04-03T14:45:00Z"));
        assert_eq!(decision.session.map(|s| s.session_type), Some(SessionType::Fp2));
    }

    #[test]
    fn planning_is_idempotent_and_never_in_the_past() {
        let history = ran("2026-04-05T06:00:00Z", Some("2026-04-05T08:00:00Z"));
        let late = at("2026-04-05T09:00:00Z");
        let first = plan(late, &race_day(), &policy(), &history);
        assert_eq!(first, plan(late, &race_day(), &policy(), &history));
        assert_eq!(first.at, late, "an overdue idle run is due now, not in the past");
    }

    #[test]
    fn a_live_interval_longer_than_the_window_still_runs_at_the_opening() {
        let slow_live = PollPolicy {
            live_interval: TimeDelta::hours(4),
            ..policy()
        };
        let history = ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:30:00Z"));
        let decision = plan(at("2026-04-05T12:31:00Z"), &race_day(), &slow_live, &history);
        assert_eq!(decision.at, at("2026-04-05T12:45:00Z"));
        let history = ran("2026-04-05T06:00:00Z", Some("2026-04-05T12:45:00Z"));
        let decision = plan(at("2026-04-05T12:45:00Z"), &race_day(), &slow_live, &history);
        assert_eq!(decision.reason, WakeReason::Idle);
        assert_eq!(decision.at, at("2026-04-05T13:15:00Z"));
    }
}
