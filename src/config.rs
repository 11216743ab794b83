//! Configuration: the whole schema (every key is in `config.toml` with its
//! default), layered defaults < TOML file < `F1S_` environment, and
//! validation that names the offending key.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::model::RankingOrder;
use crate::model::{SessionType, is_valid_site_key};

/// Named defaults: every limit, timeout and bound lives here once.
pub mod defaults {
    /// Address the HTTP server binds.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// SQLite database location.
    pub const DATABASE_URL: &str = "sqlite://data/f1-stream.db";
    /// Days raw health checks are kept.
    pub const RETENTION_DAYS: u32 = 30;
    /// Largest database file in MiB; 0 means unlimited.
    pub const DATABASE_MAX_SIZE_MB: u64 = 0;
    /// Largest accepted `database.max_size_mb`: SQLite counts at most
    /// 2^32 - 2 pages, 16 TiB of 4 KiB pages.
    pub const DATABASE_MAX_SIZE_MB_LIMIT: u64 = 16 * 1024 * 1024 - 1;
    /// Redirect hops followed by any outgoing request.
    pub const MAX_REDIRECTS: u32 = 5;
    /// Seconds between runs while no session is live.
    pub const INTERVAL_SECS: u64 = 1800;
    /// Seconds between runs while a session is live.
    pub const LIVE_INTERVAL_SECS: u64 = 300;
    /// Seconds one extractor may take before its run is abandoned.
    pub const EXTRACTOR_TIMEOUT_SECS: u64 = 60;
    /// Largest source document (M3U, JSON) read, in bytes.
    pub const MAX_SOURCE_BYTES: u64 = 32 * 1024 * 1024;
    /// Seconds one health check may take in total.
    pub const HEALTH_TIMEOUT_SECS: u64 = 10;
    /// Bytes of a playlist a health check reads.
    pub const HEALTH_MAX_BYTES: u64 = 8192;
    /// Health checks in flight at once.
    pub const HEALTH_CONCURRENCY: usize = 64;
    /// User-Agent of outgoing requests unless an extractor sets its own.
    pub const USER_AGENT: &str = "Mozilla/5.0 (compatible; f1-stream)";
    /// Bytes of a media playlist the deep health check reads.
    pub const MEDIA_PLAYLIST_BYTES: u64 = 1024 * 1024;
    /// Bytes of one segment the deep health check reads.
    pub const SEGMENT_BYTES: u64 = 262_144;
    /// Consecutive failures before a healthy stream is dropped.
    pub const FAILURES_BEFORE_DOWN: u32 = 2;
    /// Seconds a proxied playlist fetch may take.
    pub const PLAYLIST_TIMEOUT_SECS: u64 = 15;
    /// Seconds the relay waits for the upstream's response head.
    pub const RELAY_FIRST_BYTE_TIMEOUT_SECS: u64 = 30;
    /// Seconds the relay tolerates a silent upstream mid-body.
    pub const RELAY_IDLE_TIMEOUT_SECS: u64 = 30;
    /// Largest playlist the proxy rewrites, in bytes.
    pub const MAX_PLAYLIST_BYTES: u64 = 4 * 1024 * 1024;
    /// Public F1 calendar (Ergast-compatible).
    pub const SCHEDULE_URL: &str = "https://api.jolpi.ca/ergast/f1/current.json";
    /// Hour (UTC) of the daily calendar refresh.
    pub const SCHEDULE_REFRESH_HOUR_UTC: u8 = 3;
    /// Minutes before a session that fast polling starts.
    pub const SCHEDULE_LEAD_MINUTES: u32 = 15;
    /// Minutes after a race's planned end that fast polling continues.
    pub const SCHEDULE_OVERRUN_MINUTES: u32 = 30;
    /// Minutes after any other session's planned end that fast polling continues.
    pub const SCHEDULE_OVERRUN_MINUTES_OTHER: u32 = 15;
    /// Seconds one calendar fetch may take.
    pub const SCHEDULE_TIMEOUT_SECS: u64 = 30;
    /// Largest calendar document read, in bytes (a season is ~50 KiB).
    pub const SCHEDULE_MAX_BYTES: u64 = 1024 * 1024;
    /// Planned minutes of a practice session (fp1, fp2, fp3).
    pub const PRACTICE_MINUTES: u32 = 60;
    /// Planned minutes of sprint qualifying.
    pub const SPRINT_QUALIFYING_MINUTES: u32 = 30;
    /// Planned minutes of a sprint.
    pub const SPRINT_MINUTES: u32 = 30;
    /// Planned minutes of qualifying.
    pub const QUALIFYING_MINUTES: u32 = 60;
    /// Planned minutes of a race.
    pub const RACE_MINUTES: u32 = 120;
    /// Seconds a graceful shutdown waits for open requests.
    pub const SHUTDOWN_GRACE_SECS: u64 = 10;
    /// Signed proxy paths remembered across playlist reloads.
    pub const SIGNATURE_CACHE_ENTRIES: usize = 32_768;
    /// Slug of the built-in channel of every served stream.
    pub const BEST_CHANNEL: &str = "best";
    /// `server.header_read_timeout_secs`: a player's request head arrives in
    /// milliseconds; a client a byte per second is dropped.
    pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
    /// `server.max_header_bytes`: far above any player's or browser's head.
    pub const MAX_HEADER_BYTES: usize = 131_072;
    /// `proxy.max_relays`: a home uplink is full long before this.
    pub const MAX_RELAYS: u32 = 1024;
    /// `proxy.max_relays_per_client`: four players of a multi-view, each
    /// with a few segments in flight, stay well within it.
    pub const MAX_RELAYS_PER_CLIENT: u32 = 32;
    /// Seconds a source that failed a channel is not chosen again by it.
    pub const FAILED_SOURCE_COOLDOWN_SECS: u64 = 300;
}

