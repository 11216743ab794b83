//! The stitcher: one live media playlist made of the segments of a
//! succession of sources, as linear-channel and ad-insertion engines splice
//! segments from different origins. Pure: a [`ChannelPosition`] takes a
//! source's media playlist and the time and changes itself
//! ([`ChannelPosition::apply`]), and writes its playlist
//! ([`ChannelPosition::render`]); no I/O, so every rule is unit-tested.
//!
//! Hand-written because no crate does this: m3u8-rs can write a playlist,
//! but loses what a splice must keep (it rounds durations through `f32`),
//! and the numbering rules below are the whole point.
//!
//! The rules players need (RFC 8216 §6.2.2, and what players report
//! breaking in server-side stitching):
//!
//! - `EXT-X-MEDIA-SEQUENCE` never goes backwards: a segment keeps its
//!   channel number for as long as it is listed, and a new source's first
//!   segment takes the number after the last one ever listed.
//! - Every segment carries its discontinuity number: an
//!   `#EXT-X-DISCONTINUITY` precedes the first segment after a change of
//!   source, a source's restart of its own numbering, or a gap of missed
//!   segments, and the source's own discontinuities pass through.
//!   `EXT-X-DISCONTINUITY-SEQUENCE` is the number of the window's first
//!   segment, so it grows as discontinuities leave the window.
//! - `EXT-X-KEY` and `EXT-X-MAP` are written again after every
//!   discontinuity (and whenever they change), so the new source's key and
//!   init section precede its first segment. A key without an `IV` uses the
//!   segment's media sequence number as IV; renumbering would change it, so
//!   the source's number is written as an explicit `IV`.
//! - `EXT-X-TARGETDURATION` is at least every listed segment's rounded
//!   duration and never decreases while the channel lives.
//! - `EXT-X-PROGRAM-DATE-TIME` passes through with its segment.
//!
//! The window keeps the newest segments whose durations add up to at least
//! [`WINDOW_TARGET_DURATIONS`] target durations (at least
//! [`MIN_WINDOW_SEGMENTS`] segments, at most [`MAX_WINDOW_SEGMENTS`]). From
//! a new source only its newest [`START_SEGMENTS`] segments are taken, as a
//! player joining a live stream starts near its live edge.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::hls::media::{Key, MediaPlaylist, Segment};
use crate::proxy::token::{Kind, Signer};

/// Target durations of media the window keeps (so 6 × 6 s = 36 s for a
/// source with 6 s segments).
pub const WINDOW_TARGET_DURATIONS: f64 = 6.0;
/// Fewest segments the window keeps, whatever their durations.
pub const MIN_WINDOW_SEGMENTS: usize = 3;
/// Most segments the window keeps: bounds memory and the playlist's size
/// whatever a source lists.
pub const MAX_WINDOW_SEGMENTS: usize = 256;
/// Segments taken from a source when it becomes active (or restarts).
pub const START_SEGMENTS: usize = 3;
/// Target durations without a new segment after which a source is stale.
pub const STALE_TARGET_DURATIONS: f64 = 3.0;

/// The source a channel plays now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSource {
    /// The stream's row id.
    pub stream_id: i64,
    /// Its extractor: whose headers go upstream (`src` of relay paths).
    pub site_key: String,
    /// Its title when chosen, for display.
    pub title: Option<String>,
    /// The media playlist played: the stream itself, or the variant chosen
    /// from its master playlist (fixed while the source is active).
    pub variant_url: String,
    /// That variant's declared `BANDWIDTH`, when chosen from a master.
    pub variant_bandwidth: Option<u64>,
}

/// An `EXT-X-KEY` in force for a stitched segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentKey {
    /// `AES-128`, `SAMPLE-AES`, ...
    pub method: String,
    /// The key's absolute http(s) URL, relayed; or a URI of another scheme
    /// (`skd://`, `data:`) as written.
    pub uri: Option<String>,
    /// Hex digits of the IV: the source's, or the source's media sequence
    /// number of the segment.
    pub iv: String,
    /// `KEYFORMAT` as written.
    pub key_format: Option<String>,
    /// `KEYFORMATVERSIONS` as written.
    pub key_format_versions: Option<String>,
}

/// An `EXT-X-MAP` in force for a stitched segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMap {
    /// The init section's absolute URL.
    pub url: String,
    /// Its `BYTERANGE` as written.
    pub byte_range: Option<String>,
}

