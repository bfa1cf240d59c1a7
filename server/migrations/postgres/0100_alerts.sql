-- Alerts (issue 8): the lifecycle of every alert and each of its transitions, who and when.
-- Versions 0100-0199 belong to the alerts subsystem.

CREATE TABLE alert (
    id            TEXT PRIMARY KEY,                  -- UUID, also the webhook idempotency root
    patient_id    TEXT NOT NULL,
    rule_key      TEXT NOT NULL,                     -- the engine's alert key, e.g. spo2_low
    raised_at     TIMESTAMPTZ NOT NULL,
    priority      TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    category      TEXT NOT NULL CHECK (category IN ('clinical', 'technical', 'adherence')),
    state         TEXT NOT NULL,
    rules_version TEXT NOT NULL,
    snapshot      TEXT NOT NULL,                     -- the whole alert as JSON, to resume exactly
    -- A replayed raise after a restart hits this and changes nothing.
    UNIQUE (patient_id, rule_key, raised_at)
);
CREATE INDEX alert_open_by_patient ON alert (patient_id, raised_at) WHERE state <> 'resolved';

-- Append-only history: one row per transition.
CREATE TABLE alert_transition (
    alert_id   TEXT NOT NULL REFERENCES alert (id),
    seq        BIGINT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,                        -- JSON: {"kind":"user","id":"…"} …
    note       TEXT NOT NULL,
    PRIMARY KEY (alert_id, seq)
);

-- The rules engine's state, written in the same transaction as the transitions it caused.
CREATE TABLE alert_engine_checkpoint (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through TIMESTAMPTZ NOT NULL,                    -- last observation time included
    state   TEXT NOT NULL
);

-- Every change of a doctor's per-patient rule override, never updated or deleted.
CREATE TABLE alert_rule_override_audit (
    id          BIGSERIAL PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    raise_value DOUBLE PRECISION NOT NULL,
    clear_value DOUBLE PRECISION NOT NULL,
    set_by      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_rule_override_by_patient ON alert_rule_override_audit (patient_id, rule_id, set_at);

-- Liveness of the server's parts, read by the watchdog process.
CREATE TABLE service_heartbeat (
    component TEXT PRIMARY KEY,                      -- ingest, broker_subscription, notifier
    at        TIMESTAMPTZ NOT NULL
);
