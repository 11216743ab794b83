//! Secrets never leak, proven on the real binary (`f1-stream`) run as a
//! child with `RUST_LOG=trace`: the proxy signing key, the admin token, an
//! extractor's upstream credential (`headers = { Authorization = ... }`)
//! and a viewer's password and its hash (`auth.viewers`, whose Basic
//! credentials every read sends) appear in none of what the service writes
//! or answers.
//!
//! The service gets distinctive random secrets, then the test drives what a
//! client, a player and an operator can reach: an extraction run (with the
//! right, a wrong and no bearer token), proxy sessions (playlist, key and
//! segments, path and query form, `HEAD`, `Range`), the failover channels,
//! every cheap error path (401, 403, 404, 405, 400, 502, 504), `/metrics`,
//! `/openapi.json`, `/docs`, the watch page, and the commands that read the
//! configuration (`extract`, `check`, `sign`, `channels`, `schedule`,
//! `history`, `openapi`). Everything captured (the child's whole stdout and
//! stderr, every response head and body, every command's output, the
//! database files, the requests the origins received, the `Debug` text of
//! the loaded `Config`) is scanned for each secret: its text (any letter
//! case), its hex, and its base64 and base64url encodings, padded and not,
//! and at every byte alignment (as when it sits inside a larger encoded
//! blob). `sign` prints signatures, which are allowed; the key is not.
//!
//! The positive controls make sure the scan cannot pass by capturing
//! nothing: the trace log must hold request spans and the run's events,
//! the locked stream must be healthy (its origin answers only with the
//! credential), and the origin must have received the credential on the
//! relayed key and segments.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::{FakeOrigin, Reply, uris_in};
use f1_stream::config::Config;
use futures::StreamExt as _;
use reqwest::Method;
use reqwest::header::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_f1-stream");
/// How long a child may take to come up, answer or go down.
const PATIENCE: Duration = Duration::from_secs(20);
/// The AES-128 keys the origins serve (16 bytes each).
const OPEN_KEY: &[u8; 16] = b"open-origin-key!";
const LOCKED_KEY: &[u8; 16] = b"locked-originkey";
/// Size of every segment the origins serve: a whole number of AES blocks,
/// so the encrypted streams pass the deep check.
const SEGMENT_BYTES: usize = 188 * 100;

// --- secrets and what they look like encoded ------------------------------------

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("random bytes");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// The three credentials the service is given.
struct Secrets {
    /// `proxy.signing_key`.
    signing_key: String,
    /// `auth.admin_token`.
    admin_token: String,
    /// The credential in the `locked` extractor's `Authorization` header.
    upstream_credential: String,
    /// The password of the viewer `ann` (`auth.viewers`).
    viewer_password: String,
    /// Its argon2 hash, as configured.
    viewer_hash: String,
}

impl Secrets {
    fn new() -> Self {
        Self {
            signing_key: format!("SIGNKEY-{}", random_hex(20)),
            admin_token: format!("ADMINTOKEN-{}", random_hex(20)),
            upstream_credential: format!("UPSTREAMCRED-{}", random_hex(20)),
            viewer_password: format!("VIEWERPASS-{}", random_hex(20)),
            viewer_hash: String::new(),
        }
        .with_viewer_hash()
    }

    fn with_viewer_hash(mut self) -> Self {
        self.viewer_hash = f1_stream::api::viewers::hash_password(&self.viewer_password).expect("hash");
        self
    }

    /// The viewer's `Authorization: Basic` value, sent with every request
    /// that carries no other `Authorization`.
    fn viewer_basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("ann:{}", self.viewer_password))
        )
    }

    /// The whole header value the `locked` extractor sends upstream.
    fn upstream_header(&self) -> String {
        format!("Bearer {}", self.upstream_credential)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.admin_token)
    }

    /// Every secret with its name (the header value and its bare
    /// credential are both listed).
    fn all(&self) -> Vec<(&'static str, String)> {
        vec![
            ("proxy.signing_key", self.signing_key.clone()),
            ("auth.admin_token", self.admin_token.clone()),
            ("upstream Authorization value", self.upstream_header()),
            ("upstream credential", self.upstream_credential.clone()),
            ("viewer password", self.viewer_password.clone()),
            ("viewer password hash", self.viewer_hash.clone()),
        ]
    }

    /// The secrets that the `locked` origin must never see (it is meant to
    /// receive the upstream credential).
    fn not_for_upstream(&self) -> Vec<(&'static str, String)> {
        vec![
            ("proxy.signing_key", self.signing_key.clone()),
            ("auth.admin_token", self.admin_token.clone()),
        ]
    }
}

/// One form a secret may take in captured bytes.
#[derive(Debug, Clone)]
struct Needle {
    /// Which secret, in which encoding.
    label: String,
    text: String,
    /// Matched in any ASCII letter case.
    any_case: bool,
}

/// The base64 characters that encode only `secret`'s bytes when it starts
/// at a byte offset of `shift` (mod 3) inside a larger encoded blob: a
/// fixed string wherever the secret sits, whatever surrounds it.
fn base64_core(engine: &base64::engine::GeneralPurpose, secret: &[u8], shift: usize) -> String {
    let mut shifted = vec![0u8; shift];
    shifted.extend_from_slice(secret);
    let encoded = engine.encode(&shifted);
    let first = (8 * shift).div_ceil(6);
    let end = (8 * (shift + secret.len())) / 6;
    encoded[first..end].to_owned()
}

