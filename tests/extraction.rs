//! Extraction runs through the real service: isolation of failing
//! extractors, active/inactive rules, coalescing, ranking and persistence.

mod common;

use std::time::{Duration, Instant};

use common::{FakeOrigin, MASTER, MEDIA_LIVE, MEDIA_VOD, Reply, TestService, static_extractor};
use serde_json::Value;

fn json_extractor(site_key: &str, url: &str) -> String {
    format!(
        "[[extractors]]\nsite_key = \"{site_key}\"\nsite_name = \"{site_key} api\"\nkind = \"json\"\n\
         url = \"{url}\"\nitems = \"/streams\"\nfields = {{ url = \"/url\", title = \"/title\" }}\n"
    )
}

fn json_list(urls: &[String]) -> String {
    let items: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| serde_json::json!({ "url": url, "title": format!("item {i}") }))
        .collect();
    serde_json::json!({ "streams": items }).to_string()
}

fn urls_of(list: &Value) -> Vec<String> {
    list["streams"]
        .as_array()
        .expect("streams array")
        .iter()
        .map(|s| s["url"].as_str().expect("url").to_owned())
        .collect()
}

#[tokio::test]
async fn failing_and_hanging_extractors_cost_only_their_own_streams() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    origin.route("/b.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/broken.json", Reply::status(500));
    origin.route("/hanging.json", Reply::bytes("{}").delay(Duration::from_secs(30)));
    let config = [
        static_extractor("good", &[origin.url("/a.m3u8"), origin.url("/b.m3u8")], ""),
        json_extractor("broken", &origin.url("/broken.json")),
        json_extractor("hanging", &origin.url("/hanging.json")),
    ]
    .concat();
    let service = TestService::start(&config).await;

    let started = Instant::now();
    let (status, body) = service.post_json("/extract").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the hanging extractor is cut at its timeout"
    );
    assert_eq!(status, 200);
    assert_eq!(body["status"], "extraction_complete");
    assert_eq!(body["streams_found"], 2);
    assert_eq!(body["live_streams"], 2);
    assert_eq!(body["extractors_run"], 3);

    let (_, extractors) = service.get_json("/extractors").await;
    let by_key = |key: &str| {
        extractors["extractors"]
            .as_array()
            .expect("array")
            .iter()
            .find(|e| e["site_key"] == key)
            .cloned()
            .expect("extractor listed")
    };
    assert_eq!(by_key("good")["cached_streams"], 2);
    assert_eq!(by_key("good")["live_streams"], 2);
    assert_eq!(by_key("good")["last_error"], Value::Null);
    assert_eq!(by_key("broken")["last_error"], "HTTP 500");
    assert_eq!(by_key("hanging")["last_error"], "timed out after 2 s");
    assert_eq!(extractors["total_cached_streams"], 2);
    assert_eq!(extractors["total_live_streams"], 2);
    assert_eq!(extractors["last_run_stream_count"], 2);
    assert!(extractors["last_run"].is_string());

    let (_, streams) = service.get_json("/streams").await;
    assert_eq!(streams["count"], 2);
}

#[tokio::test]
async fn extractor_returning_nothing_deactivates_its_streams_but_keeps_their_history() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    origin.route("/b.m3u8", Reply::playlist(MASTER));
    origin.route(
        "/list.json",
        Reply::bytes(json_list(&[origin.url("/a.m3u8"), origin.url("/b.m3u8")])),
    );
    let service = TestService::start(&json_extractor("api", &origin.url("/list.json"))).await;

    service.post_json("/extract").await;
    assert_eq!(service.get_json("/streams").await.1["count"], 2);

    origin.route("/list.json", Reply::bytes(json_list(&[])));
    let (_, body) = service.post_json("/extract").await;
    assert_eq!(body["streams_found"], 0);
    assert_eq!(service.get_json("/streams").await.1["count"], 0);
    assert_eq!(service.get_json("/streams/all").await.1["count"], 0);
    assert_eq!(
        service.count("streams").await,
        2,
        "streams are kept, only inactive"
    );
    assert_eq!(service.count("streams WHERE active = 0").await, 2);
    assert_eq!(service.count("health_checks").await, 2, "their checks are kept");

    origin.route("/list.json", Reply::bytes(json_list(&[origin.url("/a.m3u8")])));
    service.post_json("/extract").await;
    assert_eq!(
        urls_of(&service.get_json("/streams").await.1),
        [origin.url("/a.m3u8")]
    );
    assert_eq!(
        service.count("streams").await,
        2,
        "a returning stream keeps its row"
    );
    assert_eq!(service.count("health_checks").await, 3);
}

