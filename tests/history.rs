//! Durable health history through the real database and service:
//! rollups equal the raw checks, events sit exactly at transitions, retention
//! keeps rollups and events, the history API pages, filters and refuses bad
//! input, and every SQL example of docs/SQL.md runs against real data.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestService, test_config_toml};
use f1_stream::config::ExtractorConfig;
use f1_stream::db::{CheckedStream, Database, ExtractorOutcome, RunRecord, Tally, Verdict, hour_start};
use f1_stream::model::{ErrorKind, HealthResult, PlaylistKind, RunTrigger, StreamCandidate, StreamType};
use f1_stream::retention::{self, RetentionPolicy};
use proptest::prelude::*;
use serde_json::Value;
use sqlx::Row;

// ---------------------------------------------------------------- helpers

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid timestamp")
        .with_timezone(&Utc)
}

fn healthy(checked_at: DateTime<Utc>, ms: u64) -> HealthResult {
    HealthResult {
        is_live: true,
        response_time_ms: Some(ms),
        ttfb_ms: Some(ms / 2),
        http_status: Some(200),
        bitrate: 5_000_000,
        error_kind: None,
        error: None,
        playlist_kind: Some(PlaylistKind::Media),
        stream_type: StreamType::Live,
        ..HealthResult::failed(checked_at, ErrorKind::Other, "")
    }
}

/// An unhealthy check; `ms` is `Some` when a response arrived (an HTTP error).
fn unhealthy(checked_at: DateTime<Utc>, ms: Option<u64>) -> HealthResult {
    match ms {
        Some(ms) => HealthResult {
            response_time_ms: Some(ms),
            http_status: Some(404),
            ..HealthResult::failed(checked_at, ErrorKind::HttpStatus, "HTTP 404")
        },
        None => HealthResult::failed(checked_at, ErrorKind::Timeout, "Timeout"),
    }
}

/// One check of a run: which extractor reported which URL, and its verdict.
struct Seen {
    site: &'static str,
    url: String,
    health: HealthResult,
}

fn seen(site: &'static str, url: &str, health: HealthResult) -> Seen {
    Seen {
        site,
        url: url.to_owned(),
        health,
    }
}

/// A run finishing at `finished_at` that reported `checks` (grouped by
/// extractor in order of appearance) and in which `failed` extractors failed.
fn run(finished_at: DateTime<Utc>, checks: Vec<Seen>, failed: &[&str]) -> RunRecord {
    let mut extractors: Vec<ExtractorOutcome> = Vec::new();
    for check in checks {
        let stream = CheckedStream {
            candidate: StreamCandidate {
                title: Some(format!("{} {}", check.site, check.url)),
                ..StreamCandidate::new(check.url)
            },
            verdict: Verdict::first(&check.health),
            health: check.health,
        };
        match extractors.iter_mut().find(|o| o.site_key == check.site) {
            Some(outcome) => outcome.streams.push(stream),
            None => extractors.push(ExtractorOutcome {
                site_key: check.site.to_owned(),
                duration_ms: 12,
                error: None,
                streams: vec![stream],
            }),
        }
    }
    for site in failed {
        extractors.push(ExtractorOutcome {
            site_key: (*site).to_owned(),
            duration_ms: 30,
            error: Some("HTTP 500".to_owned()),
            streams: Vec::new(),
        });
    }
    RunRecord {
        trigger: RunTrigger::Schedule,
        started_at: finished_at - TimeDelta::seconds(5),
        finished_at,
        extractors,
    }
}

fn extractors() -> Vec<ExtractorConfig> {
    let demo = ExtractorConfig::demo();
    let mut backup = ExtractorConfig::demo();
    backup.site_key = "backup".to_owned();
    backup.site_name = "Backup".to_owned();
    vec![demo, backup]
}

/// A migrated database knowing the `demo` and `backup` extractors.
async fn open(url: &str) -> Database {
    let db = Database::open(url).await.expect("database opens");
    db.sync_extractors(&f1_stream::app::extractor_records(&extractors()))
        .await
        .expect("extractors stored");
    db
}

async fn memory_db() -> Database {
    open("sqlite::memory:").await
}

/// The service (extractors `demo` and `backup`, retention off so only the
/// test prunes) on a temp database.
async fn service() -> TestService {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1-stream.db");
    let extra = "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n\
                 [[extractors]]\nsite_key = \"backup\"\nsite_name = \"Backup\"\nkind = \"demo\"\n";
    let toml = test_config_toml(&db_path, extra).replace("[database]\n", "[database]\nretention_days = 0\n");
    let service = TestService::start_with_config(&db_path, &toml).await;
    // The folder must outlive the service: leak it (the OS cleans /tmp).
    std::mem::forget(dir);
    service
}

async fn stream_id(db: &Database, url: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM streams WHERE url = ?1")
        .bind(url)
        .fetch_one(db.pool())
        .await
        .expect("stream stored")
}

async fn count(db: &Database, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db.pool())
        .await
        .expect("count query")
}

/// Aggregates the raw checks of a stream in `[from, to)` like a rollup.
async fn raw_tally(db: &Database, stream_id: i64, from: DateTime<Utc>, to: DateTime<Utc>) -> Tally {
    let row = sqlx::query(
        "SELECT COUNT(*), COALESCE(SUM(is_live), 0), COUNT(response_time_ms),
                COALESCE(SUM(response_time_ms), 0), MIN(response_time_ms), MAX(response_time_ms)
         FROM health_checks WHERE stream_id = ?1 AND checked_at >= ?2 AND checked_at < ?3",
    )
    .bind(stream_id)
    .bind(f1_stream::model::format_timestamp(from))
    .bind(f1_stream::model::format_timestamp(to))
    .fetch_one(db.pool())
    .await
    .expect("raw aggregate");
    Tally {
        checks: row.get(0),
        healthy: row.get(1),
        response_samples: row.get(2),
        response_ms_sum: row.get(3),
        response_ms_min: row.get(4),
        response_ms_max: row.get(5),
    }
}

/// Rollup rows as `(hour, [stream_id, checks, healthy, samples, sum, min, max])`.
async fn rollup_rows(db: &Database, sql: &'static str) -> Vec<(String, Vec<Option<i64>>)> {
    sqlx::query(sql)
        .fetch_all(db.pool())
        .await
        .expect("rollup query")
        .iter()
        .map(|row| (row.get(0), (1..8).map(|i| row.get(i)).collect()))
        .collect()
}

