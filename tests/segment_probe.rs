//! The deep health check against the fixture corpus (`tests/corpus`): every
//! case served by a fake origin gets the verdict a player would reach, down
//! to what its segments, init sections and keys really are.

mod common;
mod corpus;

use common::{FakeOrigin, deep_checker as checker};
use corpus::{Case, REFERER, TS_PACKET, Verdict};
use f1_stream::model::{ErrorKind, HealthResult};
use reqwest::header::{HeaderMap, HeaderValue};

/// The headers the corpus's extractor sends.
fn extractor_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("referer", HeaderValue::from_static(REFERER));
    headers
}

fn named(slug: &str) -> Case {
    corpus::cases()
        .into_iter()
        .find(|case| case.slug == slug)
        .unwrap_or_else(|| panic!("no corpus case {slug}"))
}

/// Serves `case` on a fresh origin and checks it with `headers`.
async fn check(case: &Case, headers: &HeaderMap) -> (FakeOrigin, HealthResult) {
    let origin = FakeOrigin::start().await;
    case.serve(&origin);
    let result = checker().check(&case.entry_url(&origin), headers).await;
    (origin, result)
}

fn mismatch(verdict: &Verdict, result: &HealthResult) -> Option<String> {
    verdict.mismatch(
        result.is_live,
        result.error_kind.map(ErrorKind::as_str),
        result.error.as_deref(),
    )
}

#[tokio::test]
async fn every_corpus_case_gets_the_verdict_a_player_would_reach() {
    let mut failures = Vec::new();
    for case in corpus::cases() {
        let (_origin, result) = check(&case, &extractor_headers()).await;
        if let Some(why) = mismatch(&case.verdict, &result) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(failures.is_empty(), "wrong verdicts:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_aes_128_key_is_fetched_with_the_extractors_headers() {
    let case = named("aes");
    let (origin, result) = check(&case, &extractor_headers()).await;
    assert_eq!(mismatch(&Verdict::Healthy, &result), None, "{result:?}");
    let keys = origin.requests_to(&case.path("key.bin"));
    assert_eq!(keys.len(), 1, "the key is fetched once");
    assert_eq!(keys[0].headers["referer"], REFERER);
    assert!(
        keys[0].headers.get("range").is_none(),
        "a key is read whole, not ranged"
    );

    // The key is gated on the Referer: without the extractor's headers it
    // answers 403, and a player would have no key either.
    let (_origin, bare) = check(&case, &HeaderMap::new()).await;
    let expected = Verdict::Unhealthy {
        kind: ErrorKind::Segment,
        message: Some("AES-128 key: HTTP 403".to_owned()),
    };
    assert_eq!(mismatch(&expected, &bare), None, "{bare:?}");
}

#[tokio::test]
async fn an_unencrypted_fmp4_stream_has_its_init_section_fetched_and_sniffed() {
    let case = named("fmp4");
    let (origin, result) = check(&case, &extractor_headers()).await;
    assert_eq!(mismatch(&Verdict::Healthy, &result), None, "{result:?}");
    let init = origin.requests_to(&case.path("init.mp4"));
    assert_eq!(init.len(), 1, "the EXT-X-MAP init section is requested");
    assert_eq!(init[0].headers["referer"], REFERER);
    assert_eq!(
        origin.requests_to(&case.path("frag301.m4s")).len(),
        1,
        "and the middle fragment"
    );
    assert!(origin.requests_to(&case.path("frag300.m4s")).is_empty());
    assert!(origin.requests_to(&case.path("frag302.m4s")).is_empty());
}

// The fixtures themselves: the media bytes are what they claim to be, by
// their own structure (not by the sniffer under test).

/// Walks ISO BMFF boxes covering `bytes` exactly; their types in order.
fn box_types(bytes: &[u8]) -> Vec<String> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "a box header is 8 bytes");
        let size = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        assert!((8..=rest.len()).contains(&size), "box size {size} fits");
        types.push(String::from_utf8(rest[4..8].to_vec()).expect("ASCII type"));
        rest = &rest[size..];
    }
    types
}

fn payload_of<'a>(bytes: &'a [u8], kind: &str) -> &'a [u8] {
    let mut rest = bytes;
    while rest.len() >= 8 {
        let size = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if &rest[4..8] == kind.as_bytes() {
            return &rest[8..size];
        }
        rest = &rest[size..];
    }
    panic!("no {kind} box");
}

/// ADTS frames covering `bytes` exactly, by their 13-bit frame lengths.
fn adts_frame_count(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 7 && rest[0] == 0xFF && rest[1] & 0xF6 == 0xF0,
            "ADTS sync"
        );
        let len =
            (usize::from(rest[3] & 0x03) << 11) | (usize::from(rest[4]) << 3) | usize::from(rest[5] >> 5);
        assert!((7..=rest.len()).contains(&len), "frame length {len} fits");
        rest = &rest[len..];
        count += 1;
    }
    count
}

#[test]
fn the_corpus_builds_well_formed_media() {
    let ts = corpus::mpeg_ts(1, 80);
    assert_eq!(ts.len(), 82 * TS_PACKET);
    assert!(
        ts.chunks(TS_PACKET).all(|packet| packet[0] == 0x47),
        "sync at every packet"
    );
    let pids: Vec<u16> = ts
        .chunks(TS_PACKET)
        .map(|p| (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]))
        .take(3)
        .collect();
    assert_eq!(pids, [0x0000, 0x1000, 0x0100], "PAT, PMT, then the video PES");
    assert_eq!(
        &ts[2 * TS_PACKET + 4..2 * TS_PACKET + 8],
        [0, 0, 1, 0xE0],
        "PES start code"
    );

    let init = corpus::fmp4_init();
    assert_eq!(box_types(&init), ["ftyp", "moov"]);
    assert_eq!(box_types(payload_of(&init, "moov")), ["mvhd", "trak", "mvex"]);
    let fragment = corpus::fmp4_fragment(7, 1000);
    assert_eq!(box_types(&fragment), ["styp", "moof", "mdat"]);
    assert_eq!(box_types(payload_of(&fragment, "moof")), ["mfhd", "traf"]);
    assert_eq!(payload_of(&fragment, "mdat").len(), 1000);

    assert_eq!(adts_frame_count(&corpus::adts_frames(3, 40)), 40);
    let packed = [corpus::id3_timestamp(90_000), corpus::adts_frames(3, 5)].concat();
    assert_eq!(&packed[..3], b"ID3");
    let tag_size = packed[6..10]
        .iter()
        .fold(0usize, |size, &b| (size << 7) | usize::from(b));
    assert_eq!(&packed[10..14], b"PRIV");
    assert_eq!(
        adts_frame_count(&packed[10 + tag_size..]),
        5,
        "audio follows the tag"
    );

    assert!(corpus::webvtt(6).starts_with(b"WEBVTT\n"));
    assert_eq!(corpus::AES_SEGMENT_BYTES % 16, 0, "whole AES blocks");
    assert_ne!(corpus::noise(1, 64), corpus::noise(2, 64), "seeds differ");

    let slugs: std::collections::BTreeSet<&str> = corpus::cases().iter().map(|c| c.slug).collect();
    assert_eq!(
        slugs.len(),
        corpus::cases().len(),
        "every case has its own prefix"
    );
}