#[tokio::test]
async fn concurrent_extract_requests_share_one_run() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/slow.m3u8",
        Reply::playlist(MASTER).delay(Duration::from_millis(500)),
    );
    let service = TestService::start(&static_extractor("s", &[origin.url("/slow.m3u8")], "")).await;

    let (first, second) = tokio::join!(service.post_json("/extract"), service.post_json("/extract"));
    assert_eq!(first.0, 200);
    assert_eq!(second.0, 200);
    assert_eq!(first.1["run_id"], second.1["run_id"]);
    assert_eq!(service.count("extraction_runs").await, 1);
    assert_eq!(origin.requests_to("/slow.m3u8").len(), 1, "one run, one check");

    let (third, _) = service.post_json("/extract").await;
    assert_eq!(third, 200);
    assert_eq!(
        service.count("extraction_runs").await,
        2,
        "a later trigger starts a new run"
    );
}

#[tokio::test]
async fn streams_are_ranked_healthy_only_live_first_then_fastest() {
    let origin = FakeOrigin::start().await;
    origin.route("/live-fast.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route(
        "/live-slow.m3u8",
        Reply::playlist(MEDIA_LIVE).delay(Duration::from_millis(300)),
    );
    // The master's variants are live (the deep check reads one), so it
    // ranks among the live broadcasts by its own response time.
    origin.route(
        "/master.m3u8",
        Reply::playlist(MASTER).delay(Duration::from_millis(150)),
    );
    origin.route(
        "/vod.m3u8",
        Reply::playlist(MEDIA_VOD).delay(Duration::from_millis(50)),
    );
    origin.route("/dead.m3u8", Reply::status(404));
    let urls = [
        "/vod.m3u8",
        "/dead.m3u8",
        "/live-slow.m3u8",
        "/master.m3u8",
        "/live-fast.m3u8",
    ]
    .map(|p| origin.url(p));
    let service = TestService::start(&static_extractor("mix", &urls, "")).await;
    service.post_json("/extract").await;

    let (status, served) = service.get_json("/streams").await;
    assert_eq!(status, 200);
    let served_urls = urls_of(&served);
    assert_eq!(
        served_urls[..3],
        [
            origin.url("/live-fast.m3u8"),
            origin.url("/master.m3u8"),
            origin.url("/live-slow.m3u8")
        ],
        "live broadcasts first, fastest first"
    );
    assert_eq!(
        served_urls[3..],
        [origin.url("/vod.m3u8")],
        "then the rest, even when faster"
    );
    assert_eq!(served["count"], 4);
    let first = &served["streams"][0];
    for field in [
        "id",
        "url",
        "site_key",
        "site_name",
        "quality",
        "title",
        "session",
        "extracted_at",
        "is_live",
        "response_time_ms",
        "checked_at",
        "bitrate",
        "stream_type",
        "error",
    ] {
        assert!(first.get(field).is_some(), "stream object lacks {field}");
    }
    assert_eq!(first["stream_type"], "live");
    assert_eq!(first["site_name"], "mix site");

    let (_, all) = service.get_json("/streams/all").await;
    let all_urls = urls_of(&all);
    assert_eq!(all["count"], 5);
    assert_eq!(all_urls.last(), Some(&origin.url("/dead.m3u8")), "unhealthy last");
    assert_eq!(all["streams"][4]["error"], "HTTP 404");
    assert_eq!(all["streams"][4]["is_live"], false);
}