/// Everything the service can be told; one field per `config.toml` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listener and what clients see.
    pub server: ServerConfig,
    /// Where history is kept and for how long.
    pub database: DatabaseConfig,
    /// Rules for every outgoing request.
    pub network: NetworkConfig,
    /// Cadence and bounds of extraction runs.
    pub extraction: ExtractionConfig,
    /// How a stream is judged healthy.
    pub health: HealthConfig,
    /// Order of the served list.
    pub ranking: RankingConfig,
    /// The HLS proxy's limits and signing.
    pub proxy: ProxyConfig,
    /// The F1 calendar that drives adaptive polling.
    pub schedule: ScheduleConfig,
    /// Who may change things (`POST` routes).
    pub auth: AuthConfig,
    /// The configured sources of streams (the demo one when the key is absent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extractors: Vec<ExtractorConfig>,
    /// Failover channels (`[[channels]]`); the built-in `best` is added by
    /// [`Config::channels`] unless one of them takes its slug.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            network: NetworkConfig::default(),
            extraction: ExtractionConfig::default(),
            health: HealthConfig::default(),
            ranking: RankingConfig::default(),
            proxy: ProxyConfig::default(),
            schedule: ScheduleConfig::default(),
            auth: AuthConfig::default(),
            extractors: vec![ExtractorConfig::demo()],
            channels: Vec::new(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP API and proxy.
    pub listen: SocketAddr,
    /// Base of rewritten playlist URIs; empty derives it from request headers.
    pub public_url: String,
    /// Origins allowed by CORS; `"*"` allows any.
    pub cors_allow_origins: Vec<String>,
    /// Optional second address that serves only `/metrics`; an empty string
    /// or no key is `None`. Parsed when the config loads, so a bad address
    /// fails naming `server.metrics_listen`.
    #[serde(with = "optional_address")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds open requests may finish after SIGTERM before they are cut.
    pub shutdown_grace_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client, as
    /// addresses or networks (`["127.0.0.1", "10.0.0.0/8"]`); from any
    /// other peer forwarding headers are dropped (the peer is the client).
    #[serde(with = "addresses_or_networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seconds a client has to send a request's head; then the connection
    /// is closed.
    pub header_read_timeout_secs: u64,
    /// Largest request head read, in bytes.
    pub max_header_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: defaults::LISTEN.parse().expect("default listen address is valid"),
            public_url: String::new(),
            cors_allow_origins: vec!["*".to_owned()],
            metrics_listen: None,
            shutdown_grace_secs: defaults::SHUTDOWN_GRACE_SECS,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: defaults::HEADER_READ_TIMEOUT_SECS,
            max_header_bytes: defaults::MAX_HEADER_BYTES,
        }
    }
}

/// Networks written as `a.b.c.d/n` or as single addresses (a host network).
mod addresses_or_networks {
    use std::net::IpAddr;

    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        serde::de::Error::custom(format!("{text:?} is not an IP address or network"))
                    })
            })
            .collect()
    }
}

/// `Option<SocketAddr>` written as a string where `""` means `None`, as in
/// `config.toml` (`metrics_listen = ""`).
mod optional_address {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<SocketAddr>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(address) => serializer.collect_str(address),
            None => serializer.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
        match Option::<String>::deserialize(deserializer)?
            .as_deref()
            .map(str::trim)
        {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an address like 127.0.0.1:9464 ({e}); empty disables it"
                ))
            }),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative paths are relative to the working directory).
    pub url: String,
    /// Days raw checks are kept; 0 keeps them forever.
    pub retention_days: u32,
    /// Largest size of the database file in MiB, 0 for unlimited: a write
    /// that would grow it further fails (SQLite `max_page_count`), so a full
    /// disk can be simulated and a runaway history cannot fill a real one.
    pub max_size_mb: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: defaults::DATABASE_URL.to_owned(),
            retention_days: defaults::RETENTION_DAYS,
            max_size_mb: defaults::DATABASE_MAX_SIZE_MB,
        }
    }
}

