//! The one guarded fetch (`f1_stream::net::{Http, Fetch}`) against origins
//! on 127.0.0.1: the address guard, the byte caps, the timeouts, redirects,
//! the headers sent, the statuses accepted and the timings reported. Health
//! checks, source documents, the proxy's playlists and the calendar all go
//! through it, so their own tests only prove how they map its answers.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{FakeOrigin, MEDIA_LIVE, Reply, refused_url, sized_body};
use f1_stream::config::NetworkConfig;
use f1_stream::model::ErrorKind;
use f1_stream::net::{Fetch, FetchError, FetchFailure, Fetched, Http, UrlRefused};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, REFERER, USER_AGENT};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// The client's own User-Agent in these tests.
const AGENT: &str = "fetch-test/1";
/// What an origin may push before a bounded read counts as unbounded: far
/// more than socket buffers hold, far less than an endless body sends.
const BOUNDED: u64 = 16 * 1024 * 1024;
/// A limit no test body reaches by accident.
const ROOMY: u64 = 1024 * 1024;

// --- helpers --------------------------------------------------------------------------

/// A client that may reach loopback (the origins live there).
fn open() -> Http {
    http(NetworkConfig {
        allow_private_networks: true,
        ..NetworkConfig::default()
    })
}

/// A client with the guard on, exempting only `exempt` (CIDRs).
fn guarded(exempt: &[&str]) -> Http {
    http(NetworkConfig {
        allow_private_networks: false,
        allow_addresses: exempt
            .iter()
            .map(|net| net.parse().expect("test CIDR parses"))
            .collect(),
        ..NetworkConfig::default()
    })
}

fn http(network: NetworkConfig) -> Http {
    Http::new(&network, AGENT).expect("client builds")
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("test URL parses")
}

async fn get(http: &Http, target: &str, limit: u64) -> Result<Fetched, FetchError> {
    http.fetch(Fetch::get(url(target), limit)).await
}

/// One step of a [`scripted_origin`]'s answer.
enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write nothing for this long.
    Pause(Duration),
}

/// An HTTP/1.1 head with `status` and `headers`, closing the connection
/// after the body.
fn head(status: &str, headers: &[&str]) -> Step {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    Step::Send(text.into_bytes())
}

/// One chunk of a chunked body (an empty `data` ends the body).
fn chunk(data: &[u8]) -> Step {
    let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(b"\r\n");
    Step::Send(bytes)
}

