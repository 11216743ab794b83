//! A media playlist's segments, with what applies to each: its duration,
//! a discontinuity before it, the key and the init section in force, its
//! byte range. Read leniently over [`Lines`] like every reader here: one
//! stray byte, an unknown tag or a bad value costs that value, not the
//! playlist.

use super::{AttributeList, Line, Lines, Summarizer};
use crate::model::StreamType;

/// A media playlist as a reader of its segments needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist<'a> {
    /// `#EXT-X-TARGETDURATION` in seconds.
    pub target_duration: Option<f64>,
    /// `#EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment.
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: u64,
    /// Live, event or VOD ([`super::stream_type`]).
    pub stream_type: StreamType,
    /// The segments in order.
    pub segments: Vec<Segment<'a>>,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment<'a> {
    /// The URI line as written.
    pub uri: &'a str,
    /// `#EXTINF` duration in seconds (0 when missing or unreadable).
    pub duration: f64,
    /// An `#EXT-X-DISCONTINUITY` precedes it.
    pub discontinuity: bool,
    /// The `#EXT-X-KEY` in force (none, or `METHOD=NONE`: not encrypted).
    pub key: Option<Key<'a>>,
    /// The `#EXT-X-MAP` in force: the init section.
    pub map: Option<Map<'a>>,
    /// `#EXT-X-BYTERANGE`: the segment is this part of its resource.
    pub byte_range: Option<ByteRange>,
    /// `#EXT-X-PROGRAM-DATE-TIME` of this segment as written (it applies
    /// to the one segment it precedes).
    pub program_date_time: Option<&'a str>,
}

/// An `#EXT-X-MAP`: where the init section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map<'a> {
    /// The init section's URI.
    pub uri: &'a str,
    /// Its `BYTERANGE` (`length[@offset]`) as written.
    pub byte_range: Option<&'a str>,
}

/// An `#EXT-X-KEY` other than `METHOD=NONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    /// `AES-128`, `SAMPLE-AES`, `SAMPLE-AES-CTR`...
    pub method: &'a str,
    /// Where the key is (absent for some DRM key formats).
    pub uri: Option<&'a str>,
    /// The hex digits of an explicit `IV` (written `0x...`); without it the segment's
    /// media sequence number is the IV (RFC 8216 §5.2).
    pub iv: Option<&'a str>,
    /// `KEYFORMAT` as written.
    pub key_format: Option<&'a str>,
    /// `KEYFORMATVERSIONS` as written.
    pub key_format_versions: Option<&'a str>,
}

impl Key<'_> {
    /// Whole segments encrypted with AES-128 (RFC 8216 §5.2): their bytes
    /// cannot be inspected, unlike `SAMPLE-AES`, which keeps the container.
    pub fn encrypts_whole_segments(&self) -> bool {
        self.method == "AES-128"
    }
}

/// A sub-range of a resource: `length` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Bytes in the range.
    pub length: u64,
    /// First byte; continues the previous range when the tag omits it.
    pub offset: u64,
}

/// Why a text is no media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// It lists variants: a master playlist.
    #[error("a master playlist, not a media playlist")]
    Master,
}

