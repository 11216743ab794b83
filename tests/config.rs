//! The configuration loader: defaults, the shipped file, unknown
//! keys, bad values, the extractor list and `F1S_` environment overrides.
//!
//! The crate forbids `unsafe_code` for every target, so this file cannot call
//! `std::env::set_var` (unsafe in edition 2024). The environment test runs
//! this test binary again as a child process with the variables set instead;
//! the environment of this process is never changed. `Config::load(None)`
//! reads the working directory, which the tests that change it share through
//! [`CWD`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

use f1_stream::config::{Config, ConfigError, ExtractorConfig, ExtractorKind, RankingOrder};
use f1_stream::model::SessionType;

/// Held by every test that changes the working directory.
static CWD: Mutex<()> = Mutex::new(());

fn cwd_lock() -> MutexGuard<'static, ()> {
    CWD.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parse(toml: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(toml)
}

/// Parses `toml`, expects it to fail, and returns the message.
fn error_of(toml: &str) -> String {
    match parse(toml) {
        Ok(config) => panic!("expected an error for\n{toml}\ngot {config:#?}"),
        Err(err) => err.to_string(),
    }
}

/// Asserts that `toml` fails with a message naming every one of `needles`.
#[track_caller]
fn assert_rejected(toml: &str, needles: &[&str]) {
    let message = error_of(toml);
    for needle in needles {
        assert!(
            message.contains(needle),
            "error for\n{toml}\nshould name {needle:?}, got: {message}"
        );
    }
}

/// Asserts that `toml` fails with `ConfigError::Invalid` on exactly `key`.
#[track_caller]
fn assert_invalid_key(toml: &str, key: &str) {
    match parse(toml) {
        Err(ConfigError::Invalid { key: got, message }) => {
            assert_eq!(got, key, "wrong key for\n{toml}\n(message: {message})");
        }
        other => panic!("expected Invalid {{ key: {key:?} }} for\n{toml}\ngot {other:?}"),
    }
}

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

const M3U_EXTRACTOR: &str = "[[extractors]]\nsite_key = \"iptv\"\nsite_name = \"IPTV\"\nkind = \"m3u\"\n";
const STATIC_EXTRACTOR: &str =
    "[[extractors]]\nsite_key = \"list\"\nsite_name = \"List\"\nkind = \"static\"\n";

// --- defaults and files ---------------------------------------------------

#[test]
fn shipped_config_toml_equals_the_built_in_defaults() {
    let path = repo_file("config.toml");
    let loaded = Config::load(Some(&path)).expect("the shipped config.toml loads");
    let defaults = Config::default();
    assert_eq!(loaded.server, defaults.server);
    assert_eq!(loaded.database, defaults.database);
    assert_eq!(loaded.network, defaults.network);
    assert_eq!(loaded.extraction, defaults.extraction);
    assert_eq!(loaded.health, defaults.health);
    assert_eq!(loaded.ranking, defaults.ranking);
    assert_eq!(loaded.proxy, defaults.proxy);
    assert_eq!(loaded.schedule, defaults.schedule);
    assert_eq!(loaded.extractors, defaults.extractors);
    assert_eq!(loaded, defaults);
}

