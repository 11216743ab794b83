//! Property-based fuzzing of everything that parses untrusted text: the
//! proxy URL codec, the playlist rewriter, the M3U parser, the JSON
//! extractor mapping and the config loader. Each target must never panic
//! and must keep its output bounded by its input (no amplification a hostile
//! document could turn into unbounded memory).
//!
//! CI runs [`DEFAULT_CASES`] cases per target; `PROPTEST_CASES=N` runs more
//! (see `docs/RELIABILITY.md` for a long run). Failures proptest finds are
//! kept in `tests/fuzz.proptest-regressions` and replayed first; the
//! crash cases found so far are also spelled out as plain tests at the end.

use f1_stream::config::{Config, ConfigError, JsonFields};
use f1_stream::proxy::rewrite::{RewriteContext, rewrite};
use f1_stream::proxy::token::{self, Kind, MAX_URL_BYTES, Signer};
use f1_stream::sources::{map_items, parse_m3u};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::Value;
use url::Url;

/// Cases per target when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Shrinking a failure of a long run must not take longer than the run.
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

fn signer() -> Signer {
    Signer::new(b"fuzz key")
}

/// Text built from the pieces parsers care about, so the fuzzer reaches
/// their deep branches and not only their first "this is garbage" check.
fn pieces_text(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(pieces).prop_map(str::to_owned),
            1 => any::<String>(),
            1 => "[ -~]{0,40}",
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

// --- URL codec ----------------------------------------------------------------------

const URL_PIECES: &[&str] = &[
    "http://",
    "https://",
    "HTTP://",
    "file:///",
    "gopher://",
    "data:,",
    "//",
    "/",
    "user:pw@",
    "@",
    ":",
    "%",
    "%2F",
    "%FF",
    "%00",
    "?",
    "#",
    "&",
    "=",
    "..",
    ".",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "127.0.0.1",
    "0x7f.1",
    "2130706433",
    "example.com",
    "xn--",
    "\u{0}",
    "\u{feff}",
    " ",
    "\\",
    "a.m3u8",
    ":8080",
];

fn url_text() -> impl Strategy<Value = String> {
    pieces_text(URL_PIECES, 12)
}

fn token_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=.-]{0,200}",
        (url_text(), "[A-Za-z0-9_-]{0,50}", "[a-zA-Z0-9_!-]{0,70}")
            .prop_map(|(url, sig, src)| format!("{}.{sig}.{src}", token::encode_url(&url))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }),
    ]
}

