//! Small, allocation-free readers of HLS playlist text (RFC 8216 attribute
//! lists and tag lines), shared by the health checker and the proxy. They
//! work on truncated and non-UTF-8 input, which m3u8-rs rejects.

use crate::model::{PlaylistKind, StreamType};

/// Iterates the `NAME=value` pairs of an attribute list, keeping quoted
/// values whole (commas inside quotes do not split) and without their quotes.
pub fn attributes(list: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([',', ' ', '\t']);
            if rest.is_empty() {
                return None;
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim();
            let after = &rest[eq + 1..];
            let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => (quoted, ""),
                }
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            };
            rest = remainder;
            if !name.is_empty() {
                return Some((name, value));
            }
        }
    })
}

/// What a health check learns from the head of a playlist body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistSummary {
    /// The body contains `#EXTM3U`.
    pub is_hls: bool,
    /// Highest `BANDWIDTH` of `#EXT-X-STREAM-INF` lines, 0 if none.
    pub max_bandwidth: u64,
    /// Master when it lists variants, media when it lists segments.
    pub kind: Option<PlaylistKind>,
    /// Live, event or VOD where the text tells; unknown otherwise.
    pub stream_type: StreamType,
}

/// The `BANDWIDTH` of an `#EXT-X-STREAM-INF` attribute list; 0 when it is
/// missing or not a number (such a variant is still listed).
pub fn stream_inf_bandwidth(list: &str) -> u64 {
    attributes(list)
        .find(|(name, _)| *name == "BANDWIDTH")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// Summarises `body`. When `complete` is false the body was cut at a byte
/// limit: its last, unterminated line is ignored (a cut `BANDWIDTH=12` would
/// lie) and a missing `#EXT-X-ENDLIST` proves nothing.
pub fn summarize(body: &[u8], complete: bool) -> PlaylistSummary {
    let is_hls = memmem(body, b"#EXTM3U");
    let mut max_bandwidth = 0;
    let mut has_variants = false;
    let mut has_segments = false;
    let mut ended = false;
    let mut playlist_type: Option<StreamType> = None;

    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last = lines.peek().is_none();
        if is_last && !complete {
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(list) = line.strip_prefix(b"#EXT-X-STREAM-INF:") {
            has_variants = true;
            max_bandwidth = max_bandwidth.max(stream_inf_bandwidth(&String::from_utf8_lossy(list)));
        } else if line.starts_with(b"#EXTINF:") || line.starts_with(b"#EXT-X-TARGETDURATION:") {
            has_segments = true;
        } else if line.starts_with(b"#EXT-X-ENDLIST") {
            ended = true;
        } else if let Some(kind) = line.strip_prefix(b"#EXT-X-PLAYLIST-TYPE:") {
            playlist_type = match kind.trim_ascii() {
                b"VOD" => Some(StreamType::Vod),
                b"EVENT" => Some(StreamType::Event),
                _ => playlist_type,
            };
        }
    }

    let kind = if has_variants {
        Some(PlaylistKind::Master)
    } else if has_segments {
        Some(PlaylistKind::Media)
    } else {
        None
    };
    let stream_type = match kind {
        Some(PlaylistKind::Media) if ended => StreamType::Vod,
        Some(PlaylistKind::Media) => match playlist_type {
            Some(declared) => declared,
            None if complete => StreamType::Live,
            None => StreamType::Unknown,
        },
        _ => StreamType::Unknown,
    };
    PlaylistSummary {
        is_hls,
        max_bandwidth,
        kind,
        stream_type,
    }
}

/// The `#EXT-X-TARGETDURATION` of a media playlist, in seconds.
pub fn target_duration(playlist: &str) -> Option<f64> {
    playlist.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix("#EXT-X-TARGETDURATION:")
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
    })
}