/// Every stored rollup row.
async fn stored_rollups(db: &Database) -> Vec<(String, Vec<Option<i64>>)> {
    rollup_rows(
        db,
        "SELECT hour, stream_id, checks, healthy, response_samples, response_ms_sum,
                response_ms_min, response_ms_max
         FROM health_rollups_hourly ORDER BY stream_id, hour",
    )
    .await
}

/// The rollup rows recomputed from the raw checks.
async fn rollups_from_raw(db: &Database) -> Vec<(String, Vec<Option<i64>>)> {
    rollup_rows(
        db,
        "SELECT substr(checked_at, 1, 13) || ':00:00.000Z' AS hour, stream_id, COUNT(*), SUM(is_live),
                COUNT(response_time_ms), COALESCE(SUM(response_time_ms), 0),
                MIN(response_time_ms), MAX(response_time_ms)
         FROM health_checks GROUP BY stream_id, hour ORDER BY stream_id, hour",
    )
    .await
}

async fn events(db: &Database) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT stream_id, kind FROM stream_events ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("events")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

// ---------------------------------------------------- property: rollups, events, uptime

/// What a random history is made of: per run, the minutes since the
/// previous run and the reported streams with (healthy, response ms).
type RandomRun = (u32, Vec<(usize, bool, Option<u16>, u16)>);

fn random_runs() -> impl Strategy<Value = Vec<RandomRun>> {
    let check = (0usize..4, any::<bool>(), prop::option::of(1u16..5000), 0u16..600);
    prop::collection::vec((0u32..200, prop::collection::vec(check, 0..5)), 1..30)
}

/// The events a run sequence must produce, by a model independent of the
/// SQL: appear when new or back from inactive, health flips against the
/// previous check, inactive when an active stream is not reported.
fn expected_events(runs: &[Vec<(usize, bool)>]) -> Vec<(usize, &'static str)> {
    let mut last_health: HashMap<usize, bool> = HashMap::new();
    let mut active: BTreeSet<usize> = BTreeSet::new();
    let mut first_seen: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for checks in runs {
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for &(stream, live) in checks {
            if !first_seen.contains(&stream) {
                first_seen.push(stream);
            }
            if !active.contains(&stream) && !reported.contains(&stream) {
                out.push((stream, "appeared"));
            }
            if let Some(&before) = last_health.get(&stream)
                && before != live
            {
                out.push((stream, if live { "recovered" } else { "went_down" }));
            }
            last_health.insert(stream, live);
            reported.insert(stream);
        }
        // Inactive events come in stream id order, and ids follow first sight.
        let mut gone: Vec<usize> = active.difference(&reported).copied().collect();
        gone.sort_by_key(|s| first_seen.iter().position(|x| x == s));
        out.extend(gone.into_iter().map(|s| (s, "inactive")));
        active = reported;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Rollups equal the raw checks' aggregate; events are exactly the
    /// model's; uptime over random ranges equals the raw checks in them,
    /// before pruning and (with pruned edges widened to the hour) after.
    #[test]
    fn rollups_events_and_uptime_match_the_raw_checks(
        runs in random_runs(),
        windows in prop::collection::vec((0i64..9000, 1i64..9000), 1..6),
        retention_hours in 0i64..120,
    ) {
        block_on(async {
            let db = memory_db().await;
            let base = at("2026-03-01T00:00:00Z");
            let mut clock = base;
            let mut model_runs = Vec::new();
            for (gap, checks) in &runs {
                clock += TimeDelta::minutes(i64::from(*gap));
                let mut seen_now = BTreeSet::new();
                let checks: Vec<_> = checks.iter().filter(|c| seen_now.insert(c.0)).collect();
                let record = run(
                    clock + TimeDelta::seconds(700),
                    checks
                        .iter()
                        .map(|&&(stream, live, ms, offset)| {
                            let when = clock + TimeDelta::seconds(i64::from(offset));
                            let ms = ms.map(u64::from);
                            let health = if live { healthy(when, ms.unwrap_or(1)) } else { unhealthy(when, ms) };
                            seen("demo", &format!("http://origin/{stream}.m3u8"), health)
                        })
                        .collect(),
                    &[],
                );
                db.store_run(&record).await.expect("run stored");
                model_runs.push(checks.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>());
            }

            let rollups = stored_rollups(&db).await;
            prop_assert_eq!(&rollups, &rollups_from_raw(&db).await);

            let mut ids: HashMap<usize, i64> = HashMap::new();
            for stream in 0..4 {
                if let Ok(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM streams WHERE url = ?1")
                    .bind(format!("http://origin/{stream}.m3u8"))
                    .fetch_one(db.pool())
                    .await
                {
                    ids.insert(stream, id);
                }
            }
            let expected: Vec<(i64, String)> = expected_events(&model_runs)
                .into_iter()
                .map(|(stream, kind)| (ids[&stream], kind.to_owned()))
                .collect();
            prop_assert_eq!(events(&db).await, expected);

            // Uptime over random ranges (minutes from base), exact.
            let ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = windows
                .iter()
                .map(|&(start, len)| {
                    let from = base + TimeDelta::minutes(start) + TimeDelta::milliseconds(start * 7 % 1000);
                    (from, from + TimeDelta::minutes(len))
                })
                .collect();
            for &id in ids.values() {
                let tallies = db.stream_tallies(id, &ranges).await.expect("tallies");
                for (range, tally) in ranges.iter().zip(&tallies) {
                    prop_assert_eq!(*tally, raw_tally(&db, id, range.0, range.1).await);
                }
            }

            // After pruning, a range edge in a pruned hour widens to that hour.
            let now = base + TimeDelta::hours(24 + retention_hours);
            let cutoff = hour_start(now - TimeDelta::days(1));
            let widen = |t: DateTime<Utc>, up: bool| {
                if hour_start(t) >= cutoff || hour_start(t) == t {
                    t
                } else if up {
                    hour_start(t) + TimeDelta::hours(1)
                } else {
                    hour_start(t)
                }
            };
            let mut expected_after = Vec::new();
            for &id in ids.values() {
                for &(from, to) in &ranges {
                    let (a, b) = (widen(from, false), widen(to, true));
                    expected_after.push(raw_tally(&db, id, a, b).await);
                }
            }
            let events_before = events(&db).await;
            let policy = RetentionPolicy { days: 1, batch_rows: 7, pause: Duration::ZERO };
            let report = retention::prune(&db, &policy, now).await.expect("prune");
            prop_assert_eq!(report.cutoff, Some(cutoff));
            prop_assert_eq!(stored_rollups(&db).await, rollups, "rollups are kept");
            prop_assert_eq!(events(&db).await, events_before, "events are kept");
            let mut actual_after = Vec::new();
            for &id in ids.values() {
                actual_after.extend(db.stream_tallies(id, &ranges).await.expect("tallies"));
            }
            prop_assert_eq!(actual_after, expected_after);
            prop_assert_eq!(
                count(&db, "SELECT COUNT(*) FROM health_checks").await,
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM health_checks WHERE checked_at >= ?1")
                    .bind(f1_stream::model::format_timestamp(cutoff))
                    .fetch_one(db.pool())
                    .await
                    .expect("count"),
                "only checks before the cutoff are deleted"
            );
            Ok::<(), TestCaseError>(())
        })?;
    }
}

// ---------------------------------------------------------------- events

/// `stream_id, kind, at, check_id, is_live, error` of an event.
type EventColumns = (i64, String, String, Option<i64>, bool, Option<String>);

#[tokio::test]
async fn a_run_of_many_insert_batches_stores_every_check_event_and_rollup_consistently() {
    // 600 streams of one extractor: the store writes 256 rows per
    // statement, so the second and third batches (check ids continued
    // across statements, events per batch) are exercised. Then half of
    // them go down, and 100 drop out.
    const STREAMS: usize = 600;
    let db = memory_db().await;
    let url = |i: usize| format!("http://origin/many/{i}.m3u8");
    let first = at("2026-03-01T10:00:00Z");
    let second = first + TimeDelta::minutes(5);
    let runs: Vec<Vec<(usize, bool)>> = vec![
        (0..STREAMS).map(|i| (i, true)).collect(),
        (0..STREAMS - 100).map(|i| (i, i % 2 == 1)).collect(),
    ];
    for (checks, finished_at) in runs.iter().zip([first, second]) {
        let record = run(
            finished_at,
            checks
                .iter()
                .map(|&(i, live)| {
                    let when = finished_at - TimeDelta::seconds(1);
                    let health = if live {
                        healthy(when, 40)
                    } else {
                        unhealthy(when, Some(90))
                    };
                    seen("demo", &url(i), health)
                })
                .collect(),
            &[],
        );
        db.store_run(&record).await.expect("run stored");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM streams").await, STREAMS as i64);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM health_checks").await,
        (2 * STREAMS - 100) as i64
    );
    assert_eq!(stored_rollups(&db).await, rollups_from_raw(&db).await);
    let mut ids = HashMap::new();
    for i in 0..STREAMS {
        ids.insert(i, stream_id(&db, &url(i)).await);
    }
    let expected: Vec<(i64, String)> = expected_events(&runs)
        .into_iter()
        .map(|(stream, kind)| (ids[&stream], kind.to_owned()))
        .collect();
    assert_eq!(events(&db).await, expected);
    // Every event that names a check names one of its own stream.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM stream_events e LEFT JOIN health_checks c ON c.id = e.check_id
             WHERE e.check_id IS NOT NULL AND (c.id IS NULL OR c.stream_id != e.stream_id)"
        )
        .await,
        0
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM stream_events WHERE check_id IS NOT NULL"
        )
        .await
            >= (STREAMS + 250) as i64,
        "appearances and state changes name their check"
    );
}

