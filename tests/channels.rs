//! Failover channels end to end: the real service on 127.0.0.1 and live
//! sources on fake origins that advance in real time. A channel plays the
//! best-ranked source, switches after its playlist fails, goes stale or its
//! segments fail through the relay, never goes back in its numbering (not
//! even across a restart), fetches the source once per half target
//! duration whatever the viewers, and answers 503 without a source.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{FakeOrigin, Reply, TestService, static_extractor};

/// Target duration of the fake live sources, seconds.
const TARGET: u64 = 1;
/// Segments each live playlist lists.
const LISTED: u64 = 5;

/// What a live source does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Advances one segment per target duration.
    Live = 0,
    /// Its playlist answers 404.
    Gone = 1,
    /// Its playlist stops advancing.
    Frozen = 2,
    /// Its playlist advances, its segments answer 404.
    BrokenSegments = 3,
    /// Its playlist answers only after 30 s.
    Hanging = 4,
}

/// A live HLS source on a fake origin: `/<name>/index.m3u8` lists the
/// newest [`LISTED`] segments, one more every [`TARGET`] seconds; segments
/// are MPEG-TS-looking bytes.
struct LiveSource {
    origin: Arc<FakeOrigin>,
    name: &'static str,
    mode: Arc<AtomicU8>,
    _ticker: tokio::task::JoinHandle<()>,
}

