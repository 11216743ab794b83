//! Live HLS sources for the real-player tests (tests/channel_players.rs,
//! tests/watch_page.rs): ffmpeg encoding a test pattern in real time into a
//! temp folder, served by a file server on 127.0.0.1 that the test can make
//! answer 404 or stop; how such a source dies; and the checks for the tools
//! these tests need (`.ci/run` installs them, so under CI a missing one
//! fails the test instead of skipping it).
//!
//! Included with `#[path = "common/live.rs"] mod live;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Frames per second of every encode.
pub const FPS: u32 = 25;
/// Where Debian's Chromium is (`.ci/run` installs it there).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether `program args` runs. CI installs every tool these tests use
/// (`.ci/run`), so there a missing one is a failure, not a skip.
pub fn have(program: &str, args: &[&str]) -> bool {
    let found = std::process::Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "CI must have `{program}` installed (see .ci/run)"
    );
    found
}

pub fn have_ffmpeg() -> bool {
    have("ffmpeg", &["-version"])
}

/// The folder of the test-only npm package (player page and script).
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// A request a [`FileServer`] received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
}

struct ServerState {
    root: PathBuf,
    /// Playlists are served without their keys' `IV` attributes.
    strip_iv: bool,
    gone: AtomicBool,
    /// Segments (`.ts`) answer 404; playlists and keys are served.
    segments_gone: AtomicBool,
    hits: Mutex<Vec<Hit>>,
}

