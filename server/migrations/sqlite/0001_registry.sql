-- SQLite twin of migrations/postgres/0001_registry.sql: times are INTEGER microseconds since the Unix epoch (UTC),
-- arrays are JSON text, no hypertables.
-- Registry: the source of truth every other part of the server reads.
-- Ids are short text keys chosen by the operator (e.g. 'p-0001'), so fixtures, the admin CLI and
-- the on-call rota name the same things. Health data is special-care personal information under
-- Japan's APPI: ingest requires recorded consent (patients.consent_monitoring_at).

CREATE TABLE clinics (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    director           TEXT NOT NULL,
    emergency_phone    TEXT NOT NULL,
    -- Free-form opening hours as the clinic states them, e.g. 'Mon-Fri 09:00-18:00'.
    opening_hours      TEXT NOT NULL,
    area               TEXT NOT NULL CHECK (area IN ('setagaya', 'tamagawa'))
);

CREATE TABLE patients (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    name_furigana              TEXT NOT NULL,
    date_of_birth              TEXT NOT NULL,
    sex                        TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    address                    TEXT NOT NULL,
    map_url                    TEXT,
    key_person_name            TEXT,
    key_person_phone           TEXT,
    main_diseases              TEXT NOT NULL DEFAULT '[]',
    medications                TEXT NOT NULL DEFAULT '[]',
    allergies                  TEXT NOT NULL DEFAULT '[]',
    -- Advance directive in the patient's words and whether DNAR has been agreed.
    advance_directive          TEXT,
    dnar                       INTEGER NOT NULL DEFAULT 0,
    home_oxygen_l_per_min      REAL CHECK (home_oxygen_l_per_min >= 0),
    -- NEWS2 SpO2 scale: 1 (default) or 2 (hypercapnic respiratory failure, target 88-92 %).
    news2_spo2_scale           INTEGER NOT NULL DEFAULT 1 CHECK (news2_spo2_scale IN (1, 2)),
    -- Expected reading schedule, e.g. 'BP 07:00,19:00; SpO2 continuous overnight'.
    reading_schedule           TEXT,
    primary_clinic_id          TEXT REFERENCES clinics (id),
    consent_monitoring_at      INTEGER,
    consent_monitoring_withdrawn_at INTEGER,
    consent_night_sharing_at   INTEGER,
    consent_night_sharing_withdrawn_at INTEGER
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('doctor', 'nurse', 'operator', 'admin')),
    clinic_id   TEXT REFERENCES clinics (id),
    phone       TEXT
);

CREATE TABLE care_teams (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    clinic_id   TEXT NOT NULL REFERENCES clinics (id)
);

CREATE TABLE care_team_members (
    care_team_id TEXT NOT NULL REFERENCES care_teams (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (care_team_id, user_id)
);

CREATE TABLE devices (
    -- The id the gateway reports: '<model>:<serial>' or '<model>:<BLE address>' (wire DeviceRef.id).
    id          TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    serial      TEXT,
    ble_address TEXT,
    area        TEXT NOT NULL CHECK (area IN ('setagaya', 'tamagawa'))
);

CREATE TABLE gateways (
    -- The gateway's MQTT user name; its credentials live in the broker's password file.
    id          TEXT PRIMARY KEY,
    patient_id  TEXT REFERENCES patients (id),
    note        TEXT
);

CREATE TABLE loans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    -- For shared BP cuffs and scales: the user slot that is this patient's.
    device_user INTEGER CHECK (device_user BETWEEN 1 AND 16),
    lent_from   INTEGER NOT NULL,
    lent_until  INTEGER,
    CHECK (lent_until IS NULL OR lent_until > lent_from)
);
CREATE INDEX loans_device_idx ON loans (device_id, lent_from);
