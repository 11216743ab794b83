//! The watch page (`web/`, served by the binary) in a real browser: the
//! real service on 127.0.0.1, live HLS sources encoded here by ffmpeg
//! (320x180, 1 s segments) or fake origins the test controls, and Debian's
//! headless Chromium driven by tests/browser/watch_page.mjs (playwright-core,
//! one browser per test, commanded step by step from here so every
//! assertion stays in Rust).
//!
//! - The watch page plays the default channel muted (autoplay without a
//!   user gesture and without `--autoplay-policy`), through this service
//!   only, with no console error.
//! - When the channel's source dies, the video goes on (no long stall) and
//!   the page shows the switch (`#switches`, `#now-playing`).
//! - A stream chosen in `#streams` that dies shows `#fallback`, whose
//!   `button.back-to-channel` brings the channel back at once; left alone,
//!   the page goes back to the channel by itself after its countdown.
//! - A stream chosen in `#streams` plays in the tile; deep links
//!   (`?channel=`, `?stream=`, `?play=...&play=...`) open what they name;
//!   two players play at once; `#add-player` stops at 4.
//! - The calendar shows a live session (fixture calendar) and a ticking
//!   countdown; the status page shows an extractor whose source fails as
//!   down; empty states say so.
//! - `GET /` still answers JSON to scripts while a browser gets the page.
//! - Screenshots of every view at 390x844 and 1440x900 (`SCREENSHOT_DIR`,
//!   else `target/screenshots/`), and the first-frame time and page weight
//!   (without hls.js), printed as one JSON line.
//!
//! Needs ffmpeg, node with tests/browser/node_modules (`npm ci --prefix
//! tests/browser`) and Chromium at /usr/bin/chromium; `.ci/run` installs
//! them, so under CI a missing one fails the test instead of skipping it.
//! Run with `cargo test --test watch_page -- --nocapture` to see the
//! measurements.

mod common;
#[path = "common/live.rs"]
mod live;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::{FakeOrigin, MEDIA_LIVE, Reply, TestService, replace_once, test_config_toml};
use live::{CHROMIUM, Death, FPS, LiveSource, Look, browser_dir, have, have_ffmpeg};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Every test here drives a browser (most with encoders) on a 2-core
/// machine; one at a time keeps their timings meaningful.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Picture size of the encodes: small, the page's behaviour is the point.
const SIZE: &str = "320x180";
/// Longest stall of the video across the death of its source (the channel
/// switches within 6 s of the death, with ~3 s buffered).
const MAX_STALL_MS: f64 = 8000.0;
/// Generous bounds that catch breakage; the goals are 1.5 s and 100 KB.
const FIRST_FRAME_MEDIAN_BOUND_MS: f64 = 5000.0;
const PAGE_BYTES_BOUND: u64 = 100 * 1024;

/// Whether node, playwright-core (`npm ci --prefix tests/browser`) and
/// Chromium are there.
fn have_browser() -> bool {
    let module = browser_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file();
    assert!(
        module || std::env::var_os("CI").is_none(),
        "CI must run `npm ci --prefix tests/browser` first (see .ci/run)"
    );
    have("node", &["--version"]) && have(CHROMIUM, &["--version"]) && module
}

// --- the browser --------------------------------------------------------------

/// A page of the [`Browser`] (its own fresh context).
#[derive(Debug, Clone, Copy)]
struct Page(u64);

/// Headless Chromium behind tests/browser/watch_page.mjs.
struct Browser {
    node: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Self {
        let mut node = Command::new("node")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("tests/browser/watch_page.mjs")
            .args(["--chromium", CHROMIUM])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = node.stderr.take().expect("stderr");
            let stderr = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .expect("stderr")
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let stdin = node.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(node.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("the browser starts within 30 s")
            .expect("node's stdout");
        let ready: Value = serde_json::from_str(ready.as_deref().unwrap_or_default()).unwrap_or_else(|e| {
            panic!(
                "node printed {ready:?} ({e}); stderr:\n{}",
                stderr.lock().expect("stderr")
            )
        });
        assert_eq!(ready["event"], "ready", "{ready}");
        Self {
            node,
            stdin,
            stdout,
            stderr,
            next_id: 0,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Sends one command and answers its value, or the driver's error.
    async fn try_call(&mut self, mut command: Value, timeout: Duration) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = id.into();
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("node's stdin");
        self.stdin.flush().await.expect("node's stdin");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.stdout.next_line()).await {
                Err(_) => panic!(
                    "the browser did not answer {command} within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ),
                Ok(Err(e)) => panic!("node's stdout: {e}"),
                Ok(Ok(None)) => panic!(
                    "node exited during {command} ({:?}); stderr:\n{}",
                    self.node.try_wait(),
                    self.stderr()
                ),
                Ok(Ok(Some(line))) => line,
            };
            let mut answer: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("node printed {line:?}: {e}"));
            if answer["id"] != id {
                continue;
            }
            return if answer["ok"] == true {
                Ok(answer["value"].take())
            } else {
                Err(answer["error"].as_str().unwrap_or("no error text").to_owned())
            };
        }
    }