/// Reads the media playlist `text` (complete, already known to be a
/// playlist by [`super::is_playlist`]).
pub fn parse(text: &str) -> Result<MediaPlaylist<'_>, MediaError> {
    let mut summarizer = Summarizer::default();
    let mut playlist = MediaPlaylist {
        target_duration: None,
        media_sequence: 0,
        discontinuity_sequence: 0,
        stream_type: StreamType::Unknown,
        segments: Vec::new(),
    };
    let mut duration = 0.0;
    let mut discontinuity = false;
    let mut key = None;
    let mut map = None;
    let mut byte_range = None;
    let mut program_date_time = None;
    let mut next_offset = 0;
    for (_, content, _) in Lines::new(text) {
        let line = Line::parse(content);
        summarizer.line(&line);
        match line {
            Line::Uri { uri, .. } => {
                playlist.segments.push(Segment {
                    uri,
                    duration: std::mem::take(&mut duration),
                    discontinuity: std::mem::take(&mut discontinuity),
                    key,
                    map,
                    byte_range: byte_range.take(),
                    program_date_time: program_date_time.take(),
                });
            }
            Line::Tag { name, value } => match name {
                "EXTINF" => {
                    let seconds = value.split(',').next().unwrap_or_default().trim_ascii();
                    duration = seconds
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite())
                        .unwrap_or(0.0);
                }
                "EXT-X-MEDIA-SEQUENCE" => playlist.media_sequence = integer(value),
                "EXT-X-DISCONTINUITY-SEQUENCE" => playlist.discontinuity_sequence = integer(value),
                "EXT-X-DISCONTINUITY" => discontinuity = true,
                "EXT-X-KEY" => {
                    let attributes = AttributeList(value);
                    key = attributes
                        .get("METHOD")
                        .and_then(|method| method.enumerated())
                        .filter(|method| *method != "NONE")
                        .map(|method| Key {
                            method,
                            uri: attributes.get("URI").and_then(|uri| uri.quoted()),
                            iv: attributes.get("IV").and_then(|iv| iv.hexadecimal()),
                            key_format: attributes.get("KEYFORMAT").and_then(|f| f.quoted()),
                            key_format_versions: attributes.get("KEYFORMATVERSIONS").and_then(|v| v.quoted()),
                        });
                }
                "EXT-X-MAP" => {
                    let attributes = AttributeList(value);
                    map = attributes.get("URI").and_then(|uri| uri.quoted()).map(|uri| Map {
                        uri,
                        byte_range: attributes.get("BYTERANGE").and_then(|range| range.quoted()),
                    });
                }
                "EXT-X-PROGRAM-DATE-TIME" => program_date_time = Some(value.trim_ascii()),
                "EXT-X-BYTERANGE" => {
                    let (length, offset) = match value.trim_ascii().split_once('@') {
                        Some((length, offset)) => (length.parse().ok(), offset.parse().ok()),
                        None => (value.trim_ascii().parse().ok(), Some(next_offset)),
                    };
                    byte_range = length.map(|length| ByteRange {
                        length,
                        offset: offset.unwrap_or(next_offset),
                    });
                    if let Some(range) = byte_range {
                        next_offset = range.offset.saturating_add(range.length);
                    }
                }
                _ => {}
            },
            Line::Other => {}
        }
    }
    let summary = summarizer.finish_media().ok_or(MediaError::Master)?;
    playlist.target_duration = summary.target_duration;
    playlist.stream_type = summary.stream_type;
    Ok(playlist)
}