/// Whether `body` is a playlist a player accepts: `#EXTM3U` first, after
/// an optional UTF-8 BOM, ending its line.
pub fn is_playlist(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.strip_prefix(b"#EXTM3U")
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'\r' | b'\n' | b' ' | b'\t')))
}

fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_inf_bandwidth_reads_bandwidth_only_and_zero_when_unusable() {
        assert_eq!(
            stream_inf_bandwidth("AVERAGE-BANDWIDTH=9000000,BANDWIDTH=800000"),
            800_000
        );
        assert_eq!(stream_inf_bandwidth(r#"CODECS="a,BANDWIDTH=5",BANDWIDTH=7"#), 7);
        assert_eq!(stream_inf_bandwidth("RESOLUTION=1280x720"), 0);
        assert_eq!(stream_inf_bandwidth("BANDWIDTH=12x"), 0);
        assert_eq!(stream_inf_bandwidth(""), 0);
    }

    #[test]
    fn attributes_keep_quoted_commas_and_strip_quotes() {
        let pairs: Vec<_> =
            attributes(r#"BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720"#).collect();
        assert_eq!(
            pairs,
            [
                ("BANDWIDTH", "1280000"),
                ("CODECS", "avc1.4d401f,mp4a.40.2"),
                ("RESOLUTION", "1280x720")
            ]
        );
    }

    #[test]
    fn master_playlist_reports_highest_bandwidth_not_average() {
        let body = b"#EXTM3U\n\
            #EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=9000000,BANDWIDTH=800000\nlow.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000,CODECS=\"a,b\"\nhigh.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2000000\nmid.m3u8\n";
        let summary = summarize(body, true);
        assert!(summary.is_hls);
        assert_eq!(summary.max_bandwidth, 5_000_000);
        assert_eq!(summary.kind, Some(PlaylistKind::Master));
        assert_eq!(summary.stream_type, StreamType::Unknown);
    }

    #[test]
    fn truncated_last_line_is_ignored() {
        // `BANDWIDTH=9000000` cut after its fourth zero: read whole it
        // would claim 900000, more than the real variant.
        let body =
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=900000";
        assert_eq!(summarize(body, false).max_bandwidth, 800_000);
        assert_eq!(
            summarize(body, true).max_bandwidth,
            900_000,
            "a complete body keeps its last line"
        );
    }

    #[test]
    fn media_playlist_type_is_live_vod_or_event() {
        let live = b"#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:6,\r\na.ts\r\n";
        assert_eq!(summarize(live, true).stream_type, StreamType::Live);
        assert_eq!(summarize(live, false).stream_type, StreamType::Unknown);
        let vod = b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(summarize(vod, true).stream_type, StreamType::Vod);
        let declared = b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na";
        assert_eq!(summarize(declared, false).stream_type, StreamType::Vod);
        let event = b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:6,\na.ts\n";
        assert_eq!(summarize(event, true).stream_type, StreamType::Event);
        assert_eq!(summarize(event, true).kind, Some(PlaylistKind::Media));
    }

    #[test]
    fn playlists_may_start_with_a_bom_but_nothing_else() {
        assert!(is_playlist(b"#EXTM3U\n"));
        assert!(is_playlist(b"\xEF\xBB\xBF#EXTM3U\r\n"));
        assert!(!is_playlist(b" \r\n#EXTM3U\n"));
        assert!(!is_playlist(b"<html>#EXTM3U"));
    }

    #[test]
    fn target_duration_is_read_from_its_tag() {
        assert_eq!(target_duration("#EXTM3U\n#EXT-X-TARGETDURATION:6\n"), Some(6.0));
        assert_eq!(target_duration("#EXTM3U\n#EXT-X-TARGETDURATION:x\n"), None);
        assert_eq!(target_duration("#EXTM3U\n"), None);
    }

    #[test]
    fn html_is_not_hls() {
        let summary = summarize(b"<html><body>Not found</body></html>", true);
        assert!(!summary.is_hls);
        assert_eq!(summary.kind, None);
    }
}
