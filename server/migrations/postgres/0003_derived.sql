-- Series derived from raw ECG by the per-patient hot path. Recomputable from ecg_chunks.

CREATE TABLE beats (
    patient_id   TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    stream_id    BIGINT NOT NULL,
    sample_index BIGINT NOT NULL,
    -- Interval from the previous beat of the same stream; NULL for a stream's first beat or after a gap.
    rr_ms        DOUBLE PRECISION,
    late         BOOLEAN NOT NULL
);
SELECT create_hypertable('beats', by_range('at', INTERVAL '1 day'));
CREATE INDEX beats_patient_idx ON beats (patient_id, at DESC);

-- Heart rate once per second of ECG, from the mean RR of the recent beats.
CREATE TABLE heart_rate (
    patient_id TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    bpm        DOUBLE PRECISION NOT NULL
);
SELECT create_hypertable('heart_rate', by_range('at', INTERVAL '7 days'));
CREATE INDEX heart_rate_patient_idx ON heart_rate (patient_id, at DESC);

-- Missing stretches of an ECG stream, recorded rather than bridged.
CREATE TABLE ecg_gaps (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    from_index       BIGINT NOT NULL,
    to_index         BIGINT NOT NULL,
    detected_at      TIMESTAMPTZ NOT NULL
);

-- Where each stream's analysis got to, so a restart resumes instead of re-detecting.
CREATE TABLE dsp_checkpoints (
    patient_id       TEXT NOT NULL,
    stream_id        BIGINT NOT NULL,
    next_index       BIGINT NOT NULL,
    last_beat_index  BIGINT,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (patient_id, stream_id)
);
