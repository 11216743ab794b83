//! `/metrics` after real runs and relays: exact values per extractor and
//! result, relay bytes, route templates, startup state from the database.

mod common;

use common::{FakeOrigin, MASTER, MEDIA_LIVE, Reply, TestService, static_extractor};
use f1_stream::proxy::token::Kind;

async fn scrape(service: &TestService) -> String {
    let response = reqwest::get(service.url("/metrics")).await.expect("answers");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    response.text().await.expect("text")
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[tokio::test]
async fn a_run_sets_exact_per_extractor_values_and_counts_checks_by_result() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    origin.route("/b.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/gone.m3u8", Reply::status(404));
    origin.route("/page.m3u8", Reply::bytes("<html></html>"));
    origin.route("/broken.json", Reply::status(500));
    let config = [
        static_extractor(
            "good",
            &["/a.m3u8", "/b.m3u8", "/gone.m3u8", "/page.m3u8"].map(|p| origin.url(p)),
            "",
        ),
        format!(
            "[[extractors]]\nsite_key = \"broken\"\nsite_name = \"Broken\"\nkind = \"json\"\nurl = \"{}\"\n\
             fields = {{ url = \"/u\" }}\n",
            origin.url("/broken.json")
        ),
    ]
    .concat();
    let service = TestService::start(&config).await;

    let before = scrape(&service).await;
    for series in [
        "f1stream_extractor_up{site_key=\"good\"}",
        "f1stream_extractor_streams{site_key=\"broken\"}",
        "f1stream_health_checks_total{site_key=\"good\",result=\"live\"}",
        "f1stream_health_checks_total{site_key=\"broken\",result=\"timeout\"}",
        "f1stream_extraction_runs_total{trigger=\"manual\"}",
        "f1stream_relay_bytes_total",
        "f1stream_relay_active",
    ] {
        assert_eq!(
            value(&before, series),
            0.0,
            "{series} exists at zero from startup"
        );
    }

    service.post_json("/extract").await;
    let after = scrape(&service).await;
    assert_eq!(value(&after, "f1stream_extractor_up{site_key=\"good\"}"), 1.0);
    assert_eq!(value(&after, "f1stream_extractor_up{site_key=\"broken\"}"), 0.0);
    assert_eq!(
        value(&after, "f1stream_extractor_streams{site_key=\"good\"}"),
        4.0
    );
    assert_eq!(
        value(&after, "f1stream_extractor_live_streams{site_key=\"good\"}"),
        2.0
    );
    assert_eq!(
        value(&after, "f1stream_extractor_streams{site_key=\"broken\"}"),
        0.0
    );
    let checks = |result: &str| {
        value(
            &after,
            &format!("f1stream_health_checks_total{{site_key=\"good\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(checks("live"), 2.0);
    assert_eq!(checks("http_status"), 1.0);
    assert_eq!(checks("not_hls"), 1.0);
    assert_eq!(checks("timeout"), 0.0);
    assert_eq!(
        value(
            &after,
            "f1stream_health_check_duration_seconds_count{site_key=\"good\",result=\"live\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "f1stream_health_check_phase_seconds_count{site_key=\"good\",phase=\"ttfb\"}"
        ),
        4.0
    );
    assert_eq!(
        value(&after, "f1stream_extraction_runs_total{trigger=\"manual\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "f1stream_extraction_run_duration_seconds_count"),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "f1stream_extractor_run_duration_seconds_count{site_key=\"broken\"}"
        ),
        1.0
    );
    assert!(
        !after
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("127.0.0.1")),
        "no URL ever becomes a label"
    );
}

#[tokio::test]
async fn relays_count_bytes_requests_and_upstream_time() {
    let origin = FakeOrigin::start().await;
    origin.route("/seg.ts", Reply::bytes(vec![5u8; 123_456]));
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let service = TestService::start("").await;
    let signer = service.app.signer();
    let relay = service.url(&signer.path(Kind::Relay, &origin.url("/seg.ts"), None));
    let body = reqwest::get(&relay)
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.len(), 123_456);
    let playlist = service.url(&signer.path(Kind::Proxy, &origin.url("/a.m3u8"), None));
    assert_eq!(reqwest::get(&playlist).await.expect("answers").status(), 200);
    let tampered = playlist.replace("/proxy/", "/proxy/x");
    assert_eq!(reqwest::get(&tampered).await.expect("answers").status(), 400);

    let text = scrape(&service).await;
    assert_eq!(value(&text, "f1stream_relay_bytes_total"), 123_456.0);
    assert_eq!(
        value(&text, "f1stream_relay_active"),
        0.0,
        "the finished relay is no longer active"
    );
    assert_eq!(
        value(
            &text,
            "f1stream_proxy_requests_total{endpoint=\"relay\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "f1stream_proxy_requests_total{endpoint=\"proxy\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "f1stream_proxy_requests_total{endpoint=\"proxy\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "f1stream_proxy_upstream_seconds_count{endpoint=\"relay\"}"),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "f1stream_http_requests_total{route=\"/relay/{token}/{name}\",method=\"GET\",status=\"200\"}"
        ),
        1.0,
        "HTTP metrics are labelled by the route template, never the raw path"
    );
    assert!(!text.contains(&origin.addr.to_string()));
}

#[tokio::test]
async fn a_reloaded_playlist_is_rewritten_from_remembered_signatures_and_counted() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let service = TestService::start("").await;
    let text = scrape(&service).await;
    for series in [
        "f1stream_proxy_signature_cache_hits_total",
        "f1stream_proxy_signature_cache_misses_total",
        "f1stream_proxy_signature_cache_entries",
        "f1stream_proxy_signature_cache_bytes",
    ] {
        assert_eq!(value(&text, series), 0.0, "{series} at start");
    }
    // Signing the playlist's own URL is the first miss.
    let playlist = service.url(
        &service
            .app
            .signer()
            .path(Kind::Proxy, &origin.url("/a.m3u8"), None),
    );
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let response = reqwest::get(&playlist).await.expect("answers");
        assert_eq!(response.status(), 200);
        bodies.push(response.text().await.expect("text"));
    }
    assert_eq!(bodies[0], bodies[1], "a remembered path is the signed one");
    let text = scrape(&service).await;
    // MEDIA_LIVE has two segments: signed on the first load, remembered on
    // the reload.
    assert_eq!(value(&text, "f1stream_proxy_signature_cache_misses_total"), 3.0);
    assert_eq!(value(&text, "f1stream_proxy_signature_cache_hits_total"), 2.0);
    assert_eq!(value(&text, "f1stream_proxy_signature_cache_entries"), 3.0);
    let bytes = value(&text, "f1stream_proxy_signature_cache_bytes");
    // Three loopback URLs of ~35 bytes and their signed paths of ~100.
    assert!(
        (300.0..600.0).contains(&bytes),
        "three URLs and paths: {bytes} bytes"
    );
}

#[tokio::test]
async fn a_restart_restores_extractor_gauges_from_the_database() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    let config = static_extractor("kept", &[origin.url("/a.m3u8")], "");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("m.db");
    let service = TestService::start_on(&db, &config).await;
    service.post_json("/extract").await;
    service.stop().await;

    let restarted = TestService::start_on(&db, &config).await;
    let text = scrape(&restarted).await;
    assert_eq!(value(&text, "f1stream_extractor_up{site_key=\"kept\"}"), 1.0);
    assert_eq!(value(&text, "f1stream_extractor_streams{site_key=\"kept\"}"), 1.0);
    assert_eq!(
        value(&text, "f1stream_extractor_live_streams{site_key=\"kept\"}"),
        1.0
    );
    restarted.stop().await;
}

#[tokio::test]
async fn metrics_listen_serves_only_metrics_on_its_own_address() {
    // Port 0: the listener reports where it bound, so no port is guessed.
    let service = TestService::start("[server]\nmetrics_listen = \"127.0.0.1:0\"\n").await;
    common::wait_until(
        "the metrics listener is bound",
        std::time::Duration::from_secs(30),
        || service.app.metrics_address().is_some(),
    )
    .await;
    let port = service.app.metrics_address().expect("bound").port();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let text = reqwest::get(&metrics_url)
        .await
        .expect("the metrics listener answers")
        .text()
        .await
        .expect("text");
    assert!(text.contains("f1stream_extractor_up{site_key=\"demo\"}"));
    let other = reqwest::get(format!("http://127.0.0.1:{port}/streams"))
        .await
        .expect("answers");
    assert_eq!(other.status(), 404);
    drop(service);
}
