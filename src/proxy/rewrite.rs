//! The byte-preserving playlist rewriter: points every URI of an HLS
//! playlist (RFC 8216 and its LL-HLS successor) at the proxy and keeps every
//! other byte (comments, unknown tags, blank lines, CRLF or LF per line, a
//! BOM, a missing final newline). Pure: no I/O.
//!
//! Why hand-written: writing an m3u8-rs parse back drops comments, tags
//! after the last segment (the LL-HLS live edge), reorders attributes and
//! rounds durations. Here a line is copied unless it holds a URI, and then
//! only the URI's bytes change. What a line, a tag, an attribute list and a
//! master playlist are is decided by [`crate::hls`], the reader the health
//! checker uses too; the pass also returns that reader's summary.
//!
//! Rules:
//! - The playlist is classified once, by [`hls::is_multivariant_tag`]:
//!   multivariant if it has any multivariant-only tag, media otherwise. URI lines go to `/proxy` in a
//!   multivariant playlist; in a media playlist to `/relay`, except those
//!   whose path ends in `.m3u8`/`.m3u` (M3U channel lists), which go to
//!   `/proxy`.
//! - Every `URI="..."` attribute of the tags [`hls::uri_target`] names is
//!   rewritten; only the quoted value changes.
//! - `EXT-X-CONTENT-STEERING` lines are removed: a steering server would
//!   send the player around the proxy.
//! - `EXT-X-DEFINE` variables (`NAME`/`VALUE`, and `QUERYPARAM` read from
//!   the playlist URL, which the player never sees) are substituted into
//!   URIs before resolving; `IMPORT`ed ones are unknown here and stay as
//!   written. DEFINE lines are kept, except that a resolved `QUERYPARAM`
//!   becomes `NAME`/`VALUE` (the player's proxy URL has no such parameter,
//!   and a missing one is fatal to it).
//! - Relative references resolve against the playlist's final URL;
//!   non-http(s) URIs (`skd://`, `data:`) are left as they are.

use url::Url;

use super::token::{Kind, Signer};
use crate::hls::define::Variables;
use crate::hls::{self, AttributeList, Line, Lines, PlaylistSummary, Summarizer, UriTarget};

/// What a rewrite needs besides the playlist text.
#[derive(Debug, Clone, Copy)]
pub struct RewriteContext<'a> {
    /// The playlist's final URL (after redirects): relative URIs resolve
    /// against it and `QUERYPARAM` variables read its query.
    pub base: &'a Url,
    /// Scheme and authority the player reaches the proxy at, e.g.
    /// `http://127.0.0.1:8080`; prefixed to every written URI so they are
    /// absolute. A trailing `/` is ignored.
    pub public_base: &'a str,
    /// Site key whose request headers go with every URI of this playlist.
    pub src: Option<&'a str>,
    /// Signs the written URIs.
    pub signer: &'a Signer,
}

/// Removed from the output, line ending included.
const STEERING_TAG: &str = "EXT-X-CONTENT-STEERING";

/// The endpoint a tag's `URI` attributes go to: playlists to `/proxy`,
/// everything else to `/relay`. `None`: the tag carries no URI to rewrite.
fn uri_tag_kind(tag_name: &str) -> Option<Kind> {
    hls::uri_target(tag_name).map(|target| match target {
        UriTarget::Playlist => Kind::Proxy,
        UriTarget::Resource => Kind::Relay,
    })
}

/// A rewritten playlist and what the pass read of the original.
#[derive(Debug, Clone)]
pub struct Rewritten<'t> {
    /// The playlist with every URI pointing at the proxy.
    pub text: String,
    /// The original's summary (classification, target duration...), read
    /// in the same pass by the same reader as the health checker's.
    pub summary: PlaylistSummary<'t>,
}

/// Rewrites `playlist` so every http(s) URI in it points at the proxy
/// (`{public_base}/proxy/...` or `{public_base}/relay/...`, signed), keeping
/// every other byte. Never fails: what cannot be resolved is left as it is.
pub fn rewrite<'t>(text: &'t str, ctx: &RewriteContext<'_>) -> Rewritten<'t> {
    let writer = Writer::new(ctx);
    // One pass, sized from the line count (a media playlist has about one
    // URI per two lines; more only costs a reallocation).
    let lines = count_newlines(text.as_bytes()) + 1;
    let capacity = text.len() + lines.div_ceil(2) * writer.bytes_per_uri();
    // Multivariant-only tags come before the URI lines they describe, so
    // the pass starts as a media playlist and is redone only when such a
    // tag appears after a URI line was already sent to `/relay`.
    let mut multivariant = false;
    loop {
        match rewrite_pass(text, &writer, multivariant, capacity) {
            Ok(out) => return out,
            Err(SeenMultivariant) => multivariant = true,
        }
    }
}

/// The number of `\n` in `bytes`, counted in byte-wide lanes (a `usize`
/// counter per byte made this a fifth of a media playlist's rewrite).
fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// A multivariant-only tag after a URI line was written as a media
/// segment: the pass must start again as multivariant.
struct SeenMultivariant;