#[tokio::test]
async fn streams_filters_by_session_site_and_limit() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let tagged = format!(
        "[[extractors]]\nsite_key = \"tagged\"\nsite_name = \"Tagged\"\nkind = \"static\"\n\
         streams = [{{ url = \"{}\", session = \"race\" }}, {{ url = \"{}\", session = \"qualifying\" }}, \
         {{ url = \"{}\" }}]\n",
        origin.url("/a.m3u8?race"),
        origin.url("/a.m3u8?quali"),
        origin.url("/a.m3u8?untagged"),
    );
    let other = static_extractor("other", &[origin.url("/a.m3u8?other")], "");
    let service = TestService::start(&(tagged + &other)).await;
    service.post_json("/extract").await;

    let race = urls_of(&service.get_json("/streams?session=race").await.1);
    assert_eq!(race.len(), 3, "race-tagged and untagged ones: {race:?}");
    assert!(!race.contains(&origin.url("/a.m3u8?quali")));
    let other_only = urls_of(&service.get_json("/streams?site_key=other").await.1);
    assert_eq!(other_only, [origin.url("/a.m3u8?other")]);
    assert_eq!(service.get_json("/streams?limit=2").await.1["count"], 2);
    assert_eq!(service.get_json("/streams?site_key=nobody").await.1["count"], 0);
}

#[tokio::test]
async fn bad_query_values_are_refused_with_a_json_400_naming_the_parameter() {
    let service = TestService::start("").await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=10001", "limit"),
        ("session=warmup", "session"),
        ("site_key=Bad%20Key", "site_key"),
    ] {
        let (status, body) = service.get_json(&format!("/streams?{query}")).await;
        assert_eq!(status, 400, "{query}");
        let message = body["error"].as_str().expect("error message");
        assert!(message.starts_with(parameter), "{query}: {message}");
    }
    assert_eq!(
        service.count("extraction_runs").await,
        0,
        "bad input changes nothing"
    );
}

#[tokio::test]
async fn every_run_adds_one_check_per_stream_and_the_same_url_is_checked_once_per_header_set() {
    let origin = FakeOrigin::start().await;
    origin.route("/shared.m3u8", Reply::playlist(MASTER));
    origin.route("/own.m3u8", Reply::playlist(MASTER));
    let config = [
        static_extractor("one", &[origin.url("/shared.m3u8"), origin.url("/own.m3u8")], ""),
        static_extractor("two", &[origin.url("/shared.m3u8")], ""),
        static_extractor(
            "three",
            &[origin.url("/shared.m3u8")],
            "headers = { Referer = \"https://three/\" }",
        ),
    ]
    .concat();
    let service = TestService::start(&config).await;

    service.post_json("/extract").await;
    assert_eq!(
        service.count("health_checks").await,
        4,
        "one check row per stream"
    );
    assert_eq!(
        origin.requests_to("/shared.m3u8").len(),
        2,
        "one request for extractors one and two (same headers), one for three (its Referer)"
    );
    service.post_json("/extract").await;
    assert_eq!(service.count("health_checks").await, 8);
    assert_eq!(service.count("extraction_runs").await, 2);
    assert_eq!(service.count("extractor_runs").await, 6);
    assert_eq!(service.count("streams").await, 4);
}

#[tokio::test]
async fn a_restart_on_the_same_database_keeps_streams_runs_and_checks() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/b.m3u8", Reply::playlist(MASTER));
    origin.route("/c.m3u8", Reply::status(503));
    let config = static_extractor("p", &["/a.m3u8", "/b.m3u8", "/c.m3u8"].map(|p| origin.url(p)), "");
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("nested/folder/f1.db");

    let service = TestService::start_on(&db_path, &config).await;
    service.post_json("/extract").await;
    service.post_json("/extract").await;
    // proxy_url embeds the listener's address, which changes on restart;
    // its signed token must not (the signing key is kept in the database).
    let rooted = |list: Value, base: &str| list.to_string().replace(base, "BASE");
    let before = rooted(service.get_json("/streams").await.1, &service.base);
    let before_all = rooted(service.get_json("/streams/all").await.1, &service.base);
    let before_extractors = service.get_json("/extractors").await.1;
    service.stop().await;

    let restarted = TestService::start_on(&db_path, &config).await;
    assert_eq!(
        rooted(restarted.get_json("/streams").await.1, &restarted.base),
        before
    );
    assert_eq!(
        rooted(restarted.get_json("/streams/all").await.1, &restarted.base),
        before_all
    );
    assert_eq!(restarted.get_json("/extractors").await.1, before_extractors);
    assert_eq!(restarted.count("extraction_runs").await, 2);
    assert_eq!(restarted.count("health_checks").await, 6);
    restarted.stop().await;
}
