//! A corpus of HLS streams shaped the way origins really serve them, each
//! with the verdict the deep health check must reach: healthy, or unhealthy
//! with an error kind and, where it names what was found, the exact message.
//!
//! A case is a set of origin routes under its own path prefix (`/<slug>/`),
//! so every case can share one origin, plus the entry playlist. Playlists
//! refer to their resources with relative URIs only, so a case works under
//! any prefix. Media bytes are built here, not canned: MPEG-TS packets with
//! PAT/PMT/PES, ISO BMFF init sections and fragments, ADTS AAC frames,
//! ID3-tagged packed audio, WebVTT, and AES-128 ciphertext-shaped noise.
//!
//! Every case is whole: a healthy one serves every URI its playlists name,
//! so "every URI answers" holds for a player walking all of it. Partial
//! streams (a master with one broken variant, which players survive by level
//! failover) are not here: they are healthy to the checker while some URI
//! fails, and `tests/deep_health.rs` covers them.
#![allow(dead_code)]

use f1_stream::health::NOT_HLS_MESSAGE;
use f1_stream::model::ErrorKind;

use crate::common::{FakeOrigin, Reply};

/// The Referer the extractor sends; gated routes answer 403 without it.
pub const REFERER: &str = "https://f1.example/";

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const TS_TYPE: &str = "video/mp2t";
const MP4_TYPE: &str = "video/mp4";

/// What the origin answers on one path of a case.
#[derive(Clone, Debug)]
pub struct Served {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    /// Answered only when the request carries the extractor's [`REFERER`].
    pub gated: bool,
}

impl Served {
    /// 200 with `text` as an HLS playlist.
    pub fn playlist(text: impl Into<String>) -> Self {
        Self::bytes(Some(PLAYLIST_TYPE), text.into().into_bytes())
    }

    /// 200 with `body` under `content_type`.
    pub fn bytes(content_type: Option<&'static str>, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
            gated: false,
        }
    }

    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::bytes(None, Vec::new())
        }
    }

    /// Only answered with the extractor's Referer.
    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    /// The fake origin's answer.
    pub fn reply(&self) -> Reply {
        let mut reply = Reply::bytes(self.body.clone()).with_status(self.status);
        if let Some(content_type) = self.content_type {
            reply = reply.header("content-type", content_type);
        }
        if self.gated {
            reply = reply.require_header("referer", REFERER);
        }
        reply
    }
}

/// The verdict a case must get.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Healthy,
    Unhealthy {
        kind: ErrorKind,
        /// The exact `error`, when it names what was found.
        message: Option<String>,
    },
}

impl Verdict {
    fn unhealthy(kind: ErrorKind, message: &str) -> Self {
        Self::Unhealthy {
            kind,
            message: Some(message.to_owned()),
        }
    }

    fn not_hls() -> Self {
        Self::unhealthy(ErrorKind::NotHls, NOT_HLS_MESSAGE)
    }

    fn segment(message: &str) -> Self {
        Self::unhealthy(ErrorKind::Segment, message)
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }

    /// Why an observed verdict (`is_live`, `error_kind` by its API name,
    /// `error`) is not this one; `None` when it is.
    pub fn mismatch(&self, is_live: bool, error_kind: Option<&str>, error: Option<&str>) -> Option<String> {
        let observed = format!("is_live={is_live} error_kind={error_kind:?} error={error:?}");
        let matches = match self {
            Self::Healthy => is_live && error_kind.is_none() && error.is_none(),
            Self::Unhealthy { kind, message } => {
                !is_live
                    && error_kind == Some(kind.as_str())
                    && message.as_deref().is_none_or(|message| error == Some(message))
            }
        };
        (!matches).then(|| format!("expected {self:?}, got {observed}"))
    }
}

/// One stream of the corpus.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    /// The case's path prefix on the origin: `/<slug>/...`.
    pub slug: &'static str,
    /// The stream's playlist, relative to the prefix.
    pub entry: &'static str,
    /// Paths relative to the prefix and what they answer.
    pub routes: Vec<(String, Served)>,
    pub verdict: Verdict,
}

impl Case {
    /// The origin path of `relative` in this case.
    pub fn path(&self, relative: &str) -> String {
        format!("/{}/{relative}", self.slug)
    }

    /// Routes every path of the case on `origin`.
    pub fn serve(&self, origin: &FakeOrigin) {
        for (relative, served) in &self.routes {
            origin.route(&self.path(relative), served.reply());
        }
    }

    /// The stream's URL on `origin`.
    pub fn entry_url(&self, origin: &FakeOrigin) -> String {
        origin.url(&self.path(self.entry))
    }