/// `[network]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Lets outgoing requests reach loopback and private addresses.
    pub allow_private_networks: bool,
    /// Networks exempt from the guard even when private ones are refused,
    /// e.g. `["192.168.1.20/32"]` for one LAN origin.
    pub allow_addresses: Vec<ipnet::IpNet>,
    /// Redirect hops followed before giving up.
    pub max_redirects: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            allow_addresses: Vec::new(),
            max_redirects: defaults::MAX_REDIRECTS,
        }
    }
}

/// `[extraction]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractionConfig {
    /// Seconds between runs when no session is live.
    pub interval_secs: u64,
    /// Seconds between runs while a session is live.
    pub live_interval_secs: u64,
    /// Run once as soon as the service starts.
    pub run_on_startup: bool,
    /// Seconds one extractor may take.
    pub extractor_timeout_secs: u64,
    /// Largest source document read, so a huge M3U cannot exhaust memory.
    pub max_source_bytes: u64,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        Self {
            interval_secs: defaults::INTERVAL_SECS,
            live_interval_secs: defaults::LIVE_INTERVAL_SECS,
            run_on_startup: true,
            extractor_timeout_secs: defaults::EXTRACTOR_TIMEOUT_SECS,
            max_source_bytes: defaults::MAX_SOURCE_BYTES,
        }
    }
}

/// `[health]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Seconds one check may take in total.
    pub timeout_secs: u64,
    /// Bytes of the playlist read (sent as a Range request).
    pub max_bytes: u64,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// User-Agent unless an extractor's headers set one.
    pub user_agent: String,
    /// Largest media playlist read when a master's variant (or a media
    /// playlist cut at `max_bytes`) is checked.
    pub media_playlist_bytes: u64,
    /// Also fetch part of one segment (deep health).
    pub probe_segment: bool,
    /// Byte budget of that segment probe.
    pub segment_bytes: u64,
    /// Consecutive failures before a healthy stream is dropped.
    pub failures_before_down: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            timeout_secs: defaults::HEALTH_TIMEOUT_SECS,
            max_bytes: defaults::HEALTH_MAX_BYTES,
            concurrency: defaults::HEALTH_CONCURRENCY,
            user_agent: defaults::USER_AGENT.to_owned(),
            media_playlist_bytes: defaults::MEDIA_PLAYLIST_BYTES,
            probe_segment: true,
            segment_bytes: defaults::SEGMENT_BYTES,
            failures_before_down: defaults::FAILURES_BEFORE_DOWN,
        }
    }
}

/// `[ranking]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RankingConfig {
    /// Order of `/streams` when the client does not ask for one.
    pub default_order: RankingOrder,
}

/// `[proxy]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Seconds a playlist fetch may take.
    pub playlist_timeout_secs: u64,
    /// Seconds the upstream has to start answering a relay.
    pub relay_first_byte_timeout_secs: u64,
    /// Seconds a relayed body may go silent.
    pub relay_idle_timeout_secs: u64,
    /// Largest playlist rewritten.
    pub max_playlist_bytes: u64,
    /// Refuse `/proxy` and `/relay` URLs without a valid signature.
    pub require_signature: bool,
    /// HMAC key of signed proxy URLs: the UTF-8 bytes of this string are the
    /// key. Empty: 32 random bytes generated once and kept in the database
    /// (see `app::signing_key`). Never printed (see [`Secret`]).
    pub signing_key: Secret,
    /// Signed URIs remembered across playlist reloads, so a reload signs
    /// only its new URIs (0: none; about 250 bytes each, at most 1 KiB on
    /// average).
    pub signature_cache_entries: usize,
    /// Relays streaming at once, from all clients; 0: no limit.
    pub max_relays: u32,
    /// Relays streaming at once for one client address; 0: no limit.
    pub max_relays_per_client: u32,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            playlist_timeout_secs: defaults::PLAYLIST_TIMEOUT_SECS,
            relay_first_byte_timeout_secs: defaults::RELAY_FIRST_BYTE_TIMEOUT_SECS,
            relay_idle_timeout_secs: defaults::RELAY_IDLE_TIMEOUT_SECS,
            max_playlist_bytes: defaults::MAX_PLAYLIST_BYTES,
            require_signature: true,
            signing_key: Secret::default(),
            signature_cache_entries: defaults::SIGNATURE_CACHE_ENTRIES,
            max_relays: defaults::MAX_RELAYS,
            max_relays_per_client: defaults::MAX_RELAYS_PER_CLIENT,
        }
    }
}

