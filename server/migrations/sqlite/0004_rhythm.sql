-- SQLite twin of migrations/postgres/0004_rhythm.sql: times are INTEGER microseconds since the Unix
-- epoch (UTC), no hypertables.
-- Rhythm episodes and signal quality derived by the hot path's analysis chain, and the chain's
-- state in the checkpoints so a restart resumes exactly. Recomputable from ecg_chunks.

CREATE TABLE rhythm_episodes (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    -- af | pause_2s | pause_3s | asystole | bradycardia | tachycardia
    kind             TEXT NOT NULL,
    start_index      BIGINT NOT NULL,
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    signal_usable    INTEGER NOT NULL,
    max_rr_ms        REAL,
    extreme_per_min  REAL,
    PRIMARY KEY (patient_id, stream_id, kind, start_index, started_at)
);
CREATE INDEX rhythm_episodes_patient_idx ON rhythm_episodes (patient_id, started_at DESC);

-- Signal quality per second, stored as runs of equal quality [started_at, ended_at).
CREATE TABLE ecg_quality_runs (
    patient_id  TEXT NOT NULL,
    stream_id   BIGINT NOT NULL,
    quality     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER NOT NULL,
    PRIMARY KEY (patient_id, stream_id, started_at)
);
CREATE INDEX ecg_quality_runs_patient_idx ON ecg_quality_runs (patient_id, started_at DESC);

ALTER TABLE dsp_checkpoints ADD COLUMN state_index BIGINT;
ALTER TABLE dsp_checkpoints ADD COLUMN state_at INTEGER;
ALTER TABLE dsp_checkpoints ADD COLUMN state BLOB;
