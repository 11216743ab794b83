//! The HLS proxy through the real service: playlists rewritten and played
//! hop by hop the way hls.js does, relays byte-identical and streamed,
//! signatures, the private-address guard, and upstream faults.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    FakeOrigin, MASTER, MEDIA_LIVE, Reply, TestService, rss_bytes, sized_body, static_extractor, uris_in,
};
use f1_stream::proxy::token::{self, Kind};
use futures::StreamExt;

const REFERER: &str = "https://f1.example/";

const CHAIN_MASTER: &str = "#EXTM3U\n\
#EXT-X-VERSION:7\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",DEFAULT=YES,URI=\"audio/en.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=1500000,AUDIO=\"aud\",CODECS=\"avc1.64001f,mp4a.40.2\"\n\
video/720.m3u8\n\
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,URI=\"video/iframes.m3u8\"\n";

const CHAIN_VARIANT: &str = "#EXTM3U\r\n\
#EXT-X-VERSION:7\r\n\
#EXT-X-TARGETDURATION:4\r\n\
#EXT-X-MEDIA-SEQUENCE:1\r\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k1.bin\",IV=0x00000000000000000000000000000001\r\n\
#EXT-X-MAP:URI=\"init.mp4\"\r\n\
#EXTINF:4.0,\r\n\
seg1.m4s\r\n\
#EXTINF:4.0,\r\n\
/video/seg2.m4s?token=abc\r\n";

const CHAIN_AUDIO: &str =
    "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\na1.m4s\n";
const CHAIN_IFRAMES: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-I-FRAMES-ONLY\n#EXTINF:4.0,\n#EXT-X-BYTERANGE:100@0\nseg1.m4s\n";

/// Serves the chain, every path gated on the extractor's Referer.
fn serve_chain(origin: &FakeOrigin) {
    let gated = |reply: Reply| reply.require_header("referer", REFERER);
    origin.route("/master.m3u8", gated(Reply::playlist(CHAIN_MASTER)));
    origin.route("/video/720.m3u8", gated(Reply::playlist(CHAIN_VARIANT)));
    origin.route("/video/iframes.m3u8", gated(Reply::playlist(CHAIN_IFRAMES)));
    origin.route("/audio/en.m3u8", gated(Reply::playlist(CHAIN_AUDIO)));
    origin.route("/keys/k1.bin", gated(Reply::bytes(&b"0123456789abcdef"[..])));
    origin.route(
        "/video/init.mp4",
        gated(Reply::bytes(vec![7u8; 1500]).header("content-type", "video/mp4")),
    );
    origin.route("/video/seg1.m4s", gated(Reply::bytes(sized_body(300_000))));
    origin.route("/video/seg2.m4s", gated(Reply::bytes(sized_body(123_456))));
    origin.route("/audio/init.mp4", gated(Reply::bytes(vec![9u8; 900])));
    origin.route("/audio/a1.m4s", gated(Reply::bytes(sized_body(50_000))));
}

fn referer_extractor(origin: &FakeOrigin) -> String {
    static_extractor(
        "gated",
        &[origin.url("/master.m3u8")],
        &format!("headers = {{ Referer = \"{REFERER}\" }}"),
    )
}

/// The upstream URL a rewritten proxy URI stands for.
fn upstream_of(uri: &str) -> (Kind, String, Option<String>) {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| &rest[rest.find('/').expect("path")..]);
    let mut segments = path.trim_start_matches('/').split('/');
    let kind = match segments.next() {
        Some("proxy") => Kind::Proxy,
        Some("relay") => Kind::Relay,
        other => panic!("not a proxy URI: {uri} ({other:?})"),
    };
    let parsed = token::parse_token(segments.next().expect("token")).expect("token parses");
    (kind, parsed.url_text, parsed.src)
}