#[test]
fn built_in_defaults_match_spec_section_4() {
    let config = Config::default();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.public_url, "");
    assert_eq!(config.server.cors_allow_origins, ["*"]);
    assert_eq!(config.server.metrics_listen, None);
    assert_eq!(config.database.url, "sqlite://data/f1-stream.db");
    assert_eq!(config.database.retention_days, 30);
    assert!(!config.network.allow_private_networks);
    assert_eq!(config.network.max_redirects, 5);
    assert_eq!(config.extraction.interval_secs, 1800);
    assert_eq!(config.extraction.live_interval_secs, 300);
    assert!(config.extraction.run_on_startup);
    assert_eq!(config.extraction.extractor_timeout_secs, 60);
    assert_eq!(config.health.timeout_secs, 10);
    assert_eq!(config.health.max_bytes, 8192);
    assert_eq!(config.health.concurrency, 64);
    assert_eq!(config.health.user_agent, "Mozilla/5.0 (compatible; f1-stream)");
    assert!(config.health.probe_segment);
    assert_eq!(config.health.segment_bytes, 262_144);
    assert_eq!(config.health.failures_before_down, 2);
    assert_eq!(config.ranking.default_order, RankingOrder::Fastest);
    assert_eq!(config.proxy.playlist_timeout_secs, 15);
    assert_eq!(config.proxy.relay_first_byte_timeout_secs, 30);
    assert_eq!(config.proxy.relay_idle_timeout_secs, 30);
    assert_eq!(config.proxy.max_playlist_bytes, 4_194_304);
    assert!(config.proxy.require_signature);
    assert_eq!(config.proxy.signing_key.expose(), "");
    assert_eq!(config.proxy.signature_cache_entries, 32_768);
    assert!(config.schedule.enabled);
    assert_eq!(config.schedule.url, "https://api.jolpi.ca/ergast/f1/current.json");
    assert_eq!(config.schedule.refresh_hour_utc, 3);
    assert_eq!(config.schedule.lead_minutes, 15);
    assert_eq!(config.schedule.overrun_minutes, 30);
    config.validate().expect("defaults validate");
}

#[test]
fn empty_toml_gives_the_defaults_with_the_single_demo_extractor() {
    let config = parse("").expect("empty config is valid");
    assert_eq!(config, Config::default());
    assert_eq!(config.extractors.len(), 1);
    let demo = &config.extractors[0];
    assert_eq!(demo, &ExtractorConfig::demo());
    assert_eq!(demo.site_key, "demo");
    assert_eq!(demo.site_name, "Demo (Test Streams)");
    assert_eq!(demo.kind, ExtractorKind::Demo);
    assert!(demo.enabled);
    assert!(demo.headers.is_empty());
}

#[test]
fn partial_sections_keep_the_defaults_of_the_keys_they_omit() {
    let config =
        parse("[proxy]\nrequire_signature = false\n[ranking]\ndefault_order = \"score\"\n").expect("valid");
    assert!(!config.proxy.require_signature);
    assert_eq!(config.proxy.playlist_timeout_secs, 15);
    assert_eq!(config.ranking.default_order, RankingOrder::Score);
    assert_eq!(config.schedule, Config::default().schedule);
}

#[test]
fn a_named_file_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("custom.toml");
    std::fs::write(
        &path,
        "[ranking]\ndefault_order = \"score\"\n[database]\nretention_days = 0\n",
    )
    .expect("write config");
    let config = Config::load(Some(&path)).expect("named file loads");
    assert_eq!(config.ranking.default_order, RankingOrder::Score);
    assert_eq!(config.database.retention_days, 0);
    assert_eq!(config.extractors, [ExtractorConfig::demo()]);
}

#[test]
fn a_missing_named_file_is_missing_file_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.toml");
    let result = Config::load(Some(&path));
    match result {
        Err(ConfigError::MissingFile(missing)) => assert_eq!(missing, path),
        other => panic!("expected MissingFile, got {other:?}"),
    }
}

#[test]
fn a_named_path_that_is_a_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let result = Config::load(Some(dir.path()));
    match result {
        Err(ConfigError::MissingFile(path)) => assert_eq!(path, dir.path()),
        other => panic!("a directory is not a config file: {other:?}"),
    }
}

#[test]
fn a_named_file_with_bad_toml_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[health\nconcurrency = 3\n").expect("write config");
    let result = Config::load(Some(&path));
    assert!(matches!(result, Err(ConfigError::Parse(_))), "{result:?}");
}

/// Restores the working directory when dropped (also on panic).
struct CwdGuard(PathBuf);

impl Drop for CwdGuard {
    fn drop(&mut self) {
        std::env::set_current_dir(&self.0).expect("restore working directory");
    }
}