/// Serves the files of a folder (which may change under it) over http on
/// 127.0.0.1; can be made to answer 404 to everything, or stopped.
pub struct FileServer {
    pub addr: std::net::SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start(root: &Path, strip_iv: bool) -> Self {
        let state = Arc::new(ServerState {
            root: root.to_owned(),
            strip_iv,
            gone: AtomicBool::new(false),
            segments_gone: AtomicBool::new(false),
            hits: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .fallback(serve_file)
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("file server");
        });
        Self { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers 404 to everything (`true`) or serves the folder.
    pub fn set_gone(&self, gone: bool) {
        self.state.gone.store(gone, Ordering::Release);
    }

    /// Stops accepting connections; connections already open (kept alive
    /// by a client) get 404 from now on.
    pub fn stop(&self) {
        self.set_gone(true);
        self.task.abort();
    }

    /// Requests for segments (`.ts`) received after `since`.
    pub fn segment_hits_since(&self, since: Instant) -> Vec<Hit> {
        self.state
            .hits
            .lock()
            .expect("hits")
            .iter()
            .filter(|hit| hit.at >= since && hit.path.ends_with(".ts"))
            .cloned()
            .collect()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_file(State(state): State<Arc<ServerState>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    state.hits.lock().expect("hits").push(Hit {
        at: Instant::now(),
        path: path.clone(),
    });
    let relative = path.trim_start_matches('/');
    let safe = !relative.is_empty()
        && relative
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    let segments_gone = state.segments_gone.load(Ordering::Acquire) && relative.ends_with(".ts");
    if state.gone.load(Ordering::Acquire) || segments_gone || !safe {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(mut body) = tokio::fs::read(state.root.join(relative)).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let extension = relative.rsplit_once('.').map(|(_, ext)| ext);
    if state.strip_iv && extension == Some("m3u8") {
        let text = String::from_utf8(body).expect("a UTF-8 playlist");
        let iv = regex::Regex::new(",IV=0[xX][0-9a-fA-F]+").expect("regex");
        body = iv.replace_all(&text, "").into_owned().into_bytes();
    }
    let content_type = match extension {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// How a live encode looks.
pub struct Look {
    /// lavfi video source (`testsrc`, `smptebars`, ...).
    pub pattern: &'static str,
    /// Picture size, `WxH`.
    pub size: &'static str,
    /// Tone, Hz.
    pub tone: u32,
    /// AES-128 with the media sequence number as IV, left implicit (the
    /// encoder writes each segment's IV, `-hls_flags periodic_rekey`, and
    /// the file server removes them): a channel renumbers segments, so it
    /// must write the source's number as an explicit IV.
    pub encrypted: bool,
    /// Media sequence number of the first segment, so a source's numbers
    /// differ from the channel's.
    pub start_number: u32,
    /// Seconds added to every timestamp, so the two sources' clocks are
    /// unrelated as with two real encoders.
    pub ts_offset: u32,
}

/// A live HLS source: ffmpeg encoding in real time into a temp folder
/// (1 s segments, 6 listed), served by a [`FileServer`].
pub struct LiveSource {
    pub name: &'static str,
    pub dir: tempfile::TempDir,
    pub encoder: Child,
    pub server: FileServer,
}

impl LiveSource {
    pub async fn start(name: &'static str, look: &Look) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut encoder = Command::new("ffmpeg");
        encoder
            .current_dir(dir.path())
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(["-re", "-f", "lavfi", "-i"])
            .arg(format!("{}=size={}:rate={FPS}", look.pattern, look.size))
            .args(["-re", "-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={}:sample_rate=48000", look.tone))
            .args(["-map", "0:v", "-map", "1:a"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
            .args(["-pix_fmt", "yuv420p", "-b:v", "400k"])
            .args(["-g", &FPS.to_string(), "-keyint_min", &FPS.to_string()])
            .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"])
            .args(["-output_ts_offset", &look.ts_offset.to_string()])
            .args(["-f", "hls", "-hls_time", "1", "-hls_list_size", "6"])
            .args(["-start_number", &look.start_number.to_string()]);
        if look.encrypted {
            std::fs::write(dir.path().join("key.bin"), b"0123456789abcdef").expect("key");
            let info = format!("key.bin\n{}\n", dir.path().join("key.bin").display());
            std::fs::write(dir.path().join("keyinfo"), info).expect("key info");
            encoder.args(["-hls_key_info_file", "keyinfo", "-hls_flags", "periodic_rekey"]);
        }
        encoder
            .args(["-hls_segment_filename", "seg%05d.ts", "index.m3u8"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let encoder = encoder.spawn().expect("ffmpeg starts");
        let server = FileServer::start(dir.path(), look.encrypted).await;
        Self {
            name,
            dir,
            encoder,
            server,
        }
    }

    pub fn url(&self) -> String {
        self.server.url("/index.m3u8")
    }

    pub fn playlist(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("index.m3u8")).unwrap_or_default()
    }

    /// Waits until the encoder has listed `segments` segments.
    pub async fn wait_for_segments(&mut self, segments: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.playlist().matches("#EXTINF").count() < segments {
            if let Ok(Some(status)) = self.encoder.try_wait() {
                panic!("the encoder of {} exited: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} listed no {segments} segments in 20 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The source dies as `death` says.
    pub async fn die(&mut self, death: Death) {
        match death {
            Death::Stopped => {
                self.server.stop();
                self.encoder.kill().await.expect("kill the encoder");
            }
            Death::Frozen => self.encoder.kill().await.expect("kill the encoder"),
            Death::SegmentsLost => self.server.state.segments_gone.store(true, Ordering::Release),
            Death::Ended => {
                let pid = self.encoder.id().expect("the encoder runs");
                let signal = std::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .expect("kill runs");
                assert!(signal.success());
                let ended = tokio::time::timeout(Duration::from_secs(5), self.encoder.wait()).await;
                assert!(ended.is_ok(), "the encoder ends within 5 s of SIGINT");
                assert!(
                    self.playlist().contains("#EXT-X-ENDLIST"),
                    "the encoder ended its playlist:\n{}",
                    self.playlist()
                );
            }
        }
    }
}

/// How source A dies while the channel plays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Its encoder is killed and its server stops (connections refused).
    Stopped,
    /// Its encoder is killed (SIGKILL); its server goes on serving the
    /// last playlist, which no longer changes.
    Frozen,
    /// Its encoder is stopped (SIGINT) and ends the playlist
    /// (`#EXT-X-ENDLIST`), as when a broadcast ends.
    Ended,
    /// Its playlist goes on, but its segments answer 404 (a CDN that lost
    /// them): the player's failed relay requests make the channel switch.
    SegmentsLost,
}

impl Death {
    /// The switch reason the channel records.
    pub fn reason(self) -> &'static str {
        match self {
            Death::Stopped => "playlist_failed",
            Death::Frozen => "stale",
            Death::Ended => "ended",
            Death::SegmentsLost => "segments_failed",
        }
    }
}
