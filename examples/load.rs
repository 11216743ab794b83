//! Load test: concurrent relay clients for a fixed time while
//! extraction runs every few seconds, against the real service and a local
//! origin in this one process, loopback only. Prints the errors, the
//! latency of `GET /streams` during the load and the peak RSS, and exits
//! non-zero when there was any error or the API p99 exceeded its bound.
//!
//! ```text
//! cargo run --release --example load             # 200 clients, 30 s
//! cargo run --example load -- --quick            # 20 clients, 3 s (CI)
//! cargo run --release --example load -- --clients 500 --seconds 60
//! ```
//!
//! Bounded: every loop stops at the deadline, the whole run is abandoned
//! (exit 1) if it overstays by [`OVERTIME`], and nothing but 127.0.0.1 is
//! contacted. `docs/RELIABILITY.md` holds the latest figures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use f1_stream::app::App;
use f1_stream::config::Config;
use f1_stream::proxy::token::{Kind, Signer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Streams the extractor lists (each checked on every run).
const STREAMS: usize = 50;
/// Bytes of one segment the relay clients fetch.
const SEGMENT_BYTES: usize = 512 * 1024;
/// Segments per playlist (clients cycle through them).
const SEGMENTS: usize = 4;
/// Pause between two `GET /streams` of the API probe.
const API_PROBE_EVERY: Duration = Duration::from_millis(50);
/// How often the RSS is sampled.
const RSS_EVERY: Duration = Duration::from_millis(100);
/// How long the run may overstay its deadline before it is abandoned.
const OVERTIME: Duration = Duration::from_secs(60);
/// The signing key of the service under load (so clients can sign).
const SIGNING_KEY: &str = "load-test-signing-key";

/// What one invocation runs.
#[derive(Debug, Clone)]
struct Plan {
    clients: usize,
    duration: Duration,
    extract_every: Duration,
    /// Largest acceptable p99 of `GET /streams` during the load.
    api_p99_bound: Duration,
}

impl Plan {
    fn from_args() -> anyhow::Result<Self> {
        let mut plan = Plan {
            clients: 200,
            duration: Duration::from_secs(30),
            extract_every: Duration::from_secs(3),
            api_p99_bound: Duration::from_millis(250),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .with_context(|| format!("{name} needs a value"))?
                    .parse::<u64>()
                    .with_context(|| format!("{name} needs a number"))
            };
            match arg.as_str() {
                "--quick" => {
                    plan.clients = 20;
                    plan.duration = Duration::from_secs(3);
                    plan.extract_every = Duration::from_secs(1);
                    // Debug builds in CI: same shape, a looser bound.
                    plan.api_p99_bound = Duration::from_millis(1000);
                }
                "--clients" => plan.clients = usize::try_from(value("--clients")?)?,
                "--seconds" => plan.duration = Duration::from_secs(value("--seconds")?),
                "--extract-every" => plan.extract_every = Duration::from_secs(value("--extract-every")?),
                "--p99-ms" => plan.api_p99_bound = Duration::from_millis(value("--p99-ms")?),
                other => anyhow::bail!(
                    "unknown argument {other:?}; use --quick, --clients N, --seconds S, --extract-every S, --p99-ms MS"
                ),
            }
        }
        anyhow::ensure!(plan.clients > 0 && !plan.duration.is_zero(), "nothing to run");
        Ok(plan)
    }
}