/// An origin on 127.0.0.1 that answers every request with `script`, byte
/// for byte, then closes: for what an HTTP framework will not do on
/// request (a chunked body of an exact size, a pause inside a body).
async fn scripted_origin(script: Vec<Step>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind scripted origin");
    let addr = listener.local_addr().expect("address");
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                for step in script.iter() {
                    match step {
                        Step::Send(bytes) => {
                            if stream.write_all(bytes).await.is_err() {
                                return;
                            }
                        }
                        Step::Pause(pause) => tokio::time::sleep(*pause).await,
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn is_refused_literal(err: &FetchError) -> bool {
    matches!(err.failure(), FetchFailure::Refused(UrlRefused::Blocked(_)))
}

// --- the address guard ----------------------------------------------------------------

#[tokio::test]
async fn a_private_ip_literal_in_any_spelling_is_refused_before_any_request() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let http = guarded(&[]);
    let port = origin.addr.port();
    for target in [
        origin.url("/a.m3u8"),
        format!("http://[::ffff:127.0.0.1]:{port}/a.m3u8"),
        format!("http://2130706433:{port}/a.m3u8"),
        format!("http://0x7f.0.0.1:{port}/a.m3u8"),
        format!("http://0177.0.0.1:{port}/a.m3u8"),
    ] {
        let err = get(&http, &target, ROOMY).await.expect_err("refused");
        assert!(is_refused_literal(&err), "{target}: {err:?}");
        assert_eq!(err.error_kind(), ErrorKind::Blocked, "{target}");
        assert_eq!(err.status(), None, "{target}: no response head");
        // The relay's request goes through the same check.
        let err = http
            .send(Method::GET, url(&target), HeaderMap::new(), None)
            .await
            .expect_err("refused");
        assert!(is_refused_literal(&err), "send {target}: {err:?}");
    }
    assert!(
        origin.requests_to("/a.m3u8").is_empty(),
        "no request may reach the origin"
    );
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_at_connect() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let target = format!("http://localhost:{}/a.m3u8", origin.addr.port());
    let err = get(&guarded(&[]), &target, ROOMY).await.expect_err("refused");
    assert!(
        matches!(err.failure(), FetchFailure::Blocked(_)),
        "a name is refused by the resolver, not before: {err:?}"
    );
    assert_eq!(err.error_kind(), ErrorKind::Blocked);
    assert!(origin.requests_to("/a.m3u8").is_empty());
}

#[tokio::test]
async fn a_redirect_from_an_allowed_origin_to_a_private_address_is_refused() {
    let allowed = FakeOrigin::start_on("127.0.0.2").await;
    let private = FakeOrigin::start().await;
    private.route("/secret", Reply::bytes("internal"));
    let by_literal = private.url("/secret");
    let by_name = format!("http://localhost:{}/secret", private.addr.port());
    allowed.route("/to-literal", Reply::redirect(&by_literal));
    allowed.route("/to-name", Reply::redirect(&by_name));
    let http = guarded(&["127.0.0.2/32"]);
    for path in ["/to-literal", "/to-name"] {
        let err = get(&http, &allowed.url(path), ROOMY)
            .await
            .expect_err("redirect refused");
        assert_eq!(err.error_kind(), ErrorKind::Blocked, "{path}: {err:?}");
        assert_eq!(allowed.requests_to(path).len(), 1, "the allowed hop was asked");
    }
    assert!(
        private.requests_to("/secret").is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn a_url_with_another_scheme_or_credentials_is_refused_before_any_request() {
    let origin = FakeOrigin::start().await;
    let with_credentials = format!("http://user:pw@{}/a.m3u8", origin.addr);
    for (target, why) in [
        ("ftp://example.com/a.m3u8", "scheme"),
        (with_credentials.as_str(), "userinfo"),
    ] {
        let err = get(&open(), target, ROOMY).await.expect_err("refused");
        let refused = match err.failure() {
            FetchFailure::Refused(UrlRefused::Scheme(_)) => "scheme",
            FetchFailure::Refused(UrlRefused::Userinfo) => "userinfo",
            other => panic!("{target}: {other:?}"),
        };
        assert_eq!(refused, why);
        assert_eq!(
            err.error_kind(),
            ErrorKind::Other,
            "{target}: no address was guarded"
        );
    }
    assert!(origin.requests_to("/a.m3u8").is_empty());
}

#[tokio::test]
async fn a_redirect_to_another_scheme_or_to_credentials_is_refused_without_counting_as_blocked() {
    let origin = FakeOrigin::start().await;
    let with_credentials = format!("http://user:pw@{}/target", origin.addr);
    origin.route("/to-ftp", Reply::redirect("ftp://example.com/a.m3u8"));
    origin.route("/to-credentials", Reply::redirect(&with_credentials));
    for (path, message) in [
        ("/to-ftp", "URL scheme \"ftp\" is not http or https"),
        ("/to-credentials", "user name or password"),
    ] {
        let err = get(&open(), &origin.url(path), ROOMY)
            .await
            .expect_err("redirect refused");
        assert!(matches!(err.failure(), FetchFailure::Other(_)), "{path}: {err:?}");
        assert_eq!(err.error_kind(), ErrorKind::Other, "{path}");
        assert!(err.to_string().contains(message), "{path}: {err}");
    }
    assert!(origin.requests_to("/target").is_empty());
}

#[tokio::test]
async fn an_address_in_allow_addresses_is_reached_while_other_private_ones_stay_refused() {
    let exempt = FakeOrigin::start_on("127.0.0.2").await;
    exempt.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let other = FakeOrigin::start().await;
    other.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let http = guarded(&["127.0.0.2/32"]);
    let fetched = get(&http, &exempt.url("/a.m3u8"), ROOMY)
        .await
        .expect("the exempt address is reached");
    assert_eq!(fetched.body, MEDIA_LIVE);
    let err = get(&http, &other.url("/a.m3u8"), ROOMY)
        .await
        .expect_err("127.0.0.1 is not exempt");
    assert_eq!(err.error_kind(), ErrorKind::Blocked);
    assert!(other.requests_to("/a.m3u8").is_empty());
}

#[tokio::test]
async fn allow_private_networks_reaches_loopback_by_literal_and_by_name() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let by_name = format!("http://localhost:{}/a.m3u8", origin.addr.port());
    for target in [origin.url("/a.m3u8"), by_name] {
        let fetched = get(&open(), &target, ROOMY).await.expect("reached");
        assert_eq!(fetched.status, StatusCode::OK, "{target}");
        assert_eq!(fetched.body, MEDIA_LIVE, "{target}");
    }
    assert_eq!(origin.requests_to("/a.m3u8").len(), 2);
}

// --- byte caps ------------------------------------------------------------------------

#[tokio::test]
async fn a_body_declared_longer_than_the_limit_is_too_large() {
    let origin = FakeOrigin::start().await;
    origin.route("/big", Reply::sized(64 * 1024 * 1024));
    let err = get(&open(), &origin.url("/big"), 4096)
        .await
        .expect_err("over the limit");
    assert!(matches!(err.failure(), FetchFailure::TooLarge(4096)), "{err:?}");
    assert_eq!(err.to_string(), "body exceeds 4096 bytes");
    assert_eq!(err.error_kind(), ErrorKind::TooLarge);
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert!(origin.bytes_sent() < BOUNDED, "sent {}", origin.bytes_sent());
}

#[tokio::test]
async fn a_body_without_a_length_is_too_large_once_it_passes_the_limit() {
    let over = scripted_origin(vec![
        head("200 OK", &["Transfer-Encoding: chunked"]),
        chunk(&[b'a'; 3000]),
        chunk(&[b'b'; 1097]),
        chunk(b""),
    ])
    .await;
    let err = get(&open(), &format!("http://{over}/list"), 4096)
        .await
        .expect_err("one byte over");
    assert!(matches!(err.failure(), FetchFailure::TooLarge(4096)), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::OK));

    let origin = FakeOrigin::start().await;
    origin.route("/endless", Reply::endless(1024));
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        get(&open(), &origin.url("/endless"), 4096),
    )
    .await
    .expect("an endless body must not hang the fetch")
    .expect_err("endless");
    assert!(matches!(err.failure(), FetchFailure::TooLarge(4096)), "{err:?}");
    // The fetch hung up: a moment later the origin has still pushed no more
    // than socket buffers hold, rather than streaming on.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(origin.bytes_sent() < BOUNDED, "sent {}", origin.bytes_sent());
    }
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read_whole_with_or_without_a_length() {
    let body = sized_body(4096);
    let origin = FakeOrigin::start().await;
    origin.route("/exact", Reply::bytes(body.clone()));
    origin.route("/over", Reply::bytes(sized_body(4097)));
    let fetched = get(&open(), &origin.url("/exact"), 4096)
        .await
        .expect("exactly the limit");
    assert_eq!(fetched.body, body);
    assert!(fetched.complete);
    let err = get(&open(), &origin.url("/over"), 4096)
        .await
        .expect_err("one byte over");
    assert!(matches!(err.failure(), FetchFailure::TooLarge(4096)), "{err:?}");

    let chunked = scripted_origin(vec![
        head("200 OK", &["Transfer-Encoding: chunked"]),
        chunk(&body[..1000]),
        chunk(&body[1000..]),
        chunk(b""),
    ])
    .await;
    let fetched = get(&open(), &format!("http://{chunked}/exact"), 4096)
        .await
        .expect("exactly the limit, chunked");
    assert_eq!(fetched.body, body);
    assert!(fetched.complete);
}

#[tokio::test]
async fn head_only_asks_for_the_limit_as_a_range_and_a_cut_206_is_not_complete() {
    let origin = FakeOrigin::start().await;
    let body = sized_body(10_000);
    origin.route("/long.m3u8", Reply::bytes(body.clone()).honour_range());
    let fetched = open()
        .fetch(Fetch::get(url(&origin.url("/long.m3u8")), 100).head_only())
        .await
        .expect("the head of the body");
    assert_eq!(fetched.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(fetched.body, body[..100]);
    assert!(!fetched.complete, "9,900 bytes were left out");
    let requests = origin.requests_to("/long.m3u8");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["range"], "bytes=0-99");
}

#[tokio::test]
async fn head_only_stops_quietly_at_the_limit_when_the_origin_ignores_the_range() {
    let origin = FakeOrigin::start().await;
    let body = sized_body(10_000);
    origin.route("/long.m3u8", Reply::bytes(body.clone()));
    origin.route("/endless.m3u8", Reply::endless(1024));
    let fetched = open()
        .fetch(Fetch::get(url(&origin.url("/long.m3u8")), 100).head_only())
        .await
        .expect("a cut head is no failure");
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, body[..100]);
    assert!(!fetched.complete);
    let fetched = open()
        .fetch(Fetch::get(url(&origin.url("/endless.m3u8")), 4096).head_only())
        .await
        .expect("a cut head of an endless body");
    assert_eq!(fetched.body.len(), 4096);
    assert!(!fetched.complete);
    assert!(origin.bytes_sent() < BOUNDED, "sent {}", origin.bytes_sent());
}