/// What every accepted token must satisfy, whatever it was made of.
fn check_accepted(parsed: &token::ParsedToken, encoded_len: usize) -> Result<(), TestCaseError> {
    prop_assert!(matches!(parsed.url.scheme(), "http" | "https"));
    prop_assert!(parsed.url.host().is_some());
    prop_assert!(parsed.url.username().is_empty() && parsed.url.password().is_none());
    prop_assert!(
        parsed.url_text.len() <= encoded_len * 3 / 4 + 3,
        "decoding never grows"
    );
    prop_assert!(encoded_len <= MAX_URL_BYTES);
    if let Some(src) = &parsed.src {
        prop_assert!(f1_stream::model::is_valid_site_key(src));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn url_codec_never_panics_on_any_path_token(text in token_text()) {
        if let Ok(parsed) = token::parse_token(&text) {
            let encoded_len = text.split('.').next().unwrap_or("").len();
            check_accepted(&parsed, encoded_len)?;
            // The signature is verified against exactly what was decoded.
            let signer = signer();
            let sig = signer.sign(Kind::Relay, &parsed.url_text, parsed.src.as_deref());
            prop_assert!(signer.verify(Kind::Relay, &parsed.url_text, parsed.src.as_deref(), &sig));
            // And what was decoded survives a round trip through the path
            // the rewriter would write for it.
            let path = signer.path(Kind::Relay, &parsed.url_text, parsed.src.as_deref());
            let again = token::parse_token(path.split('/').nth(2).unwrap_or_default());
            prop_assert!(again.is_ok(), "{path}: {again:?}");
            let again = again.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(&again.url_text, &parsed.url_text);
            prop_assert_eq!(&again.src, &parsed.src);
            prop_assert!(again.is_signed_by(&signer, Kind::Relay));
        }
    }

    #[test]
    fn url_codec_never_panics_on_any_query(
        url in token_text(),
        sig in prop::option::of(any::<String>()),
        src in prop::option::of(prop_oneof![any::<String>(), "[a-z0-9_-]{0,70}"]),
    ) {
        if let Ok(parsed) = token::from_query(&url, sig.as_deref(), src.as_deref()) {
            check_accepted(&parsed, url.len())?;
        }
        let _ = token::decode_url(&url);
    }

    #[test]
    fn every_http_url_round_trips_through_a_signed_path(
        scheme in prop::sample::select(vec!["http", "https"]),
        host in "[a-z0-9-]{1,20}(\\.[a-z0-9-]{1,20}){0,3}",
        path in "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,20}){0,6}",
        query in prop::option::of("[A-Za-z0-9._~%&=+/?-]{0,60}"),
        src in prop::option::of("[a-z0-9_-]{1,64}"),
        kind in prop::sample::select(vec![Kind::Proxy, Kind::Relay]),
    ) {
        let text = match &query {
            Some(query) => format!("{scheme}://{host}{path}?{query}"),
            None => format!("{scheme}://{host}{path}"),
        };
        let Ok(url) = Url::parse(&text) else { return Ok(()) };
        let signer = signer();
        let written = signer.path(kind, url.as_str(), src.as_deref());
        let mut segments = written.trim_start_matches('/').split('/');
        prop_assert_eq!(segments.next(), Some(kind.as_str()));
        let parsed = token::parse_token(segments.next().expect("token")).expect("a written token parses");
        prop_assert_eq!(&parsed.url_text, url.as_str());
        prop_assert_eq!(parsed.src.as_deref(), src.as_deref());
        prop_assert!(parsed.is_signed_by(&signer, kind));
        let name = segments.next().expect("name");
        prop_assert!(name.chars().count() <= token::MAX_NAME_CHARS);
        prop_assert!(segments.next().is_none(), "the name never adds a path segment");
    }
}

// --- rewriter -----------------------------------------------------------------------

const PLAYLIST_PIECES: &[&str] = &[
    "#EXTM3U\n",
    "#EXT-X-VERSION:7\n",
    "#EXT-X-TARGETDURATION:6\n",
    "#EXTINF:6.0,\n",
    "\r\n",
    "\n",
    "\r",
    "seg.ts\n",
    "../up.ts\n",
    "/abs.m3u8\n",
    "http://h.example/x.ts\n",
    "skd://key\n",
    "data:text/plain,x\n",
    "#EXT-X-STREAM-INF:BANDWIDTH=1\n",
    "v.m3u8\n",
    "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n",
    "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"1@0\"\n",
    "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"a.m3u8\"\n",
    "#EXT-X-DEFINE:NAME=\"v\",VALUE=\"http://d.example/",
    "\"\n",
    "{$v}",
    "{$",
    "}",
    "{$q}",
    "#EXT-X-DEFINE:QUERYPARAM=\"q\"\n",
    "#EXT-X-DEFINE:IMPORT=\"i\"\n",
    "#EXT-X-CONTENT-STEERING:SERVER-URI=\"s\"\n",
    "#EXT-X-PART:DURATION=1,URI=\"p.mp4\"\n",
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"h.mp4\"\n",
    "URI=\"",
    ",",
    "\"",
    "\u{feff}",
    " ",
    "#",
    "%",
    ":",
    "seg15:49:14.ts\n",
];

fn playlist_text() -> impl Strategy<Value = String> {
    pieces_text(PLAYLIST_PIECES, 40)
}

/// A playlist whose output must stay proportionate: every written URI is
/// at most a base URL plus the reference percent-encoded, in base64, plus
/// the signature, src and name; every other byte is copied.
fn rewrite_bound(input: &str, base: &Url, public_base: &str) -> usize {
    let references = input.lines().count() + input.matches("URI=").count() + 1;
    let per_reference = public_base.len() + (base.as_str().len() + 64) * 4 / 3 + 200;
    // A reference grows 3× when percent-encoded, 4/3 in base64, and a
    // substitution may make one URI as long as the proxy accepts.
    input.len() * 4 + references * (per_reference + MAX_URL_BYTES)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rewriter_never_panics_and_its_output_is_bounded_by_its_input(
        text in prop_oneof![playlist_text(), any::<String>()],
        base in prop::sample::select(vec![
            "http://cdn.example.com/live/master.m3u8?q=tok%2B1&v=2",
            "https://h.example/",
            "http://h.example/a/b?q=%FF&i=%2",
        ]),
        src in prop::option::of("[a-z0-9_-]{1,8}"),
    ) {
        let base = Url::parse(base).expect("valid base");
        let signer = signer();
        let public_base = "http://127.0.0.1:8080";
        let ctx = RewriteContext { base: &base, public_base, src: src.as_deref(), signer: &signer };
        let out = rewrite(&text, &ctx).text;
        let bound = rewrite_bound(&text, &base, public_base);
        prop_assert!(out.len() <= bound, "{} bytes out of {} in (bound {bound})", out.len(), text.len());
    }
}

// --- M3U parser ---------------------------------------------------------------------

const M3U_PIECES: &[&str] = &[
    "#EXTM3U\n",
    "#EXTINF:-1 tvg-id=\"a\" tvg-name=\"N\" group-title=\"F1\",Title 1080p\n",
    "#EXTINF:",
    "-1,",
    "#EXTGRP:Formula 1\n",
    "group-title=\"",
    "tvg-name=\"",
    "\"",
    ",",
    "\n",
    "\r\n",
    "http://c.example/a.m3u8\n",
    "https://c.example/b.m3u8?x=1\n",
    "rel/c.m3u8\n",
    "../d.m3u8\n",
    "rtmp://x/y\n",
    "file:///etc/passwd\n",
    "#EXTVLCOPT:http-referrer=x\n",
    "\u{feff}",
    " ",
    "Race",
    "Sprint Qualifying",
    "FP1",
    "4K",
    "HD",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn m3u_parser_never_panics_and_keeps_only_bounded_http_entries(
        text in prop_oneof![pieces_text(M3U_PIECES, 60), any::<String>()],
        base in prop::option::of(prop::sample::select(vec![
            "https://lists.example.com/iptv/f1.m3u",
            "http://127.0.0.1:8080/a/b/c.m3u?token=x",
        ])),
        filter in prop::option::of(prop::sample::select(vec!["(?i)f1|formula", "^$", "."])),
    ) {
        let base = base.map(|b| Url::parse(b).expect("valid base"));
        let filter = filter.map(|f| regex::Regex::new(f).expect("valid regex"));
        let found = parse_m3u(&text, base.as_ref(), filter.as_ref());
        prop_assert!(found.len() <= text.lines().count(), "at most one stream per line");
        let base_len = base.as_ref().map_or(0, |b| b.as_str().len());
        let mut bytes = 0;
        for candidate in &found {
            let url = Url::parse(&candidate.url).expect("candidates are URLs");
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            bytes += candidate.url.len() + candidate.title.as_ref().map_or(0, String::len);
        }
        prop_assert!(bytes <= text.len() * 4 + found.len() * (base_len + 16), "{bytes} from {}", text.len());
    }
}

// --- JSON extractor mapping ---------------------------------------------------------

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "https://a.example/x.m3u8",
            "rel/y.m3u8",
            "  http://b.example/z.m3u8  ",
            "ftp://nope",
            "",
            "race",
            "Sprint Qualifying",
            "1080p",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 128, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["data", "streams", "src", "name", "q", "s", "0", "~1", ""]),
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "/data/streams",
            "/src",
            "/name",
            "/q",
            "/s",
            "/0",
            "/~1",
            "/~0",
            "/"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
        "(/[a-z0-9~]{0,6}){0,5}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_mapping_never_panics_and_keeps_only_http_entries(
        document in json_value(),
        wrap in any::<bool>(),
        items in pointer(),
        url in pointer(),
        title in prop::option::of(pointer()),
        quality in prop::option::of(pointer()),
        session in prop::option::of(pointer()),
        base in prop::option::of(Just("https://api.example/v1/list.json")),
    ) {
        let document = if wrap {
            serde_json::json!({"data": {"streams": document}})
        } else {
            document
        };
        let fields = JsonFields { url, title, quality, session };
        let base = base.map(|b| Url::parse(b).expect("valid base"));
        if let Ok(found) = map_items(&document, &items, &fields, base.as_ref()) {
            let array = document.pointer(&items).and_then(Value::as_array).expect("Ok means an array");
            prop_assert!(found.len() <= array.len());
            for candidate in &found {
                let parsed = Url::parse(&candidate.url).expect("candidates are URLs");
                prop_assert!(matches!(parsed.scheme(), "http" | "https"));
            }
        }
    }
}

