//! Failover channels' storage: each channel's position (written with a
//! revision check, so two services on one database never overwrite each
//! other) and the switch events written in the same transaction. The
//! schema is `migrations/0005_channels.sql`, documented in `docs/SQL.md`.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Database, DbError};
use crate::model::{SwitchReason, format_timestamp};

/// A channel's position as stored: the columns SQL users read and the
/// whole state as JSON for the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPositionRecord<'a> {
    /// The channel.
    pub slug: &'a str,
    /// Source epochs so far (every switch or source restart starts one).
    pub epoch: i64,
    /// The active source's stream, `None` when there is none.
    pub stream_id: Option<i64>,
    /// The media playlist played from it.
    pub variant_url: Option<&'a str>,
    /// That variant's declared `BANDWIDTH`.
    pub variant_bandwidth: Option<i64>,
    /// Media sequence number of the window's first segment.
    pub media_sequence: i64,
    /// Discontinuity sequence number of the window's first segment.
    pub discontinuity_sequence: i64,
    /// Target duration in force, seconds.
    pub target_duration: i64,
    /// Segments in the window.
    pub segment_count: i64,
    /// When this position was written.
    pub updated_at: DateTime<Utc>,
    /// The whole state, JSON.
    pub position: &'a str,
}

/// A stored position as the service reads it back.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredPosition {
    /// Grows by one with every write; name it to write the next one.
    pub revision: i64,
    /// The whole state, JSON.
    pub position: String,
}

/// One switch to record.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchRecord {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The source left, if any.
    pub from_stream_id: Option<i64>,
    /// The source taken, `None` when none was left.
    pub to_stream_id: Option<i64>,
    /// Why.
    pub reason: SwitchReason,
    /// What failed, in words (`playlist: upstream answered HTTP 404`).
    pub detail: Option<String>,
    /// The channel's media sequence number at the first segment after it.
    pub media_sequence: i64,
    /// The channel's discontinuity sequence number there.
    pub discontinuity_sequence: i64,
}

/// One row of `channel_switches`.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SwitchRow {
    /// Row id: newer switches have larger ids.
    pub id: i64,
    /// The channel.
    pub slug: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// The source left.
    pub from_stream_id: Option<i64>,
    /// The source taken.
    pub to_stream_id: Option<i64>,
    /// Why.
    pub reason: SwitchReason,
    /// What failed, in words.
    pub detail: Option<String>,
    /// The channel's media sequence number at the first segment after it.
    pub media_sequence: i64,
    /// The channel's discontinuity sequence number there.
    pub discontinuity_sequence: i64,
}

/// Switches of one channel: how many, and the newest.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct SwitchCount {
    /// The channel.
    pub slug: String,
    /// Switches recorded.
    pub switches: i64,
}

impl Database {
    /// The stored position of channel `slug`, if it was ever played.
    pub async fn channel_position(&self, slug: &str) -> Result<Option<StoredPosition>, DbError> {
        Ok(sqlx::query_as::<_, StoredPosition>(
            "SELECT revision, position FROM channel_positions WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes `record` and `switches` in one transaction if the stored
    /// revision is still `read_revision` (`None`: no row yet). Answers the
    /// new revision, or `None` when another writer got there first (then
    /// nothing is written).
    pub async fn save_channel_position(
        &self,
        record: &ChannelPositionRecord<'_>,
        read_revision: Option<i64>,
        switches: &[SwitchRecord],
    ) -> Result<Option<i64>, DbError> {
        let mut tx = self.pool.begin().await?;
        let revision = read_revision.map_or(1, |r| r + 1);
        let updated_at = format_timestamp(record.updated_at);
        let sql = match read_revision {
            None => {
                "INSERT INTO channel_positions (slug, revision, epoch, stream_id, variant_url, variant_bandwidth,
                     media_sequence, discontinuity_sequence, target_duration, segment_count, updated_at, position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (slug) DO NOTHING"
            }
            Some(_) => {
                "UPDATE channel_positions SET revision = $2, epoch = $3, stream_id = $4, variant_url = $5,
                     variant_bandwidth = $6, media_sequence = $7, discontinuity_sequence = $8,
                     target_duration = $9, segment_count = $10, updated_at = $11, position = $12
                 WHERE slug = $1 AND revision = $13"
            }
        };
        let written = sqlx::query(sql)
            .bind(record.slug)
            .bind(revision)
            .bind(record.epoch)
            .bind(record.stream_id)
            .bind(record.variant_url)
            .bind(record.variant_bandwidth)
            .bind(record.media_sequence)
            .bind(record.discontinuity_sequence)
            .bind(record.target_duration)
            .bind(record.segment_count)
            .bind(&updated_at)
            .bind(record.position)
            .bind(read_revision)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if written == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        for switch in switches {
            sqlx::query(
                "INSERT INTO channel_switches (slug, at, from_stream_id, to_stream_id, reason, detail,
                     media_sequence, discontinuity_sequence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.slug)
            .bind(format_timestamp(switch.at))
            .bind(switch.from_stream_id)
            .bind(switch.to_stream_id)
            .bind(switch.reason)
            .bind(switch.detail.as_deref())
            .bind(switch.media_sequence)
            .bind(switch.discontinuity_sequence)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(revision))
    }

    /// The newest `limit` switches of channel `slug`, newest first.
    pub async fn channel_switches(&self, slug: &str, limit: u32) -> Result<Vec<SwitchRow>, DbError> {
        Ok(sqlx::query_as::<_, SwitchRow>(
            "SELECT id, slug, at, from_stream_id, to_stream_id, reason, detail, media_sequence,
                    discontinuity_sequence
             FROM channel_switches WHERE slug = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(slug)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many switches each channel has recorded (channels without any
    /// are absent).
    pub async fn channel_switch_counts(&self) -> Result<Vec<SwitchCount>, DbError> {
        Ok(sqlx::query_as::<_, SwitchCount>(
            "SELECT slug, CAST(COUNT(*) AS BIGINT) AS switches FROM channel_switches GROUP BY slug",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