/// One segment of the channel's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StitchedSegment {
    /// The channel's media sequence number of this segment.
    pub sequence: u64,
    /// Its discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// The source epoch it came from (see [`ChannelPosition::epoch`]).
    pub epoch: u64,
    /// `EXTINF` seconds.
    pub duration: f64,
    /// The segment's absolute upstream URL.
    pub url: String,
    /// The site key whose headers fetch it.
    pub src: String,
    /// The key in force, if encrypted.
    pub key: Option<SegmentKey>,
    /// The init section in force.
    pub map: Option<SegmentMap>,
    /// `EXT-X-BYTERANGE` as (length, offset).
    pub byte_range: Option<(u64, u64)>,
    /// `EXT-X-PROGRAM-DATE-TIME` as written by the source.
    pub program_date_time: Option<String>,
    /// Known to fail: listed with `#EXT-X-GAP`, so players skip it instead
    /// of retrying it (its number stays taken).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gap: bool,
}

/// Where a channel stands: its source, its numbering and its window. This
/// is what the database keeps (as JSON), so a restart continues the
/// numbering and services sharing the database serve the same playlist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelPosition {
    /// Grows with every change of source or restart of one.
    pub epoch: u64,
    /// The source played now; `None` before the first or when none is left.
    pub source: Option<ActiveSource>,
    /// The source's media sequence number of the newest segment taken from
    /// it in this epoch; `None` until one is.
    pub last_source_sequence: Option<u64>,
    /// URL of that segment, to tell a source that restarted at the same
    /// numbers.
    pub last_source_url: Option<String>,
    /// The channel number the next new segment takes (one past every
    /// number ever listed).
    pub next_sequence: u64,
    /// Discontinuity number of the newest segment ever listed.
    pub last_discontinuity_sequence: u64,
    /// The next new segment follows a change: it gets a discontinuity.
    pub pending_discontinuity: bool,
    /// `EXT-X-TARGETDURATION` in force, seconds; never decreases.
    pub target_duration: u64,
    /// The window, oldest first.
    pub segments: VecDeque<StitchedSegment>,
    /// When the source last gave a new segment (or became active).
    pub last_new_segment_at: Option<DateTime<Utc>>,
}

/// What one source playlist did to a position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// New segments appended.
    pub appended: usize,
    /// The source restarted its numbering (a discontinuity was placed).
    pub restarted: bool,
}

impl ChannelPosition {
    /// Makes `source` the active one from `now`: a new epoch whose first
    /// segment follows a discontinuity (unless it is the channel's very
    /// first).
    pub fn begin(&mut self, source: ActiveSource, now: DateTime<Utc>) {
        self.epoch += 1;
        self.source = Some(source);
        self.last_source_sequence = None;
        self.last_source_url = None;
        self.pending_discontinuity = self.next_sequence > 0;
        self.last_new_segment_at = Some(now);
    }

    /// Leaves the channel without a source (none is left to play); the
    /// window and numbering stay for when one comes back.
    pub fn stop(&mut self) {
        self.source = None;
        self.last_source_sequence = None;
        self.last_source_url = None;
        self.pending_discontinuity = self.next_sequence > 0;
    }

    /// Takes the active source's media playlist, read at `now`: appends its
    /// new segments (URIs resolved by `resolve`, which answers absolute
    /// http(s) URLs or `None`), renumbered into the channel, and trims the
    /// window. A source whose numbers went backwards, or that lists another
    /// segment at the number last taken, restarted; one whose first listed
    /// segment is past the next expected one skipped segments. Both
    /// continue from its newest segments after a discontinuity.
    pub fn apply(
        &mut self,
        playlist: &MediaPlaylist<'_>,
        resolve: impl Fn(&str) -> Option<Url>,
        now: DateTime<Utc>,
    ) -> Applied {
        let mut applied = Applied::default();
        let Some(src) = self.source.as_ref().map(|s| s.site_key.clone()) else {
            return applied;
        };
        if let Some(declared) = playlist.target_duration {
            self.raise_target_duration(declared);
        }
        let count = playlist.segments.len() as u64;
        if count == 0 {
            return applied;
        }
        let first = playlist.media_sequence;
        let last = first.saturating_add(count - 1);
        let fresh_start = count.saturating_sub(START_SEGMENTS as u64);
        let start = match self.last_source_sequence {
            None => fresh_start,
            Some(taken) if last < taken || self.relisted_differently(playlist, taken) => {
                // A new epoch of the same source: its segments before the
                // restart no longer count against it.
                applied.restarted = true;
                self.epoch += 1;
                self.pending_discontinuity = true;
                fresh_start
            }
            Some(taken) if first > taken.saturating_add(1) => {
                self.pending_discontinuity = true;
                fresh_start
            }
            Some(taken) => taken.saturating_add(1) - first,
        };
        let mut expected = first + start;
        for (offset, segment) in playlist.segments.iter().enumerate().skip(start as usize) {
            let source_sequence = first + offset as u64;
            let Some(url) = resolve(segment.uri) else {
                continue;
            };
            let sequence = self.next_sequence + (source_sequence - expected);
            let discontinuity =
                self.next_sequence > 0 && (self.pending_discontinuity || segment.discontinuity);
            let discontinuity_sequence = self.last_discontinuity_sequence + u64::from(discontinuity);
            let stitched = StitchedSegment {
                sequence,
                discontinuity_sequence,
                epoch: self.epoch,
                duration: segment.duration,
                url: url.into(),
                src: src.clone(),
                key: segment
                    .key
                    .map(|key| stitched_key(key, source_sequence, &resolve)),
                map: stitched_map(segment, &resolve),
                byte_range: segment.byte_range.map(|range| (range.length, range.offset)),
                program_date_time: segment.program_date_time.map(str::to_owned),
                gap: false,
            };
            self.raise_target_duration(segment.duration);
            self.last_source_url = Some(stitched.url.clone());
            self.segments.push_back(stitched);
            self.next_sequence = sequence + 1;
            self.last_discontinuity_sequence = discontinuity_sequence;
            self.pending_discontinuity = false;
            self.last_source_sequence = Some(source_sequence);
            expected = source_sequence + 1;
            applied.appended += 1;
        }
        if applied.appended > 0 {
            self.last_new_segment_at = Some(now);
            self.trim();
        }
        applied
    }

