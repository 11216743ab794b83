//! Plain domain types shared by every layer: what sources find, what a health
//! check concludes, and what a run records. No I/O here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Longest `site_key` (extractor key, and the `src` of a proxy URL).
pub const MAX_SITE_KEY_CHARS: usize = 64;

/// Whether `key` is an acceptable site key: 1 to [`MAX_SITE_KEY_CHARS`]
/// characters of `[a-z0-9_-]`. One rule for the configuration, the API's
/// `site_key` filter and the proxy's `src`, so a key that loads is a key
/// every part accepts.
pub fn is_valid_site_key(key: &str) -> bool {
    (1..=MAX_SITE_KEY_CHARS).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `slug` names a channel: the site-key rule
/// ([`is_valid_site_key`]), so a slug is safe in a path and a metric label.
pub fn is_valid_channel_slug(slug: &str) -> bool {
    is_valid_site_key(slug)
}

/// Orders `/streams` can be served in (`ranking.default_order`, `order=`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RankingOrder {
    /// Healthy, live broadcasts first, fastest response first.
    #[default]
    Fastest,
    /// By a score from recent history.
    Score,
}

/// A stream as a source reports it, before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCandidate {
    /// Absolute http(s) URL of the playlist.
    pub url: String,
    /// Display title, if the source has one.
    pub title: Option<String>,
    /// Quality label such as `1080p`.
    pub quality: Option<String>,
    /// F1 session the stream belongs to, when known.
    pub session: Option<SessionType>,
}

impl StreamCandidate {
    /// A candidate with only a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            title: None,
            quality: None,
            session: None,
        }
    }
}

/// The F1 session types of a race weekend, ordered as in a weekend
/// (declaration order, the order of [`SessionType::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionType {
    /// First practice.
    Fp1,
    /// Second practice.
    Fp2,
    /// Third practice.
    Fp3,
    /// Sprint qualifying (formerly sprint shootout).
    SprintQualifying,
    /// Sprint race.
    Sprint,
    /// Qualifying.
    Qualifying,
    /// Grand Prix.
    Race,
}

impl SessionType {
    /// Every session type, in weekend order.
    pub const ALL: [SessionType; 7] = [
        Self::Fp1,
        Self::Fp2,
        Self::Fp3,
        Self::SprintQualifying,
        Self::Sprint,
        Self::Qualifying,
        Self::Race,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp1 => "fp1",
            Self::Fp2 => "fp2",
            Self::Fp3 => "fp3",
            Self::SprintQualifying => "sprint_qualifying",
            Self::Sprint => "sprint",
            Self::Qualifying => "qualifying",
            Self::Race => "race",
        }
    }

    /// Guesses the session from free text such as an M3U title or group
    /// ("F1 Sprint Qualifying", "FP2", "Grand Prix"); `None` when unclear.
    pub fn detect(text: &str) -> Option<Self> {
        // Whole words only: "Racing Point" or "Terrace cam" name no race,
        // and "fp10" no first practice.
        let text = text.to_ascii_lowercase();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect();
        let has = |phrase: &str| {
            let phrase: Vec<&str> = phrase.split(' ').collect();
            words.windows(phrase.len()).any(|run| run == phrase.as_slice())
        };
        if has("sprint qualifying") || has("sprint shootout") {
            Some(Self::SprintQualifying)
        } else if has("sprint") {
            Some(Self::Sprint)
        } else if has("qualifying") || has("quali") {
            Some(Self::Qualifying)
        } else if has("fp1") || has("practice 1") {
            Some(Self::Fp1)
        } else if has("fp2") || has("practice 2") {
            Some(Self::Fp2)
        } else if has("fp3") || has("practice 3") {
            Some(Self::Fp3)
        } else if has("race") || has("grand prix") {
            Some(Self::Race)
        } else {
            None
        }
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// A name that is not one of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

/// Why a stream is not healthy; closed set, so it can label metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No complete answer within the timeout.
    Timeout,
    /// TCP connection failed.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The server answered with a status other than 200/206.
    HttpStatus,
    /// The body is not an HLS playlist.
    NotHls,
    /// A body exceeded its size limit.
    TooLarge,
    /// The target is a private or otherwise forbidden address.
    Blocked,
    /// Anything else (bad URL, broken body, redirect loop).
    Other,
    /// A master playlist whose tried variants all failed.
    Variant,
    /// A live playlist that stopped advancing (frozen encoder).
    Stale,
    /// The probed segment could not be fetched.
    Segment,
    /// 401, 403 or 451: may need headers or another region, not dead.
    Restricted,
}

