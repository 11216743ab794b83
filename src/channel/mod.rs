//! Failover channels (README "Failover channels"): one live playlist per
//! channel, stitched server-side from the best-ranked healthy stream that
//! matches the channel's filters, continuing with the next one after a
//! discontinuity when that source fails. Any player plays it, since the
//! switch happens before the player sees a byte.
//!
//! - [`stitch`]: the pure stitcher (position + source playlist + time →
//!   position + playlist text).
//! - [`Channels`]: the engine. A playlist request refreshes the channel at
//!   most once per half target duration, whatever the number of viewers
//!   (one refresh in flight; the others are served the last text); a
//!   refresh reads the stored position (another service may have moved
//!   it), fetches the active source's playlist through the proxy's
//!   upstream access, applies it, switches when the source failed, and
//!   writes the position back only if nobody wrote in between.
//!
//! A source fails when its playlist fails twice in a row (status, timeout,
//! not a playlist), when it ends, when it gives no new segment for 3 target
//! durations, or when [`SEGMENT_FAILURES_TO_SWITCH`] of its listed segments
//! fail through the relay ([`Channels::report_relay_failure`]). A source
//! that failed is not chosen again by the channel for its cool-down. A
//! channel never leaves a working source for a better-ranked one.
//!
//! A source whose variants all play audio from separate rendition
//! playlists (demuxed audio) is skipped: a media playlist carries one
//! rendition, and stitching audio in step with video is not built.

pub mod stitch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use regex::Regex;
use reqwest::header::HeaderMap;
use url::Url;

use crate::config::{ChannelConfig, RankingOrder};
use crate::db::{ChannelPositionRecord, Database, DbError, StreamFilter, StreamRow, SwitchRecord};
use crate::hls::define::Variables;
use crate::hls::{self, media};
use crate::metrics::Metrics;
use crate::model::{PlaylistKind, SessionType, StreamType, SwitchReason};
use crate::proxy::token::Signer;
use crate::proxy::upstream::{FetchedPlaylist, Upstream};
use crate::schedule::Schedule;

pub use stitch::{ActiveSource, ChannelPosition};

/// Failed relay requests for the active source's listed segments after
/// which the channel switches (players retry a failed segment, so one
/// failure alone may be a blip).
pub const SEGMENT_FAILURES_TO_SWITCH: u32 = 2;
/// Seconds a client is told to wait when a channel has no source.
pub const RETRY_AFTER_SECS: u64 = 10;
/// Shortest time between two refreshes of one channel.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(500);
/// Shortest deadline of a channel's playlist fetch: a live playlist slower
/// than 1.5 target durations cannot keep a player fed anyway.
const MIN_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Target durations a channel's playlist fetch may take.
const FETCH_TIMEOUT_TARGET_DURATIONS: f64 = 1.5;
/// A channel refreshed within this long is `playing`; older, `idle`.
const PLAYING_WITHIN: Duration = Duration::from_secs(60);

/// What a channel is doing, for `GET /channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Serving viewers from a source.
    Playing,
    /// Nobody asked lately (or ever since start): nothing is fetched.
    Idle,
    /// No healthy source to play.
    Down,
}

impl ChannelState {
    /// Every state, in the API's order.
    pub const ALL: [ChannelState; 3] = [Self::Playing, Self::Idle, Self::Down];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Playing => "playing",
            Self::Idle => "idle",
            Self::Down => "down",
        }
    }
}

/// Why a channel's playlist cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No channel has that slug.
    #[error("no channel {0:?}")]
    NotFound(String),
    /// No healthy source is left to play.
    #[error("channel {slug:?} has no healthy source to play")]
    NoSource {
        /// The channel.
        slug: String,
        /// Seconds to wait before asking again.
        retry_after_secs: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The position could not be written as JSON.
    #[error("cannot encode the channel position: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A channel as `GET /channels` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelOverview {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub title: String,
    /// What it is doing.
    pub state: ChannelState,
    /// The source played now (or last, while idle).
    pub source: Option<ActiveSource>,
    /// Sources the channel does not choose now, and why: failed lately
    /// (for the cool-down), or not stitchable (demuxed audio).
    pub set_aside: Vec<SetAside>,
}

/// A source a channel does not choose for now.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SetAside {
    /// The stream.
    pub stream_id: i64,
    /// Why, in words.
    pub reason: String,
}

