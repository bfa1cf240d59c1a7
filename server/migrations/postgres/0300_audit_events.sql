-- Audit trail of every read and write of patient data (dashboards, issue 10).
--
-- Append-only by the database's own permissions: the server works through the
-- role mimamori_server, which may INSERT and SELECT here and nothing else.
-- A trigger refuses UPDATE, DELETE and TRUNCATE even to the table's owner, as a
-- second line for deployments that (wrongly) run the server as the owner.
-- Retention of audit rows is a legal matter (3 years minimum): done, if ever,
-- by an operator as a superuser, not by the application.

CREATE TABLE audit_events (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
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

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Roles are cluster-wide: databases migrating at the same time (tests share one cluster) can
-- both see the role missing, so the loser of that race takes the role the other created.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mimamori_server') THEN
        CREATE ROLE mimamori_server NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

REVOKE ALL ON audit_events FROM PUBLIC;
GRANT SELECT, INSERT ON audit_events TO mimamori_server;
