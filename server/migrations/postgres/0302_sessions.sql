-- Dashboard sessions, so a server restart at night does not log the on-call staff out. Only the
-- SHA-256 of the cookie is kept: a dump of this table opens no session. Rows are deleted at
-- logout and when found expired; the user's roles and teams are read again from the registry
-- when a session is restored.
CREATE TABLE dashboard_sessions (
    token_sha256   TEXT PRIMARY KEY,
    login          TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    second_factor  BOOLEAN NOT NULL,
    login_address  TEXT NOT NULL
);
