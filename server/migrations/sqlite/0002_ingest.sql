-- SQLite twin of migrations/postgres/0002_ingest.sql: times are INTEGER microseconds since the Unix epoch (UTC),
-- arrays are JSON text, no hypertables.
-- Ingest: idempotency keys, end-to-end ack watermarks, raw readings, dead letters, counters.

-- One row per stored message (accepted or dead-lettered). A plain table, not a hypertable: a
-- unique index on a hypertable must include its time column, and the key has none.
CREATE TABLE ingest_dedup (
    gateway_id  TEXT NOT NULL,
    epoch       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, epoch, seq)
);
CREATE INDEX ingest_dedup_received_idx ON ingest_dedup (received_at);

-- Highest contiguous sequence stored per (gateway, epoch): what the end-to-end ack says. Anything
-- at or below it is a duplicate even after old ingest_dedup rows are pruned.
CREATE TABLE ingest_watermarks (
    gateway_id     TEXT NOT NULL,
    epoch          TEXT NOT NULL,
    stored_through BIGINT NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, epoch)
);

-- Per-gateway, per-minute counters for `stats --since` and the operator's view.
CREATE TABLE ingest_counts (
    gateway_id    TEXT NOT NULL,
    minute        INTEGER NOT NULL,
    received      BIGINT NOT NULL DEFAULT 0,
    stored        BIGINT NOT NULL DEFAULT 0,
    duplicates    BIGINT NOT NULL DEFAULT 0,
    dead_lettered BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway_id, minute)
);

CREATE TABLE gateway_state (
    gateway_id      TEXT PRIMARY KEY,
    last_seen       INTEGER NOT NULL,
    -- Server receive time minus the gateway's sent_at of its latest message, in milliseconds.
    clock_offset_ms BIGINT,
    online          INTEGER,
    software_version TEXT,
    outbox_depth    BIGINT
);

CREATE TABLE observations (
    patient_id   TEXT NOT NULL,
    measured_at  INTEGER NOT NULL,
    loinc        TEXT NOT NULL,
    unit         TEXT NOT NULL,
    value        REAL NOT NULL,
    device_id    TEXT NOT NULL,
    device_time  TEXT,
    received_at  INTEGER NOT NULL,
    -- Time flags from the gateway and the server ('implausible_device_time', …).
    time_flags   TEXT NOT NULL DEFAULT '[]',
    gateway_id   TEXT NOT NULL,
    epoch        TEXT NOT NULL,
    seq          BIGINT NOT NULL
);
CREATE INDEX observations_patient_idx ON observations (patient_id, loinc, measured_at DESC);

-- One row per received ECG chunk; samples delta-encoded and packed (see storage::ecg_codec).
CREATE TABLE ecg_chunks (
    patient_id         TEXT NOT NULL,
    first_sample_at    INTEGER NOT NULL,
    device_id          TEXT NOT NULL,
    lead               TEXT NOT NULL,
    stream_id          BIGINT NOT NULL,
    first_sample_index BIGINT NOT NULL,
    sample_count       INTEGER NOT NULL,
    sample_rate_hz     REAL NOT NULL,
    uv_per_count       REAL NOT NULL,
    lead_off           INTEGER NOT NULL,
    samples            BLOB NOT NULL,
    received_at        INTEGER NOT NULL,
    gateway_id         TEXT NOT NULL,
    epoch              TEXT NOT NULL,
    seq                BIGINT NOT NULL
);
CREATE INDEX ecg_chunks_patient_idx ON ecg_chunks (patient_id, first_sample_at DESC);

CREATE TABLE device_status (
    device_id       TEXT NOT NULL,
    at              INTEGER NOT NULL,
    gateway_id      TEXT NOT NULL,
    connected       INTEGER NOT NULL,
    battery_percent INTEGER,
    lead_off        INTEGER,
    signal_quality  INTEGER,
    firmware        TEXT
);
CREATE INDEX device_status_device_idx ON device_status (device_id, at DESC);

CREATE TABLE dead_letters (
    received_at INTEGER NOT NULL,
    gateway_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    epoch       TEXT,
    seq         BIGINT,
    -- A short stable label (WireError::reason or an ownership reason) and the full message.
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX dead_letters_gateway_idx ON dead_letters (gateway_id, received_at DESC);
