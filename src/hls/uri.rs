//! How a URI reference in a playlist or a channel list resolves: the one
//! rule for the health checker, the rewriter and the list sources.

use std::borrow::Cow;

use url::Url;

/// Longest URL text this service fetches, signs or substitutes into, in
/// bytes: real playlist and segment URLs (signed CDN URLs included) stay
/// well below it, and the limit keeps request and log lines bounded.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Schemes whose URIs have no `//` authority and are never fetched over
/// HTTP (keys, inline data, identifiers). Any other `word:rest` reference
/// is taken for a relative path with a colon (`seg15:49:14.ts`).
const OPAQUE_SCHEMES: [&str; 10] = [
    "data",
    "magnet",
    "skd",
    "urn",
    "blob",
    "about",
    "mailto",
    "tel",
    "javascript",
    "file",
];

/// Resolves a URI reference against `base` (RFC 3986) to the http(s) URL
/// it names, or `None` when it names nothing fetchable here: another scheme
/// (`skd://`, `data:`), an empty reference, or one that does not parse.
/// A reference like `seg15:49:14.ts` is a file name with a colon, not an
/// absolute URL of scheme `seg15`, as players read it.
pub fn resolve(base: &Url, reference: &str) -> Option<Url> {
    if reference.is_empty() {
        return None;
    }
    let resolved = match scheme(reference) {
        None => base.join(reference),
        Some(scheme) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            base.join(reference)
        }
        Some(scheme)
            if reference[scheme.len() + 1..].starts_with("//")
                || OPAQUE_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)) =>
        {
            return None;
        }
        Some(_) => base.join(&format!("./{reference}")),
    }
    .ok()?;
    matches!(resolved.scheme(), "http" | "https").then_some(resolved)
}

/// Parses an absolute http(s) URL (a reference with no base to resolve
/// against).
pub fn absolute(reference: &str) -> Option<Url> {
    Url::parse(reference)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

/// Whether a URL path ends in `.m3u8` or `.m3u`, ignoring case: the one
/// guess of "a playlist" made from a name alone, where nothing is fetched
/// (a URI line of a media playlist that names a channel list, the file name
/// a proxy path ends with).
pub fn has_playlist_extension(path: &[u8]) -> bool {
    let ends_with = |suffix: &[u8]| {
        path.len() >= suffix.len() && path[path.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends_with(b".m3u8") || ends_with(b".m3u")
}

/// `text` with its `%XX` escapes decoded (invalid escapes kept as they
/// are); borrowed when there is none.
pub fn percent_decode(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&b| hex_value(b)),
                bytes.get(i + 2).and_then(|&b| hex_value(b)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The RFC 3986 scheme of `reference` (`ALPHA *( ALPHA / DIGIT / "+" / "-"
/// / "." )` before the first `:`, with no `/`, `?` or `#` before it).
fn scheme(reference: &str) -> Option<&str> {
    let end = reference.find([':', '/', '?', '#'])?;
    let candidate = &reference[..end];
    let mut bytes = candidate.bytes();
    let valid = reference.as_bytes()[end] == b':'
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(base: &str, reference: &str) -> Option<String> {
        resolve(&Url::parse(base).expect("valid base"), reference).map(String::from)
    }

    #[test]
    fn references_resolve_like_rfc_3986_with_colon_file_names() {
        let base = "http://h.example/a/b/c/index.m3u8?q=1";
        let cases = [
            ("seg.ts", "http://h.example/a/b/c/seg.ts"),
            ("../../seg.ts", "http://h.example/a/seg.ts"),
            ("/abs/seg.ts", "http://h.example/abs/seg.ts"),
            ("//other.example/x.ts", "http://other.example/x.ts"),
            ("seg15:49:14.ts", "http://h.example/a/b/c/seg15:49:14.ts"),
            ("HTTPS://Up.Example/Seg.ts", "https://up.example/Seg.ts"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                resolved(base, reference).as_deref(),
                Some(expected),
                "{reference}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_references_name_nothing() {
        let base = "http://h.example/list.m3u";
        for reference in [
            "",
            "skd://key",
            "data:text/plain,x",
            "ftp://h/x.ts",
            "rtmp://h/live",
            "urn:x:y",
        ] {
            assert_eq!(resolved(base, reference), None, "{reference}");
        }
    }

    #[test]
    fn playlist_extensions_are_read_from_the_path_end_in_any_case() {
        assert!(has_playlist_extension(b"/live/index.m3u8"));
        assert!(has_playlist_extension(b"/chan/INDEX.M3U"));
        assert!(!has_playlist_extension(b"/seg.ts"));
        assert!(!has_playlist_extension(b"/a.m3u8/seg.ts"));
        assert!(!has_playlist_extension(b"m3u8"));
    }

    #[test]
    fn absolute_urls_must_be_http() {
        assert!(absolute("https://example.com/a.m3u8").is_some());
        assert!(absolute("live/a.m3u8").is_none());
        assert!(absolute("rtmp://x/y").is_none());
    }
}