/// A secret from the configuration (e.g. `proxy.signing_key`): read from the
/// same plain string key and environment variable as any other value, but
/// its `Debug` prints `"<redacted>"` when set, and serializing a set secret
/// is an error rather than a copy of it (the only serialization of a
/// [`Config`] is the built-in defaults, where secrets are empty).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's text, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            serializer.serialize_str("")
        } else {
            Err(serde::ser::Error::custom(
                "a configured secret is never serialized",
            ))
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The bearer token every mutating request must carry; empty: mutating
    /// requests are answered only for a loopback client that came through
    /// no proxy. Never printed (see [`Secret`]).
    pub admin_token: Secret,
    /// Who may read (the page, the API, `/metrics`) when any is listed:
    /// HTTP Basic with these names and passwords. Empty: reading is open.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub viewers: Vec<ViewerConfig>,
}

/// One `auth.viewers` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ViewerConfig {
    /// The user name (no `:`, as HTTP Basic requires).
    pub name: String,
    /// An argon2 hash in PHC form, as `f1-stream hash-password` prints it.
    pub password_hash: Secret,
}

/// `[schedule]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Use the F1 calendar for adaptive polling.
    pub enabled: bool,
    /// Ergast-compatible calendar URL.
    pub url: String,
    /// Hour (UTC) of the daily refresh.
    pub refresh_hour_utc: u8,
    /// Minutes before a session that fast polling starts.
    pub lead_minutes: u32,
    /// Minutes after a race's planned end that fast polling continues.
    pub overrun_minutes: u32,
    /// Minutes after any other session's planned end that fast polling continues.
    pub overrun_minutes_other: u32,
    /// Seconds one calendar fetch may take.
    pub timeout_secs: u64,
    /// Largest calendar document read, in bytes.
    pub max_bytes: u64,
    /// Planned minutes of each session type (`[schedule.durations]`).
    pub durations: SessionDurations,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            url: defaults::SCHEDULE_URL.to_owned(),
            refresh_hour_utc: defaults::SCHEDULE_REFRESH_HOUR_UTC,
            lead_minutes: defaults::SCHEDULE_LEAD_MINUTES,
            overrun_minutes: defaults::SCHEDULE_OVERRUN_MINUTES,
            overrun_minutes_other: defaults::SCHEDULE_OVERRUN_MINUTES_OTHER,
            timeout_secs: defaults::SCHEDULE_TIMEOUT_SECS,
            max_bytes: defaults::SCHEDULE_MAX_BYTES,
            durations: SessionDurations::default(),
        }
    }
}

/// `[schedule.durations]`: planned minutes per session type; a session's
/// fast-polling window and its `live` status end this long after its start
/// (plus the overrun).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionDurations {
    /// First practice.
    pub fp1: u32,
    /// Second practice.
    pub fp2: u32,
    /// Third practice.
    pub fp3: u32,
    /// Sprint qualifying (sprint shootout in older seasons).
    pub sprint_qualifying: u32,
    /// Sprint.
    pub sprint: u32,
    /// Qualifying.
    pub qualifying: u32,
    /// Race.
    pub race: u32,
}

impl SessionDurations {
    /// Planned minutes of `session`.
    pub fn minutes(&self, session: SessionType) -> u32 {
        match session {
            SessionType::Fp1 => self.fp1,
            SessionType::Fp2 => self.fp2,
            SessionType::Fp3 => self.fp3,
            SessionType::SprintQualifying => self.sprint_qualifying,
            SessionType::Sprint => self.sprint,
            SessionType::Qualifying => self.qualifying,
            SessionType::Race => self.race,
        }
    }
}

impl Default for SessionDurations {
    fn default() -> Self {
        Self {
            fp1: defaults::PRACTICE_MINUTES,
            fp2: defaults::PRACTICE_MINUTES,
            fp3: defaults::PRACTICE_MINUTES,
            sprint_qualifying: defaults::SPRINT_QUALIFYING_MINUTES,
            sprint: defaults::SPRINT_MINUTES,
            qualifying: defaults::QUALIFYING_MINUTES,
            race: defaults::RACE_MINUTES,
        }
    }
}

/// Kinds of extractor.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExtractorKind {
    /// Built-in public HLS test streams.
    Demo,
    /// A fixed list from the config file.
    Static,
    /// An M3U playlist at a URL or path.
    M3u,
    /// A JSON document mapped with JSON pointers.
    Json,
}

impl ExtractorKind {
    /// The name used in config and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Demo => "demo",
            Self::Static => "static",
            Self::M3u => "m3u",
            Self::Json => "json",
        }
    }
}

