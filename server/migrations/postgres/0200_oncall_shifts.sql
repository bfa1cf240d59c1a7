-- On-call rota (issue 9): one row per on-call period, backups in their own table in call order.
-- Doctor and clinic ids are the registry's; they are checked against the care network when the
-- rota is loaded (oncall::rota::Rota::new), so that this migration does not depend on the order
-- in which the registry's tables land.
CREATE TABLE oncall_shifts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    clinic_id        TEXT NOT NULL,
    doctor_id        TEXT NOT NULL,
    triage_clinic_id TEXT NOT NULL,
    CONSTRAINT oncall_shifts_not_empty CHECK (ends_at > starts_at),
    -- Two shifts may never claim the same minute: whom to wake must be unambiguous.
    CONSTRAINT oncall_shifts_no_overlap EXCLUDE USING gist (tstzrange(starts_at, ends_at) WITH &&)
);
CREATE INDEX oncall_shifts_starts_at ON oncall_shifts (starts_at);

CREATE TABLE oncall_shift_backups (
    shift_id  BIGINT NOT NULL REFERENCES oncall_shifts (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL CHECK (position >= 0),
    doctor_id TEXT NOT NULL,
    PRIMARY KEY (shift_id, position)
);
