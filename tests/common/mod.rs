//! Shared test helpers: a fake HLS origin the test controls, and the real
//! service started on 127.0.0.1 with a temporary database.
#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use f1_stream::app::App;
use f1_stream::config::Config;
use futures::{StreamExt, stream};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A master playlist with three variants; the highest BANDWIDTH is 5000000.
pub const MASTER: &str = "#EXTM3U\n\
#EXT-X-VERSION:3\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n\
low/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=4500000,CODECS=\"avc1.640028,mp4a.40.2\"\n\
high/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2000000\n\
mid/index.m3u8\n";

/// A live media playlist (no ENDLIST).
pub const MEDIA_LIVE: &str = "#EXTM3U\n\
#EXT-X-VERSION:3\n\
#EXT-X-TARGETDURATION:6\n\
#EXT-X-MEDIA-SEQUENCE:100\n\
#EXTINF:6.0,\n\
seg100.ts\n\
#EXTINF:6.0,\n\
seg101.ts\n";

/// A VOD media playlist.
pub const MEDIA_VOD: &str = "#EXTM3U\n\
#EXT-X-TARGETDURATION:6\n\
#EXTINF:6.0,\n\
seg0.ts\n\
#EXT-X-ENDLIST\n";

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: BodySpec,
    delay: Duration,
    required_header: Option<(String, String)>,
    honour_range: bool,
}

#[derive(Clone, Debug)]
enum BodySpec {
    Bytes(Bytes),
    /// Never ends: chunks of this size until the client goes away.
    Endless(usize),
    /// Sends the bytes, then breaks the connection before the declared end.
    Truncated(Bytes),
    /// Sends the bytes, then neither more nor an end: a silent upstream.
    Stall(Bytes),
    /// `total` bytes (a repeating pattern) generated lazily in `chunk`s,
    /// with a Content-Length, so huge bodies cost the origin no memory.
    Sized {
        total: u64,
        chunk: usize,
    },
}

impl Reply {
    /// 200 with `body` as an HLS playlist.
    pub fn playlist(body: impl Into<Bytes>) -> Self {
        Self::bytes(body).header(header::CONTENT_TYPE.as_str(), "application/vnd.apple.mpegurl")
    }