#[tokio::test]
async fn events_are_written_exactly_at_transitions() {
    let db = memory_db().await;
    let t = |minutes: i64| at("2026-03-08T12:00:00Z") + TimeDelta::minutes(minutes);
    let (a, b) = ("http://origin/a.m3u8", "http://origin/b.m3u8");
    let runs = [
        // Both appear, a healthy and b not.
        run(
            t(0),
            vec![
                seen("demo", a, healthy(t(0), 100)),
                seen("demo", b, unhealthy(t(0), None)),
            ],
            &[],
        ),
        // Nothing changes.
        run(
            t(10),
            vec![
                seen("demo", a, healthy(t(10), 90)),
                seen("demo", b, unhealthy(t(10), None)),
            ],
            &[],
        ),
        // a goes down, b recovers.
        run(
            t(20),
            vec![
                seen("demo", a, unhealthy(t(20), Some(40))),
                seen("demo", b, healthy(t(20), 80)),
            ],
            &[],
        ),
        // b is not reported: inactive.
        run(t(30), vec![seen("demo", a, unhealthy(t(30), Some(40)))], &[]),
        // a recovers; b is back (healthy as it left: no health event).
        run(
            t(40),
            vec![
                seen("demo", a, healthy(t(40), 70)),
                seen("demo", b, healthy(t(40), 70)),
            ],
            &[],
        ),
        // The extractor fails: both inactive.
        run(t(50), vec![], &["demo"]),
        // b is back unhealthy: appeared and went_down, from one check.
        run(
            t(60),
            vec![
                seen("backup", "http://origin/c.m3u8", healthy(t(60), 50)),
                seen("demo", b, unhealthy(t(60), Some(30))),
            ],
            &[],
        ),
    ];
    for record in &runs {
        db.store_run(record).await.expect("run stored");
    }
    let (a_id, b_id) = (stream_id(&db, a).await, stream_id(&db, b).await);
    let c_id = stream_id(&db, "http://origin/c.m3u8").await;
    let rows: Vec<EventColumns> = sqlx::query_as(
        "SELECT ev.stream_id, ev.kind, ev.at, ev.check_id, ev.is_live, ev.error
         FROM stream_events ev ORDER BY ev.id",
    )
    .fetch_all(db.pool())
    .await
    .expect("events");
    let ts = |m: i64| f1_stream::model::format_timestamp(t(m));
    let simple: Vec<(i64, &str, String, bool)> = rows
        .iter()
        .map(|(id, kind, at, _, live, _)| (*id, kind.as_str(), at.clone(), *live))
        .collect();
    assert_eq!(
        simple,
        [
            (a_id, "appeared", ts(0), true),
            (b_id, "appeared", ts(0), false),
            (a_id, "went_down", ts(20), false),
            (b_id, "recovered", ts(20), true),
            (b_id, "inactive", ts(30), true),
            (a_id, "recovered", ts(40), true),
            (b_id, "appeared", ts(40), true),
            (a_id, "inactive", ts(50), true),
            (b_id, "inactive", ts(50), true),
            (c_id, "appeared", ts(60), true),
            (b_id, "appeared", ts(60), false),
            (b_id, "went_down", ts(60), false),
        ]
    );
    // Each event names the check that caused it (none for inactive), and
    // carries that check's error so it survives pruning.
    for (stream, kind, at, check_id, _, error) in &rows {
        match check_id {
            None => assert_eq!(kind, "inactive"),
            Some(check_id) => {
                let (check_stream, checked_at, check_error): (i64, String, Option<String>) =
                    sqlx::query_as("SELECT stream_id, checked_at, error FROM health_checks WHERE id = ?1")
                        .bind(check_id)
                        .fetch_one(db.pool())
                        .await
                        .expect("causing check exists");
                assert_eq!((check_stream, &checked_at, &check_error), (*stream, at, error));
            }
        }
    }
}

