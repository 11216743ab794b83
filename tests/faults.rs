//! Upstream faults and hostile client input against the real service: each
//! test asserts the exact outcome of the fault and that nothing else was
//! affected (the other streams of the run, concurrent requests, the stored
//! data). Faults that an HTTP framework will not produce (a body trickling
//! at 1 byte/s, a TCP reset mid-body, a 100 MiB chunked playlist, 1 GiB
//! source documents) come from [`RawOrigin`], a scripted TCP server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{FakeOrigin, MEDIA_VOD, Reply, TestService, refused_url, rss_bytes, static_extractor};
use f1_stream::proxy::token::{self, Kind};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1024 * 1024;
/// A host name that never resolves (RFC 6761), for the DNS-failure rows.
const UNRESOLVABLE: &str = "http://stream.invalid/live.m3u8";

// --- a scripted TCP origin ----------------------------------------------------------

/// What a [`RawOrigin`] does with every request it receives.
#[derive(Clone)]
enum Script {
    /// 200 with a `Content-Length`, then the body one byte every `every`.
    Trickle { body: Bytes, every: Duration },
    /// 200 declaring four times `prefix`, sends `prefix`, then resets the
    /// connection (RST, not FIN).
    Reset { prefix: Bytes },
    /// 200 without a length (chunked): `head`, then `line` repeated until
    /// `total` bytes or until the client goes away.
    Chunked { head: Bytes, line: Bytes, total: u64 },
}

/// A TCP server on 127.0.0.1 that answers every request with its script and
/// counts the body bytes it managed to hand to the network.
struct RawOrigin {
    addr: std::net::SocketAddr,
    sent: Arc<AtomicU64>,
}

impl RawOrigin {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw origin");
        let addr = listener.local_addr().expect("address");
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_script(stream, script.clone(), Arc::clone(&counter)));
            }
        });
        Self { addr, sent }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

async fn serve_script(mut stream: TcpStream, script: Script, sent: Arc<AtomicU64>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = run_script(&mut stream, script, &sent).await;
}

async fn run_script(stream: &mut TcpStream, script: Script, sent: &AtomicU64) -> std::io::Result<()> {
    match script {
        Script::Trickle { body, every } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.apple.mpegurl\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            for byte in body.iter() {
                tokio::time::sleep(every).await;
                stream.write_all(&[*byte]).await?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            stream.shutdown().await
        }
        Script::Reset { prefix } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.apple.mpegurl\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                prefix.len() * 4
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&prefix).await?;
            sent.fetch_add(prefix.len() as u64, Ordering::Relaxed);
            stream.flush().await?;
            // Let the prefix reach the client before the reset discards it.
            tokio::time::sleep(Duration::from_millis(100)).await;
            stream.set_zero_linger()?;
            Ok(())
        }
        Script::Chunked {
            head: first,
            line,
            total,
        } => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.apple.mpegurl\r\n\
                      transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                )
                .await?;
            let mut chunk = first.to_vec();
            let mut written = 0u64;
            while written < total {
                while chunk.len() < 64 * 1024 {
                    chunk.extend_from_slice(&line);
                }
                let take = chunk.len().min((total - written) as usize);
                stream.write_all(format!("{take:x}\r\n").as_bytes()).await?;
                stream.write_all(&chunk[..take]).await?;
                stream.write_all(b"\r\n").await?;
                sent.fetch_add(take as u64, Ordering::Relaxed);
                written += take as u64;
                chunk.clear();
            }
            stream.write_all(b"0\r\n\r\n").await
        }
    }
}

// --- a gzip bomb --------------------------------------------------------------------

/// A gzip member that inflates to `len` zero bytes (one literal, then
/// back-references of 258 bytes at 13 bits each: ~159:1), built by hand so
/// the test needs no compression crate.
fn gzip_bomb(len: u64) -> Vec<u8> {
    assert!(len >= 1 && (len - 1).is_multiple_of(258), "1 + 258k bytes");
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(1, 2); // BTYPE = fixed Huffman
    bits.push_code(0x30, 8); // literal 0
    for _ in 0..(len - 1) / 258 {
        bits.push_code(0xC5, 8); // length 258 (code 285)
        bits.push_code(0, 5); // distance 1
    }
    bits.push_code(0, 7); // end of block
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&crc32_of_zeros(len).to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    current: u32,
    used: u32,
}

impl BitWriter {
    /// `count` bits of `value`, least significant first (DEFLATE fields).
    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.current |= ((value >> i) & 1) << self.used;
            self.used += 1;
            if self.used == 8 {
                self.bytes.push(self.current as u8);
                self.current = 0;
                self.used = 0;
            }
        }
    }

    /// A Huffman code, most significant bit first.
    fn push_code(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.push((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push(self.current as u8);
        }
        self.bytes
    }
}

/// CRC-32 (gzip) of `len` zero bytes in O(log len): the register update for
/// a zero byte is linear, so it is a 32×32 GF(2) matrix raised to `len`.
fn crc32_of_zeros(len: u64) -> u32 {
    fn times(matrix: &[u32; 32], mut vector: u32) -> u32 {
        let mut sum = 0;
        let mut row = 0;
        while vector != 0 {
            if vector & 1 != 0 {
                sum ^= matrix[row];
            }
            vector >>= 1;
            row += 1;
        }
        sum
    }
    fn square(matrix: &[u32; 32]) -> [u32; 32] {
        std::array::from_fn(|n| times(matrix, matrix[n]))
    }
    // One zero bit, then squared three times: one zero byte.
    let mut operator: [u32; 32] = std::array::from_fn(|n| if n == 0 { 0xedb8_8320 } else { 1 << (n - 1) });
    for _ in 0..3 {
        operator = square(&operator);
    }
    let mut register = 0xffff_ffff_u32;
    let mut remaining = len;
    while remaining > 0 {
        if remaining & 1 == 1 {
            register = times(&operator, register);
        }
        operator = square(&operator);
        remaining >>= 1;
    }
    register ^ 0xffff_ffff
}