/// Everything counted during the run.
#[derive(Default)]
struct Tally {
    relays: AtomicU64,
    relay_bytes: AtomicU64,
    relay_errors: AtomicU64,
    runs: AtomicU64,
    run_errors: AtomicU64,
    api_errors: AtomicU64,
    peak_rss: AtomicU64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let plan = Plan::from_args()?;
    let origin = start_origin().await?;
    let dir = tempfile::tempdir()?;
    let (base, stop, served) = start_service(&dir.path().join("load.db"), origin).await?;
    println!(
        "load: {} relay clients for {} s, an extraction run every {} s over {STREAMS} streams; \
         segments of {} KiB; service {base}, origin {origin}",
        plan.clients,
        plan.duration.as_secs(),
        plan.extract_every.as_secs(),
        SEGMENT_BYTES / 1024,
    );
    let tally = Arc::new(Tally::default());
    tally.peak_rss.store(rss_bytes(), Ordering::Relaxed);
    let rss_before = rss_bytes();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.clients + 16)
        .build()?;
    // A first run, so `/streams` has content and the API probe measures
    // real queries.
    let first = client.post(format!("{base}/extract")).send().await?;
    anyhow::ensure!(first.status().is_success(), "first run: {}", first.status());

    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    let signer = Signer::new(SIGNING_KEY.as_bytes());
    for id in 0..plan.clients {
        let urls: Vec<String> = (0..SEGMENTS)
            .map(|segment| {
                let upstream = format!("http://{origin}/live/{}/seg{segment}.ts", id % STREAMS);
                format!("{base}{}", signer.path(Kind::Relay, &upstream, None))
            })
            .collect();
        tasks.spawn(relay_client(client.clone(), urls, deadline, Arc::clone(&tally)));
    }
    tasks.spawn(extractor(
        client.clone(),
        format!("{base}/extract"),
        plan.extract_every,
        deadline,
        Arc::clone(&tally),
    ));
    let api = tokio::spawn(api_probe(
        client.clone(),
        format!("{base}/streams"),
        deadline,
        Arc::clone(&tally),
    ));
    let third = plan.duration / 3;
    let sampler = tokio::spawn({
        let tally = Arc::clone(&tally);
        async move {
            // RSS at the end of each third of the run: a leak grows, a bound plateaus.
            let mut thirds = Vec::new();
            loop {
                let rss = rss_bytes();
                tally.peak_rss.fetch_max(rss, Ordering::Relaxed);
                if thirds.len() < 3 && started.elapsed() >= third * (thirds.len() as u32 + 1) {
                    thirds.push(rss);
                    if thirds.len() == 3 {
                        return thirds;
                    }
                }
                tokio::time::sleep(RSS_EVERY).await;
            }
        }
    });
    let finished = tokio::time::timeout(plan.duration + OVERTIME, async {
        while let Some(joined) = tasks.join_next().await {
            joined?;
        }
        api.await
    })
    .await;
    let thirds = match tokio::time::timeout(RSS_EVERY * 5, sampler).await {
        Ok(Ok(thirds)) => thirds,
        _ => Vec::new(),
    };
    let latencies = match finished {
        Ok(Ok(latencies)) => latencies,
        Ok(Err(e)) => anyhow::bail!("a load task failed: {e}"),
        Err(_) => {
            println!(
                "FAIL: the run overstayed its deadline by more than {} s",
                OVERTIME.as_secs()
            );
            return Ok(false);
        }
    };
    let elapsed = started.elapsed();
    let _ = stop.send(());
    served.await??;

    let relays = tally.relays.load(Ordering::Relaxed);
    let bytes = tally.relay_bytes.load(Ordering::Relaxed);
    let errors = tally.relay_errors.load(Ordering::Relaxed)
        + tally.run_errors.load(Ordering::Relaxed)
        + tally.api_errors.load(Ordering::Relaxed);
    let (p50, p99, max) = percentiles(latencies.clone());
    let peak = tally.peak_rss.load(Ordering::Relaxed);
    println!(
        "relays: {relays} complete, {:.1} MiB relayed ({:.1} MiB/s), {} errors",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / elapsed.as_secs_f64(),
        tally.relay_errors.load(Ordering::Relaxed),
    );
    println!(
        "extraction runs: {} complete during the load, {} errors",
        tally.runs.load(Ordering::Relaxed),
        tally.run_errors.load(Ordering::Relaxed),
    );
    println!(
        "GET /streams during the load: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (bound p99 < {} ms), {} errors",
        latencies.len(),
        ms(p50),
        ms(p99),
        ms(max),
        plan.api_p99_bound.as_millis(),
        tally.api_errors.load(Ordering::Relaxed),
    );
    let thirds: Vec<String> = thirds
        .iter()
        .map(|rss| format!("{:.0}", *rss as f64 / 1048576.0))
        .collect();
    println!(
        "RSS (service + origin + clients in one process): {:.0} MiB before, {} MiB after each third, peak {:.0} MiB",
        rss_before as f64 / 1048576.0,
        thirds.join(" / "),
        peak as f64 / 1048576.0,
    );
    let ok = errors == 0 && p99 <= plan.api_p99_bound && relays > 0;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Fetches its segments in turn until the deadline, checking each body.
