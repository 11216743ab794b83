//! The playlist pipeline of `/proxy`: authorize the token, pass the LL-HLS
//! delivery directives upstream (outside the signature) with a deadline a
//! blocking reload can live with, fetch the playlist, rewrite every URI in
//! it through this proxy, and shape the answer (content type, no caching).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use super::kind::Kind;
use super::pipeline::{Answer, Proxy, ProxyError};
use super::rewrite::{RewriteContext, rewrite};
use super::token::ParsedToken;

/// Content type of every proxied playlist.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists change with every reload; no cache may keep one (proxied
/// playlists and channels alike).
pub const PLAYLIST_CACHE_CONTROL: &str = "no-cache, no-store, must-revalidate";
/// Target durations remembered for blocking reloads; cleared when full.
const TARGET_DURATION_CACHE_ENTRIES: usize = 4096;
/// Slack on top of 3 × target duration for an LL-HLS blocking reload.
const BLOCKING_RELOAD_SLACK: Duration = Duration::from_secs(2);
/// Query parameters of LL-HLS delivery directives start with this.
const DIRECTIVE_PREFIX: &str = "_HLS_";

impl Proxy {
    /// Serves a playlist: `raw_query` is the client's query (its `_HLS_*`
    /// directives go upstream), `public_base` the scheme and authority the
    /// client reaches this service at (empty: root-relative URIs).
    pub async fn playlist(
        &self,
        token: ParsedToken,
        raw_query: Option<&str>,
        public_base: &str,
    ) -> Result<Answer<String>, ProxyError> {
        let upstream_headers = self.authorize(&token, Kind::Proxy)?;
        let mut url = token.url;
        let blocking = append_directives(&mut url, raw_query.unwrap_or_default());
        let deadline = self
            .target_durations
            .deadline(&token.url_text, blocking, self.playlist_timeout);
        let fetched = self
            .upstream
            .fetch_playlist(url, upstream_headers, deadline)
            .await?;
        let rewritten = rewrite(
            &fetched.text,
            &RewriteContext {
                base: &fetched.final_url,
                public_base,
                src: token.src.as_deref(),
                signer: &self.signer,
            },
        );
        // Read in the rewrite's pass by the reader health uses.
        if let Some(seconds) = rewritten.summary.target_duration {
            self.target_durations.remember(&token.url_text, seconds);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(PLAYLIST_CACHE_CONTROL),
        );
        Ok(Answer {
            status: StatusCode::OK,
            headers,
            body: rewritten.text,
            upstream_head_time: fetched.head_time,
        })
    }
}

/// Appends the LL-HLS delivery directives (RFC 8216bis §6.2.5) of the
/// client's query to the upstream `url`, in their order; the rest of the
/// query is not the upstream's business. Answers whether there were any: a
/// request with directives may be a blocking reload.
fn append_directives(url: &mut Url, raw_query: &str) -> bool {
    let mut directives = url::form_urlencoded::parse(raw_query.as_bytes())
        .filter(|(name, _)| name.starts_with(DIRECTIVE_PREFIX))
        .peekable();
    let any = directives.peek().is_some();
    if any {
        url.query_pairs_mut().extend_pairs(directives);
    }
    any
}

/// Target duration of recently proxied playlists, by upstream URL text.
/// Bounded: cleared whole when full, which only shortens the deadline of
/// the next blocking reload of each playlist to the ordinary one.
#[derive(Debug, Default)]
pub(super) struct TargetDurations {
    seconds: Mutex<HashMap<String, f64>>,
}

impl TargetDurations {
    /// Remembers that the playlist at `url` declares `seconds`.
    fn remember(&self, url: &str, seconds: f64) {
        let mut cache = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        // Every reload of a live playlist lands here: update in place, and
        // allocate a key only for a playlist not seen before.
        if let Some(known) = cache.get_mut(url) {
            *known = seconds;
            return;
        }
        if cache.len() >= TARGET_DURATION_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(url.to_owned(), seconds);
    }

    /// How long a fetch of `url` may take: `timeout`, or for a blocking
    /// reload of a playlist whose target duration is known, up to 3 target
    /// durations plus slack (the server may hold it that long, RFC 8216bis
    /// §6.2.5.2), never less than `timeout`.
    fn deadline(&self, url: &str, blocking: bool, timeout: Duration) -> Duration {
        if !blocking {
            return timeout;
        }
        let cache = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        let blocking_wait = cache
            .get(url)
            .map(|seconds| Duration::from_secs_f64(seconds * 3.0) + BLOCKING_RELOAD_SLACK);
        blocking_wait.map_or(timeout, |wait| wait.max(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://cdn.example/live/ll.m3u8";
    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn only_delivery_directives_are_appended_in_their_order() {
        let mut url = Url::parse("https://cdn.example/ll.m3u8?token=abc").expect("parses");
        assert!(append_directives(
            &mut url,
            "sig=x&_HLS_msn=101&src=demo&_HLS_part=2&_HLS_skip=YES"
        ));
        assert_eq!(
            url.as_str(),
            "https://cdn.example/ll.m3u8?token=abc&_HLS_msn=101&_HLS_part=2&_HLS_skip=YES"
        );
    }

    #[test]
    fn a_query_without_directives_leaves_the_url_alone() {
        for query in ["", "sig=x&src=demo", "hls_msn=1"] {
            let mut url = Url::parse(URL).expect("parses");
            assert!(!append_directives(&mut url, query), "{query:?}");
            assert_eq!(url.as_str(), URL);
        }
    }

    #[test]
    fn a_blocking_reload_of_a_known_playlist_may_take_three_target_durations_and_slack() {
        let memory = TargetDurations::default();
        memory.remember(URL, 6.0);
        assert_eq!(memory.deadline(URL, true, TIMEOUT), Duration::from_secs(20));
        assert_eq!(
            memory.deadline(URL, false, TIMEOUT),
            TIMEOUT,
            "an ordinary load keeps the timeout"
        );
        memory.remember(URL, 1.0);
        assert_eq!(
            memory.deadline(URL, true, TIMEOUT),
            TIMEOUT,
            "never shorter than the timeout"
        );
    }

    #[test]
    fn a_blocking_reload_of_an_unknown_playlist_keeps_the_timeout() {
        let memory = TargetDurations::default();
        memory.remember("https://cdn.example/other.m3u8", 6.0);
        assert_eq!(memory.deadline(URL, true, TIMEOUT), TIMEOUT);
    }

    #[test]
    fn the_memory_is_cleared_when_full() {
        let memory = TargetDurations::default();
        for i in 0..TARGET_DURATION_CACHE_ENTRIES {
            memory.remember(&format!("https://cdn.example/{i}.m3u8"), 6.0);
        }
        memory.remember(URL, 6.0);
        let kept = memory.seconds.lock().expect("unpoisoned").len();
        assert_eq!(kept, 1, "cleared, then the new playlist remembered");
        assert_eq!(memory.deadline(URL, true, TIMEOUT), Duration::from_secs(20));
    }
}
