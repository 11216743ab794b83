//! Health checks against a fake origin on 127.0.0.1: how a check reads a
//! playlist and maps what the guarded fetch answers (its own behaviour,
//! guard, caps, redirects, is proven in `tests/fetch.rs`).

mod common;

use std::time::Duration;

use common::{FakeOrigin, MASTER, MEDIA_LIVE, MEDIA_VOD, Reply};
use f1_stream::config::{HealthConfig, NetworkConfig};
use f1_stream::health::{HealthChecker, NOT_HLS_MESSAGE};
use f1_stream::model::{ErrorKind, PlaylistKind, StreamType};
use f1_stream::net::Http;
use reqwest::header::{HeaderMap, HeaderValue};

/// A checker with a 1 s timeout that may reach loopback (the origin's).
fn checker() -> HealthChecker {
    let health = HealthConfig {
        timeout_secs: 1,
        ..HealthConfig::default()
    };
    let network = NetworkConfig {
        allow_private_networks: true,
        ..NetworkConfig::default()
    };
    let http = Http::new(&network, &health.user_agent).expect("client builds");
    HealthChecker::new(http, &health)
}

#[tokio::test]
async fn master_playlist_200_is_healthy_with_highest_bandwidth_and_timings() {
    let origin = FakeOrigin::start().await;
    origin.route("/master.m3u8", Reply::playlist(MASTER));
    let result = checker()
        .check(&origin.url("/master.m3u8"), &HeaderMap::new())
        .await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(result.http_status, Some(200));
    assert_eq!(result.bitrate, 5_000_000);
    assert_eq!(result.playlist_kind, Some(PlaylistKind::Master));
    assert_eq!(result.error_kind, None);
    let (ttfb, total) = (
        result.ttfb_ms.expect("ttfb"),
        result.response_time_ms.expect("time"),
    );
    assert!(ttfb <= total, "ttfb {ttfb} must not exceed response time {total}");
}

#[tokio::test]
async fn partial_content_206_is_healthy_and_range_asks_for_max_bytes() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE).honour_range());
    let result = checker()
        .check(&origin.url("/live.m3u8"), &HeaderMap::new())
        .await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(result.http_status, Some(206));
    assert_eq!(result.playlist_kind, Some(PlaylistKind::Media));
    let requests = origin.requests_to("/live.m3u8");
    assert_eq!(requests[0].headers["range"], "bytes=0-8191");
    assert_eq!(
        requests.len(),
        1,
        "a 206 of the whole playlist is not fetched again"
    );
}

#[tokio::test]
async fn a_media_playlist_longer_than_max_bytes_is_fetched_whole_once_and_judged() {
    // 600 segments, ~13 KiB: past the 8 KiB first read, within
    // `health.media_playlist_bytes`. Long live playlists are common.
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1000\n");
    for sequence in 1000..1600 {
        playlist.push_str(&format!("#EXTINF:6.0,\nseg{sequence}.ts\n"));
    }
    assert!(playlist.len() > 8192);
    let origin = FakeOrigin::start().await;
    origin.route("/long.m3u8", Reply::playlist(playlist).honour_range());
    let result = checker()
        .check(&origin.url("/long.m3u8"), &HeaderMap::new())
        .await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(
        result.stream_type,
        StreamType::Live,
        "typed from the whole playlist"
    );
    let requests = origin.requests_to("/long.m3u8");
    assert_eq!(requests.len(), 2, "the cut first read, then the whole playlist");
    assert_eq!(requests[0].headers["range"], "bytes=0-8191");
    assert!(
        !requests[1].headers.contains_key("range"),
        "{:?}",
        requests[1].headers
    );
    // The probe went to the middle segment of the whole list.
    assert_eq!(origin.requests_to("/seg1300.ts").len(), 1);
}

#[tokio::test]
async fn a_master_whose_variants_all_fail_costs_at_most_three_variant_requests() {
    let mut master = String::from("#EXTM3U\n");
    for (i, bandwidth) in [800_000, 1_500_000, 3_000_000, 6_000_000, 9_000_000]
        .iter()
        .enumerate()
    {
        master.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}\nv{i}.m3u8\n"));
    }
    let origin = FakeOrigin::start().await;
    origin.route("/master.m3u8", Reply::playlist(master));
    for i in 0..5 {
        origin.route(&format!("/v{i}.m3u8"), Reply::status(404));
    }
    let result = checker()
        .check(&origin.url("/master.m3u8"), &HeaderMap::new())
        .await;
    assert!(!result.is_live, "{result:?}");
    assert_eq!(result.error_kind, Some(ErrorKind::Variant), "{result:?}");
    let tried: Vec<usize> = (0..5)
        .filter(|i| !origin.requests_to(&format!("/v{i}.m3u8")).is_empty())
        .collect();
    assert_eq!(
        tried.len(),
        f1_stream::health::MAX_VARIANTS_TRIED,
        "tried {tried:?}"
    );
    // Nearest the median (3 Mb/s) first: 3 (±0), 1.5 (1.5 off), 0.8 (2.2
    // off); 6 Mb/s (3 off) is never asked.
    assert_eq!(tried, [0, 1, 2]);
}

