//! Inputs shared by the criterion bench (`benches/rewrite.rs`) and the
//! end-to-end bench (`examples/bench.rs`), so both measure the same playlist.

/// Media sequence number of the first segment of [`media_playlist`].
pub const FIRST_SEQUENCE: usize = 40_000_000;

/// Bytes of one segment's lines in [`media_segments`] (every line has the
/// same length, so a window is a slice at a computable offset).
pub const SEGMENT_LINES_BYTES: usize = "#EXTINF:6.006,\n1080p/seg_40000000.ts\n".len();

/// A live media playlist of `segments` MPEG-TS segments, shaped like a real
/// origin's: a short header, then one `#EXTINF` line and one relative URI
/// per segment (37 bytes per segment, so 5,000 segments are ~185 kB). The
/// rewritten form is about five times larger: every URI becomes a signed,
/// absolute proxy URL.
pub fn media_playlist(segments: usize) -> String {
    media_playlist_window(FIRST_SEQUENCE, segments)
}

/// The same live playlist at a later reload: its window starts at
/// `first_sequence` (each reload of a live playlist drops the oldest
/// segments and adds as many new ones).
pub fn media_playlist_window(first_sequence: usize, segments: usize) -> String {
    let mut text = media_header(first_sequence);
    text.push_str(&media_segments(first_sequence, segments));
    text
}

/// The header of the window starting at `first_sequence`.
pub fn media_header(first_sequence: usize) -> String {
    format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:{first_sequence}\n")
}

/// The lines of `count` segments from `first_sequence` on,
/// [`SEGMENT_LINES_BYTES`] each.
pub fn media_segments(first_sequence: usize, count: usize) -> String {
    let mut text = String::with_capacity(count * SEGMENT_LINES_BYTES);
    for sequence in first_sequence..first_sequence + count {
        text.push_str("#EXTINF:6.006,\n");
        text.push_str(&format!("1080p/seg_{sequence:08}.ts\n"));
    }
    assert_eq!(
        text.len(),
        count * SEGMENT_LINES_BYTES,
        "sequence numbers must keep 8 digits"
    );
    text
}