// ---------------------------------------------------------------- retention

#[tokio::test]
async fn retention_deletes_only_old_raw_checks_in_batches_and_keeps_rollups_and_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&format!("sqlite://{}", dir.path().join("h.db").display())).await;
    let now = at("2026-03-20T12:34:56Z");
    // 40 runs, one every 6 hours over 10 days, of 3 streams with long error
    // texts, so the deleted rows fill pages the vacuum can give back.
    for i in 0..40 {
        let when = now - TimeDelta::hours(6 * (40 - i));
        let long_error = "x".repeat(2000);
        let checks = (0..3)
            .map(|s| {
                let mut health = unhealthy(when, Some(10 + i as u64));
                health.error = Some(long_error.clone());
                if (i + s) % 3 == 0 {
                    health = healthy(when, 20);
                }
                seen("demo", &format!("http://origin/{s}.m3u8"), health)
            })
            .collect();
        db.store_run(&run(when, checks, &[])).await.expect("run stored");
    }
    let rollups = stored_rollups(&db).await;
    let events_before = events(&db).await;
    let checks_before = count(&db, "SELECT COUNT(*) FROM health_checks").await;
    let pages_before = db.storage_stats().await.expect("stats");
    assert!(
        pages_before.is_incremental(),
        "new databases vacuum incrementally"
    );

    let policy = RetentionPolicy {
        days: 4,
        batch_rows: 10,
        pause: Duration::ZERO,
    };
    let report = retention::prune(&db, &policy, now).await.expect("prune");
    let cutoff = f1_stream::model::format_timestamp(report.cutoff.expect("retention on"));
    assert_eq!(cutoff, "2026-03-16T12:00:00.000Z", "whole hours, days before now");
    let old: i64 = checks_before - count(&db, "SELECT COUNT(*) FROM health_checks").await;
    assert_eq!(report.deleted, old as u64);
    assert_eq!(report.deleted, 3 * 24, "the 24 runs older than 4 days");
    assert_eq!(report.batches, 8, "72 rows in batches of 10, the last one short");
    let oldest: String = sqlx::query_scalar("SELECT MIN(checked_at) FROM health_checks")
        .fetch_one(db.pool())
        .await
        .expect("oldest");
    assert!(oldest >= cutoff, "{oldest} is kept, nothing older");
    assert_eq!(stored_rollups(&db).await, rollups, "rollups are kept");
    assert_eq!(events(&db).await, events_before, "events are kept");
    assert_eq!(
        db.history_pruned_before().await.expect("setting"),
        report.cutoff,
        "the boundary is recorded for exact ranges"
    );

    let pages_after = db.storage_stats().await.expect("stats");
    assert!(report.freed_pages > 0, "{report:?}");
    assert_eq!(pages_after.freelist_count, 0);
    assert!(
        pages_after.page_count < pages_before.page_count,
        "the file shrinks: {pages_before:?} -> {pages_after:?}"
    );

    // A second pass finds nothing; retention 0 deletes nothing.
    let again = retention::prune(&db, &policy, now).await.expect("prune");
    assert_eq!((again.deleted, again.batches), (0, 1));
    let off = retention::prune(&db, &RetentionPolicy::days(0), now + TimeDelta::days(365))
        .await
        .expect("prune");
    assert_eq!((off.cutoff, off.deleted, off.batches), (None, 0, 0));
}

#[tokio::test]
async fn retention_task_stops_on_shutdown() {
    let db = memory_db().await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(retention::run(db, RetentionPolicy::days(30), stop_rx));
    stop_tx.send(true).expect("task listens");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}

