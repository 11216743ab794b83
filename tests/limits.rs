//! Limits a client cannot talk its way past: concurrent relays in total
//! (`proxy.max_relays`) and per client address (`proxy.max_relays_per_client`),
//! refused with 429 and `Retry-After` while the relays already streaming go
//! on. Clients are told apart by `X-Forwarded-For` through a trusted proxy
//! (the test's own loopback address), as behind a reverse proxy.

mod common;

use std::time::Duration;

use common::{FakeOrigin, Reply, TestService, static_extractor};

/// A live media playlist whose one segment sends its first bytes, then
/// stays open: a relay of it streams until the client goes away.
const MEDIA: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:4,\nslow.ts\n";

/// The first bytes of the segment: MPEG-TS packets.
fn ts_prefix() -> Vec<u8> {
    let mut packet = [0xFF_u8; 188];
    packet[0] = 0x47;
    packet.repeat(64)
}

/// The service with small relay limits, behind a "proxy" on 127.0.0.1
/// when `behind_proxy` (else trusting no one's forwarding headers), and
/// the signed relay URL of the slow segment.
async fn limited_service(
    max_total: u32,
    max_per_client: u32,
    behind_proxy: bool,
) -> (TestService, FakeOrigin, String, tempfile::TempDir) {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA));
    origin.route("/slow.ts", Reply::stall(ts_prefix()));
    let trusted = if behind_proxy { "\"127.0.0.1/32\"" } else { "" };
    // The health check must not probe the segment that never ends.
    let extra = format!(
        "[server]\ntrusted_proxies = [{trusted}]\n\
         [proxy]\nmax_relays = {max_total}\nmax_relays_per_client = {max_per_client}\n{}",
        static_extractor("slow", &[origin.url("/live.m3u8")], "")
    );
    let config = common::test_config_toml(std::path::Path::new("DB"), &extra)
        .replace("[health]\n", "[health]\nprobe_segment = false\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1-stream.db");
    let config = config.replace("sqlite://DB", &format!("sqlite://{}", db.display()));
    let service = TestService::start_with_config(&db, &config).await;
    let (status, run) = service.post_json("/extract").await;
    assert_eq!((status, run["live_streams"].as_i64()), (200, Some(1)), "{run}");
    let (_, streams) = service.get_json("/streams").await;
    let proxy_url = streams["streams"][0]["proxy_url"]
        .as_str()
        .expect("proxy_url")
        .to_owned();
    let playlist = reqwest::get(&proxy_url)
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    let relay = playlist
        .lines()
        .find(|line| line.contains("/relay/"))
        .unwrap_or_else(|| panic!("a relayed segment in {playlist}"))
        .to_owned();
    (service, origin, relay, dir)
}

/// A relay request as `client` (named by the trusted proxy's header).
async fn relay_as(client: &str, url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("the service answers")
}

/// Opens a relay as `client` and reads its first bytes; the relay stays open.
async fn streaming(client: &str, url: &str) -> reqwest::Response {
    let mut response = relay_as(client, url).await;
    assert_eq!(response.status(), 200, "{client}");
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("first bytes in time")
        .expect("a chunk")
        .expect("not the end");
    assert_eq!(first[0], 0x47, "{client}: TS bytes");
    response
}

async fn assert_refused(client: &str, url: &str, limit_key: &str) {
    let response = relay_as(client, url).await;
    assert_eq!(response.status(), 429, "{client}");
    let headers = response.headers().clone();
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["cache-control"], "no-store");
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(limit_key)),
        "{client}: {body}"
    );
}

/// Whether the relay is still open: whatever bytes it has sent are read,
/// then it neither ends nor fails within a short wait.
async fn still_streaming(response: &mut reqwest::Response) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_millis(300), response.chunk()).await {
            Err(_) => return true,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return false,
        }
    }
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn a_client_past_its_relay_limit_gets_429_while_the_relays_already_open_go_on() {
    let (service, _origin, relay, _dir) = limited_service(3, 2, true).await;
    let mut a1 = streaming("203.0.113.1", &relay).await;
    let a2 = streaming("203.0.113.1", &relay).await;
    assert_refused("203.0.113.1", &relay, "proxy.max_relays_per_client").await;

    // Another client still gets its relay; the first one's keep streaming.
    let mut b1 = streaming("203.0.113.2", &relay).await;
    assert!(
        still_streaming(&mut a1).await,
        "a refusal costs the open relays nothing"
    );
    // Three streaming: the total is full for everyone.
    assert_refused("203.0.113.3", &relay, "proxy.max_relays").await;

    // A relay that ends gives its place back.
    drop(a2);
    let mut freed = None;
    for _ in 0..50 {
        let response = relay_as("203.0.113.3", &relay).await;
        if response.status() == 200 {
            freed = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed.is_some(), "the place of a closed relay comes back");
    assert!(still_streaming(&mut a1).await);
    assert!(still_streaming(&mut b1).await);

    let metrics = reqwest::get(service.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        sample(&metrics, "f1stream_relay_refusals_total{limit=\"per_client\"}").is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    assert!(sample(&metrics, "f1stream_relay_refusals_total{limit=\"total\"}").is_some_and(|v| v >= 1.0));
}

#[tokio::test]
async fn without_a_trusted_proxy_forwarded_addresses_do_not_make_new_clients() {
    let (_service, _origin, relay, _dir) = limited_service(0, 1, false).await;
    let _open = streaming("203.0.113.1", &relay).await;
    // A forged header from a peer nobody trusts is still that peer.
    assert_refused("203.0.113.2", &relay, "proxy.max_relays_per_client").await;
}

/// Writes `bytes` one per `every`, stopping at the first failed write;
/// returns when the service closed the connection (a read sees the end or
/// an error) or after `give_up`, with the time that took.
async fn trickle_until_closed(
    stream: tokio::net::TcpStream,
    bytes: &'static [u8],
    every: Duration,
    give_up: Duration,
) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut buffer = [0_u8; 1024];
    let closed = tokio::time::timeout(give_up, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok();
    writing.abort();
    closed.then(|| started.elapsed())
}

#[tokio::test]
async fn a_client_sending_its_headers_a_byte_per_second_is_cut_and_others_are_served() {
    let service = TestService::start("[server]\nheader_read_timeout_secs = 2\n").await;
    let address = service.base.trim_start_matches("http://").to_owned();
    let slow = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let slowloris = tokio::spawn(trickle_until_closed(
        slow,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        Duration::from_secs(1),
        Duration::from_secs(10),
    ));
    // Meanwhile an ordinary client is served at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(service.get_json("/health").await.0, 200);
    let cut_after = slowloris.await.expect("task").expect("the slow client is cut");
    assert!(
        cut_after >= Duration::from_millis(1500) && cut_after < Duration::from_secs(5),
        "cut after {cut_after:?}, at the 2 s head deadline"
    );
}

#[tokio::test]
async fn a_request_head_over_the_bound_is_refused_with_431() {
    let service = TestService::start("[server]\nmax_header_bytes = 16384\n").await;
    let client = reqwest::Client::new();
    let big = "a".repeat(32 * 1024);
    let refused = client
        .get(service.url("/health"))
        .header("x-big", &big)
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 431);
    let fine = client
        .get(service.url("/health"))
        .header("x-big", &big[..4096])
        .send()
        .await
        .expect("an answer");
    assert_eq!(fine.status(), 200, "a head within the bound is served");
}
