-- Durable health history (docs/SQL.md): hourly rollups kept forever, state
-- changes of every stream, and views for the common questions. Timestamps
-- follow 0001: RFC 3339 UTC text with milliseconds and a trailing Z, so text
-- order is time order. docs/SQL.md documents all of it for SQL users.

-- Per stream and hour: additive aggregates of that hour's health checks, so
-- the uptime and mean latency of any range is one SUM over rows. Written in
-- the same transaction as the checks; never pruned (one row per stream and
-- hour is small), so ranges stay answerable after raw checks are deleted.
CREATE TABLE health_rollups_hourly (
    stream_id        INTEGER NOT NULL REFERENCES streams (id),
    hour             TEXT NOT NULL,       -- start of the hour, e.g. 2026-03-08T05:00:00.000Z
    checks           INTEGER NOT NULL,    -- health checks in the hour
    healthy          INTEGER NOT NULL,    -- ...of which healthy (is_live = 1)
    response_samples INTEGER NOT NULL,    -- ...of which have a response_time_ms
    response_ms_sum  INTEGER NOT NULL,    -- sum of those response times
    response_ms_min  INTEGER,             -- NULL when response_samples = 0
    response_ms_max  INTEGER,
    PRIMARY KEY (stream_id, hour)
) WITHOUT ROWID;

-- Ranges over every stream ("all streams, last 7 days").
CREATE INDEX health_rollups_hourly_hour ON health_rollups_hourly (hour);

-- Existing checks are rolled up once, so history before this migration
-- counts too.
INSERT INTO health_rollups_hourly (stream_id, hour, checks, healthy, response_samples,
                                   response_ms_sum, response_ms_min, response_ms_max)
SELECT stream_id, substr(checked_at, 1, 13) || ':00:00.000Z', COUNT(*), SUM(is_live),
       COUNT(response_time_ms), COALESCE(SUM(response_time_ms), 0),
       MIN(response_time_ms), MAX(response_time_ms)
FROM health_checks
GROUP BY stream_id, substr(checked_at, 1, 13);

-- A row whenever a stream changes state: it appears (first seen, or active
-- again after being inactive), goes down (healthy -> unhealthy), recovers
-- (unhealthy -> healthy) or becomes inactive (its extractor stopped
-- reporting it). Kept forever, like rollups.
CREATE TABLE stream_events (
    id         INTEGER PRIMARY KEY,
    stream_id  INTEGER NOT NULL REFERENCES streams (id),
    kind       TEXT NOT NULL CHECK (kind IN ('appeared', 'went_down', 'recovered', 'inactive')),
    at         TEXT NOT NULL,             -- checked_at of the causing check; the run's end for 'inactive'
    run_id     INTEGER REFERENCES extraction_runs (id),
    -- The check that caused the change (NULL for 'inactive'). Not a foreign
    -- key: raw checks are pruned after database.retention_days, events stay.
    check_id   INTEGER,
    is_live    INTEGER NOT NULL CHECK (is_live IN (0, 1)),  -- health after the change
    error_kind TEXT,                      -- copied from the check, so it survives pruning
    error      TEXT
);

CREATE INDEX stream_events_stream_at ON stream_events (stream_id, at);
CREATE INDEX stream_events_at ON stream_events (at);

-- Health changes already in the history: the first check of each stream is
-- its appearance, every flip of is_live after it a went_down or recovered.
-- (Past 'inactive' changes are not reconstructed: their time is not stored.)
INSERT INTO stream_events (stream_id, kind, at, run_id, check_id, is_live, error_kind, error)
SELECT stream_id,
       CASE WHEN previous IS NULL THEN 'appeared'
            WHEN is_live = 1 THEN 'recovered'
            ELSE 'went_down' END,
       checked_at, run_id, id, is_live, error_kind, error
FROM (
    SELECT id, stream_id, run_id, checked_at, is_live, error_kind, error,
           LAG(is_live) OVER (PARTITION BY stream_id ORDER BY checked_at, id) AS previous
    FROM health_checks
)
WHERE previous IS NULL OR previous <> is_live
ORDER BY checked_at, id;

-- Latest state per stream. The health columns come from `streams` (copied
-- there from the newest check, and never pruned); `check_id` is the newest
-- raw check, NULL once pruned; `state_since` is the time of the latest event.
CREATE VIEW stream_latest AS
SELECT s.id AS stream_id, s.site_key, e.site_name, s.url, s.title, s.quality, s.session,
       s.active, s.first_seen, s.last_seen, s.checked_at, s.is_live, s.response_time_ms,
       s.ttfb_ms, s.http_status, s.bitrate, s.playlist_kind, s.stream_type, s.error_kind,
       s.error,
       (SELECT h.id FROM health_checks h WHERE h.stream_id = s.id
         ORDER BY h.checked_at DESC, h.id DESC LIMIT 1) AS check_id,
       (SELECT ev.at FROM stream_events ev WHERE ev.stream_id = s.id
         ORDER BY ev.at DESC, ev.id DESC LIMIT 1) AS state_since
FROM streams s
JOIN extractors e ON e.site_key = s.site_key;

-- Uptime per stream over every rollup hour that overlaps the last 24 hours
-- (so 24 to 25 hours of checks). Only streams checked in that time.
CREATE VIEW stream_uptime_24h AS
SELECT s.id AS stream_id, s.site_key, s.url, s.title, s.active,
       SUM(r.checks) AS checks,
       SUM(r.healthy) AS healthy,
       ROUND(1.0 * SUM(r.healthy) / SUM(r.checks), 4) AS uptime,
       CASE WHEN SUM(r.response_samples) > 0
            THEN ROUND(1.0 * SUM(r.response_ms_sum) / SUM(r.response_samples), 1) END
           AS mean_response_ms
FROM health_rollups_hourly r
JOIN streams s ON s.id = r.stream_id
WHERE r.hour >= strftime('%Y-%m-%dT%H:00:00.000Z', 'now', '-24 hours')
GROUP BY s.id;

-- The same per extractor; every extractor is listed, with 0 checks and NULL
-- uptime when none of its streams was checked in that time.
CREATE VIEW extractor_uptime_24h AS
SELECT e.site_key, e.site_name, e.enabled,
       COUNT(DISTINCT r.stream_id) AS streams,
       COALESCE(SUM(r.checks), 0) AS checks,
       COALESCE(SUM(r.healthy), 0) AS healthy,
       CASE WHEN SUM(r.checks) > 0 THEN ROUND(1.0 * SUM(r.healthy) / SUM(r.checks), 4) END AS uptime,
       CASE WHEN SUM(r.response_samples) > 0
            THEN ROUND(1.0 * SUM(r.response_ms_sum) / SUM(r.response_samples), 1) END
           AS mean_response_ms
FROM extractors e
LEFT JOIN streams s ON s.site_key = e.site_key
LEFT JOIN health_rollups_hourly r ON r.stream_id = s.id
     AND r.hour >= strftime('%Y-%m-%dT%H:00:00.000Z', 'now', '-24 hours')
GROUP BY e.site_key;
