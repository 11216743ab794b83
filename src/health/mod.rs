//! Health check of one stream URL, deep enough that "healthy" means a
//! player can play it. The verdict is a value, never an `Err`. The rules,
//! in the order the check applies them:
//!
//! 1. **The playlist** is fetched through the guarded fetch (first bytes
//!    only, up to `health.max_bytes`): `200`/`206`, else `http_status`
//!    (`restricted` for 401/403/451). Its body must be a playlist by
//!    [`hls::is_playlist`] (`#EXTM3U` first, after an optional BOM), the
//!    rule players apply and the proxy applies: a body the proxy would
//!    refuse is never healthy (`not_hls`).
//! 2. **Master playlists** ([`hls::summarize`]: any multivariant-only tag)
//!    report their highest `BANDWIDTH`; up to [`MAX_VARIANTS_TRIED`]
//!    variants, nearest the median bandwidth first, are loaded until one is
//!    a media playlist (`variant` when none is).
//! 3. **Media playlists** are read whole (up to
//!    `health.media_playlist_bytes`, else `too_large`) by
//!    [`hls::media::parse`]: live, event or VOD ([`hls::stream_type`]);
//!    no segment is `segment`; a live playlist that has not moved for
//!    [`STALE_AFTER_TARGET_DURATIONS`] target durations since the previous
//!    check is `stale`; a media sequence that went back marks a restart.
//! 4. **One segment**, the middle one, is probed (first
//!    `health.segment_bytes`, with `health.probe_segment`):
//!    - its bytes must be media ([`segment::sniff`]: MPEG-TS sync at every
//!      188-byte packet, fMP4/CMAF boxes, ADTS/MP3/AC-3 packed audio with
//!      or without ID3, WebVTT); HTML, JSON, a playlist, other text or an
//!      empty body fail with `segment` and a message naming what was found
//!      ("segment is an HTML page", "segment is empty");
//!    - an init section in force (`EXT-X-MAP`) of an unencrypted segment
//!      must be media too; a segment addressed by `EXT-X-BYTERANGE` is read
//!      at its offset;
//!    - a segment encrypted whole (`METHOD=AES-128`) cannot be inspected:
//!      its key must answer exactly 16 bytes through the extractor's
//!      headers, its bytes must not be text (an HTML or JSON error page in
//!      place of ciphertext: [`segment::sniff_ciphertext`]), and it must be
//!      a whole number of 16-byte blocks when its size is known
//!      (`Content-Range`, `Content-Length` or `EXT-X-BYTERANGE`).
//!      `SAMPLE-AES` keeps the container and is sniffed.
//!
//! Budget of one check: the first playlist read up to `health.max_bytes`; a
//! media playlist up to `health.media_playlist_bytes` (at most 3 variants);
//! a key (16 bytes; a wrong-sized answer is read up to 4 KiB to report its
//! size) or an init section and one segment up to `health.segment_bytes`
//! each. So a master playlist costs at most 1 + 3 + 2 requests, typically
//! 3 requests and ~270 KiB.

pub mod segment;

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use url::Url;

use crate::config::HealthConfig;
use crate::hls;
use crate::hls::define::Variables;
use crate::hls::media::{ByteRange, MediaPlaylist};
use crate::model::{ErrorKind, HealthResult, MediaState, PlaylistKind, StreamType};
use crate::net::{Fetch, FetchError, Fetched, Http};

