//! The one reader of HLS playlist text (RFC 8216 and its LL-HLS successor),
//! shared by the health checker, the proxy's rewriter and pipeline, and
//! anything else that must know what a playlist is. Each rule lives here
//! once:
//!
//! - what a playlist is: [`is_playlist`];
//! - what a line is: [`lines`];
//! - how an attribute list reads: [`attributes`];
//! - master (multivariant) or media: [`is_multivariant_tag`] and
//!   [`Summarizer`];
//! - live, event or VOD: [`stream_type`];
//! - which tags carry URIs, and to what: [`uri_target`];
//! - how a URI reference resolves: [`uri::resolve`], after `EXT-X-DEFINE`
//!   substitution ([`define`]);
//! - what a playlist says, as health and the proxy need it:
//!   [`PlaylistSummary`]; a media playlist's segments: [`media`].
//!
//! Why not m3u8-rs at run time: it rejects a UTF-8 BOM before `#EXTM3U`
//! and `#EXT-X-KEY:METHOD=NONE`, rounds `EXTINF` durations through `f32`,
//! keeps no byte offsets (the rewriter must change only a URI's bytes), and
//! writing a parse back drops comments, reorders attributes and loses every
//! tag after the last segment (the LL-HLS live edge). These readers work on
//! cut and lossily decoded text instead; the tests check the media reader
//! against m3u8-rs on well-formed playlists.
//!
//! The IPTV M3U channel-list format of the `m3u` source
//! (`#EXTINF:-1 tvg-id="..." group-title="...",Title`) is another grammar
//! with its own reader in `sources::m3u`.

pub mod attributes;
pub mod define;
pub mod lines;
pub mod media;
pub mod uri;

use crate::model::{PlaylistKind, StreamType};

pub use attributes::{Attribute, AttributeList, Value};
pub use lines::{Line, Lines};

/// The UTF-8 byte order mark, which may precede `#EXTM3U`.
pub const BOM: &str = "\u{feff}";

/// Whether `body` is a playlist players accept: it starts with `#EXTM3U`,
/// then the end of the line or a blank, after an optional UTF-8 BOM.
///
/// The rule is where the players agree. hls.js refuses a manifest whose
/// text does not begin with `#EXTM3U` ("no EXTM3U delimiter"), though it
/// takes `#EXTM3UX` too; ffmpeg's HLS demuxer probes for `#EXTM3U` at the
/// first byte and wants the first line to be the tag; Safari (AVFoundation)
/// follows RFC 8216 §4.3.1.1, which makes `#EXTM3U` the first line.
/// Browsers decode a fetched text with its BOM stripped before hls.js sees
/// it, so a BOM is fine; a blank line, whitespace or any other text before
/// the tag is not, and neither is `#EXTM3U` somewhere later in an HTML or
/// JSON body. Attributes after a blank (`#EXTM3U x-tvg-url=...`, an IPTV
/// habit) are accepted as hls.js and VLC accept them, though ffmpeg does
/// not.
pub fn is_playlist(body: &[u8]) -> bool {
    let body = body.strip_prefix(BOM.as_bytes()).unwrap_or(body);
    body.strip_prefix(b"#EXTM3U")
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'\r' | b'\n' | b' ' | b'\t')))
}

/// Tags that only a multivariant (master) playlist may carry (RFC 8216bis
/// §4.4.6). A playlist with any of them is a master playlist; one without
/// is a media playlist.
pub const MULTIVARIANT_TAGS: [&str; 7] = [
    "EXT-X-STREAM-INF",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-IMAGE-STREAM-INF",
    "EXT-X-MEDIA",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-CONTENT-STEERING",
];

/// Whether tag `name` (without `#`) makes a playlist a master playlist.
pub fn is_multivariant_tag(name: &str) -> bool {
    MULTIVARIANT_TAGS.contains(&name)
}

/// What the `URI` attribute of a tag points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriTarget {
    /// Another playlist (a rendition, an I-frame or image playlist, a
    /// rendition report's playlist).
    Playlist,
    /// Bytes: a key, an init section, a part, session data.
    Resource,
}

