//! Extractors built from configuration through `f1_stream::sources`, run
//! against files and a fake origin on 127.0.0.1. How the guarded fetch
//! itself behaves (guard, caps, redirects) is proven in `tests/fetch.rs`;
//! here, what each kind makes of its answers.

mod common;

use common::{FakeOrigin, Reply};
use f1_stream::config::{Config, NetworkConfig};
use f1_stream::model::{SessionType, StreamCandidate};
use f1_stream::net::Http;
use f1_stream::sources::{Extractor, SourceContext, SourceError, build_registry};
use serde_json::json;

/// The one extractor `extractor_toml` configures, and the context its
/// config's `[extraction]` describes.
fn build(extractor_toml: &str) -> (Extractor, SourceContext) {
    let config = Config::from_toml_str(extractor_toml).expect("test config is valid");
    let mut registry = build_registry(&config.extractors);
    assert_eq!(registry.len(), 1, "one extractor configured");
    let extractor = std::sync::Arc::into_inner(registry.remove(0)).expect("sole owner");
    let network = NetworkConfig {
        allow_private_networks: true,
        ..NetworkConfig::default()
    };
    let ctx = SourceContext {
        http: Http::new(&network, "test-agent").expect("client builds"),
        max_document_bytes: config.extraction.max_source_bytes,
    };
    (extractor, ctx)
}

async fn extract(extractor_toml: &str) -> Result<Vec<StreamCandidate>, SourceError> {
    let (extractor, ctx) = build(extractor_toml);
    extractor.extract(&ctx).await
}

fn urls(found: &[StreamCandidate]) -> Vec<&str> {
    found.iter().map(|c| c.url.as_str()).collect()
}

fn m3u_toml(url: &str, extra: &str) -> String {
    format!(
        "[[extractors]]\nsite_key = \"iptv\"\nsite_name = \"IPTV\"\nkind = \"m3u\"\nurl = {url:?}\n{extra}\n"
    )
}

fn json_toml(url: &str, extra: &str) -> String {
    format!(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\nurl = {url:?}\n{extra}\n"
    )
}

fn limit_toml(bytes: u64) -> String {
    format!("[extraction]\nmax_source_bytes = {bytes}\n")
}

/// An IPTV list: two F1 channels (one relative), a cooking channel, a
/// channel found only by its group, and an entry that is not http(s).
const CHANNELS: &str = "#EXTM3U x-tvg-url=\"http://epg.example/guide.xml\"\n\
#EXTINF:-1 tvg-id=\"f1.1\" tvg-name=\"F1 One\" group-title=\"Formula 1\",Sky F1 Race 1080p\n\
https://cdn.example.com/f1/one.m3u8\n\
#EXTINF:-1 tvg-name=\"F1 Sprint Qualifying\" group-title=\"Motorsport\",\n\
live/sprint.m3u8\n\
#EXTINF:-1 group-title=\"Food\",Cooking Channel HD\n\
#EXTVLCOPT:http-referrer=https://x.example/\n\
https://cdn.example.com/food.m3u8\n\
#EXTINF:-1 group-title=\"Formula 1\",Pit lane cam\n\
https://cdn.example.com/f1/pit.m3u8\n\
#EXTINF:-1,F1 over RTMP\n\
rtmp://cdn.example.com/f1/live\n";

// --- static and demo ------------------------------------------------------------

#[tokio::test]
async fn static_returns_the_configured_list_in_order_with_its_metadata() {
    let found = extract(
        "[[extractors]]\nsite_key = \"list\"\nsite_name = \"List\"\nkind = \"static\"\nstreams = [\n\
         { url = \"https://b.example/race.m3u8\", title = \"Race feed\", quality = \"1080p\", session = \"race\" },\n\
         { url = \"https://a.example/quali.m3u8\", title = \"Quali\", session = \"sprint_qualifying\" },\n\
         { url = \"http://c.example/bare.m3u8\" },\n]\n",
    )
    .await
    .expect("static list");
    assert_eq!(
        found,
        [
            StreamCandidate {
                url: "https://b.example/race.m3u8".into(),
                title: Some("Race feed".into()),
                quality: Some("1080p".into()),
                session: Some(SessionType::Race),
            },
            StreamCandidate {
                url: "https://a.example/quali.m3u8".into(),
                title: Some("Quali".into()),
                quality: None,
                session: Some(SessionType::SprintQualifying),
            },
            StreamCandidate::new("http://c.example/bare.m3u8"),
        ]
    );
}