/// What [`Channels`] is built from.
pub struct ChannelsParts {
    /// The channels to serve ([`crate::config::Config::channels`]).
    pub channels: Vec<ChannelConfig>,
    /// Stream ranking and positions.
    pub db: Database,
    /// The proxy's upstream access (guard, size limit).
    pub upstream: Upstream,
    /// Signs the relay paths in channel playlists.
    pub signer: Signer,
    /// Request headers per extractor site key.
    pub src_headers: HashMap<String, HeaderMap>,
    /// `session = "live"`: the session whose window is open.
    pub schedule: Schedule,
    /// Ranking order of the candidates (`ranking.default_order`).
    pub order: RankingOrder,
    /// Longest playlist fetch (`proxy.playlist_timeout_secs`).
    pub playlist_timeout: Duration,
    /// `server.public_url` (empty: root-relative relay paths).
    pub public_base: String,
    /// Switch and request counters.
    pub metrics: Arc<Metrics>,
}

/// Every failover channel; cheap to clone.
#[derive(Clone)]
pub struct Channels {
    inner: Arc<Inner>,
}

struct Inner {
    channels: Vec<Channel>,
    db: Database,
    upstream: Upstream,
    signer: Signer,
    src_headers: HashMap<String, HeaderMap>,
    schedule: Schedule,
    order: RankingOrder,
    playlist_timeout: Duration,
    public_base: String,
    metrics: Arc<Metrics>,
    /// Upstream URL of every segment listed from a channel's active source
    /// → (channel index, epoch), so the relay's failures reach the channel.
    segment_urls: Mutex<HashMap<String, (usize, u64)>>,
}

/// Which streams a channel plays, as the ranking query and a title regex
/// take them.
#[derive(Debug, Clone)]
struct Selection {
    /// `Some(None)`: the live session; `Some(Some(t))`: that type.
    session: Option<Option<SessionType>>,
    site_key: Option<String>,
    stream_type: Option<StreamType>,
    title: Option<Regex>,
}

struct Channel {
    slug: String,
    title: String,
    selection: Selection,
    max_bandwidth: u64,
    cooldown: Duration,
    /// The text served until the next refresh.
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// One refresh at a time; holds what only refreshes touch.
    refresh: tokio::sync::Mutex<Runtime>,
    /// Relay failures of the current epoch's segments.
    segment_failures: AtomicU32,
    /// The epoch those failures count for.
    failure_epoch: AtomicU64,
    /// The first failed segment URLs of that epoch (at most
    /// [`SEGMENT_FAILURES_TO_SWITCH`]), listed as gaps after a switch.
    failed_urls: Mutex<Vec<String>>,
    /// Refresh on the next request, whatever the snapshot's age.
    force_refresh: AtomicBool,
}

/// What one refresh produced, served to every viewer until the next.
struct Snapshot {
    /// The playlist, or `None` when there is no source.
    text: Option<Bytes>,
    /// When the next refresh is due.
    refresh_after: Instant,
    /// When it was made.
    made_at: Instant,
    /// The position's source, for the overview.
    source: Option<ActiveSource>,
    /// The sources set aside then, for the overview.
    set_aside: Vec<SetAside>,
}

/// What only a refresh reads and writes.
#[derive(Default)]
struct Runtime {
    position: ChannelPosition,
    /// The stored revision `position` was read at or written as.
    revision: Option<i64>,
    /// Sources this channel will not choose again until then, and why.
    cooldowns: HashMap<i64, (Instant, String)>,
}

/// A source failure: why, and what happened.
struct Failure {
    reason: SwitchReason,
    detail: String,
}

