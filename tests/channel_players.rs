//! Real players across a failover channel's switch of source: two live
//! HLS encodes made here by ffmpeg (different test patterns and tones, one
//! AES-128-encrypted with the IV left to the media sequence number, their
//! own unrelated timestamps), each served from its folder by a file server
//! on 127.0.0.1. The channel plays source A; B becomes healthy while A
//! plays (the channel stays on A); then, midway through playback, A dies
//! in one of the ways a channel must notice ([`Death`]): its server stops,
//! its encoder crashes (stale playlist), its broadcast ends, or its
//! segments are lost while its playlist goes on.
//!
//! - ffmpeg reads the channel (`/channels/x.m3u8`) for 30 s of media
//!   across the switch, exits 0, and decodes at least 90% of it.
//! - hls.js in headless Chromium (tests/browser/play_channel.mjs) plays the
//!   channel across the switch with no fatal error, its position advancing
//!   past the discontinuity and never stalling long.
//!
//! Both check the channel's playlist at the switch (A's segments, a
//! discontinuity, B's, each with its own key state and the source's
//! sequence number as explicit IV) and the switch the service recorded.
//!
//! Needs ffmpeg, node with tests/browser/node_modules (`npm ci --prefix
//! tests/browser`) and Chromium at /usr/bin/chromium; `.ci/run` installs
//! them, so under CI a missing one fails the test instead of skipping it.
//! Run alone with `cargo test --test channel_players -- --nocapture` to see
//! the measurements.

mod common;
#[path = "common/live.rs"]
mod live;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestService, static_extractor};
use live::{CHROMIUM, Death, FPS, FileServer, LiveSource, Look, browser_dir, have, have_ffmpeg};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// The tests here each run two encoders and a player on a 2-core machine;
/// one at a time keeps their timings meaningful.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Seconds of media ffmpeg reads from the channel.
const FFMPEG_SECONDS: u32 = 30;
/// Seconds after the player starts at which source A dies.
const KILL_AFTER: Duration = Duration::from_secs(10);
/// Longest time from A's death to the channel playing B: a stale source is
/// noticed after 3 target durations without a new segment (3 s here), the
/// other deaths at the next playlist fetch or the second failed segment.
const SWITCH_WITHIN: Duration = Duration::from_secs(6);

/// Whether node, its packages (`npm ci --prefix tests/browser`) and
/// Chromium are there.
fn have_browser() -> bool {
    let modules = ["playwright-core/package.json", "hls.js/dist/hls.min.js"]
        .iter()
        .all(|file| browser_dir().join("node_modules").join(file).is_file());
    assert!(
        modules || std::env::var_os("CI").is_none(),
        "CI must run `npm ci --prefix tests/browser` first (see .ci/run)"
    );
    have("node", &["--version"]) && have(CHROMIUM, &["--version"]) && modules
}

/// The service with one static extractor per source, a channel `x` over
/// both, and CORS open (the browser test's page is on another origin).
async fn channel_service(a: &LiveSource, b: &LiveSource) -> TestService {
    let mut extra = String::from("[server]\ncors_allow_origins = [\"*\"]\n");
    for source in [a, b] {
        extra.push_str(&static_extractor(source.name, &[source.url()], ""));
    }
    extra.push_str("[[channels]]\nslug = \"x\"\ntitle = \"Players\"\n");
    TestService::start(&extra).await
}

/// The upstream URLs of a channel playlist's segments.
fn upstream_segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|line| line.starts_with("/relay/"))
        .map(|path| {
            let token = path
                .strip_prefix("/relay/")
                .and_then(|rest| rest.split('/').next())
                .expect("a relay path");
            f1_stream::proxy::token::parse_token(token)
                .expect("token parses")
                .url_text
        })
        .collect()
}

async fn channel_playlist(service: &TestService) -> String {
    let response = reqwest::get(service.url("/channels/x.m3u8"))
        .await
        .expect("the channel answers");
    assert_eq!(response.status(), 200, "the channel plays");
    response.text().await.expect("playlist text")
}

/// Makes A the channel's source with B healthy too: only A is available
/// at the first extraction, the channel is asked once (A becomes active),
/// then B becomes available and a second extraction finds it healthy.
async fn playing_a_with_b_ready(service: &TestService, a: &LiveSource, b: &LiveSource) -> String {
    b.server.set_gone(true);
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["live_streams"], 1, "only A is up: {run}");
    let first = channel_playlist(service).await;
    let segments = upstream_segments(&first);
    assert!(
        !segments.is_empty() && segments.iter().all(|url| url.starts_with(&a.server.url("/"))),
        "the channel plays A:\n{first}"
    );
    b.server.set_gone(false);
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["live_streams"], 2, "B is healthy too: {run}");
    let (_, list) = service.get_json("/channels").await;
    assert_eq!(
        list["channels"][0]["source"]["site_key"], a.name,
        "stays on A: {list}"
    );
    first
}