/// Message when a body is not a playlist by [`hls::is_playlist`].
pub const NOT_HLS_MESSAGE: &str = "Response does not start with #EXTM3U";
/// Variants of a master playlist tried before it is declared unplayable.
pub const MAX_VARIANTS_TRIED: usize = 3;
/// A live playlist that has not moved for this many target durations is stale.
pub const STALE_AFTER_TARGET_DURATIONS: f64 = 3.0;
/// An AES-128 key is 16 bytes (RFC 8216 §5.2).
const AES_KEY_BYTES: u64 = 16;
/// A key answer is read up to this many bytes, so one of the wrong size
/// (an error page, a key of another format) is reported with its size.
const AES_KEY_READ_BYTES: u64 = 4096;
/// Whole-segment AES-128 (CBC) ciphertext comes in 16-byte blocks.
const AES_BLOCK_BYTES: u64 = 16;

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
    /// A failure of the check's own judgement (no request status to report).
    fn plain(kind: ErrorKind, message: String) -> Self {
        Self {
            kind,
            message,
            status: None,
            ttfb: None,
        }
    }

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

    /// One guarded GET with `headers` of a whole body, `limit` bytes at most
    /// (more is `too_large`).
    async fn get_whole(&self, url: Url, headers: &HeaderMap, limit: u64) -> Result<Fetched, Failure> {
        Ok(self.http.fetch(Fetch::get(url, limit).headers(headers)).await?)
    }

    /// The first `limit` bytes of `url`, or of `range` of it (an
    /// `EXT-X-BYTERANGE` segment), asked for as a range and read no further.
    async fn get_head(
        &self,
        url: Url,
        headers: &HeaderMap,
        limit: u64,
        range: Option<ByteRange>,
    ) -> Result<Fetched, Failure> {
        let (offset, limit) =
            range.map_or((0, limit), |range| (range.offset, limit.min(range.length.max(1))));
        let fetch = Fetch::get(url, limit)
            .headers(headers)
            .head_only()
            .from_offset(offset);
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
struct Media<'t> {
    /// The playlist's `EXT-X-DEFINE` variables, substituted into its URIs
    /// as the proxy's rewriter does.
    vars: Variables<'t>,
    /// Where it was served from: the base of its segment URIs.
    url: &'t Url,
    playlist: MediaPlaylist<'t>,
    /// `BANDWIDTH` the master declared for this variant.
    declared_bandwidth: Option<u64>,
}

impl Media<'_> {
    /// The URL a URI of this playlist names, after variable substitution.
    fn resolve(&self, uri: &str) -> Option<Url> {
        hls::uri::resolve(self.url, &self.vars.substitute(uri))
    }
}