// --- config loader ------------------------------------------------------------------

const TOML_PIECES: &[&str] = &[
    "[server]\n",
    "[database]\n",
    "[network]\n",
    "[extraction]\n",
    "[health]\n",
    "[proxy]\n",
    "[schedule]\n",
    "[schedule.durations]\n",
    "[[extractors]]\n",
    "[ranking]\n",
    "listen = ",
    "metrics_listen = ",
    "url = ",
    "max_size_mb = ",
    "retention_days = ",
    "allow_private_networks = ",
    "allow_addresses = ",
    "max_redirects = ",
    "interval_secs = ",
    "timeout_secs = ",
    "max_bytes = ",
    "concurrency = ",
    "user_agent = ",
    "site_key = ",
    "site_name = ",
    "kind = ",
    "streams = ",
    "headers = ",
    "items = ",
    "fields = ",
    "title_filter = ",
    "default_order = ",
    "signing_key = ",
    "race = ",
    "\"127.0.0.1:8080\"",
    "\"sqlite://x.db\"",
    "\"demo\"",
    "\"static\"",
    "\"m3u\"",
    "\"json\"",
    "\"https://e.example/a.m3u8\"",
    "\"10.0.0.0/8\"",
    "\"(\"",
    "0",
    "1",
    "-1",
    "18446744073709551616",
    "true",
    "false",
    "[]",
    "{}",
    "[{ url = \"http://a.example/x.m3u8\" }]",
    "{ url = \"/src\" }",
    "{ Referer = \"x\" }",
    "\n",
    "=",
    "\"",
    "'",
    "[",
    "]",
    "#",
    "\\u0000",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_loader_never_panics_and_what_it_accepts_is_valid(
        text in prop_oneof![pieces_text(TOML_PIECES, 40), any::<String>()],
    ) {
        // Loading validates, so the first assertion holds by construction;
        // what this proves is that no input panics, and that a refusal
        // for a bad value names its key.
        match Config::from_toml_str(&text) {
            Ok(config) => prop_assert!(config.validate().is_ok()),
            Err(err) => {
                prop_assert!(!err.to_string().is_empty());
                if let ConfigError::Invalid { key, .. } = &err {
                    prop_assert!(!key.is_empty(), "{err}");
                    prop_assert!(err.to_string().contains(key.as_str()), "{err}");
                }
            }
        }
    }
}

