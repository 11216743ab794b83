-- The F1 calendar (docs/SQL.md, "schedule"), so a restart without network still knows it.
-- Each successful refresh replaces the whole calendar in one transaction; a
-- failed or unparsable fetch leaves it as it was. Timestamps follow 0001:
-- RFC 3339 UTC text with milliseconds and a trailing Z.

-- One row per session of the season. Race columns repeat on each of its
-- sessions so a single table answers "what is on and when".
CREATE TABLE schedule_sessions (
    season           TEXT NOT NULL,
    round            INTEGER NOT NULL,
    race_name        TEXT NOT NULL,
    race_url         TEXT,
    circuit          TEXT NOT NULL,
    circuit_id       TEXT NOT NULL,
    country          TEXT NOT NULL,
    locality         TEXT NOT NULL,
    race_date        TEXT NOT NULL,   -- YYYY-MM-DD, the race day
    session_type     TEXT NOT NULL CHECK (session_type IN
                         ('fp1', 'fp2', 'fp3', 'sprint_qualifying', 'sprint', 'qualifying', 'race')),
    session_name     TEXT NOT NULL,   -- display name, e.g. 'Practice 1', 'Sprint Shootout'
    date             TEXT NOT NULL,   -- YYYY-MM-DD (UTC) of the session
    start_utc        TEXT,            -- NULL when the calendar gives no time yet
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    PRIMARY KEY (season, round, session_type)
);

CREATE INDEX schedule_sessions_start ON schedule_sessions (start_utc);

-- Where the stored calendar came from and when: one row at most.
CREATE TABLE schedule_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    season     TEXT,
    source_url TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