/// One `[[extractors]]` entry. Kind-specific keys are optional here and
/// required or refused by [`Config::validate`], so errors name the key.
/// `Debug` shows the names of its `headers`, never their values (a
/// `Cookie` or `Authorization` is a secret).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExtractorConfig {
    /// Unique key, lowercase `[a-z0-9_-]`.
    pub site_key: String,
    /// Display name.
    pub site_name: String,
    /// Which source implementation.
    pub kind: ExtractorKind,
    /// Disabled extractors are not run and their streams are not served.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Extra request headers for this extractor's streams.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `static`: the streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StaticStream>,
    /// `m3u` and `json`: where the document is (http(s) URL; `m3u` also a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `m3u`: keep only entries whose title or group matches this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_filter: Option<String>,
    /// `json`: JSON pointer to the array of items (empty: the document itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// `json`: JSON pointers inside each item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<JsonFields>,
}

fn enabled_by_default() -> bool {
    true
}

impl fmt::Debug for ExtractorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractorConfig")
            .field("site_key", &self.site_key)
            .field("site_name", &self.site_name)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("streams", &self.streams)
            .field("url", &self.url)
            .field("title_filter", &self.title_filter)
            .field("items", &self.items)
            .field("fields", &self.fields)
            .finish()
    }
}

impl ExtractorConfig {
    /// The extractor the default configuration ships with.
    pub fn demo() -> Self {
        Self {
            site_key: "demo".to_owned(),
            site_name: "Demo (Test Streams)".to_owned(),
            kind: ExtractorKind::Demo,
            enabled: true,
            headers: BTreeMap::new(),
            streams: Vec::new(),
            url: None,
            title_filter: None,
            items: None,
            fields: None,
        }
    }
}

/// One stream of a `static` extractor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticStream {
    /// Absolute http(s) URL of the playlist.
    pub url: String,
    /// Display title.
    #[serde(default)]
    pub title: Option<String>,
    /// Quality label, e.g. `1080p`.
    #[serde(default)]
    pub quality: Option<String>,
    /// Session type the stream belongs to.
    #[serde(default)]
    pub session: Option<SessionType>,
}

/// JSON pointers that map one item of a `json` source to a stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonFields {
    /// Pointer to the stream URL (required).
    pub url: String,
    /// Pointer to the title.
    #[serde(default)]
    pub title: Option<String>,
    /// Pointer to the quality label.
    #[serde(default)]
    pub quality: Option<String>,
    /// Pointer to the session type.
    #[serde(default)]
    pub session: Option<String>,
}

/// `[[channels]]`: one failover channel, a live playlist stitched from the
/// best-ranked healthy stream that matches its filters (README "Failover
/// channels"). Empty filters match everything.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelConfig {
    /// `[a-z0-9_-]{1,64}`, unique: the channel is `/channels/<slug>.m3u8`.
    pub slug: String,
    /// Display name (the slug when empty).
    pub title: String,
    /// Only streams of this session type or untagged ones; `live`: the
    /// session whose window is open (as `GET /streams?session=`).
    pub session: String,
    /// Only this extractor's streams.
    pub site_key: String,
    /// Only streams of this type (`live`, `event`, `vod`, `unknown`).
    pub stream_type: String,
    /// Only streams whose title matches this regular expression.
    pub title_filter: String,
    /// Highest variant `BANDWIDTH` chosen from a master playlist, bits/s
    /// (0: no cap; when every variant is above it: the lowest one).
    pub max_bandwidth: u64,
    /// Seconds a source that failed this channel is not chosen again.
    pub failed_source_cooldown_secs: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            slug: String::new(),
            title: String::new(),
            session: String::new(),
            site_key: String::new(),
            stream_type: String::new(),
            title_filter: String::new(),
            max_bandwidth: 0,
            failed_source_cooldown_secs: defaults::FAILED_SOURCE_COOLDOWN_SECS,
        }
    }
}