/// Every form of every secret in `secrets` the scan looks for.
fn needles(secrets: &[(&'static str, String)]) -> Vec<Needle> {
    let mut out = Vec::new();
    for (name, secret) in secrets {
        let bytes = secret.as_bytes();
        out.push(Needle {
            label: format!("{name} (text)"),
            text: secret.clone(),
            any_case: true,
        });
        out.push(Needle {
            label: format!("{name} (hex)"),
            text: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            any_case: true,
        });
        let engines = [
            ("base64", &STANDARD),
            ("base64 unpadded", &STANDARD_NO_PAD),
            ("base64url padded", &URL_SAFE),
            ("base64url", &URL_SAFE_NO_PAD),
        ];
        for (encoding, engine) in engines {
            out.push(Needle {
                label: format!("{name} ({encoding})"),
                text: engine.encode(bytes),
                any_case: false,
            });
        }
        for (encoding, engine) in [("base64", &STANDARD_NO_PAD), ("base64url", &URL_SAFE_NO_PAD)] {
            for shift in 0..3 {
                out.push(Needle {
                    label: format!("{name} ({encoding} inside a blob, byte offset {shift} mod 3)"),
                    text: base64_core(engine, bytes, shift),
                    any_case: false,
                });
            }
        }
    }
    out
}

/// Finds any needle in one pass per haystack.
struct Scanner {
    regex: regex::bytes::Regex,
    needles: Vec<Needle>,
}

impl Scanner {
    fn new(needles: Vec<Needle>) -> Self {
        let alternatives: Vec<String> = needles
            .iter()
            .map(|needle| {
                let flags = if needle.any_case { "(?i-u:" } else { "(?-u:" };
                format!("{flags}{})", regex::escape(&needle.text))
            })
            .collect();
        let regex = regex::bytes::Regex::new(&alternatives.join("|")).expect("needles form a regex");
        Self { regex, needles }
    }

    /// One line per secret found in `bytes`, with where and around what.
    fn leaks(&self, artifact: &Artifact) -> Vec<String> {
        self.regex
            .find_iter(&artifact.bytes)
            .map(|found| {
                let text = found.as_bytes();
                let label = self
                    .needles
                    .iter()
                    .find(|n| {
                        if n.any_case {
                            text.eq_ignore_ascii_case(n.text.as_bytes())
                        } else {
                            text == n.text.as_bytes()
                        }
                    })
                    .map_or("?", |n| n.label.as_str());
                let from = found.start().saturating_sub(120);
                let to = (found.end() + 120).min(artifact.bytes.len());
                format!(
                    "[{}] {}: {label} at byte {}: …{}…",
                    artifact.sink,
                    artifact.label,
                    found.start(),
                    String::from_utf8_lossy(&artifact.bytes[from..to])
                )
            })
            .collect()
    }
}

// --- what was captured ------------------------------------------------------------

/// Bytes the service (or its origins) produced, with where they came from.
struct Artifact {
    sink: &'static str,
    label: String,
    bytes: Vec<u8>,
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<Artifact>>>);

impl Captured {
    fn record(&self, sink: &'static str, label: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.lock().expect("capture lock").push(Artifact {
            sink,
            label: label.into(),
            bytes: bytes.into(),
        });
    }

    fn take(&self) -> Vec<Artifact> {
        std::mem::take(&mut *self.0.lock().expect("capture lock"))
    }
}

/// An answer of the service, already recorded.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }
}

/// A client of the service that records every answer: status, every
/// header, the whole body.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    captured: Captured,
    /// The viewer's Basic credentials, sent unless a request has its own
    /// `Authorization` (the service has viewers, so reading needs them).
    viewer: String,
}

impl Client {
    /// An HTTP/1.1 client (`http2`: HTTP/2 with prior knowledge instead,
    /// so the HTTP/2 codec's trace logging is exercised too).
    fn new(base: String, captured: Captured, http2: bool, viewer: String) -> Self {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let http = builder.build().expect("client builds");
        Self {
            http,
            base,
            captured,
            viewer,
        }
    }

    /// `target` is a path of the service or an absolute URL.
    async fn send(&self, method: Method, target: &str, headers: &[(&str, &str)]) -> Answer {
        let url = if target.starts_with("http://") {
            target.to_owned()
        } else {
            self.url(target)
        };
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            request = request.header("authorization", &self.viewer);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: no answer in time"))
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
        let mut record = format!("HTTP {status}\n").into_bytes();
        for (name, value) in &headers {
            record.extend_from_slice(name.as_str().as_bytes());
            record.extend_from_slice(b": ");
            record.extend_from_slice(value.as_bytes());
            record.push(b'\n');
        }
        record.push(b'\n');
        record.extend_from_slice(&body);
        self.captured
            .record("response", format!("{method} {target} -> {status}"), record);
        Answer {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, target: &str) -> Answer {
        self.send(Method::GET, target, &[]).await
    }

    /// `GET target`, asserting the status.
    async fn expect(&self, target: &str, status: u16) -> Answer {
        let answer = self.get(target).await;
        assert_eq!(answer.status, status, "GET {target}: {}", answer.text());
        answer
    }
}

// --- the child processes ----------------------------------------------------------

/// Reads `pipe` to its end into a shared buffer (so a full pipe never stalls
/// the child and the test can look at what came so far).
fn drain(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
) -> (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let task = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => sink.lock().expect("pipe lock").extend_from_slice(&chunk[..read]),
            }
        }
    });
    (buffer, task)
}

/// `f1-stream serve` with its whole output captured.
struct Serve {
    child: Child,
    base: String,
    stdout: (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>),
    stderr: (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>),
}

impl Serve {
    /// Starts it on `config` (which listens on port 0) and waits for its
    /// `listening on ADDR` line, which names the port it bound.
    async fn start(config: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "-c", config.to_str().expect("utf-8")])
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("serve starts");
        let stdout = drain(child.stdout.take().expect("stdout piped"));
        let stderr = drain(child.stderr.take().expect("stderr piped"));
        const NEEDLE: &str = "listening on ";
        let deadline = Instant::now() + PATIENCE;
        let address = loop {
            {
                let seen = stderr.0.lock().expect("pipe lock");
                let text = String::from_utf8_lossy(&seen);
                if let Some(at) = text.find(NEEDLE)
                    && let Some(end) = text[at..].find('\n')
                {
                    break text[at + NEEDLE.len()..at + end].trim().to_owned();
                }
            }
            assert!(
                child.try_wait().expect("poll child").is_none(),
                "serve ended before listening: {}",
                String::from_utf8_lossy(&stderr.0.lock().expect("pipe lock"))
            );
            assert!(Instant::now() < deadline, "serve did not say where it listens");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            child,
            base: format!("http://{address}"),
            stdout,
            stderr,
        }
    }

    /// SIGTERM, then everything it wrote: (exit code, stdout, stderr).
    async fn stop(mut self) -> (Option<i32>, Vec<u8>, Vec<u8>) {
        let pid = self.child.id().expect("serve is running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("serve exits after SIGTERM")
            .expect("reaped");
        for task in [self.stdout.1, self.stderr.1] {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("pipes close")
                .expect("drain task");
        }
        let take = |buffer: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buffer.lock().expect("pipe lock"));
        (status.code(), take(self.stdout.0), take(self.stderr.0))
    }
}

