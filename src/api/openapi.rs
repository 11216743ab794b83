//! The API's own description: the OpenAPI 3.1 document generated from the
//! handlers' `#[utoipa::path]` annotations and the DTOs' schemas
//! (`GET /openapi.json`, `f1-stream openapi`), and the reference page that
//! renders it offline (`GET /docs`, Swagger UI embedded in the binary).
//!
//! The document and the router are built from the same route list
//! ([`super::api_routes`]), so a route cannot be served undocumented or
//! documented unserved.

use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Object, OpenApi};
use utoipa::{OpenApi as _, ToSchema};

use super::ApiError;

/// Tag of the service endpoints.
pub const TAG_SERVICE: &str = "service";
/// Tag of the stream lists and stream history.
pub const TAG_STREAMS: &str = "streams";
/// Tag of extractors and extraction runs.
pub const TAG_EXTRACTION: &str = "extraction";
/// Tag of the F1 calendar.
pub const TAG_SCHEDULE: &str = "schedule";
/// Tag of the HLS proxy.
pub const TAG_PROXY: &str = "proxy";
/// Tag of the failover channels.
pub const TAG_CHANNELS: &str = "channels";

/// The body of every error answer: `{"error": "message"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(example = json!({"error": "limit: \"0\" is not an integer from 1 to 10000"}))]
pub struct ErrorBody {
    /// What went wrong; a bad parameter is named first (`limit: ...`).
    pub error: String,
}

/// Document-level metadata; the paths come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "f1-stream",
        description = "Self-hosted HLS stream aggregator for Formula 1 sessions: ranked, \
health-checked streams, their history, the F1 calendar and an HLS proxy.\n\n\
Every error is a JSON object `{\"error\": \"message\"}` with a fitting status. \
Times are RFC 3339 in UTC. Every `GET` route also answers `HEAD`, and every route \
answers CORS preflights (`OPTIONS`) with 204.",
        license(name = "MIT", identifier = "MIT")
    ),
    modifiers(&AdminToken),
    tags(
        (name = "service", description = "Service identity, liveness, metrics and this reference."),
        (name = "streams", description = "Health-checked streams, ranked, with their history."),
        (name = "extraction", description = "Extractors, extraction runs and uptime series."),
        (name = "schedule", description = "The F1 calendar with session status computed when asked."),
        (name = "proxy", description = "The HLS proxy: rewritten playlists and relayed media. \
URLs are signed; `proxy_url` of a stream is ready to play."),
        (name = "channels", description = "Failover channels: one live playlist per channel that keeps \
playing while any matching source works."),
        (name = "page", description = "The watch page (HTML for browsers) and its files, \
embedded in the binary.")
    )
)]
struct ApiDoc;

/// The security scheme of the mutating routes: `auth.admin_token` as a
/// bearer token.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "`auth.admin_token`, required by every mutating route when set. Without it, mutating \
routes answer only requests from this machine that came through no proxy (or through one listed \
in `server.trusted_proxies` for a client on this machine)."
                .to_owned(),
        );
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
        let mut viewer = Http::new(HttpAuthScheme::Basic);
        viewer.description = Some(
            "A viewer of `auth.viewers`, required by every reading route when any is listed, \
except `/health`, the signed `/proxy` and `/relay` URLs, and `/channels/{slug}.m3u8` with the \
channel's `sig` (as in the `url` of `GET /channels`). Without viewers, reading is open."
                .to_owned(),
        );
        components.add_security_scheme("viewer", SecurityScheme::Http(viewer));
    }
}

/// The document's metadata without paths (the router adds them).
pub(super) fn base_document() -> OpenApi {
    ApiDoc::openapi()
}

/// The complete OpenAPI document of the HTTP API.
pub fn openapi() -> OpenApi {
    super::api_routes().into_openapi()
}

/// Swagger UI's settings: our document, no online validator.
static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new(["../openapi.json"]).validator_url("none")));

/// The document as pretty JSON, built once per process.
static DOCUMENT_JSON: LazyLock<Result<String, String>> =
    LazyLock::new(|| openapi().to_pretty_json().map_err(|e| e.to_string()));