/// One pass of [`rewrite`]. Bytes that stay are copied in runs (`copied`
/// is how much of `text` is in `out`); a changed line flushes the run
/// before it.
fn rewrite_pass<'t>(
    text: &'t str,
    writer: &Writer<'_>,
    mut multivariant: bool,
    capacity: usize,
) -> Result<Rewritten<'t>, SeenMultivariant> {
    let mut out = String::with_capacity(capacity);
    let mut summarizer = Summarizer::default();
    let mut vars = Variables::default();
    let mut scratch = String::new();
    let mut relayed_uri_line = false;
    let mut copied = 0;
    for (line_start, content, line_end) in Lines::new(text) {
        let line = Line::parse(content);
        summarizer.line(&line);
        match line {
            Line::Uri { start, uri } => {
                let at = line_start + start;
                out.push_str(&text[copied..at]);
                writer.push_uri(&mut out, &mut scratch, uri, &vars, |path| {
                    if multivariant || hls::uri::has_playlist_extension(path.as_bytes()) {
                        Kind::Proxy
                    } else {
                        relayed_uri_line = true;
                        Kind::Relay
                    }
                });
                copied = at + uri.len();
            }
            // `EXTINF` and other tags outside `EXT-X-` need nothing.
            Line::Tag { name, .. } if !name.starts_with("EXT-X-") => {}
            Line::Tag { name, value } => {
                if !multivariant && hls::is_multivariant_tag(name) {
                    if relayed_uri_line {
                        return Err(SeenMultivariant);
                    }
                    multivariant = true;
                }
                if name == STEERING_TAG {
                    out.push_str(&text[copied..line_start]);
                    copied = line_end;
                } else if name == "EXT-X-DEFINE" {
                    // The player requests our URL, which has no such query
                    // parameter: RFC 8216bis makes a missing QUERYPARAM
                    // fatal, so hand the player the value itself.
                    if let Some((name, value)) = vars.define(value, writer.base)
                        && is_quoted_string_safe(value)
                    {
                        out.push_str(&text[copied..line_start]);
                        out.push_str(&content[..content.len() - value_len(content)]);
                        out.push_str("NAME=\"");
                        out.push_str(name);
                        out.push_str("\",VALUE=\"");
                        out.push_str(value);
                        out.push('"');
                        copied = line_start + content.len();
                    }
                } else if let Some(kind) = uri_tag_kind(name) {
                    let value_start = line_start + content.len() - value.len();
                    out.push_str(&text[copied..value_start]);
                    writer.push_attribute_list(&mut out, &mut scratch, value, kind, &vars);
                    copied = line_start + content.len();
                }
            }
            Line::Other => {}
        }
    }
    out.push_str(&text[copied..]);
    Ok(Rewritten {
        text: out,
        summary: summarizer.finish(),
    })
}

/// Length of the attribute list after `#EXT-X-DEFINE:` on `content`.
fn value_len(content: &str) -> usize {
    content.split_once(':').map_or(0, |(_, value)| value.len())
}

/// Whether `value` can sit inside an HLS quoted-string.
fn is_quoted_string_safe(value: &str) -> bool {
    !value.contains(['"', '\r', '\n'])
}

/// Bytes of a [`simple_reference`]: [`PATH_BYTE`] may appear in its path
/// (bytes that URL parsing copies unchanged: no percent-encoding, no `\`
/// separator, no `%2e` dot segment, no `:` that could read as a scheme),
/// [`QUERY_BYTE`] in its query (bytes the query of an http(s) URL keeps).
const PATH_BYTE: u8 = 1;
/// See [`PATH_BYTE`].
const QUERY_BYTE: u8 = 2;
/// [`PATH_BYTE`] and [`QUERY_BYTE`] of every byte value.
const SIMPLE_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let unreserved = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            );
        if unreserved || c == b'\'' {
            table[b] |= PATH_BYTE;
        }
        if unreserved || matches!(c, b':' | b'/' | b'?' | b'%') {
            table[b] |= QUERY_BYTE;
        }
        b += 1;
    }
    table
};

/// If `reference` is a relative reference that resolves by plain
/// concatenation, the length of its path part: a non-empty path of
/// [`PATH_BYTE`]s and `/` (not `//` first, no `.` or `..` segment), then
/// optionally a query of [`QUERY_BYTE`]s, no fragment. Almost every segment URI is
/// one (`seg_123.ts`, `1080p/seg.ts?t=abc`, `/live/seg.ts`); anything else
/// takes the general path through [`Url::join`].
fn simple_reference(reference: &str) -> Option<usize> {
    let bytes = reference.as_bytes();
    if bytes.starts_with(b"//") {
        return None;
    }
    let mut segment_start = 0;
    let mut path_len = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => {
                if matches!(&bytes[segment_start..i], b"." | b"..") {
                    return None;
                }
                segment_start = i + 1;
            }
            b'?' => {
                path_len = i;
                break;
            }
            _ if SIMPLE_BYTES[usize::from(b)] & PATH_BYTE == 0 => return None,
            _ => {}
        }
    }
    let simple = path_len > 0
        && !matches!(&bytes[segment_start..path_len], b"." | b"..")
        && bytes[path_len..]
            .iter()
            .all(|&b| SIMPLE_BYTES[usize::from(b)] & QUERY_BYTE != 0);
    simple.then_some(path_len)
}

/// Writes proxy URIs into the output buffer.
struct Writer<'a> {
    base: &'a Url,
    /// `scheme://authority` of the base: prefix of absolute-path references.
    origin: &'a str,
    /// The base up to the last `/` of its path: prefix of relative paths.
    directory: &'a str,
    /// Whether [`simple_reference`]s may be resolved by concatenation (the
    /// base is http(s), so the result is too).
    concatenate: bool,
    public_base: &'a str,
    src: Option<&'a str>,
    signer: &'a Signer,
}

