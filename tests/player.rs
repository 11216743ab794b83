//! A real player through the proxy: ffprobe reads every packet of an
//! AES-128-encrypted multivariant HLS stream (made here by ffmpeg) through
//! `/proxy`, and counts the same packets as when it reads the origin directly.

mod common;

use std::path::Path;
use std::process::Command;

use common::{FakeOrigin, Reply, TestService};
use f1_stream::proxy::token::Kind;

/// Whether ffmpeg and ffprobe are installed. CI installs them (`.ci/run`), so
/// there a missing tool is a failure, not a skip.
fn have_ffmpeg() -> bool {
    let found = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        found || std::env::var_os("CI").is_none(),
        "CI must have ffmpeg and ffprobe installed"
    );
    found
}

/// Encodes 3 s of test video and tone as two encrypted variants.
fn make_encrypted_stream(dir: &Path) {
    std::fs::write(dir.join("key.bin"), b"0123456789abcdef").expect("write key");
    let key_info = format!("key.bin\n{}\n", dir.join("key.bin").display());
    std::fs::write(dir.join("keyinfo"), key_info).expect("write key info");
    let status = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=duration=3"])
        .args(["-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "aac",
        ])
        .args(["-b:v:0", "300k", "-s:v:1", "160x120", "-b:v:1", "100k"])
        .args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"])
        .args(["-hls_key_info_file", "keyinfo", "-master_pl_name", "master.m3u8"])
        .args([
            "-var_stream_map",
            "v:0,a:0 v:1,a:1",
            "-hls_segment_filename",
            "v%v_%03d.ts",
            "v%v.m3u8",
        ])
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make the test stream");
}

/// Packets per stream as ffprobe reads them from `url`.
fn packet_counts(url: &str) -> Vec<(String, u64)> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-of", "json"])
        .args(["-show_entries", "stream=index,codec_type,nb_read_packets"])
        .arg(url)
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "ffprobe failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    report["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let kind = s["codec_type"].as_str().expect("codec_type").to_owned();
            let packets = s["nb_read_packets"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("packet count");
            (kind, packets)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_every_packet_of_an_encrypted_multivariant_stream_through_the_proxy() {
    if !have_ffmpeg() {
        eprintln!("skipped: ffmpeg/ffprobe not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    make_encrypted_stream(dir.path());
    let origin = FakeOrigin::start().await;
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).expect("list stream files") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let content = std::fs::read(&path).expect("read stream file");
        let reply = match name.rsplit_once('.') {
            Some((_, "m3u8")) => Reply::playlist(content),
            Some((_, "ts")) => Reply::bytes(content).header("content-type", "video/mp2t"),
            _ => Reply::bytes(content),
        };
        origin.route(&format!("/hls/{name}"), reply);
        files += 1;
    }
    assert!(files >= 6, "master, two variants, key and segments");
    let master = dir.path().join("master.m3u8");
    assert!(
        std::fs::read_to_string(&master)
            .expect("master")
            .contains("EXT-X-STREAM-INF")
    );
    let variant = std::fs::read_to_string(dir.path().join("v0.m3u8")).expect("variant");
    assert!(variant.contains("METHOD=AES-128"), "the stream is encrypted");

    let service = TestService::start("").await;
    let direct_url = origin.url("/hls/master.m3u8");
    let proxied_url = service.url(&service.app.signer().path(Kind::Proxy, &direct_url, None));

    let direct = tokio::task::spawn_blocking(move || packet_counts(&direct_url))
        .await
        .expect("probe");
    let proxied = tokio::task::spawn_blocking(move || packet_counts(&proxied_url))
        .await
        .expect("probe");
    assert!(
        direct.iter().any(|(kind, n)| kind == "video" && *n > 0),
        "{direct:?}"
    );
    assert!(
        direct.iter().any(|(kind, n)| kind == "audio" && *n > 0),
        "{direct:?}"
    );
    assert_eq!(proxied, direct, "the same packets through the proxy as direct");
    assert!(
        !origin.requests_to("/hls/key.bin").is_empty(),
        "the key was fetched through the relay"
    );
}
