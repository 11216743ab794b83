//! Who may change things, through the real service: `auth.admin_token` as a
//! bearer token on every mutating request, the "this machine only" rule
//! without one, and `server.trusted_proxies` deciding whose
//! `X-Forwarded-For` is believed. The rule's edge cases (forged chains,
//! odd headers, non-loopback peers) are unit tests in `src/api/access.rs`.

mod common;

use common::{FakeOrigin, Reply, TestService, static_extractor};
use reqwest::header::HeaderMap;

const MEDIA: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nseg0.ts\n";
const TOKEN: &str = "correct horse battery staple";

/// A service with one static extractor on a local origin, so runs stay on
/// this machine, and `extra` configuration.
async fn service(extra: &str) -> (TestService, FakeOrigin) {
    let origin = FakeOrigin::start().await;
    origin.route("/live.m3u8", Reply::playlist(MEDIA));
    let config = format!(
        "{extra}\n{}",
        static_extractor("local", &[origin.url("/live.m3u8")], "")
    );
    (TestService::start(&config).await, origin)
}

async fn post(
    service: &TestService,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, serde_json::Value) {
    let mut request = reqwest::Client::new().post(service.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("service answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    (
        status,
        headers,
        serde_json::from_slice(&body).expect("a JSON body"),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn with_a_token_mutations_need_the_right_bearer_and_reads_need_nothing() {
    let (service, _origin) = service(&format!("[auth]\nadmin_token = \"{TOKEN}\"\n")).await;
    let bearer = format!("Bearer {TOKEN}");
    for path in ["/extract", "/schedule/refresh"] {
        let (status, headers, body) = post(&service, path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Bearer realm=\"f1-stream\"")
        );
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("auth.admin_token")),
            "{body}"
        );

        let (status, headers, body) = post(&service, path, &[("authorization", "Bearer not-it")]).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        assert!(!body.to_string().contains(TOKEN), "the token never shows: {body}");
        let (status, _, _) = post(&service, path, &[("authorization", &format!("Basic {TOKEN}"))]).await;
        assert_eq!(status, 401, "{path}: another scheme is no bearer token");
    }
    assert_eq!(
        service.count("extraction_runs").await,
        0,
        "refused requests changed nothing"
    );

    let (status, _, body) = post(&service, "/extract", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live_streams"], 1);
    // Through any proxy, trusted or not: the token is what counts.
    let (status, _, _) = post(
        &service,
        "/extract",
        &[("authorization", &bearer), ("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(service.count("extraction_runs").await, 2);

    for path in ["/streams", "/channels", "/extractors", "/runs", "/schedule"] {
        assert_eq!(service.get_json(path).await.0, 200, "{path} is a read");
    }
}

#[tokio::test]
async fn without_a_token_only_direct_requests_from_this_machine_may_change_things() {
    let (service, _origin) = service("").await;
    let (status, _, body) = post(&service, "/extract", &[]).await;
    assert_eq!(status, 200, "loopback, no proxy: {body}");
    for forwarding in [("x-forwarded-for", "127.0.0.1"), ("forwarded", "for=127.0.0.1")] {
        for path in ["/extract", "/schedule/refresh"] {
            let (status, headers, body) = post(&service, path, &[forwarding]).await;
            assert_eq!(status, 403, "{path} via {forwarding:?}: {body}");
            assert_eq!(header(&headers, "cache-control"), Some("no-store"));
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("auth.admin_token")),
                "{body}"
            );
        }
    }
    assert_eq!(service.count("extraction_runs").await, 1);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_only_a_local_one_may_change_things() {
    // A single address is a network of one.
    let (service, _origin) = service("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let (status, _, body) = post(&service, "/extract", &[("x-forwarded-for", "127.0.0.1")]).await;
    assert_eq!(status, 200, "a local client through the local proxy: {body}");
    let (status, _, _) = post(&service, "/extract", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(status, 403, "a remote client through the proxy");
    let (status, _, _) = post(
        &service,
        "/extract",
        &[("x-forwarded-for", "127.0.0.1, 203.0.113.9")],
    )
    .await;
    assert_eq!(
        status, 403,
        "a forged first entry does not make a remote client local"
    );
    let (status, _, _) = post(&service, "/extract", &[("forwarded", "for=127.0.0.1")]).await;
    assert_eq!(status, 403, "only X-Forwarded-For names the client");
    assert_eq!(service.count("extraction_runs").await, 1);
}

#[tokio::test]
async fn the_token_never_shows_in_config_debug_or_the_openapi_document() {
    let config = f1_stream::config::Config::from_toml_str(&format!("[auth]\nadmin_token = \"{TOKEN}\"\n"))
        .expect("valid config");
    let debug = format!("{config:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("admin_token: \"<redacted>\""), "{debug}");
    let document = f1_stream::api::openapi::openapi_json().expect("document");
    assert!(!document.contains(TOKEN));
    let document: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    assert_eq!(
        document["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    for (path, method) in [("/extract", "post"), ("/schedule/refresh", "post")] {
        let operation = &document["paths"][path][method];
        assert_eq!(
            operation["security"][0]["admin_token"],
            serde_json::json!([]),
            "{path}"
        );
        for status in ["401", "403"] {
            assert!(
                operation["responses"][status].is_object(),
                "{path} documents {status}"
            );
        }
    }
}

#[tokio::test]
async fn every_answer_forbids_sniffing_and_referers_and_errors_are_never_cached() {
    let (service, _origin) = service("").await;
    let client = reqwest::Client::new();
    let cases = [
        (reqwest::Method::GET, "/health", 200),
        (reqwest::Method::GET, "/streams", 200),
        (reqwest::Method::GET, "/metrics", 200),
        (reqwest::Method::GET, "/streams?limit=0", 400),
        (reqwest::Method::GET, "/nope", 404),
        (reqwest::Method::GET, "/channels/best.m3u8", 503),
        (
            reqwest::Method::GET,
            "/proxy?url=aHR0cDovL2V4YW1wbGUuY29tL2EubTN1OA&sig=AAAA",
            403,
        ),
        (
            reqwest::Method::GET,
            "/relay?url=aHR0cDovL2V4YW1wbGUuY29tL2EudHM&sig=AAAA",
            403,
        ),
        (reqwest::Method::DELETE, "/streams", 405),
    ];
    for (method, path, expected) in cases {
        let response = client
            .request(method.clone(), service.url(path))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), expected, "{method} {path}");
        let headers = response.headers();
        assert_eq!(
            header(headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(header(headers, "referrer-policy"), Some("no-referrer"), "{path}");
        if expected >= 400 {
            assert_eq!(
                header(headers, "cache-control"),
                Some("no-store"),
                "{method} {path}"
            );
        }
    }
    let preflight = client
        .request(reqwest::Method::OPTIONS, service.url("/streams"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("answer");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        header(preflight.headers(), "x-content-type-options"),
        Some("nosniff")
    );
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_make_a_browser_here_change_things() {
    let (service, _origin) = service("").await;
    // What a browser sends for a foreign page's no-cors POST: no preflight.
    let (status, headers, body) = post(&service, "/extract", &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert_eq!(service.count("extraction_runs").await, 0);
    // The service's own page (same origin) may.
    let own = service.base.clone();
    let (status, _, body) = post(&service, "/extract", &[("origin", &own)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn forwarded_host_and_scheme_are_believed_only_from_a_trusted_proxy() {
    let forwarded = [
        ("x-forwarded-host", "f1.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    let proxy_url = |service: &TestService| {
        let url = service.url("/streams");
        async move {
            let mut request = reqwest::Client::new().get(url);
            for (name, value) in forwarded {
                request = request.header(name, value);
            }
            let body: serde_json::Value =
                serde_json::from_slice(&request.send().await.expect("answer").bytes().await.expect("body"))
                    .expect("JSON");
            body["streams"][0]["proxy_url"]
                .as_str()
                .expect("proxy_url")
                .to_owned()
        }
    };
    let (untrusting, _origin) = service("").await;
    assert_eq!(untrusting.post_json("/extract").await.0, 200);
    let url = proxy_url(&untrusting).await;
    assert!(url.starts_with(&format!("{}/proxy/", untrusting.base)), "{url}");

    let (trusting, _origin) = service("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    assert_eq!(trusting.post_json("/extract").await.0, 200);
    let url = proxy_url(&trusting).await;
    assert!(url.starts_with("https://f1.example.com/proxy/"), "{url}");
}

#[test]
fn trusted_proxies_take_addresses_and_networks_and_refuse_anything_else() {
    let load = |value: &str| {
        f1_stream::config::Config::from_toml_str(&format!("[server]\ntrusted_proxies = {value}\n"))
    };
    let config = load("[\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]").expect("valid");
    let listed: Vec<String> = config
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(listed, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
    let message = load("[\"proxy.local\"]").expect_err("refused").to_string();
    assert!(
        message.contains("trusted_proxies") && message.contains("proxy.local"),
        "{message}"
    );
}