impl ErrorKind {
    /// Every kind, for metrics that must exist from startup.
    pub const ALL: [ErrorKind; 13] = [
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::Tls,
        Self::HttpStatus,
        Self::NotHls,
        Self::TooLarge,
        Self::Blocked,
        Self::Other,
        Self::Variant,
        Self::Stale,
        Self::Segment,
        Self::Restricted,
    ];

    /// The name used in the API, the database and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::HttpStatus => "http_status",
            Self::NotHls => "not_hls",
            Self::TooLarge => "too_large",
            Self::Blocked => "blocked",
            Self::Other => "other",
            Self::Variant => "variant",
            Self::Stale => "stale",
            Self::Segment => "segment",
            Self::Restricted => "restricted",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a failover channel changed its source; closed set, so it labels
/// metrics (`f1stream_channel_switches_total`) and is a column of
/// `channel_switches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum SwitchReason {
    /// The channel's first source was chosen.
    Started,
    /// The source's playlist failed twice in a row (status, timeout, not a
    /// playlist).
    PlaylistFailed,
    /// No new segment for 3 target durations.
    Stale,
    /// Its segments failed through the relay.
    SegmentsFailed,
    /// Its playlist ended (`#EXT-X-ENDLIST`).
    Ended,
    /// The source restarted its own numbering; the channel stays on it
    /// after a discontinuity.
    SourceRestarted,
}

impl SwitchReason {
    /// Every reason, for metrics that must exist from startup.
    pub const ALL: [SwitchReason; 6] = [
        Self::Started,
        Self::PlaylistFailed,
        Self::Stale,
        Self::SegmentsFailed,
        Self::Ended,
        Self::SourceRestarted,
    ];

    /// The name used in the API, the database and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::PlaylistFailed => "playlist_failed",
            Self::Stale => "stale",
            Self::SegmentsFailed => "segments_failed",
            Self::Ended => "ended",
            Self::SourceRestarted => "source_restarted",
        }
    }
}

impl fmt::Display for SwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SwitchReason {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// Whether a playlist lists variants or segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaylistKind {
    /// A multivariant ("master") playlist.
    Master,
    /// A media playlist of segments.
    Media,
}

impl PlaylistKind {
    /// The name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Media => "media",
        }
    }
}

/// What kind of broadcast a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    /// A live broadcast (media playlist without an end).
    Live,
    /// A live event that keeps its segments (`PLAYLIST-TYPE:EVENT`).
    Event,
    /// Video on demand (`#EXT-X-ENDLIST` or `PLAYLIST-TYPE:VOD`).
    Vod,
    /// Not determined (a master playlist, or a truncated read).
    #[default]
    Unknown,
}

impl StreamType {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Event => "event",
            Self::Vod => "vod",
            Self::Unknown => "unknown",
        }
    }
}

