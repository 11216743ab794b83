//! The proxy's upstream I/O: fetching a playlist whole (bounded, through
//! the guarded fetch) and opening a relay whose body streams through with a
//! first-byte and an idle timeout. What the client is answered is decided
//! by the pipelines ([`super::playlist`], [`super::relay`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::hls;
use crate::net::{self, Fetch, FetchError, FetchFailure, Http, UrlRefused};

/// Why an upstream request gave the client nothing to play.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL is refused before any request (scheme, userinfo).
    #[error("{0}")]
    Refused(UrlRefused),
    /// The target (or a redirect) is a guarded address.
    #[error("upstream address is not allowed")]
    Blocked,
    /// No answer (or no first byte) in time.
    #[error("upstream timed out")]
    Timeout,
    /// The upstream answered with an error status.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// The body is not an HLS playlist.
    #[error("upstream body is not an HLS playlist")]
    NotPlaylist,
    /// The playlist exceeds `proxy.max_playlist_bytes`.
    #[error("upstream playlist exceeds {0} bytes")]
    TooLarge(u64),
    /// The request failed (connect, DNS, TLS, broken body, redirect loop).
    #[error("upstream request failed: {0}")]
    Failed(String),
}

impl From<FetchError> for UpstreamError {
    fn from(err: FetchError) -> Self {
        match err.failure() {
            FetchFailure::Refused(UrlRefused::Blocked(_)) | FetchFailure::Blocked(_) => Self::Blocked,
            FetchFailure::Refused(refused) => Self::Refused(refused.clone()),
            FetchFailure::Timeout => Self::Timeout,
            FetchFailure::Status(status) => Self::Status(*status),
            FetchFailure::TooLarge(limit) => Self::TooLarge(*limit),
            FetchFailure::Dns(message)
            | FetchFailure::Tls(message)
            | FetchFailure::Connect(message)
            | FetchFailure::Other(message) => Self::Failed(message.clone()),
        }
    }
}

/// A fetched playlist and the URL it was finally served from.
#[derive(Debug, Clone)]
pub struct FetchedPlaylist {
    /// The URL after redirects: the base for relative URIs.
    pub final_url: Url,
    /// The playlist text (invalid UTF-8 replaced, RFC 8216 requires UTF-8).
    pub text: String,
    /// Time to the upstream's response head.
    pub head_time: Duration,
}

/// An open relay: the upstream's status and headers, and its body still
/// streaming in. Which of them reach the client is the relay pipeline's
/// choice ([`super::relay`]).
pub struct Relay {
    /// 200, 206 or 416, as the upstream answered.
    pub status: StatusCode,
    /// Every header of the upstream's answer.
    pub headers: HeaderMap,
    /// The body, chunk by chunk as it arrives.
    pub body: RelayBody,
    /// Time to the upstream's response head.
    pub head_time: Duration,
}

/// Limits of the proxy's upstream requests.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: Http,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    max_playlist_bytes: u64,
}

impl Upstream {
    /// Upstream access over the shared client.
    pub fn new(
        http: Http,
        first_byte_timeout: Duration,
        idle_timeout: Duration,
        max_playlist_bytes: u64,
    ) -> Self {
        Self {
            http,
            first_byte_timeout,
            idle_timeout,
            max_playlist_bytes,
        }
    }

    /// Fetches a playlist through the guarded fetch within `timeout`,
    /// enforcing the size limit while reading, and verifies it is one
    /// ([`hls::is_playlist`]).
    pub async fn fetch_playlist(
        &self,
        url: Url,
        headers: HeaderMap,
        timeout: Duration,
    ) -> Result<FetchedPlaylist, UpstreamError> {
        let fetch = Fetch::get(url, self.max_playlist_bytes)
            .headers(&headers)
            .timeout(timeout);
        let fetched = self.http.fetch(fetch).await?;
        if !hls::is_playlist(&fetched.body) {
            return Err(UpstreamError::NotPlaylist);
        }
        let text = match String::from_utf8(fetched.body.into()) {
            Ok(text) => text,
            Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
        };
        Ok(FetchedPlaylist {
            final_url: fetched.final_url,
            text,
            head_time: fetched.ttfb,
        })
    }

    /// Opens a relay of `url`: `method` is GET or HEAD; `headers` go
    /// upstream as they are. Waits at most the first-byte timeout for the
    /// response head; an answer other than 200, 206 or 416 is an error.
    pub async fn open_relay(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
    ) -> Result<Relay, UpstreamError> {
        let head = self
            .http
            .send(method, url, headers, Some(self.first_byte_timeout))
            .await?;
        let (mut response, head_time) = (head.response, head.ttfb);
        let status = response.status();
        let passes = status == StatusCode::OK
            || status == StatusCode::PARTIAL_CONTENT
            || status == StatusCode::RANGE_NOT_SATISFIABLE;
        if !passes {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let headers = std::mem::take(response.headers_mut());
        let body = RelayBody {
            inner: Box::pin(response.bytes_stream()),
            idle_timeout: self.idle_timeout,
            idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
            waiting: false,
            finished: false,
        };
        Ok(Relay {
            status,
            headers,
            body,
            head_time,
        })
    }
}

/// A relayed body: yields upstream chunks as they arrive and fails when the
/// upstream breaks or stays silent longer than the idle timeout, so the
/// client's response is aborted rather than cleanly cut short. Dropping it
/// (the client went away) drops the upstream request.
///
/// The idle time counts from the first poll that finds no data, not from
/// the last chunk: while a client does not read, backpressure stops the
/// polls, and a slow client is not a silent upstream.
pub struct RelayBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    /// The idle timer runs: a poll found no data and none came since.
    waiting: bool,
    finished: bool,
}

impl Stream for RelayBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.waiting = false;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                self.finished = true;
                Poll::Ready(Some(Err(io::Error::other(format!(
                    "upstream body failed: {}",
                    net::describe(&err)
                )))))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    let deadline = tokio::time::Instant::now() + self.idle_timeout;
                    self.idle.as_mut().reset(deadline);
                }
                match self.idle.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.finished = true;
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "upstream went silent past the idle timeout",
                        ))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