impl ChannelConfig {
    /// The built-in channel: every served stream, in the default ranking.
    pub fn best() -> Self {
        Self {
            slug: defaults::BEST_CHANNEL.to_owned(),
            title: "Best available".to_owned(),
            ..Self::default()
        }
    }

    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            key: format!("channels[{index}].{field}"),
            message,
        };
        if !crate::model::is_valid_channel_slug(&self.slug) {
            return Err(invalid(
                "slug",
                format!(
                    "{:?} must be 1-{} characters of [a-z0-9_-]",
                    self.slug,
                    crate::model::MAX_SITE_KEY_CHARS
                ),
            ));
        }
        if !self.session.is_empty() && self.session != "live" && self.session.parse::<SessionType>().is_err()
        {
            let names: Vec<&str> = SessionType::ALL.iter().map(|s| s.as_str()).collect();
            return Err(invalid(
                "session",
                format!("{:?} is not one of {}, live", self.session, names.join(", ")),
            ));
        }
        if !self.site_key.is_empty() && !is_valid_site_key(&self.site_key) {
            return Err(invalid(
                "site_key",
                format!("{:?} is not a valid site key", self.site_key),
            ));
        }
        match self.stream_type.parse::<crate::model::StreamType>() {
            _ if self.stream_type.is_empty() => {}
            Ok(crate::model::StreamType::Vod) => {
                return Err(invalid(
                    "stream_type",
                    "\"vod\": a channel stitches live playlists; VOD streams are never its sources".into(),
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(invalid(
                    "stream_type",
                    format!("{:?} is not one of live, event, unknown", self.stream_type),
                ));
            }
        }
        if !self.title_filter.is_empty()
            && let Err(e) = regex::Regex::new(&self.title_filter)
        {
            return Err(invalid("title_filter", format!("not a regular expression: {e}")));
        }
        Ok(())
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named on the command line does not exist (or is not a file).
    #[error("config file {0} does not exist or is not a file")]
    MissingFile(PathBuf),
    /// A key is unknown or its value does not parse: figment's message,
    /// without anything that could quote a secret (see [`describe`]).
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value parses but is not acceptable.
    #[error("invalid configuration: `{key}`: {message}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        Self::Parse(describe(err))
    }
}

/// Keys whose values are secrets (matched on any level of a key's path,
/// so `auth.admin_token`, `proxy.signing_key`, `auth.viewers[…]` and an
/// extractor's `headers` all count).
const SECRET_KEYS: [&str; 4] = ["admin_token", "signing_key", "viewers", "headers"];