#[tokio::test]
async fn the_size_of_the_whole_resource_is_known_from_a_partial_answer_or_a_declared_length() {
    let origin = FakeOrigin::start().await;
    origin.route("/ranged.ts", Reply::bytes(sized_body(20_000)).honour_range());
    origin.route("/plain.ts", Reply::bytes(sized_body(20_000)));
    for path in ["/ranged.ts", "/plain.ts"] {
        let fetched = open()
            .fetch(Fetch::get(url(&origin.url(path)), 100).head_only())
            .await
            .expect("a head");
        assert_eq!(fetched.body.len(), 100, "{path}");
        assert!(!fetched.complete, "{path}");
        assert_eq!(fetched.resource_len, Some(20_000), "{path}");
    }
    let ranged = &origin.requests_to("/ranged.ts")[0];
    assert_eq!(
        ranged.headers.get("range").and_then(|v| v.to_str().ok()),
        Some("bytes=0-99")
    );
}

#[tokio::test]
async fn a_head_from_an_offset_asks_for_that_range_and_is_never_taken_for_the_whole() {
    let origin = FakeOrigin::start().await;
    let body = sized_body(1_000);
    origin.route("/file.ts", Reply::bytes(body.clone()).honour_range());
    let fetched = open()
        .fetch(
            Fetch::get(url(&origin.url("/file.ts")), 1_000)
                .head_only()
                .from_offset(900),
        )
        .await
        .expect("the tail");
    assert_eq!(fetched.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(fetched.body, body[900..]);
    assert!(!fetched.complete, "a range from an offset is a part");
    assert_eq!(fetched.resource_len, Some(1_000));
    let request = &origin.requests_to("/file.ts")[0];
    assert_eq!(
        request.headers.get("range").and_then(|v| v.to_str().ok()),
        Some("bytes=900-1899")
    );
}

#[tokio::test]
async fn head_only_of_a_resource_within_the_limit_is_complete_from_a_200_or_a_whole_206() {
    let origin = FakeOrigin::start().await;
    origin.route("/whole-200.m3u8", Reply::playlist(MEDIA_LIVE));
    origin.route("/whole-206.m3u8", Reply::playlist(MEDIA_LIVE).honour_range());
    for (path, status) in [
        ("/whole-200.m3u8", StatusCode::OK),
        ("/whole-206.m3u8", StatusCode::PARTIAL_CONTENT),
    ] {
        let fetched = open()
            .fetch(Fetch::get(url(&origin.url(path)), 8192).head_only())
            .await
            .expect("fetched");
        assert_eq!(fetched.status, status, "{path}");
        assert_eq!(fetched.body, MEDIA_LIVE, "{path}");
        assert!(fetched.complete, "{path}: the whole resource came");
    }
    let asked = &origin.requests_to("/whole-206.m3u8")[0];
    assert_eq!(asked.headers["range"], "bytes=0-8191");
}

#[tokio::test]
async fn head_only_of_a_resource_of_exactly_the_limit_is_complete_only_when_its_length_says_so() {
    let origin = FakeOrigin::start().await;
    let body = sized_body(100);
    origin.route("/ranged", Reply::bytes(body.clone()).honour_range());
    origin.route("/plain", Reply::bytes(body.clone()));
    for path in ["/ranged", "/plain"] {
        let fetched = open()
            .fetch(Fetch::get(url(&origin.url(path)), 100).head_only())
            .await
            .expect("fetched");
        assert_eq!(fetched.body, body, "{path}");
        assert!(
            fetched.complete,
            "{path}: its length (Content-Range 0-99/100 or Content-Length 100) says so"
        );
    }
    let chunked = scripted_origin(vec![
        head("200 OK", &["Transfer-Encoding: chunked"]),
        chunk(&body),
        chunk(b""),
    ])
    .await;
    let fetched = open()
        .fetch(Fetch::get(url(&format!("http://{chunked}/exact")), 100).head_only())
        .await
        .expect("fetched");
    assert_eq!(fetched.body, body);
    assert!(
        !fetched.complete,
        "without a length, whether more follows is unknown"
    );
}

#[tokio::test]
async fn a_206_to_a_request_without_a_range_is_a_status_failure() {
    let origin = FakeOrigin::start().await;
    origin.route("/odd", Reply::bytes("partial").with_status(206));
    let err = get(&open(), &origin.url("/odd"), ROOMY)
        .await
        .expect_err("a 206 answers a range nobody asked for");
    assert!(matches!(err.failure(), FetchFailure::Status(206)), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::PARTIAL_CONTENT));
    assert_eq!(err.error_kind(), ErrorKind::HttpStatus);
}

