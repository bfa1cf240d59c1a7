-- Rhythm episodes and signal quality derived by the hot path's analysis chain, and the chain's
-- state in the checkpoints so a restart resumes exactly. Recomputable from ecg_chunks.

-- AF, pauses, asystole, bradycardia and tachycardia: written open (ended_at NULL) when they
-- start and rewritten when they end.
CREATE TABLE rhythm_episodes (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    -- af | pause_2s | pause_3s | asystole | bradycardia | tachycardia
    kind             TEXT NOT NULL,
    start_index      BIGINT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    ended_at         TIMESTAMPTZ,
    -- Every second it spans was usable signal; false means it may be technical (lead-off, noise).
    signal_usable    BOOLEAN NOT NULL,
    max_rr_ms        DOUBLE PRECISION,
    extreme_per_min  DOUBLE PRECISION,
    PRIMARY KEY (patient_id, stream_id, kind, start_index, started_at)
);
SELECT create_hypertable('rhythm_episodes', by_range('started_at', INTERVAL '30 days'));
CREATE INDEX rhythm_episodes_patient_idx ON rhythm_episodes (patient_id, started_at DESC);

-- Signal quality per second, stored as runs of equal quality [started_at, ended_at).
CREATE TABLE ecg_quality_runs (
    patient_id  TEXT NOT NULL,
    stream_id   BIGINT NOT NULL,
    -- usable | poor | lead_off
    quality     TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (patient_id, stream_id, started_at)
);
SELECT create_hypertable('ecg_quality_runs', by_range('started_at', INTERVAL '7 days'));
CREATE INDEX ecg_quality_runs_patient_idx ON ecg_quality_runs (patient_id, started_at DESC);

-- The analysis chain's snapshot at state_index (sampled at state_at), taken every 30 s of ECG.
ALTER TABLE dsp_checkpoints
    ADD COLUMN state_index BIGINT,
    ADD COLUMN state_at    TIMESTAMPTZ,
    ADD COLUMN state       BYTEA;