async fn relay_client(client: reqwest::Client, urls: Vec<String>, deadline: Instant, tally: Arc<Tally>) {
    for url in urls.iter().cycle() {
        if Instant::now() >= deadline {
            return;
        }
        // Counted as it streams, so the clients hold no bodies and the RSS
        // is mostly the service's and the origin's.
        let result = async {
            let mut response = client.get(url).send().await?.error_for_status()?;
            let mut len = 0;
            while let Some(chunk) = response.chunk().await? {
                len += chunk.len();
            }
            Ok::<_, reqwest::Error>(len)
        }
        .await;
        match result {
            Ok(len) if len == SEGMENT_BYTES => {
                tally.relays.fetch_add(1, Ordering::Relaxed);
                tally.relay_bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
            Ok(len) => {
                eprintln!("relay error: {len} bytes instead of {SEGMENT_BYTES}");
                tally.relay_errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("relay error: {e}");
                tally.relay_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Triggers a run every `every` until the deadline (runs may coalesce).
async fn extractor(
    client: reqwest::Client,
    url: String,
    every: Duration,
    deadline: Instant,
    tally: Arc<Tally>,
) {
    let mut next = Instant::now();
    while next < deadline {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        match client.post(&url).send().await {
            Ok(response) if response.status().is_success() => {
                tally.runs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(response) => {
                eprintln!("extraction error: HTTP {}", response.status());
                tally.run_errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("extraction error: {e}");
                tally.run_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `GET /streams` in a loop until the deadline; returns each latency.
async fn api_probe(
    client: reqwest::Client,
    url: String,
    deadline: Instant,
    tally: Arc<Tally>,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let result = async {
            let response = client.get(&url).send().await?.error_for_status()?;
            response.bytes().await
        }
        .await;
        latencies.push(started.elapsed());
        let result =
            result.map(|body| serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default());
        match result {
            Ok(list) if list["count"] == STREAMS => {}
            Ok(list) => {
                eprintln!("api error: {} streams served instead of {STREAMS}", list["count"]);
                tally.api_errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("api error: {e}");
                tally.api_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(API_PROBE_EVERY).await;
    }
    latencies
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), samples[samples.len() - 1])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Resident memory of this process (Linux `/proc`), 0 elsewhere.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

// --- the origin and the service -------------------------------------------------

/// A local HLS origin: `/live/{n}/index.m3u8` (a VOD playlist of
/// [`SEGMENTS`] segments) and `/live/{n}/seg{i}.ts` ([`SEGMENT_BYTES`]
/// bytes, one shared buffer).
async fn start_origin() -> anyhow::Result<SocketAddr> {
    let segment = Bytes::from(
        (0..SEGMENT_BYTES)
            .map(|i| if i % 188 == 0 { 0x47 } else { (i % 251) as u8 })
            .collect::<Vec<u8>>(),
    );
    let playlist: String = std::iter::once("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n".to_owned())
        .chain((0..SEGMENTS).map(|i| format!("#EXTINF:4.0,\nseg{i}.ts\n")))
        .chain(std::iter::once("#EXT-X-ENDLIST\n".to_owned()))
        .collect();
    let router = Router::new().route(
        "/live/{stream}/{file}",
        get(move |Path((_stream, file)): Path<(String, String)>| {
            let segment = segment.clone();
            let playlist = playlist.clone();
            async move {
                if file == "index.m3u8" {
                    (
                        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
                        playlist,
                    )
                        .into_response()
                } else if file.starts_with("seg") && file.ends_with(".ts") {
                    ([(header::CONTENT_TYPE, "video/mp2t")], segment).into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("origin failed: {e}");
        }
    });
    Ok(address)
}

type Served = tokio::task::JoinHandle<std::io::Result<()>>;

/// The real service on 127.0.0.1 with a static extractor of [`STREAMS`]
/// streams on the origin.
async fn start_service(
    db: &std::path::Path,
    origin: SocketAddr,
) -> anyhow::Result<(String, oneshot::Sender<()>, Served)> {
    let streams: Vec<String> = (0..STREAMS)
        .map(|n| format!("{{ url = \"http://{origin}/live/{n}/index.m3u8\", title = \"Feed {n}\" }}"))
        .collect();
    let toml = format!(
        "[database]\nurl = \"sqlite://{}\"\n\
         [network]\nallow_private_networks = true\n\
         [extraction]\nrun_on_startup = false\n\
         [proxy]\nsigning_key = \"{SIGNING_KEY}\"\n\
         max_relays = 0\nmax_relays_per_client = 0\n\
         [schedule]\nenabled = false\n\
         [[extractors]]\nsite_key = \"load\"\nsite_name = \"Load\"\nkind = \"static\"\nstreams = [{}]\n",
        db.display(),
        streams.join(", ")
    );
    let app = App::build(Config::from_toml_str(&toml)?).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    Ok((base, stop, served))
}
