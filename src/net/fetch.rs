//! The one guarded fetch every outgoing GET goes through: health checks,
//! source documents, the proxy's playlists and the F1 calendar. It owns the
//! rules those callers must agree on:
//!
//! - the address guard runs on the URL before the request (scheme,
//!   userinfo, IP literals) and on every connection and redirect (the
//!   client's resolver and redirect policy, see [`super::build_client`]);
//! - the extractor's headers go with the request;
//! - success is a `2xx`, except that a `206` answers only a request that
//!   asked for a range (a part never asked for is no body to use);
//!   everything else is [`FetchFailure::Status`];
//! - the body is read up to a byte limit while it streams in, never
//!   buffered past it: over the limit is an error, or with
//!   [`Fetch::head_only`] a quiet stop (a health check needs only the head
//!   of a playlist);
//! - a first-byte timeout (to the response head) and a total timeout;
//! - the answer carries the final URL after redirects (the base of relative
//!   references) and its timings;
//! - one error type, [`FetchError`], whose [`FetchError::error_kind`] is the
//!   health verdict's `error_kind`.
//!
//! The relay streams instead of buffering, but sends through [`Http::send`]
//! so its requests are built and guarded the same way.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{CONTENT_RANGE, HeaderMap, HeaderName, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::{AddressGuard, BlockedAddress, DnsError, UrlRefused};
use crate::config::NetworkConfig;
use crate::model::ErrorKind;

/// The shared client with the guard it was built with: one value, so a
/// caller cannot pair a client with another guard.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    guard: AddressGuard,
}

impl Http {
    /// The client and guard `[network]` describes, sending `user_agent`.
    pub fn new(network: &NetworkConfig, user_agent: &str) -> reqwest::Result<Self> {
        let guard = AddressGuard::from_config(network);
        Ok(Self {
            client: super::build_client(network, guard.clone(), user_agent)?,
            guard,
        })
    }

    /// The guard requests go through.
    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// Sends one request after the guard has checked its URL and answers
    /// the response head, waiting at most `first_byte_timeout` for it.
    /// Used directly by the relay, which streams the body itself.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        first_byte_timeout: Option<Duration>,
    ) -> Result<Head, FetchError> {
        self.guard.check_url(&url).map_err(FetchFailure::Refused)?;
        let started = Instant::now();
        let request = self.client.request(method, url).headers(headers).send();
        let response = match first_byte_timeout {
            Some(limit) => tokio::time::timeout(limit, request)
                .await
                .map_err(|_| FetchFailure::Timeout)?,
            None => request.await,
        }
        .map_err(|err| FetchFailure::from_request(&err))?;
        Ok(Head {
            ttfb: started.elapsed(),
            started,
            response,
        })
    }

    /// Runs `fetch`: a GET read whole (or its head) within its limits.
    pub async fn fetch(&self, fetch: Fetch<'_>) -> Result<Fetched, FetchError> {
        match fetch.timeout {
            Some(limit) => tokio::time::timeout(limit, self.fetch_unbounded(fetch))
                .await
                .unwrap_or_else(|_| Err(FetchFailure::Timeout.into())),
            None => self.fetch_unbounded(fetch).await,
        }
    }

    async fn fetch_unbounded(&self, fetch: Fetch<'_>) -> Result<Fetched, FetchError> {
        let mut headers = fetch.headers.cloned().unwrap_or_default();
        if let Some((name, value)) = fetch.header {
            headers.insert(name, value);
        }
        let ranged = fetch.head_only && fetch.limit > 0;
        if ranged {
            let last = fetch.offset.saturating_add(fetch.limit - 1);
            let range = format!("bytes={}-{last}", fetch.offset);
            headers.insert(
                RANGE,
                HeaderValue::from_str(&range).map_err(|_| FetchFailure::Other(range))?,
            );
        }
        let head = self
            .send(Method::GET, fetch.url, headers, fetch.first_byte_timeout)
            .await?;
        let status = head.response.status();
        let with_context = |failure: FetchFailure| FetchError {
            failure,
            status: Some(status),
            ttfb: Some(head.ttfb),
        };
        let partial = status == StatusCode::PARTIAL_CONTENT;
        if !status.is_success() || (partial && !ranged) {
            return Err(with_context(FetchFailure::Status(status.as_u16())));
        }
        // A 206 whose range is the whole resource (a playlist shorter than
        // the limit) is as whole as a 200: no second fetch for it.
        let content_range = head
            .response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|value| value.to_str().ok());
        let whole_range = partial && fetch.offset == 0 && content_range.is_some_and(is_whole_resource);
        let resource_len = if partial {
            content_range.and_then(range_total)
        } else {
            head.response.content_length()
        };
        let final_url = head.response.url().clone();
        let (ttfb, started) = (head.ttfb, head.started);
        let (body, read_to_end) = read_limited(head.response, fetch.limit, fetch.head_only)
            .await
            .map_err(with_context)?;
        Ok(Fetched {
            status,
            final_url,
            ttfb,
            elapsed: started.elapsed(),
            complete: read_to_end && (!partial || whole_range),
            resource_len: resource_len.or((read_to_end && !partial).then_some(body.len() as u64)),
            body,
        })
    }
}

