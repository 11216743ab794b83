//! Deep health: a corpus of streams served by the fake origin, each with the
//! verdict a player would reach (variant, live/VOD, frozen encoder, segment,
//! restricted), plus the byte and request budget of one check.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{FakeOrigin, MASTER, MEDIA_LIVE, MEDIA_VOD, Reply, deep_checker as checker};
use f1_stream::config::HealthConfig;
use f1_stream::model::{ErrorKind, HealthResult, MediaState, StreamType};
use reqwest::header::{HeaderMap, HeaderValue};

fn referer() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("referer", HeaderValue::from_static("https://f1.example/"));
    headers
}

/// A master whose one variant declares an absurd 100 Gbit/s, so any real
/// transfer is slower than declared.
const GREEDY_MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000000000\ngreedy/index.m3u8\n";

struct Case {
    name: &'static str,
    setup: fn(&FakeOrigin),
    path: &'static str,
    headers: fn() -> HeaderMap,
    healthy: bool,
    error_kind: Option<ErrorKind>,
    stream_type: Option<StreamType>,
}

fn none() -> HeaderMap {
    HeaderMap::new()
}

fn corpus() -> Vec<Case> {
    vec![
        Case {
            name: "good live media playlist",
            setup: |o| {
                o.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
            },
            path: "/live.m3u8",
            headers: none,
            healthy: true,
            error_kind: None,
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "good VOD",
            setup: |o| {
                o.route("/vod.m3u8", Reply::playlist(MEDIA_VOD));
            },
            path: "/vod.m3u8",
            headers: none,
            healthy: true,
            error_kind: None,
            stream_type: Some(StreamType::Vod),
        },
        Case {
            name: "master whose variants all 404",
            setup: |o| {
                for variant in ["/low/index.m3u8", "/mid/index.m3u8", "/high/index.m3u8"] {
                    o.route(variant, Reply::status(404));
                }
                o.route("/master.m3u8", Reply::playlist(MASTER));
            },
            path: "/master.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Variant),
            stream_type: None,
        },
        Case {
            name: "master whose first variant 404s and second plays",
            setup: |o| {
                o.route("/mid/index.m3u8", Reply::status(404));
                o.route("/master.m3u8", Reply::playlist(MASTER));
            },
            path: "/master.m3u8",
            headers: none,
            healthy: true,
            error_kind: None,
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "segment 404",
            setup: |o| {
                o.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
                o.route("/seg101.ts", Reply::status(404));
            },
            path: "/live.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Segment),
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "segment needs a Referer, none sent",
            setup: |o| {
                o.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
                o.route(
                    "/seg101.ts",
                    Reply::bytes(vec![0x47; 1880]).require_header("referer", "https://f1.example/"),
                );
            },
            path: "/live.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Segment),
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "segment needs a Referer, the extractor's headers send it",
            setup: |o| {
                o.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
                o.route(
                    "/seg101.ts",
                    Reply::bytes(vec![0x47; 1880]).require_header("referer", "https://f1.example/"),
                );
            },
            path: "/live.m3u8",
            headers: referer,
            healthy: true,
            error_kind: None,
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "403 is restricted, not dead",
            setup: |o| {
                o.route("/geo.m3u8", Reply::status(403));
            },
            path: "/geo.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Restricted),
            stream_type: None,
        },
        Case {
            name: "451 is restricted too",
            setup: |o| {
                o.route("/legal.m3u8", Reply::status(451));
            },
            path: "/legal.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Restricted),
            stream_type: None,
        },
        Case {
            name: "valid playlist served as text/html",
            setup: |o| {
                o.route(
                    "/mislabelled.m3u8",
                    Reply::bytes(MEDIA_LIVE).header("content-type", "text/html"),
                );
            },
            path: "/mislabelled.m3u8",
            headers: none,
            healthy: true,
            error_kind: None,
            stream_type: Some(StreamType::Live),
        },
        Case {
            name: "HTML error page",
            setup: |o| {
                o.route(
                    "/error.m3u8",
                    Reply::bytes("<html><h1>502 Bad Gateway</h1></html>").header("content-type", "text/html"),
                );
            },
            path: "/error.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::NotHls),
            stream_type: None,
        },
        Case {
            name: "media playlist without segments",
            setup: |o| {
                o.route(
                    "/empty.m3u8",
                    Reply::playlist("#EXTM3U\n#EXT-X-TARGETDURATION:6\n"),
                );
            },
            path: "/empty.m3u8",
            headers: none,
            healthy: false,
            error_kind: Some(ErrorKind::Segment),
            stream_type: Some(StreamType::Live),
        },
    ]
}