impl DeepCheck<'_> {
    async fn run(&self, url: Url) -> HealthResult {
        let checker = self.checker;
        let first = match checker.get_head(url, self.headers, checker.max_bytes, None).await {
            Ok(first) => first,
            Err(failure) => return self.failed(failure),
        };
        let mut result = HealthResult {
            response_time_ms: Some(millis(first.elapsed)),
            ttfb_ms: Some(millis(first.ttfb)),
            http_status: Some(first.status.as_u16()),
            ..HealthResult::unchecked(self.checked_at)
        };
        // The proxy serves exactly the bodies this accepts (the same rule).
        if !hls::is_playlist(&first.body) {
            return fail(result, ErrorKind::NotHls, NOT_HLS_MESSAGE.to_owned());
        }
        // Cut at `max_bytes`: read whole now, as a player does (a master's
        // variants may follow many renditions; a media playlist's segments
        // are all needed).
        let whole;
        let (text, url) = if first.complete {
            (media_text(&first), &first.final_url)
        } else {
            whole = checker
                .get_whole(
                    first.final_url.clone(),
                    self.headers,
                    checker.media_playlist_bytes,
                )
                .await;
            match &whole {
                Ok(whole) => (media_text(whole), &whole.final_url),
                Err(failure) => return fail(result, failure.kind, failure.message.clone()),
            }
        };
        let text = match text {
            Ok(text) => text,
            Err(failure) => return fail(result, failure.kind, failure.message),
        };
        let summary = hls::summarize(&text);
        result.is_live = true;
        result.bitrate = summary.max_bandwidth();
        result.playlist_kind = summary.kind;
        result.stream_type = summary.stream_type;
        if summary.kind == Some(PlaylistKind::Master) {
            let vars = Variables::read(&text, url);
            let variants: Vec<(u64, Url)> = summary
                .variants
                .iter()
                .filter_map(|v| hls::uri::resolve(url, &vars.substitute(v.uri)).map(|url| (v.bandwidth, url)))
                .collect();
            result.variant_count = Some(variants.len() as u32);
            return self.check_variants(result, &variants).await;
        }
        self.judge_text(result, url, &text, None).await
    }

    /// Tries up to [`MAX_VARIANTS_TRIED`] variants, nearest the median
    /// bandwidth first; the first that loads as a media playlist is judged.
    async fn check_variants(&self, result: HealthResult, variants: &[(u64, Url)]) -> HealthResult {
        let checker = self.checker;
        let mut last = None;
        for (bandwidth, url) in by_distance_to_median(variants)
            .into_iter()
            .take(MAX_VARIANTS_TRIED)
        {
            let loaded = checker
                .get_whole(url, self.headers, checker.media_playlist_bytes)
                .await
                .and_then(owned_media_text);
            let (text, url) = match loaded {
                Ok(loaded) => loaded,
                Err(failure) => {
                    last = Some(failure);
                    continue;
                }
            };
            match hls::media::parse(&text) {
                Ok(playlist) => {
                    let media = Media {
                        vars: Variables::read(&text, &url),
                        url: &url,
                        playlist,
                        declared_bandwidth: Some(bandwidth),
                    };
                    return self.judge_media(result, media).await;
                }
                Err(err) => last = Some(Failure::plain(ErrorKind::NotHls, err.to_string())),
            }
        }
        let failure = match last {
            Some(failure) => failure.in_step(ErrorKind::Variant, "every variant tried failed"),
            None => Failure::plain(ErrorKind::Variant, "master playlist lists no variant".to_owned()),
        };
        fail(result, failure.kind, failure.message)
    }

    /// Reads a media playlist's text and judges it.
    async fn judge_text(
        &self,
        result: HealthResult,
        url: &Url,
        text: &str,
        declared_bandwidth: Option<u64>,
    ) -> HealthResult {
        match hls::media::parse(text) {
            Ok(playlist) => {
                let media = Media {
                    vars: Variables::read(text, url),
                    url,
                    playlist,
                    declared_bandwidth,
                };
                self.judge_media(result, media).await
            }
            Err(err) => fail(result, ErrorKind::NotHls, err.to_string()),
        }
    }

    /// Live/VOD, stale and restart detection, then the segment probe.
    async fn judge_media(&self, mut result: HealthResult, media: Media<'_>) -> HealthResult {
        let playlist = &media.playlist;
        let target_duration = playlist.target_duration.unwrap_or(0.0);
        result.stream_type = playlist.stream_type;
        result.media_sequence = Some(playlist.media_sequence);
        result.target_duration = Some(target_duration);
        result.last_segment = playlist
            .segments
            .last()
            .map(|s| truncate(s.uri, MediaState::MAX_SEGMENT_CHARS));
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
                let allowed = STALE_AFTER_TARGET_DURATIONS * target_duration.max(1.0);
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

    /// Probes the middle segment (not the newest, which may not exist yet
    /// at a live edge; not the oldest, which may expire) within the budget:
    /// its bytes must be media ([`segment::sniff`]); a segment encrypted
    /// whole (AES-128) must have a 16-byte key, bytes that are not text
    /// ([`segment::sniff_ciphertext`]) and a size in whole 16-byte blocks;
    /// an init section in force must be media too.
    async fn probe_segment(&self, mut result: HealthResult, media: &Media<'_>) -> HealthResult {
        let segments = &media.playlist.segments;
        let middle = &segments[segments.len() / 2];
        let Some(url) = media.resolve(middle.uri) else {
            return fail(
                result,
                ErrorKind::Segment,
                "segment URI does not resolve".to_owned(),
            );
        };
        let encrypted = middle.key.filter(|key| key.encrypts_whole_segments());
        let prerequisite = match encrypted {
            Some(key) => self.check_key(media, key.uri).await,
            None => match middle.map {
                Some(map) => self.check_init_section(media, map.uri).await,
                None => Ok(()),
            },
        };
        if let Err(failure) = prerequisite {
            return fail(result, failure.kind, failure.message);
        }
        let checker = self.checker;
        let segment = match checker
            .get_head(url, self.headers, checker.segment_bytes, middle.byte_range)
            .await
        {
            Ok(segment) => segment,
            Err(failure) => {
                let failure = failure.in_step(ErrorKind::Segment, "segment");
                return fail(result, failure.kind, failure.message);
            }
        };
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
        let size = middle
            .byte_range
            .map(|range| range.length)
            .or(segment.resource_len);
        let verdict = match encrypted {
            Some(_) => segment::sniff_ciphertext(&segment.body)
                .map_err(|found| found.to_string())
                .and_then(|()| match size {
                    Some(size) if size % AES_BLOCK_BYTES != 0 => Err(format!(
                        "AES-128 segment is {size} bytes, not a whole number of 16-byte blocks"
                    )),
                    _ => Ok(()),
                }),
            None => segment::sniff(&segment.body)
                .map(drop)
                .map_err(|found| found.to_string()),
        };
        match verdict {
            Ok(()) => result,
            Err(message) => fail(result, ErrorKind::Segment, message),
        }
    }

    /// The key of an AES-128 segment answers exactly 16 bytes (through the
    /// extractor's headers, as a player fetches it).
    async fn check_key(&self, media: &Media<'_>, uri: Option<&str>) -> Result<(), Failure> {
        let Some(url) = uri.and_then(|uri| media.resolve(uri)) else {
            return Err(Failure::plain(
                ErrorKind::Segment,
                "AES-128 key has no http(s) URI".to_owned(),
            ));
        };
        let key = match self
            .checker
            .get_whole(url, self.headers, AES_KEY_READ_BYTES)
            .await
        {
            Ok(key) => key,
            Err(failure) if failure.kind == ErrorKind::TooLarge => {
                return Err(Failure::plain(
                    ErrorKind::Segment,
                    format!("AES-128 key is more than {AES_KEY_READ_BYTES} bytes, not 16"),
                ));
            }
            Err(failure) => return Err(failure.in_step(ErrorKind::Segment, "AES-128 key")),
        };
        if key.body.len() as u64 != AES_KEY_BYTES {
            return Err(Failure::plain(
                ErrorKind::Segment,
                format!("AES-128 key is {} bytes, not 16", key.body.len()),
            ));
        }
        Ok(())
    }

    /// The init section (`EXT-X-MAP`) of an unencrypted segment is media.
    async fn check_init_section(&self, media: &Media<'_>, uri: &str) -> Result<(), Failure> {
        let Some(url) = media.resolve(uri) else {
            return Err(Failure::plain(
                ErrorKind::Segment,
                "init section URI does not resolve".to_owned(),
            ));
        };
        let checker = self.checker;
        let init = checker
            .get_head(url, self.headers, checker.segment_bytes, None)
            .await
            .map_err(|failure| failure.in_step(ErrorKind::Segment, "init section"))?;
        segment::sniff(&init.body)
            .map(drop)
            .map_err(|found| Failure::plain(ErrorKind::Segment, format!("init section: {found}")))
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

/// The text of a playlist read whole, if it is one by the one rule
/// ([`hls::is_playlist`]). RFC 8216 wants UTF-8, but one stray byte in a
/// title must not hide the segments after it (the proxy replaces it the
/// same way).
fn media_text(fetched: &Fetched) -> Result<Cow<'_, str>, Failure> {
    if !hls::is_playlist(&fetched.body) {
        return Err(Failure {
            kind: ErrorKind::NotHls,
            message: NOT_HLS_MESSAGE.to_owned(),
            status: Some(fetched.status.as_u16()),
            ttfb: Some(fetched.ttfb),
        });
    }
    Ok(String::from_utf8_lossy(&fetched.body))
}

/// [`media_text`] of a fetch that is not kept, with its final URL.
fn owned_media_text(fetched: Fetched) -> Result<(String, Url), Failure> {
    let text = media_text(&fetched)?.into_owned();
    Ok((text, fetched.final_url))
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
