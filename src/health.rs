//! Health check of one stream URL, deep enough that "healthy" means a player
//! could play it: the playlist (partial GET, `#EXTM3U`, `BANDWIDTH`, timing),
//! for a master one variant's media playlist, live/VOD and a frozen-encoder
//! test, and a byte-budgeted probe of one segment. The verdict is a value.
//!
//! Budget of one check: the first playlist read up to `health.max_bytes`; a
//! media playlist up to `health.media_playlist_bytes` (at most 3 variants are
//! tried); one segment up to `health.segment_bytes`. So a master playlist
//! costs at most 1 + 3 + 1 requests and `max_bytes + 3 × media_playlist_bytes
//! + segment_bytes` bytes, typically 3 requests and ~270 KiB.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use url::Url;

use crate::config::HealthConfig;
use crate::hls;
use crate::model::{ErrorKind, HealthResult, MediaState, PlaylistKind, StreamType};
use crate::net::{Fetch, FetchError, Fetched, Http};

/// Message when a body is not a playlist (the prototype's wording).
pub const NOT_HLS_MESSAGE: &str = "Response does not contain #EXTM3U header";
/// Variants of a master playlist tried before it is declared unplayable.
pub const MAX_VARIANTS_TRIED: usize = 3;
/// A live playlist that has not moved for this many target durations is stale.
pub const STALE_AFTER_TARGET_DURATIONS: f64 = 3.0;

/// Checks streams over the shared client.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    http: Http,
    timeout: Duration,
    max_bytes: u64,
    media_playlist_bytes: u64,
    probe_segment: bool,
    segment_bytes: u64,
}

/// Why one step of a check gave nothing usable.
struct Failure {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    ttfb: Option<Duration>,
}

impl From<FetchError> for Failure {
    fn from(err: FetchError) -> Self {
        Self {
            kind: err.error_kind(),
            message: err.to_string(),
            status: err.status().map(|status| status.as_u16()),
            ttfb: err.ttfb(),
        }
    }
}

impl Failure {
    /// The same failure reported as a failure of a later step.
    fn in_step(self, kind: ErrorKind, step: &str) -> Self {
        Self {
            kind,
            message: format!("{step}: {}", self.message),
            ..self
        }
    }
}

impl HealthChecker {
    /// A checker with the `[health]` settings over `http`.
    pub fn new(http: Http, config: &HealthConfig) -> Self {
        Self {
            http,
            timeout: Duration::from_secs(config.timeout_secs),
            max_bytes: config.max_bytes,
            media_playlist_bytes: config.media_playlist_bytes,
            probe_segment: config.probe_segment,
            segment_bytes: config.segment_bytes,
        }
    }

    /// Checks `url` with `headers` added to every request. Never fails: an
    /// unreachable or broken stream is an unhealthy [`HealthResult`].
    pub async fn check(&self, url: &str, headers: &HeaderMap) -> HealthResult {
        self.check_since(url, headers, None).await
    }

    /// Like [`HealthChecker::check`], comparing a live playlist with the
    /// state the previous check saw, to tell a frozen encoder (`stale`) or a
    /// restarted one.
    #[tracing::instrument(skip_all, level = "debug")]
    pub async fn check_since(
        &self,
        url: &str,
        headers: &HeaderMap,
        previous: Option<&MediaState>,
    ) -> HealthResult {
        let checked_at = Utc::now();
        let url = match Url::parse(url) {
            Ok(url) => url,
            Err(e) => return HealthResult::failed(checked_at, ErrorKind::Other, format!("Invalid URL: {e}")),
        };
        let deep = DeepCheck {
            checker: self,
            headers,
            previous,
            checked_at,
        };
        match tokio::time::timeout(self.timeout, deep.run(url)).await {
            Ok(result) => result,
            Err(_) => HealthResult::failed(checked_at, ErrorKind::Timeout, "Timeout"),
        }
    }

    /// One guarded GET with `headers`, `limit` bytes at most; with
    /// `head_only` only the head of the body is asked for and read.
    async fn get(
        &self,
        url: Url,
        headers: &HeaderMap,
        limit: u64,
        head_only: bool,
    ) -> Result<Fetched, Failure> {
        let fetch = Fetch::get(url, limit).headers(headers);
        let fetch = if head_only { fetch.head_only() } else { fetch };
        Ok(self.http.fetch(fetch).await?)
    }
}

/// One check's state while it walks playlist → variant → segment.
struct DeepCheck<'a> {
    checker: &'a HealthChecker,
    headers: &'a HeaderMap,
    previous: Option<&'a MediaState>,
    checked_at: DateTime<Utc>,
}

/// A media playlist as the check needs it.
struct Media {
    url: Url,
    playlist: m3u8_rs::MediaPlaylist,
    /// `BANDWIDTH` the master declared for this variant.
    declared_bandwidth: Option<u64>,
}