/// Where the `URI` attributes of tag `name` point; `None` when the tag
/// carries no URI attribute (RFC 8216bis lists every one).
pub fn uri_target(name: &str) -> Option<UriTarget> {
    match name {
        "EXT-X-MEDIA" | "EXT-X-I-FRAME-STREAM-INF" | "EXT-X-IMAGE-STREAM-INF" | "EXT-X-RENDITION-REPORT" => {
            Some(UriTarget::Playlist)
        }
        "EXT-X-MAP" | "EXT-X-KEY" | "EXT-X-SESSION-KEY" | "EXT-X-SESSION-DATA" | "EXT-X-PART"
        | "EXT-X-PRELOAD-HINT" => Some(UriTarget::Resource),
        _ => None,
    }
}

/// The one live / event / VOD rule. A media playlist is VOD when it ends
/// (`#EXT-X-ENDLIST`) or declares `PLAYLIST-TYPE:VOD`, an event when it
/// declares `EVENT`, and live otherwise. Every reader applies it to a whole
/// text (a cut one may end further on). A master playlist does not say.
pub fn stream_type(kind: Option<PlaylistKind>, ended: bool, declared: Option<StreamType>) -> StreamType {
    match kind {
        Some(PlaylistKind::Media) if ended => StreamType::Vod,
        Some(PlaylistKind::Media) => declared.unwrap_or(StreamType::Live),
        _ => StreamType::Unknown,
    }
}

/// One variant of a master playlist: an `#EXT-X-STREAM-INF` and its URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant<'a> {
    /// The declared peak `BANDWIDTH`; 0 when missing or not a number (such
    /// a variant is still listed).
    pub bandwidth: u64,
    /// The URI line as written.
    pub uri: &'a str,
    /// The `AUDIO` rendition group it plays with, if any.
    pub audio: Option<&'a str>,
}

/// What a playlist says, as the health checker and the proxy need it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSummary<'a> {
    /// Master when it has a multivariant-only tag, media when it has
    /// segments or a target duration, `None` when neither.
    pub kind: Option<PlaylistKind>,
    /// Live, event or VOD ([`stream_type`]).
    pub stream_type: StreamType,
    /// The variants of a master playlist, in order.
    pub variants: Vec<Variant<'a>>,
    /// `#EXT-X-TARGETDURATION` in seconds.
    pub target_duration: Option<f64>,
    /// `GROUP-ID`s of `EXT-X-MEDIA` audio renditions that have a `URI`:
    /// a variant in such a group plays its audio from a separate playlist.
    pub separate_audio_groups: Vec<&'a str>,
}

impl PlaylistSummary<'_> {
    /// Whether `variant` plays its audio from a separate rendition
    /// playlist (demuxed audio) rather than from its own segments.
    pub fn has_separate_audio(&self, variant: &Variant<'_>) -> bool {
        variant
            .audio
            .is_some_and(|group| self.separate_audio_groups.contains(&group))
    }

    /// The highest `BANDWIDTH` of the variants (not `AVERAGE-BANDWIDTH`),
    /// 0 without variants.
    pub fn max_bandwidth(&self) -> u64 {
        self.variants.iter().map(|v| v.bandwidth).max().unwrap_or(0)
    }
}

/// Builds a [`PlaylistSummary`] from lines as a reader walks them, so a
/// pass that does other work (the rewriter) summarises in the same pass.
#[derive(Debug, Default)]
pub struct Summarizer<'a> {
    multivariant: bool,
    has_segments: bool,
    ended: bool,
    declared: Option<StreamType>,
    target_duration: Option<f64>,
    variants: Vec<Variant<'a>>,
    separate_audio_groups: Vec<&'a str>,
    /// `BANDWIDTH` and `AUDIO` of an `#EXT-X-STREAM-INF` waiting for its
    /// URI line.
    pending_variant: Option<(u64, Option<&'a str>)>,
}

impl<'a> Summarizer<'a> {
    /// Takes one line into account.
    pub fn line(&mut self, line: &Line<'a>) {
        match *line {
            Line::Uri { uri, .. } => {
                if let Some((bandwidth, audio)) = self.pending_variant.take() {
                    self.variants.push(Variant {
                        bandwidth,
                        uri,
                        audio,
                    });
                }
            }
            Line::Tag { name, value } => self.tag(name, value),
            Line::Other => {}
        }
    }