/// Checks the keys in force for `source`'s segments in a channel
/// playlist: none for a clear source; for an encrypted one, the source's
/// key with the source's media sequence number of the segment (its file
/// name's number) as explicit IV. Answers how many segments it checked.
fn check_keys(playlist: &str, source: &LiveSource, encrypted: bool) -> usize {
    let key_attributes = regex::Regex::new(
        r#"^#EXT-X-KEY:METHOD=([A-Z0-9-]+)(?:,URI="([^"]*)")?(?:,IV=0[xX]([0-9a-fA-F]+))?"#,
    )
    .expect("regex");
    let mut in_force: Option<(String, Option<String>)> = None;
    let mut checked = 0;
    for line in playlist.lines() {
        if let Some(key) = key_attributes.captures(line) {
            in_force = (&key[1] != "NONE").then(|| {
                let uri = key.get(2).map(|uri| upstream_segments(uri.as_str()).concat());
                assert!(key.get(3).is_some(), "an explicit IV: {line}\n{playlist}");
                (
                    uri.unwrap_or_default(),
                    key.get(3).map(|iv| iv.as_str().to_owned()),
                )
            });
            continue;
        }
        if !line.starts_with("/relay/") {
            continue;
        }
        let url = upstream_segments(line).concat();
        let Some(name) = url.strip_prefix(&source.server.url("/seg")) else {
            continue;
        };
        let number: u128 = name
            .strip_suffix(".ts")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a segment of the encoder: {url}"));
        match &in_force {
            None => assert!(!encrypted, "no key in force for {url}:\n{playlist}"),
            Some((key_url, iv)) => {
                assert!(encrypted, "a key in force for the clear {url}:\n{playlist}");
                assert_eq!(key_url, &source.server.url("/key.bin"), "{playlist}");
                let iv = u128::from_str_radix(iv.as_deref().unwrap_or_default(), 16).expect("hex IV");
                assert_eq!(
                    iv, number,
                    "the IV of {url} is its source's sequence number:\n{playlist}"
                );
            }
        }
        checked += 1;
    }
    checked
}