impl FromStr for StreamType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Live, Self::Event, Self::Vod, Self::Unknown]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// The verdict of one health check. A dead stream is a value, not an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthResult {
    /// When the check started.
    #[serde(serialize_with = "serialize_timestamp")]
    pub checked_at: DateTime<Utc>,
    /// Healthy: a player can play it (the deep check of `health`: a
    /// playlist by the shared rule, a loadable media playlist, a segment
    /// whose bytes are media). The name is the public API's, inherited from
    /// the prototype.
    pub is_live: bool,
    /// Milliseconds from request start to the body read; `None` when no
    /// response arrived.
    pub response_time_ms: Option<u64>,
    /// Milliseconds from request start to the response head.
    pub ttfb_ms: Option<u64>,
    /// Status of the final response, if any.
    pub http_status: Option<u16>,
    /// Highest `BANDWIDTH` of the variants, 0 if none.
    pub bitrate: u64,
    /// Why the stream is unhealthy.
    pub error_kind: Option<ErrorKind>,
    /// A short human message for `error_kind`.
    pub error: Option<String>,
    /// Master or media playlist, when the body was a playlist.
    pub playlist_kind: Option<PlaylistKind>,
    /// Live, event, VOD or unknown.
    pub stream_type: StreamType,
    /// Variants a master playlist lists.
    pub variant_count: Option<u32>,
    /// `#EXT-X-MEDIA-SEQUENCE` of the media playlist checked.
    pub media_sequence: Option<u64>,
    /// `#EXT-X-TARGETDURATION` of the media playlist checked, in seconds.
    pub target_duration: Option<f64>,
    /// URI of the newest segment, to tell a moving live playlist from a
    /// frozen one (at most [`MediaState::MAX_SEGMENT_CHARS`] characters).
    pub last_segment: Option<String>,
    /// The media sequence went backwards since the last check: a restarted
    /// encoder, which is not a failure.
    pub restarted: bool,
    /// Milliseconds to the probed segment's response head.
    pub segment_ttfb_ms: Option<u64>,
    /// Measured transfer rate of the segment probe, bits per second.
    pub throughput_bps: Option<u64>,
    /// `throughput_bps` ÷ the variant's declared `BANDWIDTH`; below 1 the
    /// stream cannot be delivered in real time from here.
    pub throughput_ratio: Option<f64>,
}

impl HealthResult {
    /// A result with nothing learned yet: unhealthy, no error, no figures.
    pub fn unchecked(checked_at: DateTime<Utc>) -> Self {
        Self {
            checked_at,
            is_live: false,
            response_time_ms: None,
            ttfb_ms: None,
            http_status: None,
            bitrate: 0,
            error_kind: None,
            error: None,
            playlist_kind: None,
            stream_type: StreamType::Unknown,
            variant_count: None,
            media_sequence: None,
            target_duration: None,
            last_segment: None,
            restarted: false,
            segment_ttfb_ms: None,
            throughput_bps: None,
            throughput_ratio: None,
        }
    }

    /// An unhealthy result with its reason.
    pub fn failed(checked_at: DateTime<Utc>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            error_kind: Some(kind),
            error: Some(message.into()),
            ..Self::unchecked(checked_at)
        }
    }

    /// What the next check compares against to tell a frozen live playlist.
    pub fn media_state(&self) -> Option<MediaState> {
        Some(MediaState {
            media_sequence: self.media_sequence?,
            last_segment: self.last_segment.clone()?,
            checked_at: self.checked_at,
        })
    }
}

/// A live media playlist's position as one check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaState {
    /// `#EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// URI of the newest segment.
    pub last_segment: String,
    /// When that check ran.
    pub checked_at: DateTime<Utc>,
}

impl MediaState {
    /// Longest segment URI kept for the comparison.
    pub const MAX_SEGMENT_CHARS: usize = 512;
}

/// Whether a stream is served, with flap damping: one failed check of a
/// healthy stream makes it `pending` (still served, ranked after healthy
/// ones); `health.failures_before_down` consecutive failures make it `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// The latest check passed.
    Healthy,
    /// Served, but its latest check(s) failed.
    Pending,
    /// Not served.
    Down,
}