async fn direct(url: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(url)
        .header("referer", REFERER)
        .send()
        .await
        .expect("origin answers");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn a_master_variant_key_init_segment_chain_plays_through_the_proxy_byte_identical() {
    let origin = FakeOrigin::start().await;
    serve_chain(&origin);
    let service = TestService::start(&referer_extractor(&origin)).await;
    service.post_json("/extract").await;
    let (_, streams) = service.get_json("/streams").await;
    let proxy_url = streams["streams"][0]["proxy_url"]
        .as_str()
        .expect("proxy_url")
        .to_owned();
    assert!(
        proxy_url.starts_with(&format!("{}/proxy/", service.base)),
        "{proxy_url}"
    );
    assert!(proxy_url.ends_with("/master.m3u8"), "{proxy_url}");

    let client = reqwest::Client::new();
    let mut queue = vec![proxy_url];
    let mut fetched_relays = BTreeSet::new();
    let mut playlists = 0;
    while let Some(uri) = queue.pop() {
        assert!(
            uri.starts_with(&service.base),
            "every URI is rewritten to us: {uri}"
        );
        let (kind, upstream, src) = upstream_of(&uri);
        assert_eq!(src.as_deref(), Some("gated"), "src is carried into {uri}");
        let response = client.get(&uri).send().await.expect("proxy answers");
        assert_eq!(response.status(), 200, "{uri} -> {upstream}");
        match kind {
            Kind::Proxy => {
                playlists += 1;
                assert_eq!(
                    response.headers()["content-type"],
                    "application/vnd.apple.mpegurl"
                );
                assert_eq!(
                    response.headers()["cache-control"],
                    "no-cache, no-store, must-revalidate"
                );
                let text = response.text().await.expect("playlist text");
                queue.extend(uris_in(&text));
            }
            Kind::Relay => {
                assert_eq!(response.headers()["x-content-type-options"], "nosniff");
                let body = response.bytes().await.expect("relay body");
                assert_eq!(body.as_ref(), direct(&upstream).await.as_slice(), "{upstream}");
                fetched_relays.insert(upstream);
            }
        }
    }
    assert_eq!(playlists, 4, "master, video, audio and I-frame playlists");
    let expected: BTreeSet<String> = [
        "/keys/k1.bin",
        "/video/init.mp4",
        "/video/seg1.m4s",
        "/video/seg2.m4s?token=abc",
        "/audio/init.mp4",
        "/audio/a1.m4s",
    ]
    .iter()
    .map(|p| origin.url(p))
    .collect();
    assert_eq!(fetched_relays, expected);
    for path in [
        "/master.m3u8",
        "/video/720.m3u8",
        "/keys/k1.bin",
        "/video/init.mp4",
        "/video/seg1.m4s",
    ] {
        for request in origin.requests_to(path) {
            assert_eq!(
                request.headers["referer"], REFERER,
                "Referer reaches {path} on every hop"
            );
        }
    }
}

#[tokio::test]
async fn relay_forwards_range_and_returns_206_with_the_right_bytes() {
    let origin = FakeOrigin::start().await;
    let body = sized_body(10_000);
    origin.route(
        "/seg.ts",
        Reply::bytes(body.clone())
            .honour_range()
            .header("accept-ranges", "bytes"),
    );
    let service = TestService::start("").await;
    let path = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/seg.ts"), None);
    let response = reqwest::Client::new()
        .get(service.url(&path))
        .header("range", "bytes=100-1099")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 100-1099/10000");
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.headers()["content-type"], "video/mp2t");
    assert_eq!(response.bytes().await.expect("body").as_ref(), &body[100..1100]);
}

#[tokio::test]
async fn relay_passes_416_through_and_head_sends_no_body() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/late.ts",
        Reply::status(416).header("content-range", "bytes */10"),
    );
    origin.route("/seg.ts", Reply::bytes(sized_body(4096)));
    let service = TestService::start("").await;
    let client = reqwest::Client::new();
    let late = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/late.ts"), None);
    let response = client
        .get(service.url(&late))
        .header("range", "bytes=50-60")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 416);
    assert_eq!(response.headers()["content-range"], "bytes */10");

    let seg = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/seg.ts"), None);
    let head = client.head(service.url(&seg)).send().await.expect("answers");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "4096");
    assert_eq!(
        origin.requests_to("/seg.ts").len(),
        1,
        "HEAD goes upstream as one request"
    );
    assert_eq!(origin.requests_to("/seg.ts")[0].method, "HEAD", "not a GET");
}