#[tokio::test]
async fn every_case_of_the_corpus_gets_the_verdict_a_player_would() {
    let mut failures = Vec::new();
    for case in corpus() {
        let origin = FakeOrigin::start().await;
        (case.setup)(&origin);
        let result = checker().check(&origin.url(case.path), &(case.headers)()).await;
        let matches = result.is_live == case.healthy
            && result.error_kind == case.error_kind
            && case.stream_type.is_none_or(|t| t == result.stream_type);
        if !matches {
            failures.push(format!("{}: {result:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "wrong verdicts:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_master_check_reads_one_variant_and_one_segment() {
    let origin = FakeOrigin::start().await;
    origin.route("/master.m3u8", Reply::playlist(MASTER));
    let result = checker().check(&origin.url("/master.m3u8"), &none()).await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(result.variant_count, Some(3));
    assert_eq!(result.media_sequence, Some(100));
    assert_eq!(result.target_duration, Some(6.0));
    assert_eq!(result.stream_type, StreamType::Live);
    assert!(result.segment_ttfb_ms.is_some() && result.throughput_bps.is_some());
    assert_eq!(origin.requests_to("/master.m3u8").len(), 1);
    assert_eq!(
        origin.requests_to("/mid/index.m3u8").len(),
        1,
        "the median variant"
    );
    assert!(
        origin.requests_to("/low/index.m3u8").is_empty() && origin.requests_to("/high/index.m3u8").is_empty()
    );
    let segment = origin.requests_to("/mid/seg101.ts");
    assert_eq!(segment.len(), 1, "the middle segment, not the newest or oldest");
    assert_eq!(segment[0].headers["range"], "bytes=0-262143");
}

#[tokio::test]
async fn a_frozen_live_playlist_is_stale_on_the_next_check() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
    let url = origin.url("/live.m3u8");
    let first = checker().check(&url, &none()).await;
    assert!(first.is_live);
    let mut previous = first.media_state().expect("a live check records its position");

    // Checked again soon after: within 3 × target duration it may not move.
    let soon = checker().check_since(&url, &none(), Some(&previous)).await;
    assert!(soon.is_live, "{soon:?}");

    // The same position 30 s (> 3 × 6 s) later: the encoder is frozen.
    previous.checked_at = Utc::now() - chrono::Duration::seconds(30);
    let later = checker().check_since(&url, &none(), Some(&previous)).await;
    assert!(!later.is_live);
    assert_eq!(later.error_kind, Some(ErrorKind::Stale), "{later:?}");

    // A VOD never goes stale.
    origin.route("/vod.m3u8", Reply::playlist(MEDIA_VOD));
    let vod_url = origin.url("/vod.m3u8");
    let vod = checker().check(&vod_url, &none()).await;
    let mut vod_state = vod.media_state().expect("position");
    vod_state.checked_at = Utc::now() - chrono::Duration::hours(1);
    assert!(
        checker()
            .check_since(&vod_url, &none(), Some(&vod_state))
            .await
            .is_live
    );
}

#[tokio::test]
async fn a_sequence_that_goes_backwards_is_a_restart_not_a_failure() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
    let previous = MediaState {
        media_sequence: 5000,
        last_segment: "seg5001.ts".to_owned(),
        checked_at: Utc::now() - chrono::Duration::seconds(60),
    };
    let result = checker()
        .check_since(&origin.url("/live.m3u8"), &none(), Some(&previous))
        .await;
    assert!(result.is_live, "{result:?}");
    assert!(result.restarted);
    assert_eq!(result.media_sequence, Some(100));
}

#[tokio::test]
async fn a_segment_slower_than_declared_has_a_throughput_ratio_below_one() {
    let origin = FakeOrigin::start().await;
    origin.route("/greedy.m3u8", Reply::playlist(GREEDY_MASTER));
    origin.route("/greedy/index.m3u8", Reply::playlist(MEDIA_LIVE));
    let result: HealthResult = checker().check(&origin.url("/greedy.m3u8"), &none()).await;
    assert!(result.is_live, "slow is not dead: {result:?}");
    let ratio = result
        .throughput_ratio
        .expect("ratio against the declared BANDWIDTH");
    assert!(ratio < 1.0, "{ratio}");

    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
    let media_only = checker().check(&origin.url("/live.m3u8"), &none()).await;
    assert_eq!(
        media_only.throughput_ratio, None,
        "no declared BANDWIDTH, no ratio"
    );
}

#[tokio::test]
async fn the_segment_probe_respects_its_byte_budget_on_a_huge_segment() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/seg101.ts", Reply::sized(512 * 1024 * 1024));
    let result = checker().check(&origin.url("/live.m3u8"), &none()).await;
    // The origin's counting pattern is no media format: the verdict proves
    // the probe read the segment's first bytes, the count what it cost.
    assert_eq!(result.error_kind, Some(ErrorKind::Segment), "{result:?}");
    assert_eq!(
        result.error.as_deref(),
        Some("segment is not a known media format")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = origin.bytes_sent();
    assert!(
        sent < 16 * 1024 * 1024,
        "origin pushed {sent} bytes for a 256 KiB probe"
    );
}

mod runs {
    //! Deep health through real runs: flap damping, timeout retries,
    //! `order=score` and `stream_type=`.

    use std::time::Duration;

    use super::GREEDY_MASTER;
    use super::common::{FakeOrigin, MEDIA_LIVE, MEDIA_VOD, Reply, TestService, static_extractor};

    fn urls_of(list: &serde_json::Value) -> Vec<String> {
        list["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["url"].as_str().expect("url").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn one_failure_keeps_a_stream_served_as_pending_and_the_second_drops_it() {
        let origin = FakeOrigin::start().await;
        origin.route("/steady.m3u8", Reply::playlist(MEDIA_LIVE));
        origin.route("/flaky.m3u8", Reply::playlist(MEDIA_LIVE));
        let urls = [origin.url("/steady.m3u8"), origin.url("/flaky.m3u8")];
        let service = TestService::start(&static_extractor("s", &urls, "")).await;
        service.post_json("/extract").await;
        assert_eq!(service.get_json("/streams").await.1["count"], 2);

        origin.route("/flaky.m3u8", Reply::status(503));
        service.post_json("/extract").await;
        let (_, served) = service.get_json("/streams").await;
        assert_eq!(
            urls_of(&served),
            urls,
            "pending is still served, after healthy ones"
        );
        assert_eq!(served["streams"][1]["state"], "pending");
        assert_eq!(served["streams"][1]["is_live"], false);
        assert_eq!(served["streams"][0]["state"], "healthy");

        service.post_json("/extract").await;
        let (_, served) = service.get_json("/streams").await;
        assert_eq!(
            urls_of(&served),
            [origin.url("/steady.m3u8")],
            "two failures in a row: down"
        );
        let (_, all) = service.get_json("/streams/all").await;
        assert_eq!(all["streams"][1]["state"], "down");

        origin.route("/flaky.m3u8", Reply::playlist(MEDIA_LIVE));
        service.post_json("/extract").await;
        assert_eq!(
            service.get_json("/streams").await.1["count"],
            2,
            "one good check brings it back"
        );
    }

    #[tokio::test]
    async fn a_new_stream_that_fails_is_never_served() {
        let origin = FakeOrigin::start().await;
        origin.route("/dead.m3u8", Reply::status(404));
        let service = TestService::start(&static_extractor("s", &[origin.url("/dead.m3u8")], "")).await;
        service.post_json("/extract").await;
        assert_eq!(service.get_json("/streams").await.1["count"], 0);
    }

    #[tokio::test]
    async fn a_timeout_is_retried_once_in_the_same_run_before_it_counts() {
        let origin = FakeOrigin::start().await;
        origin.route("/slow-once.m3u8", Reply::playlist(MEDIA_LIVE));
        origin.route_once(
            "/slow-once.m3u8",
            Reply::playlist(MEDIA_LIVE).delay(Duration::from_secs(5)),
        );
        let service = TestService::start(&static_extractor("s", &[origin.url("/slow-once.m3u8")], "")).await;
        let (_, body) = service.post_json("/extract").await;
        assert_eq!(body["live_streams"], 1, "the retry succeeded");
        assert_eq!(origin.requests_to("/slow-once.m3u8").len(), 2);
        assert_eq!(
            service.count("health_checks").await,
            1,
            "one check per stream and run"
        );
    }

    #[tokio::test]
    async fn order_score_ranks_by_the_documented_score_and_stream_type_filters() {
        let origin = FakeOrigin::start().await;
        origin.route("/greedy.m3u8", Reply::playlist(GREEDY_MASTER));
        origin.route("/greedy/index.m3u8", Reply::playlist(MEDIA_LIVE));
        origin.route(
            "/slow.m3u8",
            Reply::playlist(MEDIA_LIVE).delay(Duration::from_millis(400)),
        );
        origin.route("/vod.m3u8", Reply::playlist(MEDIA_VOD));
        let urls = ["/greedy.m3u8", "/slow.m3u8", "/vod.m3u8"].map(|p| origin.url(p));
        let service = TestService::start(&static_extractor("s", &urls, "")).await;
        service.post_json("/extract").await;

        let (status, scored) = service.get_json("/streams?order=score").await;
        assert_eq!(status, 200);
        let scores: Vec<f64> = scored["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["score"].as_f64().expect("score"))
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "descending: {scores:?}");
        assert_eq!(
            urls_of(&scored)[0],
            origin.url("/vod.m3u8"),
            "fast and able to deliver beats slow, and beats a stream that cannot keep up"
        );
        let greedy = scored["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .find(|s| s["url"] == origin.url("/greedy.m3u8"))
            .expect("greedy served");
        assert!(greedy["throughput_ratio"].as_f64().expect("ratio") < 1.0);

        let live = urls_of(&service.get_json("/streams?stream_type=live").await.1);
        assert_eq!(live.len(), 2);
        assert!(!live.contains(&origin.url("/vod.m3u8")));
        let vod = urls_of(&service.get_json("/streams?stream_type=vod").await.1);
        assert_eq!(vod, [origin.url("/vod.m3u8")]);
        for (query, parameter) in [("order=best", "order"), ("stream_type=radio", "stream_type")] {
            let (status, body) = service.get_json(&format!("/streams?{query}")).await;
            assert_eq!(status, 400);
            assert!(body["error"].as_str().expect("message").starts_with(parameter));
        }
    }

    #[tokio::test]
    async fn ranking_default_order_score_makes_score_the_default() {
        let origin = FakeOrigin::start().await;
        origin.route("/fast-vod.m3u8", Reply::playlist(MEDIA_VOD));
        origin.route(
            "/slow-live.m3u8",
            Reply::playlist(MEDIA_LIVE).delay(Duration::from_millis(400)),
        );
        let urls = [origin.url("/slow-live.m3u8"), origin.url("/fast-vod.m3u8")];
        let config = format!(
            "[ranking]\ndefault_order = \"score\"\n{}",
            static_extractor("s", &urls, "")
        );
        let service = TestService::start(&config).await;
        service.post_json("/extract").await;
        let default = urls_of(&service.get_json("/streams").await.1);
        assert_eq!(
            default[0],
            origin.url("/fast-vod.m3u8"),
            "score order: the faster VOD first"
        );
        let fastest = urls_of(&service.get_json("/streams?order=fastest").await.1);
        assert_eq!(
            fastest[0],
            origin.url("/slow-live.m3u8"),
            "fastest order: live broadcasts first"
        );
    }

    #[tokio::test]
    async fn throughput_ratios_and_new_results_reach_the_metrics() {
        let origin = FakeOrigin::start().await;
        origin.route("/greedy.m3u8", Reply::playlist(GREEDY_MASTER));
        origin.route("/greedy/index.m3u8", Reply::playlist(MEDIA_LIVE));
        origin.route("/geo.m3u8", Reply::status(403));
        let urls = [origin.url("/greedy.m3u8"), origin.url("/geo.m3u8")];
        let service = TestService::start(&static_extractor("s", &urls, "")).await;
        service.post_json("/extract").await;
        let text = reqwest::get(service.url("/metrics"))
            .await
            .expect("answers")
            .text()
            .await
            .expect("text");
        assert!(
            text.contains("f1stream_health_check_throughput_ratio_count{site_key=\"s\"} 1"),
            "{text}"
        );
        assert!(text.contains("f1stream_health_checks_total{site_key=\"s\",result=\"restricted\"} 1"));
        assert!(text.contains("f1stream_health_checks_total{site_key=\"s\",result=\"stale\"} 0"));
    }
}

#[tokio::test]
async fn a_master_whose_variants_follow_more_renditions_than_the_first_read_holds_is_read_whole() {
    let origin = FakeOrigin::start().await;
    let mut master = String::from("#EXTM3U\n");
    for i in 0..200 {
        master.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Language {i}\",URI=\"subs/{i}.m3u8\"\n"
        ));
    }
    master.push_str("#EXT-X-STREAM-INF:BANDWIDTH=900000,SUBTITLES=\"subs\"\nvideo/index.m3u8\n");
    assert!(
        master.len() as u64 > HealthConfig::default().max_bytes,
        "the variant lies past the first read"
    );
    origin.route("/big-master.m3u8", Reply::playlist(master));
    origin.route("/video/index.m3u8", Reply::playlist(MEDIA_LIVE));
    let result = checker().check(&origin.url("/big-master.m3u8"), &none()).await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(result.variant_count, Some(1));
    assert_eq!(result.bitrate, 900_000);
}

#[tokio::test]
async fn a_byte_range_segment_is_probed_at_its_offset() {
    let origin = FakeOrigin::start().await;
    // One file: a text preamble, then the TS the playlist addresses.
    let mut file = vec![b'x'; 4000];
    file.extend(std::iter::repeat_n(0x47u8, 188 * 20));
    origin.route("/all.ts", Reply::bytes(file).honour_range());
    let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:4\n\
        #EXTINF:4,\n#EXT-X-BYTERANGE:3760@4000\nall.ts\n#EXT-X-ENDLIST\n";
    origin.route("/range.m3u8", Reply::playlist(playlist));
    let result = checker().check(&origin.url("/range.m3u8"), &none()).await;
    assert!(result.is_live, "{result:?}");
    let segment_requests = origin.requests_to("/all.ts");
    assert_eq!(segment_requests.len(), 1);
    assert_eq!(
        segment_requests[0]
            .headers
            .get("range")
            .and_then(|v| v.to_str().ok()),
        Some("bytes=4000-7759")
    );
}

#[tokio::test]
async fn uris_with_define_variables_are_checked_with_them_as_the_proxy_writes_them() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/vars/master.m3u8",
        Reply::playlist(
            "#EXTM3U\n#EXT-X-DEFINE:NAME=\"dir\",VALUE=\"video\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000\n{$dir}/index.m3u8\n",
        ),
    );
    origin.route(
        "/vars/video/index.m3u8",
        Reply::playlist(
            "#EXTM3U\n#EXT-X-DEFINE:QUERYPARAM=\"seg\"\n#EXT-X-TARGETDURATION:6\n\
             #EXTINF:6,\n{$seg}100.ts\n#EXTINF:6,\n{$seg}101.ts\n",
        ),
    );
    // The variant's own URL carries the QUERYPARAM value.
    origin.route(
        "/vars/master-q.m3u8",
        Reply::playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=900000\nvideo/index.m3u8?seg=part\n"),
    );
    let result = checker().check(&origin.url("/vars/master-q.m3u8"), &none()).await;
    assert!(result.is_live, "{result:?}");
    assert_eq!(
        origin.requests_to("/vars/video/part101.ts").len(),
        1,
        "the middle segment, substituted"
    );
    checker().check(&origin.url("/vars/master.m3u8"), &none()).await;
    assert_eq!(
        origin.requests_to("/vars/video/index.m3u8").len(),
        2,
        "the NAME/VALUE variable of the master named the variant too"
    );
}
