-- Audit trail of every read and write of patient data (dashboards, issue 10).
-- SQLite has no roles: triggers make the table append-only instead.

CREATE TABLE audit_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    patient_id         TEXT,
    action             TEXT NOT NULL,
    outcome            TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    basis              TEXT CHECK (basis IN ('care_team', 'on_call_alert', 'break_glass', 'administrator')),
    remote_addr        TEXT NOT NULL,
    break_glass_reason TEXT,
    CHECK ((basis = 'break_glass') = (break_glass_reason IS NOT NULL))
);

CREATE INDEX audit_events_patient_at ON audit_events (patient_id, at DESC);
CREATE INDEX audit_events_user_at ON audit_events (user_id, at DESC);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