#[test]
fn default_file_is_optional_and_read_from_the_working_directory() {
    let _cwd = cwd_lock();
    let dir = tempfile::tempdir().expect("temp dir");
    let _restore = CwdGuard(std::env::current_dir().expect("cwd"));

    std::env::set_current_dir(dir.path()).expect("cd temp dir");
    let missing = Config::load(None).expect("a missing default file is fine");
    assert_eq!(missing, Config::default());

    std::fs::write(
        dir.path().join("config.toml"),
        "[ranking]\ndefault_order = \"score\"\n",
    )
    .expect("write config");
    let present = Config::load(None).expect("default file loads");
    assert_eq!(present.ranking.default_order, RankingOrder::Score);
}

#[test]
fn default_file_is_not_searched_for_in_parent_directories() {
    let _cwd = cwd_lock();
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[ranking]\ndefault_order = \"score\"\n",
    )
    .expect("write config");
    let _restore = CwdGuard(std::env::current_dir().expect("cwd"));
    std::env::set_current_dir(&sub).expect("cd sub");
    let config = Config::load(None).expect("no config.toml in the working directory is fine");
    assert_eq!(
        config.ranking.default_order,
        RankingOrder::Fastest,
        "the parent's config.toml must not be read"
    );
}

// --- secrets ------------------------------------------------------------------

#[test]
fn debug_of_a_config_names_extractor_headers_without_their_values() {
    let secret = "session=c00kie-value";
    let toml = format!(
        "[[extractors]]\nsite_key = \"s\"\nsite_name = \"S\"\nkind = \"static\"\n\
         headers = {{ Cookie = \"{secret}\", Referer = \"https://r.example/\" }}\n\
         streams = [{{ url = \"https://cdn.example/a.m3u8\" }}]\n"
    );
    let config = parse(&toml).expect("valid");
    let printed = format!("{config:?}");
    assert!(!printed.contains(secret), "header value printed: {printed}");
    assert!(printed.contains("\"Cookie\""), "{printed}");
}

#[test]
fn debug_of_a_config_never_prints_the_signing_key() {
    let key = "s3cr3t-signing-key-value";
    let config = parse(&format!("[proxy]\nsigning_key = \"{key}\"\n")).expect("valid");
    assert_eq!(
        config.proxy.signing_key.expose(),
        key,
        "the key is loaded as written"
    );
    for printed in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", config.proxy),
    ] {
        assert!(!printed.contains(key), "key printed: {printed}");
        assert!(printed.contains("signing_key: \"<redacted>\""), "{printed}");
    }
    let unset = format!("{:?}", Config::default().proxy);
    assert!(
        unset.contains("signing_key: \"\""),
        "an unset key shows as empty: {unset}"
    );
}

#[test]
fn a_set_signing_key_is_never_serialized() {
    let mut config = Config::default();
    assert!(serde_json::to_string(&config).is_ok(), "defaults serialize");
    config.proxy.signing_key = f1_stream::config::Secret::new("s3cr3t-signing-key-value");
    let err = serde_json::to_string(&config).expect_err("a set secret does not serialize");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
}

// --- rules shared with the proxy ---------------------------------------------------

#[test]
fn health_playlist_limits_above_the_proxy_limit_are_refused_naming_the_key() {
    for (key, max_bytes, media_playlist_bytes) in
        [("max_bytes", 4097, 4096), ("media_playlist_bytes", 4096, 4097)]
    {
        let toml = format!(
            "[proxy]\nmax_playlist_bytes = 4096\n[health]\nmax_bytes = {max_bytes}\nmedia_playlist_bytes = {media_playlist_bytes}\n"
        );
        let err = Config::from_toml_str(&toml).expect_err("over the proxy's limit");
        let message = err.to_string();
        assert!(message.contains(&format!("health.{key}")), "{message}");
        assert!(message.contains("proxy.max_playlist_bytes"), "{message}");
    }
    let fits =
        "[proxy]\nmax_playlist_bytes = 4096\n[health]\nmax_bytes = 4096\nmedia_playlist_bytes = 4096\n";
    assert!(Config::from_toml_str(fits).is_ok());
}

// --- unknown keys -----------------------------------------------------------

#[test]
fn unknown_top_level_key_fails_naming_it() {
    assert_rejected("colour = \"red\"\n", &["colour"]);
}