#[tokio::test]
async fn relative_uris_resolve_against_the_playlist_url_after_redirects() {
    let first = FakeOrigin::start().await;
    let second = FakeOrigin::start().await;
    second.route("/live/stream/index.m3u8", Reply::playlist(MEDIA_LIVE));
    first.route(
        "/start.m3u8",
        Reply::redirect(&second.url("/live/stream/index.m3u8")),
    );
    let service = TestService::start("").await;
    let path = service
        .app
        .signer()
        .path(Kind::Proxy, &first.url("/start.m3u8"), None);
    let response = reqwest::get(service.url(&path)).await.expect("answers");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let upstreams: Vec<String> = uris_in(&text).iter().map(|u| upstream_of(u).1).collect();
    assert_eq!(
        upstreams,
        [
            second.url("/live/stream/seg100.ts"),
            second.url("/live/stream/seg101.ts")
        ]
    );
}

/// A live playlist at its `reload`-th reload: four segments, the window
/// slid by one per reload.
fn live_window(reload: usize) -> String {
    let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{reload}\n");
    for sequence in reload..reload + 4 {
        text.push_str(&format!(
            "#EXTINF:4.0,\nseg{sequence}.ts\n#EXT-X-KEY:METHOD=AES-128,URI=\"k{sequence}.bin\"\n"
        ));
    }
    text
}

#[tokio::test]
async fn a_generated_key_kept_in_the_database_signs_as_its_decoded_bytes_and_a_configured_one_as_its_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1.db");
    // A database as any earlier start left it: the generated key stored as
    // base64url text (here of the bytes 0..32).
    let db = f1_stream::db::Database::open(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("opens");
    let stored = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    db.setting_or_insert("proxy_signing_key", stored)
        .await
        .expect("stored");
    db.close().await;
    let url = "https://cdn.example/live/index.m3u8";
    let signed_with = |key: &[u8]| token::Signer::new(key).path(Kind::Proxy, url, None);

    let service = TestService::start_on(&db_path, "").await;
    let path = service.app.signer().path(Kind::Proxy, url, None);
    assert_eq!(path, signed_with(&(0u8..32).collect::<Vec<u8>>()));
    assert_ne!(
        path,
        signed_with(stored.as_bytes()),
        "the stored text is not the key"
    );
    service.stop().await;

    let configured = TestService::start_on(&db_path, "[proxy]\nsigning_key = \"shared test key\"\n").await;
    assert_eq!(
        configured.app.signer().path(Kind::Proxy, url, None),
        signed_with(b"shared test key")
    );
    configured.stop().await;
}

#[tokio::test]
async fn reloads_are_rewritten_the_same_whether_signed_paths_are_remembered_or_not() {
    let origin = FakeOrigin::start().await;
    // Same key and public URL, so both write the same bytes.
    let key = "[server]\npublic_url = \"http://player.test\"\n[proxy]\nsigning_key = \"shared test key\"\n";
    let remembering = TestService::start(key).await;
    let forgetful = TestService::start(&format!("{key}signature_cache_entries = 0\n")).await;
    let playlist = origin.url("/live/index.m3u8");
    let path = remembering.app.signer().path(Kind::Proxy, &playlist, None);
    assert_eq!(path, forgetful.app.signer().path(Kind::Proxy, &playlist, None));
    let mut previous: Option<Vec<String>> = None;
    for reload in 0..4 {
        origin.route("/live/index.m3u8", Reply::playlist(live_window(reload)));
        let mut texts = Vec::new();
        for service in [&remembering, &forgetful] {
            let response = reqwest::get(service.url(&path)).await.expect("answers");
            assert_eq!(response.status(), 200);
            texts.push(response.text().await.expect("text"));
        }
        assert_eq!(texts[0], texts[1], "reload {reload}");
        let uris = uris_in(&texts[0]);
        assert_eq!(uris.len(), 8, "reload {reload}: {}", texts[0]);
        for uri in &uris {
            let (kind, upstream, _) = upstream_of(uri);
            let token = uri.split('/').rev().nth(1).expect("token segment");
            let parsed = token::parse_token(token).expect("token parses");
            assert!(parsed.is_signed_by(remembering.app.signer(), kind), "{uri}");
            assert!(upstream.starts_with(&origin.url("/live/")), "{upstream}");
        }
        // The segments both reloads list are written identically.
        if let Some(previous) = &previous {
            assert_eq!(previous[2..], uris[..6], "reload {reload}");
        }
        previous = Some(uris);
    }
}

