//! Failover channels (README "Failover channels"): the channel list, each
//! channel's live playlist and its switches. The engine is
//! [`crate::channel`]; only HTTP lives here.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorBody, TAG_CHANNELS, string_enum};
use super::streams::StreamList;
use super::{ApiError, ApiQuery, AppState, public_base};
use crate::channel::{ActiveSource, ChannelError, ChannelState, SetAside};
use crate::db::SwitchRow;
use crate::model::SwitchReason;
use crate::proxy::playlist::{PLAYLIST_CACHE_CONTROL, PLAYLIST_CONTENT_TYPE};

/// Largest `limit` of `GET /channels/{slug}/switches`.
pub const MAX_SWITCHES_LIMIT: u32 = 1000;
/// Default `limit` of `GET /channels/{slug}/switches`.
pub const DEFAULT_SWITCHES_LIMIT: u32 = 100;
/// Suffix of a channel's playlist path.
const PLAYLIST_SUFFIX: &str = ".m3u8";

/// The channel routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_channels))
        .routes(routes!(channel_playlist))
        .routes(routes!(channel_switches))
        .routes(routes!(channel_streams))
}

/// The source a channel plays.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ChannelSourceDto {
    /// The stream's id (`GET /streams/{id}`).
    pub id: i64,
    /// Its title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// Its extractor.
    pub site_key: String,
    /// `BANDWIDTH` of the variant played, when chosen from a master playlist.
    #[schema(required = true)]
    pub variant_bandwidth: Option<u64>,
}

impl From<ActiveSource> for ChannelSourceDto {
    fn from(source: ActiveSource) -> Self {
        Self {
            id: source.stream_id,
            title: source.title,
            site_key: source.site_key,
            variant_bandwidth: source.variant_bandwidth,
        }
    }
}

/// A source a channel does not choose for now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SetAsideDto {
    /// The stream's id.
    pub id: i64,
    /// Why: what failed (for the cool-down), or why it cannot be stitched.
    pub reason: String,
}

impl From<SetAside> for SetAsideDto {
    fn from(set_aside: SetAside) -> Self {
        Self {
            id: set_aside.stream_id,
            reason: set_aside.reason,
        }
    }
}

/// One switch of a channel's source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "id": 3, "at": "2026-03-08T05:41:12.345Z", "from": 7, "to": 9, "reason": "playlist_failed",
    "detail": "playlist: upstream answered HTTP 404", "media_sequence": 1042, "discontinuity_sequence": 2
}))]
pub struct SwitchDto {
    /// Its id; newer switches have larger ids.
    pub id: i64,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// The stream left (`null`: the channel's first source).
    #[schema(required = true)]
    pub from: Option<i64>,
    /// The stream taken (`null`: none was left).
    #[schema(required = true)]
    pub to: Option<i64>,
    /// Why.
    #[schema(schema_with = reason_schema)]
    pub reason: SwitchReason,
    /// What failed, in words.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// The channel's media sequence number of the first segment after it.
    pub media_sequence: i64,
    /// The channel's discontinuity sequence number there.
    pub discontinuity_sequence: i64,
}

impl From<SwitchRow> for SwitchDto {
    fn from(row: SwitchRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            from: row.from_stream_id,
            to: row.to_stream_id,
            reason: row.reason,
            detail: row.detail,
            media_sequence: row.media_sequence,
            discontinuity_sequence: row.discontinuity_sequence,
        }
    }
}