impl HealthState {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Pending => "pending",
            Self::Down => "down",
        }
    }

    /// Parses a stored name; anything unknown is `down`.
    pub fn from_stored(name: &str) -> Self {
        match name {
            "healthy" => Self::Healthy,
            "pending" => Self::Pending,
            _ => Self::Down,
        }
    }

    /// The state after a check: `previous` is the stored state and its
    /// count of consecutive failures (`None` for a new stream). Returns the
    /// new state and count.
    pub fn after_check(
        previous: Option<(HealthState, u32)>,
        healthy: bool,
        failures_before_down: u32,
    ) -> (Self, u32) {
        if healthy {
            return (Self::Healthy, 0);
        }
        match previous {
            Some((Self::Healthy | Self::Pending, failures)) => {
                let failures = failures + 1;
                if failures >= failures_before_down.max(1) {
                    (Self::Down, failures)
                } else {
                    (Self::Pending, failures)
                }
            }
            Some((Self::Down, failures)) => (Self::Down, failures + 1),
            None => (Self::Down, 1),
        }
    }
}

/// Weight of the newest sample in the smoothed response time.
pub const EWMA_ALPHA: f64 = 0.3;

/// The smoothed response time after a new sample (the sample itself when
/// there is no history), so one slow sample does not reorder the list.
pub fn ewma(previous: Option<f64>, sample_ms: f64) -> f64 {
    match previous {
        Some(previous) => EWMA_ALPHA * sample_ms + (1.0 - EWMA_ALPHA) * previous,
        None => sample_ms,
    }
}

/// The ranking score of `order=score`, 0–100, higher is better:
///
/// `100 × uptime × latency × throughput`, where `uptime` is the share of
/// healthy checks in the last 24 h (1 for a stream with no history yet),
/// `latency` = `1 / (1 + ewma_ms / 1000)` (1 at 0 ms, ½ at 1 s), and
/// `throughput` = the segment probe's throughput ratio capped at 1 (1 when
/// unknown). A down stream scores 0.
pub fn score(
    state: HealthState,
    uptime_24h: Option<f64>,
    ewma_ms: Option<f64>,
    throughput_ratio: Option<f64>,
) -> f64 {
    if state == HealthState::Down {
        return 0.0;
    }
    let uptime = uptime_24h.unwrap_or(1.0).clamp(0.0, 1.0);
    let latency = 1.0 / (1.0 + ewma_ms.unwrap_or(0.0).max(0.0) / 1000.0);
    let throughput = throughput_ratio.map_or(1.0, |ratio| ratio.clamp(0.0, 1.0));
    100.0 * uptime * latency * throughput
}

/// What started an extraction run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// The run at service start.
    Startup,
    /// The background schedule.
    Schedule,
    /// `POST /extract`.
    Manual,
    /// `f1-stream extract`.
    Cli,
}

impl RunTrigger {
    /// Every trigger, for metrics that must exist from startup.
    pub const ALL: [RunTrigger; 4] = [Self::Startup, Self::Schedule, Self::Manual, Self::Cli];

    /// The name used in the database and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Cli => "cli",
        }
    }
}

fn serialize_timestamp<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_timestamp(*at))
}

