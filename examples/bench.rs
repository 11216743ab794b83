//! End-to-end benchmarks (targets in docs/PERFORMANCE.md), printed as one table: each scenario's
//! figure, the baseline measured in the same run, their ratio and the target.
//!
//! ```text
//! cargo run --release --example bench             # the full run (minutes)
//! cargo run --release --example bench -- --quick  # tiny sizes (seconds; CI)
//! cargo run --release --example bench -- --only relay1,proxy
//! ```
//!
//! Each scenario group runs in its own child process of this binary (so
//! each starts with a fresh RSS), and within it everything runs in that
//! one process on 127.0.0.1: a local origin (axum, bodies served as
//! `Bytes` slices of buffers built once, so it copies nothing), the real
//! service (`App::build` + `App::serve` on a temp database,
//! `network.allow_private_networks = true`), and the clients.
//! Baselines are the same requests sent straight to the origin, interleaved
//! with ours round by round so that machine noise hits both alike.
//! `docs/PERFORMANCE.md` explains each scenario and holds the latest table.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::Utc;
use f1_stream::app::App;
use f1_stream::config::Config;
use f1_stream::db::{Database, RunRecord};
use f1_stream::extraction::ProgressFn;
use f1_stream::model::RunTrigger;
use f1_stream::proxy::rewrite::{RewriteContext, rewrite};
use f1_stream::proxy::token::{Kind, Signer};
use futures::stream;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

#[path = "../benches/support/mod.rs"]
mod support;

const MIB: u64 = 1024 * 1024;
/// Size of the byte pattern relayed bodies are sliced from.
const PATTERN_BYTES: usize = 1024 * 1024;
/// Size of one origin body chunk (a `Bytes` slice of the pattern). Divides
/// [`PATTERN_BYTES`], so every chunk is one contiguous slice.
const ORIGIN_CHUNK: usize = 256 * 1024;
/// Size of a segment the health origin serves (MPEG-TS packets).
const HEALTH_SEGMENT_BYTES: usize = 188 * 2048;
/// Check history interval of the filled `/streams` databases (the live
/// polling interval).
const CHECK_INTERVAL_SECS: i64 = 300;

/// How big each scenario is.
#[derive(Debug, Clone)]
struct Sizes {
    /// Body relayed to one client.
    single_body: u64,
    /// Body relayed to each of the concurrent clients.
    multi_body: u64,
    /// Concurrent relay clients.
    multi_clients: usize,
    /// Direct/relay rounds of the relay scenarios (the median is reported).
    relay_rounds: usize,
    /// Segments of the proxied media playlist.
    playlist_segments: usize,
    /// Concurrent keep-alive clients of the `/proxy` load.
    load_clients: usize,
    /// Duration of one `/proxy` (or direct) load round.
    load_duration: Duration,
    /// Load rounds (direct, then ours, each round).
    load_rounds: usize,
    /// Rewrites timed in-process.
    rewrite_iterations: usize,
    /// Streams health-checked in one extraction run (and stored).
    health_streams: usize,
    /// Streams in the `/streams` databases.
    listing_streams: usize,
    /// Checks in the small `/streams` database (the baseline).
    listing_checks_small: u64,
    /// Checks in the large one.
    listing_checks_large: u64,
    /// Timed `/streams` requests per database.
    listing_requests: usize,
    /// Target duration of the channel scenarios' live sources.
    channel_target: Duration,
    /// Failovers timed (alternating between the two sources).
    channel_failovers: usize,
    /// Target durations the 50 viewers watch while fetches are counted.
    channel_watch_targets: u32,
}

impl Sizes {
    /// The sizes the targets are set for (docs/PERFORMANCE.md).
    fn full() -> Self {
        Self {
            single_body: 1024 * MIB,
            multi_body: 16 * MIB,
            multi_clients: 32,
            relay_rounds: 9,
            playlist_segments: 5_000,
            load_clients: 8,
            load_duration: Duration::from_secs(5),
            load_rounds: 2,
            rewrite_iterations: 200,
            health_streams: 10_000,
            listing_streams: 10_000,
            listing_checks_small: 1_000,
            listing_checks_large: 1_000_000,
            listing_requests: 200,
            channel_target: Duration::from_secs(2),
            channel_failovers: 5,
            channel_watch_targets: 15,
        }
    }

    /// Small enough for a debug build in CI: proves every scenario runs.
    fn quick() -> Self {
        Self {
            single_body: 8 * MIB,
            multi_body: MIB,
            multi_clients: 4,
            relay_rounds: 1,
            playlist_segments: 500,
            load_clients: 2,
            load_duration: Duration::from_millis(300),
            load_rounds: 1,
            rewrite_iterations: 3,
            health_streams: 200,
            listing_streams: 200,
            listing_checks_small: 200,
            listing_checks_large: 4_000,
            listing_requests: 10,
            channel_target: Duration::from_secs(1),
            channel_failovers: 1,
            channel_watch_targets: 3,
        }
    }
}

/// Scenario groups that `--only` can pick.
const GROUPS: [&str; 7] = [
    "relay1", "relay32", "proxy", "rewrite", "health", "listing", "channels",
];

/// Parsed command line.
struct Args {
    quick: bool,
    groups: BTreeSet<&'static str>,
    /// Internal: run the groups in this process and print only the rows
    /// (the parent runs each group in its own child process).
    child: bool,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let mut quick = false;
        let mut child = false;
        let mut groups: BTreeSet<&'static str> = GROUPS.into_iter().collect();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--child" => child = true,
                "--only" => {
                    let list = args.next().context("--only needs a list, e.g. relay1,proxy")?;
                    groups = BTreeSet::new();
                    for name in list.split(',') {
                        let group = GROUPS.into_iter().find(|g| *g == name).with_context(|| {
                            format!("--only: {name:?} is not one of {}", GROUPS.join(","))
                        })?;
                        groups.insert(group);
                    }
                }
                "-h" | "--help" => {
                    println!(
                        "usage: bench [--quick] [--only {}]\n\
                         Runs the end-to-end benchmarks (docs/PERFORMANCE.md) and prints one table.",
                        GROUPS.join(",")
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        Ok(Self { quick, groups, child })
    }
}

/// One line of the result table.
struct Row {
    scenario: String,
    ours: String,
    baseline: String,
    ratio: String,
    target: String,
    /// `None`: a figure shown for comparison, with no target.
    pass: Option<bool>,
}

impl Row {
    fn new(scenario: impl Into<String>, ours: impl Into<String>, baseline: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            ours: ours.into(),
            baseline: baseline.into(),
            ratio: "—".into(),
            target: "—".into(),
            pass: None,
        }
    }

    fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = format!("{ratio:.3}");
        self
    }

    fn target(mut self, target: impl Into<String>, pass: bool) -> Self {
        self.target = target.into();
        self.pass = Some(pass);
        self
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    if !args.child {
        return run_children(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(run_groups(args))
}

/// Runs each group in a child process of this binary, so that every group
/// starts from a fresh process (its RSS and allocator state are its own),
/// then prints the machine line and one table of all rows.
fn run_children(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("locating this binary")?;
    eprintln!("{}", machine_line(args.quick));
    let mut rows = Vec::new();
    for group in &args.groups {
        let mut command = std::process::Command::new(&exe);
        command.args(["--child", "--only", group]);
        if args.quick {
            command.arg("--quick");
        }
        let output = command
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running group {group}"))?;
        ensure!(
            output.status.success(),
            "group {group} failed ({})",
            output.status
        );
        let text = String::from_utf8(output.stdout).context("rows are UTF-8")?;
        rows.extend(
            text.lines()
                .filter(|line| line.starts_with("| "))
                .map(str::to_owned),
        );
    }
    rows.sort_by_key(|row| {
        let scenario = row.trim_start_matches("| ");
        SCENARIO_ORDER.iter().position(|p| scenario.starts_with(p))
    });
    println!("{}", machine_line(args.quick));
    println!("| scenario | ours | baseline (same run) | ratio | target | pass |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    eprintln!("bench finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs the selected groups in this process and prints their rows.
async fn run_groups(args: Args) -> anyhow::Result<()> {
    let sizes = if args.quick { Sizes::quick() } else { Sizes::full() };
    let dir = tempfile::tempdir().context("creating a temp dir")?;
    let origin = Origin::start(sizes.playlist_segments).await?;
    let client = bench_client(sizes.multi_clients.max(sizes.load_clients))?;
    let mut rows = Vec::new();

    if args.groups.contains("health") {
        eprintln!("== health check run of {} streams", sizes.health_streams);
        let (health_rows, record, config) = health_scenario(&origin, &sizes, dir.path()).await?;
        rows.extend(health_rows);
        eprintln!("== storing a run of {} streams", record.stream_count());
        rows.extend(store_scenario(&record, &config, dir.path()).await?);
    }

    let service = Service::start(service_config(&dir.path().join("service.db"), "")?).await?;
    if args.groups.contains("relay32") {
        eprintln!(
            "== relay: {} clients × {} MiB",
            sizes.multi_clients,
            sizes.multi_body / MIB
        );
        rows.extend(relay_multi_scenario(&origin, &service, &client, &sizes).await?);
    }
    if args.groups.contains("relay1") {
        eprintln!("== relay: one client × {} MiB", sizes.single_body / MIB);
        rows.push(relay_single_scenario(&origin, &service, &client, &sizes).await?);
    }
    if args.groups.contains("proxy") {
        eprintln!("== /proxy of a {}-segment playlist", sizes.playlist_segments);
        let forgetful = Service::start(service_config(
            &dir.path().join("forgetful.db"),
            "[proxy]\nsignature_cache_entries = 0\n",
        )?)
        .await?;
        rows.extend(proxy_scenario(&origin, [&service, &forgetful], &client, &sizes).await?);
        forgetful.stop().await?;
    }
    if args.groups.contains("rewrite") {
        eprintln!("== rewriter alone");
        rows.extend(rewrite_scenario(&origin, &sizes)?);
    }
    service.stop().await?;

    if args.groups.contains("channels") {
        eprintln!(
            "== failover channels: live sources of {} s segments",
            sizes.channel_target.as_secs()
        );
        rows.extend(channel_scenario(&client, &sizes, dir.path()).await?);
    }
    if args.groups.contains("listing") {
        eprintln!(
            "== GET /streams with {} streams: {} vs {} checks",
            sizes.listing_streams, sizes.listing_checks_large, sizes.listing_checks_small
        );
        rows.push(listing_scenario(&client, &sizes, dir.path()).await?);
    }
    for row in &rows {
        println!("{}", row_line(row, args.quick));
    }
    Ok(())
}

/// Table order: as in docs/PERFORMANCE.md.
const SCENARIO_ORDER: [&str; 12] = [
    "relay one",
    "relay ",
    "peak RSS",
    "/proxy",
    "rewriter",
    "health-check",
    "health RSS",
    "store",
    "GET /streams",
    "channel failover",
    "channel playlist",
    "channel upstream",
];

/// Machine, load and date, printed above the table.
fn machine_line(quick: bool) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    let profile = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    let mode = if quick {
        "--quick (tiny sizes: figures mean nothing)"
    } else {
        "full"
    };
    format!(
        "{} UTC · {cpus} CPUs ({cpu}) · load average {load} · {profile} · {mode}",
        Utc::now().format("%Y-%m-%d %H:%M")
    )
}

/// A row as a line of the Markdown table.
fn row_line(row: &Row, quick: bool) -> String {
    let pass = match (quick, row.pass) {
        (_, None) => "—",
        (true, Some(_)) => "(quick)",
        (false, Some(true)) => "yes",
        (false, Some(false)) => "**no**",
    };
    format!(
        "| {} | {} | {} | {} | {} | {pass} |",
        row.scenario, row.ours, row.baseline, row.ratio, row.target
    )
}

// ---------------------------------------------------------------- origin --

/// What the local origin serves, built once.
struct OriginState {
    /// Relayed bodies are slices of this.
    pattern: Bytes,
    /// The big live media playlist.
    live: OnceLock<LivePlaylist>,
    /// Segments of the live playlist.
    playlist_segments: usize,
    /// The small live media playlist every health-checked stream answers.
    health_playlist: Bytes,
    /// Its segments.
    segment: Bytes,
    /// Requests for health-checked paths (playlists and segments), to show
    /// how many requests one check makes.
    health_requests: AtomicU64,
}

/// The local origin on 127.0.0.1.
struct Origin {
    addr: SocketAddr,
    state: Arc<OriginState>,
    _stop: oneshot::Sender<()>,
}

impl Origin {
    async fn start(playlist_segments: usize) -> anyhow::Result<Self> {
        let pattern: Bytes = (0..PATTERN_BYTES)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let mut segment = vec![0xffu8; HEALTH_SEGMENT_BYTES];
        for packet in segment.chunks_mut(188) {
            packet[0] = 0x47;
        }
        let state = Arc::new(OriginState {
            pattern,
            live: OnceLock::new(),
            playlist_segments,
            health_playlist: Bytes::from_static(
                b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:7\n\
                  #EXTINF:6.0,\nseg7.ts\n#EXTINF:6.0,\nseg8.ts\n#EXTINF:6.0,\nseg9.ts\n",
            ),
            segment: segment.into(),
            health_requests: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/blob/{size}", get(serve_blob))
            .route("/live/index.m3u8", get(serve_playlist))
            .route("/h/{id}/index.m3u8", get(serve_health_playlist))
            .route("/h/{id}/{segment}", get(serve_segment))
            .with_state(Arc::clone(&state));
        let (addr, stop) = serve_origin(router, "origin").await?;
        Ok(Self {
            addr,
            state,
            _stop: stop,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Serves `router` on 127.0.0.1:0 until the returned sender is used or
/// dropped; `what` names it in errors.
async fn serve_origin(
    router: Router,
    what: &'static str,
) -> anyhow::Result<(SocketAddr, oneshot::Sender<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .with_context(|| format!("binding the {what}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("{what} failed: {e}");
        }
    });
    Ok((addr, stop))
}

impl OriginState {
    /// The live playlist, built when first asked for: only the `proxy`
    /// group serves it, and its lines would weigh on the others' RSS.
    fn live(&self) -> &LivePlaylist {
        self.live
            .get_or_init(|| LivePlaylist::new(self.playlist_segments))
    }
}

/// The origin's big live playlist: every request is the next reload, its
/// window slid by one segment (one segment dropped, one new), the way a
/// live playlist changes between a player's reloads (more often, in fact:
/// a real one changes once per target duration, here once per request).
/// Served as two `Bytes` (header, then a slice of segment lines built once),
/// so the origin copies nothing.
struct LivePlaylist {
    lines: Bytes,
    segments: usize,
    next: AtomicU64,
}

impl LivePlaylist {
    /// Reloads before the window wraps around to the first one.
    const RELOADS: usize = 200_000;

    fn new(segments: usize) -> Self {
        let lines = support::media_segments(support::FIRST_SEQUENCE, segments + Self::RELOADS);
        Self {
            lines: lines.into(),
            segments,
            next: AtomicU64::new(0),
        }
    }

    /// The header and segment lines of the next reload.
    fn next_reload(&self) -> (Bytes, Bytes) {
        let reload = (self.next.fetch_add(1, Ordering::Relaxed) % Self::RELOADS as u64) as usize;
        let header = support::media_header(support::FIRST_SEQUENCE + reload);
        let start = reload * support::SEGMENT_LINES_BYTES;
        let end = start + self.segments * support::SEGMENT_LINES_BYTES;
        (header.into(), self.lines.slice(start..end))
    }

    /// Bytes of one reload.
    fn len(&self) -> usize {
        support::media_header(support::FIRST_SEQUENCE).len() + self.segments * support::SEGMENT_LINES_BYTES
    }
}

/// `size` bytes of the pattern, as `Bytes` slices (no copies), with a
/// `Content-Length`.
async fn serve_blob(State(state): State<Arc<OriginState>>, UrlPath(size): UrlPath<u64>) -> Response {
    let pattern = state.pattern.clone();
    let chunk = ORIGIN_CHUNK as u64;
    let chunks = (0..size.div_ceil(chunk)).map(move |i| {
        let start = i * chunk;
        let len = (size - start).min(chunk) as usize;
        let offset = (start % PATTERN_BYTES as u64) as usize;
        Ok::<_, Infallible>(pattern.slice(offset..offset + len))
    });
    (
        [
            (header::CONTENT_TYPE, "video/mp2t".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(stream::iter(chunks)),
    )
        .into_response()
}

async fn serve_playlist(State(state): State<Arc<OriginState>>) -> Response {
    let (header, segments) = state.live().next_reload();
    let len = header.len() + segments.len();
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream::iter([Ok::<_, Infallible>(header), Ok(segments)])),
    )
        .into_response()
}

async fn serve_health_playlist(State(state): State<Arc<OriginState>>) -> Response {
    state.health_requests.fetch_add(1, Ordering::Relaxed);
    playlist_response(state.health_playlist.clone())
}

fn playlist_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")], body).into_response()
}

/// A segment, honouring `Range: bytes=a-b` (deep health checks read a part).
async fn serve_segment(State(state): State<Arc<OriginState>>, headers: HeaderMap) -> Response {
    state.health_requests.fetch_add(1, Ordering::Relaxed);
    let body = state.segment.clone();
    let len = body.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let start: usize = a.parse().ok()?;
            let end = b.parse::<usize>().map_or(len - 1, |b| b.min(len - 1));
            (start <= end).then_some((start, end))
        });
    match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, "video/mp2t".to_owned()),
                (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
            ],
            body.slice(start..=end),
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "video/mp2t")], body).into_response(),
    }
}