/// One channel in `GET /channels`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(example = json!({
    "slug": "best", "title": "Best available", "url": "http://127.0.0.1:8080/channels/best.m3u8",
    "state": "playing", "source": {"id": 9, "title": "F1 Race", "site_key": "example", "variant_bandwidth": 5000000},
    "switches": 2, "last_switch": {"id": 3, "at": "2026-03-08T05:41:12.345Z", "from": 7, "to": 9,
    "reason": "playlist_failed", "detail": "playlist: upstream answered HTTP 404", "media_sequence": 1042,
    "discontinuity_sequence": 2},
    "set_aside": [{"id": 7, "reason": "playlist: upstream answered HTTP 404"}]
}))]
pub struct ChannelDto {
    /// The channel's slug.
    pub slug: String,
    /// Its display name.
    pub title: String,
    /// Its live playlist, ready to play in any HLS player; it carries the
    /// channel's signature (`sig`), so it plays without credentials even
    /// when `auth.viewers` protects everything else.
    pub url: String,
    /// `playing` (served lately), `idle` (nobody watched lately; nothing is
    /// fetched) or `down` (no healthy source).
    #[schema(schema_with = state_schema)]
    pub state: ChannelState,
    /// The source played now (or last, while idle).
    #[schema(required = true)]
    pub source: Option<ChannelSourceDto>,
    /// Switches recorded.
    pub switches: i64,
    /// The newest switch.
    #[schema(required = true)]
    pub last_switch: Option<SwitchDto>,
    /// Sources this channel does not choose now, and why: failed lately
    /// (until `failed_source_cooldown_secs` pass), or not stitchable
    /// (every variant has its audio in a separate rendition).
    pub set_aside: Vec<SetAsideDto>,
}

/// `GET /channels`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ChannelList {
    /// Every channel, configured ones first, then the built-in `best`.
    pub channels: Vec<ChannelDto>,
    /// The channel to open: while a session is live, the first channel
    /// following it (`session = "live"` or that session's type); else `best`.
    pub default: String,
}

/// `GET /channels/{slug}/switches`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SwitchList {
    /// The switches, newest first.
    pub switches: Vec<SwitchDto>,
    /// Their number.
    pub count: usize,
}

/// Query of `GET /channels/{slug}/switches`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SwitchesQuery {
    /// At most this many switches (default 100).
    #[param(value_type = u32, required = false, nullable = false, minimum = 1, maximum = 1000, example = 20)]
    limit: Option<String>,
}

fn state_schema() -> Object {
    string_enum(
        ChannelState::ALL.map(ChannelState::as_str),
        "`playing` (served lately), `idle` (nobody watched lately) or `down` (no healthy source).",
    )
}

fn reason_schema() -> Object {
    string_enum(
        SwitchReason::ALL.map(SwitchReason::as_str),
        "`started` (a source chosen while the channel had none: its first, or after none was left), `playlist_failed`, `stale`, `segments_failed`, `ended`, or \
`source_restarted` (the same source after its own restart).",
    )
}

impl From<ChannelError> for ApiError {
    fn from(err: ChannelError) -> Self {
        match err {
            ChannelError::NotFound(_) => ApiError::NotFound(err.to_string()),
            ChannelError::NoSource { retry_after_secs, .. } => ApiError::Unavailable {
                message: err.to_string(),
                retry_after_secs,
            },
            ChannelError::Database(e) => e.into(),
            ChannelError::Encode(e) => {
                tracing::error!(error = %e, "channel position not encodable");
                ApiError::Internal
            }
        }
    }
}