    /// What the case serves at origin path `path`, if anything.
    pub fn served_at(&self, path: &str) -> Option<&Served> {
        let relative = path.strip_prefix(&format!("/{}/", self.slug))?;
        self.routes.iter().find(|(p, _)| p == relative).map(|(_, s)| s)
    }
}

fn case(name: &'static str, slug: &'static str, entry: &'static str, verdict: Verdict) -> Case {
    Case {
        name,
        slug,
        entry,
        routes: Vec::new(),
        verdict,
    }
}

impl Case {
    fn at(mut self, relative: impl Into<String>, served: Served) -> Self {
        self.routes.push((relative.into(), served));
        self
    }

    /// `names` each answering [`HTML_ERROR`] padded to `len` bytes.
    fn html_segments(mut self, names: &[&str], len: usize) -> Self {
        let mut page = HTML_ERROR.as_bytes().to_vec();
        page.resize(len, b'\n');
        for name in names {
            self.routes.retain(|(path, _)| path != name);
            self = self.at(*name, Served::bytes(Some("text/html"), page.clone()));
        }
        self
    }

    /// `names` each answering a fresh MPEG-TS segment.
    fn ts_segments(self, names: &[&str]) -> Self {
        names.iter().enumerate().fold(self, |case, (i, name)| {
            case.at(*name, Served::bytes(Some(TS_TYPE), mpeg_ts(i as u64 + 1, 80)))
        })
    }
}

// ---------------------------------------------------------------------------
// Playlists.

/// A live media playlist of `segments`, `line_end` between lines.
fn live_media(segments: &[&str], line_end: &str) -> String {
    let mut lines = vec![
        "#EXTM3U".to_owned(),
        "#EXT-X-VERSION:3".to_owned(),
        "#EXT-X-TARGETDURATION:6".to_owned(),
        "#EXT-X-MEDIA-SEQUENCE:1042".to_owned(),
    ];
    for segment in segments {
        lines.push("#EXTINF:6.006,".to_owned());
        lines.push((*segment).to_owned());
    }
    lines.iter().map(|l| format!("{l}{line_end}")).collect()
}

fn lf_media(segments: &[&str]) -> String {
    live_media(segments, "\n")
}

const TS_SEGMENTS: [&str; 3] = ["seg1042.ts", "seg1043.ts", "seg1044.ts"];

/// A master with two TS variants in folders `720p/` and `1080p/`.
fn two_variant_master(line_end: &str) -> String {
    [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2800000,RESOLUTION=1280x720,\
         FRAME-RATE=50.000,CODECS=\"avc1.64001f,mp4a.40.2\"",
        "720p/index.m3u8",
        "#EXT-X-STREAM-INF:BANDWIDTH=6000000,AVERAGE-BANDWIDTH=5600000,RESOLUTION=1920x1080,\
         FRAME-RATE=50.000,CODECS=\"avc1.640028,mp4a.40.2\"",
        "1080p/index.m3u8",
    ]
    .iter()
    .map(|l| format!("{l}{line_end}"))
    .collect()
}