    fn tag(&mut self, name: &str, value: &'a str) {
        // Every segment has an `EXTINF`: settle it before anything else.
        if name == "EXTINF" {
            self.has_segments = true;
            return;
        }
        if is_multivariant_tag(name) {
            self.multivariant = true;
        }
        match name {
            "EXT-X-STREAM-INF" => {
                let attributes = AttributeList(value);
                let bandwidth = attributes
                    .get("BANDWIDTH")
                    .and_then(|v| v.decimal_integer())
                    .unwrap_or(0);
                let audio = attributes.get("AUDIO").and_then(|v| v.quoted());
                self.pending_variant = Some((bandwidth, audio));
            }
            "EXT-X-MEDIA" => {
                let attributes = AttributeList(value);
                let is_audio = attributes
                    .get("TYPE")
                    .and_then(|v| v.enumerated())
                    .is_some_and(|kind| kind == "AUDIO");
                if is_audio
                    && attributes.get("URI").is_some()
                    && let Some(group) = attributes.get("GROUP-ID").and_then(|v| v.quoted())
                {
                    self.separate_audio_groups.push(group);
                }
            }
            "EXT-X-TARGETDURATION" => {
                self.has_segments = true;
                self.target_duration = value
                    .trim_ascii()
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0);
            }
            "EXT-X-ENDLIST" => self.ended = true,
            "EXT-X-PLAYLIST-TYPE" => match value.trim_ascii() {
                "VOD" => self.declared = Some(StreamType::Vod),
                "EVENT" => self.declared = Some(StreamType::Event),
                _ => {}
            },
            _ => {}
        }
    }

    /// The summary of the whole text.
    pub fn finish(self) -> PlaylistSummary<'a> {
        let kind = if self.multivariant {
            Some(PlaylistKind::Master)
        } else if self.has_segments {
            Some(PlaylistKind::Media)
        } else {
            None
        };
        self.finish_as(kind)
    }

    /// The summary of a text known to be a media playlist even when it has
    /// no segment yet (an empty live playlist); `None` for a master.
    pub fn finish_media(self) -> Option<PlaylistSummary<'a>> {
        (!self.multivariant).then(|| self.finish_as(Some(PlaylistKind::Media)))
    }

    fn finish_as(self, kind: Option<PlaylistKind>) -> PlaylistSummary<'a> {
        PlaylistSummary {
            kind,
            stream_type: stream_type(kind, self.ended, self.declared),
            variants: if self.multivariant {
                self.variants
            } else {
                Vec::new()
            },
            target_duration: self.target_duration,
            separate_audio_groups: self.separate_audio_groups,
        }
    }
}