#[tokio::test]
async fn ll_hls_directives_reach_the_upstream_outside_the_signature() {
    let origin = FakeOrigin::start().await;
    origin.route("/ll.m3u8", Reply::playlist(MEDIA_LIVE));
    let service = TestService::start("").await;
    let path = service
        .app
        .signer()
        .path(Kind::Proxy, &origin.url("/ll.m3u8"), None);
    let response = reqwest::get(service.url(&format!("{path}?_HLS_msn=101&_HLS_part=2&other=1")))
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let query = origin.requests_to("/ll.m3u8")[0]
        .query
        .clone()
        .expect("query forwarded");
    assert_eq!(query, "_HLS_msn=101&_HLS_part=2");
}

#[tokio::test]
async fn a_blocking_reload_may_wait_three_target_durations_an_ordinary_one_only_the_timeout() {
    let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:1.0,\nseg7.ts\n";
    let origin = FakeOrigin::start().await;
    origin.route("/ll.m3u8", Reply::playlist(playlist));
    let service = TestService::start("[proxy]\nplaylist_timeout_secs = 1\n").await;
    let path = service
        .app
        .signer()
        .path(Kind::Proxy, &origin.url("/ll.m3u8"), None);
    // The first load teaches the proxy the target duration (1 s).
    assert_eq!(
        reqwest::get(service.url(&path)).await.expect("answers").status(),
        200
    );
    // Now the origin holds every answer for 2 s, as it holds a blocking
    // reload until the asked segment exists.
    origin.route(
        "/ll.m3u8",
        Reply::playlist(playlist).delay(Duration::from_secs(2)),
    );
    let blocking = reqwest::get(service.url(&format!("{path}?_HLS_msn=8")))
        .await
        .expect("answers");
    assert_eq!(blocking.status(), 200, "3 × 1 s + slack outlasts the 2 s hold");
    let ordinary = reqwest::get(service.url(&path)).await.expect("answers");
    assert_eq!(ordinary.status(), 504, "an ordinary load keeps the 1 s timeout");
}

#[tokio::test]
async fn missing_or_tampered_signatures_are_refused_with_403() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    let service = TestService::start("").await;
    let url = origin.url("/a.m3u8");
    let signed = service.app.signer().path(Kind::Proxy, &url, None);
    assert_eq!(
        reqwest::get(service.url(&signed))
            .await
            .expect("answers")
            .status(),
        200
    );

    let b64 = token::encode_url(&url);
    let other = token::encode_url(&origin.url("/b.m3u8"));
    let sig = service.app.signer().sign(Kind::Proxy, &url, None);
    let relay_sig = service.app.signer().sign(Kind::Relay, &url, None);
    for path in [
        format!("/proxy?url={b64}"),
        format!("/proxy?url={b64}&sig=AAAA"),
        format!("/proxy?url={other}&sig={sig}"),
        format!("/proxy?url={b64}&sig={relay_sig}"),
        format!("/proxy?url={b64}&sig={sig}&src=demo"),
        format!("/proxy/{other}.{sig}/a.m3u8"),
        format!("/relay/{b64}.{sig}/a.ts"),
    ] {
        let response = reqwest::get(service.url(&path)).await.expect("answers");
        assert_eq!(response.status(), 403, "{path}");
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(body["error"], "missing or invalid signature");
    }
    assert_eq!(
        origin.requests_to("/a.m3u8").len(),
        1,
        "refused requests never reach the origin"
    );
    assert!(origin.requests_to("/b.m3u8").is_empty());

    let query_form = reqwest::get(service.url(&format!("/proxy?url={b64}&sig={sig}")))
        .await
        .expect("answers");
    assert_eq!(query_form.status(), 200, "the query form stays accepted");
}