impl DeepCheck<'_> {
    async fn run(&self, url: Url) -> HealthResult {
        let checker = self.checker;
        let first = match checker.get(url, self.headers, checker.max_bytes, true).await {
            Ok(first) => first,
            Err(failure) => return self.failed(failure),
        };
        let summary = hls::summarize(&first.body, first.complete);
        let mut result = HealthResult {
            is_live: summary.is_hls,
            response_time_ms: Some(millis(first.elapsed)),
            ttfb_ms: Some(millis(first.ttfb)),
            http_status: Some(first.status.as_u16()),
            bitrate: summary.max_bandwidth,
            playlist_kind: summary.kind,
            stream_type: summary.stream_type,
            ..HealthResult::unchecked(self.checked_at)
        };
        if !summary.is_hls {
            return fail(result, ErrorKind::NotHls, NOT_HLS_MESSAGE.to_owned());
        }
        let media = match summary.kind {
            Some(PlaylistKind::Master) => {
                let variants = variants(&first.body, &first.final_url, first.complete);
                result.variant_count = Some(variants.len() as u32);
                match self.pick_variant(&variants).await {
                    Ok(media) => media,
                    Err(failure) => return fail(result, failure.kind, failure.message),
                }
            }
            _ => match self.media_of(first).await {
                Ok(media) => media,
                Err(failure) => return fail(result, failure.kind, failure.message),
            },
        };
        self.judge_media(result, media).await
    }

    /// Reads the media playlist behind `first` (refetched whole when the
    /// first read was cut at `max_bytes`).
    async fn media_of(&self, first: Fetched) -> Result<Media, Failure> {
        let fetched = if first.complete {
            first
        } else {
            let checker = self.checker;
            checker
                .get(first.final_url, self.headers, checker.media_playlist_bytes, false)
                .await?
        };
        parse_media(fetched, None)
    }

    /// Tries up to [`MAX_VARIANTS_TRIED`] variants, nearest the median
    /// bandwidth first; the first that loads as a media playlist wins.
    async fn pick_variant(&self, variants: &[(u64, Url)]) -> Result<Media, Failure> {
        let checker = self.checker;
        let mut last = None;
        for (bandwidth, url) in by_distance_to_median(variants)
            .into_iter()
            .take(MAX_VARIANTS_TRIED)
        {
            let attempt = checker
                .get(url.clone(), self.headers, checker.media_playlist_bytes, false)
                .await
                .and_then(|fetched| parse_media(fetched, Some(bandwidth)));
            match attempt {
                Ok(media) => return Ok(media),
                Err(failure) => last = Some(failure),
            }
        }
        Err(match last {
            Some(failure) => failure.in_step(ErrorKind::Variant, "every variant tried failed"),
            None => Failure {
                kind: ErrorKind::Variant,
                message: "master playlist lists no variant".to_owned(),
                status: None,
                ttfb: None,
            },
        })
    }

    /// Live/VOD, stale and restart detection, then the segment probe.
    async fn judge_media(&self, mut result: HealthResult, media: Media) -> HealthResult {
        let playlist = &media.playlist;
        result.stream_type =
            if playlist.end_list || matches!(playlist.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod)) {
                StreamType::Vod
            } else if matches!(playlist.playlist_type, Some(m3u8_rs::MediaPlaylistType::Event)) {
                StreamType::Event
            } else {
                StreamType::Live
            };
        result.media_sequence = Some(playlist.media_sequence);
        result.target_duration = Some(playlist.target_duration as f64);
        result.last_segment = playlist
            .segments
            .last()
            .map(|s| truncate(&s.uri, MediaState::MAX_SEGMENT_CHARS));
        if playlist.segments.is_empty() {
            return fail(
                result,
                ErrorKind::Segment,
                "media playlist lists no segment".to_owned(),
            );
        }
        if result.stream_type != StreamType::Vod
            && let Some(previous) = self.previous
        {
            if playlist.media_sequence < previous.media_sequence {
                result.restarted = true;
            } else if playlist.media_sequence == previous.media_sequence
                && result.last_segment.as_deref() == Some(previous.last_segment.as_str())
            {
                let frozen_for = (self.checked_at - previous.checked_at).num_milliseconds() as f64 / 1000.0;
                let allowed = STALE_AFTER_TARGET_DURATIONS * playlist.target_duration.max(1) as f64;
                if frozen_for > allowed {
                    let message = format!(
                        "live playlist has not advanced in {frozen_for:.0} s (media sequence {})",
                        playlist.media_sequence
                    );
                    return fail(result, ErrorKind::Stale, message);
                }
            }
        }
        if self.checker.probe_segment {
            return self.probe_segment(result, &media).await;
        }
        result
    }

    /// Fetches the middle segment (not the newest, which may not exist yet
    /// at a live edge; not the oldest, which may expire) within the budget.
    async fn probe_segment(&self, mut result: HealthResult, media: &Media) -> HealthResult {
        let segments = &media.playlist.segments;
        let middle = &segments[segments.len() / 2];
        let Ok(url) = media.url.join(&middle.uri) else {
            return fail(
                result,
                ErrorKind::Segment,
                "segment URI does not resolve".to_owned(),
            );
        };
        let checker = self.checker;
        match checker.get(url, self.headers, checker.segment_bytes, true).await {
            Ok(segment) => {
                result.segment_ttfb_ms = Some(millis(segment.ttfb));
                let transfer = segment
                    .elapsed
                    .saturating_sub(segment.ttfb)
                    .max(Duration::from_millis(1));
                let bits = segment.body.len() as f64 * 8.0;
                let throughput = bits / transfer.as_secs_f64();
                result.throughput_bps = Some(throughput as u64);
                result.throughput_ratio = media
                    .declared_bandwidth
                    .filter(|declared| *declared > 0)
                    .map(|declared| throughput / declared as f64);
                result
            }
            Err(failure) => {
                let failure = failure.in_step(ErrorKind::Segment, "segment");
                fail(result, failure.kind, failure.message)
            }
        }
    }

    fn failed(&self, failure: Failure) -> HealthResult {
        HealthResult {
            http_status: failure.status,
            ttfb_ms: failure.ttfb.map(millis),
            response_time_ms: failure.ttfb.map(millis),
            ..HealthResult::failed(self.checked_at, failure.kind, failure.message)
        }
    }
}