#[test]
fn unknown_section_fails_naming_it() {
    assert_rejected("[healthz]\ntimeout_secs = 3\n", &["healthz"]);
}

#[test]
fn unknown_key_inside_a_section_fails_naming_it() {
    assert_rejected("[health]\ntimeout = 3\n", &["timeout", "health"]);
    assert_rejected("[server]\nlisten_addr = \"127.0.0.1:1\"\n", &["listen_addr"]);
}

#[test]
fn unknown_key_inside_an_extractor_fails_naming_it() {
    assert_rejected(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\nreferer = \"x\"\n",
        &["referer"],
    );
}

#[test]
fn unknown_key_inside_a_static_stream_or_json_fields_fails_naming_it() {
    assert_rejected(
        &format!("{STATIC_EXTRACTOR}streams = [{{ url = \"https://a.example/x.m3u8\", name = \"x\" }}]\n"),
        &["name"],
    );
    assert_rejected(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
         url = \"https://a.example/x.json\"\nfields = { url = \"/u\", link = \"/l\" }\n",
        &["link"],
    );
}

// --- bad values ---------------------------------------------------------------

#[test]
fn wrong_type_fails_naming_the_key() {
    assert_rejected("[health]\nconcurrency = \"lots\"\n", &["concurrency", "lots"]);
    assert_rejected("[extraction]\nrun_on_startup = \"yes\"\n", &["run_on_startup"]);
}

#[test]
fn negative_number_fails_naming_the_key() {
    assert_rejected("[database]\nretention_days = -1\n", &["retention_days"]);
}

#[test]
fn zero_concurrency_fails_naming_the_key() {
    assert_invalid_key("[health]\nconcurrency = 0\n", "health.concurrency");
    assert_rejected("[health]\nconcurrency = 0\n", &["health.concurrency"]);
}

#[test]
fn every_zero_limit_fails_naming_its_key() {
    for (section, key) in [
        ("extraction", "interval_secs"),
        ("extraction", "live_interval_secs"),
        ("extraction", "extractor_timeout_secs"),
        ("extraction", "max_source_bytes"),
        ("health", "timeout_secs"),
        ("health", "max_bytes"),
        ("health", "segment_bytes"),
        ("health", "failures_before_down"),
        ("health", "media_playlist_bytes"),
        ("proxy", "playlist_timeout_secs"),
        ("proxy", "relay_first_byte_timeout_secs"),
        ("proxy", "relay_idle_timeout_secs"),
        ("proxy", "max_playlist_bytes"),
        ("schedule", "timeout_secs"),
        ("schedule", "max_bytes"),
    ] {
        assert_invalid_key(&format!("[{section}]\n{key} = 0\n"), &format!("{section}.{key}"));
    }
}

#[test]
fn listen_that_is_not_an_address_fails_naming_the_key() {
    assert_rejected("[server]\nlisten = \"nope\"\n", &["listen"]);
}

#[test]
fn bad_metrics_listen_and_public_url_fail_naming_the_key() {
    // Parsed by serde, so figment's error names the key.
    assert_rejected(
        "[server]\nmetrics_listen = \"nope\"\n",
        &["server.metrics_listen", "\"nope\" is not an address"],
    );
    assert_rejected("[server]\nmetrics_listen = 9464\n", &["server.metrics_listen"]);
    assert_invalid_key("[server]\npublic_url = \"ftp://x\"\n", "server.public_url");
    assert_invalid_key(
        "[server]\ncors_allow_origins = [\"not a url\"]\n",
        "server.cors_allow_origins",
    );
}

#[test]
fn metrics_listen_is_an_optional_address_where_empty_or_absent_is_none() {
    assert_eq!(parse("").expect("valid").server.metrics_listen, None);
    assert_eq!(
        parse("[server]\nmetrics_listen = \"\"\n")
            .expect("valid")
            .server
            .metrics_listen,
        None
    );
    let set = parse("[server]\nmetrics_listen = \"127.0.0.1:9464\"\n").expect("valid");
    assert_eq!(
        set.server.metrics_listen,
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464)))
    );
    let v6 = parse("[server]\nmetrics_listen = \"[::1]:0\"\n").expect("valid");
    assert_eq!(
        v6.server.metrics_listen,
        Some("[::1]:0".parse().expect("address"))
    );
}

