//! What the first bytes of a segment are: media a player can demux, or
//! something else served in its place (an error page, a JSON error, an
//! empty body). A CDN that answers `200` with an HTML page for an expired
//! token passes a status check; it does not pass this one.
//!
//! Recognised media, by the signatures their demuxers look for:
//! - MPEG-TS: the sync byte `0x47` at every 188-byte packet boundary read;
//! - fMP4 / CMAF: an ISO BMFF box first (`ftyp`, `styp`, `moof`, `sidx`,
//!   `emsg`, `moov`, `prft`, `free`, `skip`, `mdat`) with a plausible size,
//!   and a plausible box header after it when that is within the bytes read;
//! - packed audio: ADTS AAC (`0xFFF` sync, layer 0), MPEG audio (MP3,
//!   `0xFFE` sync, layer ≠ 0), AC-3 / E-AC-3 (`0x0B77`), each optionally
//!   behind an ID3v2 tag (`ID3`, as HLS packed audio carries its timestamp);
//! - WebVTT (subtitle renditions): `WEBVTT` first, after an optional BOM.
//!
//! Segments encrypted whole (`METHOD=AES-128`) are noise to this test: the
//! health checker checks their key instead (see [`super`]), and
//! [`sniff_ciphertext`] only that they are not text served in their place.

/// The media formats [`sniff`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFormat {
    /// MPEG transport stream.
    MpegTs,
    /// Fragmented MP4 / CMAF (segment or init section).
    Fmp4,
    /// Packed audio: ADTS, MPEG audio or AC-3, possibly ID3-prefixed.
    PackedAudio,
    /// WebVTT subtitles.
    WebVtt,
}

/// What [`sniff`] found instead of media; its `Display` is the check's
/// error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotMedia {
    /// No bytes at all.
    #[error("segment is empty")]
    Empty,
    /// Markup: an HTML error or login page, or an XML error document.
    #[error("segment is an HTML page")]
    Html,
    /// A JSON document, typically an API error.
    #[error("segment is a JSON document")]
    Json,
    /// A playlist where a segment should be.
    #[error("segment is a playlist, not media")]
    Playlist,
    /// Other printable text.
    #[error("segment is text, not media")]
    Text,
    /// Binary, but no format a player demuxes.
    #[error("segment is not a known media format")]
    Unknown,
}

/// ISO BMFF box types that may open a segment or an init section.
const LEADING_BOXES: [&[u8; 4]; 10] = [
    b"ftyp", b"styp", b"moof", b"sidx", b"emsg", b"moov", b"prft", b"free", b"skip", b"mdat",
];

/// MPEG-TS packet size and sync byte.
const TS_PACKET: usize = 188;
const TS_SYNC: u8 = 0x47;
/// Packets checked for sync; enough to rule out chance.
const TS_PACKETS_CHECKED: usize = 64;

/// Bytes of a head read as text to tell an error page from media: every
/// media format here has a control or non-UTF-8 byte well within them
/// (sizes, sync words, PIDs), and random ciphertext is printable for 256
/// bytes with odds of about 1e-100.
const TEXT_PREFIX_BYTES: usize = 256;

/// Classifies the first bytes of a segment (`head`, possibly cut).
pub fn sniff(head: &[u8]) -> Result<MediaFormat, NotMedia> {
    if head.is_empty() {
        return Err(NotMedia::Empty);
    }
    if is_webvtt(head) {
        return Ok(MediaFormat::WebVtt);
    }
    // Sync at two packet boundaries or more is TS whatever the bytes between
    // (text would need a `G` at exactly every 188th byte).
    if head.len() > TS_PACKET && is_ts(head) {
        return Ok(MediaFormat::MpegTs);
    }
    // Before the weaker signatures: "Geo-blocked" starts with 0x47, and
    // "Try free trial" has a box type where an MP4 size would end.
    if reads_as_text(head) {
        return Err(not_media(head));
    }
    if is_ts(head) {
        return Ok(MediaFormat::MpegTs);
    }
    if is_bmff(head) {
        return Ok(MediaFormat::Fmp4);
    }
    if is_packed_audio(head) {
        return Ok(MediaFormat::PackedAudio);
    }
    Err(not_media(head))
}

fn is_ts(head: &[u8]) -> bool {
    head[0] == TS_SYNC
        && head
            .iter()
            .step_by(TS_PACKET)
            .take(TS_PACKETS_CHECKED)
            .all(|&b| b == TS_SYNC)
}

fn is_bmff(head: &[u8]) -> bool {
    let Some((size, kind)) = box_header(head) else {
        return false;
    };
    if !LEADING_BOXES.contains(&kind) {
        return false;
    }
    match size {
        // Size 0: the box runs to the end; 1: a 64-bit size follows.
        0 | 1 => true,
        2..=7 => false,
        size => match usize::try_from(size).ok().and_then(|size| head.get(size..)) {
            Some(rest) if rest.len() >= 8 => {
                box_header(rest).is_some_and(|(_, next)| next.iter().all(u8::is_ascii_alphanumeric))
            }
            _ => true,
        },
    }
}