// --- crash cases found, kept as plain regression tests ----------------------------

/// A playlist that defines one long variable and references it many times
/// on one URI line: each `{$v}` (4 bytes) became the whole VALUE, so 40 KB
/// of playlist became gigabytes of output. Substitution is now capped at
/// the longest URL the proxy accepts.
#[test]
fn define_substitution_cannot_amplify_a_playlist() {
    let value = format!("http://d.example/{}", "a".repeat(16 * 1024));
    let playlist = format!(
        "#EXTM3U\n#EXT-X-DEFINE:NAME=\"v\",VALUE=\"{value}\"\n#EXTINF:6.0,\n{}\n",
        "{$v}".repeat(5_000)
    );
    let base = Url::parse("http://cdn.example.com/live/media.m3u8").expect("valid");
    let signer = signer();
    let ctx = RewriteContext {
        base: &base,
        public_base: "http://127.0.0.1:8080",
        src: None,
        signer: &signer,
    };
    let out = rewrite(&playlist, &ctx).text;
    assert!(
        out.len() <= rewrite_bound(&playlist, &base, ctx.public_base),
        "{} bytes out of {}",
        out.len(),
        playlist.len()
    );
    // A substitution that fits is still made.
    let fits = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"v\",VALUE=\"http://d.example\"\n#EXTINF:6.0,\n{$v}/a.ts\n";
    let out = rewrite(fits, &ctx).text;
    let uri = out.lines().last().expect("uri line");
    let token = uri.split('/').nth(4).expect("token");
    assert_eq!(
        token::parse_token(token).expect("parses").url_text,
        "http://d.example/a.ts"
    );
}