/// A response head from [`Http::send`], its body not read yet.
#[derive(Debug)]
pub struct Head {
    /// The response; its body streams from here.
    pub response: reqwest::Response,
    /// Time from sending to the response head.
    pub ttfb: Duration,
    started: Instant,
}

/// One guarded GET, described before it is run by [`Http::fetch`].
#[derive(Debug, Clone)]
pub struct Fetch<'a> {
    url: Url,
    headers: Option<&'a HeaderMap>,
    header: Option<(HeaderName, HeaderValue)>,
    limit: u64,
    head_only: bool,
    offset: u64,
    first_byte_timeout: Option<Duration>,
    timeout: Option<Duration>,
}

impl<'a> Fetch<'a> {
    /// A GET of `url` whose body may be at most `limit` bytes.
    pub fn get(url: Url, limit: u64) -> Self {
        Self {
            url,
            headers: None,
            header: None,
            limit,
            head_only: false,
            offset: 0,
            first_byte_timeout: None,
            timeout: None,
        }
    }

    /// Sends `headers` (an extractor's `Referer`, `User-Agent`...).
    pub fn headers(mut self, headers: &'a HeaderMap) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sends one more header, e.g. `Accept`.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }

    /// Reads only the first `limit` bytes: asks for them as a range
    /// (`206` is then success) and stops quietly at the limit instead of
    /// failing; [`Fetched::complete`] says whether that was the whole body.
    pub fn head_only(mut self) -> Self {
        self.head_only = true;
        self
    }

    /// With [`Fetch::head_only`], the range starts at byte `offset` (an
    /// `EXT-X-BYTERANGE` segment inside a larger file).
    pub fn from_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Fails when the response head takes longer than `limit`.
    pub fn first_byte_timeout(mut self, limit: Duration) -> Self {
        self.first_byte_timeout = Some(limit);
        self
    }

    /// Fails when the whole fetch, body included, takes longer than `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }
}

/// What a successful [`Fetch`] brought back.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// A `2xx`: `206` only for a [`Fetch::head_only`] request.
    pub status: StatusCode,
    /// The URL after redirects: the base for relative references.
    pub final_url: Url,
    /// Time to the response head.
    pub ttfb: Duration,
    /// Time to the last byte read.
    pub elapsed: Duration,
    /// The body, at most the fetch's limit.
    pub body: Bytes,
    /// The body is the whole resource, not a cut head of it.
    pub complete: bool,
    /// The size of the whole resource when known (`Content-Range` total,
    /// `Content-Length`, or a body read to its end).
    pub resource_len: Option<u64>,
}