#[test]
fn the_gzip_bomb_is_a_valid_gzip_member() {
    // Reference: CRC-32 of 4 zero bytes and of 1 MiB + 1 zero bytes, by the
    // bitwise definition.
    let slow = |len: usize| {
        let mut crc = 0xffff_ffff_u32;
        for _ in 0..len {
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc ^ 0xffff_ffff
    };
    assert_eq!(crc32_of_zeros(4), 0x2144_df1c);
    assert_eq!(crc32_of_zeros(258 * 4065 + 1), slow(258 * 4065 + 1));
    let bomb = gzip_bomb(1 + 258 * 4);
    assert_eq!(&bomb[..3], &[0x1f, 0x8b, 8]);
    // gzip(1) agrees when it is installed.
    if let Ok(mut child) = std::process::Command::new("gzip")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&gzip_bomb(1 + 258 * 100_000))
            .expect("write");
        let output = child.wait_with_output().expect("gzip runs");
        assert!(output.status.success());
        assert_eq!(output.stdout.len(), 1 + 258 * 100_000);
        assert!(output.stdout.iter().all(|&b| b == 0));
    }
}

/// 1 GiB of zeros (plus one byte), gzip-compressed to ~6.8 MB; built once.
fn one_gib_bomb() -> Bytes {
    static BOMB: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| Bytes::from(gzip_bomb(1 + 258 * 4_161_801)))
        .clone()
}

// --- helpers -------------------------------------------------------------------------

/// A healthy VOD playlist whose one segment the origin serves.
fn serve_healthy(origin: &FakeOrigin, path: &str) {
    origin.route(path, Reply::playlist(MEDIA_VOD));
    origin.route("/seg0.ts", Reply::bytes(vec![0x47u8; 188 * 20]));
}

fn by_url<'a>(list: &'a Value, url: &str) -> &'a Value {
    list["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["url"] == url)
        .unwrap_or_else(|| panic!("{url} listed in {list}"))
}

