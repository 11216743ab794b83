//! Criterion bench of the playlist rewriter alone (target: at least
//! 200 MB/s of input on a 5,000-segment media playlist; docs/PERFORMANCE.md): the first rewrite
//! of a playlist, where every URI is signed, and a reload, where the signer
//! remembers the paths of the URIs it signed last time.
//!
//! Run with `cargo bench --bench rewrite`; throughput is reported in MB/s
//! (decimal) of *input* playlist bytes.

#![allow(missing_docs)] // criterion's macros generate undocumented items

mod support;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use f1_stream::proxy::rewrite::{RewriteContext, rewrite};
use f1_stream::proxy::token::{DEFAULT_PATH_CACHE_ENTRIES, Kind, Signer};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

/// Segments in the benchmarked playlists (the size the targets are set for).
const SEGMENTS: usize = 5_000;

/// Key of every bench signer.
const KEY: &[u8] = b"bench signing key, 32 bytes long!";

/// Sequence number the first-sight benches start from: each iteration
/// takes the next 5,000 numbers, so no URI is ever seen twice (8 digits
/// hold 18,000 iterations, more than criterion runs).
const FRESH_SEQUENCE: usize = 10_000_000;

/// The first rewrite of a playlist: every URI is new, so every URI is
/// signed and remembered. With the service's signer (it remembers signed
/// paths, so this includes the cost of remembering) and, for comparison,
/// with one that remembers nothing.
fn bench_first_sight(c: &mut Criterion) {
    let base = Url::parse("https://cdn.example.com/live/f1/index.m3u8?token=abc123").expect("valid base URL");
    // (name, absolute URIs, src, signed paths remembered)
    let inputs = [
        ("media_5000_relative", false, None, DEFAULT_PATH_CACHE_ENTRIES),
        (
            "media_5000_relative_src",
            false,
            Some("f1tv"),
            DEFAULT_PATH_CACHE_ENTRIES,
        ),
        ("media_5000_absolute", true, None, DEFAULT_PATH_CACHE_ENTRIES),
        ("media_5000_relative_no_memory", false, None, 0),
    ];
    let playlist = |first: usize, absolute: bool| {
        let text = support::media_playlist_window(first, SEGMENTS);
        if absolute {
            text.replace("\n1080p/", "\nhttps://edge-7.cdn.example.net/live/f1/1080p/")
        } else {
            text
        }
    };
    let mut group = c.benchmark_group("rewrite_first_sight");
    for (name, absolute, src, cache_entries) in inputs {
        let signer = Signer::with_path_cache(KEY, cache_entries);
        let ctx = RewriteContext {
            base: &base,
            public_base: "http://192.168.1.20:8080",
            src,
            signer: &signer,
        };
        group.throughput(Throughput::BytesDecimal(
            playlist(FRESH_SEQUENCE, absolute).len() as u64
        ));
        let mut first_sequence = FRESH_SEQUENCE;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    first_sequence += SEGMENTS;
                    playlist(first_sequence, absolute)
                },
                |playlist| {
                    let out = rewrite(black_box(&playlist), &ctx).text;
                    (playlist, out)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// What `/proxy` does all day: rewrite a live playlist the proxy has
/// rewritten before, slid by one new segment per reload (the service's
/// signer remembers the paths it signed).
fn bench_reload(c: &mut Criterion) {
    let base = Url::parse("https://cdn.example.com/live/f1/index.m3u8?token=abc123").expect("valid base URL");
    let signer = Signer::new(KEY);
    let ctx = RewriteContext {
        base: &base,
        public_base: "http://192.168.1.20:8080",
        src: Some("f1tv"),
        signer: &signer,
    };
    let mut group = c.benchmark_group("rewrite_reload");
    group.throughput(Throughput::BytesDecimal(
        support::media_playlist(SEGMENTS).len() as u64
    ));
    black_box(rewrite(&support::media_playlist(SEGMENTS), &ctx).text);
    let mut first_sequence = support::FIRST_SEQUENCE;
    group.bench_function("media_5000_relative_src_one_new_segment", |b| {
        b.iter_batched(
            || {
                first_sequence += 1;
                support::media_playlist_window(first_sequence, SEGMENTS)
            },
            // The input is handed back so that freeing it is not timed.
            |playlist| {
                let out = rewrite(black_box(&playlist), &ctx).text;
                (playlist, out)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// What one rewritten URI costs at the least, whatever the rewriter does
/// around it: the HMAC-SHA256 of the signature alone (over `relay|url|`,
/// three SHA-256 blocks with the key's block absorbed once), the whole
/// signed path (plus base64 of the URL and the name), the same path when the
/// signer remembers it, and the generic URL resolution (`Url::join`) that
/// the rewriter skips for simple relative references.
fn bench_per_uri(c: &mut Criterion) {
    let signer = Signer::with_path_cache(KEY, 0);
    let url = "https://cdn.example.com/live/f1/1080p/seg_40001234.ts";
    let base = Url::parse("https://cdn.example.com/live/f1/index.m3u8?token=abc123").expect("valid base URL");
    let mut group = c.benchmark_group("per_uri");
    group.bench_function("signer_push_path", |b| {
        let mut out = String::with_capacity(4096);
        b.iter(|| {
            out.clear();
            signer.push_path(&mut out, Kind::Relay, black_box(url), None);
            out.len()
        })
    });
    let remembering = Signer::new(KEY);
    group.bench_function("signer_push_path_remembered", |b| {
        let mut out = String::with_capacity(4096);
        b.iter(|| {
            out.clear();
            remembering.push_path(&mut out, Kind::Relay, black_box(url), None);
            out.len()
        })
    });
    // The signature's HMAC-SHA256 alone, key already absorbed (as `Signer`
    // keeps it): the floor of any rewrite of a URI.
    let keyed = Hmac::<Sha256>::new_from_slice(KEY).expect("any key length");
    let message = format!("relay|{url}|");
    group.bench_function("hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(message.as_bytes()));
            mac.finalize().into_bytes()
        })
    });
    group.bench_function("url_join", |b| {
        b.iter(|| black_box(&base).join(black_box("1080p/seg_40001234.ts")))
    });
    group.finish();
}

criterion_group!(benches, bench_first_sight, bench_reload, bench_per_uri);
criterion_main!(benches);
