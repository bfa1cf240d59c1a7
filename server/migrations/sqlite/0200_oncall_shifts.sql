-- On-call rota (issue 9): one row per on-call period, backups in their own table in call order.
-- Times are sqlx's RFC 3339 text in UTC, which sorts as time. SQLite has no exclusion
-- constraints: overlaps are refused by oncall::rota::Rota::new before anything is written.
CREATE TABLE oncall_shifts (
    id               INTEGER PRIMARY KEY,
    starts_at        TEXT NOT NULL,
    ends_at          TEXT NOT NULL,
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