// --- timeouts -------------------------------------------------------------------------

#[tokio::test]
async fn a_response_head_later_than_the_first_byte_timeout_is_a_timeout() {
    let origin = FakeOrigin::start().await;
    origin.route("/slow", Reply::bytes("late").delay(Duration::from_secs(30)));
    let fetch = Fetch::get(url(&origin.url("/slow")), ROOMY).first_byte_timeout(Duration::from_millis(300));
    let err = open().fetch(fetch).await.expect_err("no head in time");
    assert!(matches!(err.failure(), FetchFailure::Timeout), "{err:?}");
    assert_eq!(err.error_kind(), ErrorKind::Timeout);
    assert_eq!(err.to_string(), "Timeout");
}

#[tokio::test]
async fn a_body_still_streaming_at_the_total_timeout_is_a_timeout() {
    let origin = FakeOrigin::start().await;
    origin.route("/stalled", Reply::stall("#EXTM3U\n"));
    let fetch = Fetch::get(url(&origin.url("/stalled")), ROOMY)
        .first_byte_timeout(Duration::from_secs(30))
        .timeout(Duration::from_millis(300));
    let err = open().fetch(fetch).await.expect_err("the body never ends");
    assert!(matches!(err.failure(), FetchFailure::Timeout), "{err:?}");
    assert_eq!(err.error_kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn the_first_byte_timeout_does_not_cut_a_body_that_is_slower() {
    let origin = scripted_origin(vec![
        head("200 OK", &["Content-Length: 8"]),
        Step::Pause(Duration::from_millis(2500)),
        Step::Send(b"#EXTM3U\n".to_vec()),
    ])
    .await;
    // The head is sent at once: even a loaded runner gets it within 2 s, and
    // the body then takes longer than that.
    let fetch =
        Fetch::get(url(&format!("http://{origin}/a.m3u8")), ROOMY).first_byte_timeout(Duration::from_secs(2));
    let fetched = open().fetch(fetch).await.expect("the head came in time");
    assert_eq!(fetched.body, "#EXTM3U\n");
}

// --- redirects ------------------------------------------------------------------------

#[tokio::test]
async fn redirects_are_followed_and_the_final_url_is_the_last_hop() {
    let origin = FakeOrigin::start().await;
    origin.route("/a/old.m3u8", Reply::redirect("/b/moved.m3u8"));
    origin.route("/b/moved.m3u8", Reply::redirect("../c/new.m3u8"));
    origin.route("/c/new.m3u8", Reply::playlist(MEDIA_LIVE));
    let fetched = get(&open(), &origin.url("/a/old.m3u8"), ROOMY)
        .await
        .expect("followed");
    assert_eq!(fetched.final_url.as_str(), origin.url("/c/new.m3u8"));
    assert_eq!(fetched.body, MEDIA_LIVE);
}

#[tokio::test]
async fn more_redirects_than_max_redirects_fail_and_exactly_that_many_are_followed() {
    let origin = FakeOrigin::start().await;
    origin.route("/r1", Reply::redirect("/r2"));
    origin.route("/r2", Reply::redirect("/r3"));
    origin.route("/r3", Reply::redirect("/end"));
    origin.route("/end", Reply::bytes("arrived"));
    let http = http(NetworkConfig {
        allow_private_networks: true,
        max_redirects: 2,
        ..NetworkConfig::default()
    });
    let fetched = get(&http, &origin.url("/r2"), ROOMY)
        .await
        .expect("two redirects are allowed");
    assert_eq!(fetched.body, "arrived");
    let err = get(&http, &origin.url("/r1"), ROOMY)
        .await
        .expect_err("a third redirect is one too many");
    assert!(err.to_string().contains("more than 2 redirects"), "{err}");
    assert_eq!(err.error_kind(), ErrorKind::Other);
}

// --- headers --------------------------------------------------------------------------

#[tokio::test]
async fn the_extractors_headers_reach_the_origin_and_its_user_agent_replaces_ours() {
    let origin = FakeOrigin::start().await;
    origin.route(
        "/gated.m3u8",
        Reply::playlist(MEDIA_LIVE).require_header("referer", "https://site.example/"),
    );
    let target = url(&origin.url("/gated.m3u8"));
    let err = open()
        .fetch(Fetch::get(target.clone(), ROOMY))
        .await
        .expect_err("the origin wants its Referer");
    assert_eq!(err.error_kind(), ErrorKind::Restricted);

    let mut headers = HeaderMap::new();
    headers.insert(REFERER, HeaderValue::from_static("https://site.example/"));
    open()
        .fetch(Fetch::get(target.clone(), ROOMY).headers(&headers))
        .await
        .expect("the Referer satisfies the origin");
    headers.insert(USER_AGENT, HeaderValue::from_static("SiteAgent/1"));
    open()
        .fetch(Fetch::get(target, ROOMY).headers(&headers))
        .await
        .expect("fetched");
    let seen = origin.requests_to("/gated.m3u8");
    let user_agents =
        |i: usize| -> Vec<&HeaderValue> { seen[i].headers.get_all(USER_AGENT).iter().collect() };
    assert_eq!(seen[1].headers[REFERER], "https://site.example/");
    assert_eq!(user_agents(1), [AGENT], "our own User-Agent by default");
    assert_eq!(user_agents(2), ["SiteAgent/1"], "the extractor's, not both");
}

#[tokio::test]
async fn the_extractors_headers_go_with_every_redirect_hop_and_no_referer_is_invented() {
    let origin = FakeOrigin::start().await;
    origin.route("/old.m3u8", Reply::redirect("/new.m3u8"));
    origin.route(
        "/new.m3u8",
        Reply::playlist(MEDIA_LIVE).require_header("referer", "https://site.example/"),
    );
    let mut headers = HeaderMap::new();
    headers.insert(REFERER, HeaderValue::from_static("https://site.example/"));
    open()
        .fetch(Fetch::get(url(&origin.url("/old.m3u8")), ROOMY).headers(&headers))
        .await
        .expect("the extractor's Referer reached the second hop");
    origin.route("/plain.m3u8", Reply::redirect("/target.m3u8"));
    origin.route("/target.m3u8", Reply::playlist(MEDIA_LIVE));
    get(&open(), &origin.url("/plain.m3u8"), ROOMY)
        .await
        .expect("followed");
    let hop = &origin.requests_to("/target.m3u8")[0];
    assert!(
        !hop.headers.contains_key(REFERER),
        "the previous hop is not sent as Referer: {:?}",
        hop.headers
    );
}

#[tokio::test]
async fn a_configured_extra_header_reaches_the_origin_beside_the_extractors() {
    let origin = FakeOrigin::start().await;
    origin.route("/calendar.json", Reply::bytes("{}"));
    let mut headers = HeaderMap::new();
    headers.insert(REFERER, HeaderValue::from_static("https://site.example/"));
    let fetch = Fetch::get(url(&origin.url("/calendar.json")), ROOMY)
        .headers(&headers)
        .header(ACCEPT, HeaderValue::from_static("application/json"));
    open().fetch(fetch).await.expect("fetched");
    let seen = &origin.requests_to("/calendar.json")[0].headers;
    assert_eq!(seen[ACCEPT], "application/json");
    assert_eq!(seen[REFERER], "https://site.example/");
}

// --- statuses and failures ------------------------------------------------------------

#[tokio::test]
async fn a_404_is_an_http_status_failure_carrying_the_status_and_time_to_head() {
    let origin = FakeOrigin::start().await;
    origin.route("/gone.m3u8", Reply::status(404));
    let err = get(&open(), &origin.url("/gone.m3u8"), ROOMY)
        .await
        .expect_err("404");
    assert!(matches!(err.failure(), FetchFailure::Status(404)), "{err:?}");
    assert_eq!(err.to_string(), "HTTP 404");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert!(err.ttfb().is_some(), "a head arrived");
    assert_eq!(err.error_kind(), ErrorKind::HttpStatus);
}

#[tokio::test]
async fn statuses_401_403_and_451_are_restricted_not_dead() {
    let origin = FakeOrigin::start().await;
    for code in [401, 403, 451] {
        let path = format!("/{code}");
        origin.route(&path, Reply::status(code));
        let err = get(&open(), &origin.url(&path), ROOMY)
            .await
            .expect_err("refused");
        assert!(
            matches!(err.failure(), FetchFailure::Status(c) if *c == code),
            "{err:?}"
        );
        assert_eq!(err.error_kind(), ErrorKind::Restricted, "{code}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    let err = get(&open(), &refused_url().await, ROOMY)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err.failure(), FetchFailure::Connect(_)), "{err:?}");
    assert_eq!(err.error_kind(), ErrorKind::Connect);
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    // RFC 6761: .invalid never resolves.
    let err = get(&open(), "http://stream.invalid/live.m3u8", ROOMY)
        .await
        .expect_err("no such name");
    assert!(matches!(err.failure(), FetchFailure::Dns(_)), "{err:?}");
    assert_eq!(err.error_kind(), ErrorKind::Dns);
}

#[tokio::test]
async fn a_body_cut_midway_fails_with_the_status_of_its_head() {
    let origin = FakeOrigin::start().await;
    origin.route("/cut.m3u8", Reply::truncated(&MEDIA_LIVE.as_bytes()[..40]));
    let err = get(&open(), &origin.url("/cut.m3u8"), ROOMY)
        .await
        .expect_err("the body broke");
    assert_eq!(err.status(), Some(StatusCode::OK), "{err:?}");
    assert!(
        !matches!(err.failure(), FetchFailure::TooLarge(_) | FetchFailure::Status(_)),
        "{err:?}"
    );
}

// --- timings --------------------------------------------------------------------------

#[tokio::test]
async fn time_to_first_byte_never_exceeds_the_elapsed_time() {
    let origin = scripted_origin(vec![
        head("200 OK", &["Transfer-Encoding: chunked"]),
        chunk(b"#EXTM3U\n"),
        Step::Pause(Duration::from_millis(300)),
        chunk(b"#EXT-X-ENDLIST\n"),
        chunk(b""),
    ])
    .await;
    let started = Instant::now();
    let fetched = get(&open(), &format!("http://{origin}/a.m3u8"), ROOMY)
        .await
        .expect("fetched");
    assert_eq!(fetched.body, "#EXTM3U\n#EXT-X-ENDLIST\n");
    assert!(fetched.ttfb <= fetched.elapsed, "{fetched:?}");
    assert!(
        fetched.elapsed >= Duration::from_millis(300),
        "elapsed counts to the last byte: {:?}",
        fetched.elapsed
    );
    assert!(fetched.elapsed <= started.elapsed());
}