/// Watches `GET /channels` (which fetches nothing upstream) every 200 ms
/// and notes when the channel's source became `to`, with the channel's
/// playlist right then (both sides of the switch).
fn watch_switch(service: &TestService, to: &'static str) -> tokio::task::JoinHandle<(Instant, String)> {
    let list_url = service.url("/channels");
    let playlist_url = service.url("/channels/x.m3u8");
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(&list_url).send().await
                && let Ok(body) = response.bytes().await
                && let Ok(list) = serde_json::from_slice::<serde_json::Value>(&body)
                && list["channels"][0]["source"]["site_key"] == to
            {
                let at = Instant::now();
                let response = client
                    .get(&playlist_url)
                    .send()
                    .await
                    .expect("the channel answers");
                return (at, response.text().await.expect("playlist"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// What the switch looked like from the service's side, checked and
/// printed for the record.
async fn check_switch(service: &TestService, a: &LiveSource, b: &LiveSource, death: Death) -> String {
    let (status, body) = service.get_json("/channels/x/switches").await;
    assert_eq!(status, 200, "{body}");
    let rows = body["switches"].as_array().expect("switches");
    assert_eq!(rows.len(), 2, "started on A, then one switch: {body}");
    assert_eq!(rows[0]["reason"], death.reason(), "{body}");
    assert_eq!(rows[1]["reason"], "started", "{body}");
    let (_, list) = service.get_json("/channels").await;
    assert_eq!(list["channels"][0]["source"]["site_key"], b.name, "{list}");
    let text = channel_playlist(service).await;
    assert!(
        upstream_segments(&text)
            .last()
            .is_some_and(|url| url.starts_with(&b.server.url("/"))),
        "{text}"
    );
    eprintln!("switches: {}", serde_json::to_string(&body).expect("json"));
    eprintln!(
        "A {} / B {} channel playlist after the switch:\n{text}",
        a.server.url("/"),
        b.server.url("/")
    );
    text
}

/// Checks the channel's playlist at the moment of the switch: A's
/// segments, then `#EXT-X-DISCONTINUITY`, then B's, each with its keys.
fn check_both_sides(text: &str, a: &LiveSource, a_encrypted: bool, b: &LiveSource, b_encrypted: bool) {
    let lines: Vec<&str> = text.lines().collect();
    let from = |source: &LiveSource| {
        let base = source.server.url("/");
        move |line: &&str| line.starts_with("/relay/") && upstream_segments(line).concat().starts_with(&base)
    };
    let last_a = lines.iter().rposition(from(a));
    let first_b = lines.iter().position(from(b));
    let (Some(last_a), Some(first_b)) = (last_a, first_b) else {
        panic!("both sources in the window at the switch:\n{text}");
    };
    assert!(
        last_a < first_b && lines[last_a..first_b].contains(&"#EXT-X-DISCONTINUITY"),
        "A's segments, a discontinuity, then B's:\n{text}"
    );
    assert!(check_keys(text, a, a_encrypted) >= 1);
    assert!(check_keys(text, b, b_encrypted) >= 1);
}

/// One `-progress` report of ffmpeg.
#[derive(Debug, Clone, Copy)]
struct Progress {
    at: Instant,
    frame: u64,
    out_time_us: i64,
}

/// The longest wall time between two progress reports during which
/// ffmpeg's output time did not advance.
fn longest_stall(reports: &[Progress]) -> Duration {
    let mut longest = Duration::ZERO;
    let Some(mut since) = reports.first().copied() else {
        return longest;
    };
    for report in reports {
        if report.out_time_us > since.out_time_us {
            since = *report;
        } else {
            longest = longest.max(report.at - since.at);
        }
    }
    longest
}

/// Two live sources A and B (as `a` and `b` look), the service, and the
/// channel playing A with B healthy too; answers them with the channel's
/// first playlist.
async fn channel_on_a(a: &Look, b: &Look) -> (LiveSource, LiveSource, TestService, String) {
    let mut a = LiveSource::start("a", a).await;
    let mut b = LiveSource::start("b", b).await;
    a.wait_for_segments(4).await;
    b.wait_for_segments(4).await;
    let service = channel_service(&a, &b).await;
    let first = playing_a_with_b_ready(&service, &a, &b).await;
    (a, b, service, first)
}

/// ffmpeg reads [`FFMPEG_SECONDS`] of the channel while A dies as `death`
/// says [`KILL_AFTER`] in: A clear, B AES-128 (implicit IVs), unrelated
/// clocks. ffmpeg must exit 0 having decoded at least 90% of it, and read
/// B's media after the switch.
async fn ffmpeg_across_a_switch(death: Death) {
    let _one = ONE_AT_A_TIME.lock().await;
    let a_look = Look {
        size: "320x240",
        pattern: "testsrc",
        tone: 440,
        encrypted: false,
        start_number: 0,
        ts_offset: 0,
    };
    let b_look = Look {
        size: "320x240",
        pattern: "smptebars",
        tone: 880,
        encrypted: true,
        start_number: 500,
        ts_offset: 1000,
    };
    let (mut a, b, service, first) = channel_on_a(&a_look, &b_look).await;
    assert!(check_keys(&first, &a, false) >= 3, "{first}");

    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "warning"])
        .args(["-nostats", "-progress", "pipe:1"])
        .args(["-i", &service.url("/channels/x.m3u8")])
        .args(["-t", &FFMPEG_SECONDS.to_string(), "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts");
    let started = Instant::now();
    let progress = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let reading = {
        let progress = Arc::clone(&progress);
        let stdout = ffmpeg.stdout.take().expect("stdout");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let (mut frame, mut out_time_us) = (0, 0);
            while let Ok(Some(line)) = lines.next_line().await {
                match line.split_once('=') {
                    Some(("frame", n)) => frame = n.trim().parse().unwrap_or(frame),
                    Some(("out_time_us", n)) => out_time_us = n.trim().parse().unwrap_or(out_time_us),
                    Some(("progress", _)) => progress.lock().expect("progress").push(Progress {
                        at: Instant::now(),
                        frame,
                        out_time_us,
                    }),
                    _ => {}
                }
            }
        })
    };
    let stderr = {
        let mut pipe = ffmpeg.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text).await;
            text
        })
    };
    let switched = watch_switch(&service, b.name);

    tokio::time::sleep(KILL_AFTER).await;
    let read_before_kill = progress.lock().expect("progress").last().copied();
    let killed = Instant::now();
    a.die(death).await;

    let status = tokio::time::timeout(Duration::from_secs(u64::from(FFMPEG_SECONDS) + 30), ffmpeg.wait())
        .await
        .expect("ffmpeg ends in time")
        .expect("ffmpeg waited");
    let wall = started.elapsed();
    reading.await.expect("progress reader");
    let stderr = stderr.await.expect("stderr reader");
    let (switched, at_switch) = tokio::time::timeout(Duration::from_secs(1), switched)
        .await
        .expect("the channel switched to B")
        .expect("watcher");
    let b_segments = b.server.segment_hits_since(killed);
    let reports = progress.lock().expect("progress").clone();
    let last = reports.last().copied().expect("ffmpeg reported progress");
    let stall = longest_stall(&reports);
    eprintln!(
        "ffmpeg, A {death:?}: {status}, {:.1} s of wall time, read {} frames = {:.2} s of video, \
         out_time {:.2} s (before the kill: {:?}); A killed {:.1} s in; channel on B {:.2} s after \
         the kill; first B segment through the relay {:?} after the kill, {} B segments read; \
         longest stall of ffmpeg's output time {:.2} s\nffmpeg stderr:\n{stderr}",
        wall.as_secs_f64(),
        last.frame,
        f64::from(u32::try_from(last.frame).unwrap_or(u32::MAX)) / f64::from(FPS),
        last.out_time_us as f64 / 1e6,
        read_before_kill.map(|p| (p.frame, p.out_time_us)),
        (killed - started).as_secs_f64(),
        (switched.max(killed) - killed).as_secs_f64(),
        b_segments.first().map(|hit| hit.at - killed),
        b_segments.len(),
        stall.as_secs_f64(),
    );
    eprintln!("channel playlist at the switch:\n{at_switch}");
    check_both_sides(&at_switch, &a, false, &b, true);
    let after = check_switch(&service, &a, &b, death).await;
    assert!(check_keys(&after, &b, true) >= 3, "{after}");
    assert!(
        switched.max(killed) - killed <= SWITCH_WITHIN,
        "the channel played B {:?} after A died",
        switched - killed
    );

    assert!(status.success(), "ffmpeg failed across the switch:\n{stderr}");
    let expected = u64::from(FFMPEG_SECONDS * FPS);
    assert!(
        last.frame * 10 >= expected * 9,
        "ffmpeg decoded {} of {expected} frames:\n{stderr}",
        last.frame
    );
    assert!(
        last.out_time_us >= i64::from(FFMPEG_SECONDS) * 900_000,
        "ffmpeg's output reached {} µs",
        last.out_time_us
    );
    assert!(
        read_before_kill.is_some_and(|p| p.frame > 0 && p.frame < expected),
        "A died while ffmpeg was reading: {read_before_kill:?}"
    );
    assert!(
        b_segments.len() >= 10,
        "ffmpeg read B's media after the switch: {b_segments:?}"
    );
    assert!(stall < Duration::from_secs(8), "ffmpeg stalled {stall:?}");
}

