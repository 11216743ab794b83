//! Viewer access (`auth.viewers`): with viewers listed, the page, the API
//! and `/metrics` need a viewer's HTTP Basic credentials, while what
//! players fetch (signed `/proxy` and `/relay` URLs, a channel's signed
//! playlist address) plays without any, checked with ffprobe on a real
//! live encode. Also `f1-stream hash-password` and the configuration's
//! checks of the entries.

mod common;
#[path = "common/live.rs"]
mod live;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{FakeOrigin, Reply, TestService, static_extractor};
use live::{LiveSource, Look, have_ffmpeg};

const PASSWORD: &str = "correct horse battery staple";
const MEDIA: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg0.ts\n";

/// `[auth]` with the viewer `ann` and `PASSWORD`, and a static extractor
/// for `url`.
fn config(url: &str) -> String {
    let hash = f1_stream::api::viewers::hash_password(PASSWORD).expect("hash");
    format!(
        "[auth]\nviewers = [{{ name = \"ann\", password_hash = \"{hash}\" }}]\n{}",
        static_extractor("local", &[url.to_owned()], "")
    )
}

fn basic(name: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{name}:{password}")))
}

/// The JSON body of `url` as viewer `authorization`.
async fn get_json(url: &str, authorization: &str) -> serde_json::Value {
    let body = get(url, Some(authorization)).await.bytes().await.expect("body");
    serde_json::from_slice(&body).expect("JSON")
}

async fn get(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("the service answers")
}

#[tokio::test]
async fn with_viewers_reading_needs_a_viewers_credentials_and_players_need_none() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA));
    origin.route("/seg0.ts", Reply::bytes(vec![0x47_u8; 188 * 10]));
    let service = TestService::start(&config(&origin.url("/live.m3u8"))).await;
    assert_eq!(
        service.post_json("/extract").await.0,
        200,
        "changes follow the admin rule"
    );
    let ann = basic("ann", PASSWORD);

    for path in [
        "/",
        "/watch",
        "/streams",
        "/channels",
        "/schedule",
        "/metrics",
        "/openapi.json",
        "/assets/app.mjs",
    ] {
        let url = service.url(path);
        let refused = get(&url, None).await;
        assert_eq!(refused.status(), 401, "{path}");
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Basic realm=\"f1-stream\", charset=\"UTF-8\""
        );
        assert_eq!(refused.headers()["cache-control"], "no-store");
        for wrong in [
            basic("ann", "guess"),
            basic("bob", PASSWORD),
            "Bearer x".to_owned(),
        ] {
            assert_eq!(get(&url, Some(&wrong)).await.status(), 401, "{path} with {wrong}");
        }
        assert_eq!(get(&url, Some(&ann)).await.status(), 200, "{path} signed in");
    }
    assert_eq!(
        get(&service.url("/health"), None).await.status(),
        200,
        "liveness stays open"
    );

    // What a signed-in viewer hands to a player plays without credentials.
    let streams: serde_json::Value = get_json(&service.url("/streams"), &ann).await;
    let proxy_url = streams["streams"][0]["proxy_url"].as_str().expect("proxy_url");
    let playlist = get(proxy_url, None).await;
    assert_eq!(playlist.status(), 200);
    let text = playlist.text().await.expect("text");
    let relay = text
        .lines()
        .find(|l| l.contains("/relay/"))
        .expect("a relayed segment");
    assert_eq!(get(relay, None).await.status(), 200);

    let channels: serde_json::Value = get_json(&service.url("/channels"), &ann).await;
    let best = channels["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["slug"] == "best")
        .expect("best");
    let signed = best["url"].as_str().expect("url");
    assert!(signed.contains("/channels/best.m3u8?sig="), "{signed}");
    assert_eq!(get(signed, None).await.status(), 200, "the signed channel plays");
    let unsigned = service.url("/channels/best.m3u8");
    assert_eq!(get(&unsigned, None).await.status(), 401);
    let (base, sig) = signed.split_once("?sig=").expect("sig");
    let other = base.replace("best.m3u8", "other.m3u8");
    assert_eq!(
        get(&format!("{other}?sig={sig}"), None).await.status(),
        401,
        "a signature is per channel"
    );
    let tampered = format!("{base}?sig={}A", &sig[..sig.len() - 1]);
    assert_eq!(get(&tampered, None).await.status(), 401);
}

#[tokio::test]
async fn without_viewers_reading_stays_open() {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA));
    let service = TestService::start(&static_extractor("local", &[origin.url("/live.m3u8")], "")).await;
    for path in ["/watch", "/streams", "/metrics", "/channels/best.m3u8"] {
        assert_ne!(get(&service.url(path), None).await.status(), 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ffprobe_plays_a_signed_channel_url_without_credentials() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg missing");
        return;
    }
    let mut source = LiveSource::start(
        "viewer",
        &Look {
            pattern: "testsrc2",
            size: "320x180",
            tone: 440,
            encrypted: false,
            start_number: 0,
            ts_offset: 0,
        },
    )
    .await;
    source.wait_for_segments(3).await;
    let service = TestService::start(&config(&source.url())).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!((status, run["live_streams"].as_i64()), (200, Some(1)), "{run}");
    let channels: serde_json::Value = get_json(&service.url("/channels"), &basic("ann", PASSWORD)).await;
    let url = channels["channels"][0]["url"].as_str().expect("url").to_owned();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
            ])
            .arg(&url)
            .output(),
    )
    .await
    .expect("ffprobe finishes")
    .expect("ffprobe runs");
    let found = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && found.contains("video") && found.contains("audio"),
        "ffprobe on {url}: {found} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn hash_password_prints_a_hash_that_verifies_and_never_the_password() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(!stdout.contains(PASSWORD) && !String::from_utf8_lossy(&output.stderr).contains(PASSWORD));
    let hash = stdout.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // The hash is accepted as a viewer's, and only the password matches it.
    let toml = format!("[auth]\nviewers = [{{ name = \"ann\", password_hash = \"{hash}\" }}]\n");
    let config = f1_stream::config::Config::from_toml_str(&toml).expect("a valid viewer");
    assert!(!format!("{config:?}").contains(hash), "the hash is never printed");
}

#[test]
fn viewer_entries_are_checked_naming_the_key() {
    let hash = f1_stream::api::viewers::hash_password("x").expect("hash");
    for (viewers, key) in [
        (
            "[{ name = \"ann\", password_hash = \"plain text\" }]",
            "auth.viewers[0].password_hash",
        ),
        (
            &*format!("[{{ name = \"a:b\", password_hash = \"{hash}\" }}]"),
            "auth.viewers[0].name",
        ),
        (
            &*format!(
                "[{{ name = \"ann\", password_hash = \"{hash}\" }}, {{ name = \"ann\", password_hash = \"{hash}\" }}]"
            ),
            "auth.viewers[1].name",
        ),
    ] {
        let error = f1_stream::config::Config::from_toml_str(&format!("[auth]\nviewers = {viewers}\n"))
            .expect_err("refused");
        let message = error.to_string();
        assert!(message.contains(key), "{key}: {message}");
        assert!(!message.contains(&hash), "the hash is never printed: {message}");
    }
}
