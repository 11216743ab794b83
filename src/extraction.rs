//! One extraction run: every enabled extractor concurrently (each bounded by
//! its timeout), unique URLs checked with bounded concurrency, the whole run
//! stored in one transaction. Concurrent triggers share one run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{StreamExt, stream};
use reqwest::header::HeaderMap;
use serde::Serialize;

use crate::db::{CheckedStream, Database, ExtractorOutcome, PreviousStanding, RunRecord, Verdict};
use crate::health::HealthChecker;
use crate::metrics::Metrics;
use crate::model::{
    ErrorKind, HealthResult, HealthState, MediaState, RunTrigger, StreamCandidate, ewma, score,
};
use crate::sources::{Extractor, SourceContext};

/// Reports check progress: `(done, total)`. The CLI prints it to stderr.
pub type ProgressFn = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// What a finished run reports to whoever triggered it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    /// Id of the stored run.
    pub run_id: i64,
    /// Streams found by every extractor.
    pub streams_found: usize,
    /// Streams whose check was healthy.
    pub live_streams: usize,
    /// Extractors that ran.
    pub extractors_run: usize,
}

/// A run that could not be stored. Shared by every waiter, hence `Clone`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("extraction run failed: {0}")]
pub struct RunError(Arc<str>);

type RunFuture = Shared<BoxFuture<'static, Result<(RunSummary, Arc<RunRecord>), RunError>>>;

/// Runs extractions; cheap to clone, all clones share the in-flight run.
#[derive(Clone)]
pub struct Extraction {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    failures_before_down: u32,
    extractors: Vec<Arc<Extractor>>,
    sources: SourceContext,
    checker: HealthChecker,
    db: Database,
    extractor_timeout: Duration,
    concurrency: usize,
    in_flight: Mutex<Option<RunFuture>>,
}

/// Everything a run needs.
pub struct ExtractionParts {
    /// Configured extractors (disabled ones are skipped).
    pub extractors: Vec<Arc<Extractor>>,
    /// Client and limits for source documents.
    pub sources: SourceContext,
    /// The health checker.
    pub checker: HealthChecker,
    /// Where runs are stored.
    pub db: Database,
    /// Bound of one extractor.
    pub extractor_timeout: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// Where runs, checks and extractor state are counted.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures before a served stream is dropped.
    pub failures_before_down: u32,
}

impl Extraction {
    /// A runner over `parts`.
    pub fn new(parts: ExtractionParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                metrics: parts.metrics,
                failures_before_down: parts.failures_before_down,
                extractors: parts.extractors,
                sources: parts.sources,
                checker: parts.checker,
                db: parts.db,
                extractor_timeout: parts.extractor_timeout,
                concurrency: parts.concurrency.max(1),
                in_flight: Mutex::new(None),
            }),
        }
    }

    /// Sets the per-extractor gauges from the stored state (after a run, and
    /// at startup so a restart does not reset them to empty).
    pub async fn publish_extractor_state(&self) -> Result<(), crate::db::DbError> {
        self.inner.publish_extractor_state().await
    }

    /// Runs now, or joins the run already in flight (whose trigger wins).
    /// The run itself is a spawned task: a caller that goes away (a client
    /// disconnecting from `POST /extract`) does not cancel it.
    pub async fn run(&self, trigger: RunTrigger) -> Result<RunSummary, RunError> {
        self.run_with_progress(trigger, None)
            .await
            .map(|(summary, _)| summary)
    }

    /// Like [`Extraction::run`], reporting check progress and returning the
    /// stored record (the CLI prints it).
    pub async fn run_with_progress(
        &self,
        trigger: RunTrigger,
        progress: Option<ProgressFn>,
    ) -> Result<(RunSummary, Arc<RunRecord>), RunError> {
        let run = {
            let mut slot = self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(run) => run.clone(),
                None => {
                    let inner = Arc::clone(&self.inner);
                    let task = tokio::spawn(async move {
                        let result = inner.run_once(trigger, progress).await;
                        // Cleared before waiters see the result, so a trigger
                        // that arrives after this run finished starts a new one.
                        *inner.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        result
                    });
                    let run: RunFuture = async move {
                        task.await
                            .map_err(|e| RunError(format!("run task failed: {e}").into()))?
                    }
                    .boxed()
                    .shared();
                    *slot = Some(run.clone());
                    run
                }
            }
        };
        run.await
    }
}