/// Why a fetch gave nothing usable, with the status and time to the
/// response head when it got that far.
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct FetchError {
    failure: FetchFailure,
    status: Option<StatusCode>,
    ttfb: Option<Duration>,
}

impl FetchError {
    /// What went wrong.
    pub fn failure(&self) -> &FetchFailure {
        &self.failure
    }

    /// The response status, when a response head arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// Time to the response head, when one arrived.
    pub fn ttfb(&self) -> Option<Duration> {
        self.ttfb
    }

    /// The health verdict's `error_kind` for this failure: 401, 403 and 451
    /// are `restricted` (headers or another region may help), other
    /// statuses `http_status`.
    pub fn error_kind(&self) -> ErrorKind {
        match &self.failure {
            FetchFailure::Refused(UrlRefused::Blocked(_)) | FetchFailure::Blocked(_) => ErrorKind::Blocked,
            FetchFailure::Refused(_) | FetchFailure::Other(_) => ErrorKind::Other,
            FetchFailure::Timeout => ErrorKind::Timeout,
            FetchFailure::Dns(_) => ErrorKind::Dns,
            FetchFailure::Tls(_) => ErrorKind::Tls,
            FetchFailure::Connect(_) => ErrorKind::Connect,
            FetchFailure::Status(401 | 403 | 451) => ErrorKind::Restricted,
            FetchFailure::Status(_) => ErrorKind::HttpStatus,
            FetchFailure::TooLarge(_) => ErrorKind::TooLarge,
        }
    }
}

impl From<FetchFailure> for FetchError {
    fn from(failure: FetchFailure) -> Self {
        Self {
            failure,
            status: None,
            ttfb: None,
        }
    }
}

/// The causes of a [`FetchError`]. Messages never carry the URL (it may
/// hold tokens, and the caller knows which URL it asked for).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchFailure {
    /// Refused before any request: scheme, userinfo, no host, a guarded IP
    /// literal.
    #[error(transparent)]
    Refused(UrlRefused),
    /// The guard refused a resolved address or a redirect to a guarded
    /// address.
    #[error("{0}")]
    Blocked(String),
    /// A timeout passed (first byte or total).
    #[error("Timeout")]
    Timeout,
    /// The host name did not resolve.
    #[error("{0}")]
    Dns(String),
    /// TLS failed.
    #[error("{0}")]
    Tls(String),
    /// The connection could not be made or broke.
    #[error("{0}")]
    Connect(String),
    /// The server answered another status than the fetch accepts.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body is longer than the fetch's limit.
    #[error("body exceeds {0} bytes")]
    TooLarge(u64),
    /// Anything else: a redirect loop, a redirect to another scheme or to
    /// a URL with credentials, a broken body.
    #[error("{0}")]
    Other(String),
}

impl FetchFailure {
    /// Classifies a reqwest error by walking its source chain for typed
    /// causes, with its innermost cause as the message.
    pub(crate) fn from_request(err: &reqwest::Error) -> Self {
        let message = describe(err);
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(cause) = source {
            // A redirect the guard refused: only a guarded address is
            // `Blocked`; another scheme or userinfo is a broken upstream.
            match cause.downcast_ref::<UrlRefused>() {
                Some(UrlRefused::Blocked(_)) => return Self::Blocked(message),
                Some(_) => return Self::Other(message),
                None => {}
            }
            if cause.is::<BlockedAddress>() {
                return Self::Blocked(message);
            }
            if cause.is::<DnsError>() {
                return Self::Dns(message);
            }
            if cause.is::<rustls::Error>() {
                return Self::Tls(message);
            }
            source = cause.source();
        }
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(message)
        } else {
            Self::Other(message)
        }
    }
}