#[tokio::test]
async fn an_existing_database_gets_rollups_past_events_and_incremental_vacuum_on_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}", path.display());
    // A database as the previous release left it: migrations 1-2 only, no
    // auto-vacuum, some checks.
    let old_migrations = dir.path().join("migrations");
    std::fs::create_dir(&old_migrations).expect("dir");
    for name in ["0001_core.sql", "0002_schedule.sql"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(name),
            old_migrations.join(name),
        )
        .expect("copy migration");
    }
    {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("pool");
        sqlx::migrate::Migrator::new(old_migrations.as_path())
            .await
            .expect("migrations")
            .run(&pool)
            .await
            .expect("old schema");
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&pool)
            .await
            .expect("mode");
        assert_eq!(mode, 0);
        for statement in [
            "INSERT INTO extractors VALUES ('demo', 'Demo', 'demo', 1, '2026-03-01T00:00:00.000Z')",
            "INSERT INTO extraction_runs VALUES (1, 'cli', '2026-03-01T10:00:00.000Z', '2026-03-01T10:00:05.000Z', 1, 1)",
            "INSERT INTO extraction_runs VALUES (2, 'cli', '2026-03-01T10:30:00.000Z', '2026-03-01T10:30:05.000Z', 1, 0)",
            "INSERT INTO extraction_runs VALUES (3, 'cli', '2026-03-01T11:10:00.000Z', '2026-03-01T11:10:05.000Z', 1, 1)",
            "INSERT INTO streams (id, site_key, url, first_seen, last_seen, active, is_live, checked_at)
             VALUES (1, 'demo', 'http://origin/a.m3u8', '2026-03-01T10:00:05.000Z',
                     '2026-03-01T11:10:05.000Z', 1, 1, '2026-03-01T11:10:00.000Z')",
            "INSERT INTO health_checks (stream_id, run_id, checked_at, is_live, response_time_ms, bitrate, stream_type)
             VALUES (1, 1, '2026-03-01T10:00:00.000Z', 1, 100, 0, 'live'),
                    (1, 2, '2026-03-01T10:30:00.000Z', 0, NULL, 0, 'unknown'),
                    (1, 3, '2026-03-01T11:10:00.000Z', 1, 300, 0, 'live')",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.expect("old data");
        }
        pool.close().await;
    }

    let db = Database::open(&url).await.expect("upgrades");
    assert!(
        db.storage_stats().await.expect("stats").is_incremental(),
        "converted by one VACUUM"
    );
    assert_eq!(stored_rollups(&db).await, rollups_from_raw(&db).await);
    assert_eq!(
        stored_rollups(&db).await,
        [
            (
                "2026-03-01T10:00:00.000Z".to_owned(),
                vec![
                    Some(1),
                    Some(2),
                    Some(1),
                    Some(1),
                    Some(100),
                    Some(100),
                    Some(100)
                ]
            ),
            (
                "2026-03-01T11:00:00.000Z".to_owned(),
                vec![
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(300),
                    Some(300),
                    Some(300)
                ]
            ),
        ]
    );
    let kinds: Vec<(String, String)> = sqlx::query_as("SELECT kind, at FROM stream_events ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("events");
    assert_eq!(
        kinds,
        [
            ("appeared".to_owned(), "2026-03-01T10:00:00.000Z".to_owned()),
            ("went_down".to_owned(), "2026-03-01T10:30:00.000Z".to_owned()),
            ("recovered".to_owned(), "2026-03-01T11:10:00.000Z".to_owned()),
        ]
    );
    // New checks continue the same history.
    let when = at("2026-03-01T11:40:00Z");
    db.store_run(&run(
        when,
        vec![seen("demo", "http://origin/a.m3u8", unhealthy(when, None))],
        &[],
    ))
    .await
    .expect("run stored");
    assert_eq!(
        events(&db).await.last().map(|e| e.1.clone()).as_deref(),
        Some("went_down")
    );
}

// ---------------------------------------------------------------- API

/// Stores one check of `url` (extractor `demo`) at `when`, as its own run.
async fn check_at(db: &Database, url: &str, health: HealthResult) {
    let when = health.checked_at;
    db.store_run(&run(when, vec![seen("demo", url, health)], &[]))
        .await
        .expect("run stored");
}

fn uptime(detail: &Value, window: &str) -> (i64, i64, Option<f64>) {
    let w = &detail["uptime"][window];
    (
        w["checks"].as_i64().expect("checks"),
        w["healthy"].as_i64().expect("healthy"),
        // Rounded: serde_json's float parsing may be one ulp off.
        w["mean_response_ms"]
            .as_f64()
            .map(|ms| (ms * 1000.0).round() / 1000.0),
    )
}

#[tokio::test]
async fn stream_detail_has_the_stream_its_latest_check_and_uptime_that_survives_pruning() {
    let service = service().await;
    let db = service.app.db();
    let url = "http://origin/detail.m3u8";
    let now = Utc::now();
    let ago = |minutes: i64| now - TimeDelta::minutes(minutes);
    check_at(db, url, healthy(ago(20 * 24 * 60), 100)).await;
    check_at(db, url, unhealthy(ago(3 * 24 * 60), None)).await;
    check_at(db, url, healthy(ago(10 * 60), 200)).await;
    check_at(db, url, healthy(ago(30), 300)).await;
    check_at(db, url, unhealthy(ago(5), Some(50))).await;
    let id = stream_id(db, url).await;

    let (status, detail) = service.get_json(&format!("/streams/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["id"], id);
    assert_eq!(detail["url"], url);
    assert_eq!(detail["site_key"], "demo");
    assert_eq!(detail["site_name"], "Demo");
    assert_eq!(detail["active"], true);
    assert_eq!(detail["is_live"], false);
    assert!(
        detail["proxy_url"]
            .as_str()
            .expect("proxy_url")
            .contains("/proxy/"),
        "{detail}"
    );
    assert_eq!(detail["latest_check"]["is_live"], false);
    assert_eq!(detail["latest_check"]["http_status"], 404);
    assert_eq!(detail["latest_check"]["error"], "HTTP 404");
    assert_eq!(uptime(&detail, "1h"), (2, 1, Some(175.0)));
    assert_eq!(uptime(&detail, "24h"), (3, 2, Some(183.333)));
    assert_eq!(uptime(&detail, "7d"), (4, 2, Some(183.333)));
    assert_eq!(uptime(&detail, "30d"), (5, 3, Some(162.5)));
    assert_eq!(detail["uptime"]["30d"]["uptime"], 0.6);
    assert_eq!(detail["uptime"]["30d"]["min_response_ms"], 50);
    assert_eq!(detail["uptime"]["30d"]["max_response_ms"], 300);

    // Prune everything older than 2 days: the API still counts it from rollups.
    let report = retention::prune(db, &RetentionPolicy::days(2), Utc::now())
        .await
        .expect("prune");
    assert_eq!(report.deleted, 2);
    let (_, after) = service.get_json(&format!("/streams/{id}")).await;
    for window in ["1h", "24h", "7d", "30d"] {
        assert_eq!(uptime(&after, window), uptime(&detail, window), "{window}");
    }
    let (_, history) = service.get_json(&format!("/streams/{id}/history")).await;
    assert_eq!(history["count"], 3, "raw checks older than 2 days are gone");
    let from = (now - TimeDelta::days(21)).timestamp();
    let (status, series) = service
        .get_json(&format!("/extractors/demo/uptime?step=1d&from={from}"))
        .await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["total"]["checks"], 5, "{series}");
    assert_eq!(series["total"]["healthy"], 3);
}

#[tokio::test]
async fn history_pages_return_every_check_once_newest_first() {
    let service = service().await;
    let db = service.app.db();
    let url = "http://origin/paged.m3u8";
    let start = Utc::now() - TimeDelta::hours(2);
    // 25 checks; pairs share a timestamp, so the cursor must break ties by id.
    for i in 0..25 {
        let when = start + TimeDelta::minutes(i / 2);
        check_at(
            db,
            url,
            if i % 3 == 0 {
                unhealthy(when, None)
            } else {
                healthy(when, 10 + i as u64)
            },
        )
        .await;
    }
    let id = stream_id(db, url).await;
    let mut seen_ids: Vec<i64> = Vec::new();
    let mut order: Vec<(String, i64)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/streams/{id}/history?limit=4&cursor={c}"),
            None => format!("/streams/{id}/history?limit=4"),
        };
        let (status, page) = service.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for check in page["checks"].as_array().expect("checks") {
            seen_ids.push(check["id"].as_i64().expect("id"));
            order.push((
                check["checked_at"].as_str().expect("at").to_owned(),
                check["id"].as_i64().expect("id"),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 7, "6 full pages of 4 and one of 1");
    let unique: BTreeSet<i64> = seen_ids.iter().copied().collect();
    assert_eq!((seen_ids.len(), unique.len()), (25, 25), "every check once");
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "newest first, ties by id");

    // Events page the same way.
    let (_, all_events) = service
        .get_json(&format!("/streams/{id}/events?limit=1000"))
        .await;
    let total = all_events["count"].as_u64().expect("count");
    assert!(total >= 10, "{all_events}");
    let mut events_seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/streams/{id}/events?limit=3&cursor={c}"),
            None => format!("/streams/{id}/events?limit=3"),
        };
        let (_, page) = service.get_json(&path).await;
        events_seen += page["count"].as_u64().expect("count");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(events_seen, total);
}