// --------------------------------------------------------------- service --

/// Config of a bench service: temp database, loopback origin allowed, no
/// background runs, no calendar, then `extra` TOML.
fn service_config(db_path: &Path, extra: &str) -> anyhow::Result<Config> {
    let toml = format!(
        "[database]\nurl = \"sqlite://{}\"\n\
         [network]\nallow_private_networks = true\n\
         [extraction]\nrun_on_startup = false\n\
         [schedule]\nenabled = false\n\
         {extra}",
        db_path.display()
    );
    let mut config = Config::from_toml_str(&toml).context("bench config is valid")?;
    // Every bench client is on 127.0.0.1: one address stands for many
    // viewers here, so the per-client relay limit would measure itself.
    config.proxy.max_relays = 0;
    config.proxy.max_relays_per_client = 0;
    Ok(config)
}

/// The real service, served on 127.0.0.1:0.
struct Service {
    base: String,
    app: App,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let app = App::build(config).await.context("building the service")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the service")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = app.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            base,
            app,
            stop,
            task,
        })
    }

    /// The signed proxy URL of `upstream`.
    fn signed(&self, kind: Kind, upstream: &str) -> String {
        format!("{}{}", self.base, self.app.signer().path(kind, upstream, None))
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("service task")??;
        Ok(())
    }
}

// --------------------------------------------------------------- clients --

/// The bench's own HTTP client: keep-alive pool, nothing else.
fn bench_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .context("building the bench client")
}

/// GETs `url` and reads the whole body, counting bytes without keeping them.
async fn drain(client: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let mut response = client.get(url).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{url}: HTTP {}",
        response.status()
    );
    let mut total = 0u64;
    while let Some(chunk) = response.chunk().await? {
        total += chunk.len() as u64;
    }
    Ok(total)
}

/// `clients` concurrent fetches of `bytes` each from `url`: the time for all.
async fn fetch_concurrently(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    bytes: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move { drain(&client, &url).await })
        })
        .collect();
    for task in tasks {
        let got = task.await??;
        ensure!(got == bytes, "{url}: {got} bytes, expected {bytes}");
    }
    Ok(started.elapsed())
}

/// Requests completed by `clients` keep-alive loops over `duration`, and
/// the time until the last one ended.
async fn load(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut requests = 0u64;
                while Instant::now() < deadline {
                    drain(&client, &url).await?;
                    requests += 1;
                }
                anyhow::Ok(requests)
            })
        })
        .collect();
    let mut requests = 0;
    for task in tasks {
        requests += task.await??;
    }
    Ok((requests, started.elapsed()))
}

// ------------------------------------------------------------------- RSS --

/// Resident memory of this process (`VmRSS`, or another `/proc/self/status`
/// field), in bytes.
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field).and_then(|v| {
                    v.trim_start_matches(':')
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
        })
        .map_or(0, |kib| kib * 1024)
}

fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS")
}

/// Peak RSS of this process over an interval: `VmHWM` after resetting it
/// (`/proc/self/clear_refs`), cross-checked by a 2 ms sampling thread in
/// case the reset is not permitted.
struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: std::thread::JoinHandle<()>,
    hwm_reset: bool,
}

