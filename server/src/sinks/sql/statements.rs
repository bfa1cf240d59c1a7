//! The SQL both backends run, written once with `$n` placeholders (sqlx's SQLite driver reads them
//! too); [`super`] binds and reads the columns in the order each text names them.

/// Reads every committed watermark: `(gateway_id, epoch, stored_through)` rows.
pub(super) const WATERMARKS_SQL: &str =
    "SELECT gateway_id, epoch, stored_through FROM ingest_watermarks";

/// Reads the stored sequences above each watermark (or of epochs without one), in order:
/// `(gateway_id, epoch, seq)` rows.
pub(super) const SEQUENCES_ABOVE_WATERMARKS_SQL: &str =
    "SELECT d.gateway_id, d.epoch, d.seq FROM ingest_dedup d
     LEFT JOIN ingest_watermarks w ON w.gateway_id = d.gateway_id AND w.epoch = d.epoch
     WHERE w.stored_through IS NULL OR d.seq > w.stored_through
     ORDER BY d.seq";

/// Every registered gateway with its allowed devices at `$1` (the backend's time type), one row
/// per device, or one row with NULL device columns for a gateway that has none:
/// `(gateway_id, patient_id, model, serial, ble_address, device_user)`.
pub(super) const GATEWAY_ALLOW_LISTS_SQL: &str =
    "SELECT g.id, g.patient_id, d.model, d.serial, d.ble_address,
            CAST(l.device_user AS BIGINT)
     FROM gateways g
     LEFT JOIN patients p ON p.id = g.patient_id
         AND p.consent_monitoring_at <= $1
         AND (p.consent_monitoring_withdrawn_at IS NULL OR p.consent_monitoring_withdrawn_at > $1)
     LEFT JOIN loans l ON l.patient_id = p.id
         AND l.lent_from <= $1 AND (l.lent_until IS NULL OR l.lent_until > $1)
     LEFT JOIN devices d ON d.id = l.device_id
     ORDER BY g.id, d.id";

/// Upserts a rhythm episode; the key is `(patient_id, stream_id, kind, start_index,
/// started_at)`. Binds: patient, stream, kind, start index, started_at, ended_at,
/// signal_usable, max_rr_ms, extreme_per_min.
pub(super) const UPSERT_EPISODE_SQL: &str = "INSERT INTO rhythm_episodes
     (patient_id, stream_id, kind, start_index, started_at, ended_at, signal_usable, max_rr_ms,
      extreme_per_min)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (patient_id, stream_id, kind, start_index, started_at) DO UPDATE SET
       ended_at = excluded.ended_at, signal_usable = excluded.signal_usable,
       max_rr_ms = excluded.max_rr_ms, extreme_per_min = excluded.extreme_per_min";