impl LiveSource {
    async fn start(name: &'static str, first_sequence: u64, mode: Mode) -> Self {
        let origin = Arc::new(FakeOrigin::start().await);
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let ticker = {
            let origin = Arc::clone(&origin);
            let mode = Arc::clone(&mode);
            tokio::spawn(async move {
                let started = Instant::now();
                let mut frozen_at = None;
                loop {
                    let current = mode.load(Ordering::Acquire);
                    let elapsed = started.elapsed().as_secs() / TARGET;
                    let newest = match (current == Mode::Frozen as u8, frozen_at) {
                        (true, None) => {
                            frozen_at = Some(elapsed);
                            elapsed
                        }
                        (true, Some(at)) => at,
                        (false, _) => elapsed,
                    };
                    let first = first_sequence + newest;
                    let mut text = format!(
                        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{TARGET}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
                    );
                    for n in first..first + LISTED {
                        text.push_str(&format!("#EXTINF:{TARGET}.000,\n{name}{n}.ts\n"));
                        let segment = if current == Mode::BrokenSegments as u8 {
                            Reply::status(404)
                        } else {
                            Reply::bytes(vec![0x47u8; 188 * 10])
                        };
                        origin.route(&format!("/{name}/{name}{n}.ts"), segment);
                    }
                    let playlist = if current == Mode::Gone as u8 {
                        Reply::status(404)
                    } else if current == Mode::Hanging as u8 {
                        Reply::playlist(text).delay(Duration::from_secs(30))
                    } else {
                        Reply::playlist(text)
                    };
                    origin.route(&format!("/{name}/index.m3u8"), playlist);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        Self {
            origin,
            name,
            mode,
            _ticker: ticker,
        }
    }

    fn url(&self) -> String {
        self.origin.url(&format!("/{}/index.m3u8", self.name))
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }

    fn playlist_requests(&self) -> usize {
        self.origin
            .requests_to(&format!("/{}/index.m3u8", self.name))
            .len()
    }
}

/// The service with one static extractor per source and a channel `x`.
async fn service_for(sources: &[&LiveSource], channel: &str) -> TestService {
    TestService::start(&config_for(sources, channel)).await
}

fn config_for(sources: &[&LiveSource], channel: &str) -> String {
    let mut extra: String = sources
        .iter()
        .map(|s| static_extractor(s.name, &[s.url()], ""))
        .collect();
    extra.push_str(&format!(
        "[[channels]]\nslug = \"x\"\ntitle = \"Test channel\"\n{channel}\n"
    ));
    extra
}

/// A channel playlist as a player sees it.
#[derive(Debug)]
struct Seen {
    media_sequence: u64,
    discontinuity_sequence: u64,
    /// (upstream URL, preceded by a discontinuity)
    segments: Vec<(String, bool)>,
    text: String,
}

async fn get_channel(
    service: &TestService,
    slug: &str,
) -> Result<Seen, (u16, reqwest::header::HeaderMap, String)> {
    let response = reqwest::get(service.url(&format!("/channels/{slug}.m3u8")))
        .await
        .expect("service answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    if status != 200 {
        return Err((status, headers, text));
    }
    assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");
    let playlist =
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("a media playlist players parse");
    let segments = playlist
        .segments
        .iter()
        .map(|s| (upstream_url(&s.uri), s.discontinuity))
        .collect();
    Ok(Seen {
        media_sequence: playlist.media_sequence,
        discontinuity_sequence: playlist.discontinuity_sequence,
        segments,
        text,
    })
}

/// The upstream URL inside a `/relay/<token>/<name>` path.
fn upstream_url(path: &str) -> String {
    let token = path
        .strip_prefix("/relay/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("a relay path: {path}"));
    f1_stream::proxy::token::parse_token(token)
        .expect("token parses")
        .url_text
}

fn from_source(seen: &Seen, source: &LiveSource) -> bool {
    seen.segments
        .last()
        .is_some_and(|(url, _)| url.contains(&format!("/{}/", source.name)))
}

/// Polls the channel like a player (every half target duration) until its
/// newest segment comes from `to`; answers the time it took and the
/// playlist. Every playlist on the way must keep the numbering monotonic.
async fn until_playing(
    service: &TestService,
    to: &LiveSource,
    within: Duration,
    previous: &mut Seen,
) -> (Duration, Seen) {
    let started = Instant::now();
    loop {
        if let Ok(seen) = get_channel(service, "x").await {
            assert!(
                seen.media_sequence >= previous.media_sequence,
                "media sequence went back: {} then {}\n{}",
                previous.media_sequence,
                seen.media_sequence,
                seen.text
            );
            assert!(seen.discontinuity_sequence >= previous.discontinuity_sequence);
            if from_source(&seen, to) {
                return (started.elapsed(), seen);
            }
            *previous = seen;
        }
        assert!(
            started.elapsed() < within,
            "not playing {} within {within:?}",
            to.name
        );
        tokio::time::sleep(Duration::from_millis(TARGET * 1000 / 2)).await;
    }
}

/// A's playlist plays first: B is unavailable at the first extraction; then
/// B becomes healthy too. Answers the channel's first playlist (from A).
async fn playing_a_with_b_ready(service: &TestService, a: &LiveSource, b: &LiveSource) -> Seen {
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{run}");
    let first = get_channel(service, "x").await.expect("the channel plays");
    assert!(
        from_source(&first, a),
        "A is the only healthy source:\n{}",
        first.text
    );
    b.set(Mode::Live);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!(status, 200);
    assert_eq!(run["live_streams"], 2, "{run}");
    first
}

/// Sources `a` (numbered from `a_first`) and `b` (from `b_first`), a
/// service with channel `x` playing A, and B healthy too.
async fn on_a_with_b_ready(a_first: u64, b_first: u64) -> (LiveSource, LiveSource, TestService, Seen) {
    let a = LiveSource::start("a", a_first, Mode::Live).await;
    let b = LiveSource::start("b", b_first, Mode::Gone).await;
    let service = service_for(&[&a, &b], "").await;
    let seen = playing_a_with_b_ready(&service, &a, &b).await;
    (a, b, service, seen)
}

/// The service's `/metrics` text.
async fn metrics_text(service: &TestService) -> String {
    reqwest::get(service.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The switch rows of channel `x`, newest first.
async fn switches(service: &TestService) -> Vec<serde_json::Value> {
    let (status, body) = service.get_json("/channels/x/switches").await;
    assert_eq!(status, 200, "{body}");
    body["switches"].as_array().expect("switches").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_whose_playlist_fails_is_left_for_the_next_after_a_discontinuity() {
    let (a, b, service, mut seen) = on_a_with_b_ready(1000, 7).await;

    // B is healthy now, maybe faster: the channel stays on A (no flapping).
    for _ in 0..4 {
        let again = get_channel(&service, "x").await.expect("plays");
        assert!(
            from_source(&again, &a),
            "stays on A while A works:\n{}",
            again.text
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, list) = service.get_json("/channels").await;
    let x = &list["channels"][0];
    assert_eq!(x["slug"], "x");
    assert_eq!(x["state"], "playing");
    assert_eq!(x["source"]["site_key"], "a");
    assert_eq!(x["switches"], 1, "the start is the one switch so far: {x}");
    assert_eq!(x["last_switch"]["reason"], "started");

    a.set(Mode::Gone);
    let (gap, after) = until_playing(&service, &b, Duration::from_secs(10), &mut seen).await;
    assert!(
        gap <= Duration::from_secs(2 * TARGET) + Duration::from_millis(700),
        "B listed {gap:?} after A died (goal: 2 target durations)"
    );
    // Shown with --nocapture: the channel just before and after the switch.
    eprintln!(
        "before the switch:\n{}\nafter the switch:\n{}",
        seen.text, after.text
    );
    let first_b = after
        .segments
        .iter()
        .position(|(url, _)| url.contains("/b/"))
        .expect("B's segments");
    assert!(
        after.segments[first_b].1,
        "a discontinuity before B's first segment:\n{}",
        after.text
    );
    assert!(first_b > 0, "A's segments stay in the window:\n{}", after.text);

    let rows = switches(&service).await;
    assert_eq!(rows[0]["reason"], "playlist_failed", "{rows:?}");
    assert!(
        rows[0]["detail"].as_str().expect("detail").contains("404"),
        "{rows:?}"
    );
    assert_eq!(rows[1]["reason"], "started");
    assert_eq!(rows[0]["from"], rows[1]["to"]);
    let (_, list) = service.get_json("/channels").await;
    assert_eq!(list["channels"][0]["source"]["site_key"], "b");
    let set_aside = &list["channels"][0]["set_aside"];
    assert_eq!(set_aside[0]["id"], rows[0]["from"], "A cools down: {list}");
    assert!(set_aside[0]["reason"].as_str().expect("reason").contains("404"));
    let metrics = metrics_text(&service).await;
    assert!(
        metrics.contains("f1stream_channel_switches_total{channel=\"x\",reason=\"playlist_failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("f1stream_channel_up{channel=\"x\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_source_is_left_for_the_next() {
    let (a, b, service, mut seen) = on_a_with_b_ready(50, 0).await;
    a.set(Mode::Frozen);
    // Stale after 3 target durations without a new segment, then listed
    // within 2 more.
    until_playing(
        &service,
        &b,
        Duration::from_secs(3 * TARGET + 2 * TARGET + 2),
        &mut seen,
    )
    .await;
    assert_eq!(switches(&service).await[0]["reason"], "stale");
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_failing_through_the_relay_switch_the_channel() {
    let (a, b, service, mut seen) = on_a_with_b_ready(300, 0).await;
    a.set(Mode::BrokenSegments);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A player fetches the newest segments through the relay and fails.
    let current = get_channel(&service, "x").await.expect("plays");
    let paths: Vec<&str> = current
        .text
        .lines()
        .filter(|l| l.starts_with("/relay/"))
        .collect();
    for path in paths.iter().rev().take(2) {
        let status = reqwest::get(service.url(path))
            .await
            .expect("relay answers")
            .status();
        assert_eq!(status.as_u16(), 502, "the relay passes the failure on");
    }
    let (gap, after) = until_playing(&service, &b, Duration::from_secs(2 * TARGET + 1), &mut seen).await;
    assert!(gap <= Duration::from_secs(2 * TARGET), "{gap:?}");
    // Players skip A's rest instead of retrying each failed segment.
    let failed_at = after
        .text
        .find(&format!("\n{}\n", paths[paths.len() - 2]))
        .expect("failed segment listed");
    let before_failed = &after.text[..failed_at];
    assert!(
        before_failed.ends_with("#EXT-X-GAP\n#EXTINF:1,"),
        "{}",
        after.text
    );
    let gaps = after.text.matches("#EXT-X-GAP\n").count();
    assert_eq!(gaps, 2, "the two failed segments, A's newest:\n{}", after.text);
    assert_eq!(switches(&service).await[0]["reason"], "segments_failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_without_a_healthy_source_answers_503_and_an_unknown_one_404() {
    let a = LiveSource::start("a", 0, Mode::Gone).await;
    let service = service_for(&[&a], "").await;
    let (status, _) = service.post_json("/extract").await;
    assert_eq!(status, 200);
    let (status, headers, body) = get_channel(&service, "x").await.expect_err("no source");
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "10");
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(error["error"], "channel \"x\" has no healthy source to play");
    let (status, _, _) = get_channel(&service, "nope").await.expect_err("no such channel");
    assert_eq!(status, 404);
    let (status, body) = service.get_json("/channels/nope/switches").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no channel \"nope\""))
    );
    let (status, _) = service.get_json("/channels/x/switches?limit=0").await;
    assert_eq!(status, 400);
    let (_, list) = service.get_json("/channels").await;
    let slugs: Vec<&str> = list["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["x", "best"], "configured first, then the built-in one");
    assert_eq!(list["channels"][0]["state"], "down");
    assert!(list["channels"][0]["source"].is_null());
    let metrics = metrics_text(&service).await;
    assert!(
        metrics.contains("f1stream_channel_up{channel=\"x\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("f1stream_channel_playlist_requests_total{channel=\"x\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_of_the_service_continues_the_numbering() {
    let a = LiveSource::start("a", 5000, Mode::Live).await;
    let b = LiveSource::start("b", 0, Mode::Gone).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1-stream.db");
    let config = config_for(&[&a, &b], "");
    let service = TestService::start_on(&db_path, &config).await;
    let mut seen = playing_a_with_b_ready(&service, &a, &b).await;
    a.set(Mode::Gone);
    let (_, before) = until_playing(&service, &b, Duration::from_secs(10), &mut seen).await;
    let newest_before = before.media_sequence + before.segments.len() as u64 - 1;
    service.stop().await;

    let restarted = TestService::start_on(&db_path, &config).await;
    let (_, list) = restarted.get_json("/channels").await;
    assert_eq!(
        list["channels"][0]["state"], "idle",
        "nothing fetched since the restart"
    );
    assert_eq!(
        list["channels"][0]["source"]["site_key"], "b",
        "the stored source"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = get_channel(&restarted, "x").await.expect("plays after a restart");
    assert!(
        after.media_sequence >= before.media_sequence,
        "{} < {}",
        after.media_sequence,
        before.media_sequence
    );
    let newest_after = after.media_sequence + after.segments.len() as u64 - 1;
    assert!(
        newest_after > newest_before,
        "numbering continues: {newest_after} after {newest_before}"
    );
    assert!(after.discontinuity_sequence >= before.discontinuity_sequence);
    assert!(from_source(&after, &b));
    // The same source continues without a discontinuity: the position came
    // back whole.
    let new_segments: Vec<_> = after
        .segments
        .iter()
        .skip_while(|(url, _)| before.segments.iter().any(|(u, _)| u == url))
        .collect();
    assert!(!new_segments.is_empty());
    assert!(
        new_segments.iter().all(|(_, discontinuity)| !discontinuity),
        "{}",
        after.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_viewers_cost_one_upstream_fetch_per_half_target_duration() {
    let a = LiveSource::start("a", 0, Mode::Live).await;
    let service = service_for(&[&a], "").await;
    let (status, _) = service.post_json("/extract").await;
    assert_eq!(status, 200);
    get_channel(&service, "x").await.expect("plays");
    let before = a.playlist_requests();
    let watching = Duration::from_secs(4);
    let started = Instant::now();
    let served = Arc::new(Mutex::new(0u32));
    let viewers: Vec<_> = (0..50)
        .map(|_| {
            let url = service.url("/channels/x.m3u8");
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while started.elapsed() < watching {
                    let response = client.get(&url).send().await.expect("answers");
                    assert_eq!(response.status(), 200);
                    response.text().await.expect("body");
                    *served.lock().expect("lock") += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    for viewer in viewers {
        viewer.await.expect("viewer");
    }
    let fetches = a.playlist_requests() - before;
    let half_targets = watching.as_secs_f64() / (TARGET as f64 / 2.0);
    let served = *served.lock().expect("lock");
    assert!(served > 500, "{served} playlists served");
    assert!(
        fetches as f64 <= half_targets + 2.0,
        "{fetches} upstream fetches for {served} playlists in {half_targets} half target durations"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_master_source_plays_its_best_variant_within_the_cap_with_muxed_audio() {
    let origin = FakeOrigin::start().await;
    // `/high` needs a separate audio rendition; `/mid` is within the cap;
    // `/low` is smaller. The origin serves live media playlists at each.
    let master = "#EXTM3U\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=9000000,AUDIO=\"aud\"\nhigh/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5000000\nmid/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=6000000\ntop/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n";
    origin.route("/master.m3u8", Reply::playlist(master));
    for variant in ["top", "audio"] {
        origin.route(
            &format!("/{variant}/index.m3u8"),
            Reply::playlist(common::MEDIA_LIVE),
        );
    }
    for n in [100, 101] {
        for variant in ["low", "mid", "high", "top"] {
            origin.route(&format!("/{variant}/seg{n}.ts"), Reply::bytes(vec![0x47u8; 1880]));
        }
    }
    let extra = format!(
        "{}[[channels]]\nslug = \"x\"\nmax_bandwidth = 5500000\n",
        static_extractor("m", &[origin.url("/master.m3u8")], "")
    );
    let service = TestService::start(&extra).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!((status, run["live_streams"].as_i64()), (200, Some(1)), "{run}");
    let seen = get_channel(&service, "x").await.expect("plays");
    assert!(
        seen.segments.iter().all(|(url, _)| url.contains("/mid/")),
        "{}",
        seen.text
    );
    let (_, list) = service.get_json("/channels").await;
    assert_eq!(list["channels"][0]["source"]["variant_bandwidth"], 5_000_000);
    assert_eq!(list["channels"][0]["title"], "x", "the slug when no title is set");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_with_only_demuxed_audio_variants_is_skipped() {
    let origin = FakeOrigin::start().await;
    let master = "#EXTM3U\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5000000,AUDIO=\"aud\"\nmid/index.m3u8\n";
    origin.route("/master.m3u8", Reply::playlist(master));
    origin.route("/audio/index.m3u8", Reply::playlist(common::MEDIA_LIVE));
    for n in [100, 101] {
        origin.route(&format!("/mid/seg{n}.ts"), Reply::bytes(vec![0x47u8; 1880]));
    }
    let extra = format!(
        "{}[[channels]]\nslug = \"x\"\n",
        static_extractor("m", &[origin.url("/master.m3u8")], "")
    );
    let service = TestService::start(&extra).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!((status, run["live_streams"].as_i64()), (200, Some(1)), "{run}");
    let (status, _, _) = get_channel(&service, "x").await.expect_err("nothing stitchable");
    assert_eq!(status, 503);
    let (_, list) = service.get_json("/channels").await;
    let set_aside = &list["channels"][0]["set_aside"];
    assert_eq!(set_aside[0]["id"], 1, "{list}");
    assert_eq!(
        set_aside[0]["reason"],
        "every variant plays audio from a separate rendition (not supported by channels)"
    );
}

#[tokio::test]
async fn channel_configuration_errors_name_the_key() {
    use f1_stream::config::Config;
    let cases = [
        ("[[channels]]\nslug = \"Bad Slug\"\n", "channels[0].slug"),
        (
            "[[channels]]\nslug = \"a\"\n[[channels]]\nslug = \"a\"\n",
            "channels[1].slug",
        ),
        (
            "[[channels]]\nslug = \"a\"\nsession = \"warmup\"\n",
            "channels[0].session",
        ),
        (
            "[[channels]]\nslug = \"a\"\nstream_type = \"film\"\n",
            "channels[0].stream_type",
        ),
        (
            "[[channels]]\nslug = \"a\"\nstream_type = \"vod\"\n",
            "channels[0].stream_type",
        ),
        (
            "[[channels]]\nslug = \"a\"\ntitle_filter = \"(\"\n",
            "channels[0].title_filter",
        ),
        (
            "[[channels]]\nslug = \"a\"\nsite_key = \"A B\"\n",
            "channels[0].site_key",
        ),
        ("[[channels]]\nslug = \"a\"\ncolour = \"red\"\n", "colour"),
    ];
    for (toml, key) in cases {
        let err = Config::from_toml_str(toml).expect_err(toml).to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let config = Config::from_toml_str("[[channels]]\nslug = \"race\"\nsession = \"live\"\n").expect("valid");
    let slugs: Vec<String> = config.channels().into_iter().map(|c| c.slug).collect();
    assert_eq!(slugs, ["race", "best"]);
    let own_best =
        Config::from_toml_str("[[channels]]\nslug = \"best\"\nsite_key = \"demo\"\n").expect("valid");
    let channels = own_best.channels();
    assert_eq!(channels.len(), 1, "a configured best replaces the built-in one");
    assert_eq!(channels[0].site_key, "demo");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channels_filters_choose_its_sources_whatever_the_ranking() {
    let a = LiveSource::start("a", 0, Mode::Live).await;
    let b = LiveSource::start("b", 0, Mode::Live).await;
    // `static_extractor` titles its streams "<site_key> <index>".
    let mut extra = config_for(&[&a, &b], "title_filter = \"^b \"");
    extra.push_str("[[channels]]\nslug = \"only-a\"\nsite_key = \"a\"\n");
    extra.push_str("[[channels]]\nslug = \"on-air\"\nsession = \"live\"\n");
    let service = TestService::start(&extra).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!((status, run["live_streams"].as_i64()), (200, Some(2)), "{run}");
    for _ in 0..3 {
        assert!(from_source(&get_channel(&service, "x").await.expect("plays"), &b));
        assert!(from_source(
            &get_channel(&service, "only-a").await.expect("plays"),
            &a
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // No calendar here, so no session is live: nothing to play.
    let (status, _, _) = get_channel(&service, "on-air")
        .await
        .expect_err("no live session");
    assert_eq!(status, 503);

    // Each channel lists the streams it chooses from, by the same filters.
    let candidates = |slug: &'static str| {
        let service = &service;
        async move {
            let (status, body) = service.get_json(&format!("/channels/{slug}/streams")).await;
            assert_eq!(status, 200, "{body}");
            let sites: Vec<String> = body["streams"]
                .as_array()
                .expect("streams")
                .iter()
                .map(|s| s["site_key"].as_str().expect("site_key").to_owned())
                .collect();
            assert_eq!(body["count"], sites.len());
            sites
        }
    };
    assert_eq!(candidates("x").await, ["b"], "the title filter");
    assert_eq!(candidates("only-a").await, ["a"], "the site filter");
    assert!(candidates("on-air").await.is_empty(), "nothing live");
    assert_eq!(candidates("best").await.len(), 2);
    assert_eq!(service.get_json("/channels/nope/streams").await.0, 404);
    assert_eq!(service.get_json("/channels").await.1["default"], "best");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_channels_command_prints_each_channel_with_its_source_and_switches() {
    let a = LiveSource::start("a", 0, Mode::Live).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1-stream.db");
    let config = common::test_config_toml(&db_path, &config_for(&[&a], ""));
    let service = TestService::start_with_config(&db_path, &config).await;
    let (status, _) = service.post_json("/extract").await;
    assert_eq!(status, 200);
    get_channel(&service, "x").await.expect("plays");
    service.stop().await;
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).expect("write config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args(["channels", "-c", config_path.to_str().expect("utf-8")])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two channels:\n{stdout}");
    assert!(lines[0].starts_with("SLUG"), "{stdout}");
    let x: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&x[..5], ["x", "/channels/x.m3u8", "idle", "#1", "a"], "{stdout}");
    assert!(
        lines[1].contains(" 1  ") && lines[1].ends_with(" started"),
        "{stdout}"
    );
    let best: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        best,
        ["best", "/channels/best.m3u8", "idle", "-", "0", "-"],
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_whose_playlist_hangs_is_left_within_two_fetch_deadlines() {
    let (a, b, service, mut seen) = on_a_with_b_ready(10, 0).await;
    a.set(Mode::Hanging);
    // Each fetch may take 1.5 target durations, at least 2 s; it is tried
    // twice, then B is opened.
    let (gap, _) = until_playing(&service, &b, Duration::from_secs(8), &mut seen).await;
    assert!(
        gap >= Duration::from_secs(3),
        "two deadlines passed first: {gap:?}"
    );
    let rows = switches(&service).await;
    assert_eq!(rows[0]["reason"], "playlist_failed");
    assert!(
        rows[0]["detail"].as_str().expect("detail").contains("timed out"),
        "{rows:?}"
    );
}

/// Segment number → upstream URL of a channel playlist.
fn numbered(seen: &Seen) -> std::collections::BTreeMap<u64, String> {
    seen.segments
        .iter()
        .enumerate()
        .map(|(i, (url, _))| (seen.media_sequence + i as u64, url.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_services_on_one_database_number_the_channel_alike_across_a_switch() {
    let a = LiveSource::start("a", 400, Mode::Live).await;
    let b = LiveSource::start("b", 0, Mode::Gone).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1-stream.db");
    let config = config_for(&[&a, &b], "");
    let one = TestService::start_on(&db_path, &config).await;
    let two = TestService::start_on(&db_path, &config).await;
    let mut seen = playing_a_with_b_ready(&one, &a, &b).await;
    let agree = |x: &Seen, y: &Seen| {
        let (x_numbers, y_numbers) = (numbered(x), numbered(y));
        let common: Vec<_> = x_numbers.keys().filter(|n| y_numbers.contains_key(n)).collect();
        assert!(!common.is_empty(), "the windows overlap:\n{}\n{}", x.text, y.text);
        for n in common {
            assert_eq!(x_numbers[n], y_numbers[n], "segment {n}:\n{}\n{}", x.text, y.text);
        }
    };
    for _ in 0..3 {
        let (x, y) = (
            get_channel(&one, "x").await.expect("one plays"),
            get_channel(&two, "x").await.expect("two plays"),
        );
        agree(&x, &y);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    a.set(Mode::Gone);
    until_playing(&one, &b, Duration::from_secs(10), &mut seen).await;
    let mut from_two = get_channel(&two, "x").await.expect("two plays");
    let (_, from_two_after) = until_playing(&two, &b, Duration::from_secs(3), &mut from_two).await;
    let from_one = get_channel(&one, "x").await.expect("one plays");
    agree(&from_one, &from_two_after);
    let switch_rows = switches(&one).await;
    let failures = switch_rows
        .iter()
        .filter(|r| r["reason"] == "playlist_failed")
        .count();
    assert_eq!(failures, 1, "one switch between them: {switch_rows:?}");
}