fn fail(mut result: HealthResult, kind: ErrorKind, message: String) -> HealthResult {
    result.is_live = false;
    result.error_kind = Some(kind);
    result.error = Some(message);
    result
}

fn parse_media(fetched: Fetched, declared_bandwidth: Option<u64>) -> Result<Media, Failure> {
    let body = fetched
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&fetched.body);
    let not_media = |message: &str| Failure {
        kind: ErrorKind::NotHls,
        message: message.to_owned(),
        status: Some(fetched.status.as_u16()),
        ttfb: Some(fetched.ttfb),
    };
    if !fetched.complete {
        return Err(Failure {
            kind: ErrorKind::TooLarge,
            message: "media playlist exceeds health.media_playlist_bytes".to_owned(),
            status: Some(fetched.status.as_u16()),
            ttfb: Some(fetched.ttfb),
        });
    }
    if !hls::is_playlist(body) {
        return Err(not_media(NOT_HLS_MESSAGE));
    }
    // RFC 8216 wants UTF-8, but one stray byte in a title must not hide the
    // segments after it from the parser (the proxy replaces it the same way).
    let text = String::from_utf8_lossy(body);
    let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .map_err(|_| not_media("media playlist does not parse"))?;
    Ok(Media {
        url: fetched.final_url,
        playlist,
        declared_bandwidth,
    })
}

/// `(BANDWIDTH, URL)` of each variant of a master playlist, from complete
/// lines only when the body was cut.
fn variants(body: &[u8], base: &Url, complete: bool) -> Vec<(u64, Url)> {
    let text = String::from_utf8_lossy(body);
    let text = if complete {
        &text[..]
    } else {
        text.rfind('\n').map_or("", |end| &text[..end])
    };
    let mut found = Vec::new();
    let mut pending: Option<u64> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(hls::stream_inf_bandwidth(list));
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some(bandwidth) = pending.take()
            && let Ok(url) = base.join(line)
        {
            found.push((bandwidth, url));
        }
    }
    found
}

/// Variants ordered by distance to the median bandwidth (ties: lower first).
fn by_distance_to_median(variants: &[(u64, Url)]) -> Vec<(u64, Url)> {
    let mut bandwidths: Vec<u64> = variants.iter().map(|(b, _)| *b).collect();
    bandwidths.sort_unstable();
    let median = bandwidths.get(bandwidths.len() / 2).copied().unwrap_or(0);
    let mut ordered = variants.to_vec();
    ordered.sort_by_key(|(bandwidth, _)| (bandwidth.abs_diff(median), *bandwidth));
    ordered
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::parse("https://cdn.example/live/")
            .and_then(|b| b.join(path))
            .expect("valid")
    }

    #[test]
    fn variants_come_from_complete_lines_with_their_bandwidth() {
        let body = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow.m3u8\n\
            #EXT-X-STREAM-INF:CODECS=\"a,b\",BANDWIDTH=3000000\nhigh/i.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000\ntop/i.m3";
        let found = variants(body, &url("master.m3u8"), false);
        assert_eq!(
            found,
            [(800_000, url("low.m3u8")), (3_000_000, url("high/i.m3u8"))]
        );
        // Read whole, the last line is a URI like any other.
        let whole = variants(body, &url("master.m3u8"), true);
        assert_eq!(whole.last(), Some(&(5_000_000, url("top/i.m3"))));
    }

    #[test]
    fn the_variant_nearest_the_median_bandwidth_is_tried_first() {
        let variants = [
            (5_000_000, url("a")),
            (800_000, url("b")),
            (2_000_000, url("c")),
            (1_500_000, url("d")),
            (9_000_000, url("e")),
        ];
        let order: Vec<u64> = by_distance_to_median(&variants).iter().map(|(b, _)| *b).collect();
        assert_eq!(order, [2_000_000, 1_500_000, 800_000, 5_000_000, 9_000_000]);
    }
}
