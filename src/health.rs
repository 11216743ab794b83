//! Health check of one stream URL: a partial GET of the playlist, timed,
//! verified to be HLS, its bitrate read. The verdict is always a value.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RANGE};
use url::Url;

use crate::config::HealthConfig;
use crate::hls;
use crate::model::{ErrorKind, HealthResult};
use crate::net::{self, AddressGuard, BodyError, FailureClass};

/// Message when a body is not a playlist (the prototype's wording).
pub const NOT_HLS_MESSAGE: &str = "Response does not contain #EXTM3U header";

/// Checks streams over the shared client.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    client: reqwest::Client,
    guard: AddressGuard,
    timeout: Duration,
    max_bytes: u64,
}

impl HealthChecker {
    /// A checker with the `[health]` settings over `client`.
    pub fn new(client: reqwest::Client, guard: AddressGuard, config: &HealthConfig) -> Self {
        Self {
            client,
            guard,
            timeout: Duration::from_secs(config.timeout_secs),
            max_bytes: config.max_bytes,
        }
    }

    /// Checks `url` with `headers` added to the request. Never fails: an
    /// unreachable or broken stream is an unhealthy [`HealthResult`].
    #[tracing::instrument(skip_all, level = "debug")]
    pub async fn check(&self, url: &str, headers: &HeaderMap) -> HealthResult {
        let checked_at = Utc::now();
        let url = match Url::parse(url) {
            Ok(url) => url,
            Err(e) => return HealthResult::failed(checked_at, ErrorKind::Other, format!("Invalid URL: {e}")),
        };
        if let Err(refused) = self.guard.check_url(&url) {
            let kind = match refused {
                net::UrlRefused::Blocked(_) => ErrorKind::Blocked,
                _ => ErrorKind::Other,
            };
            return HealthResult::failed(checked_at, kind, refused.to_string());
        }
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, self.fetch(url, headers, started)).await {
            Ok(Ok(success)) => success.into_result(checked_at),
            Ok(Err(failure)) => failure.into_result(checked_at),
            Err(_) => HealthResult::failed(checked_at, ErrorKind::Timeout, "Timeout"),
        }
    }

    async fn fetch(&self, url: Url, headers: &HeaderMap, started: Instant) -> Result<Fetched, Failure> {
        let range = format!("bytes=0-{}", self.max_bytes - 1);
        let response = self
            .client
            .get(url)
            .headers(headers.clone())
            .header(RANGE, range)
            .send()
            .await
            .map_err(Failure::request)?;
        let ttfb = elapsed_ms(started);
        let status = response.status();
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(Failure {
                kind: ErrorKind::HttpStatus,
                message: format!("HTTP {}", status.as_u16()),
                status: Some(status.as_u16()),
                ttfb_ms: Some(ttfb),
                response_time_ms: Some(ttfb),
            });
        }
        let (body, complete) = net::read_limited(response, self.max_bytes, true)
            .await
            .map_err(|err| match err {
                BodyError::Read(err) => Failure {
                    status: Some(status.as_u16()),
                    ttfb_ms: Some(ttfb),
                    ..Failure::request(err)
                },
                BodyError::TooLarge(limit) => Failure {
                    kind: ErrorKind::TooLarge,
                    message: format!("body exceeds {limit} bytes"),
                    status: Some(status.as_u16()),
                    ttfb_ms: Some(ttfb),
                    response_time_ms: None,
                },
            })?;
        // A server that ignores Range may send the whole of a huge body; we
        // stopped at the limit, so the playlist's head is all we judge.
        let complete = complete && status == StatusCode::OK;
        Ok(Fetched {
            status: status.as_u16(),
            ttfb_ms: ttfb,
            response_time_ms: elapsed_ms(started),
            summary: hls::summarize(&body, complete),
        })
    }
}

struct Fetched {
    status: u16,
    ttfb_ms: u64,
    response_time_ms: u64,
    summary: hls::PlaylistSummary,
}

impl Fetched {
    fn into_result(self, checked_at: chrono::DateTime<Utc>) -> HealthResult {
        let healthy = self.summary.is_hls;
        HealthResult {
            checked_at,
            is_live: healthy,
            response_time_ms: Some(self.response_time_ms),
            ttfb_ms: Some(self.ttfb_ms),
            http_status: Some(self.status),
            bitrate: self.summary.max_bandwidth,
            error_kind: (!healthy).then_some(ErrorKind::NotHls),
            error: (!healthy).then(|| NOT_HLS_MESSAGE.to_owned()),
            playlist_kind: self.summary.kind,
            stream_type: self.summary.stream_type,
        }
    }
}

struct Failure {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    ttfb_ms: Option<u64>,
    response_time_ms: Option<u64>,
}

impl Failure {
    fn request(err: reqwest::Error) -> Self {
        let kind = match net::classify(&err) {
            FailureClass::Timeout => ErrorKind::Timeout,
            FailureClass::Dns => ErrorKind::Dns,
            FailureClass::Blocked => ErrorKind::Blocked,
            FailureClass::Tls => ErrorKind::Tls,
            FailureClass::Connect => ErrorKind::Connect,
            FailureClass::Other => ErrorKind::Other,
        };
        let message = match kind {
            ErrorKind::Timeout => "Timeout".to_owned(),
            _ => net::describe(&err),
        };
        Self {
            kind,
            message,
            status: None,
            ttfb_ms: None,
            response_time_ms: None,
        }
    }

    fn into_result(self, checked_at: chrono::DateTime<Utc>) -> HealthResult {
        HealthResult {
            http_status: self.status,
            ttfb_ms: self.ttfb_ms,
            response_time_ms: self.response_time_ms,
            ..HealthResult::failed(checked_at, self.kind, self.message)
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