/// What one command printed.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `f1-stream ARGS` with `RUST_LOG=trace` and records both outputs.
async fn cli(captured: &Captured, args: &[&str]) -> Ran {
    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(BINARY)
            .args(args)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("f1-stream {args:?} ends in time"))
    .expect("binary runs");
    let label = format!("f1-stream {}", args.join(" "));
    captured.record("cli", format!("{label} (stdout)"), output.stdout.clone());
    captured.record("cli", format!("{label} (stderr)"), output.stderr.clone());
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// --- the origins ------------------------------------------------------------------

/// A live AES-128 media playlist of `segments` (relative names), its key at
/// `key.bin` beside it.
fn live_playlist(segments: &[&str]) -> String {
    let mut text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:100\n\
                    #EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x000102030405060708090a0b0c0d0e0f\n"
        .to_owned();
    for segment in segments {
        text.push_str(&format!("#EXTINF:6.0,\n{segment}\n"));
    }
    text
}

const SEGMENTS: [&str; 4] = ["seg100.ts", "seg101.ts", "seg102.ts", "seg103.ts"];

/// A segment of the encrypted streams: bytes that look like ciphertext
/// (not text), a whole number of AES blocks.
fn segment() -> Reply {
    Reply::bytes(common::sized_body(SEGMENT_BYTES)).header("content-type", "video/mp2t")
}

/// Paths the open origin serves.
const OPEN_PATHS: [&str; 7] = [
    "/live/index.m3u8",
    "/live/key.bin",
    "/live/seg100.ts",
    "/live/seg101.ts",
    "/live/seg102.ts",
    "/live/seg103.ts",
    "/calendar.json",
];

/// The open origin: the `open` extractor's stream, and a calendar that fails.
async fn open_origin() -> FakeOrigin {
    let origin = FakeOrigin::start().await;
    origin.route("/live/index.m3u8", Reply::playlist(live_playlist(&SEGMENTS)));
    origin.route(
        "/live/key.bin",
        Reply::bytes(OPEN_KEY.to_vec()).header("content-type", "application/octet-stream"),
    );
    for name in SEGMENTS {
        origin.route(&format!("/live/{name}"), segment());
    }
    origin.route("/calendar.json", Reply::status(500));
    origin
}

/// Paths the locked origin serves, each only to requests that carry the
/// upstream credential (else 403).
const LOCKED_PATHS: [&str; 16] = [
    "/list.m3u",
    "/locked/index.m3u8",
    "/locked/key.bin",
    "/locked/seg100.ts",
    "/locked/seg101.ts",
    "/locked/seg102.ts",
    "/locked/seg103.ts",
    "/locked/broken.m3u8",
    "/locked/gone404.ts",
    "/locked/gone500.ts",
    "/locked/slowseg.ts",
    "/locked/gone.m3u8",
    "/locked/error.m3u8",
    "/locked/notplaylist.m3u8",
    "/locked/slow.m3u8",
    "/locked/other.m3u8",
];

/// The locked origin: an M3U list naming one live stream, and the failure
/// cases the error paths use; everything behind the `locked` extractor's
/// `Authorization` header.
async fn locked_origin(credential: &str) -> FakeOrigin {
    let origin = FakeOrigin::start().await;
    let locked = |reply: Reply| reply.require_header("authorization", credential);
    let list = format!(
        "#EXTM3U\n#EXTINF:-1,Locked feed\n{}\n",
        origin.url("/locked/index.m3u8")
    );
    origin.route("/list.m3u", locked(Reply::bytes(list)));
    origin.route(
        "/locked/index.m3u8",
        locked(Reply::playlist(live_playlist(&SEGMENTS))),
    );
    origin.route(
        "/locked/key.bin",
        locked(Reply::bytes(LOCKED_KEY.to_vec()).header("content-type", "application/octet-stream")),
    );
    for name in SEGMENTS {
        origin.route(&format!("/locked/{name}"), locked(segment().honour_range()));
    }
    origin.route(
        "/locked/broken.m3u8",
        locked(Reply::playlist(live_playlist(&[
            "gone404.ts",
            "gone500.ts",
            "slowseg.ts",
            "seg100.ts",
        ]))),
    );
    origin.route("/locked/gone404.ts", locked(Reply::status(404)));
    origin.route("/locked/gone500.ts", locked(Reply::status(500)));
    origin.route(
        "/locked/slowseg.ts",
        locked(segment().delay(Duration::from_millis(2500))),
    );
    origin.route("/locked/gone.m3u8", locked(Reply::status(404)));
    origin.route("/locked/error.m3u8", locked(Reply::status(500)));
    origin.route(
        "/locked/notplaylist.m3u8",
        locked(Reply::bytes("<html><body>sign in</body></html>").header("content-type", "text/html")),
    );
    origin.route(
        "/locked/slow.m3u8",
        locked(Reply::playlist(live_playlist(&SEGMENTS)).delay(Duration::from_millis(3500))),
    );
    origin
}

/// The service's configuration: port 0, loopback origins allowed, no
/// calendar (its URL, for `POST /schedule/refresh`, is the open origin),
/// short proxy timeouts (so 504s are cheap), the three secrets, an `open`
/// static extractor and a `locked` M3U extractor with an `Authorization`
/// header, and a channel of the locked stream.
fn service_config(db: &Path, secrets: &Secrets, open: &FakeOrigin, locked: &FakeOrigin) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 2\n\
         [database]\nurl = \"sqlite://{db}\"\n\
         [network]\nallow_private_networks = true\n\
         [extraction]\nrun_on_startup = false\nextractor_timeout_secs = 5\n\
         [health]\ntimeout_secs = 5\n\
         [proxy]\nsigning_key = \"{signing_key}\"\nplaylist_timeout_secs = 2\nrelay_first_byte_timeout_secs = 1\n\
         [schedule]\nenabled = false\nurl = \"{calendar}\"\n\
         [auth]\nadmin_token = \"{admin_token}\"\n\
         viewers = [{{ name = \"ann\", password_hash = \"{viewer_hash}\" }}]\n\
         [[extractors]]\nsite_key = \"open\"\nsite_name = \"Open site\"\nkind = \"static\"\n\
         streams = [{{ url = \"{open_stream}\", title = \"Open feed\", quality = \"720p\", session = \"race\" }}]\n\
         [[extractors]]\nsite_key = \"locked\"\nsite_name = \"Locked site\"\nkind = \"m3u\"\nurl = \"{list}\"\n\
         headers = {{ Authorization = \"{upstream}\", Referer = \"{referer}\" }}\n\
         [[channels]]\nslug = \"locked\"\ntitle = \"Locked feed\"\nsite_key = \"locked\"\n",
        db = db.display(),
        signing_key = secrets.signing_key,
        admin_token = secrets.admin_token,
        viewer_hash = secrets.viewer_hash,
        calendar = open.url("/calendar.json"),
        open_stream = open.url("/live/index.m3u8"),
        list = locked.url("/list.m3u"),
        upstream = secrets.upstream_header(),
        referer = locked.url("/"),
    )
}