#[tokio::test]
async fn history_and_events_filter_by_time_range_in_rfc3339_or_unix_seconds() {
    let service = service().await;
    let db = service.app.db();
    let url = "http://origin/ranged.m3u8";
    let base = hour_start(Utc::now()) - TimeDelta::hours(10);
    for hour in 0..10 {
        let when = base + TimeDelta::hours(hour);
        check_at(
            db,
            url,
            if hour % 2 == 0 {
                healthy(when, 100)
            } else {
                unhealthy(when, None)
            },
        )
        .await;
    }
    let id = stream_id(db, url).await;
    let rfc = |h: i64| f1_stream::model::format_timestamp(base + TimeDelta::hours(h));
    let unix = |h: i64| (base + TimeDelta::hours(h)).timestamp();

    let count_of = |body: &Value| body["count"].as_i64().expect("count");
    // from inclusive, to exclusive.
    let (_, body) = service
        .get_json(&format!("/streams/{id}/history?from={}&to={}", rfc(2), rfc(5)))
        .await;
    assert_eq!(count_of(&body), 3);
    assert_eq!(body["checks"][0]["checked_at"], rfc(4));
    let (_, body) = service
        .get_json(&format!("/streams/{id}/history?from={}&to={}", unix(2), unix(5)))
        .await;
    assert_eq!(count_of(&body), 3);
    let (_, body) = service
        .get_json(&format!("/streams/{id}/history?from={}", unix(7)))
        .await;
    assert_eq!(count_of(&body), 3);
    let (_, body) = service
        .get_json(&format!("/streams/{id}/history?to={}", unix(1)))
        .await;
    assert_eq!(count_of(&body), 1);
    let offset = (base + TimeDelta::hours(2))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("offset"))
        .to_rfc3339();
    let (_, body) = service
        .get_json(&format!(
            "/streams/{id}/history?from={}",
            offset.replace('+', "%2B")
        ))
        .await;
    assert_eq!(count_of(&body), 8, "offsets are converted to UTC");

    // Events in hours 2..5: recovered at 2 and 4, went_down at 3 (appeared
    // at 0 and went_down at 1 are outside).
    let (_, body) = service
        .get_json(&format!("/streams/{id}/events?from={}&to={}", unix(2), unix(5)))
        .await;
    let kinds: Vec<&str> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["recovered", "went_down", "recovered"], "newest first");
}

#[tokio::test]
async fn bad_parameters_answer_400_naming_the_parameter() {
    let service = service().await;
    let db = service.app.db();
    check_at(db, "http://origin/x.m3u8", healthy(Utc::now(), 10)).await;
    let id = stream_id(db, "http://origin/x.m3u8").await;
    let (_, first) = service.get_json(&format!("/streams/{id}/history?limit=1")).await;
    let history_cursor = first["next_cursor"].as_str().unwrap_or("aHwx").to_owned();
    let cases = [
        (format!("/streams/{id}/history?from=yesterday"), "from: "),
        (format!("/streams/{id}/history?to=2026-13-01T00:00:00Z"), "to: "),
        (format!("/streams/{id}/history?from=2000&to=1000"), "from: "),
        (format!("/streams/{id}/history?limit=0"), "limit: "),
        (format!("/streams/{id}/history?limit=1001"), "limit: "),
        (format!("/streams/{id}/history?limit=ten"), "limit: "),
        (format!("/streams/{id}/history?cursor=%21%21"), "cursor: "),
        (
            format!("/streams/{id}/events?cursor={history_cursor}"),
            "cursor: ",
        ),
        (format!("/streams/{id}/events?from=later"), "from: "),
        ("/streams/abc".to_owned(), "id: "),
        ("/streams/-3/history".to_owned(), "id: "),
        ("/streams/abc/events".to_owned(), "id: "),
        ("/extractors/demo/uptime?step=2h".to_owned(), "step: "),
        ("/extractors/demo/uptime?step=1h&from=0".to_owned(), "step: "),
        ("/extractors/demo/uptime?to=soon".to_owned(), "to: "),
        ("/runs?limit=0".to_owned(), "limit: "),
        (format!("/runs?cursor={history_cursor}"), "cursor: "),
        ("/runs/x".to_owned(), "id: "),
    ];
    for (path, parameter) in cases {
        let (status, body) = service.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"].as_str().expect("JSON error");
        assert!(message.starts_with(parameter), "{path}: {message}");
    }
}