/// `case` with both variants of [`two_variant_master`] and their segments.
fn with_two_variants(mut case: Case, line_end: &str) -> Case {
    case = case.at("master.m3u8", Served::playlist(two_variant_master(line_end)));
    for folder in ["720p", "1080p"] {
        let names: Vec<String> = TS_SEGMENTS.iter().map(|s| format!("{folder}/{s}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        case = case
            .at(
                format!("{folder}/index.m3u8"),
                Served::playlist(live_media(&TS_SEGMENTS, line_end)),
            )
            .ts_segments(&names);
    }
    case
}

/// A TS media playlist whose every segment answers `segment`.
fn media_with_segments(case: Case, segment: &Served) -> Case {
    TS_SEGMENTS.iter().fold(
        case.at("index.m3u8", Served::playlist(lf_media(&TS_SEGMENTS))),
        |case, name| case.at(*name, segment.clone()),
    )
}

/// An AES-128 media playlist: `key.bin` and three segments answering what
/// is given.
fn aes_media(case: Case, key: Served, segment_len: usize) -> Case {
    let text = "#EXTM3U\n\
        #EXT-X-VERSION:3\n\
        #EXT-X-TARGETDURATION:6\n\
        #EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x0000000000000000000000000000A0B1\n\
        #EXTINF:6.0,\nenc7.ts\n\
        #EXTINF:6.0,\nenc8.ts\n\
        #EXTINF:6.0,\nenc9.ts\n";
    ["enc7.ts", "enc8.ts", "enc9.ts"].iter().enumerate().fold(
        case.at("index.m3u8", Served::playlist(text)).at("key.bin", key),
        |case, (i, name)| {
            case.at(
                *name,
                Served::bytes(Some(TS_TYPE), noise(0xAE5 + i as u64, segment_len)),
            )
        },
    )
}

/// An fMP4 media playlist with init section `init.mp4` answering `init`.
fn fmp4_media(case: Case, init: Served) -> Case {
    let text = "#EXTM3U\n\
        #EXT-X-VERSION:7\n\
        #EXT-X-TARGETDURATION:4\n\
        #EXT-X-MEDIA-SEQUENCE:300\n\
        #EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXTINF:4.000,\nfrag300.m4s\n\
        #EXTINF:4.000,\nfrag301.m4s\n\
        #EXTINF:4.000,\nfrag302.m4s\n";
    ["frag300.m4s", "frag301.m4s", "frag302.m4s"]
        .iter()
        .enumerate()
        .fold(
            case.at("index.m3u8", Served::playlist(text)).at("init.mp4", init),
            |case, (i, name)| {
                case.at(
                    *name,
                    Served::bytes(Some(MP4_TYPE), fmp4_fragment(300 + i as u32, 6000)),
                )
            },
        )
}

const HTML_ERROR: &str = "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\
    <body><h1>Token expired</h1><p>Please reload the page.</p></body></html>\n";

/// The corpus.
pub fn cases() -> Vec<Case> {
    let ts = |seed| Served::bytes(Some(TS_TYPE), mpeg_ts(seed, 80));
    vec![
        with_two_variants(
            case(
                "master, media and TS segments",
                "master-ts",
                "master.m3u8",
                Verdict::Healthy,
            ),
            "\n",
        ),
        with_two_variants(
            case(
                "CRLF line endings throughout",
                "crlf",
                "master.m3u8",
                Verdict::Healthy,
            ),
            "\r\n",
        ),
        case("a BOM before #EXTM3U", "bom", "index.m3u8", Verdict::Healthy)
            .at(
                "index.m3u8",
                Served::playlist(format!("\u{feff}{}", lf_media(&TS_SEGMENTS))),
            )
            .ts_segments(&TS_SEGMENTS),
        case(
            "a blank line before #EXTM3U",
            "blank-line",
            "index.m3u8",
            Verdict::not_hls(),
        )
        .at(
            "index.m3u8",
            Served::playlist(format!("\n{}", lf_media(&TS_SEGMENTS))),
        )
        .ts_segments(&TS_SEGMENTS),
        // The regression: a reader that looked for #EXTM3U anywhere in the
        // first lines called this healthy while the proxy answered 502.
        with_two_variants(
            case(
                "a line of text before #EXTM3U in a master",
                "preamble",
                "preamble.m3u8",
                Verdict::not_hls(),
            ),
            "\n",
        )
        .at(
            "preamble.m3u8",
            Served::playlist(format!("Welcome to the F1 stream!\n{}", two_variant_master("\n"))),
        ),
        // The same one level down: the master is a playlist, its variants
        // are not.
        case(
            "a master whose variants have text before #EXTM3U",
            "variant-preamble",
            "master.m3u8",
            Verdict::unhealthy(
                ErrorKind::Variant,
                &format!("every variant tried failed: {NOT_HLS_MESSAGE}"),
            ),
        )
        .at("master.m3u8", Served::playlist(two_variant_master("\n")))
        .at(
            "720p/index.m3u8",
            Served::playlist(format!("<!-- cache: HIT -->\n{}", lf_media(&TS_SEGMENTS))),
        )
        .at(
            "1080p/index.m3u8",
            Served::playlist(format!("<!-- cache: HIT -->\n{}", lf_media(&TS_SEGMENTS))),
        )
        .ts_segments(&["720p/seg1043.ts", "1080p/seg1043.ts"]),
        case(
            "a lower-case #extm3u",
            "lower-case",
            "index.m3u8",
            Verdict::not_hls(),
        )
        .at(
            "index.m3u8",
            Served::playlist(lf_media(&TS_SEGMENTS).replacen("#EXTM3U", "#extm3u", 1)),
        )
        .ts_segments(&TS_SEGMENTS),
        case(
            "an HTML page containing #EXTM3U",
            "html",
            "index.m3u8",
            Verdict::not_hls(),
        )
        .at(
            "index.m3u8",
            Served::bytes(
                Some("text/html; charset=utf-8"),
                format!(
                    "<!DOCTYPE html>\n<html><body><pre>{}</pre></body></html>\n",
                    lf_media(&TS_SEGMENTS)
                )
                .into_bytes(),
            ),
        )
        .ts_segments(&TS_SEGMENTS),
        case("a JSON document", "json", "index.m3u8", Verdict::not_hls()).at(
            "index.m3u8",
            Served::bytes(
                Some("application/json"),
                br##"{"error":"stream offline","hint":"playlists start with #EXTM3U"}"##.to_vec(),
            ),
        ),
        case("an empty body", "empty", "index.m3u8", Verdict::not_hls())
            .at("index.m3u8", Served::bytes(Some(PLAYLIST_TYPE), Vec::new())),
        case(
            "a master whose variants are all missing",
            "no-variants",
            "master.m3u8",
            Verdict::unhealthy(ErrorKind::Variant, "every variant tried failed: HTTP 404"),
        )
        .at("master.m3u8", Served::playlist(two_variant_master("\n")))
        .at("720p/index.m3u8", Served::status(404))
        .at("1080p/index.m3u8", Served::status(404)),
        fmp4_media(
            case(
                "fMP4 with EXT-X-MAP and fragments",
                "fmp4",
                "index.m3u8",
                Verdict::Healthy,
            ),
            Served::bytes(Some(MP4_TYPE), fmp4_init()),
        ),
        fmp4_media(
            case(
                "an fMP4 init section that is an HTML page",
                "fmp4-html-init",
                "index.m3u8",
                Verdict::segment("init section: segment is an HTML page"),
            ),
            Served::bytes(Some("text/html"), HTML_ERROR.as_bytes().to_vec()),
        ),
        audio_media(
            case("ADTS AAC audio only", "adts", "audio.m3u8", Verdict::Healthy),
            |seed| adts_frames(seed, 40),
        ),
        audio_media(
            case(
                "ID3-tagged AAC packed audio",
                "id3-aac",
                "audio.m3u8",
                Verdict::Healthy,
            ),
            |seed| [id3_timestamp(seed * 540_000), adts_frames(seed, 40)].concat(),
        ),
        case("WebVTT subtitles", "webvtt", "subs.m3u8", Verdict::Healthy)
            .at(
                "subs.m3u8",
                Served::playlist(
                    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                     #EXTINF:6.0,\nsub0.vtt\n#EXTINF:6.0,\nsub1.vtt\n#EXTINF:6.0,\nsub2.vtt\n\
                     #EXT-X-ENDLIST\n",
                ),
            )
            .at("sub0.vtt", Served::bytes(Some("text/vtt"), webvtt(0)))
            .at("sub1.vtt", Served::bytes(Some("text/vtt"), webvtt(6)))
            .at("sub2.vtt", Served::bytes(Some("text/vtt"), webvtt(12))),
        media_with_segments(
            case(
                "segments answered 200 with an HTML page",
                "seg-html",
                "index.m3u8",
                Verdict::segment("segment is an HTML page"),
            ),
            &Served::bytes(Some("text/html"), HTML_ERROR.as_bytes().to_vec()),
        ),
        media_with_segments(
            case(
                "segments answered with a JSON error",
                "seg-json",
                "index.m3u8",
                Verdict::segment("segment is a JSON document"),
            ),
            &Served::bytes(
                Some("application/json"),
                br#"{"error":{"code":403,"message":"token expired"}}"#.to_vec(),
            ),
        ),
        media_with_segments(
            case(
                "segments answered 200 with an empty body",
                "seg-empty",
                "index.m3u8",
                Verdict::segment("segment is empty"),
            ),
            &Served::bytes(Some(TS_TYPE), Vec::new()),
        ),
        media_with_segments(
            case(
                "segments of plain text under content-type video/mp2t",
                "seg-text",
                "index.m3u8",
                Verdict::segment("segment is text, not media"),
            ),
            &Served::bytes(
                Some(TS_TYPE),
                b"Access denied: this link has expired.\r\nVisit https://f1.example/ for a new one.\r\n"
                    .to_vec(),
            ),
        ),
        media_with_segments(
            case(
                "segments that are playlists",
                "seg-playlist",
                "index.m3u8",
                Verdict::segment("segment is a playlist, not media"),
            ),
            &Served::playlist(lf_media(&TS_SEGMENTS)),
        ),
        media_with_segments(
            case(
                "MPEG-TS that loses sync after the first packet",
                "seg-desync",
                "index.m3u8",
                Verdict::segment("segment is not a known media format"),
            ),
            &Served::bytes(Some(TS_TYPE), {
                let mut bytes = mpeg_ts(9, 80);
                bytes.drain(TS_PACKET..TS_PACKET + 5);
                bytes
            }),
        ),
        aes_media(
            case(
                "AES-128 with a reachable 16-byte key",
                "aes",
                "index.m3u8",
                Verdict::Healthy,
            ),
            Served::bytes(Some("application/octet-stream"), noise(0x6B, 16)).gated(),
            AES_SEGMENT_BYTES,
        ),
        aes_media(
            case(
                "AES-128 whose key answers 404",
                "aes-key-404",
                "index.m3u8",
                Verdict::segment("AES-128 key: HTTP 404"),
            ),
            Served::status(404),
            AES_SEGMENT_BYTES,
        ),
        aes_media(
            case(
                "AES-128 whose key is 20 bytes",
                "aes-key-20",
                "index.m3u8",
                Verdict::segment("AES-128 key is 20 bytes, not 16"),
            ),
            Served::bytes(Some("application/octet-stream"), noise(0x6C, 20)),
            AES_SEGMENT_BYTES,
        ),
        aes_media(
            case(
                "AES-128 whose key answers a large HTML page",
                "aes-key-html",
                "index.m3u8",
                Verdict::segment("AES-128 key is more than 4096 bytes, not 16"),
            ),
            Served::bytes(Some("text/html"), {
                let mut page = HTML_ERROR.as_bytes().to_vec();
                page.resize(6000, b' ');
                page
            }),
            AES_SEGMENT_BYTES,
        ),
        aes_media(
            case(
                "AES-128 segments that are not whole 16-byte blocks",
                "aes-ragged",
                "index.m3u8",
                Verdict::segment(&format!(
                    "AES-128 segment is {} bytes, not a whole number of 16-byte blocks",
                    AES_SEGMENT_BYTES + 8
                )),
            ),
            Served::bytes(Some("application/octet-stream"), noise(0x6D, 16)),
            AES_SEGMENT_BYTES + 8,
        ),
        aes_media(
            case(
                "AES-128 segments answered with an HTML page of whole blocks",
                "aes-seg-html",
                "index.m3u8",
                Verdict::segment("segment is an HTML page"),
            ),
            Served::bytes(Some("application/octet-stream"), noise(0x6E, 16)),
            AES_SEGMENT_BYTES,
        )
        .html_segments(&["enc7.ts", "enc8.ts", "enc9.ts"], 1024),
        ll_hls(case(
            "LL-HLS with EXT-X-PART and EXT-X-PRELOAD-HINT",
            "ll-hls",
            "index.m3u8",
            Verdict::Healthy,
        )),
        case(
            "a live playlist with EXT-X-KEY:METHOD=NONE",
            "key-none",
            "index.m3u8",
            Verdict::Healthy,
        )
        .at(
            "index.m3u8",
            Served::playlist(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:55\n\
                 #EXT-X-KEY:METHOD=NONE\n\
                 #EXTINF:6.0,\nclear55.ts\n#EXTINF:6.0,\nclear56.ts\n#EXTINF:6.0,\nclear57.ts\n",
            ),
        )
        .at("clear55.ts", ts(55))
        .at("clear56.ts", ts(56))
        .at("clear57.ts", ts(57)),
        renditions(case(
            "a master with audio and subtitle renditions",
            "renditions",
            "master.m3u8",
            Verdict::Healthy,
        )),
        case(
            "a VOD of one TS file addressed by EXT-X-BYTERANGE",
            "byterange",
            "index.m3u8",
            Verdict::Healthy,
        )
        .at(
            "index.m3u8",
            Served::playlist(format!(
                "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                 #EXTINF:6.0,\n#EXT-X-BYTERANGE:{n}@0\nall.ts\n\
                 #EXTINF:6.0,\n#EXT-X-BYTERANGE:{n}\nall.ts\n\
                 #EXTINF:6.0,\n#EXT-X-BYTERANGE:{n}\nall.ts\n#EXT-X-ENDLIST\n",
                n = 80 * TS_PACKET
            )),
        )
        .at(
            "all.ts",
            Served::bytes(
                Some(TS_TYPE),
                [mpeg_ts(1, 78), mpeg_ts(2, 78), mpeg_ts(3, 78)].concat(),
            ),
        ),
    ]
}

/// AES-128 segments in the corpus: 752 blocks of 16 bytes (64 TS packets).
pub const AES_SEGMENT_BYTES: usize = 64 * TS_PACKET;

/// An audio-only media playlist of three `.aac` segments made by `segment`.
fn audio_media(case: Case, segment: fn(u64) -> Vec<u8>) -> Case {
    let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:20\n\
        #EXTINF:5.973,\naudio20.aac\n#EXTINF:5.973,\naudio21.aac\n#EXTINF:5.973,\naudio22.aac\n";
    (20..23).fold(case.at("audio.m3u8", Served::playlist(text)), |case, seed| {
        case.at(
            format!("audio{seed}.aac"),
            Served::bytes(Some("audio/aac"), segment(seed)),
        )
    })
}

/// An LL-HLS live playlist: fMP4, parts of the last segments, a preload
/// hint. The origin serves every part and the hinted one too, as a real
/// origin does once the part exists.
fn ll_hls(case: Case) -> Case {
    let mut text = String::from(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0,CAN-SKIP-UNTIL=24.0\n\
         #EXT-X-PART-INF:PART-TARGET=1.0\n#EXT-X-MEDIA-SEQUENCE:900\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    let mut case = case.at("init.mp4", Served::bytes(Some(MP4_TYPE), fmp4_init()));
    for sequence in 900..903u32 {
        if sequence >= 901 {
            for part in 0..4 {
                let name = format!("s{sequence}.p{part}.m4s");
                let independent = if part == 0 { ",INDEPENDENT=YES" } else { "" };
                text.push_str(&format!("#EXT-X-PART:DURATION=1.0,URI=\"{name}\"{independent}\n"));
                case = case.at(
                    name,
                    Served::bytes(Some(MP4_TYPE), fmp4_fragment(sequence * 4 + part, 1500)),
                );
            }
        }
        let name = format!("s{sequence}.m4s");
        text.push_str(&format!("#EXTINF:4.0,\n{name}\n"));
        case = case.at(name, Served::bytes(Some(MP4_TYPE), fmp4_fragment(sequence, 6000)));
    }
    text.push_str("#EXT-X-PART:DURATION=1.0,URI=\"s903.p0.m4s\",INDEPENDENT=YES\n");
    text.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s903.p1.m4s\"\n");
    for part in 0..2 {
        case = case.at(
            format!("s903.p{part}.m4s"),
            Served::bytes(Some(MP4_TYPE), fmp4_fragment(903 * 4 + part, 1500)),
        );
    }
    case.at("index.m3u8", Served::playlist(text))
}

/// A master with a TS video variant, an alternate ADTS audio rendition and
/// a WebVTT subtitle rendition.
fn renditions(case: Case) -> Case {
    let master = "#EXTM3U\n#EXT-X-VERSION:4\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"Commentary\",LANGUAGE=\"en\",DEFAULT=YES,\
        AUTOSELECT=YES,URI=\"audio/en.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,\
        AUTOSELECT=YES,URI=\"subs/en.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aac\",\
        SUBTITLES=\"subs\"\nvideo/index.m3u8\n";
    let vod = |uri: [&str; 2]| {
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXTINF:6.0,\n{}\n#EXTINF:6.0,\n{}\n#EXT-X-ENDLIST\n",
            uri[0], uri[1]
        )
    };
    case.at("master.m3u8", Served::playlist(master))
        .at("video/index.m3u8", Served::playlist(vod(["v0.ts", "v1.ts"])))
        .ts_segments(&["video/v0.ts", "video/v1.ts"])
        .at("audio/en.m3u8", Served::playlist(vod(["a0.aac", "a1.aac"])))
        .at(
            "audio/a0.aac",
            Served::bytes(Some("audio/aac"), adts_frames(0, 30)),
        )
        .at(
            "audio/a1.aac",
            Served::bytes(Some("audio/aac"), adts_frames(1, 30)),
        )
        .at("subs/en.m3u8", Served::playlist(vod(["t0.vtt", "t1.vtt"])))
        .at("subs/t0.vtt", Served::bytes(Some("text/vtt"), webvtt(0)))
        .at("subs/t1.vtt", Served::bytes(Some("text/vtt"), webvtt(6)))
}

// ---------------------------------------------------------------------------
// Media bytes.

/// Deterministic noise (xorshift64*): payloads and ciphertext.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub const TS_PACKET: usize = 188;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x0100;
const AUDIO_PID: u16 = 0x0101;

/// An MPEG-TS segment: a PAT, a PMT (H.264 + AAC), then `pes_packets`
/// packets of one video PES (start code and PTS, then noise).
pub fn mpeg_ts(seed: u64, pes_packets: usize) -> Vec<u8> {
    let pat = psi(
        0x00,
        0x0001,
        &[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8],
    );
    let mut pmt_body = vec![0xE0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xF0, 0x00];
    for (stream_type, pid) in [(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)] {
        pmt_body.extend_from_slice(&[stream_type, 0xE0 | (pid >> 8) as u8, pid as u8, 0xF0, 0x00]);
    }
    let pmt = psi(0x02, 0x0001, &pmt_body);
    let mut out = Vec::with_capacity((pes_packets + 2) * TS_PACKET);
    out.extend_from_slice(&ts_packet(0x0000, 0, true, &pat));
    out.extend_from_slice(&ts_packet(PMT_PID, 0, true, &pmt));
    let payload = noise(seed, pes_packets * 184);
    for (i, chunk) in payload.chunks(184).enumerate() {
        let mut chunk = chunk.to_vec();
        if i == 0 {
            // PES header: start code, stream id, no length, PTS only.
            let pts = seed.wrapping_mul(540_000) & 0x1_FFFF_FFFF;
            let mut header = vec![0x00, 0x00, 0x01, 0xE0, 0x00, 0x00, 0x80, 0x80, 0x05];
            header.extend_from_slice(&pts_bytes(0x2, pts));
            chunk[..header.len()].copy_from_slice(&header);
        }
        out.extend_from_slice(&ts_packet(VIDEO_PID, i as u8, i == 0, &chunk));
    }
    out
}

fn ts_packet(pid: u16, continuity: u8, unit_start: bool, payload: &[u8]) -> [u8; TS_PACKET] {
    let mut packet = [0xFF; TS_PACKET];
    packet[0] = 0x47;
    packet[1] = (u8::from(unit_start) << 6) | ((pid >> 8) as u8 & 0x1F);
    packet[2] = pid as u8;
    packet[3] = 0x10 | (continuity & 0x0F);
    let n = payload.len().min(TS_PACKET - 4);
    packet[4..4 + n].copy_from_slice(&payload[..n]);
    packet
}

/// A PSI section (PAT or PMT) with its pointer field and CRC.
fn psi(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let section_length = 5 + body.len() + 4;
    let mut section = vec![
        table_id,
        0xB0 | (section_length >> 8) as u8,
        section_length as u8,
        (id >> 8) as u8,
        id as u8,
        0xC1,
        0x00,
        0x00,
    ];
    section.extend_from_slice(body);
    section.extend_from_slice(&crc32_mpeg(&section).to_be_bytes());
    [&[0x00][..], &section].concat()
}

/// CRC-32/MPEG-2 of PSI sections.
fn crc32_mpeg(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A 33-bit PTS in the 5-byte PES form, `prefix` in the top nibble.
fn pts_bytes(prefix: u8, pts: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((pts >> 30) as u8 & 0x07) << 1) | 1,
        (pts >> 22) as u8,
        (((pts >> 15) as u8) << 1) | 1,
        (pts >> 7) as u8,
        ((pts as u8) << 1) | 1,
    ]
}