#[tokio::test]
async fn static_duplicate_urls_are_returned_once_first_one_wins() {
    let found = extract(
        "[[extractors]]\nsite_key = \"list\"\nsite_name = \"List\"\nkind = \"static\"\nstreams = [\n\
         { url = \"https://a.example/x.m3u8\", title = \"first\" },\n\
         { url = \"https://b.example/y.m3u8\", title = \"other\" },\n\
         { url = \"https://a.example/x.m3u8\", title = \"again\" },\n]\n",
    )
    .await
    .expect("static list");
    assert_eq!(
        urls(&found),
        ["https://a.example/x.m3u8", "https://b.example/y.m3u8"]
    );
    assert_eq!(found[0].title.as_deref(), Some("first"));
}

#[tokio::test]
async fn demo_lists_the_three_public_test_streams_without_network() {
    let config = Config::from_toml_str("").expect("defaults");
    let registry = build_registry(&config.extractors);
    assert_eq!(registry.len(), 1);
    let demo = &registry[0];
    assert_eq!(demo.site_key, "demo");
    assert!(demo.enabled);
    // A client whose guard refuses everything private and a context that
    // could not reach anything: the demo source must not need either.
    let ctx = SourceContext {
        http: Http::new(&NetworkConfig::default(), "test-agent").expect("client"),
        max_document_bytes: 1,
    };
    let found = demo.extract(&ctx).await.expect("demo list");
    assert_eq!(
        urls(&found),
        [
            "https://test-streams.mux.dev/x36xhzz/x36xhzz.m3u8",
            "https://devstreaming-cdn.apple.com/videos/streaming/examples/bipbop_16x9/bipbop_16x9_variant.m3u8",
            "https://cph-p2p-msl.akamaized.net/hls/live/2000341/test/master.m3u8",
        ]
    );
    assert!(found.iter().all(|c| c.title.is_some() && c.quality.is_some()));
}

#[tokio::test]
async fn registry_keeps_identity_enabled_flag_and_headers_of_every_extractor() {
    let config = Config::from_toml_str(
        "[[extractors]]\nsite_key = \"one\"\nsite_name = \"One\"\nkind = \"demo\"\nenabled = false\n\
         headers = { Referer = \"https://one.example/\" }\n\
         [[extractors]]\nsite_key = \"two\"\nsite_name = \"Two\"\nkind = \"static\"\n\
         streams = [{ url = \"https://a.example/x.m3u8\" }]\n",
    )
    .expect("valid");
    let registry = build_registry(&config.extractors);
    let keys: Vec<&str> = registry.iter().map(|e| e.site_key.as_str()).collect();
    assert_eq!(keys, ["one", "two"]);
    assert!(!registry[0].enabled, "disabled extractors are built too");
    assert_eq!(registry[0].site_name, "One");
    assert_eq!(registry[0].headers["referer"], "https://one.example/");
    assert!(registry[1].enabled);
    assert!(registry[1].headers.is_empty());
}

// --- m3u ------------------------------------------------------------------------

#[tokio::test]
async fn m3u_from_a_file_keeps_absolute_http_entries_with_titles() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("channels.m3u");
    std::fs::write(&path, CHANNELS).expect("write list");
    let found = extract(&m3u_toml(path.to_str().expect("utf-8 path"), ""))
        .await
        .expect("file list");
    // Without a base URL the relative entry cannot resolve; rtmp is dropped.
    assert_eq!(
        urls(&found),
        [
            "https://cdn.example.com/f1/one.m3u8",
            "https://cdn.example.com/food.m3u8",
            "https://cdn.example.com/f1/pit.m3u8",
        ]
    );
    assert_eq!(found[0].title.as_deref(), Some("Sky F1 Race 1080p"));
    assert_eq!(found[0].quality.as_deref(), Some("1080p"));
    assert_eq!(found[0].session, Some(SessionType::Race));
    assert_eq!(found[1].title.as_deref(), Some("Cooking Channel HD"));
    assert_eq!(found[1].quality.as_deref(), Some("HD"));
    assert_eq!(found[1].session, None);
}