#[tokio::test]
async fn unknown_ids_answer_404() {
    let service = service().await;
    for path in [
        "/streams/987654",
        "/streams/987654/history",
        "/streams/987654/events",
        "/runs/987654",
        "/extractors/nope/uptime",
    ] {
        let (status, body) = service.get_json(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"].as_str().expect("JSON error").starts_with("no "),
            "{body}"
        );
    }
}

#[tokio::test]
async fn runs_page_newest_first_with_per_extractor_outcomes() {
    let service = service().await;
    let db = service.app.db();
    let now = Utc::now();
    for i in 0..3 {
        let when = now - TimeDelta::minutes(30 - i);
        let failed: &[&str] = if i == 1 { &["backup"] } else { &[] };
        let mut checks = vec![seen("demo", "http://origin/r.m3u8", healthy(when, 10))];
        if i != 1 {
            checks.push(seen("backup", "http://origin/s.m3u8", unhealthy(when, None)));
        }
        db.store_run(&run(when, checks, failed))
            .await
            .expect("run stored");
    }
    let (status, first) = service.get_json("/runs?limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["count"], 2);
    let ids: Vec<i64> = first["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert!(ids[0] > ids[1], "newest first: {ids:?}");
    let middle = &first["runs"][1];
    assert_eq!(middle["stream_count"], 1);
    assert_eq!(middle["live_count"], 1);
    assert_eq!(middle["trigger"], "schedule");
    let outcomes = middle["extractors"].as_array().expect("extractors");
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0]["site_key"], "backup");
    assert_eq!(outcomes[0]["error"], "HTTP 500");
    assert_eq!(outcomes[1]["site_key"], "demo");
    assert_eq!(outcomes[1]["error"], Value::Null);
    assert_eq!(outcomes[1]["stream_count"], 1);

    let cursor = first["next_cursor"].as_str().expect("more runs");
    let (_, second) = service.get_json(&format!("/runs?limit=2&cursor={cursor}")).await;
    assert_eq!(second["count"], 1);
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(second["runs"][0]["id"].as_i64().expect("id") < ids[1]);

    let (status, one) = service.get_json(&format!("/runs/{}", ids[1])).await;
    assert_eq!(status, 200);
    assert_eq!(&one, middle, "the same object as in the list");
}