// --- helpers over answers ---------------------------------------------------------

/// Every URI of `playlist`, absolute (root-relative ones under `base`).
fn absolute_uris(playlist: &str, base: &str) -> Vec<String> {
    uris_in(playlist)
        .into_iter()
        .map(|uri| {
            if uri.starts_with('/') {
                format!("{base}{uri}")
            } else {
                uri
            }
        })
        .collect()
}

/// The path of an absolute service URL.
fn path_of(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    }
}

/// `(kind, token, name)` of a path-form proxy or relay URL.
fn split_proxy_path(url: &str) -> (String, String, String) {
    let path = path_of(url);
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let kind = parts.next().expect("kind").to_owned();
    let token = parts.next().expect("token").to_owned();
    let name = parts.next().expect("name").to_owned();
    (kind, token, name)
}

/// The token with the last character of its signature changed.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let sig = &mut parts[1];
    let last = sig.pop().expect("a signature");
    sig.push(if last == 'A' { 'B' } else { 'A' });
    parts.join(".")
}

/// Fetches every URI of a rewritten playlist; returns (uri, answer).
async fn fetch_all(client: &Client, playlist: &str) -> Vec<(String, Answer)> {
    let uris = absolute_uris(playlist, &client.base);
    assert!(!uris.is_empty(), "a playlist with URIs: {playlist}");
    let answers = futures::future::join_all(uris.iter().map(|uri| client.get(uri))).await;
    uris.into_iter().zip(answers).collect()
}

/// The last `bytes` (or a few more) bytes of `text`.
fn tail(text: &str, bytes: usize) -> &str {
    let start = (text.len().saturating_sub(bytes)..text.len())
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    &text[start..]
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every file in `dir` but the configuration (which holds the secrets by
/// design): the database and its WAL and shared-memory files.
fn database_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read temp dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "toml"))
        .collect()
}

