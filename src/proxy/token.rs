//! The proxy's URL codec and signatures: how an upstream URL travels inside a
//! proxy URL, and how the proxy knows it wrote that URL itself.
//!
//! # Path form
//!
//! ```text
//! /proxy/<token>/<name>      a playlist, fetched and rewritten
//! /relay/<token>/<name>      any other resource, streamed through
//!
//! <token> = <b64url(url)>.<sig>
//!         | <b64url(url)>.<sig>.<src>
//! ```
//!
//! - `<b64url(url)>`: the absolute http(s) URL, base64url (RFC 4648 §5)
//!   without padding; padding is accepted when decoding. At most
//!   [`MAX_URL_BYTES`] characters.
//! - `<sig>`: base64url without padding of HMAC-SHA256 over the bytes
//!   `{kind}|{url}|{src}` (`kind` is `proxy` or `relay`, `url` the exact
//!   decoded URL text, `src` empty when absent). Deterministic: the same
//!   inputs always give the same signature, so rewritten playlists are stable
//!   and cacheable. It may be empty (`<b64url(url)>.` or `<b64url(url)>..<src>`)
//!   or the whole `.<sig>` may be left out when signatures are not required.
//! - `<src>`: the site key of the extractor whose request headers go with the
//!   URL, `[a-z0-9_-]{1,64}`.
//!
//! `.` never occurs in base64url nor in a site key, so the token splits
//! unambiguously on it.
//!
//! `<name>` is cosmetic and not covered by the signature: players (ffmpeg,
//! mpv, VLC) choose a demuxer, or refuse a segment, by the extension of the
//! URL, so the proxy URL ends with the upstream file name. It is the last
//! path segment of the upstream URL, percent-decoded, every byte outside
//! `[A-Za-z0-9._-]` replaced by `_`, at most [`MAX_NAME_CHARS`] characters
//! keeping the extension. A `/proxy` name always ends in `.m3u8` or `.m3u`
//! (`.m3u8` is appended otherwise); an empty name becomes `index.m3u8` for
//! `/proxy` and `segment.ts` for `/relay`.
//!
//! # Query form
//!
//! `/proxy?url=<b64url(url)>&sig=<sig>&src=<src>` (and `/relay?...`) carries
//! the same three values; [`from_query`] validates them like [`parse_token`].

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

pub use super::kind::Kind;
use super::path_cache::{PathCache, PathCacheStats};
use crate::net::{self, UrlRefused};

/// Longest accepted base64url-encoded upstream URL, in bytes. Real playlist
/// and segment URLs (signed CDN URLs included) stay well below it; the limit
/// keeps request lines and log lines bounded.
pub const MAX_URL_BYTES: usize = crate::hls::uri::MAX_URL_BYTES;

/// Longest `<name>` written into a proxy path, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest `src` (site key) accepted in a token.
pub const MAX_SRC_CHARS: usize = crate::model::MAX_SITE_KEY_CHARS;

/// Longest extension (dot included) kept when a long name is shortened; a
/// longer "extension" is not one a player would recognise.
const MAX_EXTENSION_CHARS: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The `<name>` used when the upstream URL has no last path segment.
fn default_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Proxy => "index.m3u8",
        Kind::Relay => "segment.ts",
    }
}

/// Why a token or query could not be turned into an upstream URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The encoded URL exceeds [`MAX_URL_BYTES`].
    #[error("encoded URL is {len} bytes long, more than the limit of {MAX_URL_BYTES}")]
    TooLong {
        /// Length of the encoded URL that was refused.
        len: usize,
    },
    /// The URL part is not base64url.
    #[error("URL is not valid base64url")]
    InvalidBase64,
    /// The decoded bytes are not UTF-8 text.
    #[error("decoded URL is not UTF-8")]
    NotUtf8,
    /// The decoded text is a relative reference, not an absolute URL.
    #[error("URL is not absolute")]
    NotAbsolute,
    /// The decoded text does not parse as a URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(url::ParseError),
    /// Not a URL this service fetches ([`net::check_url_shape`]: another
    /// scheme, credentials, no host).
    #[error(transparent)]
    Refused(#[from] UrlRefused),
    /// `src` is not a site key.
    #[error("src must be 1 to {MAX_SRC_CHARS} characters of a-z, 0-9, '_' or '-'")]
    InvalidSrc,
    /// The token does not have the `<url>.<sig>[.<src>]` shape.
    #[error("token must have the form <url>.<sig> or <url>.<sig>.<src>")]
    Malformed,
}

/// A validated token (path or query form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// The upstream URL to fetch.
    pub url: Url,
    /// The exact decoded text, which is what the signature covers (the
    /// parsed [`Url`] may normalise it).
    pub url_text: String,
    /// The signature as given, `None` when absent or empty.
    pub sig: Option<String>,
    /// The site key whose request headers go with the URL.
    pub src: Option<String>,
}