impl<'a> Writer<'a> {
    fn new(ctx: &RewriteContext<'a>) -> Self {
        let base = ctx.base;
        let text = base.as_str();
        let path_start = text.len() - base[url::Position::BeforePath..].len();
        let path_end = path_start + base.path().len();
        let directory_end = text[path_start..path_end]
            .rfind('/')
            .map_or(path_end, |slash| path_start + slash + 1);
        Self {
            base,
            origin: &text[..path_start],
            directory: &text[..directory_end],
            concatenate: matches!(base.scheme(), "http" | "https") && path_start < directory_end,
            public_base: ctx.public_base.trim_end_matches('/'),
            src: ctx.src,
            signer: ctx.signer,
        }
    }

    /// A generous estimate of one written URI's length, to pre-size the
    /// output: base64 of a URL about as long as the base, the signature, the
    /// site key and a name.
    fn bytes_per_uri(&self) -> usize {
        self.public_base.len() + (self.base.as_str().len() + 32) * 4 / 3 + 128
    }

    /// Writes the absolute URL `reference` names into `scratch` and returns
    /// the byte range of its path there, or `None` when it must be left as
    /// it is (see [`hls::uri::resolve`]).
    fn resolve_into(&self, reference: &str, scratch: &mut String) -> Option<(usize, usize)> {
        scratch.clear();
        if self.concatenate
            && let Some(path_len) = simple_reference(reference)
        {
            let prefix = if reference.starts_with('/') {
                self.origin
            } else {
                self.directory
            };
            scratch.push_str(prefix);
            scratch.push_str(reference);
            debug_assert_eq!(
                self.base.join(reference).ok().as_ref().map(Url::as_str),
                Some(scratch.as_str()),
                "concatenation must resolve {reference:?} as URL parsing does"
            );
            return Some((self.origin.len(), prefix.len() + path_len));
        }
        let url = hls::uri::resolve(self.base, reference)?;
        let path_start = url.as_str().len() - url[url::Position::BeforePath..].len();
        scratch.push_str(url.as_str());
        Some((path_start, path_start + url.path().len()))
    }

    /// Appends the proxy URI for `reference` (after variable substitution),
    /// or `reference` itself when it is not an http(s) URI. `kind` chooses
    /// the endpoint from the resolved URL's path; `scratch` is reused
    /// between calls so that resolving allocates nothing.
    fn push_uri(
        &self,
        out: &mut String,
        scratch: &mut String,
        reference: &str,
        vars: &Variables<'_>,
        kind: impl FnOnce(&str) -> Kind,
    ) {
        let substituted = vars.substitute(reference);
        match self.resolve_into(&substituted, scratch) {
            Some((path_start, path_end)) => {
                out.push_str(self.public_base);
                let path = &scratch[path_start..path_end];
                let segment = path
                    .bytes()
                    .rposition(|b| b == b'/')
                    .map_or(path, |slash| &path[slash + 1..]);
                let kind = kind(path);
                self.signer
                    .push_path_with_segment(out, kind, scratch, segment, self.src);
            }
            None => out.push_str(reference),
        }
    }