/// The complete OpenAPI document as pretty JSON (what `/openapi.json` serves).
pub fn openapi_json() -> Result<String, serde_json::Error> {
    openapi().to_pretty_json()
}

/// A string schema limited to `values` (for parameters parsed by hand, whose
/// accepted names live in the domain types).
pub fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> Object {
    string_enum_builder(values, description).build()
}

/// Like [`string_enum`], with the value assumed when the parameter is absent.
pub fn string_enum_with_default<'a>(
    values: impl IntoIterator<Item = &'a str>,
    description: &str,
    default: &str,
) -> Object {
    string_enum_builder(values, description)
        .default(Some(serde_json::Value::String(default.to_owned())))
        .build()
}

fn string_enum_builder<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
}

/// Earliest time a time parameter accepts: 0000-01-01T00:00:00Z.
const MIN_UNIX_SECONDS: i64 = -62_167_219_200;
/// Latest time a time parameter accepts: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// A time parameter: an RFC 3339 date-time or unix seconds, years 0 to 9999
/// (see [`super::history::parse_time`]).
pub fn time_schema(description: &str) -> Schema {
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("RFC 3339, any offset.")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(MIN_UNIX_SECONDS))
                .maximum(Some(MAX_UNIX_SECONDS))
                .description(Some("Unix seconds.")),
        )
        .description(Some(description))
        .build();
    Schema::OneOf(one_of)
}

/// The OpenAPI document of this API (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = TAG_SERVICE,
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document describing every route.",
            content_type = "application/json", body = Object),
        (status = 500, description = "The document could not be rendered.", body = ErrorBody),
    )
)]
pub(super) async fn openapi_document() -> Result<Response, ApiError> {
    match &*DOCUMENT_JSON {
        // Served from the static text, never copied.
        Ok(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()),
        Err(error) => {
            tracing::error!(%error, "cannot render the OpenAPI document");
            Err(ApiError::Internal)
        }
    }
}

/// The reference page: Swagger UI's embedded bundle pointed at our
/// document, its validator off (it would call swagger.io), so nothing is
/// loaded from outside this service. URLs are relative, so the page also
/// works behind a reverse proxy under a path prefix.
const DOCS_PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>f1-stream API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<noscript>This reference needs JavaScript; the raw document is at <a href="openapi.json">openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
</script>
</body>
</html>
"##;

/// A human-readable API reference (Swagger UI, served from this binary).
#[utoipa::path(
    get,
    path = "/docs",
    tag = TAG_SERVICE,
    operation_id = "docs",
    responses(
        (status = 200, description = "An HTML page rendering `/openapi.json`; its scripts and \
styles are served under `/docs/`, nothing is loaded from elsewhere.",
            content_type = "text/html", body = String),
    )
)]
pub(super) async fn docs_page() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        DOCS_PAGE,
    )
        .into_response()
}

/// A static asset of the reference page (Swagger UI's scripts, styles, icons).
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = TAG_SERVICE,
    operation_id = "docs_asset",
    params(("file" = String, Path, description = "Asset file name.", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The asset.",
            content(
                (String = "text/css"),
                (String = "text/javascript"),
                (Vec<u8> = "image/png"),
                (String = "text/html"),
            )),
        (status = 404, description = "No such asset.", body = ErrorBody,
            example = json!({"error": "no asset \"nope.js\""})),
    )
)]
pub(super) async fn docs_asset(path: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(file) = path.map_err(|_| ApiError::NotFound("no such asset".to_owned()))?;
    let asset = utoipa_swagger_ui::serve(&file, Arc::clone(&SWAGGER_CONFIG))
        .map_err(|error| {
            tracing::error!(%error, "cannot serve a reference asset");
            ApiError::Internal
        })?
        // `serve` answers "" and "/" with the vendor's index page; ours is `/docs`.
        .filter(|_| !file.is_empty() && file != "/")
        .ok_or_else(|| ApiError::NotFound(format!("no asset {file:?}")))?;
    let content_type = match asset.content_type.as_str() {
        "application/javascript" => "text/javascript".to_owned(),
        other => other.to_owned(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        asset.bytes.into_owned(),
    )
        .into_response())
}