impl ParsedToken {
    /// Whether the token carries a valid signature for `kind` under `signer`.
    /// An unsigned token is never valid.
    pub fn is_signed_by(&self, signer: &Signer, kind: Kind) -> bool {
        self.sig
            .as_deref()
            .is_some_and(|sig| signer.verify(kind, &self.url_text, self.src.as_deref(), sig))
    }
}

/// Signs and verifies proxy URLs under one key. Clones share one memory of
/// the signed paths written lately (see [`Signer::with_path_cache`]).
#[derive(Clone)]
pub struct Signer {
    /// HMAC state after absorbing the key; cloned per signature so the key
    /// is hashed once, not once per URI of every playlist.
    keyed: HmacSha256,
    paths: Arc<PathCache>,
}

/// Signed paths a [`Signer::new`] remembers (`proxy.signature_cache_entries`).
pub const DEFAULT_PATH_CACHE_ENTRIES: usize = crate::config::defaults::SIGNATURE_CACHE_ENTRIES;

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    /// A signer for `key` (any length; HMAC hashes long keys down) that
    /// remembers [`DEFAULT_PATH_CACHE_ENTRIES`] signed paths.
    pub fn new(key: &[u8]) -> Self {
        Self::with_path_cache(key, DEFAULT_PATH_CACHE_ENTRIES)
    }

    /// A signer for `key` that remembers up to `entries` signed paths
    /// (0: none), so rewriting a reloaded playlist signs only its new URIs.
    /// What it writes does not depend on `entries`, only how fast.
    pub fn with_path_cache(key: &[u8], entries: usize) -> Self {
        let keyed = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        Self {
            keyed,
            paths: Arc::new(PathCache::new(entries)),
        }
    }

    fn mac(&self, kind: Kind, url: &str, src: Option<&str>) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(kind.as_str().as_bytes());
        mac.update(b"|");
        mac.update(url.as_bytes());
        mac.update(b"|");
        mac.update(src.unwrap_or("").as_bytes());
        mac
    }

    /// The signature of `kind|url|src`: base64url without padding.
    pub fn sign(&self, kind: Kind, url: &str, src: Option<&str>) -> String {
        let mut out = String::with_capacity(43);
        self.push_sig(&mut out, kind, url, src);
        out
    }

    fn push_sig(&self, out: &mut String, kind: Kind, url: &str, src: Option<&str>) {
        let tag = self.mac(kind, url, src).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode_string(tag, out);
    }

    /// Whether `sig` (with or without `=` padding) is the signature of
    /// `kind|url|src`. The comparison runs in constant time.
    pub fn verify(&self, kind: Kind, url: &str, src: Option<&str>, sig: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD_INDIFFERENT.decode(sig) else {
            return false;
        };
        self.mac(kind, url, src).verify_slice(&tag).is_ok()
    }

    /// The signature of `label`, a name that is not a URL (a channel's, for
    /// its playlist address): HMAC-SHA256 of `label|<label>`, a domain of its
    /// own (proxy and relay signatures start with their kind), base64url
    /// without padding.
    pub fn sign_label(&self, label: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.label_mac(label).finalize().into_bytes())
    }

    /// Whether `sig` is [`Signer::sign_label`] of `label`, in constant time.
    pub fn verify_label(&self, label: &str, sig: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD_INDIFFERENT.decode(sig) else {
            return false;
        };
        self.label_mac(label).verify_slice(&tag).is_ok()
    }

    fn label_mac(&self, label: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(b"label|");
        mac.update(label.as_bytes());
        mac
    }

    /// The signed path `/{kind}/<token>/<name>` for the upstream `url` (see
    /// the module docs). `src`, when given, must be a site key
    /// (`[a-z0-9_-]{1,64}`).
    pub fn path(&self, kind: Kind, url: &str, src: Option<&str>) -> String {
        let mut out = String::with_capacity(url.len() * 4 / 3 + 128);
        self.push_path(&mut out, kind, url, src);
        out
    }

    /// Appends [`Signer::path`] to `out`, so a rewriter can write a whole
    /// playlist into one buffer.
    pub fn push_path(&self, out: &mut String, kind: Kind, url: &str, src: Option<&str>) {
        self.push_path_with_segment(out, kind, url, last_segment(url), src);
    }

    /// [`Signer::push_path`] for a caller that already knows the last path
    /// segment of `url` (see [`last_segment`]), as a rewriter that has just
    /// resolved the URL does: it saves a scan of the URL per URI. `segment`
    /// must be exactly that (checked in debug builds): the memory of signed
    /// paths is keyed by `url` alone, so every caller must write the same
    /// path for the same URL.
    pub(crate) fn push_path_with_segment(
        &self,
        out: &mut String,
        kind: Kind,
        url: &str,
        segment: &str,
        src: Option<&str>,
    ) {
        debug_assert!(
            src.is_none_or(crate::model::is_valid_site_key),
            "src must be a site key"
        );
        debug_assert_eq!(segment, last_segment(url), "segment of {url}");
        let Err(miss) = self.paths.append(out, kind, url, src) else {
            return;
        };
        if url.len() <= STACK_PATH_URL_BYTES && src.is_none_or(|src| src.len() <= MAX_SRC_CHARS) {
            // The common case (a rewriter writes one path per URI): the
            // whole path is built on the stack and appended at once.
            let mut path = StackText::<STACK_PATH_BYTES>::new();
            path.push(b"/");
            path.push(kind.as_str().as_bytes());
            path.push(b"/");
            path.push_base64(url.as_bytes());
            path.push(b".");
            path.push_base64(&self.mac(kind, url, src).finalize().into_bytes());
            if let Some(src) = src {
                path.push(b".");
                path.push(src.as_bytes());
            }
            path.push(b"/");
            let mut name = [0u8; MAX_NAME_CHARS];
            let name_len = write_name(&mut name, kind, segment);
            path.push(&name[..name_len]);
            if let Some(path) = path.as_str() {
                out.push_str(path);
                self.paths.insert(miss, kind, url, src, path);
                return;
            }
        }
        let start = out.len();
        out.push('/');
        out.push_str(kind.as_str());
        out.push('/');
        URL_SAFE_NO_PAD.encode_string(url, out);
        out.push('.');
        self.push_sig(out, kind, url, src);
        if let Some(src) = src {
            out.push('.');
            out.push_str(src);
        }
        out.push('/');
        push_name(out, kind, segment);
        self.paths.insert(miss, kind, url, src, &out[start..]);
    }

    /// How the memory of signed paths is doing: hits, misses, entries.
    pub fn path_cache_stats(&self) -> PathCacheStats {
        self.paths.stats()
    }
}