/// Formats a timestamp the one way it is stored and served: RFC 3339, UTC,
/// milliseconds, `Z` (fixed width, so text order is time order in SQL).
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_key_accepts_1_to_64_lowercase_digits_dash_underscore_only() {
        assert!(is_valid_site_key("demo_2-x"));
        assert!(!is_valid_site_key("Demo"));
        assert!(!is_valid_site_key(""));
        assert!(!is_valid_site_key("a b"));
        assert!(is_valid_site_key(&"a".repeat(MAX_SITE_KEY_CHARS)));
        assert!(!is_valid_site_key(&"a".repeat(MAX_SITE_KEY_CHARS + 1)));
        assert!(!is_valid_site_key("é"));
    }

    #[test]
    fn session_types_order_as_listed_in_all() {
        assert!(SessionType::ALL.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn session_detect_prefers_the_most_specific_name() {
        assert_eq!(
            SessionType::detect("F1 Sprint Qualifying HD"),
            Some(SessionType::SprintQualifying)
        );
        assert_eq!(
            SessionType::detect("Sprint Shootout"),
            Some(SessionType::SprintQualifying)
        );
        assert_eq!(SessionType::detect("SPRINT"), Some(SessionType::Sprint));
        assert_eq!(SessionType::detect("Qualifying"), Some(SessionType::Qualifying));
        assert_eq!(SessionType::detect("Free Practice 2"), Some(SessionType::Fp2));
        assert_eq!(SessionType::detect("Monaco Grand Prix"), Some(SessionType::Race));
        assert_eq!(SessionType::detect("Sky Sports F1"), None);
        assert_eq!(
            SessionType::detect("sprint_qualifying-1080p"),
            Some(SessionType::SprintQualifying)
        );
        assert_eq!(SessionType::detect("F1-RACE.m3u8"), Some(SessionType::Race));
        assert_eq!(SessionType::detect("Racing Point onboard"), None);
        assert_eq!(SessionType::detect("Terrace cam"), None);
        assert_eq!(SessionType::detect("fp10 replay"), None);
        assert_eq!(SessionType::detect("Grandstand prix"), None);
    }

    #[test]
    fn session_names_round_trip() {
        for session in SessionType::ALL {
            assert_eq!(session.as_str().parse::<SessionType>(), Ok(session));
        }
        assert!("warmup".parse::<SessionType>().is_err());
    }

    #[test]
    fn one_failure_makes_a_healthy_stream_pending_and_the_second_takes_it_down() {
        let healthy = Some((HealthState::Healthy, 0));
        let (state, failures) = HealthState::after_check(healthy, false, 2);
        assert_eq!((state, failures), (HealthState::Pending, 1));
        assert_eq!(
            HealthState::after_check(Some((state, failures)), false, 2),
            (HealthState::Down, 2)
        );
        assert_eq!(
            HealthState::after_check(Some((state, failures)), true, 2),
            (HealthState::Healthy, 0)
        );
        assert_eq!(
            HealthState::after_check(healthy, false, 1),
            (HealthState::Down, 1)
        );
        assert_eq!(
            HealthState::after_check(None, false, 2),
            (HealthState::Down, 1),
            "new and failing: never served"
        );
        assert_eq!(HealthState::after_check(None, true, 2), (HealthState::Healthy, 0));
        assert_eq!(
            HealthState::after_check(Some((HealthState::Down, 5)), false, 2),
            (HealthState::Down, 6)
        );
    }

    #[test]
    fn ewma_smooths_one_slow_sample() {
        assert_eq!(ewma(None, 200.0), 200.0);
        let smoothed = ewma(Some(100.0), 1100.0);
        assert!((smoothed - 400.0).abs() < 1e-9, "{smoothed}");
    }

    #[test]
    fn score_rewards_uptime_speed_and_throughput() {
        let perfect = score(HealthState::Healthy, Some(1.0), Some(0.0), Some(2.0));
        assert!((perfect - 100.0).abs() < 1e-9);
        let slow = score(HealthState::Healthy, Some(1.0), Some(1000.0), None);
        assert!((slow - 50.0).abs() < 1e-9);
        let flaky = score(HealthState::Pending, Some(0.5), Some(0.0), Some(0.5));
        assert!((flaky - 25.0).abs() < 1e-9);
        assert_eq!(score(HealthState::Down, Some(1.0), Some(0.0), None), 0.0);
        assert!(score(HealthState::Healthy, Some(0.99), Some(50.0), Some(1.0)) > slow);
    }

    #[test]
    fn timestamps_are_fixed_width_utc_millis() {
        let at = DateTime::parse_from_rfc3339("2026-03-08T05:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(format_timestamp(at), "2026-03-08T05:00:00.000Z");
    }
}
