//! Benchmark of the health history at a million checks: fills a
//! temp database through the real `Database::store_run` (so rollups and
//! events are written as in production), then times the history reads
//! through the real router and the retention pass.
//!
//! ```text
//! cargo run --release --example history_bench                  # 1,000,000 checks, 200 streams
//! cargo run --release --example history_bench -- 100000 50     # CHECKS STREAMS
//! ```
//!
//! Runs are spread evenly over the last 35 days, so the 30-day window is
//! full and a 30-day retention has 5 days to prune. Health is a fixed
//! pseudo-random sequence: about 3% of checks fail, streams flap.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use f1_stream::app::App;
use f1_stream::config::Config;
use f1_stream::db::{
    CheckedStream, Database, ExtractorOutcome, RunRecord, SeriesOf, Step, TimeRange, Verdict,
};
use f1_stream::model::{ErrorKind, HealthResult, PlaylistKind, RunTrigger, StreamCandidate, StreamType};
use f1_stream::retention::{self, RetentionPolicy};
use tower::ServiceExt as _;

/// Days of history the runs cover.
const SPAN_DAYS: i64 = 35;
/// Requests per timed endpoint.
const SAMPLES: usize = 300;

/// xorshift64*: a fixed, dependency-free pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn health(rng: &mut Rng, checked_at: DateTime<Utc>) -> HealthResult {
    if rng.below(100) < 3 {
        let mut failed = HealthResult::failed(checked_at, ErrorKind::HttpStatus, "HTTP 503");
        failed.http_status = Some(503);
        failed.response_time_ms = Some(20 + rng.below(200));
        return failed;
    }
    let ms = 40 + rng.below(900);
    HealthResult {
        is_live: true,
        response_time_ms: Some(ms),
        ttfb_ms: Some(ms / 2),
        http_status: Some(200),
        bitrate: 800_000 + rng.below(6) * 1_000_000,
        error_kind: None,
        error: None,
        playlist_kind: Some(PlaylistKind::Master),
        stream_type: StreamType::Live,
        ..HealthResult::failed(checked_at, ErrorKind::Other, "")
    }
}

struct Timing {
    samples: Vec<Duration>,
}

impl Timing {
    fn new() -> Self {
        Self { samples: Vec::new() }
    }

    fn add(&mut self, elapsed: Duration) {
        self.samples.push(elapsed);
    }

