//! Retention of raw health checks: checks older than
//! `database.retention_days` are deleted in small batches with a pause
//! between them, so no write lock is held long enough to stall a run or the
//! API; hourly rollups and state changes are kept forever. After pruning,
//! `PRAGMA optimize` and an incremental vacuum give the space back.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::db::{Database, DbError, hour_start};

/// Time between two retention passes of the background task.
pub const PASS_INTERVAL: Duration = Duration::from_secs(3600);
/// Raw checks deleted per transaction.
pub const BATCH_ROWS: u32 = 1000;
/// Pause between two batches (and two vacuum steps), in which other writers
/// get the lock.
pub const BATCH_PAUSE: Duration = Duration::from_millis(50);
/// Pages one incremental-vacuum step returns to the file system (8 MiB with
/// the default 4 KiB pages).
pub const VACUUM_PAGES: u32 = 2048;

/// What a pass deletes and how it paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Raw checks older than this many days are deleted; 0 keeps them forever.
    pub days: u32,
    /// Rows per delete transaction.
    pub batch_rows: u32,
    /// Pause between transactions.
    pub pause: Duration,
}

impl RetentionPolicy {
    /// The policy for `database.retention_days` with the default pacing.
    pub fn days(days: u32) -> Self {
        Self {
            days,
            batch_rows: BATCH_ROWS,
            pause: BATCH_PAUSE,
        }
    }

    /// Checks before this time are deleted: `days` before `now`, rounded
    /// down to the hour (whole hours are pruned, so every hour is either
    /// fully raw or fully rollup). `None` when checks are kept forever.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A retention longer than the calendar reaches back keeps everything.
        (self.days > 0)
            .then(|| now.checked_sub_signed(TimeDelta::try_days(i64::from(self.days))?))
            .flatten()
            .map(hour_start)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Checks before this time were deleted (`None`: retention is off).
    pub cutoff: Option<DateTime<Utc>>,
    /// Raw checks deleted.
    pub deleted: u64,
    /// Delete transactions.
    pub batches: u32,
    /// Pages returned to the file system by incremental vacuum.
    pub freed_pages: i64,
}

/// One retention pass at `now`: delete old raw checks batch by batch, then
/// `PRAGMA optimize`, then incremental vacuum step by step. Tests call it
/// directly; the service runs it from [`run`].
#[tracing::instrument(skip_all, fields(days = policy.days))]
pub async fn prune(
    db: &Database,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<PruneReport, DbError> {
    let mut report = PruneReport {
        cutoff: policy.cutoff(now),
        ..PruneReport::default()
    };
    let batch_rows = policy.batch_rows.max(1);
    if let Some(cutoff) = report.cutoff {
        loop {
            let batch = db.prune_checks_batch(cutoff, batch_rows).await?;
            report.batches += 1;
            report.deleted += batch.deleted;
            if batch.deleted < u64::from(batch_rows) {
                break;
            }
            tokio::time::sleep(policy.pause).await;
        }
    }
    db.optimize().await?;
    let stats = db.storage_stats().await?;
    if stats.is_incremental() {
        let mut free = stats.freelist_count;
        while free > 0 {
            let left = db.incremental_vacuum(VACUUM_PAGES).await?;
            report.freed_pages += free - left;
            if left >= free {
                break;
            }
            free = left;
            if free > 0 {
                tokio::time::sleep(policy.pause).await;
            }
        }
    }
    Ok(report)
}

/// The background task: a pass at start and every [`PASS_INTERVAL`] until
/// `stop` turns true. A failed pass is logged and retried at the next tick.
pub async fn run(db: Database, policy: RetentionPolicy, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(PASS_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticks.tick() => {}
        }
        let pass = prune(&db, &policy, Utc::now());
        let result = tokio::select! {
            // A pass cut short rolls its open batch back; deleted batches stay deleted.
            _ = stop.wait_for(|stopped| *stopped) => return,
            result = pass => result,
        };
        match result {
            Ok(report) if report.deleted > 0 || report.freed_pages > 0 => tracing::info!(
                deleted = report.deleted,
                batches = report.batches,
                freed_pages = report.freed_pages,
                "pruned old health checks"
            ),
            Ok(_) => tracing::debug!("retention pass: nothing to prune"),
            Err(e) => tracing::error!(error = %e, "retention pass failed; retrying at the next one"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_whole_hours_and_off_at_zero_days() {
        let now = DateTime::parse_from_rfc3339("2026-03-08T05:42:10.500Z")
            .expect("valid")
            .with_timezone(&Utc);
        let expected = DateTime::parse_from_rfc3339("2026-03-05T05:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(RetentionPolicy::days(3).cutoff(now), Some(expected));
        assert_eq!(RetentionPolicy::days(0).cutoff(now), None);
        assert_eq!(RetentionPolicy::days(u32::MAX).cutoff(now), None);
    }
}