fn urls(list: &Value) -> Vec<String> {
    let mut urls: Vec<String> = list["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["url"].as_str().expect("url").to_owned())
        .collect();
    urls.sort();
    urls
}

/// Status and JSON body of a GET.
async fn get(service: &TestService, path: &str) -> (u16, Value) {
    let response = reqwest::get(service.url(path)).await.expect("service answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
    )
}

/// Invalid UTF-8 in a playlist title (RFC 8216 wants UTF-8; real ones lapse).
fn invalid_utf8_playlist() -> Vec<u8> {
    let mut playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,caf\xe9 \xff\xfe live\n".to_vec();
    playlist.extend_from_slice(b"seg0.ts\n#EXT-X-ENDLIST\n");
    playlist
}

// --- upstream faults: health checks in a run -----------------------------------------

/// The upstream faults both fault tests meet. On `origin` (127.0.0.1, the
/// address the guard exempts): a healthy playlist (`/ok.m3u8`), invalid
/// UTF-8 (`/utf8.m3u8`), a stall (`/silent.m3u8`), a 503 (`/down.m3u8`), a
/// redirect loop (`/loop.m3u8`), a redirect to the guarded `other`
/// (`/bounce.m3u8`) and a 1 GiB gzip bomb (`/bomb.m3u8`); origins that
/// trickle a byte a second, reset mid-body and stream 100 MiB chunked; and a
/// port that refuses connections.
struct FaultyOrigins {
    origin: FakeOrigin,
    other: FakeOrigin,
    trickle: RawOrigin,
    reset: RawOrigin,
    huge: RawOrigin,
    refused: String,
}

impl FaultyOrigins {
    async fn start() -> Self {
        let origin = FakeOrigin::start().await;
        let other = FakeOrigin::start_on("127.0.0.2").await;
        serve_healthy(&origin, "/ok.m3u8");
        origin.route("/utf8.m3u8", Reply::playlist(invalid_utf8_playlist()));
        origin.route("/silent.m3u8", Reply::stall(Bytes::new()));
        origin.route("/down.m3u8", Reply::status(503));
        origin.route("/loop.m3u8", Reply::redirect("/loop.m3u8"));
        other.route("/private.m3u8", Reply::playlist(MEDIA_VOD));
        origin.route("/bounce.m3u8", Reply::redirect(&other.url("/private.m3u8")));
        origin.route(
            "/bomb.m3u8",
            Reply::bytes(one_gib_bomb())
                .header("content-encoding", "gzip")
                .header("content-type", "application/vnd.apple.mpegurl"),
        );
        let trickle = RawOrigin::start(Script::Trickle {
            body: Bytes::from_static(MEDIA_VOD.as_bytes()),
            every: Duration::from_secs(1),
        })
        .await;
        let reset = RawOrigin::start(Script::Reset {
            prefix: Bytes::from_static(b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n"),
        })
        .await;
        let huge = RawOrigin::start(Script::Chunked {
            head: Bytes::from_static(b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n"),
            line: Bytes::from_static(b"#EXTINF:6.0,\nseg0.ts\n"),
            total: 100 * MIB,
        })
        .await;
        Self {
            origin,
            other,
            trickle,
            reset,
            huge,
            refused: refused_url().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_upstream_fault_in_a_run_costs_only_its_own_stream() {
    let FaultyOrigins {
        origin,
        other,
        trickle,
        reset,
        huge,
        refused,
    } = FaultyOrigins::start().await;
    origin.route(
        "/slow.m3u8",
        Reply::playlist(MEDIA_VOD).delay(Duration::from_secs(30)),
    );
    // (url, expected error_kind; None = healthy)
    let expected: Vec<(String, Option<&str>)> = vec![
        (origin.url("/ok.m3u8"), None),
        (origin.url("/utf8.m3u8"), None),
        (refused, Some("connect")),
        (UNRESOLVABLE.to_owned(), Some("dns")),
        (origin.url("/slow.m3u8"), Some("timeout")),
        (origin.url("/silent.m3u8"), Some("timeout")),
        (trickle.url("/trickle.m3u8"), Some("timeout")),
        (reset.url("/reset.m3u8"), Some("other")),
        (origin.url("/down.m3u8"), Some("http_status")),
        (origin.url("/loop.m3u8"), Some("other")),
        (origin.url("/bounce.m3u8"), Some("blocked")),
        (huge.url("/huge.m3u8"), Some("too_large")),
        (origin.url("/bomb.m3u8"), Some("not_hls")),
    ];
    let urls_only: Vec<String> = expected.iter().map(|(url, _)| url.clone()).collect();
    // The guard is on: only the origin's own address is exempt.
    let service =
        TestService::start_guarded(&["127.0.0.1/32"], &static_extractor("faults", &urls_only, "")).await;

    let started = Instant::now();
    let run = tokio::spawn({
        let url = service.url("/extract");
        async move { reqwest::Client::new().post(url).send().await }
    });
    // While the slow checks hang, the API answers at once.
    common::wait_until("the slow check starts", Duration::from_secs(10), || {
        !origin.requests_to("/slow.m3u8").is_empty()
    })
    .await;
    let (status, _) = get(&service, "/streams/all").await;
    assert_eq!(status, 200);
    // An API blocked by the run would answer only once the run is stored.
    // The slow check alone keeps it from being stored for 4 s after the
    // origin saw its request (its 2 s timeout, then the retry at the end of
    // the run), so this holds however loaded the machine is.
    assert_eq!(
        service.count("extraction_runs").await,
        0,
        "API blocked by a run: it answered only after the run was stored"
    );
    let response = run.await.expect("task").expect("answers");
    assert_eq!(response.status(), 200);
    let elapsed = started.elapsed();
    // One at a time, the three checks that time out (slow, silent, trickle)
    // would take 3 × (2 s + 2 s retry) = 12 s, and without the timeout the
    // slow one alone 30 s; the concurrent run takes about 4 s.
    assert!(
        elapsed < Duration::from_secs(12),
        "checks run concurrently and stop at the 2 s timeout: {elapsed:?}"
    );
    eprintln!("run with every fault stored after {elapsed:?}");

    let (_, all) = get(&service, "/streams/all").await;
    let mut report = Vec::new();
    for (url, kind) in &expected {
        let stream = by_url(&all, url);
        report.push(format!("{url} -> {} {}", stream["error_kind"], stream["error"]));
        match kind {
            None => assert_eq!(stream["is_live"], true, "{url}: {stream}"),
            Some(kind) => {
                assert_eq!(stream["is_live"], false, "{url}: {stream}");
                assert_eq!(stream["error_kind"], *kind, "{url}: {stream}");
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    let (_, served) = get(&service, "/streams").await;
    let mut healthy = vec![origin.url("/ok.m3u8"), origin.url("/utf8.m3u8")];
    healthy.sort();
    assert_eq!(urls(&served), healthy, "only the healthy streams are served");
    assert_eq!(service.count("extraction_runs").await, 1);
    assert_eq!(service.count("health_checks").await, expected.len() as i64);
    let (_, extractors) = get(&service, "/extractors").await;
    assert_eq!(extractors["extractors"][0]["last_error"], Value::Null);
    assert!(
        other.requests_to("/private.m3u8").is_empty(),
        "the guard stopped the redirect"
    );
    assert!(
        huge.sent() < 16 * MIB,
        "the 100 MiB playlist was read only to the cap: {} bytes",
        huge.sent()
    );
    assert!(
        origin.bytes_sent() < 16 * MIB,
        "the bomb was not read beyond the cap: {}",
        origin.bytes_sent()
    );
}

// --- upstream faults: the proxy and the relay ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_upstream_fault_on_proxy_and_relay_gets_its_exact_status_while_other_requests_flow() {
    let FaultyOrigins {
        origin,
        other,
        trickle,
        reset,
        huge,
        refused,
    } = FaultyOrigins::start().await;
    origin.route("/seg.ts", Reply::bytes(vec![0x47u8; 188 * 1000]));
    origin.route("/down.ts", Reply::status(500));
    origin.route("/sized.m3u8", Reply::sized(100 * MIB));
    // The timing-out cases wait 10 s: healthy traffic held up behind them
    // would take that long, far beyond the bound below.
    let service = TestService::start_guarded(
        &["127.0.0.1/32"],
        "[proxy]\nplaylist_timeout_secs = 10\nrelay_first_byte_timeout_secs = 10\n",
    )
    .await;
    let signer = service.app.signer();
    let failed = "upstream request failed: ";
    let cases: Vec<(Kind, String, u16, &str)> = vec![
        (Kind::Proxy, refused.clone(), 502, failed),
        (Kind::Relay, refused.replace(".m3u8", ".ts"), 502, failed),
        (Kind::Proxy, UNRESOLVABLE.to_owned(), 502, failed),
        (Kind::Relay, UNRESOLVABLE.replace(".m3u8", ".ts"), 502, failed),
        (Kind::Proxy, origin.url("/silent.m3u8"), 504, "upstream timed out"),
        (
            Kind::Proxy,
            trickle.url("/trickle.m3u8"),
            504,
            "upstream timed out",
        ),
        (Kind::Proxy, reset.url("/reset.m3u8"), 502, failed),
        (
            Kind::Proxy,
            origin.url("/down.m3u8"),
            502,
            "upstream answered HTTP 503",
        ),
        (
            Kind::Relay,
            origin.url("/down.ts"),
            502,
            "upstream answered HTTP 500",
        ),
        (
            Kind::Proxy,
            origin.url("/loop.m3u8"),
            502,
            "upstream request failed: more than 5 redirects",
        ),
        (
            Kind::Relay,
            origin.url("/loop.m3u8"),
            502,
            "upstream request failed: more than 5 redirects",
        ),
        (
            Kind::Proxy,
            origin.url("/bounce.m3u8"),
            403,
            "upstream address is not allowed",
        ),
        (
            Kind::Relay,
            origin.url("/bounce.m3u8"),
            403,
            "upstream address is not allowed",
        ),
        (
            Kind::Proxy,
            huge.url("/huge.m3u8"),
            502,
            "upstream playlist exceeds 4194304 bytes",
        ),
        (
            Kind::Proxy,
            origin.url("/sized.m3u8"),
            502,
            "upstream playlist exceeds 4194304 bytes",
        ),
        (
            Kind::Proxy,
            origin.url("/bomb.m3u8"),
            502,
            "upstream playlist exceeds 4194304 bytes",
        ),
    ];
    let client = reqwest::Client::new();
    let faults = futures::future::join_all(cases.iter().map(|(kind, url, _, _)| {
        let request = client.get(service.url(&signer.path(*kind, url, None))).send();
        async move {
            let response = request.await.expect("answers");
            let status = response.status().as_u16();
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            (status, body)
        }
    }));
    // Healthy traffic alongside the faults, repeatedly, never slowed down.
    let healthy = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let started = Instant::now();
            let playlist = client
                .get(service.url(&signer.path(Kind::Proxy, &origin.url("/ok.m3u8"), None)))
                .send()
                .await
                .expect("answers");
            assert_eq!(playlist.status(), 200);
            playlist.text().await.expect("playlist");
            let segment = client
                .get(service.url(&signer.path(Kind::Relay, &origin.url("/seg.ts"), None)))
                .send()
                .await
                .expect("answers");
            assert_eq!(segment.status(), 200);
            assert_eq!(segment.bytes().await.expect("segment").len(), 188 * 1000);
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest
    };
    let (results, slowest) = tokio::join!(faults, healthy);
    // Half the faults' 10 s timeout: a healthy request that waited for a
    // fault would take the whole timeout; a free one takes milliseconds.
    assert!(
        slowest < Duration::from_secs(5),
        "healthy requests held up: {slowest:?}"
    );
    for ((kind, url, status, message), (got_status, body)) in cases.iter().zip(&results) {
        assert_eq!(got_status, status, "{kind:?} {url}: {body}");
        let error = body["error"].as_str().expect("JSON error");
        assert!(error.starts_with(message), "{kind:?} {url}: {error:?}");
        assert!(
            !error.contains(url.as_str()),
            "errors never echo the upstream URL: {error}"
        );
    }
    assert!(other.requests_to("/private.m3u8").is_empty());
    assert!(huge.sent() < 16 * MIB, "stopped at the cap: {}", huge.sent());
    eprintln!(
        "proxy: the 100 MiB chunked playlist was read for {:.1} MiB; slowest healthy round trip {slowest:?}",
        huge.sent() as f64 / MIB as f64
    );

    // Invalid UTF-8 is replaced (U+FFFD), and the playlist still plays.
    let response = client
        .get(service.url(&signer.path(Kind::Proxy, &origin.url("/utf8.m3u8"), None)))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("UTF-8 text");
    assert!(
        text.contains("#EXTINF:6.0,caf\u{fffd} \u{fffd}\u{fffd} live\n"),
        "{text}"
    );
    let segment = text
        .lines()
        .find(|l| l.contains("/relay/"))
        .expect("rewritten segment");
    let relayed = client.get(segment).send().await.expect("answers");
    assert_eq!(relayed.status(), 200);
    assert_eq!(relayed.bytes().await.expect("body").len(), 188 * 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_reset_mid_body_aborts_the_response_after_the_bytes_already_sent() {
    let prefix = Bytes::from(vec![0x47u8; 64 * 1024]);
    let reset = RawOrigin::start(Script::Reset {
        prefix: prefix.clone(),
    })
    .await;
    let origin = FakeOrigin::start().await;
    origin.route("/fine.ts", Reply::bytes(vec![1u8; 500_000]));
    let service = TestService::start("").await;
    let signer = service.app.signer();
    let response = reqwest::get(service.url(&signer.path(Kind::Relay, &reset.url("/seg.ts"), None)))
        .await
        .expect("head arrives");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        (prefix.len() * 4).to_string().as_str()
    );
    let mut body = response.bytes_stream();
    let mut received = 0;
    let error = loop {
        match body.next().await {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(e)) => break Some(e),
            None => break None,
        }
    };
    assert!(error.is_some(), "a reset must not look like a complete body");
    assert_eq!(received, prefix.len(), "everything before the reset was relayed");
    // Other relays are untouched.
    let fine = reqwest::get(service.url(&signer.path(Kind::Relay, &origin.url("/fine.ts"), None)))
        .await
        .expect("answers");
    assert_eq!(fine.bytes().await.expect("complete").len(), 500_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_trickling_1_byte_per_second_streams_each_byte_as_it_comes_and_holds_up_nothing() {
    let body = Bytes::from_static(b"\x47\x40\x00\x10");
    let trickle = RawOrigin::start(Script::Trickle {
        body: body.clone(),
        every: Duration::from_secs(1),
    })
    .await;
    let origin = FakeOrigin::start().await;
    origin.route("/fine.ts", Reply::bytes(vec![1u8; 1_000_000]));
    // Idle timeout above the trickle's 1 s gap: slow but alive is relayed.
    let service = TestService::start("[proxy]\nrelay_idle_timeout_secs = 3\n").await;
    let signer = service.app.signer();
    let started = Instant::now();
    let response = reqwest::get(service.url(&signer.path(Kind::Relay, &trickle.url("/slow.ts"), None)))
        .await
        .expect("head arrives");
    assert_eq!(response.status(), 200);
    let origin_sent = Arc::clone(&trickle.sent);
    let reader = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        // (bytes received so far, bytes the origin had sent by then, time)
        let mut arrivals = Vec::new();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.expect("a trickle is not an error");
            bytes.extend_from_slice(&chunk);
            arrivals.push((
                bytes.len(),
                origin_sent.load(Ordering::Relaxed),
                started.elapsed(),
            ));
        }
        (bytes, arrivals)
    });
    // Meanwhile, other relays go at full speed: all five are done while the
    // trickle (a byte a second, 4 s at least) is still going.
    for _ in 0..5 {
        let fine = reqwest::get(service.url(&signer.path(Kind::Relay, &origin.url("/fine.ts"), None)))
            .await
            .expect("answers");
        assert_eq!(fine.bytes().await.expect("complete").len(), 1_000_000);
    }
    assert!(
        !reader.is_finished(),
        "other relays waited for the trickle to end"
    );
    let (bytes, arrivals) = reader.await.expect("reader");
    eprintln!("trickle arrivals (bytes so far, origin had sent, time): {arrivals:?}");
    assert_eq!(bytes, body);
    let (_, sent_by_first, _) = arrivals[0];
    assert!(
        sent_by_first < body.len() as u64,
        "the first byte is relayed when it arrives, before the origin has sent the rest: {arrivals:?}"
    );
    // Four bytes, each sent after a 1 s pause: the last leaves the origin
    // 4 s after the request (3.8 s allows for timer rounding; load only
    // delays it further).
    let (_, _, last) = *arrivals.last().expect("bytes");
    assert!(last >= Duration::from_millis(3800), "{arrivals:?}");
    assert!(arrivals.len() >= 3, "bytes flowed one by one: {arrivals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gzip_bomb_is_relayed_as_opaque_bytes_and_never_inflated() {
    let bomb = one_gib_bomb();
    let origin = FakeOrigin::start().await;
    origin.route(
        "/bomb.ts",
        Reply::bytes(bomb.clone())
            .header("content-encoding", "gzip")
            .header("content-type", "video/mp2t"),
    );
    let service = TestService::start("").await;
    let before = rss_bytes();
    let response = reqwest::get(
        service.url(
            &service
                .app
                .signer()
                .path(Kind::Relay, &origin.url("/bomb.ts"), None),
        ),
    )
    .await
    .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        bomb.len().to_string().as_str()
    );
    assert!(
        response.headers().get("content-encoding").is_none(),
        "never inflated, so never labelled as encoded"
    );
    let relayed = response.bytes().await.expect("body");
    assert!(relayed == bomb, "byte-identical, {} bytes", relayed.len());
    let growth = rss_bytes().saturating_sub(before);
    assert!(growth < 128 * MIB, "RSS grew {} MiB", growth / MIB);
}

// --- source documents ----------------------------------------------------------------

/// The shared test config with `extractor_timeout_secs` raised, so a long
/// read ends by its size cap rather than by the timeout.
fn patient_config(db: &std::path::Path, extra: &str) -> String {
    let toml = common::test_config_toml(db, extra);
    let toml = common::replace_once(&toml, "extractor_timeout_secs = 2", "extractor_timeout_secs = 60");
    common::replace_once(&toml, "timeout_secs = 2\n", "timeout_secs = 10\n")
}

fn extractor(site_key: &str, kind: &str, url: &str, extra: &str) -> String {
    format!(
        "[[extractors]]\nsite_key = \"{site_key}\"\nsite_name = \"{site_key}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n{extra}\n"
    )
}

const JSON_FIELDS: &str = "items = \"/data/streams\"\nfields = { url = \"/src\" }";

fn extractor_state<'a>(extractors: &'a Value, site_key: &str) -> &'a Value {
    extractors["extractors"]
        .as_array()
        .expect("extractors")
        .iter()
        .find(|e| e["site_key"] == site_key)
        .unwrap_or_else(|| panic!("{site_key} in {extractors}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_1_gib_source_document_stops_at_the_cap_with_bounded_memory_and_costs_only_its_extractor() {
    const GIB: u64 = 1024 * MIB;
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    let m3u = RawOrigin::start(Script::Chunked {
        head: Bytes::from_static(b"#EXTM3U\n"),
        line: Bytes::from_static(b"#EXTINF:-1,Feed\nhttp://127.0.0.1:9/feed.m3u8\n"),
        total: GIB,
    })
    .await;
    let json = RawOrigin::start(Script::Chunked {
        head: Bytes::from_static(b"{\"data\":{\"streams\":["),
        line: Bytes::from_static(b"{\"src\":\"http://127.0.0.1:9/feed.m3u8\"},"),
        total: GIB,
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sparse = dir.path().join("huge.m3u");
    std::fs::File::create(&sparse)
        .expect("create")
        .set_len(GIB)
        .expect("a sparse 1 GiB file");
    let extractors = [
        static_extractor("good", &[origin.url("/ok.m3u8")], ""),
        extractor("m3u_http", "m3u", &m3u.url("/list.m3u"), ""),
        extractor("json_http", "json", &json.url("/list.json"), JSON_FIELDS),
        extractor("m3u_file", "m3u", sparse.to_str().expect("utf-8"), ""),
    ]
    .concat();
    let db = dir.path().join("f1.db");
    let service = TestService::start_with_config(&db, &patient_config(&db, &extractors)).await;

    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = tokio::spawn({
        let peak = Arc::clone(&peak);
        async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let (status, run) = service.post_json("/extract").await;
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed).max(rss_bytes());
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["streams_found"], 1);
    assert_eq!(run["live_streams"], 1);
    assert_eq!(run["extractors_run"], 4);
    let (_, extractors) = get(&service, "/extractors").await;
    for site_key in ["m3u_http", "json_http", "m3u_file"] {
        let state = extractor_state(&extractors, site_key);
        assert_eq!(state["last_error"], "document exceeds 33554432 bytes", "{state}");
        assert_eq!(state["cached_streams"], 0);
    }
    assert_eq!(extractor_state(&extractors, "good")["last_error"], Value::Null);
    assert_eq!(urls(&get(&service, "/streams").await.1), [origin.url("/ok.m3u8")]);
    for (name, sent) in [("m3u", m3u.sent()), ("json", json.sent())] {
        assert!(
            sent < 64 * MIB,
            "{name}: the read stopped near the 32 MiB cap, not at 1 GiB: {sent}"
        );
    }
    let growth = peak.saturating_sub(before);
    eprintln!("RSS growth reading three 1 GiB documents: {} MiB", growth / MIB);
    assert!(growth < 320 * MIB, "RSS grew {} MiB", growth / MIB);
}

#[tokio::test]
async fn a_malformed_source_document_fails_only_its_extractor() {
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    serve_healthy(&origin, "/listed.m3u8");
    let document = json!({"data": {"streams": [{"src": origin.url("/listed.m3u8")}]}}).to_string();
    origin.route("/list.json", Reply::bytes(document.clone()));
    let extractors = [
        static_extractor("good", &[origin.url("/ok.m3u8")], ""),
        extractor("api", "json", &origin.url("/list.json"), JSON_FIELDS),
    ]
    .concat();
    let service = TestService::start(&extractors).await;
    service.post_json("/extract").await;
    let mut both = vec![origin.url("/ok.m3u8"), origin.url("/listed.m3u8")];
    both.sort();
    assert_eq!(urls(&get(&service, "/streams").await.1), both);

    for (broken, error) in [
        (
            document[..document.len() / 2].to_owned(),
            "invalid document: EOF while parsing",
        ),
        (
            "<html><body>Login</body></html>".to_owned(),
            "invalid document: expected value",
        ),
        (
            json!({"data": {"streams": {"src": "x"}}}).to_string(),
            "invalid document: items pointer \"/data/streams\" does not point to an array",
        ),
    ] {
        origin.route("/list.json", Reply::bytes(broken));
        let (status, run) = service.post_json("/extract").await;
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["streams_found"], 1, "the good extractor's stream");
        let (_, extractors) = get(&service, "/extractors").await;
        let api = extractor_state(&extractors, "api");
        assert!(
            api["last_error"].as_str().is_some_and(|e| e.starts_with(error)),
            "{api}"
        );
        assert_eq!(
            api["cached_streams"], 0,
            "a failed extractor's streams are not served"
        );
        assert_eq!(extractor_state(&extractors, "good")["last_error"], Value::Null);
        assert_eq!(urls(&get(&service, "/streams").await.1), [origin.url("/ok.m3u8")]);
    }
    // Its history is kept, and it comes back with a good document.
    assert_eq!(service.count("streams").await, 2);
    origin.route("/list.json", Reply::bytes(document));
    service.post_json("/extract").await;
    assert_eq!(urls(&get(&service, "/streams").await.1), both);
}

// --- bad client input ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_proxy_and_relay_urls_are_refused_in_both_forms_and_reach_no_upstream() {
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    let service = TestService::start_guarded(&["127.0.0.1/32"], "").await;
    let signer = service.app.signer();
    let ok = origin.url("/ok.m3u8");
    let b64 = |text: &str| token::encode_url(text);
    let invalid_utf8 = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"http://\xff\xfe/a.m3u8")
    };
    let long = format!("https://cdn.example.com/{}.m3u8", "a".repeat(7_000));
    let not_absolute = "URL is not absolute";
    // (encoded URL, expected status, expected error)
    let inputs: Vec<(String, u16, String)> = vec![
        ("***".into(), 400, "URL is not valid base64url".into()),
        ("aHR0cDovL2E=".repeat(3), 400, "URL is not valid base64url".into()),
        (invalid_utf8, 400, "decoded URL is not UTF-8".into()),
        (
            b64("file:///etc/passwd"),
            400,
            "URL scheme \"file\" is not http or https".into(),
        ),
        (
            b64("gopher://example.com:70/1"),
            400,
            "URL scheme \"gopher\" is not http or https".into(),
        ),
        (
            b64("javascript:alert(1)"),
            400,
            "URL scheme \"javascript\" is not http or https".into(),
        ),
        (
            b64("https://user:pw@example.com/a.m3u8"),
            400,
            "URL must not contain a user name or password".into(),
        ),
        (
            b64("https://user@example.com/a.m3u8"),
            400,
            "URL must not contain a user name or password".into(),
        ),
        (b64("/relative.m3u8"), 400, not_absolute.into()),
        (b64("http://"), 400, "URL has no host".into()),
        (
            b64(&long),
            400,
            format!(
                "encoded URL is {} bytes long, more than the limit of 8192",
                b64(&long).len()
            ),
        ),
    ];
    let client = reqwest::Client::new();
    let mut checked = 0;
    for kind in [Kind::Proxy, Kind::Relay] {
        let endpoint = kind.as_str();
        for (encoded, status, error) in &inputs {
            for path in [
                format!("/{endpoint}?url={encoded}&sig=AAAA"),
                format!("/{endpoint}/{encoded}.AAAA/a.m3u8"),
            ] {
                let response = client.get(service.url(&path)).send().await.expect("answers");
                assert_eq!(response.status().as_u16(), *status, "{path:.80}");
                let body: Value =
                    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
                assert_eq!(body["error"], error.as_str(), "{path:.80}");
                checked += 1;
            }
        }
        // Signatures: missing, tampered, for the other endpoint, for another
        // src, a src that is not a site key, a token of too many parts.
        let sig = signer.sign(kind, &ok, None);
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        let other_kind = match kind {
            Kind::Proxy => Kind::Relay,
            Kind::Relay => Kind::Proxy,
        };
        let wrong_kind = signer.sign(other_kind, &ok, None);
        let encoded = b64(&ok);
        for (path, status, error) in [
            (
                format!("/{endpoint}?url={encoded}"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}/{encoded}/a.m3u8"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}?url={encoded}&sig={tampered}"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}/{encoded}.{tampered}/a.m3u8"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}/{encoded}.{wrong_kind}/a.m3u8"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}/{encoded}.{sig}.good/a.m3u8"),
                403,
                "missing or invalid signature",
            ),
            (
                format!("/{endpoint}?url={encoded}&sig={sig}&src=Bad!"),
                400,
                "src must be 1 to 64 characters of a-z, 0-9, '_' or '-'",
            ),
            (
                format!("/{endpoint}/{encoded}.{sig}.x.y/a.m3u8"),
                400,
                "token must have the form <url>.<sig> or <url>.<sig>.<src>",
            ),
            (
                format!("/{endpoint}?sig={sig}"),
                400,
                "url: missing (base64url of an http(s) URL)",
            ),
            // Percent-escapes that decode to invalid UTF-8 in the request
            // itself, not in the encoded URL.
            (
                format!("/{endpoint}?url=%FF%FE&sig={sig}"),
                400,
                "URL is not valid base64url",
            ),
            (
                format!("/{endpoint}/%FF%FE.{sig}/a.m3u8"),
                400,
                "token: Invalid URL: Invalid UTF-8 in `token`",
            ),
        ] {
            let response = client.get(service.url(&path)).send().await.expect("answers");
            assert_eq!(response.status().as_u16(), status, "{path:.80}");
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            assert_eq!(body["error"], error, "{path:.80}");
            checked += 1;
        }
    }
    assert!(
        origin.requests_to("/ok.m3u8").is_empty(),
        "no refused request reached the upstream ({checked} tried)"
    );
    // The service is unaffected: the signed URL plays.
    let response = client
        .get(service.url(&signer.path(Kind::Proxy, &ok, None)))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(origin.requests_to("/ok.m3u8").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_100_kb_proxy_url_is_refused_before_routing_and_the_service_carries_on() {
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    let service = TestService::start("").await;
    let huge = token::encode_url(&format!(
        "https://cdn.example.com/{}.m3u8",
        "a".repeat(100 * 1024)
    ));
    // HTTP clients refuse to send such a URL, so it goes over a raw socket.
    let address = service.base.trim_start_matches("http://").to_owned();
    for path in [
        format!("/proxy?url={huge}&sig=AAAA"),
        format!("/relay/{huge}.AAAA/a.ts"),
    ] {
        assert!(path.len() > 100 * 1024);
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
        // The server may answer and close before reading it all.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        // The request head (136 KB of base64) is past `server.max_header_bytes`
        // (128 KiB), so the HTTP layer refuses it whole.
        assert!(
            answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{:.200}",
            answer
        );
    }
    let client = reqwest::Client::new();
    let signed = service
        .app
        .signer()
        .path(Kind::Proxy, &origin.url("/ok.m3u8"), None);
    let response = client.get(service.url(&signed)).send().await.expect("answers");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ip_literals_of_private_targets_in_every_form_are_refused_with_403_on_both_endpoints() {
    let private = FakeOrigin::start_on("127.0.0.2").await;
    serve_healthy(&private, "/a.m3u8");
    let port = private.addr.port();
    let service = TestService::start_guarded(&[], "").await;
    let signer = service.app.signer();
    let hosts = [
        "127.0.0.2",
        "2130706434", // decimal
        "0177.0.0.2", // octal
        "0x7f.0.0.2", // hex octet
        "0x7f000002", // hex whole
        "127.2",      // short form
        "0177.0.2",   // octal short form
        "[::ffff:127.0.0.2]",
        "[::ffff:7f00:2]",
        "[::127.0.0.2]",     // IPv4-compatible
        "[64:ff9b::7f00:2]", // NAT64
        "[2002:7f00:2::]",   // 6to4
        "localhost",
        "0.0.0.0",
        "0",
        "[::]",
        "[::1]",
        "10.0.0.1",
        "012.0.0.1",
        "167772161",
        "169.254.169.254",
        "2852039166",
        "[::ffff:a9fe:a9fe]",
        "[fe80::1]",
        "[fd00::1]",
        "100.64.0.1",
        "224.0.0.1",
    ];
    let client = reqwest::Client::new();
    for host in hosts {
        let target = format!("http://{host}:{port}/a.m3u8");
        for kind in [Kind::Proxy, Kind::Relay] {
            let response = client
                .get(service.url(&signer.path(kind, &target, None)))
                .send()
                .await
                .expect("answers");
            assert_eq!(response.status(), 403, "{kind:?} {target}");
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            assert_eq!(body["error"], "upstream address is not allowed", "{target}");
        }
    }
    assert!(private.requests_to("/a.m3u8").is_empty(), "no request reached it");
}

async fn row_counts(service: &TestService) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["extraction_runs", "health_checks", "streams", "extractor_runs"] {
        counts.push(service.count(table).await);
    }
    counts
}

#[tokio::test]
async fn bad_query_and_path_values_on_every_endpoint_are_a_json_400_naming_the_parameter() {
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    let service = TestService::start(&static_extractor("good", &[origin.url("/ok.m3u8")], "")).await;
    service.post_json("/extract").await;
    let stored = row_counts(&service).await;
    let ok_before = get(&service, "/streams").await;
    let cases = [
        ("/streams?limit=0", "limit"),
        ("/streams?limit=99999999999999999999", "limit"),
        ("/streams?limit=%FF", "limit"),
        ("/streams?session=%00", "session"),
        ("/streams?site_key=..%2F..", "site_key"),
        ("/streams/abc", "id"),
        ("/streams/0", "id"),
        ("/streams/-5", "id"),
        ("/streams/99999999999999999999", "id"),
        ("/streams/1/history?from=yesterday", "from"),
        ("/streams/1/history?to=%27%20OR%201=1", "to"),
        ("/streams/1/history?from=999999999999", "from"),
        (
            "/streams/1/history?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("/streams/1/history?limit=0", "limit"),
        ("/streams/1/history?limit=1001", "limit"),
        ("/streams/1/history?cursor=!!!", "cursor"),
        ("/streams/1/events?cursor=bm9wZQ", "cursor"),
        ("/streams/1/events?limit=x", "limit"),
        ("/streams/x/events", "id"),
        ("/runs?limit=-1", "limit"),
        ("/runs?cursor=%F0%9F%92%A9", "cursor"),
        ("/runs/abc", "id"),
        ("/runs/0", "id"),
        ("/extractors/good/uptime?step=5m", "step"),
        ("/extractors/good/uptime?from=soon", "from"),
        ("/extractors/good/uptime?from=0&step=1h", "step"),
        ("/extractors/good/uptime?from=100&to=50", "from"),
    ];
    for (path, parameter) in cases {
        let (status, body) = get(&service, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: JSON error, got {body}"));
        assert!(
            message.starts_with(&format!("{parameter}: ")),
            "{path}: {message:?} names {parameter}"
        );
    }
    assert_eq!(row_counts(&service).await, stored, "bad input changes nothing");
    assert_eq!(get(&service, "/streams").await, ok_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_extract_requests_share_one_run() {
    const CLIENTS: usize = 1000;
    let origin = FakeOrigin::start().await;
    origin.route("/v.m3u8", Reply::playlist(MEDIA_VOD));
    origin.route("/seg0.ts", Reply::bytes(vec![0x47u8; 188 * 20]));
    // A source that answers after 3 s keeps the run in flight while the
    // thousand requests connect.
    origin.route(
        "/list.json",
        Reply::bytes(json!({"data": {"streams": [{"src": origin.url("/v.m3u8")}]}}).to_string())
            .delay(Duration::from_secs(3)),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let service = TestService::start_with_config(
        &db,
        &patient_config(
            &db,
            &extractor("slow", "json", &origin.url("/list.json"), JSON_FIELDS),
        ),
    )
    .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    let started = Instant::now();
    let posts = futures::future::join_all((0..CLIENTS).map(|_| {
        let request = client.post(service.url("/extract")).send();
        async move {
            let response = request.await.expect("answers");
            let status = response.status().as_u16();
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            (status, body)
        }
    }));
    let probe = async {
        // The run is in flight once its source was asked, and cannot end
        // before the source answers, 3 s later: the origin has sent no byte
        // until then. A /health held up by the run would see bytes sent.
        common::wait_until("the run asks its source", Duration::from_secs(10), || {
            !origin.requests_to("/list.json").is_empty()
        })
        .await;
        let at = Instant::now();
        let (status, _) = get(&service, "/health").await;
        (status, origin.bytes_sent(), at.elapsed())
    };
    let (answers, (health, source_bytes_before_health, health_time)) = tokio::join!(posts, probe);
    let elapsed = started.elapsed();
    assert_eq!(
        (health, source_bytes_before_health),
        (200, 0),
        "/health answers while the run waits for its source ({health_time:?})"
    );
    let run_id = &answers[0].1["run_id"];
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(&body["run_id"], run_id, "every request gets the one run");
        assert_eq!(body["streams_found"], 1);
    }
    assert_eq!(service.count("extraction_runs").await, 1);
    assert_eq!(
        origin.requests_to("/list.json").len(),
        1,
        "the source was read once"
    );
    assert_eq!(
        origin.requests_to("/v.m3u8").len(),
        1,
        "the stream was checked once"
    );
    eprintln!("{CLIENTS} concurrent POST /extract answered in {elapsed:?}");
}

#[tokio::test]
async fn request_headers_of_64_kib_are_served_and_never_reach_rewritten_playlists() {
    let origin = FakeOrigin::start().await;
    serve_healthy(&origin, "/ok.m3u8");
    // Forwarding headers count only from a trusted proxy: this test's client.
    let service = TestService::start(&format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{}",
        static_extractor("good", &[origin.url("/ok.m3u8")], "")
    ))
    .await;
    service.post_json("/extract").await;
    let client = reqwest::Client::new();
    let plain = get(&service, "/streams").await.1;
    let big = "a".repeat(64 * 1024);

    // A 64 KiB cookie: an ordinary request.
    let response = client
        .get(service.url("/streams"))
        .header("cookie", format!("session={big}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert_eq!(body, plain);

    // A 64 KiB forwarded host is not a host: URLs stay root-relative.
    let response = client
        .get(service.url("/streams"))
        .header("x-forwarded-host", format!("{big}.example.com"))
        .send()
        .await
        .expect("answers");
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    let proxy_url = body["streams"][0]["proxy_url"].as_str().expect("proxy_url");
    assert!(proxy_url.starts_with("/proxy/"), "{proxy_url:.80}");
    let response = client
        .get(service.url(proxy_url))
        .header("x-forwarded-host", format!("{big}.example.com"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let playlist = response.text().await.expect("playlist");
    assert!(!playlist.contains(&"a".repeat(64)), "{playlist}");
    assert!(playlist.len() < 4096);

    // Headers past the HTTP layer's buffer are refused before any handler.
    let response = client
        .get(service.url("/streams"))
        .header("cookie", "b".repeat(1024 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => {
            eprintln!("1 MiB of headers: HTTP {}", response.status());
            assert_eq!(response.status(), 431);
        }
        Err(e) => {
            eprintln!("1 MiB of headers: connection closed ({e})");
            assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}");
        }
    }
    assert_eq!(get(&service, "/streams").await.1, plain, "the service carries on");
}
