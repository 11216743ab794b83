-- Deep health (README "Deep health and ranking"): what a player-grade check
-- learns, flap damping and
-- the ranking score. Columns only; no row of history is rewritten.

-- Served state with flap damping: 'healthy' (latest check passed),
-- 'pending' (failed, still served until health.failures_before_down
-- consecutive failures), 'down' (not served).
ALTER TABLE streams ADD COLUMN health_state TEXT NOT NULL DEFAULT 'down'
    CHECK (health_state IN ('healthy', 'pending', 'down'));
ALTER TABLE streams ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
-- Smoothed response time (EWMA, alpha 0.3) and the order=score value (0-100).
ALTER TABLE streams ADD COLUMN ewma_response_ms REAL;
ALTER TABLE streams ADD COLUMN score REAL NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN variant_count INTEGER;
ALTER TABLE streams ADD COLUMN media_sequence INTEGER;
ALTER TABLE streams ADD COLUMN target_duration REAL;
ALTER TABLE streams ADD COLUMN last_segment TEXT;
ALTER TABLE streams ADD COLUMN segment_ttfb_ms INTEGER;
ALTER TABLE streams ADD COLUMN throughput_bps INTEGER;
ALTER TABLE streams ADD COLUMN throughput_ratio REAL;

UPDATE streams
SET health_state = CASE WHEN is_live = 1 THEN 'healthy' ELSE 'down' END,
    ewma_response_ms = response_time_ms;

ALTER TABLE health_checks ADD COLUMN variant_count INTEGER;
ALTER TABLE health_checks ADD COLUMN media_sequence INTEGER;
ALTER TABLE health_checks ADD COLUMN target_duration REAL;
ALTER TABLE health_checks ADD COLUMN segment_ttfb_ms INTEGER;
ALTER TABLE health_checks ADD COLUMN throughput_bps INTEGER;
ALTER TABLE health_checks ADD COLUMN throughput_ratio REAL;
ALTER TABLE health_checks ADD COLUMN restarted INTEGER NOT NULL DEFAULT 0 CHECK (restarted IN (0, 1));
ALTER TABLE health_checks ADD COLUMN health_state TEXT
    CHECK (health_state IN ('healthy', 'pending', 'down'));

-- The served rows (healthy and pending), in each order /streams offers.
CREATE INDEX streams_served_fastest ON streams (response_time_ms) WHERE active = 1 AND health_state <> 'down';
CREATE INDEX streams_served_score ON streams (score) WHERE active = 1 AND health_state <> 'down';