#[tokio::test]
async fn extractor_uptime_series_has_every_bucket_from_rollups() {
    let service = service().await;
    let db = service.app.db();
    let current = hour_start(Utc::now());
    for (hours_ago, live) in [(5, true), (5, false), (3, true), (0, true)] {
        let when = current - TimeDelta::hours(hours_ago) + TimeDelta::minutes(1);
        let url = format!("http://origin/u{hours_ago}{live}.m3u8");
        check_at(
            db,
            &url,
            if live {
                healthy(when, 100)
            } else {
                unhealthy(when, Some(300))
            },
        )
        .await;
    }
    let from = (current - TimeDelta::hours(5) + TimeDelta::minutes(30)).timestamp();
    let (status, body) = service
        .get_json(&format!("/extractors/demo/uptime?step=1h&from={from}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let series = body["series"].as_array().expect("series");
    assert_eq!(series.len(), 6, "from's hour through the current one: {body}");
    assert_eq!(
        body["from"],
        f1_stream::model::format_timestamp(current - TimeDelta::hours(5))
    );
    let point = |i: usize| {
        (
            series[i]["checks"].as_i64().expect("checks"),
            series[i]["healthy"].as_i64().expect("healthy"),
            series[i]["mean_ms"].as_f64(),
        )
    };
    assert_eq!(point(0), (2, 1, Some(200.0)));
    assert_eq!(point(1), (0, 0, None));
    assert_eq!(point(2), (1, 1, Some(100.0)));
    assert_eq!(point(5), (1, 1, Some(100.0)));
    assert_eq!(series[0]["uptime"], 0.5);
    assert_eq!(body["total"]["checks"], 4);

    let (_, daily) = service.get_json("/extractors/demo/uptime?step=1d").await;
    let days = daily["series"].as_array().expect("series");
    assert!((30..=31).contains(&days.len()), "{}", days.len());
    assert_eq!(daily["total"]["checks"], 4);
    let (_, other) = service.get_json("/extractors/backup/uptime").await;
    assert_eq!(other["total"]["checks"], 0, "only the extractor's own streams");

    // One stream's series counts its own checks only (each run above stored
    // one stream, leaving the earlier ones inactive; `/streams/{id}` has all).
    let mut id = None;
    for candidate in 1..=4 {
        let (_, detail) = service.get_json(&format!("/streams/{candidate}")).await;
        if detail["url"] == "http://origin/u5false.m3u8" {
            id = Some(candidate);
        }
    }
    let id = id.expect("the stream u5false is stored");
    let (status, body) = service
        .get_json(&format!("/streams/{id}/uptime?step=1h&from={from}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stream_id"], id);
    let series = body["series"].as_array().expect("series");
    assert_eq!(series.len(), 6, "{body}");
    assert_eq!(
        (series[0]["checks"].as_i64(), series[0]["healthy"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(series[0]["uptime"], 0.0);
    assert_eq!(body["total"]["checks"], 1);
    let (_, daily) = service.get_json(&format!("/streams/{id}/uptime?step=1d")).await;
    assert_eq!(daily["total"]["checks"], 1);
    assert_eq!(service.get_json("/streams/999999/uptime").await.0, 404);
    assert_eq!(
        service.get_json(&format!("/streams/{id}/uptime?step=5m")).await.0,
        400
    );
}

// ---------------------------------------------------------------- SQL docs

/// Fills a database with three days of history relative to now: stable,
/// flapping, failing and vanishing streams and a failing extractor.
async fn populate_for_docs(db: &Database) {
    let now = Utc::now();
    let today = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let (s1, s2, s3, s4, s5) = (
        "http://origin/s1.m3u8",
        "http://origin/s2.m3u8",
        "http://origin/s3.m3u8",
        "http://origin/s4.m3u8",
        "http://origin/s5.m3u8",
    );
    for i in 0..144i64 {
        let when = now - TimeDelta::minutes(30 * (145 - i));
        let ms = |base: u64| base + (i as u64 * 7) % 50;
        // s1 (id 1) has an outage of three runs.
        let s1_health = if (50..53).contains(&i) {
            unhealthy(when, Some(ms(500)))
        } else {
            healthy(when, ms(100))
        };
        let mut checks = vec![
            seen("demo", s1, s1_health),
            seen("demo", s2, healthy(when, ms(80))),
            seen("demo", s5, unhealthy(when, None)),
        ];
        let backup_fails = i % 40 == 7;
        if !backup_fails {
            checks.push(seen("backup", s3, healthy(when, ms(200))));
            if i < 130 {
                checks.push(seen("backup", s4, healthy(when, ms(150))));
            }
        }
        let failed: &[&str] = if backup_fails { &["backup"] } else { &[] };
        db.store_run(&run(when, checks, failed))
            .await
            .expect("run stored");
    }
    // Today: s1 flaps six times in a row.
    for k in 0..6i64 {
        let when = (now - TimeDelta::seconds(6 - k)).max(today + TimeDelta::seconds(k));
        let s1_health = if k % 2 == 0 {
            unhealthy(when, Some(40))
        } else {
            healthy(when, 60)
        };
        let checks = vec![
            seen("demo", s1, s1_health),
            seen("demo", s2, healthy(when, 90)),
            seen("demo", s5, unhealthy(when, None)),
            seen("backup", s3, healthy(when, 210)),
        ];
        db.store_run(&run(when, checks, &[])).await.expect("run stored");
    }
    // A channel that started on s1 and left it when its playlist failed.
    let switch = |minutes: i64, from, to, reason, sequence| f1_stream::db::SwitchRecord {
        at: now - TimeDelta::minutes(minutes),
        from_stream_id: from,
        to_stream_id: to,
        reason,
        detail: None,
        media_sequence: sequence,
        discontinuity_sequence: sequence / 100,
    };
    let position = f1_stream::db::ChannelPositionRecord {
        slug: "race",
        epoch: 2,
        stream_id: Some(2),
        variant_url: Some(s2),
        variant_bandwidth: None,
        media_sequence: 120,
        discontinuity_sequence: 1,
        target_duration: 6,
        segment_count: 6,
        updated_at: now,
        position: "{}",
    };
    let switches = [
        switch(90, None, Some(1), f1_stream::model::SwitchReason::Started, 0),
        switch(
            30,
            Some(1),
            Some(2),
            f1_stream::model::SwitchReason::PlaylistFailed,
            100,
        ),
    ];
    db.save_channel_position(&position, None, &switches)
        .await
        .expect("channel stored");
}

/// The ```sql blocks of a markdown document.
fn sql_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test]
async fn every_sql_example_in_the_docs_runs_and_returns_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&format!("sqlite://{}", dir.path().join("docs.db").display())).await;
    populate_for_docs(&db).await;
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SQL.md"))
        .expect("docs/SQL.md exists");
    let blocks = sql_blocks(&doc);
    assert!(
        blocks.len() >= 8,
        "at least 8 documented questions, found {}",
        blocks.len()
    );
    for sql in blocks {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        assert!(!rows.is_empty(), "no rows from:\n{sql}");
    }
}

// ---------------------------------------------------------------- CLI

#[tokio::test]
async fn history_command_prints_recent_checks_and_uptime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("cli.db");
    let db = open(&format!("sqlite://{}", db_path.display())).await;
    let url = "http://origin/cli.m3u8";
    let now = Utc::now();
    check_at(&db, url, healthy(now - TimeDelta::minutes(20), 123)).await;
    check_at(&db, url, unhealthy(now - TimeDelta::minutes(10), None)).await;
    let id = stream_id(&db, url).await;
    db.close().await;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, test_config_toml(&db_path, "")).expect("config");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args([
            "-c",
            config.to_str().expect("utf-8 path"),
            "history",
            &id.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(url), "{stdout}");
    assert!(stdout.contains("uptime: 24h 50.0% of 2"), "{stdout}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("CHECKED_AT"))
        .collect();
    assert_eq!(table.len(), 3, "header and two checks:\n{stdout}");
    assert!(
        table[1].contains(" no ") && table[1].contains("Timeout"),
        "newest first:\n{stdout}"
    );
    assert!(table[2].contains(" yes ") && table[2].contains("123"), "{stdout}");

    let missing = tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args(["-c", config.to_str().expect("utf-8 path"), "history", "999"])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("binary runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no stream with id 999"));
}

/// Checksums sqlx recorded for migrations 2–4 as first released, before
/// their header comments were reworded.
const RELEASED_CHECKSUMS: [(i64, &str); 3] = [
    (
        2,
        "551F904487882698436B85DD4CF5CA193735270C949114F3836E6202BE49B3E49F1291829D5E75BD3BF4695D89F79F66",
    ),
    (
        3,
        "EE5E6615505AEAA01EC5F49603271C150F885C08F438ADFF887E281ED281AE61F5347AA33981CFF6C0222EB5F3128FE1",
    ),
    (
        4,
        "4C28E7310FEA4B733F83DD0B11CAB3CDDE433DB8C2AEDA0924CFD4C2ABED750924C059E079DB2FCC9F420D116FB64A4E",
    ),
];

async fn recorded_checksums(db: &Database) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT version, hex(checksum) FROM _sqlx_migrations ORDER BY version")
        .fetch_all(db.pool())
        .await
        .expect("checksums")
}

#[tokio::test]
async fn a_database_migrated_by_the_released_files_opens_after_their_comments_were_reworded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let db = Database::open(&url).await.expect("new database");
    let today = recorded_checksums(&db).await;
    for (version, released) in RELEASED_CHECKSUMS {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE _sqlx_migrations SET checksum = X'{released}' WHERE version = {version}"
        )))
        .execute(db.pool())
        .await
        .expect("as the released files left it");
    }
    db.close().await;

    let db = Database::open(&url)
        .await
        .expect("a released database still opens");
    assert_eq!(
        recorded_checksums(&db).await,
        today,
        "carried over to today's checksums"
    );
    db.close().await;
}

#[tokio::test]
async fn a_migration_whose_recorded_checksum_is_unknown_still_stops_the_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("edited.db").display());
    let db = Database::open(&url).await.expect("new database");
    sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 3")
        .execute(db.pool())
        .await
        .expect("tampered");
    db.close().await;
    assert!(
        Database::open(&url).await.is_err(),
        "an edited migration is refused"
    );
}
