//! Inputs shared by the criterion bench (`benches/rewrite.rs`) and the
//! end-to-end bench (`examples/bench.rs`), so both measure the same playlist.

/// A live media playlist of `segments` MPEG-TS segments, shaped like a real
/// origin's: a short header, then one `#EXTINF` line and one relative URI
/// per segment (36 bytes per segment, so 5,000 segments are ~180 kB). The
/// rewritten form is about five times larger: every URI becomes a signed,
/// absolute proxy URL.
pub fn media_playlist(segments: usize) -> String {
    const FIRST_SEQUENCE: usize = 40_000_000;
    let mut text = String::with_capacity(128 + segments * 40);
    text.push_str("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n");
    text.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{FIRST_SEQUENCE}\n"));
    for i in 0..segments {
        text.push_str("#EXTINF:6.006,\n");
        text.push_str(&format!("1080p/seg_{:08}.ts\n", FIRST_SEQUENCE + i));
    }
    text
}

/// The same playlist with absolute segment URIs on another host, as CDNs
/// that sign every segment URL write them (longer input, same work per URI).
#[allow(dead_code)] // used by the criterion bench only
pub fn media_playlist_absolute(segments: usize) -> String {
    media_playlist(segments).replace("\n1080p/", "\nhttps://edge-7.cdn.example.net/live/f1/1080p/")
}