#[test]
fn refresh_hour_24_fails_naming_the_key() {
    assert_invalid_key("[schedule]\nrefresh_hour_utc = 24\n", "schedule.refresh_hour_utc");
    let ok = parse("[schedule]\nrefresh_hour_utc = 23\n").expect("23 is an hour");
    assert_eq!(ok.schedule.refresh_hour_utc, 23);
}

#[test]
fn schedule_url_must_be_http_only_while_enabled() {
    assert_invalid_key("[schedule]\nurl = \"file:///etc/passwd\"\n", "schedule.url");
    parse("[schedule]\nenabled = false\nurl = \"\"\n").expect("a disabled schedule needs no URL");
}

#[test]
fn non_sqlite_database_url_fails_naming_the_key() {
    assert_invalid_key("[database]\nurl = \"postgres://x\"\n", "database.url");
    assert_invalid_key("[database]\nurl = \"sqlite:\"\n", "database.url");
    assert_rejected("[database]\nurl = \"postgres://x\"\n", &["database.url"]);
}

#[test]
fn too_many_redirects_and_bad_user_agent_fail_naming_the_key() {
    assert_invalid_key("[network]\nmax_redirects = 21\n", "network.max_redirects");
    assert_invalid_key("[health]\nuser_agent = \"a\\nb\"\n", "health.user_agent");
}

#[test]
fn bad_ranking_order_fails_naming_the_key() {
    assert_rejected(
        "[ranking]\ndefault_order = \"slowest\"\n",
        &["default_order", "slowest"],
    );
}

#[test]
fn uppercase_site_key_fails_naming_the_key() {
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"Demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n",
        "extractors[0].site_key",
    );
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"\"\nsite_name = \"Demo\"\nkind = \"demo\"\n",
        "extractors[0].site_key",
    );
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"a b\"\nsite_name = \"Demo\"\nkind = \"demo\"\n",
        "extractors[0].site_key",
    );
}

#[test]
fn empty_site_name_fails_naming_the_key() {
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"  \"\nkind = \"demo\"\n",
        "extractors[0].site_name",
    );
}

#[test]
fn missing_site_key_or_kind_fails_naming_the_key() {
    assert_rejected(
        "[[extractors]]\nsite_name = \"Demo\"\nkind = \"demo\"\n",
        &["site_key"],
    );
    assert_rejected(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\n",
        &["kind"],
    );
}

#[test]
fn duplicate_site_keys_fail_naming_the_second() {
    let toml = "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"One\"\nkind = \"demo\"\n\
                [[extractors]]\nsite_key = \"demo\"\nsite_name = \"Two\"\nkind = \"demo\"\n";
    assert_invalid_key(toml, "extractors[1].site_key");
    assert_rejected(toml, &["duplicate", "demo"]);
}

#[test]
fn unknown_kind_fails_naming_the_key() {
    assert_rejected(
        "[[extractors]]\nsite_key = \"x\"\nsite_name = \"X\"\nkind = \"magic\"\n",
        &["kind", "magic"],
    );
}

#[test]
fn static_stream_without_an_http_url_fails_naming_the_key() {
    assert_invalid_key(
        &format!(
            "{STATIC_EXTRACTOR}streams = [{{ url = \"https://a.example/ok.m3u8\" }}, {{ url = \"rtmp://a.example/live\" }}]\n"
        ),
        "extractors[0].streams[1].url",
    );
    assert_invalid_key(
        &format!("{STATIC_EXTRACTOR}streams = [{{ url = \"not a url\" }}]\n"),
        "extractors[0].streams[0].url",
    );
    assert_rejected(
        &format!("{STATIC_EXTRACTOR}streams = [{{ title = \"no url\" }}]\n"),
        &["url"],
    );
}

