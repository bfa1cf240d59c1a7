-- Dashboard accounts and care teams (dashboards, issue 10).
--
-- A care team is the visiting team of a clinic and serves many patients; the first registry
-- schema tied each team to one patient. Nothing wrote those tables before this migration, so they
-- are replaced rather than altered (SQLite cannot drop a NOT NULL column in place).
DROP TABLE care_team_members;
DROP TABLE care_teams;

CREATE TABLE care_teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    clinic_id   TEXT NOT NULL REFERENCES clinics (id)
);

CREATE TABLE care_team_members (
    care_team_id TEXT NOT NULL REFERENCES care_teams (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (care_team_id, user_id)
);

CREATE TABLE care_team_patients (
    care_team_id TEXT NOT NULL REFERENCES care_teams (id),
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (care_team_id, patient_id)
);
CREATE INDEX care_team_patients_patient_idx ON care_team_patients (patient_id);

-- How a registry user signs in to the dashboard. `roles` lists access roles (nurse, doctor,
-- on_call_doctor, coordinator, administrator), comma-separated: what the user may do, which is
-- not the same as `users.role`, their profession. The password is an argon2id PHC string; the
-- TOTP secret is base32 and is required outside the clinics' networks.
CREATE TABLE user_accounts (
    user_id      TEXT PRIMARY KEY REFERENCES users (id),
    login        TEXT NOT NULL UNIQUE,
    roles        TEXT NOT NULL,
    password_phc TEXT NOT NULL,
    totp_secret  TEXT
);