/// figment's errors as text that quotes no secret: the TOML parser's
/// excerpt of the offending line is left out (it may be the line holding a
/// token), keeping the line and column; and for a key that holds a secret,
/// the value the error quotes between backticks is replaced.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|error| {
            let secret = error
                .path
                .iter()
                .any(|part| SECRET_KEYS.iter().any(|key| part.eq_ignore_ascii_case(key)));
            let full = error.to_string();
            let kept: Vec<String> = full
                .lines()
                .filter(|line| !is_source_excerpt(line))
                .map(|line| {
                    if secret {
                        without_quoted_values(line)
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            kept.join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `line` is part of the TOML parser's excerpt of the source:
/// `   |`, `6 | admin_token = "…"`, `  |      ^`.
fn is_source_excerpt(line: &str) -> bool {
    let rest = line.trim_start().trim_start_matches(|c: char| c.is_ascii_digit());
    rest.trim_start().starts_with('|')
}

/// `line` with every value between backticks replaced by `<redacted>`.
fn without_quoted_values(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut parts = line.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (index, part) in parts.enumerate() {
        out.push('`');
        out.push_str(if index % 2 == 0 { "<redacted>" } else { part });
    }
    out
}

/// Prefix of environment overrides (`F1S_SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "F1S_";
/// File read when `-c` is not given; it may be absent.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";

impl Config {
    /// Loads defaults, then `path` (or `config.toml` when `None`, which may be
    /// missing), then `F1S_` environment variables, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) if !path.is_file() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|default| default.is_file()),
        };
        let mut figment = Self::base();
        if let Some(file) = file {
            // `file_exact`: `Toml::file` would climb parent folders and load
            // a config.toml nobody named.
            figment = figment.merge(Toml::file_exact(file));
        }
        Self::extract(figment.merge(Self::env()))
    }

    /// Loads defaults, then the TOML text, then the environment; used by tests
    /// and tools that hold a config in memory.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(Self::base().merge(Toml::string(toml)).merge(Self::env()))
    }

    fn base() -> Figment {
        // Defaults are merged without the extractor list (an empty list is not
        // serialized): a file that lists extractors replaces the demo one
        // instead of merging into it, and a file without the key gets the
        // demo one from `Config::default()` during extraction.
        let mut defaults = Config::default();
        defaults.extractors.clear();
        Figment::from(Serialized::defaults(defaults))
    }

    fn env() -> Env {
        Env::prefixed(ENV_PREFIX).split("__")
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Every channel served: the configured ones in order, then the
    /// built-in `best` unless a configured one has its slug.
    pub fn channels(&self) -> Vec<ChannelConfig> {
        let mut channels = self.channels.clone();
        if !channels.iter().any(|c| c.slug == defaults::BEST_CHANNEL) {
            channels.push(ChannelConfig::best());
        }
        channels
    }

    /// Checks the values serde cannot: ranges, URLs, regexes, unique keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            message,
        };
        if !self.server.public_url.is_empty() {
            check_http_url(&self.server.public_url).map_err(|m| invalid("server.public_url", m))?;
        }
        if self.server.header_read_timeout_secs == 0 {
            return Err(invalid(
                "server.header_read_timeout_secs",
                "must be at least 1".into(),
            ));
        }
        if !(8192..=1_048_576).contains(&self.server.max_header_bytes) {
            return Err(invalid(
                "server.max_header_bytes",
                "must be from 8192 to 1048576".into(),
            ));
        }
        for (index, viewer) in self.auth.viewers.iter().enumerate() {
            let key = format!("auth.viewers[{index}]");
            if viewer.name.is_empty()
                || viewer.name.contains(':')
                || viewer.name.chars().any(char::is_control)
            {
                return Err(invalid(
                    &format!("{key}.name"),
                    "must be non-empty, without ':' or control characters".into(),
                ));
            }
            if self.auth.viewers[..index]
                .iter()
                .any(|other| other.name == viewer.name)
            {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("{:?} is listed twice", viewer.name),
                ));
            }
            argon2::PasswordHash::new(viewer.password_hash.expose()).map_err(|e| {
                invalid(
                    &format!("{key}.password_hash"),
                    format!(
                        "is not a password hash in PHC form ({e}); make one with `f1-stream hash-password`"
                    ),
                )
            })?;
        }
        for origin in &self.server.cors_allow_origins {
            if origin != "*" {
                check_http_url(origin).map_err(|m| invalid("server.cors_allow_origins", m))?;
            }
        }
        if self
            .database
            .url
            .strip_prefix("sqlite:")
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                "database.url",
                "must be a sqlite: URL, e.g. sqlite://data/f1-stream.db".into(),
            ));
        }
        if self.database.max_size_mb > defaults::DATABASE_MAX_SIZE_MB_LIMIT {
            return Err(invalid(
                "database.max_size_mb",
                format!(
                    "must be at most {} (0 = unlimited)",
                    defaults::DATABASE_MAX_SIZE_MB_LIMIT
                ),
            ));
        }
        let positive = [
            ("extraction.interval_secs", self.extraction.interval_secs),
            (
                "extraction.live_interval_secs",
                self.extraction.live_interval_secs,
            ),
            (
                "extraction.extractor_timeout_secs",
                self.extraction.extractor_timeout_secs,
            ),
            ("extraction.max_source_bytes", self.extraction.max_source_bytes),
            ("health.timeout_secs", self.health.timeout_secs),
            ("health.max_bytes", self.health.max_bytes),
            ("health.concurrency", self.health.concurrency as u64),
            ("health.segment_bytes", self.health.segment_bytes),
            ("health.media_playlist_bytes", self.health.media_playlist_bytes),
            (
                "health.failures_before_down",
                u64::from(self.health.failures_before_down),
            ),
            ("proxy.playlist_timeout_secs", self.proxy.playlist_timeout_secs),
            (
                "proxy.relay_first_byte_timeout_secs",
                self.proxy.relay_first_byte_timeout_secs,
            ),
            (
                "proxy.relay_idle_timeout_secs",
                self.proxy.relay_idle_timeout_secs,
            ),
            ("proxy.max_playlist_bytes", self.proxy.max_playlist_bytes),
            ("schedule.timeout_secs", self.schedule.timeout_secs),
            ("schedule.max_bytes", self.schedule.max_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        // What the checker reads whole must fit what the proxy serves, or a
        // stream could be healthy and answer 502 through its proxy_url.
        for (key, value) in [
            ("health.max_bytes", self.health.max_bytes),
            ("health.media_playlist_bytes", self.health.media_playlist_bytes),
        ] {
            if value > self.proxy.max_playlist_bytes {
                return Err(invalid(
                    key,
                    format!(
                        "must be at most proxy.max_playlist_bytes ({}): a playlist the health check accepts must \
                         be one the proxy serves",
                        self.proxy.max_playlist_bytes
                    ),
                ));
            }
        }
        if self.network.max_redirects > 20 {
            return Err(invalid("network.max_redirects", "must be at most 20".into()));
        }
        if reqwest::header::HeaderValue::from_str(&self.health.user_agent).is_err() {
            return Err(invalid("health.user_agent", "not a valid header value".into()));
        }
        if self.schedule.refresh_hour_utc > 23 {
            return Err(invalid("schedule.refresh_hour_utc", "must be 0..=23".into()));
        }
        if self.schedule.enabled {
            check_http_url(&self.schedule.url).map_err(|m| invalid("schedule.url", m))?;
        }
        let day = [
            ("schedule.lead_minutes", self.schedule.lead_minutes),
            ("schedule.overrun_minutes", self.schedule.overrun_minutes),
            (
                "schedule.overrun_minutes_other",
                self.schedule.overrun_minutes_other,
            ),
        ];
        for (key, minutes) in day {
            if minutes > MINUTES_PER_DAY {
                return Err(invalid(
                    key,
                    format!("must be at most {MINUTES_PER_DAY} (one day)"),
                ));
            }
        }
        for session in SessionType::ALL {
            let minutes = self.schedule.durations.minutes(session);
            if minutes == 0 || minutes > MINUTES_PER_DAY {
                return Err(invalid(
                    &format!("schedule.durations.{}", session.as_str()),
                    format!("must be from 1 to {MINUTES_PER_DAY} minutes"),
                ));
            }
        }
        let mut slugs = HashSet::new();
        for (index, channel) in self.channels.iter().enumerate() {
            channel.validate(index)?;
            if !slugs.insert(channel.slug.as_str()) {
                return Err(invalid(
                    &format!("channels[{index}].slug"),
                    format!("duplicate slug {:?}", channel.slug),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (index, extractor) in self.extractors.iter().enumerate() {
            extractor.validate(index)?;
            if !seen.insert(extractor.site_key.as_str()) {
                return Err(invalid(
                    &format!("extractors[{index}].site_key"),
                    format!("duplicate site_key {:?}", extractor.site_key),
                ));
            }
        }
        Ok(())
    }
}

impl ExtractorConfig {
    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            key: format!("extractors[{index}].{field}"),
            message,
        };
        if !is_valid_site_key(&self.site_key) {
            return Err(invalid(
                "site_key",
                format!(
                    "{:?} must be 1-{} characters of [a-z0-9_-]",
                    self.site_key,
                    crate::model::MAX_SITE_KEY_CHARS
                ),
            ));
        }
        if self.site_name.trim().is_empty() {
            return Err(invalid("site_name", "must not be empty".into()));
        }
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid("headers", format!("{name:?} is not a header name")));
            }
            if reqwest::header::HeaderValue::from_str(value).is_err() {
                return Err(invalid(
                    "headers",
                    format!("value of {name:?} is not a header value"),
                ));
            }
        }
        let refuse = |field: &str, present: bool| {
            if present {
                Err(invalid(
                    field,
                    format!("not a key of kind = {:?}", self.kind.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        let require = |field: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("required for kind = {:?}", self.kind.as_str()),
                ))
            }
        };
        let is_static = self.kind == ExtractorKind::Static;
        let is_json = self.kind == ExtractorKind::Json;
        let has_url = matches!(self.kind, ExtractorKind::M3u | ExtractorKind::Json);
        refuse("streams", !is_static && !self.streams.is_empty())?;
        refuse("url", !has_url && self.url.is_some())?;
        refuse(
            "title_filter",
            self.kind != ExtractorKind::M3u && self.title_filter.is_some(),
        )?;
        refuse("items", !is_json && self.items.is_some())?;
        refuse("fields", !is_json && self.fields.is_some())?;
        if has_url {
            require("url", self.url.is_some())?;
        }
        if is_json {
            require("fields", self.fields.is_some())?;
        }
        for (i, stream) in self.streams.iter().enumerate() {
            check_http_url(&stream.url).map_err(|m| invalid(&format!("streams[{i}].url"), m))?;
        }
        if let Some(url) = &self.url {
            let is_remote = url.starts_with("http://") || url.starts_with("https://");
            if is_json || is_remote {
                check_http_url(url).map_err(|m| invalid("url", m))?;
            } else if url.trim().is_empty() {
                return Err(invalid("url", "must be an http(s) URL or a file path".into()));
            }
        }
        if let Some(filter) = &self.title_filter {
            regex::Regex::new(filter).map_err(|e| invalid("title_filter", e.to_string()))?;
        }
        if let Some(items) = &self.items {
            check_pointer(items).map_err(|m| invalid("items", m))?;
        }
        if let Some(fields) = &self.fields {
            check_pointer(&fields.url).map_err(|m| invalid("fields.url", m))?;
            let optional = [
                ("fields.title", &fields.title),
                ("fields.quality", &fields.quality),
                ("fields.session", &fields.session),
            ];
            for (key, pointer) in optional {
                if let Some(pointer) = pointer {
                    check_pointer(pointer).map_err(|m| invalid(key, m))?;
                }
            }
        }
        Ok(())
    }
}

/// Upper bound of the schedule's minute settings: a window longer than a day
/// is a typo, not a plan.
const MINUTES_PER_DAY: u32 = 24 * 60;

fn check_http_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{value:?} must be an http(s) URL"));
    }
    Ok(())
}

fn check_pointer(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{pointer:?} is not a JSON pointer (must be empty or start with '/')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn max_size_mb_beyond_what_sqlite_can_count_fails_naming_the_key() {
        let limit = defaults::DATABASE_MAX_SIZE_MB_LIMIT;
        let err = Config::from_toml_str(&format!("[database]\nmax_size_mb = {}\n", limit + 1))
            .expect_err("too big");
        assert!(err.to_string().contains("`database.max_size_mb`"), "{err}");
        let config =
            Config::from_toml_str(&format!("[database]\nmax_size_mb = {limit}\n")).expect("at the limit");
        assert_eq!(config.database.max_size_mb, limit);
    }
}