#[tokio::test]
async fn unsigned_urls_are_accepted_when_signatures_are_not_required() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    let service = TestService::start("[proxy]\nrequire_signature = false\n").await;
    let b64 = token::encode_url(&origin.url("/a.m3u8"));
    let response = reqwest::get(service.url(&format!("/proxy?url={b64}")))
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    assert!(uris_in(&text).iter().all(|u| u.starts_with(&service.base)));
}

#[tokio::test]
async fn undecodable_or_non_http_urls_are_refused_with_400() {
    let service = TestService::start("[proxy]\nrequire_signature = false\n").await;
    let long = format!("https://example.com/{}", "a".repeat(10_000));
    for url in [
        "***".to_owned(),
        token::encode_url("file:///etc/passwd"),
        token::encode_url("gopher://example.com/"),
        token::encode_url("https://user:pw@example.com/a.m3u8"),
        token::encode_url("/relative.m3u8"),
        token::encode_url(&long),
    ] {
        let response = reqwest::get(service.url(&format!("/proxy?url={url}")))
            .await
            .expect("answers");
        assert_eq!(response.status(), 400, "{}", &url[..url.len().min(60)]);
    }
    let response = reqwest::get(service.url("/relay?sig=x")).await.expect("answers");
    assert_eq!(response.status(), 400, "url is required");
}

#[tokio::test]
async fn upstream_faults_map_to_502_and_504() {
    let origin = FakeOrigin::start().await;
    origin.route("/gone.m3u8", Reply::status(404));
    origin.route("/page.m3u8", Reply::bytes("<html>nope</html>"));
    origin.route(
        "/huge.m3u8",
        Reply::playlist(format!("#EXTM3U\n{}", "#EXTINF:1,\nseg.ts\n".repeat(2000))),
    );
    origin.route(
        "/slow.m3u8",
        Reply::playlist(MASTER).delay(Duration::from_secs(5)),
    );
    origin.route("/slow.ts", Reply::bytes("x").delay(Duration::from_secs(5)));
    origin.route("/dead.ts", Reply::status(500));
    // The health check may read no more than the proxy serves.
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("f1-stream.db");
    let toml = common::test_config_toml(
        &db_path,
        "[proxy]\nplaylist_timeout_secs = 1\nrelay_first_byte_timeout_secs = 1\nmax_playlist_bytes = 4096\n",
    );
    let toml = common::replace_once(
        &toml,
        "[health]\n",
        "[health]\nmax_bytes = 4096\nmedia_playlist_bytes = 4096\n",
    );
    let service = TestService::start_with_config(&db_path, &toml).await;
    let signer = service.app.signer();
    for (kind, path, status) in [
        (Kind::Proxy, "/gone.m3u8", 502),
        (Kind::Proxy, "/page.m3u8", 502),
        (Kind::Proxy, "/huge.m3u8", 502),
        (Kind::Proxy, "/slow.m3u8", 504),
        (Kind::Relay, "/slow.ts", 504),
        (Kind::Relay, "/dead.ts", 502),
    ] {
        let proxied = signer.path(kind, &origin.url(path), None);
        let response = reqwest::get(service.url(&proxied)).await.expect("answers");
        assert_eq!(response.status(), status, "{path}");
    }
}

#[tokio::test]
async fn an_upstream_dying_midway_aborts_the_client_response() {
    let origin = FakeOrigin::start().await;
    origin.route("/cut.ts", Reply::truncated(vec![1u8; 20_000]));
    let service = TestService::start("").await;
    let path = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/cut.ts"), None);
    let response = reqwest::get(service.url(&path)).await.expect("head arrives");
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "a cut upstream must not look like a complete body"
    );
}