/// What one check needs: the URL, its headers, and where its live playlist
/// stood at the previous check.
struct Target {
    url: String,
    headers: HeaderMap,
    previous: Option<MediaState>,
}

/// A URL under one set of request headers: the unit that is checked once.
/// Header sets are numbered once per run (extractors with equal headers
/// share a number), so a key is cheap to build for every candidate.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CheckKey {
    url: String,
    header_set: usize,
}

/// For each enabled extractor, the index of the first one with the same
/// headers: its header-set number.
fn header_sets(extractors: &[&Arc<Extractor>]) -> Vec<usize> {
    (0..extractors.len())
        .map(|i| {
            (0..=i)
                .find(|&j| extractors[j].headers == extractors[i].headers)
                .unwrap_or(i)
        })
        .collect()
}

impl Inner {
    #[tracing::instrument(skip_all, fields(trigger = trigger.as_str()))]
    async fn run_once(
        &self,
        trigger: RunTrigger,
        progress: Option<ProgressFn>,
    ) -> Result<(RunSummary, Arc<RunRecord>), RunError> {
        let started_at = Utc::now();
        let enabled: Vec<&Arc<Extractor>> = self.extractors.iter().filter(|e| e.enabled).collect();
        let found = futures::future::join_all(enabled.iter().map(|e| self.extract_one(e))).await;

        // Without the previous standings the run still works: every stream
        // is judged as new (no damping, no stale test) rather than not at all.
        let previous = self.db.previous_standings(started_at).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read previous stream state; judging streams as new");
            HashMap::new()
        });
        let header_sets = header_sets(&enabled);
        let standing = |site_key: &str, url: &str| previous.get(site_key).and_then(|by_url| by_url.get(url));
        let mut unique: HashMap<CheckKey, Target> = HashMap::new();
        for ((extractor, (_, _, candidates)), &header_set) in enabled.iter().zip(&found).zip(&header_sets) {
            for candidate in candidates {
                let media = standing(&extractor.site_key, &candidate.url).and_then(|s| s.media.clone());
                let key = CheckKey {
                    url: candidate.url.clone(),
                    header_set,
                };
                let target = unique.entry(key).or_insert_with(|| Target {
                    url: candidate.url.clone(),
                    headers: extractor.headers.clone(),
                    previous: None,
                });
                target.previous = target.previous.take().or(media);
            }
        }
        let verdicts = self.check_all(unique, progress).await;

        let outcomes = enabled
            .iter()
            .zip(found)
            .zip(&header_sets)
            .map(
                |((extractor, (duration_ms, error, candidates)), &header_set)| ExtractorOutcome {
                    site_key: extractor.site_key.clone(),
                    duration_ms,
                    error,
                    streams: candidates
                        .into_iter()
                        .filter_map(|candidate| {
                            let key = CheckKey {
                                url: candidate.url.clone(),
                                header_set,
                            };
                            let health = verdicts.get(&key)?.clone();
                            let verdict =
                                self.verdict(&health, standing(&extractor.site_key, &candidate.url));
                            Some(CheckedStream {
                                candidate,
                                health,
                                verdict,
                            })
                        })
                        .collect(),
                },
            )
            .collect();
        let record = RunRecord {
            trigger,
            started_at,
            finished_at: Utc::now(),
            extractors: outcomes,
        };
        let run_id = self.db.store_run(&record).await.map_err(|e| {
            tracing::error!(error = %e, "storing the run failed; previous state kept");
            RunError(e.to_string().into())
        })?;
        self.record_metrics(&record);
        if let Err(e) = self.publish_extractor_state().await {
            tracing::warn!(error = %e, "cannot read extractor state for metrics");
        }
        let summary = RunSummary {
            run_id,
            streams_found: record.stream_count(),
            live_streams: record.live_count(),
            extractors_run: record.extractors.len(),
        };
        tracing::info!(
            run_id,
            streams = summary.streams_found,
            live = summary.live_streams,
            extractors = summary.extractors_run,
            seconds = (record.finished_at - started_at).num_milliseconds() as f64 / 1000.0,
            "extraction run stored"
        );
        Ok((summary, Arc::new(record)))
    }

    fn record_metrics(&self, record: &RunRecord) {
        for outcome in &record.extractors {
            self.metrics
                .record_extractor_run(&outcome.site_key, Duration::from_millis(outcome.duration_ms));
            for stream in &outcome.streams {
                self.metrics.record_check(&outcome.site_key, &stream.health);
            }
        }
        let elapsed = (record.finished_at - record.started_at)
            .to_std()
            .unwrap_or_default();
        self.metrics.record_run(record.trigger, elapsed);
    }

    async fn publish_extractor_state(&self) -> Result<(), crate::db::DbError> {
        let statuses = self.db.extractor_statuses().await?;
        for extractor in &self.extractors {
            let status = statuses.iter().find(|s| s.site_key == extractor.site_key);
            let (up, streams, live) = status.map_or((false, 0, 0), |s| {
                let returned = s.last_stream_count.unwrap_or(0) > 0;
                (
                    returned && s.last_error.is_none(),
                    s.cached_streams,
                    s.live_streams,
                )
            });
            self.metrics
                .set_extractor_state(&extractor.site_key, up, streams, live);
        }
        Ok(())
    }

    /// Runs one extractor under its timeout: (duration_ms, error, streams).
    async fn extract_one(&self, extractor: &Extractor) -> (u64, Option<String>, Vec<StreamCandidate>) {
        let started = Instant::now();
        let result = tokio::time::timeout(self.extractor_timeout, extractor.extract(&self.sources)).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(Ok(streams)) => (duration_ms, None, streams),
            Ok(Err(e)) => {
                tracing::warn!(site_key = %extractor.site_key, error = %e, "extractor failed");
                (duration_ms, Some(e.to_string()), Vec::new())
            }
            Err(_) => {
                let message = format!("timed out after {} s", self.extractor_timeout.as_secs());
                tracing::warn!(site_key = %extractor.site_key, "extractor {message}");
                (duration_ms, Some(message), Vec::new())
            }
        }
    }

    /// The stream's standing after `health`, from its previous standing.
    fn verdict(&self, health: &HealthResult, standing: Option<&PreviousStanding>) -> Verdict {
        let Some(standing) = standing else {
            return Verdict::first(health);
        };
        let (state, consecutive_failures) = HealthState::after_check(
            Some((standing.state, standing.consecutive_failures)),
            health.is_live,
            self.failures_before_down,
        );
        let ewma_response_ms = match health.response_time_ms {
            Some(ms) if health.is_live => Some(ewma(standing.ewma_response_ms, ms as f64)),
            _ => standing.ewma_response_ms,
        };
        Verdict {
            state,
            consecutive_failures,
            ewma_response_ms,
            score: score(
                state,
                standing.uptime_24h,
                ewma_response_ms,
                health.throughput_ratio,
            ),
        }
    }

    /// Checks every target with bounded concurrency; targets that timed out
    /// are checked once more at the end of the run (a single slow answer is
    /// not yet a failure).
    async fn check_all(
        &self,
        targets: HashMap<CheckKey, Target>,
        progress: Option<ProgressFn>,
    ) -> HashMap<CheckKey, HealthResult> {
        let total = targets.len();
        let mut done = 0;
        let mut verdicts = HashMap::with_capacity(total);
        let mut timed_out = Vec::new();
        let check = |(key, target): (CheckKey, Target)| async move {
            let health = self
                .checker
                .check_since(&target.url, &target.headers, target.previous.as_ref())
                .await;
            (key, target, health)
        };
        let mut checks = stream::iter(targets)
            .map(check)
            .buffer_unordered(self.concurrency);
        while let Some((key, target, health)) = checks.next().await {
            done += 1;
            if let Some(report) = &progress {
                report(done, total);
            }
            if health.error_kind == Some(ErrorKind::Timeout) {
                timed_out.push((key.clone(), target));
            }
            verdicts.insert(key, health);
        }
        let mut retries = stream::iter(timed_out)
            .map(check)
            .buffer_unordered(self.concurrency);
        while let Some((key, _, health)) = retries.next().await {
            verdicts.insert(key, health);
        }
        verdicts
    }
}