#[test]
fn static_stream_with_an_unknown_session_fails_naming_the_key() {
    assert_rejected(
        &format!(
            "{STATIC_EXTRACTOR}streams = [{{ url = \"https://a.example/x.m3u8\", session = \"warmup\" }}]\n"
        ),
        &["session", "warmup"],
    );
}

#[test]
fn m3u_without_url_fails_naming_the_key() {
    assert_invalid_key(M3U_EXTRACTOR, "extractors[0].url");
    assert_invalid_key(&format!("{M3U_EXTRACTOR}url = \" \"\n"), "extractors[0].url");
}

#[test]
fn m3u_url_may_be_http_or_a_file_path_but_not_another_scheme() {
    let remote = parse(&format!(
        "{M3U_EXTRACTOR}url = \"https://lists.example/f1.m3u\"\n"
    ))
    .expect("http url");
    assert_eq!(
        remote.extractors[0].url.as_deref(),
        Some("https://lists.example/f1.m3u")
    );
    let file = parse(&format!("{M3U_EXTRACTOR}url = \"/srv/lists/f1.m3u\"\n")).expect("file path");
    assert_eq!(file.extractors[0].url.as_deref(), Some("/srv/lists/f1.m3u"));
    assert_invalid_key(
        &format!("{M3U_EXTRACTOR}url = \"http://\"\n"),
        "extractors[0].url",
    );
}

#[test]
fn json_without_fields_or_url_fails_naming_the_key() {
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
         url = \"https://a.example/x.json\"\n",
        "extractors[0].fields",
    );
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
         fields = { url = \"/u\" }\n",
        "extractors[0].url",
    );
    assert_rejected(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
         url = \"https://a.example/x.json\"\nfields = { title = \"/t\" }\n",
        &["url"],
    );
}

#[test]
fn json_url_must_be_http() {
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
         url = \"/srv/api.json\"\nfields = { url = \"/u\" }\n",
        "extractors[0].url",
    );
}

#[test]
fn json_pointers_must_start_with_a_slash() {
    let base = "[[extractors]]\nsite_key = \"api\"\nsite_name = \"API\"\nkind = \"json\"\n\
                url = \"https://a.example/x.json\"\n";
    assert_invalid_key(
        &format!("{base}items = \"data\"\nfields = {{ url = \"/u\" }}\n"),
        "extractors[0].items",
    );
    assert_invalid_key(
        &format!("{base}fields = {{ url = \"u\" }}\n"),
        "extractors[0].fields.url",
    );
    assert_invalid_key(
        &format!("{base}fields = {{ url = \"/u\", title = \"t\" }}\n"),
        "extractors[0].fields.title",
    );
    let ok = parse(&format!(
        "{base}items = \"/data/streams\"\nfields = {{ url = \"/src\", title = \"/name\", quality = \"/q\", session = \"/s\" }}\n"
    ))
    .expect("valid json extractor");
    let fields = ok.extractors[0].fields.as_ref().expect("fields");
    assert_eq!(fields.url, "/src");
    assert_eq!(fields.session.as_deref(), Some("/s"));
    assert_eq!(ok.extractors[0].items.as_deref(), Some("/data/streams"));
}

