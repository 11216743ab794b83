-- Failover channels (README "Failover channels", docs/SQL.md): where each
-- channel stands, so a restart continues its numbering and every service on
-- this database serves the same playlist, and every switch between sources.

-- One row per channel that has ever been played. `revision` grows by one
-- with every write; a writer names the revision it read, so two services
-- never overwrite each other's position. `position` is the whole stitched
-- state (the window of segments) as JSON, read back by the service; the
-- other columns repeat its headline for SQL users.
CREATE TABLE channel_positions (
    slug TEXT PRIMARY KEY NOT NULL,
    revision INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    stream_id INTEGER,
    variant_url TEXT,
    variant_bandwidth INTEGER,
    media_sequence INTEGER NOT NULL,
    discontinuity_sequence INTEGER NOT NULL,
    target_duration INTEGER NOT NULL,
    segment_count INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    position TEXT NOT NULL
);

-- Every change of a channel's source, never updated: `to_stream_id` NULL
-- when no source was left; the same stream on both sides when the source
-- restarted its own numbering. `media_sequence` and
-- `discontinuity_sequence` are the channel's numbers at the first segment
-- after the switch.
CREATE TABLE channel_switches (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL,
    at TEXT NOT NULL,
    from_stream_id INTEGER,
    to_stream_id INTEGER,
    reason TEXT NOT NULL CHECK (reason IN (
        'started', 'playlist_failed', 'stale', 'segments_failed', 'ended', 'source_restarted'
    )),
    detail TEXT,
    media_sequence INTEGER NOT NULL,
    discontinuity_sequence INTEGER NOT NULL
);
CREATE INDEX channel_switches_by_slug ON channel_switches (slug, id);