#[tokio::test]
async fn m3u_from_a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("absent.m3u");
    let err = extract(&m3u_toml(path.to_str().expect("utf-8 path"), ""))
        .await
        .expect_err("missing file");
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
}

#[tokio::test]
async fn m3u_from_a_url_resolves_relative_entries_against_the_list_url() {
    let origin = FakeOrigin::start().await;
    origin.route("/lists/channels.m3u", Reply::bytes(CHANNELS));
    let found = extract(&m3u_toml(&origin.url("/lists/channels.m3u"), ""))
        .await
        .expect("remote list");
    assert_eq!(
        urls(&found),
        [
            "https://cdn.example.com/f1/one.m3u8",
            &origin.url("/lists/live/sprint.m3u8"),
            "https://cdn.example.com/food.m3u8",
            "https://cdn.example.com/f1/pit.m3u8",
        ]
    );
    assert_eq!(
        found[1].title.as_deref(),
        Some("F1 Sprint Qualifying"),
        "tvg-name stands in for an empty title"
    );
    assert_eq!(found[1].session, Some(SessionType::SprintQualifying));
    let requests = origin.requests_to("/lists/channels.m3u");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["user-agent"], "test-agent");
}

#[tokio::test]
async fn m3u_relative_entries_resolve_against_the_final_url_after_a_redirect() {
    let origin = FakeOrigin::start().await;
    origin.route("/old/list.m3u", Reply::redirect("/new/list.m3u"));
    origin.route(
        "/new/list.m3u",
        Reply::bytes("#EXTM3U\n#EXTINF:-1,F1\nlive/a.m3u8\n"),
    );
    let found = extract(&m3u_toml(&origin.url("/old/list.m3u"), ""))
        .await
        .expect("redirected list");
    assert_eq!(urls(&found), [origin.url("/new/live/a.m3u8")]);
}

#[tokio::test]
async fn m3u_title_filter_keeps_entries_whose_title_or_group_matches() {
    let origin = FakeOrigin::start().await;
    origin.route("/channels.m3u", Reply::bytes(CHANNELS));
    let found = extract(&m3u_toml(
        &origin.url("/channels.m3u"),
        "title_filter = \"(?i)formula|\\\\bf1\\\\b\"",
    ))
    .await
    .expect("filtered list");
    assert_eq!(
        urls(&found),
        [
            "https://cdn.example.com/f1/one.m3u8",
            &origin.url("/live/sprint.m3u8"),
            // Matches by its group only ("Formula 1"), not by its title.
            "https://cdn.example.com/f1/pit.m3u8",
        ]
    );
}

#[tokio::test]
async fn m3u_title_filter_that_matches_nothing_gives_an_empty_list() {
    let origin = FakeOrigin::start().await;
    origin.route("/channels.m3u", Reply::bytes(CHANNELS));
    let found = extract(&m3u_toml(
        &origin.url("/channels.m3u"),
        "title_filter = \"^MotoGP$\"",
    ))
    .await
    .expect("filtered list");
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn m3u_extractor_headers_reach_the_origin() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/private.m3u",
        Reply::bytes(CHANNELS).require_header("referer", "https://site.example/"),
    );
    let toml = m3u_toml(
        &origin.url("/private.m3u"),
        "headers = { Referer = \"https://site.example/\", Origin = \"https://site.example\", \"User-Agent\" = \"SiteAgent/1\" }",
    );
    let found = extract(&toml).await.expect("headers satisfy the origin");
    assert_eq!(found.len(), 4);
    let requests = origin.requests_to("/private.m3u");
    assert_eq!(requests.len(), 1);
    let headers = &requests[0].headers;
    assert_eq!(headers["referer"], "https://site.example/");
    assert_eq!(headers["origin"], "https://site.example");
    assert_eq!(
        headers.get_all("user-agent").iter().collect::<Vec<_>>(),
        ["SiteAgent/1"],
        "the extractor's User-Agent replaces the default one"
    );
}