fn box_header(bytes: &[u8]) -> Option<(u32, &[u8; 4])> {
    let size = u32::from_be_bytes(*bytes.first_chunk::<4>()?);
    let kind = bytes.get(4..8)?.try_into().ok()?;
    Some((size, kind))
}

fn is_webvtt(head: &[u8]) -> bool {
    let text = strip_bom(head);
    text.strip_prefix(b"WEBVTT")
        .is_some_and(|rest| matches!(rest.first(), None | Some(b' ' | b'\t' | b'\r' | b'\n')))
}

fn is_packed_audio(head: &[u8]) -> bool {
    match head.strip_prefix(b"ID3") {
        Some(tag) => {
            // ID3v2: version (2 bytes), flags, then a 28-bit syncsafe size.
            let Some(&[major, _, flags, a, b, c, d]) = tag.first_chunk::<7>() else {
                return true;
            };
            if !(2..=4).contains(&major) || [a, b, c, d].iter().any(|&x| x & 0x80 != 0) {
                return false;
            }
            let size =
                (usize::from(a) << 21) | (usize::from(b) << 14) | (usize::from(c) << 7) | usize::from(d);
            let footer = if flags & 0x10 != 0 { 10 } else { 0 };
            match head.get(10 + size + footer..) {
                Some(frame) if frame.len() >= 2 => is_audio_frame(frame) || is_ts(frame),
                // The tag runs past what was read: nothing more to see.
                _ => true,
            }
        }
        None => is_audio_frame(head),
    }
}

fn is_audio_frame(bytes: &[u8]) -> bool {
    match *bytes {
        // ADTS: 12-bit sync, layer 00.
        [0xFF, b, ..] if b & 0xF6 == 0xF0 => true,
        // MPEG audio: 11-bit sync, a layer other than the reserved 00.
        [0xFF, b, ..] if b & 0xE0 == 0xE0 && b & 0x06 != 0 => true,
        // AC-3 and E-AC-3 sync word.
        [0x0B, 0x77, ..] => true,
        _ => false,
    }
}

/// Whether the first bytes of a segment encrypted whole (AES-128) can be
/// ciphertext. Its bytes are noise, so no signature applies, and a first
/// byte of `<` or `{` proves nothing; but noise never reads as text: a
/// single 16-byte block is printable UTF-8 throughout with odds of about
/// one in two million, a real segment practically never. Text (an HTML or
/// JSON error, a playlist, a message) or nothing is named as [`sniff`]
/// names it.
pub fn sniff_ciphertext(head: &[u8]) -> Result<(), NotMedia> {
    if head.is_empty() {
        return Err(NotMedia::Empty);
    }
    if reads_as_text(head) {
        return Err(not_media(head));
    }
    Ok(())
}

/// Whether the first [`TEXT_PREFIX_BYTES`] of `head` (after a BOM) are
/// text: one stray byte further into an error page does not make it media.
fn reads_as_text(head: &[u8]) -> bool {
    let text = strip_bom(head);
    is_text(&text[..text.len().min(TEXT_PREFIX_BYTES)])
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(crate::hls::BOM.as_bytes()).unwrap_or(bytes)
}

fn not_media(head: &[u8]) -> NotMedia {
    let text = strip_bom(head);
    let first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
    if crate::hls::is_playlist(head) {
        return NotMedia::Playlist;
    }
    match first {
        Some(b'<') => NotMedia::Html,
        Some(b'{' | b'[') => NotMedia::Json,
        _ if reads_as_text(text) => NotMedia::Text,
        _ => NotMedia::Unknown,
    }
}