    /// Appends a tag's attribute list with the value of every `URI="..."`
    /// attribute rewritten (as the attribute parser reads the list: a name
    /// exactly `URI`, a quoted value); every other byte is copied.
    fn push_attribute_list(
        &self,
        out: &mut String,
        scratch: &mut String,
        list: &str,
        kind: Kind,
        vars: &Variables<'_>,
    ) {
        let mut copied = 0;
        for attribute in AttributeList(list) {
            if attribute.name != "URI" || attribute.value.quoted().is_none() {
                continue;
            }
            let span = attribute.value.span();
            out.push_str(&list[copied..span.start]);
            self.push_uri(out, scratch, attribute.value.as_str(), vars, |_| kind);
            copied = span.end;
        }
        out.push_str(&list[copied..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::token::parse_token;
    use proptest::prelude::*;

    const PUBLIC: &str = "http://127.0.0.1:8080";
    const BASE: &str = "http://cdn.example.com/live/event/master.m3u8?token=t%2B1&v=2";

    fn signer() -> Signer {
        Signer::new(b"rewrite test key")
    }

    fn rewrite_with(playlist: &str, base: &str, src: Option<&str>) -> String {
        let base = Url::parse(base).expect("valid base");
        let signer = signer();
        let ctx = RewriteContext {
            base: &base,
            public_base: PUBLIC,
            src,
            signer: &signer,
        };
        rewrite(playlist, &ctx).text
    }

    fn run(playlist: &str) -> String {
        rewrite_with(playlist, BASE, None)
    }

    /// The URI the rewriter must write for `url`.
    fn proxied(kind: Kind, url: &str, src: Option<&str>) -> String {
        format!("{PUBLIC}{}", signer().path(kind, url, src))
    }

    /// Every proxy URI in `text`, decoded and verified: (kind, upstream URL,
    /// src).
    fn written_uris(text: &str) -> Vec<(Kind, String, Option<String>)> {
        let signer = signer();
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(PUBLIC) {
            rest = &rest[at + PUBLIC.len()..];
            let mut parts = rest.splitn(4, '/');
            assert_eq!(parts.next(), Some(""));
            let kind = match parts.next() {
                Some("proxy") => Kind::Proxy,
                Some("relay") => Kind::Relay,
                other => panic!("unexpected kind {other:?}"),
            };
            let token = parts.next().expect("token");
            let parsed = parse_token(token).expect("token parses");
            assert!(
                parsed.is_signed_by(&signer, kind),
                "signature of {}",
                parsed.url_text
            );
            assert_eq!(parsed.url.as_str(), parsed.url_text);
            found.push((kind, parsed.url_text, parsed.src));
        }
        found
    }

    const MULTIVARIANT: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
## a comment
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"meta/title.json\"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"/keys/session.key\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",DEFAULT=YES,URI=\"audio/en.m3u8\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,AUDIO=\"aud\"
low/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=2560000,AUDIO=\"aud\"
# comment between tag and URI
https://other.example.net/hi/chunklist.m3u8?sig=abc
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"
../audio-only/prog.php?id=1
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"low/iframe.m3u8\"
#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=16000,RESOLUTION=320x180,URI=\"thumbs/index.m3u8\"
#X-UNKNOWN-TAG:FOO=\"bar\"
";

    #[test]
    fn multivariant_playlist_uris_go_to_proxy_and_every_other_byte_stays() {
        let base = "http://cdn.example.com/live/event/";
        let expected = format!(
            "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
## a comment
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"{}\"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"{}\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",DEFAULT=YES,URI=\"{}\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,AUDIO=\"aud\"
{}

#EXT-X-STREAM-INF:BANDWIDTH=2560000,AUDIO=\"aud\"
# comment between tag and URI
{}
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"
{}
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"{}\"
#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=16000,RESOLUTION=320x180,URI=\"{}\"
#X-UNKNOWN-TAG:FOO=\"bar\"
",
            proxied(Kind::Relay, &format!("{base}meta/title.json"), None),
            proxied(Kind::Relay, "http://cdn.example.com/keys/session.key", None),
            proxied(Kind::Proxy, &format!("{base}audio/en.m3u8"), None),
            proxied(Kind::Proxy, &format!("{base}low/index.m3u8"), None),
            proxied(
                Kind::Proxy,
                "https://other.example.net/hi/chunklist.m3u8?sig=abc",
                None
            ),
            proxied(
                Kind::Proxy,
                "http://cdn.example.com/live/audio-only/prog.php?id=1",
                None
            ),
            proxied(Kind::Proxy, &format!("{base}low/iframe.m3u8"), None),
            proxied(Kind::Proxy, &format!("{base}thumbs/index.m3u8"), None),
        );
        assert_eq!(run(MULTIVARIANT), expected);
    }

    const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k?id=7\",IV=0x0123
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://fairplay/7\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-KEY:METHOD=NONE
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"
#EXTINF:6.006,
seg100.m4s
#EXT-X-DISCONTINUITY
#EXTINF:6.006,title
../other/seg101.m4s?x=1&y=2
#EXTINF:6.006,
http://cdn.example.com/nested/list.m3u8
#EXTINF:-1,Channel 2
http://tv.example.org/chan2/INDEX.M3U?auth=1
";

    #[test]
    fn media_playlist_uris_go_to_relay_except_playlists() {
        let expected = format!(
            "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-KEY:METHOD=AES-128,URI=\"{}\",IV=0x0123
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://fairplay/7\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-KEY:METHOD=NONE
#EXT-X-MAP:URI=\"{}\",BYTERANGE=\"720@0\"
#EXTINF:6.006,
{}
#EXT-X-DISCONTINUITY
#EXTINF:6.006,title
{}
#EXTINF:6.006,
{}
#EXTINF:-1,Channel 2
{}
",
            proxied(Kind::Relay, "https://keys.example.com/k?id=7", None),
            proxied(Kind::Relay, "http://cdn.example.com/live/event/init.mp4", None),
            proxied(Kind::Relay, "http://cdn.example.com/live/event/seg100.m4s", None),
            proxied(
                Kind::Relay,
                "http://cdn.example.com/live/other/seg101.m4s?x=1&y=2",
                None
            ),
            proxied(Kind::Proxy, "http://cdn.example.com/nested/list.m3u8", None),
            proxied(Kind::Proxy, "http://tv.example.org/chan2/INDEX.M3U?auth=1", None),
        );
        assert_eq!(run(MEDIA), expected);
    }

    const LL_HLS: &str = "#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:4.00008,
fileSequence266.mp4
#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart267.1.mp4\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart267.2.mp4\"
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=273,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"../4M/waitForMSN.php\",LAST-MSN=273,LAST-PART=1
";

    #[test]
    fn ll_hls_live_edge_tags_after_the_last_segment_are_rewritten_and_kept() {
        let base = "https://ll.example.com/2M/waitForMSN.php?_HLS_msn=273";
        let out = rewrite_with(LL_HLS, base, Some("demo"));
        let d = "https://ll.example.com/2M/";
        let p = |kind, url: &str| proxied(kind, url, Some("demo"));
        let expected = format!(
            "#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-MAP:URI=\"{}\"
#EXTINF:4.00008,
{}
#EXT-X-PART:DURATION=0.33334,URI=\"{}\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"{}\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"
#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN=273,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN=273,LAST-PART=1
",
            p(Kind::Relay, &format!("{d}init.mp4")),
            p(Kind::Relay, &format!("{d}fileSequence266.mp4")),
            p(Kind::Relay, &format!("{d}filePart267.0.mp4")),
            p(Kind::Relay, &format!("{d}filePart267.1.mp4")),
            p(Kind::Relay, &format!("{d}filePart267.2.mp4")),
            p(Kind::Proxy, "https://ll.example.com/1M/waitForMSN.php"),
            p(Kind::Proxy, "https://ll.example.com/4M/waitForMSN.php"),
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn relative_references_resolve_like_rfc_3986() {
        let base = "http://h.example/a/b/c/index.m3u8?q=1";
        let cases = [
            ("seg.ts", "http://h.example/a/b/c/seg.ts"),
            ("./seg.ts", "http://h.example/a/b/c/seg.ts"),
            ("../../seg.ts", "http://h.example/a/seg.ts"),
            ("../../../../../seg.ts", "http://h.example/seg.ts"),
            ("//other.example:8443/x.ts", "http://other.example:8443/x.ts"),
            ("/abs/seg.ts", "http://h.example/abs/seg.ts"),
            (
                "seg.ts?token=a%2Bb&x=1",
                "http://h.example/a/b/c/seg.ts?token=a%2Bb&x=1",
            ),
            ("?only=query", "http://h.example/a/b/c/index.m3u8?only=query"),
            (
                "QualityLevels(1)/Fragments(v=1)",
                "http://h.example/a/b/c/QualityLevels(1)/Fragments(v=1)",
            ),
            ("a_15:49:14.ts", "http://h.example/a/b/c/a_15:49:14.ts"),
            ("seg15:49:14.ts", "http://h.example/a/b/c/seg15:49:14.ts"),
            (
                "2024-05-01T15:49:14Z.ts",
                "http://h.example/a/b/c/2024-05-01T15:49:14Z.ts",
            ),
            ("chunk:1.ts?x=a:b", "http://h.example/a/b/c/chunk:1.ts?x=a:b"),
            ("HTTPS://Up.Example/Seg.ts", "https://up.example/Seg.ts"),
            ("seg 1.ts", "http://h.example/a/b/c/seg%201.ts"),
        ];
        for (reference, resolved) in cases {
            let out = rewrite_with(&format!("#EXTM3U\n#EXTINF:1,\n{reference}\n"), base, None);
            let urls: Vec<String> = written_uris(&out).into_iter().map(|(_, url, _)| url).collect();
            assert_eq!(urls, [resolved], "{reference}");
        }
    }

    #[test]
    fn non_http_uris_are_left_untouched() {
        let playlist = "#EXTM3U
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAAPnBzc2g=\",KEYFORMAT=\"urn:uuid:edef8ba9\"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"SKD:opaque-id\"
#EXT-X-KEY:METHOD=AES-128,URI=\"\"
#EXTINF:1,
ftp://files.example/seg.ts
#EXTINF:1,
urn:example:seg
";
        let out = run(playlist);
        assert_eq!(out, playlist);
    }

    #[test]
    fn crlf_bom_and_missing_final_newline_are_preserved() {
        let playlist =
            "\u{feff}#EXTM3U\r\n#EXT-X-TARGETDURATION:2\n\r\n#EXTINF:2,\r\nseg1.ts\r\n#EXTINF:2,\nseg2.ts";
        let s1 = proxied(Kind::Relay, "http://cdn.example.com/live/event/seg1.ts", None);
        let s2 = proxied(Kind::Relay, "http://cdn.example.com/live/event/seg2.ts", None);
        let expected =
            format!("\u{feff}#EXTM3U\r\n#EXT-X-TARGETDURATION:2\n\r\n#EXTINF:2,\r\n{s1}\r\n#EXTINF:2,\n{s2}");
        assert_eq!(run(playlist), expected);
    }

    #[test]
    fn bom_does_not_hide_a_multivariant_tag_on_the_first_line() {
        let out = run("\u{feff}#EXT-X-STREAM-INF:BANDWIDTH=1\r\nv.ts\r\n");
        let v = proxied(Kind::Proxy, "http://cdn.example.com/live/event/v.ts", None);
        assert_eq!(out, format!("\u{feff}#EXT-X-STREAM-INF:BANDWIDTH=1\r\n{v}\r\n"));
    }

    #[test]
    fn whitespace_around_a_uri_line_is_kept() {
        let out = run("#EXTM3U\n  \tseg.ts \r\n\t\n");
        let s = proxied(Kind::Relay, "http://cdn.example.com/live/event/seg.ts", None);
        assert_eq!(out, format!("#EXTM3U\n  \t{s} \r\n\t\n"));
    }

    #[test]
    fn classification_is_decided_once_for_the_whole_playlist() {
        // A variant URI before any multivariant tag is still a playlist.
        let out = run("#EXTM3U\nfirst.ts\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsecond.ts\n");
        let kinds: Vec<Kind> = written_uris(&out).into_iter().map(|(kind, ..)| kind).collect();
        assert_eq!(kinds, [Kind::Proxy, Kind::Proxy]);
        // `#EXT-X-MEDIA-SEQUENCE` is not `#EXT-X-MEDIA`.
        let out = run("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\nseg.ts\n");
        assert_eq!(written_uris(&out)[0].0, Kind::Relay);
        // In a media playlist only the path decides, not the query.
        let out = run("#EXTM3U\nseg.ts?next=a.m3u8\nlist.M3U8?x=1\n");
        let kinds: Vec<Kind> = written_uris(&out).into_iter().map(|(kind, ..)| kind).collect();
        assert_eq!(kinds, [Kind::Relay, Kind::Proxy]);
    }

    #[test]
    fn uri_attribute_must_be_named_exactly_uri_at_an_attribute_boundary() {
        let playlist = "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"URI=\",URI=\"en.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a,URI=\",URI=\"de.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x,URI=\\\"fake.m3u8\",LANGUAGE=\"en\"
#EXT-X-MEDIA:TYPE=AUDIO,XURI=\"not-me.m3u8\",CHARACTERISTICS=\"URI=\",URI = \"fr.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,NAME=\"URI\",URI=\"unterminated.m3u8
";
        let en = proxied(Kind::Proxy, "http://cdn.example.com/live/event/en.m3u8", None);
        let fr = proxied(Kind::Proxy, "http://cdn.example.com/live/event/fr.m3u8", None);
        let de = proxied(Kind::Proxy, "http://cdn.example.com/live/event/de.m3u8", None);
        let expected = format!(
            "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"URI=\",URI=\"{en}\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a,URI=\",URI=\"{de}\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x,URI=\\\"fake.m3u8\",LANGUAGE=\"en\"
#EXT-X-MEDIA:TYPE=AUDIO,XURI=\"not-me.m3u8\",CHARACTERISTICS=\"URI=\",URI = \"{fr}\"
#EXT-X-MEDIA:TYPE=SUBTITLES,NAME=\"URI\",URI=\"unterminated.m3u8
"
        );
        assert_eq!(run(playlist), expected);
    }

    #[test]
    fn every_uri_attribute_on_a_line_is_rewritten() {
        // Not valid HLS, but nothing may be missed: every URI attribute.
        let out = run("#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"a.mp4\",URI=\"b.mp4\"\n");
        let a = proxied(Kind::Relay, "http://cdn.example.com/live/event/a.mp4", None);
        let b = proxied(Kind::Relay, "http://cdn.example.com/live/event/b.mp4", None);
        assert_eq!(
            out,
            format!("#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"{a}\",URI=\"{b}\"\n")
        );
    }

    #[test]
    fn tags_without_uris_are_not_touched_even_with_uri_text() {
        let playlist = "#EXTM3U
#EXT-X-DATERANGE:ID=\"ad\",CLASS=\"com.apple.hls.interstitial\",X-ASSET-URI=\"http://ads.example/a.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=1,URI=\"not-a-uri-attribute.m3u8\"
#EXT-X-CUSTOM:URI=\"x.ts\"
#EXTINF:1,URI=\"y.ts\"
";
        assert_eq!(run(playlist), playlist);
    }

    #[test]
    fn a_multivariant_tag_after_uri_lines_makes_every_uri_line_a_playlist() {
        // One pass assumes a media playlist until a multivariant-only tag
        // shows up; a late one must still classify the whole playlist.
        let playlist = "#EXTM3U\nlow.php\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhigh.php\n";
        let kinds: Vec<Kind> = written_uris(&run(playlist))
            .into_iter()
            .map(|(kind, _, _)| kind)
            .collect();
        assert_eq!(kinds, [Kind::Proxy, Kind::Proxy]);
        let media = "#EXTM3U\nlow.php\n#EXTINF:1,\nhigh.php\n";
        let kinds: Vec<Kind> = written_uris(&run(media))
            .into_iter()
            .map(|(kind, _, _)| kind)
            .collect();
        assert_eq!(kinds, [Kind::Relay, Kind::Relay]);
    }

    #[test]
    fn content_steering_lines_are_removed_with_their_line_ending() {
        let playlist = "#EXTM3U\r\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/steer.json\",PATHWAY-ID=\"CDN-A\"\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\nv.m3u8\r\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"s\"";
        let v = proxied(Kind::Proxy, "http://cdn.example.com/live/event/v.m3u8", None);
        assert_eq!(
            run(playlist),
            format!("#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\n{v}\r\n")
        );
    }

    #[test]
    fn define_variables_are_substituted_before_resolving() {
        let playlist = "#EXTM3U
#EXT-X-DEFINE:NAME=\"host\",VALUE=\"https://media.example.com\"
#EXT-X-DEFINE:QUERYPARAM=\"token\"
#EXT-X-DEFINE:QUERYPARAM=\"missing\"
#EXT-X-DEFINE:IMPORT=\"imported\"
#EXT-X-DEFINE:NAME=\"dir\",VALUE=\"hd\"
#EXT-X-MAP:URI=\"{$host}/{$dir}/init.mp4?t={$token}\"
#EXTINF:1,
{$dir}/seg1.ts?t={$token}&v={$v}
#EXTINF:1,
{$imported}/seg2.ts?m={$missing}
#EXTINF:1,
{$dir
";
        let out = run(playlist);
        let uris = written_uris(&out);
        let expected = [
            "https://media.example.com/hd/init.mp4?t=t+1",
            "http://cdn.example.com/live/event/hd/seg1.ts?t=t+1&v={$v}",
            "http://cdn.example.com/live/event/%7B$imported%7D/seg2.ts?m={$missing}",
            "http://cdn.example.com/live/event/%7B$dir",
        ];
        let got: Vec<&str> = uris.iter().map(|(_, url, _)| url.as_str()).collect();
        assert_eq!(got, expected);
        // A known QUERYPARAM becomes a NAME/VALUE pair (the player's URL
        // has no such parameter); every other DEFINE line is kept.
        assert!(
            out.contains("#EXT-X-DEFINE:NAME=\"token\",VALUE=\"t+1\"\n"),
            "{out}"
        );
        assert!(!out.contains("QUERYPARAM=\"token\""));
        for line in playlist
            .lines()
            .filter(|l| l.starts_with("#EXT-X-DEFINE") && !l.contains("\"token\""))
        {
            assert!(out.contains(&format!("{line}\n")), "{line}");
        }
    }

    #[test]
    fn variables_are_only_known_after_their_definition() {
        let out = run("#EXTM3U\n{$d}/a.ts\n#EXT-X-DEFINE:NAME=\"d\",VALUE=\"x\"\n{$d}/b.ts\n");
        let got: Vec<String> = written_uris(&out).into_iter().map(|(_, url, _)| url).collect();
        assert_eq!(
            got,
            [
                "http://cdn.example.com/live/event/%7B$d%7D/a.ts",
                "http://cdn.example.com/live/event/x/b.ts"
            ]
        );
    }

    #[test]
    fn variables_substitute_in_uri_attributes_of_multivariant_tags() {
        let base = "http://cdn.example.com/m.m3u8?region=eu%2Dwest";
        let playlist = "#EXTM3U
#EXT-X-DEFINE:QUERYPARAM=\"region\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\",URI=\"{$region}/audio.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=1
{$region}/video.m3u8
";
        let got: Vec<String> = written_uris(&rewrite_with(playlist, base, None))
            .into_iter()
            .map(|(_, url, _)| url)
            .collect();
        assert_eq!(
            got,
            [
                "http://cdn.example.com/eu-west/audio.m3u8",
                "http://cdn.example.com/eu-west/video.m3u8"
            ]
        );
    }

    #[test]
    fn src_is_carried_into_every_written_uri() {
        for playlist in [MULTIVARIANT, MEDIA, LL_HLS] {
            let out = rewrite_with(playlist, BASE, Some("site_1"));
            let uris = written_uris(&out);
            assert!(!uris.is_empty());
            assert!(
                uris.iter().all(|(_, _, src)| src.as_deref() == Some("site_1")),
                "{out}"
            );
        }
    }

    #[test]
    fn written_uris_decode_to_the_resolved_upstream_urls() {
        let uris = written_uris(&run(MEDIA));
        let urls: Vec<&str> = uris.iter().map(|(_, url, _)| url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://keys.example.com/k?id=7",
                "http://cdn.example.com/live/event/init.mp4",
                "http://cdn.example.com/live/event/seg100.m4s",
                "http://cdn.example.com/live/other/seg101.m4s?x=1&y=2",
                "http://cdn.example.com/nested/list.m3u8",
                "http://tv.example.org/chan2/INDEX.M3U?auth=1",
            ]
        );
        assert!(uris.iter().all(|(_, _, src)| src.is_none()));
    }

    #[test]
    fn written_uris_end_with_the_upstream_file_name() {
        let out = run(MEDIA);
        for name in [
            "/k\"",
            "/init.mp4\"",
            "/seg100.m4s\n",
            "/seg101.m4s\n",
            "/list.m3u8\n",
            "/INDEX.M3U\n",
        ] {
            assert!(out.contains(name), "{name} in {out}");
        }
    }

    #[test]
    fn public_base_trailing_slash_is_ignored() {
        let base = Url::parse(BASE).expect("valid");
        let signer = signer();
        let ctx = RewriteContext {
            base: &base,
            public_base: "http://127.0.0.1:8080/",
            src: None,
            signer: &signer,
        };
        let out = rewrite("#EXTM3U\nseg.ts\n", &ctx);
        assert_eq!(
            out.text,
            format!(
                "#EXTM3U\n{}\n",
                proxied(Kind::Relay, "http://cdn.example.com/live/event/seg.ts", None)
            )
        );
    }

    #[test]
    fn degenerate_inputs_come_back_unchanged() {
        for text in [
            "",
            "\n",
            "\r\n",
            "\u{feff}",
            "#EXTM3U",
            "#EXTM3U\n",
            "# just a comment",
            "\u{feff}\r\n \n",
        ] {
            assert_eq!(run(text), text, "{text:?}");
        }
    }

    /// What the test expects of an input line, judged independently of the
    /// rewriter: `Some(true)` must be copied byte for byte, `Some(false)`
    /// may be rewritten, `None` is removed.
    fn expectation(line: &str, first: bool) -> Option<bool> {
        let line = if first {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        let content = line
            .strip_suffix('\n')
            .map_or(line, |l| l.strip_suffix('\r').unwrap_or(l));
        let body = content.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if body.is_empty() {
            return Some(true);
        }
        let Some(tag) = body.strip_prefix("#EXT") else {
            return Some(body.starts_with('#'));
        };
        let name = match tag.split_once(':') {
            Some((name, _)) => format!("EXT{name}"),
            None => format!("EXT{}", tag.trim_ascii_end()),
        };
        if name == "EXT-X-CONTENT-STEERING" {
            None
        } else {
            // A QUERYPARAM definition may become a NAME/VALUE one.
            let rewritable_define = name == "EXT-X-DEFINE" && tag.contains("QUERYPARAM");
            // The URI-tag table is tested on its own in `hls`.
            Some(hls::uri_target(&name).is_none() && !rewritable_define)
        }
    }

    fn check_preserved(input: &str, output: &str) -> Result<(), TestCaseError> {
        let mut out_lines = output.split_inclusive('\n');
        for (i, line) in input.split_inclusive('\n').enumerate() {
            let Some(preserved) = expectation(line, i == 0) else {
                continue;
            };
            let out = out_lines.next();
            prop_assert!(out.is_some(), "missing output for {:?}", line);
            let out = out.unwrap_or_default();
            if preserved {
                prop_assert_eq!(out, line);
            } else {
                let ending = |l: &str| {
                    if l.ends_with("\r\n") {
                        2
                    } else {
                        usize::from(l.ends_with('\n'))
                    }
                };
                prop_assert_eq!(
                    &out[out.len() - ending(out)..],
                    &line[line.len() - ending(line)..]
                );
            }
        }
        prop_assert_eq!(out_lines.next(), None);
        Ok(())
    }

    fn playlist_line() -> impl Strategy<Value = String> {
        let fixed = prop::sample::select(vec![
            "#EXTM3U",
            "#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1,mp4a\"",
            "#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"URI=\",URI=\"a.m3u8\"",
            "#EXT-X-MEDIA-SEQUENCE:7",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"skd://k\"",
            "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"1@0\"",
            "#EXT-X-PART:URI=\"p.mp4\",URI=\"",
            "#EXT-X-SESSION-DATA:URI=\"x,y\",URI",
            "#EXT-X-CONTENT-STEERING:SERVER-URI=\"s\"",
            "#EXT-X-DEFINE:NAME=\"v\",VALUE=\"x{$v}\"",
            "#EXT-X-DEFINE:QUERYPARAM=\"q\"",
            "#EXT-X-DEFINE:IMPORT=\"i\"",
            "#EXTINF:4.0,",
            "#EXT-X-ENDLIST",
            "## comment URI=\"c.ts\"",
            "",
            " \t",
            "\u{feff}#EXTM3U",
            "{$v}/{$q}/{$i}.ts",
            "data:text/plain,x",
            "a_15:49:14.ts",
            "seg15:49:14.ts",
            "//other.example/x.ts",
            "http://[::1/x.ts",
            "http://h:99999/x.ts",
            "http://u:p@h/x.m3u8",
        ])
        .prop_map(str::to_owned);
        prop_oneof![
            fixed,
            "[ \t]{0,2}#EXT-X-(KEY|MAP|PART|MEDIA|STREAM-INF|RENDITION-REPORT|FOO)(:[A-Z=\",./a-z {}$]{0,40})?",
            "[ \t]{0,2}[a-z0-9./:?=&%{}$_-]{1,24}",
            "[^\n]{0,30}",
            any::<String>(),
        ]
    }

    fn playlist() -> impl Strategy<Value = String> {
        let ending = prop::sample::select(vec!["\n", "\r\n", "\r", ""]);
        prop::collection::vec((playlist_line(), ending), 0..24).prop_map(|lines| {
            lines.into_iter().fold(String::new(), |mut text, (line, ending)| {
                text.push_str(&line);
                text.push_str(ending);
                text
            })
        })
    }

    proptest! {
        #[test]
        fn rewriter_never_panics_and_keeps_lines_without_uris(
            text in playlist(),
            base in prop::sample::select(vec![BASE, "https://h.example/", "http://h.example/a/b?q=%FF&i=%2"]),
            src in prop::option::of("[a-z0-9_-]{1,8}"),
        ) {
            let out = rewrite_with(&text, base, src.as_deref());
            check_preserved(&text, &out)?;
            // Every written URI carries the src; URLs the proxy will refuse
            // (userinfo) are still written, so only the token's shape is read.
            let prefix = format!("{PUBLIC}/");
            for token in out.split(&prefix).skip(1).map(|rest| rest.split('/').nth(1).unwrap_or_default()) {
                prop_assert_eq!(token.split('.').nth(2), src.as_deref());
            }
        }

        #[test]
        fn arbitrary_text_never_panics_and_keeps_lines_without_uris(text in any::<String>()) {
            let out = run(&text);
            check_preserved(&text, &out)?;
        }
    }

    proptest! {
        #[test]
        /// Resolution by concatenation ([`simple_reference`]) gives what URL
        /// parsing gives (the debug assertion inside `resolve_into` checks
        /// it too), and the path range it reports is the URL's path.
        #[test]
        fn fast_resolution_agrees_with_url_parsing(
            reference in "[a-zA-Z0-9./?%:@'!$&()*+,;=~_#{} \\-]{0,16}",
            base in prop::sample::select(vec![BASE, "https://h.example/", "http://h.example:8080/a/b?q=1", "https://h.example/dir/"]),
        ) {
            let base = Url::parse(base).expect("valid base");
            let signer = signer();
            let ctx = RewriteContext { base: &base, public_base: PUBLIC, src: None, signer: &signer };
            let writer = Writer::new(&ctx);
            let mut scratch = String::new();
            let resolved = writer.resolve_into(&reference, &mut scratch);
            let expected = hls::uri::resolve(&base, &reference);
            prop_assert_eq!(resolved.is_some(), expected.is_some());
            if let (Some((start, end)), Some(url)) = (resolved, expected) {
                prop_assert_eq!(scratch.as_str(), url.as_str());
                prop_assert_eq!(&scratch[start..end], url.path());
            }
        }
    }
}