#[tokio::test]
async fn m3u_without_the_required_header_gets_the_origins_status() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/private.m3u",
        Reply::bytes(CHANNELS).require_header("referer", "https://site.example/"),
    );
    let err = extract(&m3u_toml(&origin.url("/private.m3u"), ""))
        .await
        .expect_err("origin refuses");
    assert!(matches!(err, SourceError::Status(403)), "{err:?}");
}

#[tokio::test]
async fn m3u_http_error_status_is_status_error() {
    let origin = FakeOrigin::start().await;
    origin.route("/gone.m3u", Reply::status(404));
    let err = extract(&m3u_toml(&origin.url("/gone.m3u"), ""))
        .await
        .expect_err("404");
    assert!(matches!(err, SourceError::Status(404)), "{err:?}");
}

#[tokio::test]
async fn m3u_on_a_refused_connection_is_fetch_error() {
    let url = common::refused_url().await;
    let err = extract(&m3u_toml(&url, "")).await.expect_err("nothing listens");
    assert!(matches!(err, SourceError::Fetch(_)), "{err:?}");
}

#[tokio::test]
async fn m3u_larger_than_max_source_bytes_is_too_large() {
    let origin = FakeOrigin::start().await;
    let big = format!(
        "#EXTM3U\n{}",
        (0..2000)
            .map(|i| format!("#EXTINF:-1,F1 channel {i}\nhttps://cdn.example.com/{i}.m3u8\n"))
            .collect::<String>()
    );
    assert!(big.len() > 4096 * 10);
    origin.route("/big.m3u", Reply::bytes(big.clone()));
    let toml = format!("{}{}", limit_toml(4096), m3u_toml(&origin.url("/big.m3u"), ""));
    let err = extract(&toml).await.expect_err("too large");
    assert!(matches!(err, SourceError::TooLarge(4096)), "{err:?}");
    assert_eq!(err.to_string(), "document exceeds 4096 bytes");
}

#[tokio::test]
async fn m3u_file_larger_than_max_source_bytes_is_too_large() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = "#EXTM3U\n#EXTINF:-1,F1\nhttps://cdn.example.com/a.m3u8\n";
    let limit = body.len() as u64;
    let exact = dir.path().join("exact.m3u");
    let over = dir.path().join("over.m3u");
    let huge = dir.path().join("huge.m3u");
    std::fs::write(&exact, body).expect("write");
    std::fs::write(&over, format!("{body}\n")).expect("write");
    std::fs::write(&huge, body.repeat(100_000)).expect("write");
    let at = |path: &std::path::Path| {
        format!(
            "{}{}",
            limit_toml(limit),
            m3u_toml(path.to_str().expect("utf-8"), "")
        )
    };
    let found = extract(&at(&exact)).await.expect("exactly the limit");
    assert_eq!(urls(&found), ["https://cdn.example.com/a.m3u8"]);
    for path in [&over, &huge] {
        let err = extract(&at(path)).await.expect_err("over the limit");
        assert!(matches!(err, SourceError::TooLarge(l) if l == limit), "{err:?}");
    }
}

#[tokio::test]
async fn m3u_duplicate_urls_are_returned_once_and_non_http_entries_dropped() {
    let origin = FakeOrigin::start().await;
    let list = "#EXTM3U\n\
        #EXTINF:-1,One\nlive/a.m3u8\n\
        #EXTINF:-1,One again\n{ABS}\n\
        #EXTINF:-1,Ftp\nftp://cdn.example.com/a.m3u8\n\
        #EXTINF:-1,File\nfile:///etc/passwd\n\
        #EXTINF:-1,Data\ndata:text/plain,hello\n\
        #EXTINF:-1,Two\nhttps://cdn.example.com/b.m3u8\n\
        #EXTINF:-1,Two again\nhttps://cdn.example.com/b.m3u8\n"
        .replace("{ABS}", &origin.url("/lists/live/a.m3u8"));
    origin.route("/lists/list.m3u", Reply::bytes(list));
    let found = extract(&m3u_toml(&origin.url("/lists/list.m3u"), ""))
        .await
        .expect("list");
    assert_eq!(
        urls(&found),
        [
            origin.url("/lists/live/a.m3u8").as_str(),
            "https://cdn.example.com/b.m3u8"
        ]
    );
    assert_eq!(found[0].title.as_deref(), Some("One"));
    assert_eq!(found[1].title.as_deref(), Some("Two"));
}