/// Whether `bytes` read as text: valid UTF-8 (a cut last character
/// allowed) without control bytes other than whitespace.
fn is_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) if err.error_len().is_none() => {
            // Cut in the middle of a character at the read limit.
            std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty() && valid.chars().all(|c| !c.is_control() || c.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(packets: usize) -> Vec<u8> {
        let mut bytes = vec![0xAA; packets * TS_PACKET];
        for packet in bytes.chunks_mut(TS_PACKET) {
            packet[0] = TS_SYNC;
        }
        bytes
    }

    fn bmff_box(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut bytes = u32::try_from(8 + payload).expect("small").to_be_bytes().to_vec();
        bytes.extend_from_slice(kind);
        bytes.resize(8 + payload, 0);
        bytes
    }

    #[test]
    fn media_formats_are_recognised() {
        assert_eq!(sniff(&ts(100)), Ok(MediaFormat::MpegTs));
        assert_eq!(sniff(&ts(1)[..50]), Ok(MediaFormat::MpegTs), "a cut first packet");
        let init = [bmff_box(b"ftyp", 16), bmff_box(b"moov", 100)].concat();
        assert_eq!(sniff(&init), Ok(MediaFormat::Fmp4));
        let fragment = [
            bmff_box(b"styp", 12),
            bmff_box(b"moof", 40),
            bmff_box(b"mdat", 400),
        ]
        .concat();
        assert_eq!(sniff(&fragment), Ok(MediaFormat::Fmp4));
        assert_eq!(sniff(&bmff_box(b"moof", 4000)[..100]), Ok(MediaFormat::Fmp4));
        assert_eq!(
            sniff(&[0xFF, 0xF1, 0x50, 0x80, 0x01, 0xFF]),
            Ok(MediaFormat::PackedAudio)
        );
        assert_eq!(
            sniff(&[0xFF, 0xFB, 0x90, 0x64]),
            Ok(MediaFormat::PackedAudio),
            "MP3"
        );
        assert_eq!(
            sniff(&[0x0B, 0x77, 0x12, 0x34]),
            Ok(MediaFormat::PackedAudio),
            "AC-3"
        );
        let mut id3 = b"ID3\x04\x00\x00\x00\x00\x00\x05".to_vec();
        id3.extend_from_slice(b"PRIV!");
        id3.extend_from_slice(&[0xFF, 0xF1, 0x50, 0x80]);
        assert_eq!(sniff(&id3), Ok(MediaFormat::PackedAudio), "ID3 then ADTS");
        assert_eq!(
            sniff(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"),
            Ok(MediaFormat::WebVtt)
        );
        assert_eq!(sniff(b"\xEF\xBB\xBFWEBVTT"), Ok(MediaFormat::WebVtt));
    }

    #[test]
    fn what_is_served_instead_of_media_is_named() {
        assert_eq!(sniff(b""), Err(NotMedia::Empty));
        assert_eq!(
            sniff(b"<!DOCTYPE html><html>Token expired</html>"),
            Err(NotMedia::Html)
        );
        assert_eq!(sniff(b"\n  <html>"), Err(NotMedia::Html));
        assert_eq!(sniff(br#"{"error":"forbidden"}"#), Err(NotMedia::Json));
        assert_eq!(sniff(b"Access denied\n"), Err(NotMedia::Text));
        assert_eq!(sniff(b"#EXTM3U\n#EXTINF:1,\na.ts\n"), Err(NotMedia::Playlist));
        assert_eq!(sniff(&[0x00, 0x01, 0x02, 0x03, 0x04]), Err(NotMedia::Unknown));
        assert_eq!(
            sniff(&[TS_SYNC, 0x00, 0x11]),
            Ok(MediaFormat::MpegTs),
            "too short to refute"
        );
        let mut desynced = ts(3);
        desynced[TS_PACKET * 2] = 0x00;
        assert_ne!(
            sniff(&desynced),
            Ok(MediaFormat::MpegTs),
            "sync lost at a packet boundary"
        );
        let mut bad_id3 = b"ID3\x04\x00\x00\x00\x00\x00\x02xx".to_vec();
        bad_id3.extend_from_slice(b"<html>");
        assert_eq!(
            sniff(&bad_id3),
            Err(NotMedia::Unknown),
            "an ID3 tag before no audio"
        );
        assert_eq!(
            sniff(&bmff_box(b"html", 10)),
            Err(NotMedia::Unknown),
            "an unknown box"
        );
        assert_eq!(
            sniff(b"\x00\x00\x00\x04ftyp"),
            Err(NotMedia::Unknown),
            "an impossible box size"
        );
    }

    #[test]
    fn ciphertext_is_any_noise_but_never_text() {
        let mut noise = Vec::with_capacity(4096);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        while noise.len() < 4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.extend_from_slice(&state.to_le_bytes());
        }
        assert_eq!(sniff_ciphertext(&noise), Ok(()));
        for first in [b'<', b'{', b'#', b'W', 0x47] {
            noise[0] = first;
            assert_eq!(sniff_ciphertext(&noise), Ok(()), "noise starting {first:#x}");
        }
        assert_eq!(sniff_ciphertext(b""), Err(NotMedia::Empty));
        assert_eq!(
            sniff_ciphertext(b"<!DOCTYPE html><html>Token expired</html>\n"),
            Err(NotMedia::Html)
        );
        assert_eq!(sniff_ciphertext(br#"{"error":"forbidden"}"#), Err(NotMedia::Json));
        assert_eq!(
            sniff_ciphertext(b"#EXTM3U\n#EXTINF:1,\na.ts\n"),
            Err(NotMedia::Playlist)
        );
        assert_eq!(sniff_ciphertext(b"Access denied\r\n"), Err(NotMedia::Text));
    }

    #[test]
    fn text_that_happens_to_look_like_a_signature_is_still_text() {
        assert_eq!(
            sniff(b"Geo-blocked in your region"),
            Err(NotMedia::Text),
            "0x47 first"
        );
        assert_eq!(
            sniff(b"Try free trial today"),
            Err(NotMedia::Text),
            "`free` where a box type sits"
        );
        let mut page = b"<html><body>Forbidden</body></html>".to_vec();
        page.resize(4096, b' ');
        page[3000] = 0xE9;
        assert_eq!(sniff(&page), Err(NotMedia::Html), "a stray Latin-1 byte far in");
        assert_eq!(sniff_ciphertext(&page), Err(NotMedia::Html));
    }

    #[test]
    fn text_cut_inside_a_character_is_still_text() {
        let text = "Zugriff verweigert: Größe".as_bytes();
        assert_eq!(sniff(&text[..text.len() - 1]), Err(NotMedia::Text));
    }
}
