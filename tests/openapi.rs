//! The OpenAPI document (`/openapi.json`, `f1-stream openapi`) and the
//! reference page (`/docs`): the document is valid OpenAPI 3.1, describes
//! exactly the routes the router serves, and the page needs nothing from
//! outside the service. Also the regressions schemathesis found.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{FakeOrigin, MASTER, Reply, TestService, static_extractor};
use serde_json::Value;

/// Every route the router serves, with its methods: the contract this test
/// pins. A route added to (or dropped from) the router without its
/// `#[utoipa::path]` fails here and in the probes below.
const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["get"]),
    ("/channels", &["get"]),
    ("/channels/{playlist}", &["get"]),
    ("/assets/vendor/{package}/{file}", &["get"]),
    ("/assets/{file}", &["get"]),
    ("/calendar", &["get"]),
    ("/channels/{slug}/streams", &["get"]),
    ("/channels/{slug}/switches", &["get"]),
    ("/docs", &["get"]),
    ("/docs/{file}", &["get"]),
    ("/extract", &["post"]),
    ("/extractors", &["get"]),
    ("/extractors/{site_key}/uptime", &["get"]),
    ("/health", &["get"]),
    ("/metrics", &["get"]),
    ("/openapi.json", &["get"]),
    ("/proxy", &["get"]),
    ("/proxy/{token}/{name}", &["get"]),
    ("/relay", &["get", "head"]),
    ("/relay/{token}/{name}", &["get", "head"]),
    ("/runs", &["get"]),
    ("/runs/{id}", &["get"]),
    ("/schedule", &["get"]),
    ("/schedule/refresh", &["post"]),
    ("/streams", &["get"]),
    ("/streams/all", &["get"]),
    ("/streams/{id}", &["get"]),
    ("/streams/{id}/events", &["get"]),
    ("/streams/{id}/history", &["get"]),
    ("/streams/{id}/uptime", &["get"]),
    ("/status", &["get"]),
    ("/watch", &["get"]),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const SEASON_2026: &str = include_str!("fixtures/schedule/season_2026.json");

/// The service with a `static` extractor and the calendar on a fake origin,
/// so `POST /extract` and `POST /schedule/refresh` stay on this machine.
async fn service_with_origin() -> (TestService, FakeOrigin) {
    let origin = FakeOrigin::start().await;
    origin.route("/master.m3u8", Reply::playlist(MASTER));
    origin.route("/calendar.json", Reply::bytes(SEASON_2026));
    let extra = format!(
        "url = \"{}\"\n{}",
        origin.url("/calendar.json"),
        static_extractor("local", &[origin.url("/master.m3u8")], "")
    );
    (TestService::start(&extra).await, origin)
}

async fn document(service: &TestService) -> Value {
    let (status, document) = service.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    document
}

