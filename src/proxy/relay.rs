//! The relay pipeline of `/relay`: authorize the token, forward the
//! client's `Range`/`If-Range`, open the upstream, and shape the answer:
//! the upstream's status (200, 206 or 416), the headers worth passing on, a
//! content type a player accepts (never `text/html`), `nosniff`, and the
//! body streaming through (none for `HEAD`).

use reqwest::Method;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::kind::Kind;
use super::pipeline::{Answer, Proxy, ProxyError};
use super::token::ParsedToken;
use super::upstream::RelayBody;

/// Upstream headers a relay passes on to the client.
const RELAYED_HEADERS: [HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CACHE_CONTROL,
];
/// Client request headers a relay forwards upstream, verbatim.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 2] = [header::RANGE, header::IF_RANGE];

impl Proxy {
    /// Relays the resource of `token`: `method` is GET or HEAD (asked
    /// upstream the same way), `request_headers` the client's. The body is
    /// `None` for HEAD.
    pub async fn relay(
        &self,
        method: Method,
        token: ParsedToken,
        request_headers: &HeaderMap,
    ) -> Result<Answer<Option<RelayBody>>, ProxyError> {
        let mut upstream_headers = self.authorize(&token, Kind::Relay)?;
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = request_headers.get(&name) {
                upstream_headers.insert(name, value.clone());
            }
        }
        let is_head = method == Method::HEAD;
        let path = token.url.path().to_owned();
        let relay = self
            .upstream
            .open_relay(method, token.url, upstream_headers)
            .await?;
        let mut headers = HeaderMap::new();
        for name in RELAYED_HEADERS {
            if let Some(value) = relay.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            relay_content_type(relay.headers.get(header::CONTENT_TYPE), &path),
        );
        // Players get bytes typed by us, never a document a browser might
        // sniff into something executable.
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Ok(Answer {
            status: relay.status,
            headers,
            body: (!is_head).then_some(relay.body),
            upstream_head_time: relay.head_time,
        })
    }
}

/// The `Content-Type` a relay answers with: the upstream's, unless it is
/// missing or generic (`application/octet-stream`, `text/plain`, an image
/// type, HTML), then one from the file extension; never `text/html`.
fn relay_content_type(upstream: Option<&HeaderValue>, path: &str) -> HeaderValue {
    let declared = upstream
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let generic = declared.is_empty()
        || declared.starts_with("application/octet-stream")
        || declared.starts_with("text/plain")
        || declared.starts_with("text/html")
        || declared.starts_with("image/");
    if !generic && let Some(value) = upstream {
        return value.clone();
    }
    if crate::hls::uri::has_playlist_extension(path.as_bytes()) {
        return HeaderValue::from_static(super::playlist::PLAYLIST_CONTENT_TYPE);
    }
    let extension = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    HeaderValue::from_static(match extension.as_str() {
        "m4s" | "mp4" | "m4v" | "cmfv" => "video/mp4",
        "m4a" | "cmfa" => "audio/mp4",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "vtt" | "webvtt" => "text/vtt",
        "key" | "bin" => "application/octet-stream",
        _ => "video/mp2t",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(upstream: Option<&str>, path: &str) -> String {
        let upstream = upstream.map(|v| HeaderValue::from_str(v).expect("valid"));
        relay_content_type(upstream.as_ref(), path)
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    #[test]
    fn specific_upstream_content_types_are_kept() {
        assert_eq!(content_type(Some("video/MP2T"), "/a.bin"), "video/MP2T");
        assert_eq!(content_type(Some("audio/aac"), "/x"), "audio/aac");
    }

    #[test]
    fn generic_or_missing_types_fall_back_to_the_extension() {
        assert_eq!(content_type(None, "/seg/001.ts"), "video/mp2t");
        assert_eq!(
            content_type(Some("application/octet-stream"), "/v/1.m4s"),
            "video/mp4"
        );
        assert_eq!(content_type(Some("image/png"), "/disguised.ts"), "video/mp2t");
        assert_eq!(content_type(Some("text/plain"), "/subs/en.vtt"), "text/vtt");
        assert_eq!(
            content_type(Some("text/html; charset=utf-8"), "/k/key.key"),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(Some("text/html"), "/no-extension"),
            "video/mp2t",
            "never text/html"
        );
        assert_eq!(content_type(None, "/audio/a.aac"), "audio/aac");
        assert_eq!(content_type(None, "/init.mp4"), "video/mp4");
    }
}
