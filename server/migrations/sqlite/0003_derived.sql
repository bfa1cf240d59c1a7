-- SQLite twin of migrations/postgres/0003_derived.sql: times are INTEGER microseconds since the Unix epoch (UTC),
-- arrays are JSON text, no hypertables.
-- Series derived from raw ECG by the per-patient hot path. Recomputable from ecg_chunks.

CREATE TABLE beats (
    patient_id   TEXT NOT NULL,
    at           INTEGER NOT NULL,
    stream_id    BIGINT NOT NULL,
    sample_index BIGINT NOT NULL,
    -- Interval from the previous beat of the same stream; NULL for a stream's first beat or after a gap.
    rr_ms        REAL,
    late         INTEGER NOT NULL
);
CREATE INDEX beats_patient_idx ON beats (patient_id, at DESC);

-- Heart rate once per second of ECG, from the mean RR of the recent beats.
CREATE TABLE heart_rate (
    patient_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    bpm        REAL NOT NULL
);
CREATE INDEX heart_rate_patient_idx ON heart_rate (patient_id, at DESC);

-- Missing stretches of an ECG stream, recorded rather than bridged.
CREATE TABLE ecg_gaps (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    from_index       BIGINT NOT NULL,
    to_index         BIGINT NOT NULL,
    detected_at      INTEGER NOT NULL
);

-- Where each stream's analysis got to, so a restart resumes instead of re-detecting.
CREATE TABLE dsp_checkpoints (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    next_index       BIGINT NOT NULL,
    last_beat_index  BIGINT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (patient_id, stream_id)
);
