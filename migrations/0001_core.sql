-- Core schema: extractors, runs, streams with their latest health state, and
-- the append-only log of every health check. Timestamps are RFC 3339 UTC text
-- with milliseconds and a trailing Z (fixed width: text order is time order).

CREATE TABLE extractors (
    site_key   TEXT PRIMARY KEY NOT NULL,
    site_name  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('demo', 'static', 'm3u', 'json')),
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at TEXT NOT NULL
);

CREATE TABLE extraction_runs (
    id           INTEGER PRIMARY KEY,
    trigger      TEXT NOT NULL CHECK (trigger IN ('startup', 'schedule', 'manual', 'cli')),
    started_at   TEXT NOT NULL,
    finished_at  TEXT NOT NULL,
    stream_count INTEGER NOT NULL,
    live_count   INTEGER NOT NULL
);

CREATE INDEX extraction_runs_started_at ON extraction_runs (started_at);

CREATE TABLE extractor_runs (
    run_id       INTEGER NOT NULL REFERENCES extraction_runs (id) ON DELETE CASCADE,
    site_key     TEXT NOT NULL REFERENCES extractors (site_key),
    stream_count INTEGER NOT NULL,
    live_count   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    PRIMARY KEY (run_id, site_key)
);

CREATE INDEX extractor_runs_site_key ON extractor_runs (site_key, run_id);

CREATE TABLE streams (
    id               INTEGER PRIMARY KEY,
    site_key         TEXT NOT NULL REFERENCES extractors (site_key),
    url              TEXT NOT NULL,
    title            TEXT,
    quality          TEXT,
    session          TEXT,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    active           INTEGER NOT NULL CHECK (active IN (0, 1)),
    -- Latest health state, copied from the newest health_checks row so the
    -- ranking never reads history.
    is_live          INTEGER NOT NULL DEFAULT 0 CHECK (is_live IN (0, 1)),
    response_time_ms INTEGER,
    ttfb_ms          INTEGER,
    http_status      INTEGER,
    bitrate          INTEGER NOT NULL DEFAULT 0,
    playlist_kind    TEXT,
    stream_type      TEXT NOT NULL DEFAULT 'unknown',
    checked_at       TEXT,
    error_kind       TEXT,
    error            TEXT,
    UNIQUE (site_key, url)
);

-- Serves /streams: the healthy active rows, already in response-time order.
CREATE INDEX streams_served ON streams (response_time_ms, bitrate) WHERE active = 1 AND is_live = 1;
CREATE INDEX streams_active ON streams (active, site_key);

CREATE TABLE health_checks (
    id               INTEGER PRIMARY KEY,
    stream_id        INTEGER NOT NULL REFERENCES streams (id),
    run_id           INTEGER REFERENCES extraction_runs (id),
    checked_at       TEXT NOT NULL,
    is_live          INTEGER NOT NULL CHECK (is_live IN (0, 1)),
    response_time_ms INTEGER,
    ttfb_ms          INTEGER,
    http_status      INTEGER,
    bitrate          INTEGER NOT NULL,
    error_kind       TEXT,
    error            TEXT,
    playlist_kind    TEXT CHECK (playlist_kind IN ('master', 'media')),
    stream_type      TEXT NOT NULL CHECK (stream_type IN ('live', 'event', 'vod', 'unknown'))
);

CREATE INDEX health_checks_stream_time ON health_checks (stream_id, checked_at);
CREATE INDEX health_checks_run ON health_checks (run_id);

-- History is append-only: a check, once written, never changes.
CREATE TRIGGER health_checks_append_only BEFORE UPDATE ON health_checks
BEGIN
    SELECT RAISE(ABORT, 'health_checks is append-only');
END;

-- Small key/value store for generated state such as the proxy signing key.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