    /// 200 with raw bytes.
    pub fn bytes(body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: BodySpec::Bytes(body.into()),
            delay: Duration::ZERO,
            required_header: None,
            honour_range: false,
        }
    }

    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self::bytes(Bytes::new()).with_status(status)
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Self {
        Self::status(302).header("location", location)
    }

    /// A body that never ends (chunks of `chunk` bytes of `#EXTM3U\n` filler).
    pub fn endless(chunk: usize) -> Self {
        Self {
            body: BodySpec::Endless(chunk),
            ..Self::bytes(Bytes::new())
        }
    }

    /// Sends `prefix`, then drops the connection mid-body.
    pub fn truncated(prefix: impl Into<Bytes>) -> Self {
        Self {
            body: BodySpec::Truncated(prefix.into()),
            ..Self::bytes(Bytes::new())
        }
    }

    /// Sends `prefix`, then stays silent without ending the body.
    pub fn stall(prefix: impl Into<Bytes>) -> Self {
        Self {
            body: BodySpec::Stall(prefix.into()),
            ..Self::bytes(Bytes::new())
        }
    }

    /// A body of `total` bytes produced on the fly (byte i is `i % 251`).
    pub fn sized(total: u64) -> Self {
        Self {
            body: BodySpec::Sized {
                total,
                chunk: 64 * 1024,
            },
            ..Self::bytes(Bytes::new())
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = StatusCode::from_u16(status).expect("valid status");
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers 403 unless the request carries `name: value`.
    pub fn require_header(mut self, name: &str, value: &str) -> Self {
        self.required_header = Some((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Answers a `Range: bytes=a-b` request with 206 and that slice.
    pub fn honour_range(mut self) -> Self {
        self.honour_range = true;
        self
    }
}

/// A request the origin received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: axum::http::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

#[derive(Default)]
struct OriginState {
    routes: Mutex<HashMap<String, Reply>>,
    /// Replies used once each, before `routes`, in order.
    first_replies: Mutex<HashMap<String, std::collections::VecDeque<Reply>>>,
    requests: Mutex<Vec<Recorded>>,
    bytes_sent: AtomicU64,
}

/// An HLS origin on 127.0.0.1 whose every answer the test decides.
pub struct FakeOrigin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
    _shutdown: oneshot::Sender<()>,
}

impl FakeOrigin {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// An origin on another loopback address (e.g. `127.0.0.2`), so guard
    /// tests can exempt one address and not another.
    pub async fn start_on(ip: &str) -> Self {
        let state = Arc::new(OriginState::default());
        let router = axum::Router::new()
            .fallback(serve_origin)
            .with_state(Arc::clone(&state));
        // Every origin serves the variants MASTER names, so a master playlist
        // anywhere at its root passes the deep check; tests override them.
        {
            let mut routes = state.routes.lock().expect("routes lock");
            for variant in ["/low/index.m3u8", "/mid/index.m3u8", "/high/index.m3u8"] {
                routes.insert(variant.to_owned(), Reply::playlist(MEDIA_LIVE));
            }
        }
        let listener = TcpListener::bind((ip, 0)).await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("origin serves");
        });
        Self {
            addr,
            state,
            _shutdown: tx,
        }
    }

    /// Sets the answer for `path` (replacing any earlier one).
    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        self.state
            .routes
            .lock()
            .expect("routes lock")
            .insert(path.to_owned(), reply);
        self
    }

    /// Answers the next request for `path` with `once`, later ones as routed.
    pub fn route_once(&self, path: &str, once: Reply) -> &Self {
        self.state
            .first_replies
            .lock()
            .expect("replies lock")
            .entry(path.to_owned())
            .or_default()
            .push_back(once);
        self
    }

    /// The absolute URL of `path` on this origin.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received for `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .expect("requests lock")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Body bytes handed to the network so far.
    pub fn bytes_sent(&self) -> u64 {
        self.state.bytes_sent.load(Ordering::Relaxed)
    }
}

async fn serve_origin(State(state): State<Arc<OriginState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    state.requests.lock().expect("requests lock").push(Recorded {
        method: request.method().clone(),
        path: path.clone(),
        query: request.uri().query().map(str::to_owned),
        headers: request.headers().clone(),
    });
    let once = state
        .first_replies
        .lock()
        .expect("replies lock")
        .get_mut(&path)
        .and_then(|queue| queue.pop_front());
    let reply = once.or_else(|| state.routes.lock().expect("routes lock").get(&path).cloned());
    let Some(reply) = reply.or_else(|| default_segment(&path)) else {
        return (StatusCode::NOT_FOUND, "no such path").into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some((name, value)) = &reply.required_header
        && request.headers().get(name.as_str()).and_then(|v| v.to_str().ok()) != Some(value.as_str())
    {
        return (StatusCode::FORBIDDEN, "missing required header").into_response();
    }
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    let sent = Arc::clone(&state);
    let body = match reply.body {
        BodySpec::Bytes(bytes) => {
            let range = reply
                .honour_range
                .then(|| parse_range(request.headers(), bytes.len()))
                .flatten();
            match range {
                Some((start, end)) => {
                    builder = builder
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header("content-range", format!("bytes {start}-{end}/{}", bytes.len()));
                    let slice = bytes.slice(start..=end);
                    sent.bytes_sent.fetch_add(slice.len() as u64, Ordering::Relaxed);
                    Body::from(slice)
                }
                None => {
                    sent.bytes_sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    Body::from(bytes)
                }
            }
        }
        BodySpec::Endless(chunk) => {
            let filler = Bytes::from("#EXTM3U\n".repeat(chunk / 8 + 1)).slice(..chunk);
            Body::from_stream(stream::repeat_with(move || {
                sent.bytes_sent.fetch_add(filler.len() as u64, Ordering::Relaxed);
                Ok::<_, Infallible>(filler.clone())
            }))
        }
        BodySpec::Truncated(prefix) => {
            builder = builder.header("content-length", (prefix.len() * 4).to_string());
            sent.bytes_sent.fetch_add(prefix.len() as u64, Ordering::Relaxed);
            // The pause lets the head and the prefix reach the client before
            // the connection breaks, as with a real origin dying mid-body.
            let death = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "origin dies midway",
                ))
            });
            Body::from_stream(stream::iter([Ok(prefix)]).chain(death))
        }
        BodySpec::Stall(prefix) => {
            sent.bytes_sent.fetch_add(prefix.len() as u64, Ordering::Relaxed);
            let silence = stream::pending::<Result<Bytes, Infallible>>();
            Body::from_stream(stream::iter([Ok(prefix)]).chain(silence))
        }
        BodySpec::Sized { total, chunk } => {
            builder = builder.header("content-length", total.to_string());
            let pattern: Bytes = (0..chunk + 251)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>()
                .into();
            let chunks = stream::unfold(0u64, move |offset| {
                let pattern = pattern.clone();
                let sent = Arc::clone(&sent);
                async move {
                    if offset >= total {
                        return None;
                    }
                    let len = (total - offset).min(chunk as u64) as usize;
                    let start = (offset % 251) as usize;
                    sent.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
                    Some((
                        Ok::<_, Infallible>(pattern.slice(start..start + len)),
                        offset + len as u64,
                    ))
                }
            });
            Body::from_stream(chunks)
        }
    };
    builder.body(body).expect("valid fake response")
}