/// hls.js in headless Chromium plays the channel for `watch_seconds`
/// while A dies as `death` says [`KILL_AFTER`] after the video starts: A
/// AES-128 (implicit IVs), B clear, unrelated clocks. No fatal hls.js
/// error, the position advances at least 15 s, never stalls more than
/// 8 s, and the fragments played come from both sides of the
/// discontinuity.
async fn hls_js_across_a_switch(death: Death) {
    let _one = ONE_AT_A_TIME.lock().await;
    let a_look = Look {
        size: "320x240",
        pattern: "testsrc2",
        tone: 440,
        encrypted: true,
        start_number: 300,
        ts_offset: 0,
    };
    let b_look = Look {
        size: "320x240",
        pattern: "smptebars",
        tone: 660,
        encrypted: false,
        start_number: 0,
        ts_offset: 5000,
    };
    let (mut a, b, service, first) = channel_on_a(&a_look, &b_look).await;
    assert!(check_keys(&first, &a, true) >= 3, "{first}");
    let page = FileServer::start(&browser_dir(), false).await;

    let watch_seconds = 25;
    let mut node = Command::new("node")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("tests/browser/play_channel.mjs")
        .arg(format!(
            "{}?src={}",
            page.url("/player.html"),
            service.url("/channels/x.m3u8")
        ))
        .args(["--seconds", &watch_seconds.to_string()])
        .args(["--min-advance", "15", "--max-stall", "8"])
        .args(["--chromium", CHROMIUM])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let stderr = {
        let mut pipe = node.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text).await;
            text
        })
    };
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let switched = watch_switch(&service, b.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(watch_seconds + 60);
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut killed: Option<Instant> = None;
    let mut result = None;
    let mut samples = Vec::new();
    while result.is_none() {
        let line = tokio::select! {
            line = lines.next_line() => line.expect("node's stdout"),
            () = tokio::time::sleep_until(kill_at.unwrap_or(deadline)), if killed.is_none() => {
                if kill_at.is_some() {
                    killed = Some(Instant::now());
                    a.die(death).await;
                    continue;
                }
                panic!("node printed no result in time");
            }
            () = tokio::time::sleep_until(deadline) => panic!("node printed no result in time"),
        };
        let Some(line) = line else { break };
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("node printed {line:?}: {e}"));
        match event["event"].as_str() {
            Some("playing") => kill_at = Some(tokio::time::Instant::now() + KILL_AFTER),
            Some("sample") => samples.push(event),
            Some("result") => result = Some(event),
            _ => panic!("unexpected line from node: {line}"),
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(20), node.wait())
        .await
        .expect("node ends")
        .expect("node waited");
    let stderr = stderr.await.expect("stderr reader");
    let result = result.unwrap_or_else(|| panic!("node printed no result ({status}):\n{stderr}"));
    let killed = killed.unwrap_or_else(|| panic!("A never died: {result}\n{stderr}"));
    let (switched, at_switch) = tokio::time::timeout(Duration::from_secs(1), switched)
        .await
        .expect("the channel switched to B")
        .expect("watcher");
    let b_segments = b.server.segment_hits_since(killed);
    eprintln!(
        "hls.js, A {death:?}: node {status}; channel on B {:.2} s after the kill; first B segment \
         through the relay {:?} after the kill, {} B segments read\nresult: {result:#}\nsamples:",
        (switched.max(killed) - killed).as_secs_f64(),
        b_segments.first().map(|hit| hit.at - killed),
        b_segments.len(),
    );
    for sample in &samples {
        eprintln!("  {sample}");
    }
    if !stderr.is_empty() {
        eprintln!("node stderr:\n{stderr}");
    }
    eprintln!("channel playlist at the switch:\n{at_switch}");
    check_both_sides(&at_switch, &a, true, &b, false);
    assert!(at_switch.contains("#EXT-X-KEY:METHOD=NONE\n"), "{at_switch}");
    check_switch(&service, &a, &b, death).await;
    assert!(
        switched.max(killed) - killed <= SWITCH_WITHIN,
        "the channel played B {:?} after A died",
        switched - killed
    );

    assert_eq!(result["fatal"], serde_json::Value::Null, "{result:#}");
    assert_eq!(result["ok"], true, "{result:#}");
    assert!(status.success(), "{status}: {result:#}");
    let advance = result["advance"].as_f64().expect("advance");
    assert!(advance >= 15.0, "played {advance} s of {watch_seconds}");
    let stall = result["maxStall"].as_f64().expect("maxStall");
    assert!(stall <= 8.0, "stalled {stall} s");
    let frames = result["frames"].as_u64().expect("frames");
    assert!(
        frames >= u64::from(15 * FPS),
        "{frames} frames shown in {watch_seconds} s"
    );
    let discontinuities = result["discontinuitiesPlayed"]
        .as_array()
        .expect("discontinuities")
        .len();
    assert!(
        discontinuities >= 2,
        "hls.js played fragments from both sides of the discontinuity: {result:#}"
    );
    assert!(
        b_segments.len() >= 5,
        "hls.js read B's media after the switch: {b_segments:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_reads_a_channel_to_the_end_across_the_death_of_its_source() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg not installed");
        return;
    }
    ffmpeg_across_a_switch(Death::Stopped).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_reads_a_channel_to_the_end_across_the_end_of_its_source_broadcast() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg not installed");
        return;
    }
    ffmpeg_across_a_switch(Death::Ended).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_reads_a_channel_to_the_end_when_its_source_loses_its_segments() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg not installed");
        return;
    }
    ffmpeg_across_a_switch(Death::SegmentsLost).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_in_chromium_keeps_playing_a_channel_across_the_death_of_its_source() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    hls_js_across_a_switch(Death::Stopped).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_in_chromium_keeps_playing_a_channel_whose_source_goes_stale() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    hls_js_across_a_switch(Death::Frozen).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_in_chromium_keeps_playing_a_channel_whose_source_loses_its_segments() {
    if !have_browser() || !have_ffmpeg() {
        eprintln!("skipped: node, tests/browser/node_modules, Chromium or ffmpeg missing");
        return;
    }
    hls_js_across_a_switch(Death::SegmentsLost).await;
}