#[test]
fn kind_specific_key_on_the_wrong_kind_fails_naming_the_key() {
    assert_invalid_key(
        &format!("{STATIC_EXTRACTOR}title_filter = \"f1\"\n"),
        "extractors[0].title_filter",
    );
    assert_invalid_key(
        &format!("{STATIC_EXTRACTOR}url = \"https://a.example/x.m3u\"\n"),
        "extractors[0].url",
    );
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n\
         streams = [{ url = \"https://a.example/x.m3u8\" }]\n",
        "extractors[0].streams",
    );
    assert_invalid_key(
        &format!("{M3U_EXTRACTOR}url = \"https://a.example/x.m3u\"\nitems = \"/x\"\n"),
        "extractors[0].items",
    );
    assert_invalid_key(
        &format!("{M3U_EXTRACTOR}url = \"https://a.example/x.m3u\"\nfields = {{ url = \"/u\" }}\n"),
        "extractors[0].fields",
    );
}

#[test]
fn invalid_title_filter_regex_fails_naming_the_key() {
    let toml = format!("{M3U_EXTRACTOR}url = \"https://a.example/x.m3u\"\ntitle_filter = \"(f1\"\n");
    assert_invalid_key(&toml, "extractors[0].title_filter");
    assert_rejected(&toml, &["title_filter"]);
}

#[test]
fn invalid_header_name_or_value_fails_naming_the_key() {
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n\
         headers = { \"Bad Header\" = \"x\" }\n",
        "extractors[0].headers",
    );
    assert_invalid_key(
        "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n\
         headers = { Referer = \"a\\nb\" }\n",
        "extractors[0].headers",
    );
}

#[test]
fn errors_in_later_extractors_name_their_index() {
    let toml = "[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo\"\nkind = \"demo\"\n\
                [[extractors]]\nsite_key = \"iptv\"\nsite_name = \"IPTV\"\nkind = \"m3u\"\n";
    assert_invalid_key(toml, "extractors[1].url");
}

// --- the extractor list -----------------------------------------------------

#[test]
fn extractors_in_the_file_replace_the_demo_extractor() {
    let config = parse(&format!(
        "{STATIC_EXTRACTOR}headers = {{ Referer = \"https://a.example/\" }}\n\
         streams = [{{ url = \"https://a.example/x.m3u8\", title = \"Race feed\", quality = \"1080p\", session = \"race\" }}]\n\
         {M3U_EXTRACTOR}url = \"https://a.example/list.m3u\"\ntitle_filter = \"(?i)f1\"\nenabled = false\n"
    ))
    .expect("valid");
    let keys: Vec<&str> = config.extractors.iter().map(|e| e.site_key.as_str()).collect();
    assert_eq!(keys, ["list", "iptv"], "the demo extractor is replaced, not kept");
    let list = &config.extractors[0];
    assert_eq!(list.kind, ExtractorKind::Static);
    assert!(list.enabled, "enabled defaults to true");
    assert_eq!(list.headers["Referer"], "https://a.example/");
    assert_eq!(list.streams.len(), 1);
    assert_eq!(list.streams[0].title.as_deref(), Some("Race feed"));
    assert_eq!(list.streams[0].quality.as_deref(), Some("1080p"));
    assert_eq!(list.streams[0].session, Some(SessionType::Race));
    let iptv = &config.extractors[1];
    assert_eq!(iptv.kind, ExtractorKind::M3u);
    assert!(!iptv.enabled);
    assert_eq!(iptv.title_filter.as_deref(), Some("(?i)f1"));
}

#[test]
fn a_demo_entry_in_the_file_is_not_doubled() {
    let config =
        parse("[[extractors]]\nsite_key = \"demo\"\nsite_name = \"Demo (Test Streams)\"\nkind = \"demo\"\n")
            .expect("valid");
    assert_eq!(config.extractors, [ExtractorConfig::demo()]);
}

#[test]
fn empty_extractor_list_means_none() {
    let config = parse("extractors = []\n").expect("valid");
    assert!(config.extractors.is_empty(), "{:?}", config.extractors);
}

// --- environment ------------------------------------------------------------

/// Tells a child run of this binary which environment scenario to check. It
/// does not start with `F1S_`, so the loader never sees it.
const CHILD_SCENARIO: &str = "F1_STREAM_CONFIG_TEST_SCENARIO";

/// The config file the environment scenarios load.
const ENV_FILE: &str = "[health]\nconcurrency = 3\nmax_bytes = 4096\n[server]\nlisten = \"127.0.0.1:7000\"\n";

/// Runs [`environment_scenario_in_a_child_process`] in a new process of this
/// test binary with `vars` set, and returns its output.
fn run_scenario(scenario: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("path of this test binary"));
    command
        .args([
            "environment_scenario_in_a_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SCENARIO, scenario);
    for (name, _) in std::env::vars() {
        if name.starts_with("F1S_") {
            command.env_remove(name);
        }
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("the test binary runs")
}

#[track_caller]
fn assert_scenario_passes(scenario: &str, vars: &[(&str, &str)]) {
    let output = run_scenario(scenario, vars);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "scenario {scenario} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("scenario {scenario} checked")),
        "scenario {scenario} did not run\n{stdout}"
    );
}

/// The one test of this file that sets environment variables (in child
/// processes; see the file's doc comment).
#[test]
fn environment_overrides_the_file_and_bad_env_values_fail_naming_the_key() {
    assert_scenario_passes(
        "override",
        &[
            ("F1S_HEALTH__CONCURRENCY", "7"),
            ("F1S_SERVER__LISTEN", "127.0.0.1:9099"),
            ("F1S_PROXY__SIGNING_KEY", "key from the environment"),
            ("F1S_SERVER__METRICS_LISTEN", "127.0.0.1:9464"),
            ("F1S_AUTH__ADMIN_TOKEN", "token from the environment"),
        ],
    );
    assert_scenario_passes("invalid", &[("F1S_HEALTH__CONCURRENCY", "0")]);
    assert_scenario_passes("bad_type", &[("F1S_HEALTH__TIMEOUT_SECS", "abc")]);
    assert_scenario_passes("unknown", &[("F1S_HEALTH__TIMEOUT", "3")]);
}

/// Does nothing in a normal run; in a child started by
/// [`run_scenario`] it checks one environment scenario.
#[test]
fn environment_scenario_in_a_child_process() {
    let Ok(scenario) = std::env::var(CHILD_SCENARIO) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, ENV_FILE).expect("write config");
    let load = || Config::load(Some(&path));
    match scenario.as_str() {
        "override" => {
            let config = load().expect("file plus environment loads");
            assert_eq!(config.health.concurrency, 7, "the environment beats the file");
            assert_eq!(config.server.listen.to_string(), "127.0.0.1:9099");
            assert_eq!(config.proxy.signing_key.expose(), "key from the environment");
            assert_eq!(config.auth.admin_token.expose(), "token from the environment");
            assert_eq!(
                config.server.metrics_listen,
                Some("127.0.0.1:9464".parse().expect("address"))
            );
            assert_eq!(
                config.health.max_bytes, 4096,
                "keys the environment leaves alone keep the file's value"
            );
            let from_str = Config::from_toml_str("[health]\nconcurrency = 3\n").expect("loads");
            assert_eq!(
                from_str.health.concurrency, 7,
                "from_toml_str reads the environment too"
            );
            assert_eq!(from_str.server.listen.to_string(), "127.0.0.1:9099");
        }
        "invalid" => match load() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "health.concurrency"),
            other => panic!("expected Invalid health.concurrency, got {other:?}"),
        },
        "bad_type" | "unknown" => {
            let message = match load() {
                Ok(config) => panic!("scenario {scenario} must fail, got {config:?}"),
                Err(err) => err.to_string(),
            };
            let key = if scenario == "bad_type" {
                "timeout_secs"
            } else {
                "timeout"
            };
            assert!(
                message.to_ascii_lowercase().contains(key),
                "the error should name {key}: {message}"
            );
            if scenario == "bad_type" {
                assert!(
                    message.contains("abc"),
                    "the error should show the value: {message}"
                );
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("scenario {scenario} checked");
}

#[test]
fn schedule_minutes_beyond_a_day_and_durations_out_of_range_fail_naming_the_key() {
    for key in ["lead_minutes", "overrun_minutes", "overrun_minutes_other"] {
        assert!(
            parse(&format!("[schedule]\n{key} = 1440\n")).is_ok(),
            "{key}: one day is fine"
        );
        assert_invalid_key(&format!("[schedule]\n{key} = 1441\n"), &format!("schedule.{key}"));
    }
    for session in ["race", "sprint_qualifying"] {
        assert!(parse(&format!("[schedule.durations]\n{session} = 1440\n")).is_ok());
        for minutes in [0, 1441] {
            assert_invalid_key(
                &format!("[schedule.durations]\n{session} = {minutes}\n"),
                &format!("schedule.durations.{session}"),
            );
        }
    }
}