/// Size of the segment served for any unrouted `.ts`/`.m4s` path.
pub const DEFAULT_SEGMENT_BYTES: usize = 188 * 100;

/// Unrouted segment paths answer with a small MPEG-TS-sized body, so the
/// playlists above are playable end to end unless a test says otherwise.
fn default_segment(path: &str) -> Option<Reply> {
    (path.ends_with(".ts") || path.ends_with(".m4s"))
        .then(|| Reply::bytes(vec![0x47u8; DEFAULT_SEGMENT_BYTES]).header("content-type", "video/mp2t"))
}

fn parse_range(headers: &HeaderMap, len: usize) -> Option<(usize, usize)> {
    let spec = headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: usize = start.parse().ok()?;
    let end: usize = end
        .parse::<usize>()
        .ok()
        .unwrap_or(len - 1)
        .min(len.checked_sub(1)?);
    (start <= end).then_some((start, end))
}

/// The bytes `Reply::sized(total)` serves.
pub fn sized_body(total: usize) -> Vec<u8> {
    (0..total).map(|i| (i % 251) as u8).collect()
}

/// Resident memory of this process in bytes (Linux `/proc`), 0 elsewhere.
pub fn rss_bytes() -> u64 {
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

/// An http URL on 127.0.0.1 where nothing listens (connection refused).
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/stream.m3u8")
}

/// Polls `done` every 10 ms until it holds; panics naming `what` when it
/// still does not after `timeout`, so a missing event fails the test rather
/// than hanging it.
#[allow(dead_code)] // not every test binary waits
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `text` with the one occurrence of `from` replaced by `to`; panics when
/// `from` is missing or repeated, so a config tweak never silently does
/// nothing after the template changes.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in:\n{text}");
    text.replacen(from, to, 1)
}

/// A config for tests: temp database, private addresses allowed (the fake
/// origin is on loopback), no startup run, no calendar, then `extra` TOML
/// (which may add `[[extractors]]`; give none for the demo default).
pub fn test_config_toml(db_path: &std::path::Path, extra: &str) -> String {
    format!(
        "[database]\nurl = \"sqlite://{}\"\n\
         [network]\nallow_private_networks = true\n\
         [extraction]\nrun_on_startup = false\nextractor_timeout_secs = 2\n\
         [health]\ntimeout_secs = 2\n\
         [schedule]\nenabled = false\n\
         {extra}",
        db_path.display()
    )
}

