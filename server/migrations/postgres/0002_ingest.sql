-- Ingest: idempotency keys, end-to-end ack watermarks, raw readings, dead letters, counters.

-- One row per stored message (accepted or dead-lettered). A plain table, not a hypertable: a
-- unique index on a hypertable must include its time column, and the key has none.
CREATE TABLE ingest_dedup (
    gateway_id  TEXT NOT NULL,
    epoch       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (gateway_id, epoch, seq)
);
CREATE INDEX ingest_dedup_received_idx ON ingest_dedup (received_at);

-- Highest contiguous sequence stored per (gateway, epoch): what the end-to-end ack says. Anything
-- at or below it is a duplicate even after old ingest_dedup rows are pruned.
CREATE TABLE ingest_watermarks (
    gateway_id     TEXT NOT NULL,
    epoch          TEXT NOT NULL,
    stored_through BIGINT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (gateway_id, epoch)
);

-- Per-gateway, per-minute counters for `stats --since` and the operator's view.
CREATE TABLE ingest_counts (
    gateway_id    TEXT NOT NULL,
    minute        TIMESTAMPTZ NOT NULL,
    received      BIGINT NOT NULL DEFAULT 0,
    stored        BIGINT NOT NULL DEFAULT 0,
    duplicates    BIGINT NOT NULL DEFAULT 0,
    dead_lettered BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway_id, minute)
);

CREATE TABLE gateway_state (
    gateway_id      TEXT PRIMARY KEY,
    last_seen       TIMESTAMPTZ NOT NULL,
    -- Server receive time minus the gateway's sent_at of its latest message, in milliseconds.
    clock_offset_ms BIGINT,
    online          BOOLEAN,
    software_version TEXT,
    outbox_depth    BIGINT
);

CREATE TABLE observations (
    patient_id   TEXT NOT NULL,
    measured_at  TIMESTAMPTZ NOT NULL,
    loinc        TEXT NOT NULL,
    unit         TEXT NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    device_id    TEXT NOT NULL,
    device_time  TIMESTAMP,
    received_at  TIMESTAMPTZ NOT NULL,
    -- Time flags from the gateway and the server ('implausible_device_time', …).
    time_flags   TEXT[] NOT NULL DEFAULT '{}',
    gateway_id   TEXT NOT NULL,
    epoch        TEXT NOT NULL,
    seq          BIGINT NOT NULL
);
SELECT create_hypertable('observations', by_range('measured_at', INTERVAL '7 days'));
CREATE INDEX observations_patient_idx ON observations (patient_id, loinc, measured_at DESC);

-- One row per received ECG chunk; samples delta-encoded and packed (see storage::ecg_codec).
CREATE TABLE ecg_chunks (
    patient_id         TEXT NOT NULL,
    first_sample_at    TIMESTAMPTZ NOT NULL,
    device_id          TEXT NOT NULL,
    lead               TEXT NOT NULL,
    stream_id          BIGINT NOT NULL,
    first_sample_index BIGINT NOT NULL,
    sample_count       INTEGER NOT NULL,
    sample_rate_hz     DOUBLE PRECISION NOT NULL,
    uv_per_count       DOUBLE PRECISION NOT NULL,
    lead_off           BOOLEAN NOT NULL,
    samples            BYTEA NOT NULL,
    received_at        TIMESTAMPTZ NOT NULL,
    gateway_id         TEXT NOT NULL,
    epoch              TEXT NOT NULL,
    seq                BIGINT NOT NULL
);
SELECT create_hypertable('ecg_chunks', by_range('first_sample_at', INTERVAL '1 day'));
CREATE INDEX ecg_chunks_patient_idx ON ecg_chunks (patient_id, first_sample_at DESC);

CREATE TABLE device_status (
    device_id       TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    gateway_id      TEXT NOT NULL,
    connected       BOOLEAN NOT NULL,
    battery_percent SMALLINT,
    lead_off        BOOLEAN,
    signal_quality  SMALLINT,
    firmware        TEXT
);
SELECT create_hypertable('device_status', by_range('at', INTERVAL '7 days'));
CREATE INDEX device_status_device_idx ON device_status (device_id, at DESC);

CREATE TABLE dead_letters (
    received_at TIMESTAMPTZ NOT NULL,
    gateway_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    epoch       TEXT,
    seq         BIGINT,
    -- A short stable label (WireError::reason or an ownership reason) and the full message.
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BYTEA NOT NULL
);
SELECT create_hypertable('dead_letters', by_range('received_at', INTERVAL '7 days'));
CREATE INDEX dead_letters_gateway_idx ON dead_letters (gateway_id, received_at DESC);
