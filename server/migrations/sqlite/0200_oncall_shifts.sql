-- SQLite twin of migrations/postgres/0200_oncall_shifts.sql: times are INTEGER microseconds since
-- the Unix epoch (UTC), as in the core tables. SQLite has no exclusion constraints: overlaps are
-- refused by oncall::rota::Rota::new inside the publishing transaction, before anything is written.
CREATE TABLE oncall_shifts (
    id               INTEGER PRIMARY KEY,
    starts_at        INTEGER NOT NULL,
    ends_at          INTEGER NOT NULL,
    clinic_id        TEXT NOT NULL,
    doctor_id        TEXT NOT NULL,
    triage_clinic_id TEXT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_shifts_starts_at ON oncall_shifts (starts_at);

CREATE TABLE oncall_shift_backups (
    shift_id  INTEGER NOT NULL REFERENCES oncall_shifts (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL CHECK (position >= 0),
    doctor_id TEXT NOT NULL,
    PRIMARY KEY (shift_id, position)
);