#[tokio::test]
async fn m3u_empty_document_gives_an_empty_list() {
    let origin = FakeOrigin::start().await;
    origin.route("/empty.m3u", Reply::bytes(""));
    origin.route(
        "/header-only.m3u",
        Reply::bytes("\u{feff}#EXTM3U\r\n\r\n#EXTINF:-1,dangling\r\n"),
    );
    for path in ["/empty.m3u", "/header-only.m3u"] {
        let found = extract(&m3u_toml(&origin.url(path), ""))
            .await
            .expect("no entries is not an error");
        assert!(found.is_empty(), "{path}: {found:?}");
    }
}

#[tokio::test]
async fn m3u_binary_garbage_does_not_fail_the_extractor() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/binary.m3u",
        Reply::bytes(vec![0xff_u8, 0xfe, 0x00, 0x80, b'\n', 0xc3]),
    );
    let found = extract(&m3u_toml(&origin.url("/binary.m3u"), ""))
        .await
        .expect("invalid UTF-8 is read lossily, not an error");
    // Every non-comment line is a URI reference in M3U, so garbage lines
    // resolve against the list URL; whatever comes back is still http(s).
    assert!(found.iter().all(|c| c.url.starts_with("http://")), "{found:?}");
}

// --- json -------------------------------------------------------------------------

const FIELDS: &str = "items = \"/data/streams\"\n\
    fields = { url = \"/src\", title = \"/name\", quality = \"/meta/q\", session = \"/s\" }";

#[tokio::test]
async fn json_maps_nested_items_through_field_pointers() {
    let origin = FakeOrigin::start().await;
    let document = json!({"data": {"streams": [
        {"src": "https://a.example/x.m3u8", "name": "Main feed", "meta": {"q": "1080p"}, "s": "race"},
        {"src": "rel/y.m3u8", "name": "Onboard", "meta": {"q": 720}, "s": "Sprint Qualifying"},
        {"name": "no url at all"},
        {"src": 42, "name": "url is a number"},
        {"src": "  https://b.example/z.m3u8  ", "s": "FP2"}
    ]}});
    origin.route("/api/v1/streams.json", Reply::bytes(document.to_string()));
    let found = extract(&json_toml(&origin.url("/api/v1/streams.json"), FIELDS))
        .await
        .expect("json list");
    assert_eq!(
        found,
        [
            StreamCandidate {
                url: "https://a.example/x.m3u8".into(),
                title: Some("Main feed".into()),
                quality: Some("1080p".into()),
                session: Some(SessionType::Race),
            },
            StreamCandidate {
                url: origin.url("/api/v1/rel/y.m3u8"),
                title: Some("Onboard".into()),
                quality: Some("720".into()),
                session: Some(SessionType::SprintQualifying),
            },
            StreamCandidate {
                url: "https://b.example/z.m3u8".into(),
                title: None,
                quality: None,
                session: Some(SessionType::Fp2),
            },
        ]
    );
}

#[tokio::test]
async fn json_items_with_an_empty_url_are_skipped() {
    let origin = FakeOrigin::start().await;
    let document = json!({"data": {"streams": [
        {"src": "", "name": "url is empty"},
        {"src": "   ", "name": "url is blank"},
        {"src": "https://a.example/x.m3u8", "name": "real"}
    ]}});
    origin.route("/api/streams.json", Reply::bytes(document.to_string()));
    let found = extract(&json_toml(&origin.url("/api/streams.json"), FIELDS))
        .await
        .expect("json list");
    assert_eq!(urls(&found), ["https://a.example/x.m3u8"]);
}