/// The real service on 127.0.0.1 with a temporary database.
pub struct TestService {
    pub base: String,
    pub app: App,
    pub db_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestService {
    /// Starts the service with `extra` config on a new temp database.
    pub async fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("f1-stream.db");
        let mut service = Self::start_on(&db_path, extra).await;
        service._dir = Some(dir);
        service
    }

    /// Starts the service on an existing database path (the caller keeps
    /// the folder alive).
    pub async fn start_on(db_path: &std::path::Path, extra: &str) -> Self {
        Self::start_with_config(db_path, &test_config_toml(db_path, extra)).await
    }

    /// Starts the service with the private-address guard ON, exempting only
    /// `exempt` (CIDRs), on a new temp database.
    pub async fn start_guarded(exempt: &[&str], extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("f1-stream.db");
        let exempt: Vec<String> = exempt.iter().map(|net| format!("\"{net}\"")).collect();
        let toml = replace_once(
            &test_config_toml(&db_path, extra),
            "allow_private_networks = true",
            &format!(
                "allow_private_networks = false\nallow_addresses = [{}]",
                exempt.join(", ")
            ),
        );
        let mut service = Self::start_with_config(&db_path, &toml).await;
        service._dir = Some(dir);
        service
    }

    /// Starts the service with a complete TOML config.
    pub async fn start_with_config(db_path: &std::path::Path, toml: &str) -> Self {
        let config = Config::from_toml_str(toml).expect("test config is valid");
        let app = App::build(config).await.expect("service builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind service");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = oneshot::channel::<()>();
        let serving = app.clone();
        let handle = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
        });
        Self {
            base,
            app,
            db_path: db_path.to_owned(),
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits (event-driven, no sleeping) until a calendar is in force: the
    /// startup refresh of a service started without one has ended.
    pub async fn calendar_fetched(&self) {
        let mut calendar = self.app.schedule().subscribe();
        tokio::time::timeout(
            Duration::from_secs(10),
            calendar.wait_for(|c| c.updated_at.is_some()),
        )
        .await
        .expect("the calendar is fetched within 10 s")
        .expect("calendar channel open");
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(self.url(path)).await.expect("service answers");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    pub async fn post_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(self.url(path))
            .send()
            .await
            .expect("service answers");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.app.db().pool())
            .await
            .expect("count query")
    }

    /// Stops serving and closes the database, returning its path.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("serve task").expect("serve ends cleanly");
        }
        self.db_path.clone()
    }
}

/// A `static` extractor block listing `urls`.
pub fn static_extractor(site_key: &str, urls: &[String], extra: &str) -> String {
    let streams: Vec<String> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| format!("{{ url = \"{url}\", title = \"{site_key} {i}\" }}"))
        .collect();
    format!(
        "[[extractors]]\nsite_key = \"{site_key}\"\nsite_name = \"{site_key} site\"\nkind = \"static\"\n\
         streams = [{}]\n{extra}\n",
        streams.join(", ")
    )
}

/// Every URI a player would fetch from a playlist: URI lines and `URI="..."`.
pub fn uris_in(playlist: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in playlist.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris.push(line.to_owned());
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("URI=\"") {
            let after = &rest[at + 5..];
            let Some(end) = after.find('"') else { break };
            uris.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    uris
}

/// The deep health checker the health tests use: private networks allowed
/// (the origins are on loopback), a 5 s budget.
pub fn deep_checker() -> f1_stream::health::HealthChecker {
    let network = f1_stream::config::NetworkConfig {
        allow_private_networks: true,
        ..f1_stream::config::NetworkConfig::default()
    };
    let health = f1_stream::config::HealthConfig {
        timeout_secs: 5,
        ..f1_stream::config::HealthConfig::default()
    };
    let http = f1_stream::net::Http::new(&network, &health.user_agent).expect("client builds");
    f1_stream::health::HealthChecker::new(http, &health)
}