impl PeakRss {
    fn start() -> Self {
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let sampler = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            stop,
            peak,
            sampler,
            hwm_reset,
        }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        let sampled = self.peak.load(Ordering::Relaxed).max(rss_bytes());
        if self.hwm_reset {
            sampled.max(proc_status_bytes("VmHWM"))
        } else {
            sampled
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `q` quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

// ------------------------------------------------------------- scenarios --

/// 16 MiB to each of 32 clients at once, direct then relayed, per round;
/// and the service's peak RSS during it.
///
/// RSS method: the origin and the clients live in this process too, so the
/// service's share is `peak(relay round) − peak(direct round)`: both rounds
/// have the same origin and clients, the relay round adds the service. The
/// direct round runs first, so memory the allocator keeps after it is
/// reused by the relay round's clients rather than counted for the service.
async fn relay_multi_scenario(
    origin: &Origin,
    service: &Service,
    client: &reqwest::Client,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Row>> {
    let path = format!("/blob/{}", sizes.multi_body);
    let direct_url = origin.url(&path);
    let relay_url = service.signed(Kind::Relay, &direct_url);
    let total = sizes.multi_body * sizes.multi_clients as u64;
    let idle = rss_bytes();
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    let (mut peak_direct, mut peak_relay) = (0u64, 0u64);
    for _ in 0..sizes.relay_rounds {
        let rss = PeakRss::start();
        let elapsed = fetch_concurrently(client, &direct_url, sizes.multi_clients, sizes.multi_body).await?;
        peak_direct = peak_direct.max(rss.finish());
        baseline.push(mb_per_s(total, elapsed));

        let rss = PeakRss::start();
        let elapsed = fetch_concurrently(client, &relay_url, sizes.multi_clients, sizes.multi_body).await?;
        peak_relay = peak_relay.max(rss.finish());
        ours.push(mb_per_s(total, elapsed));
    }
    let (ours, baseline) = (median(ours), median(baseline));
    let ratio = ours / baseline;
    let extra = peak_relay.saturating_sub(peak_direct);
    let throughput = Row::new(
        format!(
            "relay {} MiB × {} concurrent clients, aggregate",
            sizes.multi_body / MIB,
            sizes.multi_clients
        ),
        format!("{ours:.0} MB/s"),
        format!("{baseline:.0} MB/s direct"),
    )
    .ratio(ratio)
    .target("≥ 0.5", ratio >= 0.5);
    let memory = Row::new(
        format!(
            "peak RSS of the service during the {}-client relay",
            sizes.multi_clients
        ),
        format!(
            "idle + {:.1} MiB (peak {:.1} MiB relayed − {:.1} MiB direct)",
            mib(extra),
            mib(peak_relay),
            mib(peak_direct)
        ),
        format!("idle {:.1} MiB (whole process)", mib(idle)),
    )
    .target("≤ idle + 32 MiB", extra <= 32 * MIB);
    // After the RSS rounds, whose figures the forwarder's buffers would
    // inflate; with its own direct rounds, interleaved the same way.
    let forwarder = TcpForwarder::start(origin.addr).await?;
    let forwarded_url = format!("http://{}{path}", forwarder.addr);
    let (mut bare, mut bare_baseline) = (Vec::new(), Vec::new());
    for _ in 0..sizes.relay_rounds {
        let elapsed = fetch_concurrently(client, &direct_url, sizes.multi_clients, sizes.multi_body).await?;
        bare_baseline.push(mb_per_s(total, elapsed));
        let elapsed =
            fetch_concurrently(client, &forwarded_url, sizes.multi_clients, sizes.multi_body).await?;
        bare.push(mb_per_s(total, elapsed));
    }
    let (bare, bare_baseline) = (median(bare), median(bare_baseline));
    let ceiling = Row::new(
        format!(
            "relay {} MiB × {} concurrent clients through a bare TCP forwarder (no HTTP; \
             `tokio::io::copy_bidirectional`, {} KiB buffers): what any relay that reads and \
             writes the bytes can reach",
            sizes.multi_body / MIB,
            sizes.multi_clients,
            TcpForwarder::BUFFER / 1024
        ),
        format!("{bare:.0} MB/s"),
        format!("{bare_baseline:.0} MB/s direct"),
    )
    .ratio(bare / bare_baseline);
    Ok(vec![throughput, ceiling, memory])
}

/// A relay reduced to its least: every accepted connection is joined to a
/// new connection to the origin and bytes are copied both ways, without
/// parsing HTTP. Its throughput is the ceiling of any relay that moves the
/// bytes through user space, as ours does.
struct TcpForwarder {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TcpForwarder {
    /// Copy buffer per direction, about hyper's largest read.
    const BUFFER: usize = 400 * 1024;

    async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the forwarder")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut upstream = tokio::net::TcpStream::connect(upstream).await?;
                    upstream.set_nodelay(true)?;
                    downstream.set_nodelay(true)?;
                    tokio::io::copy_bidirectional_with_sizes(
                        &mut downstream,
                        &mut upstream,
                        Self::BUFFER,
                        Self::BUFFER,
                    )
                    .await?;
                    std::io::Result::Ok(())
                });
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for TcpForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One big body to one client, direct then relayed, per round.
async fn relay_single_scenario(
    origin: &Origin,
    service: &Service,
    client: &reqwest::Client,
    sizes: &Sizes,
) -> anyhow::Result<Row> {
    let direct_url = origin.url(&format!("/blob/{}", sizes.single_body));
    let relay_url = service.signed(Kind::Relay, &direct_url);
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..sizes.relay_rounds {
        let elapsed = fetch_concurrently(client, &direct_url, 1, sizes.single_body).await?;
        baseline.push(mb_per_s(sizes.single_body, elapsed));
        let elapsed = fetch_concurrently(client, &relay_url, 1, sizes.single_body).await?;
        ours.push(mb_per_s(sizes.single_body, elapsed));
    }
    let (ours, baseline) = (median(ours), median(baseline));
    let ratio = ours / baseline;
    Ok(Row::new(
        format!("relay one {} MiB body, one client", sizes.single_body / MIB),
        format!("{ours:.0} MB/s"),
        format!("{baseline:.0} MB/s direct"),
    )
    .ratio(ratio)
    .target("≥ 0.5", ratio >= 0.5))
}

/// Requests/s of `/proxy` on the big live playlist (a new segment on every
/// request) against fetching it directly, with `load_clients` keep-alive
/// clients: the service as configured (it remembers the signed paths of the
/// last reloads), and one that remembers none and signs every URI of every
/// reload (`proxy.signature_cache_entries = 0`).
async fn proxy_scenario(
    origin: &Origin,
    [service, forgetful]: [&Service; 2],
    client: &reqwest::Client,
    sizes: &Sizes,
) -> anyhow::Result<Vec<Row>> {
    let direct_url = origin.url("/live/index.m3u8");
    let proxy_urls = [service, forgetful].map(|service| service.signed(Kind::Proxy, &direct_url));
    let mut rewritten_len = 0;
    for url in &proxy_urls {
        let rewritten = client.get(url).send().await?.error_for_status()?.text().await?;
        ensure!(
            rewritten.matches("/relay/").count() == sizes.playlist_segments,
            "the proxied playlist is not rewritten as expected"
        );
        rewritten_len = rewritten.len();
    }
    let (mut ours, mut baseline) = ([Vec::new(), Vec::new()], Vec::new());
    for _ in 0..sizes.load_rounds {
        let (requests, elapsed) = load(client, &direct_url, sizes.load_clients, sizes.load_duration).await?;
        baseline.push(requests as f64 / elapsed.as_secs_f64());
        for (url, ours) in proxy_urls.iter().zip(&mut ours) {
            let (requests, elapsed) = load(client, url, sizes.load_clients, sizes.load_duration).await?;
            ours.push(requests as f64 / elapsed.as_secs_f64());
        }
    }
    let baseline = median(baseline);
    let [remembering, signing_all] = ours.map(|figures| median(figures) / baseline);
    let scenario = format!(
        "/proxy of a {}-segment live media playlist, one new segment per request ({} kB → {} kB), \
         {} keep-alive clients",
        sizes.playlist_segments,
        origin.state.live().len() / 1000,
        rewritten_len / 1000,
        sizes.load_clients
    );
    Ok(vec![
        Row::new(
            scenario.clone(),
            format!("{:.0} req/s", remembering * baseline),
            format!("{baseline:.0} req/s direct"),
        )
        .ratio(remembering)
        .target("≥ 0.05", remembering >= 0.05),
        Row::new(
            format!("{scenario}, no signed paths remembered (every URI signed on every request)"),
            format!("{:.0} req/s", signing_all * baseline),
            format!("{baseline:.0} req/s direct"),
        )
        .ratio(signing_all),
    ])
}

/// The rewriter alone, timed in-process on the proxied playlist (the
/// criterion bench `cargo bench --bench rewrite` is the precise figure):
/// reloads (one new segment each; the signer remembers the paths it signed
/// before), first sights (every URI new, so signed and remembered), and
/// first sights with a signer that remembers nothing, for comparison.
fn rewrite_scenario(origin: &Origin, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let base = Url::parse(&origin.url("/live/index.m3u8"))?;
    let key = b"bench signing key, 32 bytes long!";
    let (segments, iterations) = (sizes.playlist_segments, sizes.rewrite_iterations);
    let remembering = Signer::new(key);
    let first = support::media_playlist(segments);
    time_rewrites(&base, &remembering, 1, |_| first.as_str())?;
    let reloads: Vec<String> = (1..=iterations)
        .map(|reload| support::media_playlist_window(support::FIRST_SEQUENCE + reload, segments))
        .collect();
    let (reload, reload_wall) = time_rewrites(&base, &remembering, iterations, |i| reloads[i].as_str())?;
    // Playlists no signer has seen: every window starts past the last one.
    let fresh: Vec<String> = (0..iterations)
        .map(|i| support::media_playlist_window(10_000_000 + i * segments, segments))
        .collect();
    let (first_sight, first_sight_wall) =
        time_rewrites(&base, &Signer::new(key), iterations, |i| fresh[i].as_str())?;
    let (forgetful, forgetful_wall) =
        time_rewrites(&base, &Signer::with_path_cache(key, 0), iterations, |i| {
            fresh[i].as_str()
        })?;
    let scenario = format!("rewriter alone, {segments}-segment playlist ({iterations} runs)");
    let figure =
        |speed: f64, wall: f64| format!("{speed:.0} MB/s of input on-CPU (wall-clock median {wall:.0} MB/s)");
    Ok(vec![
        Row::new(
            format!("{scenario}, reloads: one new segment each"),
            figure(reload, reload_wall),
            "—",
        )
        .target("≥ 200 MB/s", reload >= 200.0),
        Row::new(
            format!("{scenario}, first sight: every URI new, signed and remembered"),
            figure(first_sight, first_sight_wall),
            "—",
        )
        .target("≥ 200 MB/s", first_sight >= 200.0),
        Row::new(
            format!(
                "{scenario}, first sight with no signed paths remembered (`signature_cache_entries = 0`)"
            ),
            figure(forgetful, forgetful_wall),
            "—",
        ),
    ])
}

/// Rewrites `playlist(i)` for i in `0..iterations` with `signer`; MB/s of
/// input from on-CPU time and from the wall-clock median.
fn time_rewrites<'a>(
    base: &Url,
    signer: &Signer,
    iterations: usize,
    playlist: impl Fn(usize) -> &'a str,
) -> anyhow::Result<(f64, f64)> {
    let ctx = RewriteContext {
        base,
        public_base: "http://127.0.0.1:8080",
        src: None,
        signer,
    };
    let mut wall = Vec::with_capacity(iterations);
    let mut bytes = 0;
    // The kernel updates a running thread's CPU time at scheduler ticks, so
    // CPU time is read around the whole loop (the mean), not per rewrite.
    let started_cpu = thread_cpu_ns();
    for i in 0..iterations {
        let text = playlist(i);
        let started = Instant::now();
        let out = rewrite(std::hint::black_box(text), &ctx).text;
        wall.push(text.len() as f64 / 1e6 / started.elapsed().as_secs_f64());
        bytes += text.len();
        ensure!(out.len() > text.len(), "the rewrite wrote no proxy URIs");
    }
    let cpu_secs = thread_cpu_ns().saturating_sub(started_cpu) as f64 / 1e9;
    let wall_speed = median(wall);
    // On-CPU time is what the code costs; wall time also counts the time
    // other processes held the core (the machine may be shared).
    let cpu_speed = bytes as f64 / 1e6 / cpu_secs;
    Ok((
        if cpu_speed.is_finite() {
            cpu_speed
        } else {
            wall_speed
        },
        wall_speed,
    ))
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`),
/// 0 where unavailable.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One real extraction run (a `static` extractor listing every stream, on
/// the local origin): checks/s until the last check, and peak RSS.
async fn health_scenario(
    origin: &Origin,
    sizes: &Sizes,
    dir: &Path,
) -> anyhow::Result<(Vec<Row>, Arc<RunRecord>, Config)> {
    let mut extractor = String::from(
        "[[extractors]]\nsite_key = \"bench\"\nsite_name = \"Bench origin\"\nkind = \"static\"\nstreams = [\n",
    );
    for i in 0..sizes.health_streams {
        let _ = writeln!(
            extractor,
            "  {{ url = \"{}\", title = \"Stream {i}\" }},",
            origin.url(&format!("/h/{i}/index.m3u8"))
        );
    }
    extractor.push_str("]\n");
    let config = service_config(&dir.join("health.db"), &extractor)?;
    let concurrency = config.health.concurrency;
    let app = App::build(config.clone())
        .await
        .context("building the health app")?;

    let last_check = Arc::new(Mutex::new(None::<Instant>));
    let progress: ProgressFn = {
        let last_check = Arc::clone(&last_check);
        Arc::new(move |done, total| {
            if done == total {
                *last_check.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
        })
    };
    let before = rss_bytes();
    let requests_before = origin.state.health_requests.load(Ordering::Relaxed);
    let rss = PeakRss::start();
    let started = Instant::now();
    let (summary, record) = app
        .extraction()
        .run_with_progress(RunTrigger::Cli, Some(progress))
        .await
        .context("the health run")?;
    let run_time = started.elapsed();
    let peak = rss.finish();
    ensure!(
        summary.live_streams == sizes.health_streams,
        "{} of {} streams healthy",
        summary.live_streams,
        sizes.health_streams
    );
    let checks_done = last_check
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .context("the run reported no progress")?;
    let checks_time = checks_done - started;
    let rate = sizes.health_streams as f64 / checks_time.as_secs_f64();
    let requests = origin.state.health_requests.load(Ordering::Relaxed) - requests_before;
    app.db().close().await;
    let rows = vec![
        Row::new(
            format!(
                "health-check {} streams on the local origin, one run (concurrency {concurrency})",
                sizes.health_streams
            ),
            format!(
                "{rate:.0} checks/s ({:.2} s, {:.1} origin requests per check; whole run with store {:.2} s)",
                checks_time.as_secs_f64(),
                requests as f64 / sizes.health_streams as f64,
                run_time.as_secs_f64()
            ),
            "—",
        )
        .target("≥ 2,000 checks/s", rate >= 2000.0),
        Row::new(
            "health RSS: peak of this whole process during the run",
            format!("{:.1} MiB (before the run {:.1} MiB)", mib(peak), mib(before)),
            "—",
        )
        .target("≤ 128 MiB", peak <= 128 * MIB),
    ];
    Ok((rows, record, config))
}

/// `Database::store_run` of the health run's record: into a new database
/// (every stream inserted), then again 5 minutes later (every stream
/// updated, as each later run does).
async fn store_scenario(record: &RunRecord, config: &Config, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let db = Database::open(&format!("sqlite://{}", dir.join("store.db").display())).await?;
    db.sync_extractors(&f1_stream::app::extractor_records(&config.extractors))
        .await?;
    let started = Instant::now();
    db.store_run(record).await?;
    let first = started.elapsed();

    let later = chrono::Duration::seconds(CHECK_INTERVAL_SECS);
    let mut next = record.clone();
    next.started_at += later;
    next.finished_at += later;
    for stream in next.extractors.iter_mut().flat_map(|e| e.streams.iter_mut()) {
        stream.health.checked_at += later;
    }
    let started = Instant::now();
    db.store_run(&next).await?;
    let second = started.elapsed();
    db.close().await;
    let n = record.stream_count();
    Ok(vec![
        Row::new(
            format!("store one run of {n} streams + checks (new streams)"),
            format!("{:.3} s", first.as_secs_f64()),
            "—",
        )
        .target("≤ 1 s", first <= Duration::from_secs(1)),
        Row::new(
            format!("store one run of {n} streams + checks (known streams, next run)"),
            format!("{:.3} s", second.as_secs_f64()),
            "—",
        )
        .target("≤ 1 s", second <= Duration::from_secs(1)),
    ])
}

/// Runs, then streams (10 % unhealthy, a third live), in one transaction.
const FILL_RUNS: &str = "WITH RECURSIVE seq(r) AS (SELECT 1 UNION ALL SELECT r + 1 FROM seq WHERE r < ?1)
    INSERT INTO extraction_runs (id, trigger, started_at, finished_at, stream_count, live_count)
    SELECT r, 'schedule', strftime('%Y-%m-%dT%H:%M:%fZ', ?2 + (r - 1) * ?3, 'unixepoch'),
           strftime('%Y-%m-%dT%H:%M:%fZ', ?2 + (r - 1) * ?3 + 20, 'unixepoch'), ?4, ?4 * 9 / 10
    FROM seq";
const FILL_STREAMS: &str = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1)
    INSERT INTO streams (site_key, url, title, quality, session, first_seen, last_seen, active,
        is_live, response_time_ms, ttfb_ms, http_status, bitrate, playlist_kind, stream_type,
        checked_at, error_kind, error, health_state, ewma_response_ms, score)
    SELECT 'bench', 'https://cdn' || (i % 50) || '.example.com/live/' || i || '/index.m3u8',
           'Stream ' || i, '1080p',
           CASE i % 4 WHEN 0 THEN 'race' WHEN 1 THEN 'qualifying' END,
           ?2, ?2, 1, i % 10 <> 0, 20 + (i * 7919) % 900, 10 + (i * 7919) % 400,
           CASE WHEN i % 10 <> 0 THEN 200 ELSE 404 END, 800000 + (i % 5) * 1000000, 'media',
           CASE i % 3 WHEN 0 THEN 'live' WHEN 1 THEN 'event' ELSE 'vod' END, ?2,
           CASE WHEN i % 10 = 0 THEN 'http_status' END, CASE WHEN i % 10 = 0 THEN 'HTTP 404' END,
           CASE WHEN i % 10 <> 0 THEN 'healthy' ELSE 'down' END, 20 + (i * 7919) % 900,
           CASE WHEN i % 10 <> 0 THEN (i * 104729) % 100 ELSE 0 END
    FROM seq";
/// Checks: one per stream per run, oldest first, as runs write them.
const FILL_CHECKS: &str =
    "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?1)
    INSERT INTO health_checks (stream_id, run_id, checked_at, is_live, response_time_ms, ttfb_ms,
        http_status, bitrate, error_kind, error, playlist_kind, stream_type, health_state)
    SELECT 1 + i % ?2, 1 + i / ?2, strftime('%Y-%m-%dT%H:%M:%fZ', ?3 + (i / ?2) * ?4, 'unixepoch'),
           ok, 20 + (i * 7919) % 900, 10 + (i * 7919) % 400, CASE WHEN ok THEN 200 ELSE 404 END,
           5000000, CASE WHEN ok THEN NULL ELSE 'http_status' END,
           CASE WHEN ok THEN NULL ELSE 'HTTP 404' END, 'media', 'live',
           CASE WHEN ok THEN 'healthy' ELSE 'pending' END
    FROM (SELECT i, (i * 31) % 17 <> 0 AS ok FROM seq)";
/// Hourly rollups of those checks, as the history feature keeps them.
const FILL_ROLLUPS: &str = "INSERT INTO health_rollups_hourly (stream_id, hour, checks, healthy,
        response_samples, response_ms_sum, response_ms_min, response_ms_max)
    SELECT stream_id, substr(checked_at, 1, 13) || ':00:00.000Z', COUNT(*), SUM(is_live),
           COUNT(response_time_ms), COALESCE(SUM(response_time_ms), 0), MIN(response_time_ms),
           MAX(response_time_ms)
    FROM health_checks GROUP BY stream_id, substr(checked_at, 1, 13)";

/// Creates a database with `streams` streams and `checks` checks, filled
/// with batched SQL in one transaction; returns the service config over it.
async fn filled_database(dir: &Path, name: &str, streams: usize, checks: u64) -> anyhow::Result<Config> {
    let extractor = "[[extractors]]\nsite_key = \"bench\"\nsite_name = \"Bench\"\nkind = \"static\"\n\
                     streams = [{ url = \"http://127.0.0.1:9/unused.m3u8\" }]\n";
    let config = service_config(&dir.join(name), extractor)?;
    let started = Instant::now();
    let db = Database::open(&config.database.url).await?;
    db.sync_extractors(&f1_stream::app::extractor_records(&config.extractors))
        .await?;
    let streams = streams as i64;
    let runs = ((checks as i64 + streams - 1) / streams).max(1);
    let first_run = Utc::now().timestamp() - runs * CHECK_INTERVAL_SECS;
    let now = f1_stream::model::format_timestamp(Utc::now());
    let mut tx = db.pool().begin().await?;
    sqlx::query(FILL_RUNS)
        .bind(runs)
        .bind(first_run)
        .bind(CHECK_INTERVAL_SECS)
        .bind(streams)
        .execute(&mut *tx)
        .await
        .context("filling runs")?;
    sqlx::query(FILL_STREAMS)
        .bind(streams)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .context("filling streams")?;
    sqlx::query(FILL_CHECKS)
        .bind(checks as i64)
        .bind(streams)
        .bind(first_run)
        .bind(CHECK_INTERVAL_SECS)
        .execute(&mut *tx)
        .await
        .context("filling checks")?;
    sqlx::query(FILL_ROLLUPS)
        .execute(&mut *tx)
        .await
        .context("filling rollups")?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    db.close().await;
    eprintln!(
        "   filled {name}: {streams} streams, {checks} checks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(config)
}

/// `GET /streams` latency with a long check history against a short one,
/// same streams; requests alternate between the two services.
async fn listing_scenario(client: &reqwest::Client, sizes: &Sizes, dir: &Path) -> anyhow::Result<Row> {
    let small = filled_database(
        dir,
        "listing-small.db",
        sizes.listing_streams,
        sizes.listing_checks_small,
    )
    .await?;
    let large = filled_database(
        dir,
        "listing-large.db",
        sizes.listing_streams,
        sizes.listing_checks_large,
    )
    .await?;
    let small = Service::start(small).await?;
    let large = Service::start(large).await?;
    let (small_url, large_url) = (
        format!("{}/streams", small.base),
        format!("{}/streams", large.base),
    );
    let healthy = sizes.listing_streams - sizes.listing_streams / 10;
    let mut response_bytes = 0;
    for url in [&small_url, &large_url] {
        let body = client.get(url).send().await?.error_for_status()?.bytes().await?;
        let list: serde_json::Value = serde_json::from_slice(&body)?;
        ensure!(
            list["count"].as_u64() == Some(healthy as u64),
            "{url}: count {} instead of {healthy}",
            list["count"]
        );
        for _ in 0..3 {
            response_bytes = drain(client, url).await?;
        }
    }
    let (mut small_times, mut large_times) = (Vec::new(), Vec::new());
    for _ in 0..sizes.listing_requests {
        for (url, times) in [(&small_url, &mut small_times), (&large_url, &mut large_times)] {
            let started = Instant::now();
            drain(client, url).await?;
            times.push(started.elapsed());
        }
    }
    small.stop().await?;
    large.stop().await?;
    small_times.sort();
    large_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (small_p50, small_p99) = (quantile(&small_times, 0.5), quantile(&small_times, 0.99));
    let (large_p50, large_p99) = (quantile(&large_times, 0.5), quantile(&large_times, 0.99));
    let ratio = large_p99.as_secs_f64() / small_p99.as_secs_f64();
    Ok(Row::new(
        format!(
            "GET /streams p50/p99, {} streams ({healthy} served, {} kB) and {} checks",
            sizes.listing_streams,
            response_bytes / 1000,
            sizes.listing_checks_large
        ),
        format!("{:.1} / {:.1} ms", ms(large_p50), ms(large_p99)),
        format!(
            "{:.1} / {:.1} ms with {} checks",
            ms(small_p50),
            ms(small_p99),
            sizes.listing_checks_small
        ),
    )
    .ratio(ratio)
    .target("p99 ratio ≤ 1.5", ratio <= 1.5))
}

// -------------------------------------------------------------- channels --

/// Segments a channel scenario's live playlist lists.
const CHANNEL_LISTED: u64 = 6;
/// Concurrent viewers whose upstream cost is counted.
const CHANNEL_VIEWERS: usize = 50;
/// Keep-alive clients of the channel and `/proxy` reload loads.
const CHANNEL_LOAD_CLIENTS: usize = 10;

/// Two live sources, `a` and `b`, advancing one segment per target
/// duration in real time; either can be made to answer 404.
struct LiveSources {
    started: Instant,
    target: Duration,
    /// `[a, b]`: whether each answers.
    alive: [AtomicBool; 2],
    /// `[a, b]`: playlist requests received.
    playlist_requests: [AtomicU64; 2],
    /// While set, when each playlist request arrived (either source).
    recording: AtomicBool,
    fetch_times: Mutex<Vec<Instant>>,
    segment: Bytes,
}

impl LiveSources {
    fn index(name: &str) -> Option<usize> {
        ["a", "b"].iter().position(|n| *n == name)
    }

    fn playlist(&self, name: &str) -> String {
        let newest = (self.started.elapsed().as_secs_f64() / self.target.as_secs_f64()) as u64;
        let target = self.target.as_secs();
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{newest}\n"
        );
        for n in newest..newest + CHANNEL_LISTED {
            let _ = write!(text, "#EXTINF:{target}.000,\n/c/{name}/{n}.ts\n");
        }
        text
    }
}

async fn serve_live_playlist(
    State(state): State<Arc<LiveSources>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Some(index) = LiveSources::index(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    state.playlist_requests[index].fetch_add(1, Ordering::Relaxed);
    if state.recording.load(Ordering::Acquire) {
        state
            .fetch_times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
    }
    if !state.alive[index].load(Ordering::Acquire) {
        return StatusCode::NOT_FOUND.into_response();
    }
    playlist_response(Bytes::from(state.playlist(&name)))
}

async fn serve_live_segment(
    State(state): State<Arc<LiveSources>>,
    UrlPath((name, _segment)): UrlPath<(String, String)>,
) -> Response {
    match LiveSources::index(&name) {
        Some(index) if state.alive[index].load(Ordering::Acquire) => {
            ([(header::CONTENT_TYPE, "video/mp2t")], state.segment.clone()).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The body of a successful `GET url`, as text.
async fn get_text(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(client.get(url).send().await?.error_for_status()?.text().await?)
}

/// The upstream URL of the newest segment of a channel playlist.
fn newest_upstream(playlist: &str) -> Option<String> {
    let path = playlist.lines().rev().find(|line| line.starts_with("/relay/"))?;
    let token = path.strip_prefix("/relay/")?.split('/').next()?;
    Some(f1_stream::proxy::token::parse_token(token).ok()?.url_text)
}

/// When the origin receives its next playlist request (within `limit`).
async fn next_origin_fetch(sources: &LiveSources, limit: Duration) -> anyhow::Result<Instant> {
    let waited = Instant::now();
    sources
        .fetch_times
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    sources.recording.store(true, Ordering::Release);
    let first = loop {
        let first = sources
            .fetch_times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .copied();
        if let Some(first) = first {
            break first;
        }
        ensure!(
            waited.elapsed() < limit,
            "the channel fetched nothing upstream for {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    sources.recording.store(false, Ordering::Release);
    Ok(first)
}

/// Failover channels: the time from a source's death to the first channel
/// playlist listing the next one's segments (in target durations), channel
/// playlist reloads against `/proxy` reloads of the same source with
/// [`CHANNEL_LOAD_CLIENTS`] keep-alive clients, and the upstream playlist
/// fetches [`CHANNEL_VIEWERS`] viewers cost per target duration.
async fn channel_scenario(client: &reqwest::Client, sizes: &Sizes, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let mut segment = vec![0xffu8; 188 * 64];
    for packet in segment.chunks_mut(188) {
        packet[0] = 0x47;
    }
    let sources = Arc::new(LiveSources {
        started: Instant::now(),
        target: sizes.channel_target,
        alive: [AtomicBool::new(true), AtomicBool::new(false)],
        playlist_requests: [AtomicU64::new(0), AtomicU64::new(0)],
        recording: AtomicBool::new(false),
        fetch_times: Mutex::new(Vec::new()),
        segment: segment.into(),
    });
    let router = Router::new()
        .route("/c/{name}/index.m3u8", get(serve_live_playlist))
        .route("/c/{name}/{segment}", get(serve_live_segment))
        .with_state(Arc::clone(&sources));
    let (origin, _stop_origin) = serve_origin(router, "live origin").await?;
    let url = |name: &str| format!("http://{origin}/c/{name}/index.m3u8");
    let extractors: String = ["a", "b"]
        .iter()
        .map(|name| {
            format!(
                "[[extractors]]\nsite_key = \"{name}\"\nsite_name = \"{name}\"\nkind = \"static\"\n\
                 streams = [{{ url = \"{}\", title = \"{name}\" }}]\n",
                url(name)
            )
        })
        .collect();
    // No cool-down: the failovers alternate between the two sources.
    let channel = "[[channels]]\nslug = \"x\"\nfailed_source_cooldown_secs = 0\n";
    let service = Service::start(service_config(
        &dir.join("channels.db"),
        &format!("{extractors}{channel}"),
    )?)
    .await?;
    let channel_url = format!("{}/channels/x.m3u8", service.base);
    let extract = format!("{}/extract", service.base);
    client.post(&extract).send().await?.error_for_status()?;
    let first = get_text(client, &channel_url).await?;
    ensure!(
        newest_upstream(&first).is_some_and(|u| u.contains("/c/a/")),
        "the channel starts on a:\n{first}"
    );
    sources.alive[1].store(true, Ordering::Release);
    client.post(&extract).send().await?.error_for_status()?;

    // Reloads: the channel's playlist against /proxy of a's playlist, at
    // the `proxy_url` that `GET /streams` gives for it.
    let listed = client
        .get(format!("{}/streams?site_key=a", service.base))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let listed: serde_json::Value = serde_json::from_slice(&listed)?;
    let proxy_url = listed["streams"][0]["proxy_url"]
        .as_str()
        .context("GET /streams?site_key=a lists a with its proxy_url")?
        .to_owned();
    let proxied = get_text(client, &proxy_url).await?;
    ensure!(
        proxied.lines().filter(|l| l.contains("/relay/")).count() == CHANNEL_LISTED as usize,
        "the proxied playlist lists every segment through /relay:\n{proxied}"
    );
    let channel_bytes = drain(client, &channel_url).await?;
    let (mut channel_rates, mut proxy_rates) = (Vec::new(), Vec::new());
    for _ in 0..sizes.load_rounds {
        let (requests, elapsed) = load(client, &proxy_url, CHANNEL_LOAD_CLIENTS, sizes.load_duration).await?;
        proxy_rates.push(requests as f64 / elapsed.as_secs_f64());
        let (requests, elapsed) =
            load(client, &channel_url, CHANNEL_LOAD_CLIENTS, sizes.load_duration).await?;
        channel_rates.push(requests as f64 / elapsed.as_secs_f64());
    }
    let (channel_rate, proxy_rate) = (median(channel_rates), median(proxy_rates));

    // Upstream cost: 50 viewers reloading every quarter target duration.
    let watch = sizes.channel_target * sizes.channel_watch_targets;
    let origin_playlist_requests = || {
        sources
            .playlist_requests
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let before = origin_playlist_requests();
    sources.recording.store(true, Ordering::Release);
    let started = Instant::now();
    let viewers: Vec<_> = (0..CHANNEL_VIEWERS)
        .map(|_| {
            let client = client.clone();
            let url = channel_url.clone();
            let pause = sizes.channel_target / 4;
            tokio::spawn(async move {
                while started.elapsed() < watch {
                    drain(&client, &url).await?;
                    tokio::time::sleep(pause).await;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for viewer in viewers {
        viewer.await??;
    }
    let watched_targets = started.elapsed().as_secs_f64() / sizes.channel_target.as_secs_f64();
    sources.recording.store(false, Ordering::Release);
    let fetches = origin_playlist_requests() - before;
    // The steady rate, from the first fetch to the last: a count over the
    // window alone can be one fetch over (a refresh due just as it opens).
    let times = std::mem::take(&mut *sources.fetch_times.lock().unwrap_or_else(|p| p.into_inner()));
    ensure!(
        times.len() as u64 == fetches && fetches >= 2,
        "{fetches} upstream fetches while {CHANNEL_VIEWERS} viewers watched"
    );
    let in_targets = |d: Duration| d.as_secs_f64() / sizes.channel_target.as_secs_f64();
    let span = in_targets(times[times.len() - 1] - times[0]);
    let fetches_per_target = (times.len() - 1) as f64 / span;
    let shortest = times
        .windows(2)
        .map(|w| in_targets(w[1] - w[0]))
        .fold(f64::INFINITY, f64::min);

    // Failovers: a viewer reloads every 50 ms throughout (faster than any
    // one player's half target duration, as several players out of step
    // do), so the channel refreshes on its own cadence; the bench polls
    // every 50 ms too, to see when the next source is listed. A source dies
    // at a chosen point of the channel's refresh cycle: after the channel's
    // upstream fetch, `(i + ½) ÷ n` of half a target duration later, for the
    // i-th of n failovers, so the worst point of the cycle is measured too.
    let watching = Arc::new(AtomicBool::new(true));
    let player = {
        let (client, url, watching) = (client.clone(), channel_url.clone(), Arc::clone(&watching));
        let pause = Duration::from_millis(50);
        tokio::spawn(async move {
            while watching.load(Ordering::Acquire) {
                let _ = drain(&client, &url).await;
                tokio::time::sleep(pause).await;
            }
        })
    };
    let mut gaps = Vec::new();
    let mut playing = 0;
    let half_target = sizes.channel_target / 2;
    for i in 0..sizes.channel_failovers {
        let next = 1 - playing;
        sources.alive[next].store(true, Ordering::Release);
        tokio::time::sleep(sizes.channel_target * 2).await;
        let refreshed = next_origin_fetch(&sources, sizes.channel_target * 3).await?;
        let phase = (i as f64 + 0.5) / sizes.channel_failovers as f64;
        tokio::time::sleep_until((refreshed + half_target.mul_f64(phase)).into()).await;
        let killed = Instant::now();
        sources.alive[playing].store(false, Ordering::Release);
        let marker = format!("/c/{}/", ["a", "b"][next]);
        loop {
            let text = client.get(&channel_url).send().await?.text().await?;
            if newest_upstream(&text).is_some_and(|u| u.contains(&marker)) {
                break;
            }
            ensure!(
                killed.elapsed() < Duration::from_secs(30),
                "no failover within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gaps.push(killed.elapsed().as_secs_f64() / sizes.channel_target.as_secs_f64());
        playing = next;
    }
    watching.store(false, Ordering::Release);
    player.await?;
    service.stop().await?;
    let gap = median(gaps.clone());
    let worst = gaps.iter().copied().fold(0.0, f64::max);
    let best = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let target_secs = sizes.channel_target.as_secs();
    Ok(vec![
        Row::new(
            format!(
                "channel failover gap: source's playlist 404 → first channel playlist listing the next source \
                 ({target_secs} s segments; median of {} deaths spread over the channel's refresh cycle)",
                gaps.len()
            ),
            format!("{gap:.2} target durations (best {best:.2}, worst {worst:.2})"),
            "—",
        )
        .target("≤ 2", worst <= 2.0),
        Row::new(
            format!("channel playlist reloads, {CHANNEL_LOAD_CLIENTS} keep-alive viewers"),
            format!("{channel_rate:.0} req/s ({channel_bytes} B)"),
            format!(
                "{proxy_rate:.0} req/s /proxy of the same source ({} B)",
                proxied.len()
            ),
        )
        .ratio(channel_rate / proxy_rate)
        .target("≥ 0.8", channel_rate / proxy_rate >= 0.8),
        Row::new(
            format!(
                "channel upstream playlist fetches, {CHANNEL_VIEWERS} viewers reloading every ¼ target \
                 duration for {watched_targets:.1} target durations"
            ),
            format!(
                "{fetches_per_target:.2} per target duration (first to last fetch; shortest interval \
                 {shortest:.2} target durations)"
            ),
            format!(
                "{fetches} fetches in the window: {:.2} per target duration",
                fetches as f64 / watched_targets
            ),
        )
        .target("≤ 2", fetches_per_target <= 2.0),
    ])
}