// --- the test ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_logs_answers_command_output_or_debug_text() {
    let started = Instant::now();
    let secrets = Secrets::new();
    let open = open_origin().await;
    let locked = locked_origin(&secrets.upstream_header()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1-stream.db");
    let toml = service_config(&db, &secrets, &open, &locked);
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &toml).expect("write config");
    let config_arg = config_path.to_str().expect("utf-8").to_owned();
    let captured = Captured::default();

    // The loaded configuration's Debug text (and its serialization, which
    // must refuse configured secrets).
    let config = Config::from_toml_str(&toml).expect("the test config is valid");
    assert_eq!(config.proxy.signing_key.expose(), secrets.signing_key);
    assert_eq!(config.auth.admin_token.expose(), secrets.admin_token);
    let debug = format!("{config:?}");
    let pretty = format!("{config:#?}");
    assert!(
        debug.contains("signing_key: \"<redacted>\"") && debug.contains("admin_token: \"<redacted>\""),
        "the secrets are there, redacted: {debug}"
    );
    assert!(
        debug.contains("Authorization") && debug.contains("Referer"),
        "header names are shown: {debug}"
    );
    captured.record("config Debug", "format!(\"{:?}\", config)", debug);
    captured.record("config Debug", "format!(\"{:#?}\", config)", pretty);
    captured.record(
        "config Debug",
        "format!(\"{:?}\", config.extractors)",
        format!("{:?}", config.extractors),
    );
    match serde_json::to_string(&config) {
        Ok(json) => captured.record("config Debug", "serde_json::to_string(&config)", json),
        Err(e) => captured.record(
            "config Debug",
            "serde_json::to_string(&config) error",
            e.to_string(),
        ),
    }

    let serve = Serve::start(&config_path).await;
    let client = Client::new(
        serve.base.clone(),
        captured.clone(),
        false,
        secrets.viewer_basic(),
    );
    let h2 = Client::new(serve.base.clone(), captured.clone(), true, secrets.viewer_basic());
    client.expect("/health", 200).await;

    // --- who may change things ----------------------------------------------------
    let bearer = secrets.bearer();
    let wrong = format!("{bearer}-wrong");
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("admin:{}", secrets.admin_token))
    );
    for path in ["/extract", "/schedule/refresh"] {
        let none = client.send(Method::POST, path, &[]).await;
        assert_eq!(none.status, 401, "{path}: {}", none.text());
        assert!(header(&none.headers, "www-authenticate").is_some());
        let other_scheme = client
            .send(Method::POST, path, &[("authorization", &basic)])
            .await;
        assert_eq!(other_scheme.status, 401, "{path}: {}", other_scheme.text());
        let refused = client
            .send(Method::POST, path, &[("authorization", &wrong)])
            .await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text());
    }
    let run = client
        .send(Method::POST, "/extract", &[("authorization", &bearer)])
        .await;
    assert_eq!(run.status, 200, "{}", run.text());
    let run = run.json();
    assert_eq!(run["streams_found"], 2, "{run}");
    if run["live_streams"] != 2 {
        let all = client.get("/streams/all").await.text();
        panic!("both streams must be healthy: {run}\n{all}");
    }
    // The right token from a page of another origin.
    let foreign = client
        .send(
            Method::POST,
            "/extract",
            &[("authorization", &bearer), ("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    // Over HTTP/2 as well.
    let none = h2.send(Method::POST, "/extract", &[]).await;
    assert_eq!(none.status, 401, "HTTP/2: {}", none.text());
    let refused = h2
        .send(Method::POST, "/extract", &[("authorization", &wrong)])
        .await;
    assert_eq!(refused.status, 403, "HTTP/2: {}", refused.text());
    let refresh = client
        .send(Method::POST, "/schedule/refresh", &[("authorization", &bearer)])
        .await;
    assert_eq!(
        refresh.status,
        502,
        "the calendar origin fails: {}",
        refresh.text()
    );
    let not_allowed = client
        .send(Method::PUT, "/health", &[("authorization", &bearer)])
        .await;
    assert_eq!(not_allowed.status, 405, "{}", not_allowed.text());
    let delete = client.send(Method::DELETE, "/streams", &[]).await;
    assert_eq!(delete.status, 401, "{}", delete.text());
    // Reading needs the viewer: a wrong password and another viewer are refused.
    let wrong_viewer = format!(
        "Basic {}",
        STANDARD.encode(format!("ann:{}x", secrets.viewer_password))
    );
    for authorization in [wrong_viewer.as_str(), "Basic Ym9iOnB3"] {
        let refused = client
            .send(Method::GET, "/streams", &[("authorization", authorization)])
            .await;
        assert_eq!(refused.status, 401, "{}", refused.text());
    }
    assert_eq!(
        client.send(Method::GET, "/streams", &[]).await.status,
        200,
        "the viewer reads"
    );

    // --- proxy sessions: playlist, then every relayed URI ---------------------------
    let streams = client.expect("/streams", 200).await.json();
    assert_eq!(streams["count"], 2, "{streams}");
    let list = streams["streams"].as_array().expect("streams array").clone();
    let proxy_url = |site: &str| {
        list.iter()
            .find(|s| s["site_key"] == site)
            .and_then(|s| s["proxy_url"].as_str())
            .unwrap_or_else(|| panic!("a {site} stream in {streams}"))
            .to_owned()
    };
    for stream in &list {
        assert_eq!(stream["state"], "healthy", "{stream}");
    }
    // A player that also sends this service's admin token and a cookie:
    // none of it may travel upstream.
    let cookie = format!("f1s_admin={}", secrets.admin_token);
    let client_credentials: [(&str, &str); 2] = [("authorization", &bearer), ("cookie", &cookie)];
    let mut relayed_key_bodies = Vec::new();
    for site in ["open", "locked"] {
        let url = proxy_url(site);
        let playlist = client.send(Method::GET, &url, &client_credentials).await;
        assert_eq!(playlist.status, 200, "{site}: {}", playlist.text());
        let text = playlist.text();
        let uris = absolute_uris(&text, &client.base);
        assert_eq!(uris.len(), 5, "a key and 4 segments: {text}");
        for uri in &uris {
            assert!(uri.contains("/relay/"), "rewritten through the relay: {uri}");
            let answer = client.send(Method::GET, uri, &client_credentials).await;
            assert_eq!(answer.status, 200, "{site} {uri}: {}", answer.text());
            if uri.ends_with("/key.bin") {
                relayed_key_bodies.push(answer.body.to_vec());
            } else {
                assert_eq!(answer.body.len(), SEGMENT_BYTES, "{uri}");
            }
        }
        let segment = uris.iter().find(|u| u.ends_with(".ts")).expect("a segment");
        let over_h2 = h2.send(Method::GET, &url, &client_credentials).await;
        assert_eq!(over_h2.status, 200, "HTTP/2 {site}: {}", over_h2.text());
        for uri in absolute_uris(&over_h2.text(), &client.base) {
            let answer = h2.send(Method::GET, &uri, &client_credentials).await;
            assert_eq!(answer.status, 200, "HTTP/2 {uri}");
        }
        let head = client.send(Method::HEAD, segment, &[]).await;
        assert_eq!(head.status, 200, "HEAD {segment}");
        let range = client
            .send(Method::GET, segment, &[("range", "bytes=0-187")])
            .await;
        assert!(
            matches!(range.status, 200 | 206),
            "Range {segment}: {}",
            range.status
        );

        // The query form of the same playlist.
        let (_, token, _) = split_proxy_path(&url);
        let parts: Vec<&str> = token.split('.').collect();
        let query = format!("/proxy?url={}&sig={}&src={}", parts[0], parts[1], parts[2]);
        client.expect(&query, 200).await;
        // Tampered: the signature, the src under the same signature, no
        // signature at all, on the playlist and on a segment.
        let (_, relay_token, relay_name) = split_proxy_path(segment);
        let other = if site == "open" { "locked" } else { "open" };
        let forged_src = format!("{}.{}.{other}", parts[0], parts[1]);
        for forged in [
            format!("/proxy/{}/index.m3u8", tamper(&token)),
            format!("/proxy/{forged_src}/index.m3u8"),
            format!("/proxy?url={}&src={}", parts[0], parts[2]),
            format!("/proxy?url={}&sig={}&src={other}", parts[0], parts[1]),
            format!("/relay/{}/{relay_name}", tamper(&relay_token)),
        ] {
            client.expect(&forged, 403).await;
        }
    }
    assert_eq!(
        relayed_key_bodies,
        vec![OPEN_KEY.to_vec(), LOCKED_KEY.to_vec()],
        "both keys relayed"
    );
    for (path, status) in [
        ("/proxy/!!!.abc/index.m3u8", 400),
        ("/proxy?url=%25%25%25&sig=abc", 400),
        ("/relay/not-a-token/x.ts", 400),
        ("/proxy", 400),
    ] {
        client.expect(path, status).await;
    }

    // --- failover channels ---------------------------------------------------------
    let channels = client.expect("/channels", 200).await.json();
    assert_eq!(
        channels["channels"].as_array().map(Vec::len),
        Some(2),
        "locked, then best: {channels}"
    );
    for slug in ["best", "locked"] {
        let playlist = client.expect(&format!("/channels/{slug}.m3u8"), 200).await.text();
        let relayed = fetch_all(&client, &playlist).await;
        assert!(relayed.len() >= 4, "a key and 3 segments: {playlist}");
        for (uri, answer) in &relayed {
            assert_eq!(answer.status, 200, "{slug}: {uri}: {}", answer.text());
        }
        client.expect(&format!("/channels/{slug}/streams"), 200).await;
        client.expect(&format!("/channels/{slug}/switches"), 200).await;
    }
    client.expect("/channels/best/switches?limit=0", 400).await;
    client.expect("/channels/nope.m3u8", 404).await;
    client.expect("/channels/nope/switches", 404).await;

    // --- signed by the command line: the upstream error paths -----------------------
    let sign = |url: String| {
        let captured = captured.clone();
        let config_arg = config_arg.clone();
        async move {
            let ran = cli(&captured, &["sign", &url, "--src", "locked", "-c", &config_arg]).await;
            assert_eq!(ran.code, Some(0), "sign {url}: {}", ran.stderr);
            let path = ran.stdout.trim().to_owned();
            assert!(path.starts_with("/proxy/"), "sign prints a path: {path:?}");
            path
        }
    };
    let signed = futures::future::join_all(
        [
            "/locked/broken.m3u8",
            "/locked/gone.m3u8",
            "/locked/error.m3u8",
            "/locked/notplaylist.m3u8",
            "/locked/slow.m3u8",
            "/locked/other.m3u8",
        ]
        .map(|path| sign(locked.url(path))),
    )
    .await;
    let broken = client.expect(&signed[0], 200).await.text();
    let failing = [
        (&signed[1], 502),
        (&signed[2], 502),
        (&signed[3], 502),
        (&signed[4], 504),
        (&signed[5], 502),
    ];
    let (relays, playlists) = tokio::join!(
        fetch_all(&client, &broken),
        futures::future::join_all(failing.iter().map(|(path, _)| client.get(path))),
    );
    let mut relay_statuses: Vec<(String, u16)> = relays
        .iter()
        .map(|(uri, answer)| {
            let (_, _, name) = split_proxy_path(uri);
            (name, answer.status)
        })
        .collect();
    relay_statuses.sort();
    assert_eq!(
        relay_statuses,
        vec![
            ("gone404.ts".to_owned(), 502),
            ("gone500.ts".to_owned(), 502),
            ("key.bin".to_owned(), 200),
            ("seg100.ts".to_owned(), 200),
            ("slowseg.ts".to_owned(), 504),
        ],
        "relays of a failing upstream"
    );
    for ((path, status), answer) in failing.iter().zip(&playlists) {
        assert_eq!(answer.status, *status, "{path}: {}", answer.text());
        assert_eq!(header(&answer.headers, "cache-control"), Some("no-store"));
    }
    let unsigned_src = client
        .get(&format!(
            "/proxy?url={}&src=locked",
            URL_SAFE_NO_PAD.encode(locked.url("/locked/index.m3u8"))
        ))
        .await;
    assert_eq!(unsigned_src.status, 403, "{}", unsigned_src.text());

    // --- everything else a client can read, and its 400s and 404s -------------------
    for path in [
        "/",
        "/health",
        "/streams/all",
        "/streams?session=race&order=score&stream_type=live&limit=5",
        "/streams?session=live",
        "/streams/1",
        "/streams/1/history",
        "/streams/1/events",
        "/streams/1/uptime",
        "/streams/2/uptime?step=1d",
        "/extractors",
        "/extractors/locked/uptime",
        "/runs",
        "/runs/1",
        "/schedule",
        "/openapi.json",
        "/docs",
        "/watch",
        "/calendar",
        "/status",
    ] {
        client.expect(path, 200).await;
    }
    for path in [
        "/streams?limit=abc",
        "/streams?limit=0",
        "/streams?order=bogus",
        "/streams?stream_type=bogus",
        "/streams?session=bogus",
        "/streams/abc",
        "/streams/1/history?from=yesterday",
        "/streams/1/history?limit=5000",
        "/streams/1/uptime?step=2h",
        "/runs?limit=0",
        "/runs?cursor=%00",
        "/extractors/locked/uptime?step=2h",
    ] {
        let answer = client.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
    }
    for path in [
        "/nope",
        "/streams/999999",
        "/streams/999999/history",
        "/runs/999999",
        "/proxy/x",
        "/.env",
    ] {
        client.expect(path, 404).await;
    }
    // The page as a browser gets it, its files, and the reference's files.
    let page = client.send(Method::GET, "/", &[("accept", "text/html")]).await;
    assert_eq!(page.status, 200);
    let docs = client.get("/docs").await.text();
    let mut files = Vec::new();
    for (page_path, html) in [("/", page.text()), ("/docs", docs)] {
        let page_url = url::Url::parse(&client.url(page_path)).expect("page URL");
        for attribute in ["src=\"", "href=\""] {
            for piece in html.split(attribute).skip(1) {
                let target = piece.split('"').next().unwrap_or_default();
                if let Ok(resolved) = page_url.join(target)
                    && resolved.origin() == page_url.origin()
                    && !target.starts_with('#')
                {
                    files.push(path_of(resolved.as_str()));
                }
            }
        }
    }
    files.sort();
    files.dedup();
    assert!(files.len() >= 3, "the pages name their files: {files:?}");
    for file in &files {
        let answer = client.get(file).await;
        assert_eq!(answer.status, 200, "{file}");
    }
    let preflight = client
        .send(
            Method::OPTIONS,
            "/streams",
            &[
                ("origin", "http://player.example"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
    assert_eq!(preflight.status, 204);

    // --- the commands that read the configuration ------------------------------------
    let locked_stream = locked.url("/locked/index.m3u8");
    let gone = locked.url("/locked/gone.m3u8");
    let open_stream = open.url("/live/index.m3u8");
    let c = config_arg.as_str();
    let commands: Vec<(Vec<&str>, Option<i32>)> = vec![
        (vec!["check", &locked_stream, "--src", "locked", "-c", c], Some(0)),
        (vec!["check", &locked_stream, "-c", c], Some(1)),
        (vec!["check", &gone, "--src", "locked", "-c", c], Some(1)),
        (vec!["check", &open_stream, "-c", c], Some(0)),
        (vec!["check", &open_stream, "--src", "nosuch", "-c", c], Some(2)),
        (vec!["sign", &open_stream, "--src", "open", "-c", c], Some(0)),
        (vec!["sign", &open_stream, "-c", c], Some(0)),
        (vec!["sign", "ftp://127.0.0.1/x.m3u8", "-c", c], Some(2)),
        (vec!["sign", &open_stream, "--src", "nosuch", "-c", c], Some(2)),
        (vec!["channels", "-c", c], Some(0)),
        (vec!["schedule", "-c", c], Some(0)),
        (vec!["schedule", "--refresh", "-c", c], Some(2)),
        (vec!["history", "1", "--limit", "5", "-c", c], Some(0)),
        (vec!["history", "999999", "-c", c], Some(2)),
        (vec!["openapi", "-c", c], Some(0)),
        (vec!["channels", "-c", "/nonexistent/f1-stream.toml"], Some(2)),
        (vec!["--version"], Some(0)),
        (vec!["--help"], Some(0)),
    ];
    // Six at a time: each opens the database the service is writing.
    let ran: Vec<Ran> = futures::stream::iter(commands.iter().map(|(args, _)| cli(&captured, args)))
        .buffered(6)
        .collect()
        .await;
    for ((args, code), ran) in commands.iter().zip(&ran) {
        assert_eq!(
            ran.code, *code,
            "f1-stream {args:?}: {}{}",
            ran.stdout, ran.stderr
        );
    }
    // A whole run from the command line (after the others: it writes).
    let extract = cli(&captured, &["extract", "-c", c]).await;
    assert_eq!(extract.code, Some(0), "{}", extract.stderr);
    assert!(
        extract.stdout.contains("2 streams from 2 extractors, 2 healthy"),
        "{}",
        extract.stdout
    );

    let metrics = client.expect("/metrics", 200).await.text();
    assert!(metrics.contains("f1stream_"), "{metrics}");

    // --- stop and collect the logs ----------------------------------------------------
    let (code, stdout, stderr) = serve.stop().await;
    assert_eq!(code, Some(0), "serve exits cleanly");
    let log = String::from_utf8_lossy(&stderr).into_owned();
    for expected in [
        " TRACE ",
        " DEBUG ",
        "listening on",
        "http{method=POST route=\"/extract\"}",
        "http{method=GET route=\"/relay/{token}/{name}\"}",
        "http{method=GET route=\"/channels/{playlist}\"}",
        "extraction run stored",
        "shutting down",
    ] {
        assert!(
            log.contains(expected),
            "the trace log holds {expected:?} ({} bytes):\n{}",
            log.len(),
            tail(&log, 4000)
        );
    }
    captured.record("serve log", "serve stdout", stdout);
    captured.record("serve log", "serve stderr (RUST_LOG=trace)", stderr);

    for file in database_files(dir.path()) {
        let bytes = std::fs::read(&file).expect("read database file");
        captured.record("database", file.display().to_string(), bytes);
    }

    // What reached the origins: the locked origin got the credential it
    // requires (so the header path was exercised), the open one never.
    let origin_record = |origin: &FakeOrigin, paths: &[&str]| -> (Vec<u8>, usize) {
        let mut text = String::new();
        let mut requests = 0;
        for path in paths {
            for request in origin.requests_to(path) {
                requests += 1;
                text.push_str(&format!(
                    "{} {}?{}\n",
                    request.method,
                    request.path,
                    request.query.as_deref().unwrap_or("")
                ));
                for (name, value) in &request.headers {
                    text.push_str(&format!(
                        "{name}: {}\n",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                }
            }
        }
        (text.into_bytes(), requests)
    };
    let credential_seen = |path: &str| {
        locked
            .requests_to(path)
            .iter()
            .filter(|r| header(&r.headers, "authorization") == Some(secrets.upstream_header().as_str()))
            .count()
    };
    for path in [
        "/list.m3u",
        "/locked/index.m3u8",
        "/locked/key.bin",
        "/locked/seg101.ts",
    ] {
        assert!(
            credential_seen(path) >= 1,
            "{path} was fetched with the credential"
        );
    }
    let (open_requests, open_count) = origin_record(&open, &OPEN_PATHS);
    let (locked_requests, locked_count) = origin_record(&locked, &LOCKED_PATHS);
    assert!(
        open_count >= 10 && locked_count >= 20,
        "{open_count} + {locked_count} requests"
    );

    // --- the scan ----------------------------------------------------------------------
    let everything = Scanner::new(needles(&secrets.all()));
    let upstream = Scanner::new(needles(&secrets.not_for_upstream()));
    let mut artifacts = captured.take();
    artifacts.push(Artifact {
        sink: "open origin",
        label: "requests received".into(),
        bytes: open_requests,
    });
    let locked_artifact = Artifact {
        sink: "locked origin",
        label: "requests received".into(),
        bytes: locked_requests,
    };
    let mut leaks = upstream.leaks(&locked_artifact);
    let mut bytes_by_sink: Vec<(&str, usize, usize)> = Vec::new();
    for artifact in artifacts.iter().chain([&locked_artifact]) {
        if artifact.sink != "locked origin" {
            leaks.extend(everything.leaks(artifact));
        }
        match bytes_by_sink
            .iter_mut()
            .find(|(sink, _, _)| *sink == artifact.sink)
        {
            Some((_, bytes, count)) => {
                *bytes += artifact.bytes.len();
                *count += 1;
            }
            None => bytes_by_sink.push((artifact.sink, artifact.bytes.len(), 1)),
        }
    }
    let total: usize = bytes_by_sink.iter().map(|(_, bytes, _)| bytes).sum();
    eprintln!(
        "scanned {total} bytes for {} forms of {} secrets in {:.1} s:",
        everything.needles.len(),
        secrets.all().len(),
        started.elapsed().as_secs_f64()
    );
    for (sink, bytes, count) in &bytes_by_sink {
        eprintln!("  {sink:<14} {count:>4} captures {bytes:>10} bytes");
    }
    assert!(
        bytes_by_sink
            .iter()
            .any(|(sink, bytes, _)| *sink == "serve log" && *bytes > 100_000),
        "the trace log was captured: {bytes_by_sink:?}"
    );
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

/// The scan finds each secret in every form it looks for, wherever it sits:
/// in another letter case, as hex, and base64 or base64url encoded inside a
/// larger blob at each byte alignment, padded or not. Without this, a scan
/// that matched nothing would pass the test above.
#[test]
fn the_scan_finds_every_form_of_a_secret_and_nothing_else() {
    let secrets = Secrets::new();
    let scanner = Scanner::new(needles(&secrets.all()));
    let found = |label: &str, bytes: Vec<u8>| {
        let artifact = Artifact {
            sink: "canary",
            label: label.to_owned(),
            bytes,
        };
        scanner.leaks(&artifact)
    };
    for (name, secret) in secrets.all() {
        let mut forms = vec![
            (
                format!("{name} upper case"),
                format!("x {} y", secret.to_uppercase()),
            ),
            (
                format!("{name} lower case"),
                format!("x{}y", secret.to_lowercase()),
            ),
            (
                format!("{name} hex"),
                secret.bytes().map(|b| format!("{b:02X}")).collect(),
            ),
        ];
        let engines = [
            ("base64", &STANDARD),
            ("base64 unpadded", &STANDARD_NO_PAD),
            ("base64url padded", &URL_SAFE),
            ("base64url", &URL_SAFE_NO_PAD),
        ];
        for (encoding, engine) in engines {
            forms.push((format!("{name} {encoding} alone"), engine.encode(&secret)));
            for prefix in ["", "a", "ab"] {
                for suffix in ["", "?", "?!"] {
                    let blob = format!("{prefix}{secret}{suffix}");
                    forms.push((
                        format!("{name} {encoding} in {prefix:?}..{suffix:?}"),
                        format!("token={}&more", engine.encode(blob)),
                    ));
                }
            }
        }
        for (label, text) in forms {
            assert!(
                !found(&label, text.clone().into_bytes()).is_empty(),
                "{label} not found in {text}"
            );
        }
    }
    let other = Secrets::new();
    for (name, secret) in other.all() {
        let blob = format!(
            "{secret} {} {}",
            STANDARD.encode(&secret),
            URL_SAFE_NO_PAD.encode(&secret)
        );
        assert!(
            found(name, blob.into_bytes()).is_empty(),
            "another secret is not these"
        );
    }
}

/// Variables set for one child: `(name, value)`.
type Environment = Vec<(&'static str, String)>;

/// Random decimal digits (a token that the environment reads as a number).
fn random_digits(count: usize) -> String {
    let mut raw = vec![0u8; count];
    getrandom::fill(&mut raw).expect("random bytes");
    let mut digits: String = raw.iter().map(|b| char::from(b'0' + b % 10)).collect();
    digits.replace_range(0..1, "7");
    digits
}

/// A configuration that does not load says what is wrong without quoting a
/// secret: not when the TOML around the secret is malformed (a typo on its
/// line), not when the environment's value does not parse as a string, not
/// when a header value is refused. Each case runs `f1-stream channels`
/// (which stops at the configuration) with `RUST_LOG=trace`, and also loads
/// the file in-process to check the error's `Display` and `Debug`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_that_does_not_load_does_not_quote_its_secrets() {
    let secrets = Secrets::new();
    let numeric_token = random_digits(12);
    let mut named = secrets.all();
    named.push(("numeric auth.admin_token", numeric_token.clone()));
    let scanner = Scanner::new(needles(&named));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1-stream.db");
    let top = format!(
        "[database]\nurl = \"sqlite://{}\"\n[schedule]\nenabled = false\n",
        db.display()
    );
    let extractor = |headers: &str| {
        format!(
            "[[extractors]]\nsite_key = \"locked\"\nsite_name = \"Locked\"\nkind = \"static\"\n\
             streams = [{{ url = \"http://127.0.0.1:9/x.m3u8\" }}]\nheaders = {headers}\n"
        )
    };
    let upstream = secrets.upstream_header();
    // (case, file, environment)
    let cases: Vec<(&str, String, Environment)> = vec![
        (
            "a stray word after auth.admin_token",
            format!("{top}[auth]\nadmin_token = \"{}\" x\n", secrets.admin_token),
            vec![],
        ),
        (
            "an unterminated proxy.signing_key",
            format!("{top}[proxy]\nsigning_key = \"{}\n", secrets.signing_key),
            vec![],
        ),
        (
            "an unterminated headers table",
            format!(
                "{top}{}",
                extractor(&format!("{{ Authorization = \"{upstream}\"\n"))
            ),
            vec![],
        ),
        (
            "a numeric F1S_AUTH__ADMIN_TOKEN",
            top.clone(),
            vec![("F1S_AUTH__ADMIN_TOKEN", numeric_token.clone())],
        ),
        (
            "an unknown key beside the secrets",
            format!(
                "{top}[auth]\nadmin_token = \"{}\"\nadmin_tokn = 1\n[proxy]\nsigning_key = \"{}\"\n",
                secrets.admin_token, secrets.signing_key
            ),
            vec![],
        ),
        (
            "a header value that is not one",
            format!(
                "{top}{}",
                extractor(&format!("{{ Authorization = \"{upstream}\\n\" }}"))
            ),
            vec![],
        ),
        (
            "secrets from the environment and a bad value in the file",
            format!("{top}[health]\ntimeout_secs = 0\n"),
            vec![
                ("F1S_AUTH__ADMIN_TOKEN", secrets.admin_token.clone()),
                ("F1S_PROXY__SIGNING_KEY", secrets.signing_key.clone()),
            ],
        ),
    ];
    let mut leaks = Vec::new();
    let mut scanned = 0;
    for (case, toml, env) in &cases {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).expect("write config");
        let output = tokio::time::timeout(
            PATIENCE,
            Command::new(BINARY)
                .args(["channels", "-c", path.to_str().expect("utf-8")])
                .env("RUST_LOG", "trace")
                .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("ends in time")
        .expect("binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!("{case}: {}", stderr.trim_end());
        assert_eq!(output.status.code(), Some(2), "{case}: the start stops: {stderr}");
        assert!(
            stderr.contains("error: invalid configuration"),
            "{case}: {stderr}"
        );
        let mut texts = vec![
            ("stdout".to_owned(), output.stdout),
            ("stderr".to_owned(), output.stderr),
        ];
        if env.is_empty() {
            let error = Config::from_toml_str(toml).expect_err("the case does not load");
            texts.push((
                "ConfigError Display".to_owned(),
                format!("{error:#}").into_bytes(),
            ));
            texts.push(("ConfigError Debug".to_owned(), format!("{error:?}").into_bytes()));
        }
        for (what, bytes) in texts {
            scanned += bytes.len();
            leaks.extend(scanner.leaks(&Artifact {
                sink: "config error",
                label: format!("{case}: {what}"),
                bytes,
            }));
        }
    }
    eprintln!("scanned {scanned} bytes of {} failed starts", cases.len());
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}