impl Channels {
    /// The channels of `parts`, nothing fetched yet.
    pub fn new(parts: ChannelsParts) -> Self {
        parts
            .metrics
            .register_channels(parts.channels.iter().map(|c| c.slug.as_str()));
        let channels = parts.channels.iter().map(Channel::new).collect();
        Self {
            inner: Arc::new(Inner {
                channels,
                db: parts.db,
                upstream: parts.upstream,
                signer: parts.signer,
                src_headers: parts.src_headers,
                schedule: parts.schedule,
                order: parts.order,
                playlist_timeout: parts.playlist_timeout,
                public_base: parts.public_base,
                metrics: parts.metrics,
                segment_urls: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether a channel `slug` exists.
    pub fn exists(&self, slug: &str) -> bool {
        self.inner.index(slug).is_some()
    }

    /// The live media playlist of channel `slug`, refreshed when due (the
    /// text all viewers share; cloning it copies nothing).
    pub async fn playlist(&self, slug: &str) -> Result<Bytes, ChannelError> {
        let index = self
            .inner
            .index(slug)
            .ok_or_else(|| ChannelError::NotFound(slug.to_owned()))?;
        let channel = &self.inner.channels[index];
        self.inner.metrics.record_channel_playlist_request(slug);
        let snapshot = match channel.fresh_snapshot() {
            Some(snapshot) => snapshot,
            None => match channel.refresh.try_lock() {
                Ok(runtime) => self.inner.refresh(index, runtime).await?,
                // A refresh is in flight: the last text serves meanwhile.
                Err(_) => match channel.snapshot() {
                    Some(snapshot) => snapshot,
                    None => {
                        let runtime = channel.refresh.lock().await;
                        match channel.fresh_snapshot() {
                            Some(snapshot) => snapshot,
                            None => self.inner.refresh(index, runtime).await?,
                        }
                    }
                },
            },
        };
        snapshot.text.clone().ok_or_else(|| ChannelError::NoSource {
            slug: slug.to_owned(),
            retry_after_secs: RETRY_AFTER_SECS,
        })
    }

    /// Every channel in configuration order, with its state and source
    /// (from the stored position when this service has not played it).
    pub async fn overview(&self) -> Result<Vec<ChannelOverview>, ChannelError> {
        let mut channels = Vec::with_capacity(self.inner.channels.len());
        for channel in &self.inner.channels {
            let (state, source, set_aside) = match channel.snapshot() {
                Some(snapshot) if snapshot.made_at.elapsed() < PLAYING_WITHIN => {
                    let set_aside = snapshot.set_aside.clone();
                    match &snapshot.text {
                        Some(_) => (ChannelState::Playing, snapshot.source.clone(), set_aside),
                        None => (ChannelState::Down, None, set_aside),
                    }
                }
                _ => {
                    let stored = self.inner.db.channel_position(&channel.slug).await?;
                    let source = stored
                        .and_then(|s| serde_json::from_str::<ChannelPosition>(&s.position).ok())
                        .and_then(|p| p.source);
                    (ChannelState::Idle, source, Vec::new())
                }
            };
            channels.push(ChannelOverview {
                slug: channel.slug.clone(),
                title: channel.title.clone(),
                state,
                source,
                set_aside,
            });
        }
        Ok(channels)
    }

    /// The streams channel `slug` chooses from, best first (the ranking,
    /// its filters, VOD excluded): what it plays now and what it would
    /// switch to.
    pub async fn streams(&self, slug: &str) -> Result<Vec<StreamRow>, ChannelError> {
        let index = self
            .inner
            .index(slug)
            .ok_or_else(|| ChannelError::NotFound(slug.to_owned()))?;
        self.inner.candidates(&self.inner.channels[index]).await
    }

    /// The channel a viewer should open: while a session is live, the first
    /// channel that follows it (`session = "live"`, or that session's type);
    /// otherwise, or when none does, `best`.
    pub async fn default_slug(&self) -> String {
        let live = match self.inner.schedule.window_session_type().await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "calendar unavailable; opening the default channel");
                None
            }
        };
        live.and_then(|live| {
            self.inner.channels.iter().find(|channel| {
                matches!(channel.selection.session, Some(None))
                    || channel.selection.session == Some(Some(live))
            })
        })
        .map_or_else(
            || crate::config::defaults::BEST_CHANNEL.to_owned(),
            |channel| channel.slug.clone(),
        )
    }

    /// Tells the channels that the relay could not serve `url`: when it is
    /// a segment listed from a channel's active source, that counts against
    /// the source, and enough failures switch the channel at its next
    /// request.
    pub fn report_relay_failure(&self, url: &str) {
        let found = self
            .inner
            .segment_urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .copied();
        let Some((index, epoch)) = found else {
            return;
        };
        let channel = &self.inner.channels[index];
        if channel.failure_epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        {
            let mut failed = channel.failed_urls.lock().unwrap_or_else(|p| p.into_inner());
            if failed.len() < SEGMENT_FAILURES_TO_SWITCH as usize && !failed.iter().any(|u| u == url) {
                failed.push(url.to_owned());
            }
        }
        let failures = channel.segment_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= SEGMENT_FAILURES_TO_SWITCH {
            channel.force_refresh.store(true, Ordering::Release);
        }
    }
}

impl Channel {
    fn new(config: &ChannelConfig) -> Self {
        let present = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        // The configuration was validated: every value parses.
        let session = present(&config.session).map(|s| s.parse::<SessionType>().ok());
        let selection = Selection {
            session,
            site_key: present(&config.site_key),
            stream_type: present(&config.stream_type).and_then(|t| t.parse().ok()),
            title: present(&config.title_filter).and_then(|r| Regex::new(&r).ok()),
        };
        Self {
            slug: config.slug.clone(),
            title: present(&config.title).unwrap_or_else(|| config.slug.clone()),
            selection,
            max_bandwidth: config.max_bandwidth,
            cooldown: Duration::from_secs(config.failed_source_cooldown_secs),
            snapshot: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(Runtime::default()),
            segment_failures: AtomicU32::new(0),
            failure_epoch: AtomicU64::new(0),
            failed_urls: Mutex::new(Vec::new()),
            force_refresh: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fresh_snapshot(&self) -> Option<Arc<Snapshot>> {
        if self.force_refresh.load(Ordering::Acquire) {
            return None;
        }
        self.snapshot()
            .filter(|snapshot| Instant::now() < snapshot.refresh_after)
    }
}

impl Inner {
    fn index(&self, slug: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.slug == slug)
    }

    /// One refresh of channel `index` (see the module docs).
    async fn refresh(
        &self,
        index: usize,
        mut runtime: tokio::sync::MutexGuard<'_, Runtime>,
    ) -> Result<Arc<Snapshot>, ChannelError> {
        let channel = &self.channels[index];
        channel.force_refresh.store(false, Ordering::Release);
        self.adopt_stored(&channel.slug, &mut runtime).await?;
        let now = Utc::now();
        let before = runtime.position.clone();
        let mut switches = Vec::new();
        let failure = match runtime.position.source.clone() {
            Some(source) => {
                self.poll_source(channel, &mut runtime, &source, now, &mut switches)
                    .await
            }
            None => None,
        };
        if failure.is_some() || runtime.position.source.is_none() {
            self.switch(channel, &mut runtime, failure, now, &mut switches)
                .await?;
        }
        if runtime.position != before {
            self.store(channel, &mut runtime, switches, now).await?;
        }
        Ok(self.publish(index, &runtime))
    }

    /// Takes the stored position when another writer moved it.
    async fn adopt_stored(&self, slug: &str, runtime: &mut Runtime) -> Result<(), DbError> {
        let Some(stored) = self.db.channel_position(slug).await? else {
            return Ok(());
        };
        if Some(stored.revision) == runtime.revision {
            return Ok(());
        }
        match serde_json::from_str::<ChannelPosition>(&stored.position) {
            Ok(position) => runtime.position = position,
            Err(e) => {
                // Unreadable (written by another version): numbering goes
                // on from its headline, the window starts afresh.
                tracing::warn!(channel = slug, error = %e, "stored channel position unreadable; starting a new window");
                runtime.position = ChannelPosition {
                    next_sequence: runtime.position.next_sequence,
                    ..ChannelPosition::default()
                };
            }
        }
        runtime.revision = Some(stored.revision);
        Ok(())
    }

    /// Fetches and applies the active source's playlist; answers how it
    /// failed, if it did.
    async fn poll_source(
        &self,
        channel: &Channel,
        runtime: &mut Runtime,
        source: &ActiveSource,
        now: DateTime<Utc>,
        switches: &mut Vec<SwitchRecord>,
    ) -> Option<Failure> {
        let epoch = runtime.position.epoch;
        if channel.failure_epoch.load(Ordering::Acquire) == epoch
            && channel.segment_failures.load(Ordering::Acquire) >= SEGMENT_FAILURES_TO_SWITCH
        {
            let failed = channel
                .failed_urls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            runtime.position.mark_gaps_from(&failed);
            return Some(Failure {
                reason: SwitchReason::SegmentsFailed,
                detail: format!(
                    "{} of its segments failed through the relay",
                    channel.segment_failures.load(Ordering::Acquire)
                ),
            });
        }
        let timeout = self.fetch_timeout(runtime.position.target_duration);
        let fetched = match self.fetch(&source.variant_url, &source.site_key, timeout).await {
            Ok(fetched) => fetched,
            // Retried once: one lost request is not a dead source.
            Err(_) => match self.fetch(&source.variant_url, &source.site_key, timeout).await {
                Ok(fetched) => fetched,
                Err(detail) => {
                    return Some(Failure {
                        reason: SwitchReason::PlaylistFailed,
                        detail,
                    });
                }
            },
        };
        let Ok(playlist) = media::parse(&fetched.text) else {
            return Some(Failure {
                reason: SwitchReason::PlaylistFailed,
                detail: "playlist: a master playlist where a media playlist was".to_owned(),
            });
        };
        let vars = Variables::read(&fetched.text, &fetched.final_url);
        let applied = runtime.position.apply(
            &playlist,
            |uri| hls::uri::resolve(&fetched.final_url, &vars.substitute(uri)),
            now,
        );
        if applied.restarted {
            switches.push(switch_record(
                &runtime.position,
                now,
                Some(source.stream_id),
                Some(source.stream_id),
                SwitchReason::SourceRestarted,
                Some("the source's media sequence started again".to_owned()),
            ));
        }
        if playlist.stream_type == StreamType::Vod {
            return Some(Failure {
                reason: SwitchReason::Ended,
                detail: "playlist: the source's playlist ended".to_owned(),
            });
        }
        if runtime.position.is_stale(now) {
            return Some(Failure {
                reason: SwitchReason::Stale,
                detail: format!(
                    "playlist: no new segment for {} target durations",
                    stitch::STALE_TARGET_DURATIONS
                ),
            });
        }
        None
    }

    /// Leaves the failed source (cooling it down) for the best-ranked
    /// candidate that plays; none playing leaves the channel down.
    async fn switch(
        &self,
        channel: &Channel,
        runtime: &mut Runtime,
        failure: Option<Failure>,
        now: DateTime<Utc>,
        switches: &mut Vec<SwitchRecord>,
    ) -> Result<(), ChannelError> {
        let from = runtime.position.source.as_ref().map(|s| s.stream_id);
        let (reason, detail) = match failure {
            Some(failure) => (failure.reason, Some(failure.detail)),
            None => (SwitchReason::Started, None),
        };
        if let Some(from) = from {
            tracing::warn!(
                channel = channel.slug,
                stream_id = from,
                reason = reason.as_str(),
                detail = detail.as_deref().unwrap_or(""),
                "channel source failed"
            );
            let why = detail.clone().unwrap_or_else(|| reason.as_str().to_owned());
            runtime
                .cooldowns
                .insert(from, (Instant::now() + channel.cooldown, why));
        }
        let cooling = Instant::now();
        runtime.cooldowns.retain(|_, (until, _)| *until > cooling);
        // A playing channel cannot wait the ordinary playlist timeout per
        // candidate; a channel's first source can.
        let timeout = match runtime.position.target_duration {
            0 => self.playlist_timeout,
            seconds => self.fetch_timeout(seconds),
        };
        for row in self.candidates(channel).await? {
            if runtime.cooldowns.contains_key(&row.id) {
                continue;
            }
            match self.open(channel, &row, timeout).await {
                Ok((source, fetched)) => {
                    let Ok(playlist) = media::parse(&fetched.text) else {
                        continue;
                    };
                    let stream_id = source.stream_id;
                    runtime.position.begin(source, now);
                    let vars = Variables::read(&fetched.text, &fetched.final_url);
                    runtime.position.apply(
                        &playlist,
                        |uri| hls::uri::resolve(&fetched.final_url, &vars.substitute(uri)),
                        now,
                    );
                    tracing::info!(
                        channel = channel.slug,
                        stream_id,
                        reason = reason.as_str(),
                        "channel source chosen"
                    );
                    switches.push(switch_record(
                        &runtime.position,
                        now,
                        from,
                        Some(stream_id),
                        reason,
                        detail,
                    ));
                    return Ok(());
                }
                Err(why) => {
                    tracing::info!(
                        channel = channel.slug,
                        stream_id = row.id,
                        why,
                        "channel candidate skipped"
                    );
                    runtime
                        .cooldowns
                        .insert(row.id, (Instant::now() + channel.cooldown, why));
                }
            }
        }
        if from.is_some() {
            runtime.position.stop();
            switches.push(switch_record(&runtime.position, now, from, None, reason, detail));
        }
        Ok(())
    }

    /// The channel's candidates, best first: served streams matching its
    /// filters, VOD excluded (nothing live to stitch).
    async fn candidates(&self, channel: &Channel) -> Result<Vec<StreamRow>, ChannelError> {
        let selection = &channel.selection;
        let session = match selection.session {
            None => None,
            Some(Some(session)) => Some(session),
            Some(None) => match self.schedule.window_session_type().await {
                Ok(Some(session)) => Some(session),
                Ok(None) => return Ok(Vec::new()),
                Err(e) => {
                    tracing::warn!(channel = channel.slug, error = %e, "calendar unavailable; no live session");
                    return Ok(Vec::new());
                }
            },
        };
        let filter = StreamFilter {
            session: session.map(|s| s.as_str().to_owned()),
            site_key: selection.site_key.clone(),
            limit: None,
            stream_type: selection.stream_type.map(|t| t.as_str().to_owned()),
            order: self.order,
        };
        let rows = self.db.ranked_streams(&filter).await?;
        Ok(rows
            .into_iter()
            .filter(|row| row.stream_type != StreamType::Vod.as_str())
            .filter(|row| {
                selection
                    .title
                    .as_ref()
                    .is_none_or(|regex| regex.is_match(row.title.as_deref().unwrap_or("")))
            })
            .collect())
    }

    /// Opens candidate `row`: its media playlist, or from a master the
    /// variant with the highest `BANDWIDTH` within the channel's cap whose
    /// audio is in its own segments.
    async fn open(
        &self,
        channel: &Channel,
        row: &StreamRow,
        timeout: Duration,
    ) -> Result<(ActiveSource, FetchedPlaylist), String> {
        let fetched = self.fetch(&row.url, &row.site_key, timeout).await?;
        let summary = hls::summarize(&fetched.text);
        let source = |variant_url: String, variant_bandwidth| ActiveSource {
            stream_id: row.id,
            site_key: row.site_key.clone(),
            title: row.title.clone(),
            variant_url,
            variant_bandwidth,
        };
        if summary.kind != Some(PlaylistKind::Master) {
            return Ok((source(row.url.clone(), None), fetched));
        }
        let playable: Vec<_> = summary
            .variants
            .iter()
            .filter(|variant| !summary.has_separate_audio(variant))
            .collect();
        if playable.is_empty() {
            return Err(
                "every variant plays audio from a separate rendition (not supported by channels)".into(),
            );
        }
        let within_cap = playable
            .iter()
            .filter(|v| channel.max_bandwidth == 0 || v.bandwidth <= channel.max_bandwidth)
            .max_by_key(|v| v.bandwidth);
        let Some(variant) = within_cap.or_else(|| playable.iter().min_by_key(|v| v.bandwidth)) else {
            return Err("no variant".into());
        };
        let vars = Variables::read(&fetched.text, &fetched.final_url);
        let Some(url) = hls::uri::resolve(&fetched.final_url, &vars.substitute(variant.uri)) else {
            return Err("the variant's URI does not resolve".into());
        };
        let bandwidth = variant.bandwidth;
        let variant_fetched = self.fetch(url.as_str(), &row.site_key, timeout).await?;
        if media::parse(&variant_fetched.text).is_err() {
            return Err("the variant is a master playlist".into());
        }
        Ok((source(url.into(), Some(bandwidth)), variant_fetched))
    }

    /// Fetches a playlist with the extractor's headers; the error in words.
    async fn fetch(&self, url: &str, site_key: &str, timeout: Duration) -> Result<FetchedPlaylist, String> {
        let url = Url::parse(url).map_err(|e| format!("playlist: {e}"))?;
        let headers = self.src_headers.get(site_key).cloned().unwrap_or_default();
        self.upstream
            .fetch_playlist(url, headers, timeout)
            .await
            .map_err(|e| format!("playlist: {e}"))
    }

    fn fetch_timeout(&self, target_duration: u64) -> Duration {
        let scaled = Duration::from_secs_f64(target_duration.max(1) as f64 * FETCH_TIMEOUT_TARGET_DURATIONS);
        scaled.clamp(MIN_FETCH_TIMEOUT, self.playlist_timeout.max(MIN_FETCH_TIMEOUT))
    }

    /// Writes the position (and its switches) unless another writer moved
    /// it since it was read; then the stored one is taken instead.
    async fn store(
        &self,
        channel: &Channel,
        runtime: &mut Runtime,
        switches: Vec<SwitchRecord>,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let position = &runtime.position;
        let json = serde_json::to_string(position)?;
        let record = ChannelPositionRecord {
            slug: &channel.slug,
            epoch: position.epoch as i64,
            stream_id: position.source.as_ref().map(|s| s.stream_id),
            variant_url: position.source.as_ref().map(|s| s.variant_url.as_str()),
            variant_bandwidth: position
                .source
                .as_ref()
                .and_then(|s| s.variant_bandwidth)
                .map(|b| b as i64),
            media_sequence: position.media_sequence() as i64,
            discontinuity_sequence: position.discontinuity_sequence() as i64,
            target_duration: position.target_duration as i64,
            segment_count: position.segments.len() as i64,
            updated_at: now,
            position: &json,
        };
        match self
            .db
            .save_channel_position(&record, runtime.revision, &switches)
            .await?
        {
            Some(revision) => {
                runtime.revision = Some(revision);
                for switch in &switches {
                    self.metrics.record_channel_switch(&channel.slug, switch.reason);
                }
            }
            None => {
                // Another service wrote first: its position (and its
                // switch, if any) stands.
                runtime.revision = None;
                self.adopt_stored(&channel.slug, runtime).await?;
            }
        }
        Ok(())
    }

    /// Renders the position for every viewer and points relay failures of
    /// its segments at the channel.
    fn publish(&self, index: usize, runtime: &Runtime) -> Arc<Snapshot> {
        let channel = &self.channels[index];
        let position = &runtime.position;
        if channel.failure_epoch.swap(position.epoch, Ordering::AcqRel) != position.epoch {
            channel.segment_failures.store(0, Ordering::Release);
            channel
                .failed_urls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        {
            let mut urls = self.segment_urls.lock().unwrap_or_else(|p| p.into_inner());
            urls.retain(|_, (owner, _)| *owner != index);
            for url in position.current_segment_urls() {
                urls.insert(url.to_owned(), (index, position.epoch));
            }
        }
        let text = position
            .source
            .as_ref()
            .filter(|_| !position.segments.is_empty())
            .map(|_| Bytes::from(position.render(&self.signer, &self.public_base)));
        self.metrics.set_channel_up(&channel.slug, text.is_some());
        let half_target = Duration::from_secs_f64(position.target_duration.max(1) as f64 / 2.0);
        let now = Instant::now();
        let refresh_after = if text.is_some() {
            now + half_target.max(MIN_REFRESH_INTERVAL)
        } else {
            // No source: candidates are looked for again at most this often.
            now + Duration::from_secs(1)
        };
        let snapshot = Arc::new(Snapshot {
            text,
            refresh_after,
            made_at: now,
            source: position.source.clone(),
            set_aside: runtime
                .cooldowns
                .iter()
                .filter(|(_, (until, _))| *until > now)
                .map(|(stream_id, (_, reason))| SetAside {
                    stream_id: *stream_id,
                    reason: reason.clone(),
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        });
        *channel.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&snapshot));
        snapshot
    }
}

/// A switch as stored: the channel's numbers at its first segment after.
fn switch_record(
    position: &ChannelPosition,
    now: DateTime<Utc>,
    from: Option<i64>,
    to: Option<i64>,
    reason: SwitchReason,
    detail: Option<String>,
) -> SwitchRecord {
    let first_after = position.segments.iter().find(|s| s.epoch == position.epoch);
    SwitchRecord {
        at: now,
        from_stream_id: from,
        to_stream_id: to,
        reason,
        detail,
        media_sequence: first_after.map_or(position.next_sequence, |s| s.sequence) as i64,
        discontinuity_sequence: first_after
            .map_or(position.last_discontinuity_sequence, |s| s.discontinuity_sequence)
            as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_have_one_name_in_json_and_the_api() {
        for state in ChannelState::ALL {
            let json = serde_json::to_value(state).expect("encodes");
            assert_eq!(json, state.as_str());
        }
        for reason in SwitchReason::ALL {
            let json = serde_json::to_value(reason).expect("encodes");
            assert_eq!(json, reason.as_str());
            assert_eq!(reason.as_str().parse::<SwitchReason>(), Ok(reason));
        }
    }
}