/// An ISO BMFF box.
pub fn bmff_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let size = u32::try_from(8 + payload.len()).expect("small box");
    [&size.to_be_bytes()[..], kind, payload].concat()
}

/// An ISO BMFF full box (version and flags first).
fn full_box(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let head = ((u32::from(version) << 24) | (flags & 0x00FF_FFFF)).to_be_bytes();
    bmff_box(kind, &[&head[..], payload].concat())
}

/// A CMAF init section: `ftyp`, then `moov` with one video track and `mvex`.
pub fn fmp4_init() -> Vec<u8> {
    let ftyp = bmff_box(b"ftyp", b"iso6\x00\x00\x00\x00iso6cmfcmp41");
    let matrix: Vec<u8> = [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let mvhd = full_box(
        b"mvhd",
        0,
        0,
        &[
            &[0u8; 8][..],                 // creation, modification
            &90_000u32.to_be_bytes(),      // timescale
            &0u32.to_be_bytes(),           // duration
            &0x0001_0000u32.to_be_bytes(), // rate 1.0
            &0x0100u16.to_be_bytes(),      // volume 1.0
            &[0u8; 10],                    // reserved
            &matrix,
            &[0u8; 24], // pre_defined
            &2u32.to_be_bytes(),
        ]
        .concat(),
    );
    let tkhd = full_box(
        b"tkhd",
        0,
        3,
        &[
            &[0u8; 8][..],
            &1u32.to_be_bytes(), // track id
            &[0u8; 4],
            &0u32.to_be_bytes(), // duration
            &[0u8; 16],
            &matrix,
            &(1920u32 << 16).to_be_bytes(),
            &(1080u32 << 16).to_be_bytes(),
        ]
        .concat(),
    );
    let mdhd = full_box(
        b"mdhd",
        0,
        0,
        &[
            &[0u8; 8][..],
            &90_000u32.to_be_bytes(),
            &[0u8; 4],
            &[0x55, 0xC4, 0, 0],
        ]
        .concat(),
    );
    let hdlr = full_box(b"hdlr", 0, 0, b"\0\0\0\0vide\0\0\0\0\0\0\0\0\0\0\0\0Video\0");
    let mdia = bmff_box(b"mdia", &[mdhd, hdlr].concat());
    let trak = bmff_box(b"trak", &[tkhd, mdia].concat());
    let trex = full_box(b"trex", 0, 0, &[1u32, 1, 0, 0, 0].map(u32::to_be_bytes).concat());
    let mvex = bmff_box(b"mvex", &trex);
    [ftyp, bmff_box(b"moov", &[mvhd, trak, mvex].concat())].concat()
}

/// A CMAF fragment: `styp`, `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`,
/// `trun`) and an `mdat` of `mdat_len` noise bytes.
pub fn fmp4_fragment(sequence: u32, mdat_len: usize) -> Vec<u8> {
    let styp = bmff_box(b"styp", b"msdh\x00\x00\x00\x00msdhmsix");
    let mfhd = full_box(b"mfhd", 0, 0, &sequence.to_be_bytes());
    let tfhd = full_box(b"tfhd", 0, 0x02_0000, &1u32.to_be_bytes());
    let tfdt = full_box(b"tfdt", 1, 0, &(u64::from(sequence) * 360_000).to_be_bytes());
    // One sample: data offset (patched below) and size.
    let trun_len = 8 + 4 + 4 + 4 + 4;
    let moof_len = 8 + mfhd.len() + 8 + tfhd.len() + tfdt.len() + trun_len;
    let data_offset = u32::try_from(moof_len + 8).expect("small");
    let sample_size = u32::try_from(mdat_len).expect("small");
    let trun = full_box(
        b"trun",
        0,
        0x0201,
        &[1u32, data_offset, sample_size].map(u32::to_be_bytes).concat(),
    );
    let traf = bmff_box(b"traf", &[tfhd, tfdt, trun].concat());
    let moof = bmff_box(b"moof", &[mfhd, traf].concat());
    assert_eq!(
        moof.len(),
        moof_len,
        "trun data offset points at the mdat payload"
    );
    let mdat = bmff_box(b"mdat", &noise(u64::from(sequence), mdat_len));
    [styp, moof, mdat].concat()
}

/// `count` ADTS frames of AAC-LC, 48 kHz stereo, each with a noise payload.
pub fn adts_frames(seed: u64, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let payload = noise(seed * 1000 + i as u64, 180 + (i * 37) % 200);
        let len = 7 + payload.len();
        out.extend_from_slice(&[
            0xFF,
            0xF1,                // MPEG-4, layer 0, no CRC
            (1 << 6) | (3 << 2), // AAC LC, 48 kHz, channel config high bit 0
            (2 << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            (((len & 0x07) as u8) << 5) | 0x1F,
            0xFC,
        ]);
        out.extend_from_slice(&payload);
    }
    out
}

/// The ID3v2.4 tag HLS packed audio opens with: a `PRIV` frame carrying
/// the MPEG-TS timestamp of the first sample.
pub fn id3_timestamp(pts: u64) -> Vec<u8> {
    let owner = b"com.apple.streaming.transportStreamTimestamp\0";
    let frame_payload = [&owner[..], &(pts & 0x1_FFFF_FFFF).to_be_bytes()].concat();
    let frame = [
        &b"PRIV"[..],
        &syncsafe(frame_payload.len()),
        &[0x00, 0x00],
        &frame_payload,
    ]
    .concat();
    [&b"ID3\x04\x00\x00"[..], &syncsafe(frame.len()), &frame].concat()
}

/// A 28-bit ID3 syncsafe integer.
pub fn syncsafe(n: usize) -> [u8; 4] {
    assert!(n < 1 << 28, "fits 28 bits");
    [
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ]
}

/// A WebVTT subtitle segment starting at `start` seconds, mapped to the
/// MPEG-TS clock as HLS subtitle segments are.
pub fn webvtt(start: u32) -> Vec<u8> {
    format!(
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n\
         00:00:{start:02}.000 --> 00:00:{:02}.500\nLights out and away we go!\n\n\
         00:00:{:02}.000 --> 00:00:{:02}.000\n<v Commentator>Into turn one.\n",
        start + 2,
        start + 3,
        start + 5
    )
    .into_bytes()
}