/// Upserts a quality run keyed by `(patient_id, stream_id, started_at)`. Binds: patient,
/// stream, quality label, started_at, ended_at.
pub(super) const UPSERT_QUALITY_RUN_SQL: &str = "INSERT INTO ecg_quality_runs
     (patient_id, stream_id, quality, started_at, ended_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (patient_id, stream_id, started_at) DO UPDATE SET
       quality = excluded.quality, ended_at = excluded.ended_at";

/// Upserts a checkpoint, keeping the stored analysis state when the new one carries none.
/// Binds: patient, stream, next_index, last_beat_index, updated_at, state_index, state_at,
/// state.
pub(super) const UPSERT_CHECKPOINT_SQL: &str = "INSERT INTO dsp_checkpoints
     (patient_id, stream_id, next_index, last_beat_index, updated_at, state_index, state_at, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (patient_id, stream_id) DO UPDATE SET
       next_index = excluded.next_index, last_beat_index = excluded.last_beat_index,
       updated_at = excluded.updated_at,
       state_index = COALESCE(excluded.state_index, dsp_checkpoints.state_index),
       state_at = COALESCE(excluded.state_at, dsp_checkpoints.state_at),
       state = COALESCE(excluded.state, dsp_checkpoints.state)";

/// Reads every checkpoint: `(patient, stream, next_index, last_beat_index, updated_at,
/// state_index, state_at, state)` rows.
pub(super) const CHECKPOINTS_SQL: &str = "SELECT patient_id, stream_id, next_index,
     last_beat_index, updated_at, state_index, state_at, state FROM dsp_checkpoints";

/// A patient's episodes overlapping `[$2, $3)`, oldest first.
pub(super) const EPISODES_SQL: &str = "SELECT patient_id, stream_id, kind, start_index,
     started_at, ended_at, signal_usable, max_rr_ms, extreme_per_min FROM rhythm_episodes
     WHERE patient_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)
     ORDER BY started_at, kind";

/// A patient's quality runs overlapping `[$2, $3)`, oldest first.
pub(super) const QUALITY_RUNS_SQL: &str = "SELECT patient_id, stream_id, quality, started_at,
     ended_at FROM ecg_quality_runs
     WHERE patient_id = $1 AND started_at < $3 AND ended_at > $2 ORDER BY started_at";

/// A patient's observations of one vital sign in a time range, oldest first, both backends:
/// `$1` patient, `$2` LOINC, `$3..$4` range, `$5` limit.
pub(super) const OBSERVATIONS_OLDEST_FIRST_SQL: &str = "SELECT patient_id, device_id, loinc, value,
     measured_at, device_time, received_at, time_flags FROM observations
     WHERE patient_id = $1 AND loinc = $2 AND measured_at >= $3 AND measured_at < $4
     ORDER BY measured_at LIMIT $5";

/// As [`OBSERVATIONS_OLDEST_FIRST_SQL`], newest first.
pub(super) const OBSERVATIONS_NEWEST_FIRST_SQL: &str = "SELECT patient_id, device_id, loinc, value,
     measured_at, device_time, received_at, time_flags FROM observations
     WHERE patient_id = $1 AND loinc = $2 AND measured_at >= $3 AND measured_at < $4
     ORDER BY measured_at DESC LIMIT $5";

/// The device-state query both backends run (`$1` patient, `$2` instant). The latest status row of
/// each device is found by `max(at)`; the gateway is the one that relayed it, or the patient's.
pub(super) const DEVICE_STATES_SQL: &str = "
    SELECT l.device_id, d.model, s.battery_percent, s.at, COALESCE(s.gateway_id, gw.id),
           g.online, g.last_seen
    FROM loans l
    JOIN devices d ON d.id = l.device_id
    LEFT JOIN device_status s ON s.device_id = l.device_id
        AND s.at = (SELECT max(at) FROM device_status WHERE device_id = l.device_id)
    LEFT JOIN gateways gw ON gw.patient_id = l.patient_id
    LEFT JOIN gateway_state g ON g.gateway_id = COALESCE(s.gateway_id, gw.id)
    WHERE l.patient_id = $1 AND l.lent_from <= $2 AND (l.lent_until IS NULL OR l.lent_until > $2)
    ORDER BY l.device_id";

/// Raises a watermark, never lowers it.
pub(super) const UPSERT_WATERMARK_SQL: &str =
    "INSERT INTO ingest_watermarks (gateway_id, epoch, stored_through, updated_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (gateway_id, epoch) DO UPDATE SET
       stored_through = CASE WHEN excluded.stored_through > ingest_watermarks.stored_through
                        THEN excluded.stored_through ELSE ingest_watermarks.stored_through END,
       updated_at = excluded.updated_at";

/// Adds a batch's counts to a gateway's minute.
pub(super) const ADD_INGEST_COUNTS_SQL: &str = "INSERT INTO ingest_counts
       (gateway_id, minute, received, stored, duplicates, dead_lettered)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (gateway_id, minute) DO UPDATE SET
       received = ingest_counts.received + excluded.received,
       stored = ingest_counts.stored + excluded.stored,
       duplicates = ingest_counts.duplicates + excluded.duplicates,
       dead_lettered = ingest_counts.dead_lettered + excluded.dead_lettered";

/// Records when a gateway was last heard from (never moving back) and its clock offset.
pub(super) const UPSERT_GATEWAY_SEEN_SQL: &str =
    "INSERT INTO gateway_state (gateway_id, last_seen, clock_offset_ms) VALUES ($1, $2, $3)
     ON CONFLICT (gateway_id) DO UPDATE SET
       last_seen = CASE WHEN excluded.last_seen > gateway_state.last_seen
                   THEN excluded.last_seen ELSE gateway_state.last_seen END,
       clock_offset_ms = COALESCE(excluded.clock_offset_ms, gateway_state.clock_offset_ms)";

pub(super) const UPSERT_GATEWAY_PRESENCE_SQL: &str = "INSERT INTO gateway_state
       (gateway_id, last_seen, online, software_version, outbox_depth)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (gateway_id) DO UPDATE SET online = excluded.online,
       software_version = excluded.software_version, outbox_depth = excluded.outbox_depth";

pub(super) const INSERT_DEVICE_STATUS_SQL: &str = "INSERT INTO device_status
       (device_id, at, gateway_id, connected, battery_percent, lead_off, signal_quality, firmware)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(super) const INSERT_DEAD_LETTER_SQL: &str = "INSERT INTO dead_letters
       (received_at, gateway_id, topic, epoch, seq, reason, detail, payload)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(super) const INSERT_GAP_SQL: &str =
    "INSERT INTO ecg_gaps (patient_id, stream_id, from_index, to_index, detected_at)
     VALUES ($1, $2, $3, $4, $5)";

pub(super) const LOANS_SQL: &str =
    "SELECT l.device_id, l.patient_id, l.device_user, l.lent_from, l.lent_until,
            p.consent_monitoring_at, p.consent_monitoring_withdrawn_at
     FROM loans l JOIN patients p ON p.id = l.patient_id
     ORDER BY l.device_id, l.lent_from";

/// A patient's ECG chunks starting in `[$2, $3)`, oldest first.
pub(super) const ECG_CHUNKS_SQL: &str =
    "SELECT patient_id, device_id, lead, stream_id, first_sample_index, first_sample_at,
            sample_rate_hz, uv_per_count, lead_off, samples, received_at
     FROM ecg_chunks
     WHERE patient_id = $1 AND first_sample_at >= $2 AND first_sample_at < $3
     ORDER BY first_sample_at, first_sample_index";

/// A patient's beats in `[$2, $3)`, oldest first.
pub(super) const BEATS_SQL: &str =
    "SELECT patient_id, at, stream_id, sample_index, rr_ms, late FROM beats
     WHERE patient_id = $1 AND at >= $2 AND at < $3 ORDER BY at";

/// Ingest counts per gateway since the minute `$1` (all when NULL).
pub(super) const COUNTS_SINCE_SQL: &str = "SELECT gateway_id, CAST(sum(received) AS BIGINT),
       CAST(sum(stored) AS BIGINT), CAST(sum(duplicates) AS BIGINT),
       CAST(sum(dead_lettered) AS BIGINT)
     FROM ingest_counts WHERE $1 IS NULL OR minute >= $1 GROUP BY gateway_id";

/// Dead letters per gateway and reason since `$1` (all when NULL).
pub(super) const DEAD_LETTERS_SINCE_SQL: &str =
    "SELECT gateway_id, reason, count(*) FROM dead_letters
     WHERE $1 IS NULL OR received_at >= $1 GROUP BY gateway_id, reason";

pub(super) const GATEWAY_STATES_SQL: &str =
    "SELECT gateway_id, last_seen, clock_offset_ms FROM gateway_state";

pub(super) const UPSERT_CLINIC_SQL: &str =
    "INSERT INTO clinics (id, name, director, emergency_phone, opening_hours, area)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, director = excluded.director,
       emergency_phone = excluded.emergency_phone, opening_hours = excluded.opening_hours,
       area = excluded.area";

pub(super) const UPSERT_PATIENT_SQL: &str =
    "INSERT INTO patients (id, name, name_furigana, date_of_birth, sex, address, map_url,
       key_person_name, key_person_phone, main_diseases, medications, allergies,
       advance_directive, dnar, home_oxygen_l_per_min, news2_spo2_scale, reading_schedule,
       primary_clinic_id, consent_monitoring_at, consent_monitoring_withdrawn_at,
       consent_night_sharing_at, consent_night_sharing_withdrawn_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name,
       name_furigana = excluded.name_furigana, date_of_birth = excluded.date_of_birth,
       sex = excluded.sex, address = excluded.address, map_url = excluded.map_url,
       key_person_name = excluded.key_person_name,
       key_person_phone = excluded.key_person_phone,
       main_diseases = excluded.main_diseases, medications = excluded.medications,
       allergies = excluded.allergies, advance_directive = excluded.advance_directive,
       dnar = excluded.dnar, home_oxygen_l_per_min = excluded.home_oxygen_l_per_min,
       news2_spo2_scale = excluded.news2_spo2_scale,
       reading_schedule = excluded.reading_schedule,
       primary_clinic_id = excluded.primary_clinic_id,
       consent_monitoring_at = excluded.consent_monitoring_at,
       consent_monitoring_withdrawn_at = excluded.consent_monitoring_withdrawn_at,
       consent_night_sharing_at = excluded.consent_night_sharing_at,
       consent_night_sharing_withdrawn_at = excluded.consent_night_sharing_withdrawn_at";

/// The columns of [`UPSERT_PATIENT_SQL`], in the same order.
pub(super) const PATIENTS_SQL: &str =
    "SELECT id, name, name_furigana, date_of_birth, sex, address, map_url, key_person_name,
       key_person_phone, main_diseases, medications, allergies, advance_directive, dnar,
       home_oxygen_l_per_min, news2_spo2_scale, reading_schedule, primary_clinic_id,
       consent_monitoring_at, consent_monitoring_withdrawn_at, consent_night_sharing_at,
       consent_night_sharing_withdrawn_at
     FROM patients ORDER BY id";

pub(super) const UPSERT_DEVICE_SQL: &str =
    "INSERT INTO devices (id, model, serial, ble_address, area) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET model = excluded.model, serial = excluded.serial,
       ble_address = excluded.ble_address, area = excluded.area";

pub(super) const UPSERT_GATEWAY_SQL: &str =
    "INSERT INTO gateways (id, patient_id, note) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, note = excluded.note";

pub(super) const ADD_LOAN_SQL: &str =
    "INSERT INTO loans (device_id, patient_id, device_user, lent_from, lent_until)
     VALUES ($1, $2, $3, $4, $5) RETURNING id";

pub(super) const END_LOAN_SQL: &str = "UPDATE loans SET lent_until = $2 WHERE id = $1";