#[tokio::test]
async fn complete_media_playlists_are_typed_live_or_vod() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/vod.m3u8", Reply::playlist(MEDIA_VOD));
    let live = checker()
        .check(&origin.url("/live.m3u8"), &HeaderMap::new())
        .await;
    let vod = checker().check(&origin.url("/vod.m3u8"), &HeaderMap::new()).await;
    assert_eq!(live.stream_type, StreamType::Live);
    assert_eq!(vod.stream_type, StreamType::Vod);
}

#[tokio::test]
async fn error_statuses_are_http_status_errors() {
    let origin = FakeOrigin::start().await;
    origin.route("/gone.m3u8", Reply::status(404));
    origin.route("/broken.m3u8", Reply::playlist(MASTER).with_status(500));
    for (path, code) in [("/gone.m3u8", 404), ("/broken.m3u8", 500)] {
        let result = checker().check(&origin.url(path), &HeaderMap::new()).await;
        assert!(!result.is_live);
        assert_eq!(result.error_kind, Some(ErrorKind::HttpStatus));
        assert_eq!(result.error.as_deref(), Some(format!("HTTP {code}").as_str()));
        assert_eq!(result.http_status, Some(code));
    }
}

#[tokio::test]
async fn html_body_is_not_hls() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/page.m3u8",
        Reply::bytes("<html><body>Stream offline</body></html>"),
    );
    let result = checker()
        .check(&origin.url("/page.m3u8"), &HeaderMap::new())
        .await;
    assert!(!result.is_live);
    assert_eq!(result.error_kind, Some(ErrorKind::NotHls));
    assert_eq!(result.error.as_deref(), Some(NOT_HLS_MESSAGE));
    assert_eq!(result.http_status, Some(200));
}

#[tokio::test]
async fn answer_slower_than_the_timeout_is_a_timeout() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/slow.m3u8",
        Reply::playlist(MASTER).delay(Duration::from_secs(5)),
    );
    let started = std::time::Instant::now();
    let result = checker()
        .check(&origin.url("/slow.m3u8"), &HeaderMap::new())
        .await;
    assert_eq!(result.error_kind, Some(ErrorKind::Timeout));
    assert_eq!(result.error.as_deref(), Some("Timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the check must stop at its 1 s timeout"
    );
}

#[tokio::test]
async fn only_the_byte_budget_is_read_from_an_endless_body() {
    let origin = FakeOrigin::start().await;
    origin.route("/endless.m3u8", Reply::endless(64 * 1024));
    let result = checker()
        .check(&origin.url("/endless.m3u8"), &HeaderMap::new())
        .await;
    assert_eq!(
        result.error_kind,
        Some(ErrorKind::TooLarge),
        "a playlist that never ends exceeds the media playlist budget: {result:?}"
    );
    // The checker hangs up at its budget; the origin can only have pushed
    // what fits in socket buffers, never the unbounded rest.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = origin.bytes_sent();
    assert!(sent < 16 * 1024 * 1024, "origin sent {sent} bytes");
}

#[tokio::test]
async fn body_cut_midway_is_unhealthy() {
    let origin = FakeOrigin::start().await;
    origin.route("/cut.m3u8", Reply::truncated(&MASTER.as_bytes()[..40]));
    let result = checker().check(&origin.url("/cut.m3u8"), &HeaderMap::new()).await;
    assert!(!result.is_live, "{result:?}");
    assert_eq!(result.http_status, Some(200));
    assert!(result.error_kind.is_some());
}

#[tokio::test]
async fn extractor_headers_reach_the_origin() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/gated.m3u8",
        Reply::playlist(MASTER).require_header("referer", "https://f1.example/"),
    );
    let url = origin.url("/gated.m3u8");
    let without = checker().check(&url, &HeaderMap::new()).await;
    assert_eq!(without.http_status, Some(403));

    let mut headers = HeaderMap::new();
    headers.insert("referer", HeaderValue::from_static("https://f1.example/"));
    let with = checker().check(&url, &headers).await;
    assert!(with.is_live, "{with:?}");
    let seen = origin.requests_to("/gated.m3u8");
    assert_eq!(
        seen.last().expect("request").headers["referer"],
        "https://f1.example/"
    );
    assert_eq!(
        seen.last().expect("request").headers["user-agent"],
        "Mozilla/5.0 (compatible; f1-stream)"
    );
}