/// Summarises the whole playlist `text`.
pub fn summarize(text: &str) -> PlaylistSummary<'_> {
    let mut summarizer = Summarizer::default();
    for (_, content, _) in Lines::new(text) {
        summarizer.line(&Line::parse(content));
    }
    summarizer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playlist_starts_with_extm3u_after_at_most_a_bom() {
        let cases: [(&[u8], bool, &str); 15] = [
            (b"#EXTM3U\n#EXTINF:1,\na.ts\n", true, "LF"),
            (b"#EXTM3U\r\n#EXT-X-VERSION:3\r\n", true, "CRLF"),
            (b"\xEF\xBB\xBF#EXTM3U\n", true, "BOM"),
            (b"#EXTM3U", true, "the tag alone"),
            (b"#EXTM3U \n", true, "trailing space"),
            (b"\n#EXTM3U\n", false, "leading blank line"),
            (b" #EXTM3U\n", false, "leading space"),
            (b"\xEF\xBB\xBF\n#EXTM3U\n", false, "BOM then a blank line"),
            (
                b"Welcome!\n#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
                false,
                "preamble text",
            ),
            (b"<html><body>#EXTM3U</body></html>", false, "HTML"),
            (b"{\"error\":\"#EXTM3U\"}", false, "JSON"),
            (b"", false, "empty"),
            (b"#EXTM3UX\n", false, "another tag"),
            (
                b"#EXTM3U x-tvg-url=\"a\"\n#EXTINF:-1,x\nhttp://h/x\n",
                true,
                "attributes on the tag line",
            ),
            (b"#extm3u\n", false, "lower case"),
        ];
        for (body, expected, case) in cases {
            assert_eq!(is_playlist(body), expected, "{case}");
        }
    }

    #[test]
    fn master_playlist_lists_variants_with_peak_bandwidth_not_average() {
        let text = "#EXTM3U\n\
            #EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=9000000,BANDWIDTH=800000\nlow.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000,CODECS=\"a,b\",AUDIO=\"aac\"\nhigh.m3u8\n\
            #EXT-X-STREAM-INF:RESOLUTION=1x1,AUDIO=\"muxed\"\n# a comment\nnobw.m3u8\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",URI=\"en.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"muxed\",NAME=\"main\"\n\
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"en\",URI=\"s.m3u8\"\n";
        let summary = summarize(text);
        assert_eq!(summary.kind, Some(PlaylistKind::Master));
        assert_eq!(summary.stream_type, StreamType::Unknown);
        assert_eq!(
            summary.variants,
            [
                Variant {
                    bandwidth: 800_000,
                    uri: "low.m3u8",
                    audio: None,
                },
                Variant {
                    bandwidth: 5_000_000,
                    uri: "high.m3u8",
                    audio: Some("aac"),
                },
                Variant {
                    bandwidth: 0,
                    uri: "nobw.m3u8",
                    audio: Some("muxed"),
                },
            ]
        );
        assert_eq!(summary.max_bandwidth(), 5_000_000);
        let separate: Vec<bool> = summary
            .variants
            .iter()
            .map(|variant| summary.has_separate_audio(variant))
            .collect();
        assert_eq!(
            separate,
            [false, true, false],
            "only an audio group with a URI is a separate rendition"
        );
    }

    #[test]
    fn only_multivariant_tags_make_a_master() {
        for tag in ["EXTINF", "EXT-X-MEDIA-SEQUENCE", "EXT-X-STREAM", "EXT-X-KEY"] {
            assert!(!is_multivariant_tag(tag), "{tag}");
        }
    }

    #[test]
    fn any_multivariant_tag_makes_a_master_even_after_uri_lines() {
        for tag in MULTIVARIANT_TAGS {
            let text = format!("#EXTM3U\n#EXTINF:1,\na.ts\n#{tag}:X=1\n");
            assert_eq!(summarize(&text).kind, Some(PlaylistKind::Master), "{tag}");
        }
        let sequence = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:1,\na.ts\n";
        assert_eq!(summarize(sequence).kind, Some(PlaylistKind::Media));
        assert_eq!(summarize("#EXTM3U\n").kind, None);
    }

    #[test]
    fn media_playlists_are_live_event_or_vod() {
        let live = "#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:6,\r\na.ts\r\n";
        assert_eq!(summarize(live).stream_type, StreamType::Live);
        assert_eq!(summarize(live).target_duration, Some(6.0));
        let vod = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(summarize(vod).stream_type, StreamType::Vod);
        let declared = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na";
        assert_eq!(summarize(declared).stream_type, StreamType::Vod);
        let event = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:6,\na.ts\n";
        assert_eq!(summarize(event).stream_type, StreamType::Event);
        assert_eq!(summarize(event).kind, Some(PlaylistKind::Media));
        let ended_event = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(summarize(ended_event).stream_type, StreamType::Vod);
    }

    #[test]
    fn the_stream_type_rule_needs_a_media_playlist() {
        assert_eq!(
            stream_type(Some(PlaylistKind::Master), true, Some(StreamType::Vod)),
            StreamType::Unknown
        );
        assert_eq!(stream_type(None, false, None), StreamType::Unknown);
    }

    #[test]
    fn every_uri_tag_has_a_target_and_no_other_tag_does() {
        let playlists = [
            "EXT-X-MEDIA",
            "EXT-X-I-FRAME-STREAM-INF",
            "EXT-X-IMAGE-STREAM-INF",
            "EXT-X-RENDITION-REPORT",
        ];
        let resources = [
            "EXT-X-MAP",
            "EXT-X-KEY",
            "EXT-X-SESSION-KEY",
            "EXT-X-SESSION-DATA",
            "EXT-X-PART",
            "EXT-X-PRELOAD-HINT",
        ];
        for tag in playlists {
            assert_eq!(uri_target(tag), Some(UriTarget::Playlist), "{tag}");
        }
        for tag in resources {
            assert_eq!(uri_target(tag), Some(UriTarget::Resource), "{tag}");
        }
        for tag in [
            "EXT-X-STREAM-INF",
            "EXT-X-MEDIA-SEQUENCE",
            "EXTINF",
            "EXT-X-DATERANGE",
        ] {
            assert_eq!(uri_target(tag), None, "{tag}");
        }
    }

    #[test]
    fn html_is_no_playlist_and_summarises_as_nothing() {
        let summary = summarize("<html><body>Not found</body></html>");
        assert_eq!(summary.kind, None);
        assert!(summary.variants.is_empty());
    }
}