/// A decimal-integer tag value; 0 when unreadable (the RFC default).
fn integer(value: &str) -> u64 {
    value.trim_ascii().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIVE: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1200
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k1\",IV=0x01
#EXTINF:6.006,
seg1200.m4s
#EXT-X-KEY:METHOD=NONE
#EXT-X-PROGRAM-DATE-TIME:2026-03-08T05:00:06.006Z
#EXTINF:5.5,title, with comma
seg1201.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init2.mp4\",BYTERANGE=\"720@0\"
#EXT-X-BYTERANGE:1000@500
#EXTINF:6,
big.ts
#EXT-X-BYTERANGE:200
#EXTINF:x,
big.ts
";

    #[test]
    fn segments_carry_what_applies_to_them() {
        let playlist = parse(LIVE).expect("media");
        assert_eq!(playlist.target_duration, Some(6.0));
        assert_eq!(playlist.media_sequence, 1200);
        assert_eq!(playlist.discontinuity_sequence, 3);
        assert_eq!(playlist.stream_type, StreamType::Live);
        let uris: Vec<&str> = playlist.segments.iter().map(|s| s.uri).collect();
        assert_eq!(uris, ["seg1200.m4s", "seg1201.m4s", "big.ts", "big.ts"]);
        let [first, second, third, fourth] = &playlist.segments[..] else {
            panic!("four segments");
        };
        assert_eq!(first.duration, 6.006);
        assert_eq!(
            first.key,
            Some(Key {
                method: "AES-128",
                uri: Some("https://keys.example/k1"),
                iv: Some("01"),
                key_format: None,
                key_format_versions: None,
            })
        );
        assert!(first.key.is_some_and(|k| k.encrypts_whole_segments()));
        assert_eq!(first.map.map(|m| m.uri), Some("init.mp4"));
        assert_eq!(second.key, None, "METHOD=NONE ends encryption");
        assert_eq!(second.duration, 5.5);
        assert_eq!(first.program_date_time, None);
        assert_eq!(second.program_date_time, Some("2026-03-08T05:00:06.006Z"));
        assert_eq!(third.program_date_time, None, "a date applies to one segment");
        assert!(!second.discontinuity);
        assert!(third.discontinuity);
        assert_eq!(
            third.map,
            Some(Map {
                uri: "init2.mp4",
                byte_range: Some("720@0")
            })
        );
        assert_eq!(
            third.byte_range,
            Some(ByteRange {
                length: 1000,
                offset: 500
            })
        );
        assert_eq!(
            fourth.byte_range,
            Some(ByteRange {
                length: 200,
                offset: 1500
            })
        );
        assert_eq!(fourth.duration, 0.0, "an unreadable duration costs only itself");
    }

    #[test]
    fn ended_and_declared_playlists_are_vod_or_event() {
        let vod = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(parse(vod).expect("media").stream_type, StreamType::Vod);
        let event = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4,\na.ts\n";
        assert_eq!(parse(event).expect("media").stream_type, StreamType::Event);
    }

    #[test]
    fn a_playlist_without_segments_is_still_live_or_vod_by_the_one_rule() {
        assert_eq!(parse("#EXTM3U\n").expect("media").stream_type, StreamType::Live);
        let ended = parse("#EXTM3U\n#EXT-X-ENDLIST\n").expect("media");
        assert_eq!(ended.stream_type, StreamType::Vod);
        assert!(ended.segments.is_empty());
    }

    #[test]
    fn a_master_playlist_is_refused() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n";
        assert_eq!(parse(master), Err(MediaError::Master));
    }

    #[test]
    fn a_bom_and_crlf_do_not_hide_tags() {
        let text = "\u{feff}#EXTM3U\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n#EXTINF:2,\r\na.ts\r\n";
        let playlist = parse(text).expect("media");
        assert_eq!(playlist.media_sequence, 7);
        assert_eq!(playlist.segments[0].uri, "a.ts");
        assert_eq!(playlist.segments[0].duration, 2.0);
    }

    fn well_formed() -> impl Strategy<Value = (u64, u64, Vec<(u32, String)>, bool)> {
        (
            1u64..30,
            0u64..1_000_000,
            prop::collection::vec((1u32..20_000, "[a-z0-9_]{1,12}\\.(ts|m4s|aac)"), 1..20),
            any::<bool>(),
        )
    }

    proptest! {
        /// On playlists m3u8-rs reads, both readers see the same segments.
        #[test]
        fn agrees_with_m3u8_rs_on_well_formed_playlists((target, sequence, segments, ended) in well_formed()) {
            let mut text = format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{sequence}\n");
            for (millis, uri) in &segments {
                text.push_str(&format!("#EXTINF:{}.{:03},\n{uri}\n", millis / 1000, millis % 1000));
            }
            if ended {
                text.push_str("#EXT-X-ENDLIST\n");
            }
            let ours = parse(&text).expect("media");
            let theirs = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("m3u8-rs parses it");
            prop_assert_eq!(ours.media_sequence, theirs.media_sequence);
            prop_assert_eq!(ours.target_duration, Some(theirs.target_duration as f64));
            prop_assert_eq!(ours.stream_type == StreamType::Vod, theirs.end_list);
            prop_assert_eq!(ours.segments.len(), theirs.segments.len());
            for (a, b) in ours.segments.iter().zip(&theirs.segments) {
                prop_assert_eq!(a.uri, b.uri.as_str());
                prop_assert!((a.duration - f64::from(b.duration)).abs() < 1e-3);
            }
        }

        #[test]
        fn any_text_reads_without_panicking_and_segments_are_uri_lines(text in any::<String>()) {
            if let Ok(playlist) = parse(&text) {
                prop_assert!(playlist.segments.len() <= text.lines().count());
                for segment in &playlist.segments {
                    prop_assert!(!segment.uri.is_empty() && !segment.uri.starts_with('#'));
                }
            }
        }
    }
}