    /// Whether the source lists a segment at number `taken` whose URL is not
    /// the one taken at that number: it started again from lower numbers.
    fn relisted_differently(&self, playlist: &MediaPlaylist<'_>, taken: u64) -> bool {
        let Some(index) = taken.checked_sub(playlist.media_sequence) else {
            return false;
        };
        let (Some(segment), Some(last_url)) = (
            playlist.segments.get(index as usize),
            self.last_source_url.as_deref(),
        ) else {
            return false;
        };
        // Compared by file name: the resolution base does not change between
        // reloads of one variant, and CDN tokens in the query may.
        let name = |url: &str| {
            let path = url.split(['?', '#']).next().unwrap_or(url);
            path.rsplit('/').next().unwrap_or(path).to_owned()
        };
        name(segment.uri) != name(last_url)
    }

    fn raise_target_duration(&mut self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            // RFC 8216 §4.3.3.1: each duration rounded to the nearest integer
            // must not exceed the target duration.
            let rounded = seconds.round().max(1.0) as u64;
            self.target_duration = self.target_duration.max(rounded);
        }
    }

    /// Drops the oldest segments beyond the window.
    fn trim(&mut self) {
        let window = WINDOW_TARGET_DURATIONS * self.target_duration.max(1) as f64;
        let mut total: f64 = self.segments.iter().map(|s| s.duration).sum();
        while self.segments.len() > MIN_WINDOW_SEGMENTS {
            let Some(oldest) = self.segments.front() else {
                break;
            };
            let over_count = self.segments.len() > MAX_WINDOW_SEGMENTS;
            if !over_count && total - oldest.duration < window {
                break;
            }
            total -= oldest.duration;
            self.segments.pop_front();
        }
    }

    /// Marks the current epoch's segments from the first of `failed` (by
    /// upstream URL) onwards as gaps: segments of a source whose segments
    /// fail are left for the next one, and a player should skip the rest
    /// of them rather than retry each. Numbers and the window stay.
    pub fn mark_gaps_from(&mut self, failed: &[String]) {
        let epoch = self.epoch;
        let mut marking = false;
        for segment in self.segments.iter_mut().filter(|s| s.epoch == epoch) {
            marking = marking || failed.contains(&segment.url);
            segment.gap |= marking;
        }
    }

    /// Whether the active source gave no new segment for
    /// [`STALE_TARGET_DURATIONS`] target durations up to `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let limit = STALE_TARGET_DURATIONS * self.target_duration.max(1) as f64;
        self.source.is_some()
            && self
                .last_new_segment_at
                .is_some_and(|at| now - at > TimeDelta::milliseconds((limit * 1000.0) as i64))
    }

    /// `EXT-X-MEDIA-SEQUENCE`: the number of the window's first segment.
    pub fn media_sequence(&self) -> u64 {
        self.segments.front().map_or(self.next_sequence, |s| s.sequence)
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE`: the discontinuity number of the
    /// window's first segment.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.segments
            .front()
            .map_or(self.last_discontinuity_sequence, |s| s.discontinuity_sequence)
    }

    /// The upstream URLs of the window's segments from the current epoch:
    /// the ones whose failures through the relay count against the source.
    pub fn current_segment_urls(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .filter(move |s| s.epoch == self.epoch && self.source.is_some())
            .map(|s| s.url.as_str())
    }

    /// The channel's live media playlist: every segment, key and init
    /// section as a signed relay path under `public_base` (empty:
    /// root-relative paths).
    pub fn render(&self, signer: &Signer, public_base: &str) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 256);
        let version = if self.segments.iter().any(|s| s.map.is_some()) {
            6
        } else if self.segments.iter().any(|s| s.byte_range.is_some()) {
            4
        } else {
            3
        };
        out.push_str("#EXTM3U\n");
        push_line(&mut out, format_args!("#EXT-X-VERSION:{version}"));
        push_line(
            &mut out,
            format_args!("#EXT-X-TARGETDURATION:{}", self.target_duration.max(1)),
        );
        push_line(
            &mut out,
            format_args!("#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence()),
        );
        push_line(
            &mut out,
            format_args!("#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence()),
        );
        let relay = |out: &mut String, url: &str, src: &str| {
            out.push_str(public_base);
            signer.push_path(out, Kind::Relay, url, Some(src));
        };
        let mut previous: Option<&StitchedSegment> = None;
        for segment in &self.segments {
            let after_discontinuity =
                previous.is_some_and(|p| p.discontinuity_sequence != segment.discontinuity_sequence);
            if after_discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let restate = previous.is_none() || after_discontinuity;
            if restate || previous.is_some_and(|p| p.key != segment.key) {
                match &segment.key {
                    Some(key) => {
                        out.push_str("#EXT-X-KEY:METHOD=");
                        out.push_str(&key.method);
                        if let Some(uri) = &key.uri {
                            out.push_str(",URI=\"");
                            if uri.starts_with("http://") || uri.starts_with("https://") {
                                relay(&mut out, uri, &segment.src);
                            } else {
                                out.push_str(uri);
                            }
                            out.push('"');
                        }
                        out.push_str(",IV=0x");
                        out.push_str(&key.iv);
                        for (name, value) in [
                            ("KEYFORMAT", &key.key_format),
                            ("KEYFORMATVERSIONS", &key.key_format_versions),
                        ] {
                            if let Some(value) = value {
                                push_line_part(&mut out, format_args!(",{name}=\"{value}\""));
                            }
                        }
                        out.push('\n');
                    }
                    None if previous.is_some_and(|p| p.key.is_some()) => {
                        out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                    }
                    None => {}
                }
            }
            if (restate || previous.is_some_and(|p| p.map != segment.map))
                && let Some(map) = &segment.map
            {
                out.push_str("#EXT-X-MAP:URI=\"");
                relay(&mut out, &map.url, &segment.src);
                out.push('"');
                if let Some(range) = &map.byte_range {
                    push_line_part(&mut out, format_args!(",BYTERANGE=\"{range}\""));
                }
                out.push('\n');
            }
            if let Some(at) = &segment.program_date_time {
                push_line(&mut out, format_args!("#EXT-X-PROGRAM-DATE-TIME:{at}"));
            }
            if segment.gap {
                out.push_str("#EXT-X-GAP\n");
            }
            if let Some((length, offset)) = segment.byte_range {
                push_line(&mut out, format_args!("#EXT-X-BYTERANGE:{length}@{offset}"));
            }
            push_line(
                &mut out,
                format_args!("#EXTINF:{},", format_duration(segment.duration)),
            );
            relay(&mut out, &segment.url, &segment.src);
            out.push('\n');
            previous = Some(segment);
        }
        out
    }
}

/// The key of a segment with its URI resolved and its IV made explicit.
fn stitched_key(key: Key<'_>, source_sequence: u64, resolve: &impl Fn(&str) -> Option<Url>) -> SegmentKey {
    SegmentKey {
        method: key.method.to_owned(),
        uri: key
            .uri
            .map(|uri| resolve(uri).map_or_else(|| uri.to_owned(), String::from)),
        iv: key
            .iv
            .map_or_else(|| format!("{source_sequence:032X}"), str::to_owned),
        key_format: key.key_format.map(str::to_owned),
        key_format_versions: key.key_format_versions.map(str::to_owned),
    }
}

/// The init section of a segment with its URI resolved (none when it does
/// not resolve to http(s)).
fn stitched_map(segment: &Segment<'_>, resolve: &impl Fn(&str) -> Option<Url>) -> Option<SegmentMap> {
    let map = segment.map?;
    Some(SegmentMap {
        url: resolve(map.uri)?.into(),
        byte_range: map.byte_range.map(str::to_owned),
    })
}

/// A duration as `EXTINF` writes it: up to millisecond precision, without
/// trailing zeros (`6`, `5.005`).
fn format_duration(seconds: f64) -> String {
    let text = format!("{:.3}", seconds.max(0.0));
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn push_line(out: &mut String, line: std::fmt::Arguments<'_>) {
    push_line_part(out, line);
    out.push('\n');
}

fn push_line_part(out: &mut String, part: std::fmt::Arguments<'_>) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = out.write_fmt(part);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::media;
    use proptest::prelude::*;

    const BASE_A: &str = "https://a.example/live/";
    const BASE_B: &str = "https://b.example/hls/";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_946_000 + seconds, 0).expect("valid time")
    }

    fn source(id: i64, site_key: &str, base: &str) -> ActiveSource {
        ActiveSource {
            stream_id: id,
            site_key: site_key.to_owned(),
            title: Some(format!("stream {id}")),
            variant_url: format!("{base}index.m3u8"),
            variant_bandwidth: None,
        }
    }

    /// A live playlist of `count` segments from `first`, `duration` seconds each.
    fn live(first: u64, count: u64, duration: f64, extra_per_segment: &str) -> String {
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n",
            duration.ceil()
        );
        for n in first..first + count {
            text.push_str(extra_per_segment);
            text.push_str(&format!("#EXTINF:{duration},\nseg{n}.ts\n"));
        }
        text
    }

    fn apply(position: &mut ChannelPosition, text: &str, base: &str, now: DateTime<Utc>) -> Applied {
        let playlist = media::parse(text).expect("media playlist");
        let base = Url::parse(base).expect("base");
        position.apply(&playlist, |uri| crate::hls::uri::resolve(&base, uri), now)
    }

    fn signer() -> Signer {
        Signer::new(b"stitch test key")
    }

    /// The channel's playlist as a player reads it (m3u8-rs), with the
    /// upstream URL of each segment decoded from its relay path.
    struct Read {
        media_sequence: u64,
        discontinuity_sequence: u64,
        target_duration: u64,
        segments: Vec<(String, bool)>,
    }

    fn read(text: &str) -> Read {
        let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("players parse it");
        let segments = playlist
            .segments
            .iter()
            .map(|s| (upstream_of(&s.uri), s.discontinuity))
            .collect();
        Read {
            media_sequence: playlist.media_sequence,
            discontinuity_sequence: playlist.discontinuity_sequence,
            target_duration: playlist.target_duration,
            segments,
        }
    }

    /// The upstream URL a `/relay/<token>/<name>` path carries, after
    /// checking its signature.
    fn upstream_of(path: &str) -> String {
        let mut parts = path.split('/');
        assert_eq!(parts.next(), Some(""), "root-relative: {path}");
        assert_eq!(parts.next(), Some("relay"), "a relay path: {path}");
        let token = parts.next().expect("token");
        let parsed = crate::proxy::token::parse_token(token).expect("token parses");
        assert!(parsed.is_signed_by(&signer(), Kind::Relay), "signed: {path}");
        parsed.url_text
    }

    #[test]
    fn a_steady_source_advances_the_window_with_the_sources_segments() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        let first = apply(&mut position, &live(100, 6, 6.0, ""), BASE_A, at(0));
        assert_eq!(first.appended, START_SEGMENTS, "joins near the live edge");
        let read0 = read(&position.render(&signer(), ""));
        assert_eq!(read0.media_sequence, 0);
        assert_eq!(
            read0.segments.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            [
                "https://a.example/live/seg103.ts",
                "https://a.example/live/seg104.ts",
                "https://a.example/live/seg105.ts"
            ]
        );
        let second = apply(&mut position, &live(102, 6, 6.0, ""), BASE_A, at(6));
        assert_eq!(second.appended, 2, "only the new segments");
        let text = position.render(&signer(), "");
        let read1 = read(&text);
        assert_eq!(read1.media_sequence, 0);
        assert_eq!(read1.segments.len(), 5);
        assert_eq!(read1.segments[4].0, "https://a.example/live/seg107.ts");
        assert!(
            read1.segments.iter().all(|s| !s.1),
            "no discontinuity in a steady source"
        );
        assert_eq!(read1.target_duration, 6);
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
        let unchanged = apply(&mut position, &live(102, 6, 6.0, ""), BASE_A, at(8));
        assert_eq!(unchanged.appended, 0, "a reload without news changes nothing");
    }

    #[test]
    fn the_window_keeps_six_target_durations_and_moves_the_media_sequence() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        for step in 1..20u64 {
            apply(
                &mut position,
                &live(step, 3, 2.0, ""),
                BASE_A,
                at(step as i64 * 2),
            );
        }
        let total: f64 = position.segments.iter().map(|s| s.duration).sum();
        assert!(total >= WINDOW_TARGET_DURATIONS * 2.0, "{total} s kept");
        assert!(total < WINDOW_TARGET_DURATIONS * 2.0 + 2.0, "{total} s kept");
        let read = read(&position.render(&signer(), ""));
        assert_eq!(read.media_sequence, 21 - read.segments.len() as u64 + 1);
        assert_eq!(
            read.segments.last().expect("segments").0,
            "https://a.example/live/seg21.ts"
        );
    }

    #[test]
    fn a_switch_continues_the_numbers_after_a_discontinuity_with_key_and_map_restated() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        let keyed = "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n#EXT-X-MAP:URI=\"init.mp4\"\n";
        apply(&mut position, &live(500, 5, 4.0, keyed), BASE_A, at(0));
        let before = read(&position.render(&signer(), ""));
        position.begin(source(2, "b", BASE_B), at(10));
        let b_keyed = "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.b.example/k2\",IV=0x0A\n\
                       #EXT-X-MAP:URI=\"b-init.mp4\"\n";
        apply(&mut position, &live(7, 4, 4.0, b_keyed), BASE_B, at(10));
        let text = position.render(&signer(), "");
        let after = read(&text);
        assert_eq!(
            after.media_sequence, before.media_sequence,
            "nothing left the window yet"
        );
        let last_a = before.segments.len();
        assert!(
            after.segments[last_a].1,
            "a discontinuity before B's first segment:\n{text}"
        );
        assert_eq!(after.segments[last_a].0, "https://b.example/hls/seg8.ts");
        assert_eq!(
            position.segments[last_a].sequence,
            position.segments[last_a - 1].sequence + 1
        );
        assert_eq!(position.segments[last_a].discontinuity_sequence, 1);
        // After the discontinuity B's key and init section come before its
        // first segment, relayed with B's site key.
        let tail = &text[text.find("#EXT-X-DISCONTINUITY\n").expect("discontinuity")..];
        let key_at = tail
            .find("#EXT-X-KEY:METHOD=AES-128,URI=\"/relay/")
            .expect("key restated");
        let map_at = tail.find("#EXT-X-MAP:URI=\"/relay/").expect("map restated");
        let segment_at = tail.find("#EXTINF").expect("segment");
        assert!(key_at < segment_at && map_at < segment_at, "{tail}");
        assert!(tail.contains(",IV=0x0A"), "an explicit IV is kept");
        let key_uri = &tail[key_at..];
        let key_path = key_uri[key_uri.find("URI=\"").expect("URI") + 5..]
            .split('"')
            .next()
            .expect("key path");
        assert_eq!(upstream_of(key_path), "https://keys.b.example/k2");
        assert!(key_path.contains(".b/"), "B's site key goes upstream: {key_path}");
        // A's keys had no IV: its own sequence numbers are written, so the
        // renumbering does not change how its segments decrypt.
        assert!(text.contains(&format!(",IV=0x{:032X}", 502u64)), "{text}");
    }

    #[test]
    fn a_source_restarting_its_numbers_continues_after_a_discontinuity() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(900, 4, 2.0, ""), BASE_A, at(0));
        let last_before = position.next_sequence;
        let epoch = position.epoch;
        let applied = apply(&mut position, &live(0, 2, 2.0, ""), BASE_A, at(2));
        assert!(applied.restarted);
        assert_eq!(applied.appended, 2);
        assert_eq!(position.epoch, epoch + 1, "the restart starts an epoch");
        let restarted = &position.segments[position.segments.len() - 2];
        assert_eq!(restarted.sequence, last_before, "numbers keep growing");
        assert_eq!(restarted.discontinuity_sequence, 1);
        assert_eq!(restarted.url, "https://a.example/live/seg0.ts");
        // The same numbers with other segments is a restart too.
        let mut again = ChannelPosition::default();
        again.begin(source(1, "a", BASE_A), at(0));
        apply(&mut again, &live(10, 3, 2.0, ""), BASE_A, at(0));
        let relisted = live(10, 3, 2.0, "").replace("seg12.ts", "fresh12.ts");
        assert!(apply(&mut again, &relisted, BASE_A, at(2)).restarted);
        // CDN tokens changing in the query are no restart.
        let mut tokens = ChannelPosition::default();
        tokens.begin(source(1, "a", BASE_A), at(0));
        apply(
            &mut tokens,
            &live(10, 3, 2.0, "").replace(".ts", ".ts?t=1"),
            BASE_A,
            at(0),
        );
        let next = live(10, 4, 2.0, "").replace(".ts", ".ts?t=2");
        let applied = apply(&mut tokens, &next, BASE_A, at(2));
        assert!(!applied.restarted);
        assert_eq!(applied.appended, 1);
    }

    #[test]
    fn the_target_duration_grows_to_fit_and_never_shrinks() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        assert_eq!(read(&position.render(&signer(), "")).target_duration, 2);
        let mut long = live(1, 3, 2.0, "");
        long.push_str("#EXTINF:9.6,\nseg4.ts\n");
        apply(&mut position, &long, BASE_A, at(2));
        assert_eq!(read(&position.render(&signer(), "")).target_duration, 10);
        position.begin(source(2, "b", BASE_B), at(4));
        apply(&mut position, &live(0, 3, 1.0, ""), BASE_B, at(4));
        // The window is 6 target durations (now 60 s) of media.
        for step in 1..80 {
            apply(
                &mut position,
                &live(step, 3, 1.0, ""),
                BASE_B,
                at(4 + step as i64),
            );
        }
        assert!(
            position.segments.iter().all(|s| s.duration == 1.0),
            "A has left the window"
        );
        assert_eq!(
            read(&position.render(&signer(), "")).target_duration,
            10,
            "never decreases"
        );
    }

    #[test]
    fn program_date_time_passes_through_with_its_segment() {
        let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n");
        text.push_str("#EXT-X-PROGRAM-DATE-TIME:2026-03-08T05:00:00.000Z\n#EXTINF:2,\na.ts\n");
        text.push_str("#EXTINF:2,\nb.ts\n");
        text.push_str("#EXT-X-PROGRAM-DATE-TIME:2026-03-08T05:00:04.000Z\n#EXTINF:2,\nc.ts\n");
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &text, BASE_A, at(0));
        let out = position.render(&signer(), "");
        let playlist = m3u8_rs::parse_media_playlist_res(out.as_bytes()).expect("parses");
        let dates: Vec<bool> = playlist
            .segments
            .iter()
            .map(|s| s.program_date_time.is_some())
            .collect();
        assert_eq!(dates, [true, false, true]);
        assert!(out.contains("#EXT-X-PROGRAM-DATE-TIME:2026-03-08T05:00:04.000Z\n#EXTINF:2,\n"));
    }

    #[test]
    fn a_discontinuity_leaving_the_window_increments_the_discontinuity_sequence() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        position.begin(source(2, "b", BASE_B), at(2));
        apply(&mut position, &live(50, 3, 2.0, ""), BASE_B, at(2));
        let with_both = read(&position.render(&signer(), ""));
        assert_eq!(with_both.discontinuity_sequence, 0);
        assert_eq!(with_both.segments.iter().filter(|s| s.1).count(), 1);
        for step in 1..10 {
            apply(
                &mut position,
                &live(50 + step, 3, 2.0, ""),
                BASE_B,
                at(2 + 2 * step as i64),
            );
        }
        let text = position.render(&signer(), "");
        let only_b = read(&text);
        assert!(only_b.segments.iter().all(|s| s.0.starts_with(BASE_B)));
        assert_eq!(
            only_b.discontinuity_sequence, 1,
            "A's segments and the switch left:\n{text}"
        );
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn the_sources_own_discontinuities_pass_through() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
                    #EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nad.ts\n";
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, text, BASE_A, at(0));
        let read = read(&position.render(&signer(), ""));
        assert_eq!(
            read.segments.iter().map(|s| s.1).collect::<Vec<_>>(),
            [false, false, true]
        );
    }

    #[test]
    fn a_source_without_new_segments_for_three_target_durations_is_stale() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(5));
        assert!(!position.is_stale(at(6)));
        assert!(position.is_stale(at(7)));
        apply(&mut position, &live(1, 3, 2.0, ""), BASE_A, at(7));
        assert!(!position.is_stale(at(7)), "a new segment makes it fresh");
    }

    #[test]
    fn missed_segments_resume_near_the_live_edge_after_a_discontinuity() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        let next = position.next_sequence;
        apply(&mut position, &live(1000, 10, 2.0, ""), BASE_A, at(3600));
        let resumed = position
            .segments
            .iter()
            .find(|s| s.url.ends_with("seg1007.ts"))
            .expect("live edge");
        assert_eq!(resumed.sequence, next);
        assert_eq!(resumed.discontinuity_sequence, 1);
        assert!(!position.segments.iter().any(|s| s.url.ends_with("seg1006.ts")));
    }

    #[test]
    fn segments_from_the_first_failed_one_are_listed_as_gaps_with_their_numbers() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        apply(&mut position, &live(0, 3, 2.0, ""), BASE_A, at(0));
        apply(&mut position, &live(1, 3, 2.0, ""), BASE_A, at(2));
        let numbers: Vec<u64> = position.segments.iter().map(|s| s.sequence).collect();
        position.mark_gaps_from(&["https://a.example/live/seg2.ts".to_owned()]);
        position.begin(source(2, "b", BASE_B), at(4));
        apply(&mut position, &live(9, 3, 2.0, ""), BASE_B, at(4));
        // The window (6 target durations, 12 s) keeps A's newest three.
        let gaps: Vec<bool> = position.segments.iter().map(|s| s.gap).collect();
        assert_eq!(gaps, [false, true, true, false, false, false]);
        let kept: Vec<u64> = position.segments.iter().take(3).map(|s| s.sequence).collect();
        assert_eq!(kept, numbers[1..], "gaps keep their numbers");
        let text = position.render(&signer(), "");
        assert_eq!(text.matches("#EXT-X-GAP\n").count(), 2, "{text}");
        let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("players parse it");
        assert_eq!(playlist.segments.len(), 6);
        let back: ChannelPosition =
            serde_json::from_str(&serde_json::to_string(&position).expect("encodes")).expect("decodes");
        assert_eq!(back, position, "gaps survive the database");
    }

    #[test]
    fn the_position_survives_its_json_form() {
        let mut position = ChannelPosition::default();
        position.begin(source(1, "a", BASE_A), at(0));
        let keyed = "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n#EXT-X-BYTERANGE:100@0\n";
        apply(&mut position, &live(3, 4, 2.002, keyed), BASE_A, at(0));
        let json = serde_json::to_string(&position).expect("encodes");
        let back: ChannelPosition = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, position);
        assert_eq!(back.render(&signer(), ""), position.render(&signer(), ""));
    }

    /// One step of a random history: a reload of the active source (moved
    /// on by `advance` segments, or restarted), or a switch.
    #[derive(Debug, Clone)]
    enum Step {
        Reload {
            advance: u64,
            count: u64,
            duration_ms: u32,
        },
        Restart {
            first: u64,
        },
        Switch {
            first: u64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u64..5, 1u64..8, 500u32..12_000).prop_map(|(advance, count, duration_ms)| Step::Reload {
                advance,
                count,
                duration_ms
            }),
            1 => (0u64..50).prop_map(|first| Step::Restart { first }),
            1 => (0u64..100_000).prop_map(|first| Step::Switch { first }),
        ]
    }

    proptest! {
        /// Whatever the sources do, the channel's playlist parses, its
        /// media and discontinuity sequences never decrease, its segments
        /// are numbered without going back, every URI is a signed relay
        /// path, and every segment fits the target duration.
        #[test]
        fn any_history_gives_playable_monotonic_playlists(steps in prop::collection::vec(step(), 1..60)) {
            let mut position = ChannelPosition::default();
            let mut first = 10u64;
            let mut count = 3u64;
            let mut duration = 2.0;
            let mut id = 1;
            position.begin(source(id, "a", BASE_A), at(0));
            let mut last_media_sequence = 0;
            let mut last_discontinuity_sequence = 0;
            let mut highest_listed: Option<u64> = None;
            for (n, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Reload { advance, count: c, duration_ms } => {
                        first += advance;
                        count = c;
                        duration = f64::from(duration_ms) / 1000.0;
                    }
                    Step::Restart { first: f } => first = f,
                    Step::Switch { first: f } => {
                        id += 1;
                        first = f;
                        position.begin(source(id, "b", BASE_B), at(n as i64));
                    }
                }
                let base = if id == 1 { BASE_A } else { BASE_B };
                apply(&mut position, &live(first, count, duration, ""), base, at(n as i64));
                let text = position.render(&signer(), "");
                let playlist = m3u8_rs::parse_media_playlist_res(text.as_bytes());
                prop_assert!(playlist.is_ok(), "unparsable:\n{}", text);
                let playlist = playlist.expect("checked");
                prop_assert!(playlist.media_sequence >= last_media_sequence);
                prop_assert!(playlist.discontinuity_sequence >= last_discontinuity_sequence);
                last_media_sequence = playlist.media_sequence;
                last_discontinuity_sequence = playlist.discontinuity_sequence;
                let mut previous: Option<u64> = None;
                for segment in &position.segments {
                    prop_assert!(previous.is_none_or(|p| segment.sequence > p));
                    previous = Some(segment.sequence);
                    prop_assert!(segment.duration.round() as u64 <= playlist.target_duration);
                }
                if let Some(newest) = position.segments.back() {
                    prop_assert!(highest_listed.is_none_or(|h| newest.sequence >= h));
                    highest_listed = Some(newest.sequence);
                }
                for segment in &playlist.segments {
                    upstream_of(&segment.uri);
                }
                prop_assert!(position.segments.len() <= MAX_WINDOW_SEGMENTS);
            }
        }
    }
}