    async fn call(&mut self, command: Value) -> Value {
        let text = command.to_string();
        self.try_call(command, Duration::from_secs(60))
            .await
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    /// A new page in a fresh context (empty cache) of `width` x `height`.
    async fn open(&mut self, width: u32, height: u32) -> Page {
        let value = self
            .call(json!({"cmd": "open", "width": width, "height": height}))
            .await;
        Page(value["page"].as_u64().expect("page id"))
    }

    /// Navigates and waits for `load`: answers `{status, contentType, url}`.
    async fn goto(&mut self, page: Page, url: &str) -> Value {
        self.call(json!({"cmd": "goto", "page": page.0, "url": url}))
            .await
    }

    /// The value of a JavaScript expression in the page.
    async fn eval(&mut self, page: Page, expr: &str) -> Value {
        self.call(json!({"cmd": "eval", "page": page.0, "expr": expr}))
            .await
    }

    /// Polls `expr` until it is truthy and answers its value; panics with
    /// what the page looked like when it is not within `timeout`.
    async fn wait(&mut self, page: Page, what: &str, expr: &str, timeout: Duration) -> Value {
        let millis = u64::try_from(timeout.as_millis()).expect("timeout");
        let result = self
            .try_call(
                json!({"cmd": "wait", "page": page.0, "expr": expr, "timeoutMs": millis}),
                timeout + Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        if result["done"] != true {
            let state = self.describe(page).await;
            panic!(
                "{what}: not within {timeout:?}; last value {}\n{state}",
                result["value"]
            );
        }
        result["value"].clone()
    }

    async fn click(&mut self, page: Page, selector: &str) {
        if let Err(error) = self
            .try_call(
                json!({"cmd": "click", "page": page.0, "selector": selector}),
                Duration::from_secs(30),
            )
            .await
        {
            let state = self.describe(page).await;
            panic!("click {selector}: {error}\n{state}");
        }
    }

    async fn screenshot(&mut self, page: Page, path: &Path) {
        self.call(json!({"cmd": "screenshot", "page": page.0, "path": path}))
            .await;
    }

    /// `{consoleErrors, pageErrors, console}` since the page opened.
    async fn log(&mut self, page: Page) -> Value {
        self.call(json!({"cmd": "log", "page": page.0})).await
    }

    /// Every request of the page so far (finished or failed).
    async fn network(&mut self, page: Page) -> Vec<Value> {
        match self.call(json!({"cmd": "network", "page": page.0})).await {
            Value::Array(requests) => requests,
            other => panic!("network: {other}"),
        }
    }

    async fn close_page(&mut self, page: Page) {
        self.call(json!({"cmd": "close", "page": page.0})).await;
    }

    /// What the page shows, for failure messages: its URL, the players,
    /// the view's HTML (shortened) and the console.
    async fn describe(&mut self, page: Page) -> String {
        let state = self
            .try_call(
                json!({"cmd": "eval", "page": page.0, "expr": format!(
                    "({{ url: location.href, players: {TILES}, view: (document.getElementById('view') \
                     || document.body || {{outerHTML: ''}}).outerHTML.slice(0, 6000) }})"
                )}),
                Duration::from_secs(10),
            )
            .await;
        let log = self
            .try_call(json!({"cmd": "log", "page": page.0}), Duration::from_secs(10))
            .await;
        let console = log
            .as_ref()
            .ok()
            .and_then(|log| log["console"].as_array())
            .map(|messages| {
                messages
                    .iter()
                    .rev()
                    .take(30)
                    .map(|m| {
                        format!(
                            "  [{}] {} ({})",
                            m["type"].as_str().unwrap_or(""),
                            m["text"],
                            m["location"]["url"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        match state {
            Ok(state) => format!(
                "page {}\nplayers {}\nview HTML:\n{}\nconsole (newest first):\n{console}",
                state["url"],
                state["players"],
                state["view"].as_str().unwrap_or_default()
            ),
            Err(error) => format!("(page not readable: {error})\nconsole:\n{console}"),
        }
    }

    /// Panics on any uncaught exception of the page (always a bug), and,
    /// with `console_too`, on any console error.
    async fn assert_no_errors(&mut self, page: Page, what: &str, console_too: bool) {
        let log = self.log(page).await;
        let page_errors = log["pageErrors"].as_array().cloned().unwrap_or_default();
        assert!(
            page_errors.is_empty(),
            "{what}: uncaught errors: {page_errors:#?}"
        );
        if console_too {
            let console_errors = log["consoleErrors"].as_array().cloned().unwrap_or_default();
            assert!(
                console_errors.is_empty(),
                "{what}: console errors: {console_errors:#?}"
            );
        }
    }

    async fn quit(mut self) {
        let _ = self
            .try_call(json!({"cmd": "quit"}), Duration::from_secs(20))
            .await;
        let status = tokio::time::timeout(Duration::from_secs(20), self.node.wait()).await;
        assert!(
            status.is_ok_and(|s| s.is_ok_and(|s| s.success())),
            "the browser closes cleanly; stderr:\n{}",
            self.stderr()
        );
    }
}

/// JavaScript: every player tile with its video's state.
const TILES: &str = "[...document.querySelectorAll('#players .player')].map((tile) => { \
    const v = tile.querySelector('video'); \
    const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null; \
    return { source: tile.getAttribute('data-source'), t: v ? v.currentTime : null, \
      paused: v ? v.paused : null, muted: v ? v.muted : null, \
      frames: q ? q.totalVideoFrames - q.droppedVideoFrames : null, \
      readyState: v ? v.readyState : null, \
      error: v && v.error ? String(v.error.message || v.error.code) : null }; })";

/// A Rust string as a JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

/// Waits until player `index` shows `source` and its video plays (position
/// past 0, not paused), then until its position has risen `by` seconds
/// with at least half of those seconds' frames decoded. Answers the tile
/// at the start and at the end.
async fn wait_playing(
    browser: &mut Browser,
    page: Page,
    index: usize,
    source: &str,
    by: f64,
    timeout: Duration,
) -> (Value, Value) {
    let tile = format!("({TILES})[{index}]");
    let started = browser
        .wait(
            page,
            &format!("player {index} plays {source}"),
            &format!(
                "(() => {{ const s = {tile}; return s && s.source === {} && s.t > 0 && !s.paused ? s : null; }})()",
                js(source)
            ),
            timeout,
        )
        .await;
    let t0 = started["t"].as_f64().expect("currentTime");
    let frames0 = started["frames"].as_f64().unwrap_or(0.0);
    let frames = by * f64::from(FPS) / 2.0;
    let ended = browser
        .wait(
            page,
            &format!("player {index} ({source}) advances {by} s from {t0:.2} s"),
            &format!(
                "(() => {{ const s = {tile}; return s && s.source === {} && s.t >= {} && !s.paused \
                 && (s.frames === null || s.frames >= {}) ? s : null; }})()",
                js(source),
                t0 + by,
                frames0 + frames
            ),
            timeout,
        )
        .await;
    (started, ended)
}

/// The page's attribute `name` of the first element matching `selector`
/// (`null` when there is none).
fn attribute_js(selector: &str, name: &str) -> String {
    format!(
        "(() => {{ const el = document.querySelector({}); return el ? el.getAttribute({}) : null; }})()",
        js(selector),
        js(name)
    )
}

/// The text of the first element matching `selector`, whitespace collapsed.
fn text_js(selector: &str) -> String {
    format!(
        "(() => {{ const el = document.querySelector({}); return el ? el.textContent.replace(/\\s+/g, ' ').trim() : null; }})()",
        js(selector)
    )
}

/// The longest wall time (ms) during which a video's position did not
/// move, over `samples` of `(at_ms, position)` (a missing video counts as
/// not moving).
fn longest_stall(samples: &[(f64, Option<f64>)]) -> f64 {
    let mut longest: f64 = 0.0;
    let Some(&(mut since_at, mut since_t)) = samples.first() else {
        return longest;
    };
    for &(at, t) in samples {
        let moved = match (t, since_t) {
            (Some(t), Some(from)) => (t - from).abs() > 0.01,
            (Some(_), None) => true,
            _ => false,
        };
        if moved {
            since_at = at;
            since_t = t;
        } else {
            longest = longest.max(at - since_at);
        }
    }
    longest
}

#[test]
fn longest_stall_is_the_longest_time_the_position_did_not_move() {
    let samples = [
        (0.0, Some(1.0)),
        (250.0, Some(1.25)),
        (500.0, Some(1.25)),
        (750.0, Some(1.25)),
        (1000.0, Some(1.5)),
        (1250.0, None),
        (1500.0, None),
        (1750.0, Some(0.1)),
    ];
    assert_eq!(longest_stall(&samples), 500.0);
    assert_eq!(longest_stall(&samples[..4]), 500.0);
    assert_eq!(longest_stall(&samples[4..7]), 500.0);
    assert_eq!(longest_stall(&samples[..2]), 0.0);
    assert_eq!(longest_stall(&[]), 0.0);
}

// --- the service and its sources ------------------------------------------------

/// A stream as an extractor lists it, and the look of its encode.
struct Feed {
    site_key: &'static str,
    site_name: &'static str,
    title: &'static str,
    look: Look,
}

const ALPHA: Feed = Feed {
    site_key: "alpha",
    site_name: "Alpha TV",
    title: "Alpha feed",
    look: Look {
        pattern: "testsrc2",
        size: SIZE,
        tone: 440,
        encrypted: false,
        start_number: 0,
        ts_offset: 0,
    },
};

const BRAVO: Feed = Feed {
    site_key: "bravo",
    site_name: "Bravo TV",
    title: "Bravo feed",
    look: Look {
        pattern: "smptebars",
        size: SIZE,
        tone: 660,
        encrypted: false,
        start_number: 200,
        ts_offset: 5000,
    },
};

/// A third feed, for the test that needs two streams to die while the
/// channel keeps its source.
const CHARLIE: Feed = Feed {
    site_key: "charlie",
    site_name: "Charlie TV",
    title: "Charlie feed",
    look: Look {
        pattern: "rgbtestsrc",
        size: SIZE,
        tone: 880,
        encrypted: false,
        start_number: 400,
        ts_offset: 10000,
    },
};

/// Starts the encodes of `feeds` and waits until each lists 3 segments.
async fn start_sources(feeds: &[&Feed]) -> Vec<LiveSource> {
    let mut sources = Vec::new();
    for feed in feeds {
        sources.push(LiveSource::start(feed.site_key, &feed.look).await);
    }
    for source in &mut sources {
        source.wait_for_segments(3).await;
    }
    sources
}

/// A `static` extractor block with one titled stream at `url`.
fn extractor(feed: &Feed, url: &str) -> String {
    format!(
        "[[extractors]]\nsite_key = \"{}\"\nsite_name = \"{}\"\nkind = \"static\"\n\
         streams = [{{ url = \"{url}\", title = \"{}\" }}]\n",
        feed.site_key, feed.site_name, feed.title
    )
}

/// The extractors of `feeds` over their sources.
fn extractors(feeds: &[&Feed], sources: &[LiveSource]) -> String {
    feeds
        .iter()
        .zip(sources)
        .map(|(feed, source)| extractor(feed, &source.url()))
        .collect()
}

/// One extraction run, which must find `live` healthy streams.
async fn extract(service: &TestService, live: u64) -> Value {
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["live_streams"], live, "{run}");
    run
}

/// The id of the stream of extractor `site_key`.
async fn stream_id(service: &TestService, site_key: &str) -> i64 {
    let (status, body) = service.get_json("/streams/all").await;
    assert_eq!(status, 200, "{body}");
    body["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["site_key"] == site_key)
        .and_then(|s| s["id"].as_i64())
        .unwrap_or_else(|| panic!("a stream of {site_key}: {body}"))
}

/// The channel the page opens by default (`GET /channels`' `default`).
async fn default_channel(service: &TestService) -> String {
    let (status, body) = service.get_json("/channels").await;
    assert_eq!(status, 200, "{body}");
    body["default"]
        .as_str()
        .unwrap_or_else(|| panic!("GET /channels names its default channel: {body}"))
        .to_owned()
}

/// The stream id `GET /channels` says `slug` plays.
async fn channel_source(service: &TestService, slug: &str) -> Option<i64> {
    let (_, body) = service.get_json("/channels").await;
    body["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["slug"] == slug)
        .and_then(|c| c["source"]["id"].as_i64())
}

/// The F1 calendar path of the fake origin.
const CALENDAR_PATH: &str = "/ergast/f1/current.json";

fn ergast_time(instant: DateTime<Utc>) -> Value {
    json!({
        "date": instant.format("%Y-%m-%d").to_string(),
        "time": instant.format("%H:%M:%SZ").to_string(),
    })
}

/// An Ergast calendar whose one weekend has a race that started 10 minutes
/// ago (live), a first practice 3 hours ago (past) and qualifying in 2
/// hours (upcoming, what the countdown counts to). Answers the document
/// and the race's start.
fn live_race_calendar() -> (String, DateTime<Utc>) {
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let race = now - TimeDelta::minutes(10);
    let weekend = json!({
        "season": "2026", "round": "7", "url": "https://example.org/gp",
        "raceName": "Local Grand Prix",
        "Circuit": {"circuitId": "local", "circuitName": "Local Ring",
                    "Location": {"locality": "Town", "country": "Land"}},
        "date": race.format("%Y-%m-%d").to_string(),
        "time": race.format("%H:%M:%SZ").to_string(),
        "FirstPractice": ergast_time(now - TimeDelta::hours(3)),
        "Qualifying": ergast_time(now + TimeDelta::hours(2)),
    });
    let document = json!({"MRData": {"RaceTable": {"season": "2026", "Races": [weekend]}}});
    (document.to_string(), race)
}

/// The service with the calendar at `calendar_url` enabled (waiting for
/// its first fetch) and `extra` configuration, on a database in `dir`.
async fn service_with_calendar(dir: &Path, calendar_url: &str, extra: &str) -> TestService {
    let db = dir.join("f1-stream.db");
    let toml = replace_once(
        &test_config_toml(&db, extra),
        "[schedule]\nenabled = false\n",
        &format!("[schedule]\nenabled = true\nurl = \"{calendar_url}\"\ntimeout_secs = 2\n"),
    );
    let service = TestService::start_with_config(&db, &toml).await;
    service.calendar_fetched().await;
    service
}

/// An extractor whose source document answers 500.
fn broken_extractor(origin: &FakeOrigin) -> String {
    origin.route("/broken/list.m3u", Reply::status(500));
    format!(
        "[[extractors]]\nsite_key = \"broken\"\nsite_name = \"Broken site\"\nkind = \"m3u\"\n\
         url = \"{}\"\n",
        origin.url("/broken/list.m3u")
    )
}

// --- the tests ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_page_plays_the_default_channel_muted_with_no_console_errors() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let sources = start_sources(&[&ALPHA]).await;
    let service = TestService::start(&extractors(&[&ALPHA], &sources)).await;
    extract(&service, 1).await;
    let alpha = stream_id(&service, ALPHA.site_key).await;
    let default = default_channel(&service).await;
    let channel = format!("channel:{default}");

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    let started = Instant::now();
    let navigation = browser.goto(page, &service.url("/watch")).await;
    assert_eq!(navigation["status"], 200, "{navigation}");
    assert!(
        navigation["contentType"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/html")),
        "{navigation}"
    );
    let view = browser.eval(page, &attribute_js("main#view", "data-view")).await;
    assert_eq!(view, "watch");
    let nav = browser
        .eval(
            page,
            "[...document.querySelectorAll('nav a[data-nav]')].map((a) => a.getAttribute('data-nav'))",
        )
        .await;
    assert_eq!(nav, json!(["watch", "calendar", "status"]));

    let (first, last) = wait_playing(&mut browser, page, 0, &channel, 4.0, Duration::from_secs(20)).await;
    eprintln!(
        "playing {channel}: {first} .. {last}, {:.1} s after the navigation",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(last["muted"], true, "the page starts muted: {last}");
    assert_eq!(last["paused"], false, "{last}");
    let tiles = browser.eval(page, TILES).await;
    assert_eq!(tiles.as_array().map(Vec::len), Some(1), "one player: {tiles}");

    browser
        .wait(
            page,
            "#now-playing names the channel's source",
            &format!(
                "(() => {{ const el = document.querySelector('#now-playing'); return el \
                 && el.getAttribute('data-stream-id') === {} && el.textContent.includes({}) \
                 && el.textContent.includes({}) ? el.textContent : null; }})()",
                js(&alpha.to_string()),
                js(ALPHA.title),
                js(ALPHA.site_name)
            ),
            Duration::from_secs(10),
        )
        .await;
    let pressed = browser
        .eval(
            page,
            &attribute_js(
                &format!("#channels button[data-channel=\"{default}\"]"),
                "aria-pressed",
            ),
        )
        .await;
    assert_eq!(pressed, "true", "the default channel's button is pressed");
    // The page hands out the channel's signed playlist URL, for VLC or a TV.
    let link = browser
        .eval(page, &attribute_js("#now-playing a.np-link", "href"))
        .await;
    let (_, channels) = service.get_json("/channels").await;
    let signed = channels["channels"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["slug"] == default.as_str()))
        .and_then(|c| c["url"].as_str())
        .expect("the default channel's url")
        .to_owned();
    assert!(signed.contains("?sig="), "{signed}");
    assert_eq!(
        link,
        serde_json::Value::String(signed),
        "the link is the signed channel URL"
    );
    let row = browser
        .wait(
            page,
            "#streams lists the stream, healthy, with its play button and uptime bar",
            &format!(
                "(() => {{ const row = document.querySelector('#streams [data-stream-id=\"{alpha}\"]'); \
                 return row && row.getAttribute('data-state') === 'healthy' \
                 && row.querySelector('button.play') && row.querySelector('.uptime-bar') \
                 ? row.textContent : null; }})()"
            ),
            Duration::from_secs(10),
        )
        .await;
    eprintln!("stream row: {row}");
    let fallback = browser
        .eval(
            page,
            "(() => { const el = document.querySelector('#fallback'); return el ? el.hidden : 'missing'; })()",
        )
        .await;
    assert_eq!(
        fallback, true,
        "#fallback is there and hidden while the channel plays"
    );

    // Everything came from this service, media included.
    let requests = browser.network(page).await;
    let foreign: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            r["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http") && !u.starts_with(&service.base))
        })
        .collect();
    assert!(foreign.is_empty(), "requests to elsewhere: {foreign:#?}");
    let ok = |r: &&Value| r["status"] == 200 || r["status"] == 206;
    let playlist = service.url(&format!("/channels/{default}.m3u8"));
    assert!(
        requests.iter().filter(ok).any(|r| r["url"]
            .as_str()
            .is_some_and(|u| u.split('?').next() == Some(playlist.as_str()))),
        "the channel's playlist was played: {requests:#?}"
    );
    let relayed = requests
        .iter()
        .filter(ok)
        .filter(|r| r["url"].as_str().is_some_and(|u| u.contains("/relay/")))
        .count();
    assert!(relayed >= 3, "segments came through /relay: {relayed}");

    browser.assert_no_errors(page, "the watch page", true).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_page_keeps_playing_and_shows_the_switch_when_the_source_dies() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut sources = start_sources(&[&ALPHA, &BRAVO]).await;
    let service = TestService::start(&extractors(&[&ALPHA, &BRAVO], &sources)).await;
    let default = default_channel(&service).await;
    let channel = format!("channel:{default}");

    // The channel plays A with B healthy too: only A is up at the first run
    // and the channel is asked then; B is found at the second.
    sources[1].server.set_gone(true);
    extract(&service, 1).await;
    let alpha = stream_id(&service, ALPHA.site_key).await;
    let playlist = reqwest::get(service.url(&format!("/channels/{default}.m3u8")))
        .await
        .expect("the channel answers");
    assert_eq!(playlist.status(), 200);
    sources[1].server.set_gone(false);
    extract(&service, 2).await;
    let bravo = stream_id(&service, BRAVO.site_key).await;
    assert_eq!(channel_source(&service, &default).await, Some(alpha));

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    browser.goto(page, &service.url("/watch")).await;
    wait_playing(&mut browser, page, 0, &channel, 3.0, Duration::from_secs(20)).await;
    browser
        .wait(
            page,
            "#now-playing shows A",
            &format!(
                "{} === {}",
                attribute_js("#now-playing", "data-stream-id"),
                js(&alpha.to_string())
            ),
            Duration::from_secs(10),
        )
        .await;

    let before = browser.eval(page, &format!("({TILES})[0]")).await;
    let killed_at = browser
        .eval(page, "performance.now()")
        .await
        .as_f64()
        .expect("now");
    let killed = Instant::now();
    sources[0].die(Death::Stopped).await;
    let t_killed = before["t"].as_f64().expect("currentTime");

    let now_playing = browser
        .wait(
            page,
            "#now-playing changes to B",
            &format!(
                "(() => {{ const el = document.querySelector('#now-playing'); return el \
                 && el.getAttribute('data-stream-id') === {} ? el.textContent.replace(/\\s+/g, ' ').trim() : null; }})()",
                js(&bravo.to_string())
            ),
            Duration::from_secs(20),
        )
        .await;
    let shown = killed.elapsed();
    let switch = browser
        .wait(
            page,
            "#switches shows the switch from A to B, newest first",
            &format!(
                "(() => {{ const t = {}; if (!t || !/^Switched from/i.test(t)) return null; \
                 const at = (names) => Math.min(...names.map((n) => t.indexOf(n)).filter((i) => i >= 0)); \
                 const a = at([{}, {}]); const b = at([{}, {}]); \
                 return Number.isFinite(a) && Number.isFinite(b) && a < b ? t : null; }})()",
                text_js("#switches li"),
                js(ALPHA.title),
                js(ALPHA.site_name),
                js(BRAVO.title),
                js(BRAVO.site_name)
            ),
            Duration::from_secs(20),
        )
        .await;
    let (_, after) = wait_playing(&mut browser, page, 0, &channel, 0.5, Duration::from_secs(10)).await;
    browser
        .wait(
            page,
            "the video plays 10 s past the death of A",
            &format!(
                "(() => {{ const s = ({TILES})[0]; return s && s.t >= {} && !s.paused ? s : null; }})()",
                t_killed + 10.0
            ),
            Duration::from_secs(30),
        )
        .await;
    let samples = browser
        .eval(
            page,
            &format!(
                "window.__watchTest.samples.filter((s) => s.at >= {killed_at}).map((s) => \
                 [s.at, s.videos.length ? s.videos[0].t : null])"
            ),
        )
        .await;
    let samples: Vec<(f64, Option<f64>)> = samples
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| (s[0].as_f64().expect("at"), s[1].as_f64()))
        .collect();
    let stall = longest_stall(&samples);
    assert!(
        samples.len() >= 40,
        "samples every 250 ms over the 10 s after the death: {samples:?}"
    );
    let (_, switches) = service.get_json(&format!("/channels/{default}/switches")).await;
    eprintln!(
        "A died at position {t_killed:.2} s; the page showed B {:.2} s later ({now_playing:?}); \
         switch shown: {switch}; longest stall after the death {stall:.0} ms; after: {after}\n\
         service's switches: {switches}",
        shown.as_secs_f64()
    );
    assert_eq!(switches["switches"][0]["from"], alpha, "{switches}");
    assert_eq!(switches["switches"][0]["to"], bravo, "{switches}");
    assert!(
        stall <= MAX_STALL_MS,
        "the video stalled {stall:.0} ms across the switch: {samples:?}"
    );
    let tiles = browser.eval(page, TILES).await;
    assert_eq!(tiles[0]["source"], channel.as_str(), "still the channel: {tiles}");
    browser
        .assert_no_errors(page, "the watch page across a switch", false)
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chosen_stream_deep_links_and_two_players_play() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let sources = start_sources(&[&ALPHA, &BRAVO]).await;
    let mut extra = extractors(&[&ALPHA, &BRAVO], &sources);
    extra.push_str("[[channels]]\nslug = \"alpha-only\"\ntitle = \"Alpha only\"\nsite_key = \"alpha\"\n");
    let service = TestService::start(&extra).await;
    extract(&service, 2).await;
    let alpha = stream_id(&service, ALPHA.site_key).await;
    let bravo = stream_id(&service, BRAVO.site_key).await;
    let default = default_channel(&service).await;
    let channel = format!("channel:{default}");

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    browser.goto(page, &service.url("/watch")).await;
    wait_playing(&mut browser, page, 0, &channel, 2.0, Duration::from_secs(20)).await;
    let playing = channel_source(&service, &default)
        .await
        .expect("the channel has a source");
    let other = if playing == alpha { bravo } else { alpha };
    for id in [alpha, bravo] {
        browser
            .wait(
                page,
                &format!("#streams lists stream {id} with its state, play button and uptime bar"),
                &format!(
                    "(() => {{ const row = document.querySelector('#streams [data-stream-id=\"{id}\"]'); \
                     return row && row.getAttribute('data-state') === 'healthy' \
                     && row.querySelector('button.play') && row.querySelector('.uptime-bar'); }})()"
                ),
                Duration::from_secs(10),
            )
            .await;
    }

    // The other stream, chosen in the list, plays in the player.
    browser
        .click(
            page,
            &format!("#streams [data-stream-id=\"{other}\"] button.play"),
        )
        .await;
    let stream = format!("stream:{other}");
    wait_playing(&mut browser, page, 0, &stream, 3.0, Duration::from_secs(20)).await;
    let now_playing = browser
        .eval(page, &attribute_js("#now-playing", "data-stream-id"))
        .await;
    assert_eq!(now_playing, other.to_string().as_str());

    // Deep links: a stream, a channel.
    browser
        .goto(page, &service.url(&format!("/watch?stream={playing}")))
        .await;
    wait_playing(
        &mut browser,
        page,
        0,
        &format!("stream:{playing}"),
        2.0,
        Duration::from_secs(20),
    )
    .await;
    browser
        .goto(page, &service.url("/watch?channel=alpha-only"))
        .await;
    wait_playing(
        &mut browser,
        page,
        0,
        "channel:alpha-only",
        2.0,
        Duration::from_secs(20),
    )
    .await;
    let pressed = browser
        .eval(
            page,
            &attribute_js("#channels button[data-channel=\"alpha-only\"]", "aria-pressed"),
        )
        .await;
    assert_eq!(pressed, "true");
    browser
        .wait(
            page,
            "#now-playing shows alpha-only's source",
            &format!(
                "{} === {}",
                attribute_js("#now-playing", "data-stream-id"),
                js(&alpha.to_string())
            ),
            Duration::from_secs(10),
        )
        .await;

    // Multi-view from a deep link: both players play at once.
    let multi = format!("/watch?play=channel:best&play=stream:{other}");
    browser.goto(page, &service.url(&multi)).await;
    let sources_shown = browser
        .wait(
            page,
            "two players",
            &format!(
                "(() => {{ const t = {TILES}; return t.length === 2 ? t.map((s) => s.source) : null; }})()"
            ),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(sources_shown, json!(["channel:best", stream]));
    let (first0, _) = wait_playing(
        &mut browser,
        page,
        0,
        "channel:best",
        0.1,
        Duration::from_secs(20),
    )
    .await;
    let (second0, _) = wait_playing(&mut browser, page, 1, &stream, 0.1, Duration::from_secs(20)).await;
    let (_, first1) = wait_playing(
        &mut browser,
        page,
        0,
        "channel:best",
        3.0,
        Duration::from_secs(20),
    )
    .await;
    let (_, second1) = wait_playing(&mut browser, page, 1, &stream, 3.0, Duration::from_secs(20)).await;
    eprintln!("multi-view: {first0} -> {first1}; {second0} -> {second1}");
    let controls = browser
        .eval(
            page,
            "[...document.querySelectorAll('#players .player')].map((p) => ({ \
             video: p.querySelectorAll('video').length, \
             controls: ['button.unmute', 'select.quality', 'button.fullscreen', 'button.pip'] \
               .every((s) => p.querySelector(s)), \
             close: !!p.querySelector('button.close'), picker: !!p.querySelector('select.source-picker') }))",
        )
        .await;
    assert_eq!(
        controls,
        json!([
            {"video": 1, "controls": true, "close": false, "picker": false},
            {"video": 1, "controls": true, "close": true, "picker": true},
        ]),
        "each player's controls"
    );

    // Up to 4 players: then #add-player is disabled; closing one enables it.
    for count in [3, 4] {
        browser.click(page, "#add-player").await;
        browser
            .wait(
                page,
                &format!("{count} players"),
                &format!("({TILES}).length === {count}"),
                Duration::from_secs(5),
            )
            .await;
    }
    browser
        .wait(
            page,
            "#add-player is disabled at 4 players",
            "document.querySelector('#add-player').disabled",
            Duration::from_secs(5),
        )
        .await;
    browser
        .click(page, "#players .player:nth-child(4) button.close")
        .await;
    browser
        .wait(
            page,
            "3 players after closing one, #add-player enabled",
            &format!("({TILES}).length === 3 && !document.querySelector('#add-player').disabled"),
            Duration::from_secs(5),
        )
        .await;
    browser
        .assert_no_errors(page, "the watch page with several players", false)
        .await;
    browser.quit().await;
}

/// JavaScript: `#fallback` once it shows (no `hidden` attribute, visible)
/// with a visible `button.back-to-channel`: its texts, player 0's source
/// and the page's clock; else `null`.
fn fallback_shown_js() -> String {
    format!(
        "(() => {{ const el = document.querySelector('#fallback'); \
         const button = el && el.querySelector('button.back-to-channel'); \
         if (!el || el.hasAttribute('hidden') || !el.checkVisibility() || !button || !button.checkVisibility()) return null; \
         const tile = ({TILES})[0]; \
         return {{ text: el.textContent.replace(/\\s+/g, ' ').trim(), \
           button: button.textContent.replace(/\\s+/g, ' ').trim(), \
           source: tile ? tile.source : null, at: performance.now() }}; }})()"
    )
}

/// JavaScript: player 0 shows `source` again and `#fallback` is hidden:
/// the page's clock; else `null`.
fn back_on_js(source: &str) -> String {
    format!(
        "(() => {{ const tile = ({TILES})[0]; const el = document.querySelector('#fallback'); \
         return tile && tile.source === {} && el && el.hasAttribute('hidden') && !el.checkVisibility() \
         ? {{ at: performance.now(), tile }} : null; }})()",
        js(source)
    )
}

/// The upstream URL of a `/proxy` or `/relay` URL of the service at `base`
/// (`<base>/<kind>/<b64url(url)>.<sig>[.<src>]/<name>`).
fn upstream_of(url: &str, base: &str) -> Option<String> {
    use base64::Engine as _;
    let rest = url.strip_prefix(base)?;
    let token = rest
        .strip_prefix("/proxy/")
        .or_else(|| rest.strip_prefix("/relay/"))?;
    let encoded = token.split(['.', '/']).next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chosen_stream_that_dies_falls_back_to_the_channel() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let feeds = [&ALPHA, &BRAVO, &CHARLIE];
    let mut sources = start_sources(&feeds).await;
    let service = TestService::start(&extractors(&feeds, &sources)).await;
    extract(&service, 3).await;
    let mut ids = Vec::new();
    for feed in feeds {
        ids.push(stream_id(&service, feed.site_key).await);
    }
    let default = default_channel(&service).await;
    let channel = format!("channel:{default}");
    let (_, channels) = service.get_json("/channels").await;
    let title = channels["channels"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["slug"] == default.as_str()))
        .and_then(|c| c["title"].as_str())
        .unwrap_or_else(|| panic!("the default channel's title: {channels}"))
        .to_owned();

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    browser.goto(page, &service.url("/watch")).await;
    wait_playing(&mut browser, page, 0, &channel, 2.0, Duration::from_secs(20)).await;
    let playing = channel_source(&service, &default)
        .await
        .expect("the channel has a source");
    // The two streams the channel does not play: the first dies and the
    // user goes back at once; the second dies and the page goes back by
    // itself after its countdown (5 s).
    let doomed: Vec<usize> = (0..feeds.len()).filter(|&i| ids[i] != playing).collect();
    assert_eq!(doomed.len(), 2, "the channel plays one of {ids:?}: {playing}");

    for (round, &index) in doomed.iter().enumerate() {
        let by_click = round == 0;
        let (feed, id) = (feeds[index], ids[index]);
        let stream = format!("stream:{id}");
        let row = format!("#streams [data-stream-id=\"{id}\"]");
        browser
            .wait(
                page,
                &format!("#streams lists stream {id} with its play button"),
                &format!("document.querySelector({})", js(&format!("{row} button.play"))),
                Duration::from_secs(10),
            )
            .await;
        browser.click(page, &format!("{row} button.play")).await;
        wait_playing(&mut browser, page, 0, &stream, 2.0, Duration::from_secs(20)).await;

        let died = Instant::now();
        sources[index].die(Death::Stopped).await;
        let shown = browser
            .wait(
                page,
                &format!("#fallback shows with button.back-to-channel after {stream} died"),
                &fallback_shown_js(),
                Duration::from_secs(30),
            )
            .await;
        let shown_after = died.elapsed();
        assert_eq!(
            shown["source"],
            stream.as_str(),
            "the banner shows while the tile still shows the dead stream: {shown}"
        );
        let text = shown["text"].as_str().unwrap_or_default();
        assert!(
            text.contains(feed.title) && text.contains(&title),
            "the banner names the stream and the channel: {shown}"
        );
        assert!(
            shown["button"]
                .as_str()
                .is_some_and(|b| b.contains("Back to channel") && b.contains(&title)),
            "{shown}"
        );
        let shown_at = shown["at"].as_f64().expect("at");

        if by_click {
            browser.click(page, "#fallback button.back-to-channel").await;
        }
        // Clicked: back at once, well before the countdown's 5 s could have
        // done it. Else: back by the countdown, 5 s after the failure.
        let bound = Duration::from_secs(if by_click { 2 } else { 10 });
        let back = browser
            .wait(
                page,
                &format!(
                    "player 0 back on {channel} {}",
                    if by_click { "after the click" } else { "by itself" }
                ),
                &back_on_js(&channel),
                bound,
            )
            .await;
        let back_after_ms = back["at"].as_f64().expect("at") - shown_at;
        if !by_click {
            assert!(
                back_after_ms >= 3000.0,
                "the page went back {back_after_ms:.0} ms after showing the banner, before its countdown"
            );
        }
        let (_, after) = wait_playing(&mut browser, page, 0, &channel, 2.0, Duration::from_secs(20)).await;
        eprintln!(
            "{stream} ({}) died; #fallback shown {:.1} s later: {shown}; back on {channel} {:.1} s after \
             the banner ({}); playing again: {after}",
            feed.title,
            shown_after.as_secs_f64(),
            back_after_ms / 1000.0,
            if by_click { "clicked" } else { "automatic" }
        );
    }
    assert_eq!(
        channel_source(&service, &default).await,
        Some(playing),
        "the channel kept its source"
    );

    // The dead streams' failed requests (their playlist and segments
    // through /proxy and /relay) log "Failed to load resource" (502 and
    // such); nothing else may log an error.
    let dead: Vec<String> = doomed.iter().map(|&i| sources[i].server.url("/")).collect();
    let log = browser.log(page).await;
    let page_errors = log["pageErrors"].as_array().cloned().unwrap_or_default();
    assert!(page_errors.is_empty(), "uncaught errors: {page_errors:#?}");
    let (allowed, other): (Vec<Value>, Vec<Value>) = log["consoleErrors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .partition(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Failed to load resource"))
                && m["location"]["url"]
                    .as_str()
                    .and_then(|url| upstream_of(url, &service.base))
                    .is_some_and(|upstream| dead.iter().any(|d| upstream.starts_with(d.as_str())))
        });
    eprintln!(
        "failed requests logged: {:#?}",
        allowed
            .iter()
            .map(|m| format!("{} {}", m["text"], m["location"]["url"]))
            .collect::<Vec<_>>()
    );
    assert!(other.is_empty(), "console errors: {other:#?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calendar_shows_the_live_session_and_a_ticking_countdown() {
    if !have_browser() {
        eprintln!("skipped: node, tests/browser/node_modules or Chromium missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let origin = FakeOrigin::start().await;
    let (calendar, race) = live_race_calendar();
    origin.route(CALENDAR_PATH, Reply::bytes(calendar));
    let dir = tempfile::tempdir().expect("temp dir");
    let service = service_with_calendar(dir.path(), &origin.url(CALENDAR_PATH), "").await;
    let (_, schedule) = service.get_json("/schedule").await;
    assert_eq!(schedule["live_session"]["type"], "race", "{schedule}");

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    browser.goto(page, &service.url("/calendar")).await;
    assert_eq!(
        browser.eval(page, &attribute_js("main#view", "data-view")).await,
        "calendar"
    );
    let live = browser
        .wait(
            page,
            "a live session with its time and a watch link",
            "(() => { const s = document.querySelector('.session[data-state=\"live\"]'); \
             const time = s && s.querySelector('time[datetime]'); const a = s && s.querySelector('a.watch'); \
             return time && a ? { datetime: time.getAttribute('datetime'), href: a.getAttribute('href'), \
             text: s.textContent.replace(/\\s+/g, ' ').trim() } : null; })()",
            Duration::from_secs(10),
        )
        .await;
    let start = browser
        .eval(
            page,
            &format!(
                "Date.parse({})",
                js(live["datetime"].as_str().unwrap_or_default())
            ),
        )
        .await;
    assert_eq!(
        start.as_i64(),
        Some(race.timestamp_millis()),
        "the live session's time is the race's start: {live}"
    );
    assert!(
        live["href"].as_str().is_some_and(|h| h.contains("watch")),
        "{live}"
    );
    let states = browser
        .eval(
            page,
            "[...document.querySelectorAll('.session')].map((s) => [s.getAttribute('data-state'), \
             !!s.querySelector('time[datetime]')])",
        )
        .await;
    for state in ["past", "live", "upcoming"] {
        assert!(
            states
                .as_array()
                .expect("sessions")
                .iter()
                .any(|s| s[0] == state && s[1] == true),
            "a {state} session with its time: {states}"
        );
    }
    let countdown = browser
        .wait(
            page,
            "#countdown shows something",
            &format!(
                "(() => {{ const t = {}; return t ? t : null; }})()",
                text_js("#countdown")
            ),
            Duration::from_secs(5),
        )
        .await;
    let ticked = browser
        .wait(
            page,
            "#countdown changes within 2 s",
            &format!(
                "(() => {{ const t = {}; return t && t !== {} ? t : null; }})()",
                text_js("#countdown"),
                countdown
            ),
            Duration::from_secs(2),
        )
        .await;
    eprintln!("live session: {live}\ncountdown: {countdown} -> {ticked}");
    browser.assert_no_errors(page, "the calendar", true).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_an_extractor_down_after_its_source_fails() {
    if !have_browser() {
        eprintln!("skipped: node, tests/browser/node_modules or Chromium missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let origin = FakeOrigin::start().await;
    origin.route("/good/live.m3u8", Reply::playlist(MEDIA_LIVE));
    let good = "[[extractors]]\nsite_key = \"good\"\nsite_name = \"Good site\"\nkind = \"static\"\n\
                streams = [{ url = \"URL\", title = \"Good feed\" }]\n"
        .replace("URL", &origin.url("/good/live.m3u8"));
    let service = TestService::start(&format!("{good}{}", broken_extractor(&origin))).await;
    extract(&service, 1).await;
    let (_, extractors) = service.get_json("/extractors").await;
    eprintln!("GET /extractors: {extractors}");

    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    browser.goto(page, &service.url("/status")).await;
    assert_eq!(
        browser.eval(page, &attribute_js("main#view", "data-view")).await,
        "status"
    );
    let rows = browser
        .wait(
            page,
            "#extractors: broken down, good up",
            "(() => { const down = document.querySelector('#extractors [data-site-key=\"broken\"][data-up=\"false\"]'); \
             const up = document.querySelector('#extractors [data-site-key=\"good\"][data-up=\"true\"]'); \
             return down && up ? [down.textContent.replace(/\\s+/g, ' ').trim(), \
             up.textContent.replace(/\\s+/g, ' ').trim()] : null; })()",
            Duration::from_secs(10),
        )
        .await;
    let parts = browser
        .wait(
            page,
            "the runs, events and history",
            "(() => { const runs = document.querySelector('#runs'); \
             const rows = runs ? [...runs.querySelectorAll('tr, li')].filter((r) => !r.closest('thead') \
               && !r.classList.contains('empty') && !r.querySelector('th')) : []; \
             const history = document.querySelector('#history'); \
             const select = document.querySelector('#history select#history-stream, select#history-stream'); \
             return rows.length >= 1 && document.querySelector('#events') && history \
               && history.querySelector('svg') && select && select.options.length >= 1 \
               ? { runs: rows.length, options: [...select.options].map((o) => o.textContent) } : null; })()",
            Duration::from_secs(10),
        )
        .await;
    eprintln!("extractor rows: {rows}\nruns and history: {parts}");
    browser.assert_no_errors(page, "the status page", true).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_root_answers_json_to_scripts_and_the_page_to_browsers() {
    let service = TestService::start("").await;
    let client = reqwest::Client::new();
    for accept in [Some("application/json"), None] {
        let mut request = client.get(service.url("/"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("GET /");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "Accept {accept:?}: {content_type}"
        );
        let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(body["service"], "f1-stream", "{body}");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{body}");
    }

    if !have_browser() {
        eprintln!("skipped the browser half: node, tests/browser/node_modules or Chromium missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    let navigation = browser.goto(page, &service.url("/")).await;
    assert_eq!(navigation["status"], 200, "{navigation}");
    assert!(
        navigation["contentType"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/html")),
        "a browser gets the page: {navigation}"
    );
    assert_eq!(
        browser.eval(page, &attribute_js("main#view", "data-view")).await,
        "watch"
    );
    browser
        .wait(
            page,
            "the page's players",
            "document.querySelector('#players')",
            Duration::from_secs(10),
        )
        .await;
    browser.assert_no_errors(page, "the page at /", false).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_view_says_when_it_has_nothing_to_show() {
    if !have_browser() {
        eprintln!("skipped: node, tests/browser/node_modules or Chromium missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    // No extractor, no calendar, no run.
    let service = TestService::start("").await;
    let mut browser = Browser::launch().await;
    let page = browser.open(1280, 800).await;
    // The view's own parts (so a view that failed to load, leaving only a
    // message, does not count), then a visible empty state with text that
    // is not a "Loading…" placeholder.
    for (view, parts) in [
        ("watch", "['#players', '#streams']"),
        ("calendar", "[]"),
        ("status", "['#extractors', '#runs', '#events', '#history']"),
    ] {
        browser.goto(page, &service.url(&format!("/{view}"))).await;
        let empty = browser
            .wait(
                page,
                &format!("/{view} shows an empty state"),
                &format!(
                    "(() => {{ const main = document.querySelector('main#view'); \
                     const mounted = {parts}.every((s) => main.querySelector(s)) \
                       && [...main.children].some((c) => !c.classList.contains('empty')); \
                     const texts = [...main.querySelectorAll('.empty')] \
                       .filter((e) => e.checkVisibility()) \
                       .map((e) => e.textContent.replace(/\\s+/g, ' ').trim()) \
                       .filter((t) => t && !/^loading/i.test(t)); \
                     return mounted && texts.length ? texts : null; }})()"
                ),
                Duration::from_secs(10),
            )
            .await;
        eprintln!("/{view}: {empty}");
    }
    browser
        .assert_no_errors(page, "the views of an empty service", false)
        .await;
    browser.quit().await;
}

/// Prints `line` on stderr past the test harness's capture, so CI logs
/// (plain `cargo test`) show it even when the test passes.
fn uncaptured(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Where the screenshots go: `SCREENSHOT_DIR`, else `target/screenshots`.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"))
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshots_of_every_view_on_a_phone_and_a_desktop() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let sources = start_sources(&[&ALPHA]).await;
    let origin = FakeOrigin::start().await;
    let (calendar, _) = live_race_calendar();
    origin.route(CALENDAR_PATH, Reply::bytes(calendar));
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!("{}{}", extractors(&[&ALPHA], &sources), broken_extractor(&origin));
    let service = service_with_calendar(dir.path(), &origin.url(CALENDAR_PATH), &extra).await;
    extract(&service, 1).await;
    let default = default_channel(&service).await;

    let folder = screenshot_dir();
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    let mut browser = Browser::launch().await;
    let ready = [
        (
            "watch",
            format!(
                "(() => {{ const s = ({TILES})[0]; return s && s.source === {} && s.t > 2 && !s.paused \
                 && document.querySelector('#streams [data-stream-id]'); }})()",
                js(&format!("channel:{default}"))
            ),
        ),
        (
            "calendar",
            format!(
                "document.querySelector('.session[data-state=\"live\"]') && {}",
                text_js("#countdown")
            ),
        ),
        (
            "status",
            "document.querySelectorAll('#extractors [data-site-key]').length >= 2 \
             && document.querySelector('#history svg')"
                .to_owned(),
        ),
    ];
    let mut written = Vec::new();
    for (width, height) in [(390, 844), (1440, 900)] {
        let page = browser.open(width, height).await;
        for (view, ready) in &ready {
            browser.goto(page, &service.url(&format!("/{view}"))).await;
            browser
                .wait(
                    page,
                    &format!("/{view} at {width}x{height} is ready"),
                    ready,
                    Duration::from_secs(20),
                )
                .await;
            // Let fonts, layout and the first poll settle.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let path = folder.join(format!("{view}-{width}x{height}.png"));
            browser.screenshot(page, &path).await;
            let overflow = browser
                .eval(
                    page,
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth",
                )
                .await;
            assert!(
                overflow.as_f64().is_some_and(|px| px <= 0.0),
                "/{view} at {width}x{height} scrolls sideways by {overflow} px (see {})",
                path.display()
            );
            written.push(path);
        }
        browser
            .assert_no_errors(page, &format!("the views at {width}x{height}"), false)
            .await;
        browser.close_page(page).await;
    }
    browser.quit().await;
    for path in &written {
        let bytes = std::fs::read(path).expect("screenshot written");
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 2000,
            "{} is a PNG",
            path.display()
        );
    }
    uncaptured(&format!("screenshots in {}", folder.display()));
}

#[tokio::test(flavor = "multi_thread")]
async fn first_frame_time_and_page_weight_without_hls_js() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let sources = start_sources(&[&ALPHA]).await;
    let service = TestService::start(&extractors(&[&ALPHA], &sources)).await;
    extract(&service, 1).await;
    let default = default_channel(&service).await;
    // A service in use: the channel has played before.
    let warm = reqwest::get(service.url(&format!("/channels/{default}.m3u8")))
        .await
        .expect("the channel answers");
    assert_eq!(warm.status(), 200);

    let mut browser = Browser::launch().await;
    let mut first_frames = Vec::new();
    let mut weights = Vec::new();
    let mut counted = Vec::new();
    for _ in 0..5 {
        let page = browser.open(1280, 800).await;
        browser.goto(page, &service.url("/watch")).await;
        let record = browser
            .wait(
                page,
                "a first video frame",
                "(() => { const r = window.__watchTest; \
                 return r.firstFrame || r.firstTimeupdate !== null \
                 ? { firstFrame: r.firstFrame, firstTimeupdate: r.firstTimeupdate } : null; })()",
                Duration::from_secs(20),
            )
            .await;
        let at = record["firstFrame"]["at"]
            .as_f64()
            .or_else(|| record["firstTimeupdate"].as_f64())
            .expect("a first frame time");
        first_frames.push(at);
        let requests = browser.network(page).await;
        let mut bytes = 0;
        let mut files = Vec::new();
        for request in &requests {
            let Some(path) = request["url"]
                .as_str()
                .and_then(|u| u.strip_prefix(&service.base))
            else {
                continue;
            };
            let own_type = matches!(
                request["resourceType"].as_str(),
                Some("document" | "stylesheet" | "script" | "image" | "font" | "manifest")
            );
            let vendored = path.starts_with("/assets/vendor/hls.js-");
            if vendored || !(own_type || path.starts_with("/assets/")) {
                continue;
            }
            let size = request["bodySize"]
                .as_u64()
                .filter(|&n| n > 0)
                .or_else(|| request["contentLength"].as_u64())
                .unwrap_or(0);
            bytes += size;
            files.push(format!(
                "{path} {size} B {}",
                request["contentEncoding"].as_str().unwrap_or("identity")
            ));
        }
        assert!(
            files.iter().any(|f| f.starts_with("/watch ")),
            "the document is counted: {requests:#?}"
        );
        weights.push(bytes);
        counted = files;
        browser.assert_no_errors(page, "a fresh load", true).await;
        browser.close_page(page).await;
    }
    browser.quit().await;

    let mut sorted = first_frames.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let page_bytes = weights.iter().copied().max().unwrap_or(0);
    eprintln!("counted files: {counted:#?}\nweights of the 5 loads: {weights:?}");
    uncaptured(
        &json!({
            "first_frame_ms_median": median.round(),
            "first_frame_ms": first_frames.iter().map(|ms| ms.round()).collect::<Vec<_>>(),
            "page_bytes_without_hlsjs": page_bytes,
        })
        .to_string(),
    );
    assert!(
        median < FIRST_FRAME_MEDIAN_BOUND_MS,
        "first frame median {median:.0} ms: {first_frames:?}"
    );
    assert!(
        page_bytes > 0 && page_bytes < PAGE_BYTES_BOUND,
        "the page without hls.js weighs {page_bytes} bytes: {counted:#?}"
    );
}
