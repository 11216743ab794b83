//! The watch page as HTTP serves it: who gets the page and who the JSON,
//! deep links, the security headers, caching (ETag, 304, immutable vendor
//! files), gzip, and a page that loads nothing from elsewhere. What the page
//! does in a browser is tests/watch_page.rs.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::io::Read as _;

use common::TestService;
use reqwest::header::HeaderMap;

/// What Chromium sends when it navigates to a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";

async fn get(service: &TestService, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(service.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{name} missing in {headers:?}"))
}

/// The headers every response of the page carries.
fn assert_page_headers(headers: &HeaderMap) {
    let policy = header(headers, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-"), "{policy}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer");
}

#[tokio::test]
async fn browsers_get_the_page_at_the_root_and_everyone_else_the_json() {
    let service = TestService::start("").await;
    let page = get(&service, "/", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(page.status(), 200);
    assert_page_headers(page.headers());
    assert!(header(page.headers(), "content-type").starts_with("text/html"));
    assert!(
        header(page.headers(), "vary")
            .to_ascii_lowercase()
            .contains("accept")
    );
    let html = page.text().await.expect("body");
    assert!(html.contains("<script type=\"module\""), "{html}");

    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("application/json, text/html;q=0.9"),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let response = get(&service, "/", &headers).await;
        assert_eq!(response.status(), 200);
        assert!(
            header(response.headers(), "vary")
                .to_ascii_lowercase()
                .contains("accept")
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(body["service"], "f1-stream", "{accept:?}");
    }
}

#[tokio::test]
async fn every_view_reloads_from_its_deep_link_and_no_api_route_is_shadowed() {
    let service = TestService::start("").await;
    let shell = get(&service, "/", &[("accept", BROWSER_ACCEPT)])
        .await
        .text()
        .await
        .expect("shell");
    for path in [
        "/watch",
        "/watch?channel=best",
        "/watch?play=channel:best&play=stream:3",
        "/calendar",
        "/status?stream=7",
    ] {
        // Whatever the client accepts: a deep link pasted into any tool.
        for accept in [BROWSER_ACCEPT, "*/*"] {
            let response = get(&service, path, &[("accept", accept)]).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_page_headers(response.headers());
            assert_eq!(response.text().await.expect("body"), shell, "{path}");
        }
    }
    // The API keeps its paths, for browsers too.
    for path in [
        "/schedule",
        "/streams",
        "/channels",
        "/extractors",
        "/runs",
        "/health",
    ] {
        let response = get(&service, path, &[("accept", BROWSER_ACCEPT)]).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            header(response.headers(), "content-type").starts_with("application/json"),
            "{path}"
        );
    }
    for path in [
        "/watch/extra",
        "/assets/nope.mjs",
        "/assets/vendor/hls.js-0.0.1/hls.min.mjs",
    ] {
        let response = get(&service, path, &[]).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("a JSON error");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

/// Every URL the page's files refer to (`src=`, `href=`, `import … from`,
/// `import(…)`, `url(…)`), as written.
fn references(text: &str) -> Vec<String> {
    let pattern = regex::Regex::new(
        r#"(?:\b(?:src|href)\s*=\s*"([^"]+)")|(?:\bfrom\s*['"]([^'"]+)['"])|(?:\bimport\s*\(\s*['"]([^'"]+)['"])|(?:\burl\(\s*['"]?([^'")]+)['"]?\s*\))"#,
    )
    .expect("regex");
    pattern
        .captures_iter(text)
        .filter_map(|c| c.iter().skip(1).flatten().next().map(|m| m.as_str().to_owned()))
        .collect()
}

/// Walks the page from its shell through every file it refers to, as the
/// browser would resolve them from `/watch`; returns the files' paths.
async fn crawl(service: &TestService) -> BTreeSet<String> {
    let base = url::Url::parse(&service.url("/watch")).expect("base");
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([base.clone()]);
    while let Some(url) = queue.pop_front() {
        let response = reqwest::get(url.clone()).await.expect("request");
        assert_eq!(response.status(), 200, "{url}");
        assert_page_headers(response.headers());
        let content_type = header(response.headers(), "content-type").to_owned();
        let text = response.text().await.expect("body");
        if !(content_type.starts_with("text/") || content_type.starts_with("image/svg")) {
            continue;
        }
        // The vendored library is not ours to read; it is checked below.
        if url.path().starts_with("/assets/vendor/") {
            continue;
        }
        for reference in references(&text) {
            if reference.starts_with('#') || reference.starts_with("data:") {
                continue;
            }
            let target = url.join(&reference).expect("a valid reference");
            assert_eq!(
                target.origin(),
                base.origin(),
                "{url} refers to {reference}: nothing may load from elsewhere"
            );
            let is_api = ["/docs", "/openapi.json", "/channels/"]
                .iter()
                .any(|p| target.path().starts_with(p));
            if !is_api && seen.insert(target.path().to_owned()) {
                queue.push_back(target);
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_page_loads_only_its_own_embedded_files() {
    let service = TestService::start("").await;
    let files = crawl(&service).await;
    for expected in ["/assets/app.css", "/assets/app.mjs"] {
        assert!(files.contains(expected), "{expected} in {files:?}");
    }
    // hls.js is vendored: an ES module, its worker and its licence.
    let vendored = "/assets/vendor/hls.js-1.7.4";
    let module = get(&service, &format!("{vendored}/hls.min.mjs"), &[]).await;
    assert_eq!(module.status(), 200);
    assert_page_headers(module.headers());
    assert!(header(module.headers(), "content-type").starts_with("text/javascript"));
    assert!(header(module.headers(), "cache-control").contains("immutable"));
    let module = module.text().await.expect("body");
    assert!(module.contains("as default"), "an ES module exporting Hls");
    let worker = get(&service, &format!("{vendored}/hls.worker.js"), &[]).await;
    assert_eq!(worker.status(), 200);
    let licence = get(&service, &format!("{vendored}/LICENSE"), &[]).await;
    assert_eq!(licence.status(), 200);
    assert!(licence.text().await.expect("body").contains("Apache License"));
}

#[tokio::test]
async fn files_are_revalidated_by_etag_and_sent_gzipped_when_accepted() {
    let service = TestService::start("").await;
    for path in [
        "/watch",
        "/assets/app.mjs",
        "/assets/app.css",
        "/assets/vendor/hls.js-1.7.4/hls.min.mjs",
    ] {
        let plain = get(&service, path, &[]).await;
        assert_eq!(plain.status(), 200, "{path}");
        let etag = header(plain.headers(), "etag").to_owned();
        let cache_control = header(plain.headers(), "cache-control").to_owned();
        if path.contains("/vendor/") {
            assert_eq!(cache_control, "public, max-age=31536000, immutable");
        } else {
            assert_eq!(
                cache_control, "no-cache",
                "{path}: revalidated, so an upgrade shows at once"
            );
        }
        assert!(plain.headers().get("content-encoding").is_none());
        let identity = plain.bytes().await.expect("body");

        let revalidated = get(&service, path, &[("if-none-match", &etag)]).await;
        assert_eq!(revalidated.status(), 304, "{path}");
        assert_page_headers(revalidated.headers());
        assert_eq!(header(revalidated.headers(), "etag"), etag);
        assert!(revalidated.bytes().await.expect("body").is_empty());
        let changed = get(&service, path, &[("if-none-match", "W/\"0000\"")]).await;
        assert_eq!(changed.status(), 200, "{path}: another ETag is not a match");

        let gzipped = get(&service, path, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(gzipped.status(), 200);
        assert_eq!(header(gzipped.headers(), "content-encoding"), "gzip", "{path}");
        assert_eq!(
            header(gzipped.headers(), "etag"),
            etag,
            "one validator for both encodings"
        );
        assert!(header(gzipped.headers(), "vary").contains("accept-encoding"));
        let compressed = gzipped.bytes().await.expect("body");
        assert!(compressed.len() < identity.len(), "{path}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_ref())
            .read_to_end(&mut decoded)
            .expect("valid gzip");
        assert_eq!(decoded, identity.as_ref(), "{path}: the same bytes once decoded");
    }
}

#[tokio::test]
async fn the_policy_names_the_public_url_the_page_plays_from() {
    let service = TestService::start("[server]\npublic_url = \"https://f1.example.com\"\n").await;
    let page = get(&service, "/watch", &[]).await;
    let policy = header(page.headers(), "content-security-policy");
    assert!(
        policy.contains("connect-src 'self' https://f1.example.com;"),
        "{policy}"
    );
    assert!(
        policy.contains("media-src 'self' blob: https://f1.example.com;"),
        "{policy}"
    );
}