#[tokio::test]
async fn json_root_array_of_strings_with_empty_pointers() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/list.json",
        Reply::bytes(json!(["https://a.example/1.m3u8", "https://a.example/2.m3u8"]).to_string()),
    );
    let found = extract(&json_toml(&origin.url("/list.json"), "fields = { url = \"\" }"))
        .await
        .expect("root array");
    assert_eq!(
        urls(&found),
        ["https://a.example/1.m3u8", "https://a.example/2.m3u8"]
    );
}

#[tokio::test]
async fn json_duplicate_urls_are_returned_once_and_non_http_urls_dropped() {
    let origin = FakeOrigin::start().await;
    let document = json!({"data": {"streams": [
        {"src": "https://a.example/x.m3u8", "name": "first"},
        {"src": "ftp://a.example/x.m3u8"},
        {"src": "rtmp://a.example/live"},
        {"src": "javascript:alert(1)"},
        {"src": "https://a.example/x.m3u8", "name": "second"},
        {"src": "https://b.example/y.m3u8"}
    ]}});
    origin.route("/streams.json", Reply::bytes(document.to_string()));
    let found = extract(&json_toml(&origin.url("/streams.json"), FIELDS))
        .await
        .expect("json list");
    assert_eq!(
        urls(&found),
        ["https://a.example/x.m3u8", "https://b.example/y.m3u8"]
    );
    assert_eq!(found[0].title.as_deref(), Some("first"));
}

#[tokio::test]
async fn json_malformed_document_is_parse_error() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/broken.json",
        Reply::bytes("{\"data\": {\"streams\": [ {\"src\": "),
    );
    let err = extract(&json_toml(&origin.url("/broken.json"), FIELDS))
        .await
        .expect_err("malformed");
    assert!(matches!(err, SourceError::Parse(_)), "{err:?}");
}

#[tokio::test]
async fn json_items_that_are_not_an_array_is_parse_error_naming_the_pointer() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/object.json",
        Reply::bytes(json!({"data": {"streams": {"src": "https://a.example/x.m3u8"}}}).to_string()),
    );
    origin.route("/missing.json", Reply::bytes(json!({"data": {}}).to_string()));
    for path in ["/object.json", "/missing.json"] {
        let err = extract(&json_toml(&origin.url(path), FIELDS))
            .await
            .expect_err("items is not an array");
        match &err {
            SourceError::Parse(message) => {
                assert!(message.contains("/data/streams"), "{path}: {message}");
            }
            other => panic!("{path}: expected Parse, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn json_http_500_is_status_error() {
    let origin = FakeOrigin::start().await;
    origin.route("/streams.json", Reply::status(500));
    let err = extract(&json_toml(&origin.url("/streams.json"), FIELDS))
        .await
        .expect_err("500");
    assert!(matches!(err, SourceError::Status(500)), "{err:?}");
}

#[tokio::test]
async fn json_extractor_headers_reach_the_origin() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/streams.json",
        Reply::bytes(json!({"data": {"streams": [{"src": "https://a.example/x.m3u8"}]}}).to_string())
            .require_header("authorization", "Bearer t0ken"),
    );
    let toml = json_toml(
        &origin.url("/streams.json"),
        &format!("{FIELDS}\nheaders = {{ Authorization = \"Bearer t0ken\" }}"),
    );
    let found = extract(&toml).await.expect("header satisfies the origin");
    assert_eq!(urls(&found), ["https://a.example/x.m3u8"]);
}

#[tokio::test]
async fn json_larger_than_max_source_bytes_is_too_large() {
    let origin = FakeOrigin::start().await;
    let items: Vec<_> = (0..1000)
        .map(|i| json!({"src": format!("https://a.example/{i}.m3u8")}))
        .collect();
    origin.route(
        "/big.json",
        Reply::bytes(json!({"data": {"streams": items}}).to_string()),
    );
    let toml = format!(
        "{}{}",
        limit_toml(4096),
        json_toml(&origin.url("/big.json"), FIELDS)
    );
    let err = extract(&toml).await.expect_err("too large");
    assert!(matches!(err, SourceError::TooLarge(4096)), "{err:?}");
}
