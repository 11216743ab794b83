//! The polling loop: asks [`plan`] when the next run is due, sleeps until
//! then (woken early by a calendar change or shutdown), runs, repeats. Runs
//! are awaited one at a time, so changing windows never starts two at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::RunTrigger;

use super::calendar::Calendar;
use super::clock::Clock;
use super::planner::{Decision, PollPolicy, RunHistory, WakeReason, plan};

/// Longest single sleep: the loop re-plans at least this often, so a jump of
/// the wall clock (suspend, NTP step) is noticed within a minute.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The adaptive polling loop.
#[derive(Debug)]
pub struct Scheduler {
    clock: Arc<dyn Clock>,
    calendar: watch::Receiver<Arc<Calendar>>,
    policy: PollPolicy,
}

impl Scheduler {
    /// A loop planning on `calendar` (re-planned whenever it changes).
    pub fn new(clock: Arc<dyn Clock>, calendar: watch::Receiver<Arc<Calendar>>, policy: PollPolicy) -> Self {
        Self {
            clock,
            calendar,
            policy,
        }
    }

    /// Runs until `stop` turns true: one startup run if `run_on_startup`,
    /// then runs as planned. `run` performs one run and resolves when it is
    /// over; the next is planned only then. A stop cancels the wait for a
    /// run in progress (the extraction runner finishes and stores it).
    pub async fn run<F, Fut>(mut self, run_on_startup: bool, mut run: F, mut stop: watch::Receiver<bool>)
    where
        F: FnMut(RunTrigger, Decision) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut history = RunHistory {
            since: self.clock.now(),
            last_run: None,
        };
        if run_on_startup {
            let now = self.clock.now();
            history.last_run = Some(now);
            let decision = Decision {
                at: now,
                reason: WakeReason::Startup,
                session: None,
            };
            tracing::info!(reason = %decision.reason, "extraction run");
            tokio::select! {
                _ = run(RunTrigger::Startup, decision) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
        let mut calendar_open = true;
        loop {
            let calendar = Arc::clone(&self.calendar.borrow_and_update());
            let now = self.clock.now();
            // A wall clock stepped back must not push the next run out by
            // the size of the step.
            history.last_run = history.last_run.map(|last| last.min(now));
            let decision = plan(now, &calendar, &self.policy, &history);
            if decision.at <= now {
                history.last_run = Some(now);
                match &decision.session {
                    Some(session) => tracing::info!(reason = %decision.reason, %session, "extraction run"),
                    None => tracing::info!(reason = %decision.reason, "extraction run"),
                }
                tokio::select! {
                    _ = run(RunTrigger::Schedule, decision) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                continue;
            }
            tracing::debug!(at = %decision.at, reason = %decision.reason, "next extraction run");
            let wait = (decision.at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP);
            let calendar_changed = async {
                if !calendar_open || self.calendar.changed().await.is_err() {
                    // The calendar's owner is gone: plan on the last one.
                    calendar_open = false;
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = calendar_changed => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}