/// A short message for a failed request: its innermost cause, without the
/// URL.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut innermost: Option<&(dyn std::error::Error + 'static)> = None;
    let mut source = err.source();
    while let Some(cause) = source {
        innermost = Some(cause);
        source = cause.source();
    }
    match innermost {
        Some(cause) => cause.to_string(),
        None if err.is_timeout() => "Timeout".to_owned(),
        None => "request failed".to_owned(),
    }
}

/// Reads at most `limit` bytes of `response`. With `truncate` the read stops
/// quietly at the limit; without it, a longer body is an error. Returns the
/// bytes and whether the body was read to its end.
async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    truncate: bool,
) -> Result<(Bytes, bool), FetchFailure> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let declared = response.content_length();
    if let Some(length) = declared
        && length > limit
        && !truncate
    {
        return Err(FetchFailure::TooLarge(limit));
    }
    let capacity = declared.map_or(8192, |l| l.min(limit) as usize);
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| FetchFailure::from_request(&err))?;
        let room = limit_usize - buffer.len();
        if chunk.len() > room {
            if !truncate {
                return Err(FetchFailure::TooLarge(limit));
            }
            buffer.extend_from_slice(&chunk[..room]);
            return Ok((buffer.freeze(), false));
        }
        buffer.extend_from_slice(&chunk);
        if buffer.len() == limit_usize && truncate {
            // Exactly at the limit: a truncating reader must not wait for
            // the rest, so only a declared length can say there is none.
            return Ok((buffer.freeze(), declared == Some(limit)));
        }
    }
    Ok((buffer.freeze(), true))
}

/// Whether a `Content-Range` value (`bytes 0-N/T`) covers the whole
/// resource: it starts at 0 and ends at its last byte.
fn is_whole_resource(content_range: &str) -> bool {
    let Some((range, total)) = content_range
        .strip_prefix("bytes ")
        .and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    let Some((start, end)) = range.split_once('-') else {
        return false;
    };
    match (
        start.trim().parse::<u64>(),
        end.trim().parse::<u64>(),
        total.trim().parse::<u64>(),
    ) {
        (Ok(0), Ok(end), Ok(total)) => end.checked_add(1) == Some(total),
        _ => false,
    }
}

/// The total of a `Content-Range` value (`bytes 0-N/T`), when known.
fn range_total(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_whole_only_from_byte_0_to_the_last() {
        assert!(is_whole_resource("bytes 0-99/100"));
        assert!(is_whole_resource("bytes 0-0/1"));
        assert!(!is_whole_resource("bytes 0-8191/20000"));
        assert!(!is_whole_resource("bytes 1-99/100"));
        assert!(!is_whole_resource("bytes 0-99/*"));
        assert!(!is_whole_resource("bytes */100"));
        assert!(!is_whole_resource("items 0-99/100"));
        assert!(!is_whole_resource(""));
    }

    #[test]
    fn content_range_total_is_read_when_known() {
        assert_eq!(range_total("bytes 0-8191/20000"), Some(20_000));
        assert_eq!(range_total("bytes 0-99/*"), None);
        assert_eq!(range_total("bytes 0-99"), None);
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let kind = |failure| FetchError::from(failure).error_kind();
        assert_eq!(kind(FetchFailure::Status(404)), ErrorKind::HttpStatus);
        assert_eq!(kind(FetchFailure::Status(500)), ErrorKind::HttpStatus);
        for restricted in [401, 403, 451] {
            assert_eq!(kind(FetchFailure::Status(restricted)), ErrorKind::Restricted);
        }
        assert_eq!(kind(FetchFailure::TooLarge(1)), ErrorKind::TooLarge);
        assert_eq!(kind(FetchFailure::Timeout), ErrorKind::Timeout);
        assert_eq!(kind(FetchFailure::Refused(UrlRefused::NoHost)), ErrorKind::Other);
        assert_eq!(
            kind(FetchFailure::Refused(UrlRefused::Blocked(BlockedAddress(
                "127.0.0.1".into()
            )))),
            ErrorKind::Blocked
        );
    }
}