/// Longest URL whose signed path [`Signer::push_path`] builds on the
/// stack (every segment URL in practice; longer ones take the general way).
const STACK_PATH_URL_BYTES: usize = 384;

/// Room for that path: kind, base64 of the URL, signature, src, name and
/// separators.
const STACK_PATH_BYTES: usize =
    8 + STACK_PATH_URL_BYTES.div_ceil(3) * 4 + 44 + MAX_SRC_CHARS + MAX_NAME_CHARS;

/// The base64url alphabet (RFC 4648 §5).
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two base64url characters of every 12-bit value: two lookups per
/// three input bytes instead of four.
const BASE64URL_PAIRS: [[u8; 2]; 4096] = {
    let mut table = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = [BASE64URL[i >> 6], BASE64URL[i & 63]];
        i += 1;
    }
    table
};

/// ASCII text built in a stack buffer, appended to a `String` with a single
/// UTF-8 check. Exists because a rewritten playlist writes thousands of
/// signed paths, and per-piece appends (and `base64`'s `encode_string`,
/// which zeroes a 1 KiB buffer per call) cost as much as the signing.
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes`; the caller sized `N` for everything it appends.
    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Appends `input` as base64url without padding (what
    /// `URL_SAFE_NO_PAD` writes, byte for byte).
    fn push_base64(&mut self, input: &[u8]) {
        let len = input.len() / 3 * 4 + [0, 2, 3][input.len() % 3];
        let out = &mut self.bytes[self.len..self.len + len];
        let (mut read, mut written) = (0, 0);
        // Six bytes (two 24-bit groups) per step, read as one big-endian
        // word, while eight can be read.
        while let Some(word) = input[read..].first_chunk::<8>()
            && let Some(chars) = out[written..].first_chunk_mut::<8>()
        {
            let word = u64::from_be_bytes(*word);
            let (a, b) = ((word >> 40) as usize, (word >> 16) as usize & 0xff_ffff);
            chars[..2].copy_from_slice(&BASE64URL_PAIRS[a >> 12]);
            chars[2..4].copy_from_slice(&BASE64URL_PAIRS[a & 0xfff]);
            chars[4..6].copy_from_slice(&BASE64URL_PAIRS[b >> 12]);
            chars[6..].copy_from_slice(&BASE64URL_PAIRS[b & 0xfff]);
            read += 6;
            written += 8;
        }
        let mut chunks = input[read..].chunks_exact(3);
        let mut quads = out[written..].chunks_exact_mut(4);
        for (chunk, quad) in (&mut chunks).zip(&mut quads) {
            let n = usize::from(chunk[0]) << 16 | usize::from(chunk[1]) << 8 | usize::from(chunk[2]);
            quad[..2].copy_from_slice(&BASE64URL_PAIRS[n >> 12]);
            quad[2..].copy_from_slice(&BASE64URL_PAIRS[n & 0xfff]);
        }
        match (chunks.remainder(), quads.into_remainder()) {
            ([a], [x, y]) => {
                *x = BASE64URL[usize::from(a >> 2)];
                *y = BASE64URL[usize::from(a & 3) << 4];
            }
            ([a, b], [x, y, z]) => {
                *x = BASE64URL[usize::from(a >> 2)];
                *y = BASE64URL[usize::from(a & 3) << 4 | usize::from(b >> 4)];
                *z = BASE64URL[usize::from(b & 15) << 2];
            }
            _ => {}
        }
        self.len += len;
    }

    /// The text; `None` if it is not UTF-8, which only ASCII pushes cannot
    /// cause.
    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes[..self.len]).ok()
    }
}

/// `url` as base64url without padding.
pub fn encode_url(url: &str) -> String {
    URL_SAFE_NO_PAD.encode(url)
}

/// Decodes and validates an encoded upstream URL (padding optional).
pub fn decode_url(b64: &str) -> Result<Url, TokenError> {
    decode_url_text(b64).map(|(url, _)| url)
}

fn decode_url_text(b64: &str) -> Result<(Url, String), TokenError> {
    if b64.len() > MAX_URL_BYTES {
        return Err(TokenError::TooLong { len: b64.len() });
    }
    let bytes = URL_SAFE_NO_PAD_INDIFFERENT
        .decode(b64)
        .map_err(|_| TokenError::InvalidBase64)?;
    let text = String::from_utf8(bytes).map_err(|_| TokenError::NotUtf8)?;
    let url = Url::parse(&text).map_err(|err| match err {
        url::ParseError::RelativeUrlWithoutBase => TokenError::NotAbsolute,
        url::ParseError::EmptyHost => TokenError::Refused(UrlRefused::NoHost),
        other => TokenError::InvalidUrl(other),
    })?;
    net::check_url_shape(&url)?;
    Ok((url, text))
}

/// Parses the `<token>` segment of a path-form proxy URL.
pub fn parse_token(token: &str) -> Result<ParsedToken, TokenError> {
    let mut parts = token.split('.');
    let url_b64 = parts.next().unwrap_or("");
    let sig = parts.next();
    let src = parts.next();
    if parts.next().is_some() {
        return Err(TokenError::Malformed);
    }
    from_query(url_b64, sig, src)
}

/// Validates the values of the query form `?url=<b64>&sig=<sig>&src=<src>`.
/// An empty `sig` or `src` counts as absent.
pub fn from_query(url_b64: &str, sig: Option<&str>, src: Option<&str>) -> Result<ParsedToken, TokenError> {
    let (url, url_text) = decode_url_text(url_b64)?;
    let src = src.filter(|src| !src.is_empty());
    if src.is_some_and(|src| !crate::model::is_valid_site_key(src)) {
        return Err(TokenError::InvalidSrc);
    }
    Ok(ParsedToken {
        url,
        url_text,
        sig: sig.filter(|sig| !sig.is_empty()).map(str::to_owned),
        src: src.map(str::to_owned),
    })
}

/// The `<name>` for `url` (see the module docs); the tests' reference for
/// what a signed path ends with.
#[cfg(test)]
fn name_for(kind: Kind, url: &str) -> String {
    let mut out = String::with_capacity(MAX_NAME_CHARS);
    push_name(&mut out, kind, last_segment(url));
    out
}

/// Appends the `<name>` made of `segment`, the last path segment of a URL.
fn push_name(out: &mut String, kind: Kind, segment: &str) {
    let mut name = [0u8; MAX_NAME_CHARS];
    let len = write_name(&mut name, kind, segment);
    // Only ASCII is written, so this never falls back.
    out.push_str(std::str::from_utf8(&name[..len]).unwrap_or(default_name(kind)));
}

/// Bytes kept as they are in a `<name>`; every other byte becomes `_`.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

/// Writes the `<name>` made of `segment` (the last path segment of a URL)
/// into `buffer`, ASCII only, and returns its length.
fn write_name(buffer: &mut [u8; MAX_NAME_CHARS], kind: Kind, segment: &str) -> usize {
    let decoded = crate::hls::uri::percent_decode(segment);
    let name: &[u8] = &decoded;
    if matches!(name, b"" | b"." | b"..") {
        let default = default_name(kind).as_bytes();
        buffer[..default.len()].copy_from_slice(default);
        return default.len();
    }
    let (stem, ext): (&[u8], &[u8]) = match kind {
        Kind::Proxy if crate::hls::uri::has_playlist_extension(name) => {
            let dot = name.iter().rposition(|&b| b == b'.').unwrap_or(0);
            (&name[..dot], &name[dot..])
        }
        // Players decide by extension; a playlist must look like one.
        Kind::Proxy => (name, b".m3u8"),
        Kind::Relay => match name.iter().rposition(|&b| b == b'.') {
            Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION_CHARS => (&name[..dot], &name[dot..]),
            _ => (name, b""),
        },
    };
    let stem = &stem[..stem.len().min(MAX_NAME_CHARS - ext.len())];
    let (stem_out, ext_out) = buffer.split_at_mut(stem.len());
    for (slot, &b) in stem_out.iter_mut().zip(stem) {
        *slot = if NAME_BYTES[usize::from(b)] { b } else { b'_' };
    }
    for (slot, &b) in ext_out.iter_mut().zip(ext) {
        *slot = if NAME_BYTES[usize::from(b)] { b } else { b'_' };
    }
    stem.len() + ext.len()
}

/// The last path segment of an absolute URL's text: after the last `/` of
/// the path, before any query or fragment; empty when the URL has no path.
fn last_segment(url: &str) -> &str {
    // One forward pass over bytes (this runs once per URI of every
    // rewritten playlist). Only the part before any `?` or `#` counts; if
    // it has a `://`, the path starts at the first `/` after the first one
    // (no such `/`: no path); the segment follows the path's last `/`.
    let bytes = url.as_bytes();
    let mut segment_start = 0;
    let mut authority_seen = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'?' | b'#' => break,
            b':' if !authority_seen && bytes[i + 1..].starts_with(b"//") => {
                authority_seen = true;
                match bytes[i + 3..]
                    .iter()
                    .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                {
                    Some(j) if bytes[i + 3 + j] == b'/' => i += 3 + j,
                    _ => return "",
                }
                continue;
            }
            b'/' => segment_start = i + 1,
            _ => {}
        }
        i += 1;
    }
    &url[segment_start..i]
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://cdn.example.com/live/chan1/index.m3u8?token=abc";

    const TEST_KEY: &[u8] = b"test key";

    fn signer() -> Signer {
        Signer::new(TEST_KEY)
    }

    /// The `<token>` segment of a path written by [`Signer::path`].
    fn token_of(path: &str) -> &str {
        path.split('/').nth(2).expect("path has a token segment")
    }

    #[test]
    fn encoded_url_round_trips_without_padding() {
        for url in [URL, "http://a.b/", "http://a.b/x", "http://a.b/xy"] {
            let b64 = encode_url(url);
            assert!(!b64.contains('='), "{b64}");
            assert_eq!(decode_url(&b64).expect("decodes").as_str(), url);
        }
    }

    #[test]
    fn padded_url_is_accepted() {
        // 13 and 14 bytes: padded encodings end in "==" and "=".
        let url13 = "http://a.b/xy";
        for url in ["http://a.b/x", url13, "http://a.b/xyz"] {
            let padded = base64::engine::general_purpose::URL_SAFE.encode(url);
            assert_eq!(decode_url(&padded).expect("decodes").as_str(), url);
        }
        assert!(
            base64::engine::general_purpose::URL_SAFE
                .encode(url13)
                .ends_with('=')
        );
    }

    #[test]
    fn path_round_trips_through_parse_token_and_verifies() {
        let signer = signer();
        for (kind, src) in [
            (Kind::Proxy, None),
            (Kind::Relay, None),
            (Kind::Proxy, Some("demo")),
            (Kind::Relay, Some("site_2-x")),
        ] {
            let path = signer.path(kind, URL, src);
            assert!(path.starts_with(&format!("/{}/", kind.as_str())), "{path}");
            let parsed = parse_token(token_of(&path)).expect("parses");
            assert_eq!(parsed.url.as_str(), URL);
            assert_eq!(parsed.url_text, URL);
            assert_eq!(parsed.src.as_deref(), src);
            assert_eq!(parsed.sig.as_deref(), Some(signer.sign(kind, URL, src).as_str()));
            assert!(parsed.is_signed_by(&signer, kind));
        }
    }

    #[test]
    fn path_has_the_documented_shape() {
        let signer = signer();
        let path = signer.path(Kind::Relay, "http://h/a/seg1.ts", Some("demo"));
        let expected = format!(
            "/relay/{}.{}.demo/seg1.ts",
            encode_url("http://h/a/seg1.ts"),
            signer.sign(Kind::Relay, "http://h/a/seg1.ts", Some("demo"))
        );
        assert_eq!(path, expected);
        let path = signer.path(Kind::Proxy, "http://h/a/index.m3u8", None);
        assert!(path.ends_with("/index.m3u8"), "{path}");
        assert_eq!(path.matches('.').count(), 2, "{path}"); // token dot + extension
    }

    #[test]
    fn signature_is_deterministic_and_key_dependent() {
        let a = signer().sign(Kind::Proxy, URL, Some("demo"));
        let b = signer().sign(Kind::Proxy, URL, Some("demo"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 43);
        assert!(!a.contains('='));
        assert_eq!(
            signer().path(Kind::Relay, URL, None),
            signer().path(Kind::Relay, URL, None)
        );
        assert_ne!(a, Signer::new(b"other key").sign(Kind::Proxy, URL, Some("demo")));
    }

    #[test]
    fn signature_is_hmac_sha256_of_kind_url_src() {
        let mut mac = HmacSha256::new_from_slice(b"test key").expect("any key length");
        mac.update(format!("relay|{URL}|demo").as_bytes());
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(signer().sign(Kind::Relay, URL, Some("demo")), expected);
    }

    #[test]
    fn padded_signature_verifies() {
        let sig = signer().sign(Kind::Proxy, URL, None);
        assert!(signer().verify(Kind::Proxy, URL, None, &format!("{sig}=")));
        assert!(signer().verify(Kind::Proxy, URL, None, &sig));
    }

    #[test]
    fn tampering_fails_verification() {
        let signer = signer();
        let sig = signer.sign(Kind::Proxy, URL, Some("demo"));
        assert!(signer.verify(Kind::Proxy, URL, Some("demo"), &sig));
        // Tampered URL.
        assert!(!signer.verify(
            Kind::Proxy,
            "https://cdn.example.com/live/chan2/index.m3u8?token=abc",
            Some("demo"),
            &sig
        ));
        // Tampered signature: every position, and truncations.
        for i in 0..sig.len() {
            let mut bytes = sig.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert!(
                !signer.verify(Kind::Proxy, URL, Some("demo"), &tampered),
                "{tampered}"
            );
        }
        assert!(!signer.verify(Kind::Proxy, URL, Some("demo"), &sig[..40]));
        assert!(!signer.verify(Kind::Proxy, URL, Some("demo"), ""));
        assert!(!signer.verify(Kind::Proxy, URL, Some("demo"), "not base64 !"));
        // Wrong kind.
        assert!(!signer.verify(Kind::Relay, URL, Some("demo"), &sig));
        // Wrong or missing src.
        assert!(!signer.verify(Kind::Proxy, URL, Some("other"), &sig));
        assert!(!signer.verify(Kind::Proxy, URL, None, &sig));
        // Wrong key.
        assert!(!Signer::new(b"other").verify(Kind::Proxy, URL, Some("demo"), &sig));
    }

    #[test]
    fn tampered_token_fails_verification() {
        let signer = signer();
        let path = signer.path(Kind::Relay, URL, Some("demo"));
        let token = token_of(&path);
        let (url_b64, rest) = token.split_once('.').expect("has a dot");
        let other = encode_url("https://evil.example/x.ts");
        let forged = parse_token(&format!("{other}.{rest}")).expect("well formed");
        assert!(!forged.is_signed_by(&signer, Kind::Relay));
        let resourced = parse_token(&token.replace(".demo", ".other")).expect("well formed");
        assert!(!resourced.is_signed_by(&signer, Kind::Relay));
        let unsigned = parse_token(&format!("{url_b64}.")).expect("well formed");
        assert_eq!(unsigned.sig, None);
        assert!(!unsigned.is_signed_by(&signer, Kind::Relay));
        assert!(
            !parse_token(token)
                .expect("parses")
                .is_signed_by(&signer, Kind::Proxy)
        );
    }

    #[test]
    fn unsigned_tokens_parse() {
        let b64 = encode_url(URL);
        for token in [b64.clone(), format!("{b64}."), format!("{b64}..demo")] {
            let parsed = parse_token(&token).expect("parses");
            assert_eq!(parsed.sig, None, "{token}");
            assert_eq!(parsed.url.as_str(), URL);
        }
        assert_eq!(
            parse_token(&format!("{b64}..demo"))
                .expect("parses")
                .src
                .as_deref(),
            Some("demo")
        );
    }

    #[test]
    fn query_form_shares_validation() {
        let signer = signer();
        let b64 = encode_url(URL);
        let sig = signer.sign(Kind::Relay, URL, Some("demo"));
        let parsed = from_query(&b64, Some(&sig), Some("demo")).expect("parses");
        assert!(parsed.is_signed_by(&signer, Kind::Relay));
        assert_eq!(parsed, parse_token(&format!("{b64}.{sig}.demo")).expect("parses"));
        assert_eq!(from_query(&b64, Some(""), Some("")).expect("parses").sig, None);
        assert_eq!(from_query(&b64, None, Some("Bad!")), Err(TokenError::InvalidSrc));
        assert_eq!(from_query("%%%", None, None), Err(TokenError::InvalidBase64));
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let enc = |s: &str| encode_url(s);
        assert_eq!(decode_url("not base64!"), Err(TokenError::InvalidBase64));
        assert_eq!(
            decode_url(&URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00])),
            Err(TokenError::NotUtf8)
        );
        assert_eq!(
            decode_url(&enc("/relative/path.m3u8")),
            Err(TokenError::NotAbsolute)
        );
        assert_eq!(decode_url(&enc("")), Err(TokenError::NotAbsolute));
        assert_eq!(
            decode_url(&enc("file:///etc/passwd")),
            Err(TokenError::Refused(UrlRefused::Scheme("file".into())))
        );
        assert_eq!(
            decode_url(&enc("gopher://h.example/1")),
            Err(TokenError::Refused(UrlRefused::Scheme("gopher".into())))
        );
        assert_eq!(
            decode_url(&enc("skd://key-id")),
            Err(TokenError::Refused(UrlRefused::Scheme("skd".into())))
        );
        assert_eq!(
            decode_url(&enc("http://user:pass@h.example/x")),
            Err(TokenError::Refused(UrlRefused::Userinfo))
        );
        assert_eq!(
            decode_url(&enc("http://user@h.example/x")),
            Err(TokenError::Refused(UrlRefused::Userinfo))
        );
        assert_eq!(
            decode_url(&enc("http://:80/x")),
            Err(TokenError::Refused(UrlRefused::NoHost))
        );
        assert!(matches!(
            decode_url(&enc("http://h.example:99999/")),
            Err(TokenError::InvalidUrl(_))
        ));
        let long = format!("http://h.example/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(
            decode_url(&enc(&long)),
            Err(TokenError::TooLong {
                len: enc(&long).len()
            })
        );
        // Exactly at the limit is fine.
        let fits = format!("http://h.example/{}", "a".repeat(MAX_URL_BYTES * 3 / 4 - 17));
        assert!(enc(&fits).len() <= MAX_URL_BYTES);
        assert!(decode_url(&enc(&fits)).is_ok());
    }

    #[test]
    fn malformed_tokens_and_bad_src_are_refused() {
        let b64 = encode_url(URL);
        assert_eq!(
            parse_token(&format!("{b64}.sig.demo.x")),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            parse_token(&format!("{b64}.sig.Demo")),
            Err(TokenError::InvalidSrc)
        );
        assert_eq!(
            parse_token(&format!("{b64}.sig.a/b")),
            Err(TokenError::InvalidSrc)
        );
        let long_src = "a".repeat(MAX_SRC_CHARS + 1);
        assert_eq!(
            parse_token(&format!("{b64}.sig.{long_src}")),
            Err(TokenError::InvalidSrc)
        );
        let max_src = "a".repeat(MAX_SRC_CHARS);
        assert!(parse_token(&format!("{b64}.sig.{max_src}")).is_ok());
        assert_eq!(parse_token(""), Err(TokenError::NotAbsolute));
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            TokenError::InvalidBase64.to_string(),
            "URL is not valid base64url"
        );
        assert_eq!(
            TokenError::Refused(UrlRefused::Scheme("file".into())).to_string(),
            "URL scheme \"file\" is not http or https"
        );
        assert!(TokenError::TooLong { len: 9000 }.to_string().contains("8192"));
    }

    #[test]
    fn name_uses_the_last_path_segment_only() {
        assert_eq!(name_for(Kind::Relay, "http://h/a/seg 1.ts?x=1"), "seg_1.ts");
        assert_eq!(
            name_for(Kind::Relay, "http://h/a/seg%201.ts?x=/y.mp4#f"),
            "seg_1.ts"
        );
        assert_eq!(name_for(Kind::Relay, "http://h/a/b/c.aac#frag"), "c.aac");
        assert_eq!(
            name_for(Kind::Relay, "http://h/QualityLevels(1)/Fragments(v=1)"),
            "Fragments_v_1_"
        );
        assert_eq!(
            name_for(Kind::Proxy, "http://h/live/chan.m3u8?token=a.b"),
            "chan.m3u8"
        );
        assert_eq!(name_for(Kind::Proxy, "http://h/list.M3U"), "list.M3U");
    }

    #[test]
    fn name_defaults_when_empty() {
        for url in [
            "http://h",
            "http://h/",
            "http://h/dir/",
            "http://h/?q=1",
            "http://h/..",
            "http://h/%2e",
        ] {
            assert_eq!(name_for(Kind::Proxy, url), "index.m3u8", "{url}");
            assert_eq!(name_for(Kind::Relay, url), "segment.ts", "{url}");
        }
    }

    #[test]
    fn proxy_name_always_looks_like_a_playlist() {
        assert_eq!(
            name_for(Kind::Proxy, "http://h/live/playlist.php?id=4"),
            "playlist.php.m3u8"
        );
        assert_eq!(name_for(Kind::Proxy, "http://h/live/stream"), "stream.m3u8");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = "x".repeat(300);
        let name = name_for(Kind::Relay, &format!("http://h/{long}.ts"));
        assert_eq!(name.len(), MAX_NAME_CHARS);
        assert!(name.ends_with("xx.ts"), "{name}");
        let name = name_for(Kind::Proxy, &format!("http://h/{long}.m3u8"));
        assert_eq!(name.len(), MAX_NAME_CHARS);
        assert!(name.ends_with("x.m3u8"), "{name}");
        let name = name_for(Kind::Proxy, &format!("http://h/{long}"));
        assert_eq!(name.len(), MAX_NAME_CHARS);
        assert!(name.ends_with("x.m3u8"), "{name}");
        // No extension: plain truncation.
        assert_eq!(
            name_for(Kind::Relay, &format!("http://h/{long}")),
            "x".repeat(MAX_NAME_CHARS)
        );
    }

    #[test]
    fn names_never_contain_unsafe_bytes() {
        let name = name_for(Kind::Relay, "http://h/%C3%A9t%C3%A9%2F%00%22.ts");
        assert_eq!(name, "__t_____.ts"); // é is two bytes, each replaced.
        assert!(
            name_for(Kind::Relay, "http://h/a<b>\"c|d\\e;f=g&h.mp4")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        );
    }

    #[test]
    fn name_is_not_covered_by_the_signature() {
        let signer = signer();
        let path = signer.path(Kind::Relay, "http://h/seg.ts", None);
        let renamed = path.replace("/seg.ts", "/other.mp4");
        assert_eq!(token_of(&path), token_of(&renamed));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        assert_eq!(format!("{:?}", Signer::new(b"secret")), "Signer { .. }");
    }

    /// The straightforward reading of [`last_segment`]'s rule, to check the
    /// one-pass version against.
    fn last_segment_reference(url: &str) -> &str {
        let url = &url[..url.find(['?', '#']).unwrap_or(url.len())];
        let path = match url.find("://") {
            Some(i) => url[i + 3..].find('/').map_or("", |j| &url[i + 3 + j..]),
            None => url,
        };
        path.rsplit('/').next().unwrap_or("")
    }

    #[test]
    fn last_segment_edge_cases() {
        for (url, segment) in [
            ("http://h/a/b.ts?x=/y#z", "b.ts"),
            ("http://h", ""),
            ("http://h?x=/a", ""),
            ("http://h/", ""),
            ("http://h/r/http://o/x.ts", "x.ts"),
            ("x/y://host", ""),
            ("/a/b://c/d", "d"),
            ("seg.ts", "seg.ts"),
            ("a:/b", "b"),
            ("", ""),
        ] {
            assert_eq!(last_segment(url), segment, "{url}");
            assert_eq!(last_segment_reference(url), segment, "{url}");
        }
    }

    #[test]
    fn stack_base64_matches_the_base64_crate() {
        let bytes: Vec<u8> = (0..600u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..=bytes.len() {
            let mut text = StackText::<800>::new();
            text.push_base64(&bytes[..len]);
            assert_eq!(
                text.as_str(),
                Some(URL_SAFE_NO_PAD.encode(&bytes[..len]).as_str()),
                "length {len}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn last_segment_matches_its_reference(url in "[a-z:/?#.%]{0,24}") {
            proptest::prop_assert_eq!(last_segment(&url), last_segment_reference(&url));
        }

        /// The stack-built path (short URLs) and the general one (long
        /// URLs) are both exactly the documented token, whether freshly
        /// signed, remembered from the last time, or from a signer that
        /// remembers nothing.
        #[test]
        fn signed_paths_have_the_documented_form(
            path in "[a-zA-Z0-9/._~%-]{0,40}",
            repeat in 0usize..20,
            src in proptest::option::of("[a-z0-9_-]{1,64}"),
            relay in proptest::bool::ANY,
        ) {
            let kind = if relay { Kind::Relay } else { Kind::Proxy };
            let url = format!("https://cdn.example.com/{}{path}", "long/".repeat(repeat * 4));
            let signer = signer();
            let expected = format!(
                "/{}/{}.{}{}/{}",
                kind.as_str(),
                encode_url(&url),
                signer.sign(kind, &url, src.as_deref()),
                src.as_deref().map(|s| format!(".{s}")).unwrap_or_default(),
                name_for(kind, &url)
            );
            proptest::prop_assert_eq!(&signer.path(kind, &url, src.as_deref()), &expected);
            proptest::prop_assert_eq!(&signer.path(kind, &url, src.as_deref()), &expected);
            let forgetful = Signer::with_path_cache(TEST_KEY, 0);
            proptest::prop_assert_eq!(forgetful.path(kind, &url, src.as_deref()), expected);
        }
    }
}