    fn report(&mut self, name: &str) {
        self.samples.sort();
        let pick = |q: f64| {
            let i = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
            self.samples.get(i).copied().unwrap_or_default()
        };
        println!(
            "{name:<52} p50 {:>9.3} ms   p95 {:>9.3} ms   max {:>9.3} ms   (n={})",
            ms(pick(0.5)),
            ms(pick(0.95)),
            ms(pick(1.0)),
            self.samples.len()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn file_size(path: &std::path::Path) -> u64 {
    let mut total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    for suffix in ["-wal", "-shm"] {
        let mut other = path.as_os_str().to_owned();
        other.push(suffix);
        total += std::fs::metadata(other).map(|m| m.len()).unwrap_or(0);
    }
    total
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn get(router: &axum::Router, path: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty())?)
        .await?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let elapsed = started.elapsed();
    ensure!(
        status == StatusCode::OK,
        "{path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checks: u64 = args
        .next()
        .map_or(Ok(1_000_000), |a| a.parse())
        .context("CHECKS")?;
    let streams: u64 = args.next().map_or(Ok(200), |a| a.parse()).context("STREAMS")?;
    let runs = checks.div_ceil(streams);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let url = format!("sqlite://{}", path.display());
    let config = Config::from_toml_str(&format!(
        "[database]\nurl = \"{url}\"\nretention_days = 30\n[extraction]\nrun_on_startup = false\n\
         [schedule]\nenabled = false\n\
         [[extractors]]\nsite_key = \"bench\"\nsite_name = \"Bench\"\nkind = \"demo\"\n"
    ))?;
    let db = Database::open(&url).await?;
    db.sync_extractors(&f1_stream::app::extractor_records(&config.extractors))
        .await?;

    println!("filling {checks} checks: {runs} runs of {streams} streams over {SPAN_DAYS} days");
    let now = Utc::now();
    let first = now - TimeDelta::days(SPAN_DAYS);
    let gap = TimeDelta::days(SPAN_DAYS) / runs.max(1) as i32;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fill = Instant::now();
    let mut stored = 0u64;
    for r in 0..runs {
        let started_at = first + gap * r as i32;
        let count = streams.min(checks - stored);
        let streams: Vec<CheckedStream> = (0..count)
            .map(|s| {
                let health = health(&mut rng, started_at + TimeDelta::milliseconds(s as i64 * 7));
                CheckedStream {
                    candidate: StreamCandidate {
                        title: Some(format!("Bench stream {s}")),
                        ..StreamCandidate::new(format!("https://cdn{}.example/live/{s}/index.m3u8", s % 7))
                    },
                    verdict: Verdict::first(&health),
                    health,
                }
            })
            .collect();
        stored += count;
        db.store_run(&RunRecord {
            trigger: RunTrigger::Schedule,
            started_at,
            finished_at: started_at + TimeDelta::seconds(3),
            extractors: vec![ExtractorOutcome {
                site_key: "bench".to_owned(),
                duration_ms: 120,
                error: None,
                streams,
            }],
        })
        .await?;
        if (r + 1) % 1000 == 0 {
            eprint!(
                "\r  {stored} checks, {:.0} checks/s",
                stored as f64 / fill.elapsed().as_secs_f64()
            );
        }
    }
    let fill_time = fill.elapsed();
    eprintln!();
    let count = |sql: &'static str| {
        let pool = db.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    println!(
        "filled in {:.1} s ({:.0} checks/s, {:.2} ms per run of {streams} checks through store_run)",
        fill_time.as_secs_f64(),
        stored as f64 / fill_time.as_secs_f64(),
        ms(fill_time) / runs as f64
    );
    println!(
        "rows: health_checks {}, health_rollups_hourly {}, stream_events {}, extraction_runs {}",
        count("SELECT COUNT(*) FROM health_checks").await?,
        count("SELECT COUNT(*) FROM health_rollups_hourly").await?,
        count("SELECT COUNT(*) FROM stream_events").await?,
        count("SELECT COUNT(*) FROM extraction_runs").await?,
    );
    db.optimize().await?;
    db.close().await;
    println!(
        "database file: {:.1} MiB (after checkpoint)",
        mib(file_size(&path))
    );

    let db = Database::open(&url).await?;
    if let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
        "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8",
    )
    .fetch_all(db.pool())
    .await
    {
        let parts: Vec<String> = rows
            .iter()
            .map(|(n, b)| format!("{n} {:.1} MiB", mib(*b as u64)))
            .collect();
        println!("largest: {}", parts.join(", "));
    }
    let app = App::with_database(config, db.clone()).await?;
    let router = app.router();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM streams ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    ensure!(!ids.is_empty(), "no streams stored");
    let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize];

    println!();
    // Warm the page cache the way a running service has it.
    for &id in ids.iter().take(20) {
        get(&router, &format!("/streams/{id}")).await?;
    }
    let mut timing = Timing::new();
    for _ in 0..SAMPLES {
        timing.add(get(&router, &format!("/streams/{}", pick(&mut rng))).await?);
    }
    timing.report("GET /streams/{id} (1h/24h/7d/30d uptime)");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 3 {
        timing.add(get(&router, "/streams").await?);
    }
    timing.report("GET /streams");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES {
        let id = pick(&mut rng);
        let started = Instant::now();
        db.stream_tallies(id, &[(now - TimeDelta::days(30), now)]).await?;
        timing.add(started.elapsed());
    }
    timing.report("30-day uptime of a stream (rollups + raw edges)");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 10 {
        let id = pick(&mut rng);
        let started = Instant::now();
        sqlx::query("SELECT COUNT(*), SUM(is_live), AVG(response_time_ms) FROM health_checks WHERE stream_id = ?1 AND checked_at >= ?2")
            .bind(id)
            .bind(f1_stream::model::format_timestamp(now - TimeDelta::days(30)))
            .fetch_one(db.pool())
            .await?;
        timing.add(started.elapsed());
    }
    timing.report("  (same from raw checks only, for comparison)");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 10 {
        let started = Instant::now();
        db.uptime_series(
            SeriesOf::Extractor("bench"),
            now - TimeDelta::days(30),
            now,
            Step::Day,
        )
        .await?;
        timing.add(started.elapsed());
    }
    timing.report(&format!(
        "30-day daily series of an extractor ({} streams)",
        ids.len()
    ));

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 10 {
        timing.add(get(&router, "/extractors/bench/uptime?step=1h").await?);
    }
    timing.report("GET /extractors/bench/uptime?step=1h (24 h)");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES {
        timing.add(get(&router, &format!("/streams/{}/history?limit=100", pick(&mut rng))).await?);
    }
    timing.report("GET /streams/{id}/history?limit=100");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 3 {
        let id = pick(&mut rng);
        let middle = now - TimeDelta::days(15);
        let started = Instant::now();
        db.stream_checks(
            id,
            TimeRange {
                from: None,
                to: Some(middle),
            },
            None,
            101,
        )
        .await?;
        timing.add(started.elapsed());
    }
    timing.report("a history page 15 days deep (to=)");

    let mut timing = Timing::new();
    for _ in 0..SAMPLES / 3 {
        timing.add(get(&router, "/runs?limit=100").await?);
    }
    timing.report("GET /runs?limit=100");

    println!();
    let before = file_size(&path);
    // Requests keep coming while the pass runs, as in the service.
    let pass = {
        let db = db.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let report = retention::prune(&db, &RetentionPolicy::days(30), Utc::now()).await;
            (report, started.elapsed())
        })
    };
    let mut during = Timing::new();
    while !pass.is_finished() {
        during.add(get(&router, &format!("/streams/{}", pick(&mut rng))).await?);
    }
    let (report, took) = pass.await?;
    let report = report?;
    println!(
        "retention 30 d: deleted {} checks in {} batches, freed {} pages, {:.1} s (incl. {} ms pauses)",
        report.deleted,
        report.batches,
        report.freed_pages,
        took.as_secs_f64(),
        report.batches as u128 * retention::BATCH_PAUSE.as_millis()
    );
    during.report("GET /streams/{id} during the retention pass");
    db.close().await;
    println!(
        "database file: {:.1} MiB before the pass, {:.1} MiB after",
        mib(before),
        mib(file_size(&path))
    );
    Ok(())
}