/// Every channel with its state, source and latest switch.
#[utoipa::path(
    get,
    path = "/channels",
    tag = TAG_CHANNELS,
    operation_id = "list_channels",
    responses(
        (status = 200, description = "Every channel.", body = ChannelList),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn list_channels(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ChannelList>, ApiError> {
    let base = public_base(&state.config.server, &headers);
    let counts = state.db.channel_switch_counts().await?;
    let mut channels = Vec::new();
    for channel in state.channels.overview().await? {
        let switches = counts
            .iter()
            .find(|c| c.slug == channel.slug)
            .map_or(0, |c| c.switches);
        let last_switch = match switches {
            0 => None,
            _ => state
                .db
                .channel_switches(&channel.slug, 1)
                .await?
                .into_iter()
                .next()
                .map(SwitchDto::from),
        };
        channels.push(ChannelDto {
            url: format!(
                "{base}/channels/{}{PLAYLIST_SUFFIX}?sig={}",
                channel.slug,
                super::viewers::channel_signature(&state.proxy.signer, &channel.slug)
            ),
            slug: channel.slug,
            title: channel.title,
            state: channel.state,
            source: channel.source.map(ChannelSourceDto::from),
            switches,
            last_switch,
            set_aside: channel.set_aside.into_iter().map(SetAsideDto::from).collect(),
        });
    }
    let default = state.channels.default_slug().await;
    Ok(Json(ChannelList { channels, default }))
}

/// A channel's live media playlist: the active source's segments, continued
/// from the next-ranked source after `#EXT-X-DISCONTINUITY` when it fails.
#[utoipa::path(
    get,
    path = "/channels/{playlist}",
    tag = TAG_CHANNELS,
    operation_id = "channel_playlist",
    params(
        ("playlist" = String, Path, description = "`<slug>.m3u8`", pattern = r"^[a-z0-9_-]{1,64}\.m3u8$",
            example = "best.m3u8"),
    ),
    responses(
        (status = 200, description = "The live media playlist; every URI a signed `/relay` path. \
`Cache-Control: no-cache, no-store, must-revalidate`.",
            content_type = "application/vnd.apple.mpegurl", body = String,
            example = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1040\n\
#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXTINF:6,\n/relay/aHR0cHM6Ly9jZG4uZXhhbXBsZS5uZXQvMS50cw.c2ln.example/1.ts\n"),
        (status = 404, description = "No such channel.", body = ErrorBody,
            example = json!({"error": "no channel \"race\""})),
        (status = 503, description = "No healthy source to play; `Retry-After` says when to ask again.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait.")),
            example = json!({"error": "channel \"best\" has no healthy source to play"})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn channel_playlist(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(playlist) = path.map_err(|e| ApiError::BadRequest(format!("playlist: {}", e.body_text())))?;
    let slug = playlist
        .strip_suffix(PLAYLIST_SUFFIX)
        .filter(|slug| crate::model::is_valid_channel_slug(slug))
        .ok_or_else(|| ApiError::NotFound(format!("no channel playlist {playlist:?}")))?;
    let text = state.channels.playlist(slug).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PLAYLIST_CACHE_CONTROL),
            ),
        ],
        text,
    )
        .into_response())
}

/// A channel's switches, newest first.
#[utoipa::path(
    get,
    path = "/channels/{slug}/switches",
    tag = TAG_CHANNELS,
    operation_id = "channel_switches",
    params(
        ("slug" = String, Path, description = "The channel.", pattern = r"^[a-z0-9_-]{1,64}$", example = "best"),
        SwitchesQuery,
    ),
    responses(
        (status = 200, description = "Its switches, newest first.", body = SwitchList),
        (status = 400, description = "`limit` is invalid.", body = ErrorBody,
            example = json!({"error": "limit: \"0\" is not an integer from 1 to 1000"})),
        (status = 404, description = "No such channel.", body = ErrorBody,
            example = json!({"error": "no channel \"race\""})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn channel_switches(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<SwitchesQuery>,
) -> Result<Json<SwitchList>, ApiError> {
    let Path(slug) = path.map_err(|e| ApiError::BadRequest(format!("slug: {}", e.body_text())))?;
    if !state.channels.exists(&slug) {
        return Err(ApiError::NotFound(format!("no channel {slug:?}")));
    }
    let limit =
        super::parse_limit(query.limit.as_deref(), MAX_SWITCHES_LIMIT)?.unwrap_or(DEFAULT_SWITCHES_LIMIT);
    let switches: Vec<SwitchDto> = state
        .db
        .channel_switches(&slug, limit)
        .await?
        .into_iter()
        .map(SwitchDto::from)
        .collect();
    Ok(Json(SwitchList {
        count: switches.len(),
        switches,
    }))
}

/// The streams a channel chooses from, best first: the ranking with the
/// channel's filters, VOD excluded. The first healthy one is what it plays
/// unless a failure set it aside.
#[utoipa::path(
    get,
    path = "/channels/{slug}/streams",
    tag = TAG_CHANNELS,
    operation_id = "channel_streams",
    params(
        ("slug" = String, Path, description = "The channel.", pattern = r"^[a-z0-9_-]{1,64}$", example = "best"),
    ),
    responses(
        (status = 200, description = "Its candidate streams in ranking order.", body = StreamList),
        (status = 404, description = "No such channel.", body = ErrorBody,
            example = json!({"error": "no channel \"race\""})),
        (status = 500, description = "The database failed (details are logged).", body = ErrorBody,
            example = json!({"error": "internal error"})),
    )
)]
async fn channel_streams(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<StreamList>, ApiError> {
    let Path(slug) = path.map_err(|e| ApiError::BadRequest(format!("slug: {}", e.body_text())))?;
    let rows = state.channels.streams(&slug).await?;
    Ok(Json(StreamList::from_rows(rows, &state, &headers)))
}
