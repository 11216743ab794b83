//! Service endpoints, error shapes and CORS through the real router.

mod common;

use common::TestService;

#[tokio::test]
async fn root_and_health_describe_the_service() {
    let service = TestService::start("").await;
    let (status, root) = service.get_json("/").await;
    assert_eq!(status, 200);
    assert_eq!(root["service"], "f1-stream");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        service.get_json("/health").await,
        (200, serde_json::json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let service = TestService::start("").await;
    let (status, body) = service.get_json("/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no route for GET /nope");

    let (status, body) = service.post_json("/streams").await;
    assert_eq!(status, 405);
    assert_eq!(body["error"], "method not allowed");
}

#[tokio::test]
async fn empty_database_serves_empty_lists() {
    let service = TestService::start("").await;
    assert_eq!(
        service.get_json("/streams").await.1,
        serde_json::json!({"streams": [], "count": 0})
    );
    let (_, extractors) = service.get_json("/extractors").await;
    assert_eq!(extractors["extractors"][0]["site_key"], "demo");
    assert_eq!(extractors["extractors"][0]["cached_streams"], 0);
    assert_eq!(extractors["last_run"], serde_json::Value::Null);
    assert_eq!(extractors["last_run_stream_count"], 0);
}

#[tokio::test]
async fn cors_allows_any_origin_by_default_and_answers_preflight() {
    let service = TestService::start("").await;
    let client = reqwest::Client::new();
    let response = client
        .get(service.url("/streams"))
        .header("origin", "https://player.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for header in [
        "content-range",
        "content-length",
        "accept-ranges",
        "age",
        "retry-after",
    ] {
        assert!(exposed.contains(header), "{header} not exposed: {exposed}");
    }

    let preflight = client
        .request(reqwest::Method::OPTIONS, service.url("/streams"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .expect("answers");
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers().contains_key("access-control-max-age"));
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    assert!(allowed.to_ascii_lowercase().contains("range"));
}

#[tokio::test]
async fn cors_with_a_configured_origin_echoes_only_that_origin() {
    let service = TestService::start("[server]\ncors_allow_origins = [\"https://player.example\"]\n").await;
    let client = reqwest::Client::new();
    let allowed = client
        .get(service.url("/health"))
        .header("origin", "https://player.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://player.example"
    );
    assert!(
        allowed
            .headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("origin")))
    );
    let other = client
        .get(service.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("answers");
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