#[tokio::test]
async fn a_silent_upstream_is_cut_at_the_idle_timeout() {
    let origin = FakeOrigin::start().await;
    origin.route("/stall.ts", Reply::stall(vec![1u8; 1000]));
    let service = TestService::start("[proxy]\nrelay_idle_timeout_secs = 1\n").await;
    let path = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/stall.ts"), None);
    let started = Instant::now();
    let response = reqwest::get(service.url(&path)).await.expect("head arrives");
    assert!(response.bytes().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5), "cut after about 1 s");
}

#[tokio::test]
async fn a_client_pausing_longer_than_the_idle_timeout_still_gets_the_whole_body() {
    // The idle timeout is about a silent upstream, not a slow client: while
    // the player stops reading, backpressure stops the relay polling the
    // upstream, and that time must not count.
    const TOTAL: usize = 32 * 1024 * 1024;
    let origin = FakeOrigin::start().await;
    origin.route("/big.ts", Reply::bytes(sized_body(TOTAL)));
    let service = TestService::start("[proxy]\nrelay_idle_timeout_secs = 1\n").await;
    let path = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/big.ts"), None);
    let response = reqwest::get(service.url(&path)).await.expect("head arrives");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = body.next().await.expect("a first chunk").expect("data").len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    while let Some(chunk) = body.next().await {
        received += chunk.expect("the relay goes on after the pause").len();
    }
    assert_eq!(received, TOTAL);
}

#[tokio::test]
async fn relaying_256_mib_keeps_memory_bounded() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let origin = FakeOrigin::start().await;
    origin.route("/big.ts", Reply::sized(TOTAL));
    let service = TestService::start("").await;
    let path = service
        .app
        .signer()
        .path(Kind::Relay, &origin.url("/big.ts"), None);
    let before = rss_bytes();
    let response = reqwest::get(service.url(&path)).await.expect("answers");
    assert_eq!(response.headers()["content-length"], TOTAL.to_string().as_str());
    let mut body = response.bytes_stream();
    let (mut received, mut peak) = (0u64, before);
    while let Some(chunk) = body.next().await {
        received += chunk.expect("chunk").len() as u64;
        peak = peak.max(rss_bytes());
    }
    assert_eq!(received, TOTAL);
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 64 * 1024 * 1024,
        "RSS grew by {} MiB relaying 256 MiB",
        growth >> 20
    );
}

#[tokio::test]
async fn the_guard_refuses_loopback_targets_in_every_form_and_redirects_to_them() {
    let exempt = FakeOrigin::start_on("127.0.0.2").await;
    exempt.route("/ok.m3u8", Reply::playlist(MASTER));
    exempt.route("/bounce.m3u8", Reply::redirect("http://127.0.0.1:9/x.m3u8"));
    let local = FakeOrigin::start().await;
    local.route("/a.m3u8", Reply::playlist(MASTER));
    let service = TestService::start_guarded(&["127.0.0.2/32"], "").await;
    let signer = service.app.signer();
    let port = local.addr.port();

    let allowed = signer.path(Kind::Proxy, &exempt.url("/ok.m3u8"), None);
    assert_eq!(
        reqwest::get(service.url(&allowed))
            .await
            .expect("answers")
            .status(),
        200
    );
    for target in [
        local.url("/a.m3u8"),
        format!("http://localhost:{port}/a.m3u8"),
        format!("http://[::ffff:127.0.0.1]:{port}/a.m3u8"),
        format!("http://2130706433:{port}/a.m3u8"),
        format!("http://0x7f.0.0.1:{port}/a.m3u8"),
        exempt.url("/bounce.m3u8"),
    ] {
        for kind in [Kind::Proxy, Kind::Relay] {
            let path = signer.path(kind, &target, None);
            let response = reqwest::get(service.url(&path)).await.expect("answers");
            assert_eq!(response.status(), 403, "{kind:?} {target}");
        }
    }
    assert!(
        local.requests_to("/a.m3u8").is_empty(),
        "nothing reached the guarded origin"
    );
}

#[tokio::test]
async fn cors_preflight_on_the_relay_allows_range() {
    let service = TestService::start("").await;
    let response = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, service.url("/relay/x.y/seg.ts"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    for method in ["GET", "HEAD", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
}