/// Every `(path, method)` operation of the document.
fn operations(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = document["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item is an object")
                .keys()
                .filter(|key| HTTP_METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Resolves a local JSON pointer (`#/components/schemas/X`).
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => out.push(reference),
                    _ => collect_refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// A concrete URL path for a template, with values the handlers accept in
/// shape (they need not exist).
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{site_key}", "local")
        .replace("{token}", "aHR0cDovL2V4YW1wbGUuY29tL2EubTN1OA.c2ln")
        .replace("{name}", "a.m3u8")
        .replace("{file}", "swagger-ui.css")
}

#[tokio::test]
async fn document_is_valid_openapi_3_1() {
    let service = TestService::start("").await;
    let document = document(&service).await;

    let version = document["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1"), "openapi is {version}");
    assert!(document["info"]["title"].is_string());
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));

    // A typed OpenAPI 3.1 model accepts it, and its own validation passes.
    let text = serde_json::to_string(&document).expect("serializes");
    let spec = oas3::from_json(&text).expect("oas3 parses the document as OpenAPI 3.1");
    let parsed = spec.validate_version().expect("a supported OpenAPI version");
    assert_eq!((parsed.major, parsed.minor), (3, 1));
    assert!(spec.paths.as_ref().is_some_and(|paths| !paths.is_empty()));

    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty(), "schemas are shared through $ref");
    for reference in refs {
        assert!(
            resolve(&document, reference).is_some(),
            "$ref {reference} does not resolve"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for (path, methods) in operations(&document) {
        assert!(!methods.is_empty(), "{path} has no operation");
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in methods {
            let operation = &document["paths"][&path][&method];
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id.to_owned()), "operationId {id} twice");
            assert!(
                operation["summary"].is_string() || operation["description"].is_string(),
                "{method} {path} is undescribed"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status} lacks a description"
                );
                // Every error answer is the one error shape.
                if (status.starts_with('4') || status.starts_with('5'))
                    && let Some(json) = response["content"].get("application/json")
                {
                    assert_eq!(
                        json["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, templated, "{method} {path}: path parameters");
        }
    }
}

/// Regression: utoipa made every hand-parsed `Option<String>` query field
/// *required* once given a `value_type`, and `Option` header parameters
/// nullable (`["string", "null"]`), which no HTTP client can send.
#[tokio::test]
async fn parameters_are_optional_typed_and_never_null() {
    let service = TestService::start("").await;
    let document = document(&service).await;
    let mut seen = 0;
    for (path, methods) in operations(&document) {
        for method in methods {
            let parameters = document["paths"][&path][&method]["parameters"]
                .as_array()
                .cloned();
            for parameter in parameters.unwrap_or_default() {
                let name = parameter["name"].as_str().expect("name");
                let schema = &parameter["schema"];
                assert!(
                    !schema.to_string().contains(r#""null""#),
                    "{method} {path} {name} may be null: {schema}"
                );
                if parameter["in"] != "path" {
                    let required = parameter["required"].as_bool().unwrap_or(false);
                    assert_eq!(required, name == "url", "{method} {path} {name} required");
                }
                seen += 1;
            }
        }
    }
    assert!(seen > 30, "only {seen} parameters documented");

    let streams = &document["paths"]["/streams"]["get"]["parameters"];
    let find = |name: &str| {
        streams
            .as_array()
            .and_then(|params| params.iter().find(|p| p["name"] == name))
            .map(|p| p["schema"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(find("limit")["type"], "integer");
    assert_eq!(
        (
            find("limit")["minimum"].as_u64(),
            find("limit")["maximum"].as_u64()
        ),
        (Some(1), Some(10_000))
    );
    assert_eq!(find("order")["enum"], serde_json::json!(["fastest", "score"]));
    assert_eq!(find("order")["default"], "fastest");
    assert_eq!(
        find("stream_type")["enum"],
        serde_json::json!(["live", "event", "vod", "unknown"])
    );
    let sessions = find("session")["enum"].clone();
    for session in ["fp1", "qualifying", "race", "live"] {
        assert!(
            sessions
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == session)),
            "{session}"
        );
    }
    let history = &document["paths"]["/streams/{id}/history"]["get"]["parameters"];
    let from = history
        .as_array()
        .and_then(|params| params.iter().find(|p| p["name"] == "from"))
        .expect("from");
    let kinds: Vec<&Value> = from["schema"]["oneOf"]
        .as_array()
        .expect("from is RFC 3339 or unix seconds")
        .iter()
        .map(|alternative| &alternative["type"])
        .collect();
    assert_eq!(kinds, [&Value::from("string"), &Value::from("integer")]);
}

/// Found with schemathesis's `negative_data_rejection` check: an empty
/// value is accepted as "absent" by every hand-parsed parameter, which the
/// document first contradicted (`site_key` pattern `{1,64}`, `src` too).
/// Now documented (`{0,64}`); this pins the behaviour.
#[tokio::test]
async fn empty_query_values_count_as_absent() {
    let (service, _origin) = service_with_origin().await;
    let (status, body) = service
        .get_json("/streams?session=&site_key=&limit=&stream_type=&order=")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = service.get_json("/runs?limit=&cursor=").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = service
        .get_json("/streams/1/history?from=&to=&limit=&cursor=")
        .await;
    assert_eq!(
        status, 404,
        "no stream yet, and no complaint about the query: {body}"
    );
    let (status, body) = service.get_json("/extractors/local/uptime?from=&to=&step=").await;
    assert_eq!(status, 200, "{body}");
    let document = document(&service).await;
    let site_key = document["paths"]["/streams"]["get"]["parameters"]
        .as_array()
        .and_then(|params| params.iter().find(|p| p["name"] == "site_key"))
        .map(|p| p["schema"]["pattern"].clone());
    assert_eq!(site_key, Some(Value::from("^[a-z0-9_-]{0,64}$")));
}

#[tokio::test]
async fn every_list_reads_limit_the_same_way() {
    let (service, _origin) = service_with_origin().await;
    for list in ["/streams", "/runs", "/channels/best/switches"] {
        let (status, body) = service.get_json(&format!("{list}?limit=%205%20")).await;
        assert_eq!(
            status, 200,
            "{list}: a padded limit is read like any other: {body}"
        );
        for bad in ["0", "x", "%20-1"] {
            let (status, body) = service.get_json(&format!("{list}?limit={bad}")).await;
            assert_eq!(status, 400, "{list}?limit={bad}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("limit: "), "{list}?limit={bad}: {error}");
        }
    }
}

#[tokio::test]
async fn document_lists_exactly_the_served_routes() {
    let service = TestService::start("").await;
    let documented = operations(&document(&service).await);
    let expected: BTreeMap<String, BTreeSet<String>> = ROUTES
        .iter()
        .map(|(path, methods)| {
            (
                (*path).to_owned(),
                methods.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(documented, expected);
    // The document and the router come from one list; the library's view
    // agrees with what is served.
    let from_code = f1_stream::api::openapi::openapi();
    let code_paths: BTreeSet<&str> = from_code.paths.paths.keys().map(String::as_str).collect();
    let expected_paths: BTreeSet<&str> = ROUTES.iter().map(|(path, _)| *path).collect();
    assert_eq!(code_paths, expected_paths);
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (service, _origin) = service_with_origin().await;
    let client = reqwest::Client::new();
    for (path, methods) in operations(&document(&service).await) {
        for method in &methods {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = client
                .request(method.clone(), service.url(&concrete(&path)))
                .send()
                .await
                .expect("service answers");
            let status = response.status().as_u16();
            let body = response.text().await.expect("body");
            assert!(
                !(status == 404 && body.contains("no route for")),
                "{method} {path} fell through to the no-route fallback"
            );
            assert_ne!(status, 405, "{method} {path} is not routed for {method}");
        }
    }
}

#[tokio::test]
async fn undocumented_methods_are_not_served() {
    let service = TestService::start("").await;
    let client = reqwest::Client::new();
    for (path, methods) in operations(&document(&service).await) {
        // axum answers HEAD wherever GET is routed; the rest must be refused.
        for method in ["get", "post", "put", "delete", "patch"] {
            if methods.contains(method) {
                continue;
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response = client
                .request(method.clone(), service.url(&concrete(&path)))
                .send()
                .await
                .expect("service answers");
            assert_eq!(
                response.status(),
                405,
                "{method} {path} is served but undocumented"
            );
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
            assert_eq!(body["error"], "method not allowed");
        }
    }
}

#[test]
fn router_source_registers_no_route_outside_the_document() {
    // Routes registered with plain `.route(...)` would be served without an
    // operation in the document; only the metrics-only listener may do so.
    let sources = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api")).expect("src/api");
    for entry in sources {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        for (number, line) in text.lines().enumerate() {
            if line.contains(".route(") || line.contains(".nest(") || line.contains(".route_service(") {
                assert!(
                    line.contains(r#".route("/metrics", get(render_metrics))"#),
                    "{}:{}: a route outside the OpenAPI router: {line}",
                    path.display(),
                    number + 1
                );
            }
        }
    }
}

#[tokio::test]
async fn cli_prints_the_served_document() {
    let service = TestService::start("").await;
    let served = document(&service).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args(["-c", "/nonexistent/f1-stream.toml", "openapi"])
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(printed, served);
}

#[tokio::test]
async fn docs_page_renders_the_document_from_local_assets_only() {
    let service = TestService::start("").await;
    let response = reqwest::get(service.url("/docs")).await.expect("answers");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = response.text().await.expect("body");
    assert!(
        html.contains(r#"url: "openapi.json""#),
        "the page loads our document"
    );
    assert!(
        html.contains("validatorUrl: null"),
        "no call to an online validator"
    );

    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for piece in html.split(attribute).skip(1) {
            let reference = piece.split('"').next().expect("quoted");
            assert!(
                !reference.contains("//") && !reference.starts_with('/'),
                "{reference} is not a local relative reference"
            );
            assets.push(reference.to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")));
    for asset in assets {
        let response = reqwest::get(service.url(&format!("/{asset}")))
            .await
            .expect("answers");
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let expected = match asset.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("png") => "image/png",
            _ => "application/json",
        };
        assert!(content_type.starts_with(expected), "{asset}: {content_type}");
    }

    let (status, body) = service.get_json("/docs/nope.js").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no asset \"nope.js\"");
}

#[tokio::test]
async fn metrics_and_playlist_content_types_match_the_document() {
    let service = TestService::start("").await;
    let document = document(&service).await;
    let metrics = &document["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(metrics.get("text/plain").is_some());
    let playlist = &document["paths"]["/proxy/{token}/{name}"]["get"]["responses"]["200"]["content"];
    assert!(playlist.get("application/vnd.apple.mpegurl").is_some());
    let response = reqwest::get(service.url("/metrics")).await.expect("answers");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
}
