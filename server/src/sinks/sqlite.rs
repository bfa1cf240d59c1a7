//! SQLite storage backend: the embedded default for the demo and single-box trials.
//!
//! Same tables as TimescaleDB (`migrations/sqlite/`), with times as INTEGER microseconds since the
//! Unix epoch (UTC) so range comparisons are numeric, and arrays as JSON text. WAL mode with
//! `synchronous = FULL`: a commit is on disk before the broker is acknowledged.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mimamori_wire::VitalSign;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::timescale::{bucket_width_s, count_batch, parse_vital, to_i64, to_u64};
use crate::storage::{
    BeatRecord, CHECKPOINTS_SQL, Checkpoint, Clinic, CommitOutcome, Content, DEVICE_STATES_SQL,
    DerivedBatch, Device, DeviceState, EPISODES_SQL, EcgRecord, EpisodeRecord,
    GATEWAY_ALLOW_LISTS_SQL, Gateway, GatewayAllowList, GatewayStats, IngestBatch, IngestMessage,
    Loan, LoanRecord, OBSERVATIONS_NEWEST_FIRST_SQL, OBSERVATIONS_OLDEST_FIRST_SQL,
    ObservationRecord, Patient, QUALITY_RUNS_SQL, QualityRunRecord, RetentionReport,
    SEQUENCES_ABOVE_WATERMARKS_SQL, Series, Storage, StorageError, StoredWatermark, TrendPoint,
    UPSERT_CHECKPOINT_SQL, UPSERT_EPISODE_SQL, UPSERT_QUALITY_RUN_SQL, WATERMARKS_SQL,
    assemble_allow_lists, assemble_gateway_stats, assemble_watermarks, checkpoint_from_row,
    ecg_codec, episode_from_columns, quality_label, quality_run_from_columns,
};

const MEDICAL_TABLES: [(&str, &str); 6] = [
    ("observations", "measured_at"),
    ("ecg_chunks", "first_sample_at"),
    ("beats", "at"),
    ("heart_rate", "at"),
    ("rhythm_episodes", "started_at"),
    ("ecg_quality_runs", "started_at"),
];
const OTHER_TABLES: [(&str, &str); 3] = [
    ("device_status", "at"),
    ("dead_letters", "received_at"),
    ("ingest_dedup", "received_at"),
];

/// The SQLite backend; cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn us(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_us(micros: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StorageError::Corrupt {
        what: "time",
        detail: micros.to_string(),
    })
}

fn opt_from_us(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StorageError> {
    micros.map(from_us).transpose()
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_json_list(text: &str) -> Result<Vec<String>, StorageError> {
    serde_json::from_str(text).map_err(|e| StorageError::Corrupt {
        what: "list",
        detail: e.to_string(),
    })
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::with_options(options).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` is a different database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StorageError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for modules that own their own tables (alerts, on-call, HTTP).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl Storage for SqliteStore {
    async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<CommitOutcome, StorageError> {
        let mut tx = self.pool.begin().await?;
        let mut fresh = Vec::with_capacity(batch.messages.len());
        for m in &batch.messages {
            let is_fresh =
                match (m.key, m.known_duplicate) {
                    (_, true) => false,
                    (None, false) => true,
                    (Some((epoch, seq)), false) => sqlx::query(
                        "INSERT OR IGNORE INTO ingest_dedup (gateway_id, epoch, seq, received_at)
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(m.gateway.as_str())
                    .bind(epoch.to_string())
                    .bind(to_i64(seq, "sequence")?)
                    .bind(us(m.received_at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1,
                };
            if is_fresh {
                write_content(&mut tx, m).await?;
            }
            fresh.push(is_fresh);
        }
        for w in &batch.watermarks {
            sqlx::query(
                "INSERT INTO ingest_watermarks (gateway_id, epoch, stored_through, updated_at)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (gateway_id, epoch) DO UPDATE SET
                   stored_through = max(stored_through, excluded.stored_through),
                   updated_at = excluded.updated_at",
            )
            .bind(w.gateway.as_str())
            .bind(w.epoch.to_string())
            .bind(to_i64(w.stored_through, "sequence")?)
            .bind(us(Utc::now()))
            .execute(&mut *tx)
            .await?;
        }
        for (gateway, c) in count_batch(batch, &fresh) {
            let seen = c.last_seen.unwrap_or_else(Utc::now);
            let minute = us(seen) - us(seen).rem_euclid(60_000_000);
            sqlx::query(
                "INSERT INTO ingest_counts (gateway_id, minute, received, stored, duplicates, dead_lettered)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (gateway_id, minute) DO UPDATE SET
                   received = received + excluded.received, stored = stored + excluded.stored,
                   duplicates = duplicates + excluded.duplicates,
                   dead_lettered = dead_lettered + excluded.dead_lettered",
            )
            .bind(&gateway)
            .bind(minute)
            .bind(c.received)
            .bind(c.stored)
            .bind(c.duplicates)
            .bind(c.dead_lettered)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO gateway_state (gateway_id, last_seen, clock_offset_ms) VALUES (?, ?, ?)
                 ON CONFLICT (gateway_id) DO UPDATE SET
                   last_seen = max(last_seen, excluded.last_seen),
                   clock_offset_ms = coalesce(excluded.clock_offset_ms, clock_offset_ms)",
            )
            .bind(&gateway)
            .bind(us(seen))
            .bind(c.clock_offset_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(CommitOutcome { fresh })
    }

    async fn load_watermarks(&self) -> Result<Vec<StoredWatermark>, StorageError> {
        let watermarks = sqlx::query_as(WATERMARKS_SQL).fetch_all(&self.pool).await?;
        let sequences_above = sqlx::query_as(SEQUENCES_ABOVE_WATERMARKS_SQL)
            .fetch_all(&self.pool)
            .await?;
        assemble_watermarks(watermarks, sequences_above)
    }

    async fn loans(&self) -> Result<Vec<LoanRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT l.device_id, l.patient_id, l.device_user, l.lent_from, l.lent_until,
                    p.consent_monitoring_at, p.consent_monitoring_withdrawn_at
             FROM loans l JOIN patients p ON p.id = l.patient_id
             ORDER BY l.device_id, l.lent_from",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let user: Option<i64> = row.try_get(2)?;
                Ok(LoanRecord {
                    device_id: row.try_get(0)?,
                    patient_id: row.try_get(1)?,
                    device_user: user.and_then(|u| u8::try_from(u).ok()),
                    lent_from: from_us(row.try_get(3)?)?,
                    lent_until: opt_from_us(row.try_get(4)?)?,
                    consent_monitoring_at: opt_from_us(row.try_get(5)?)?,
                    consent_monitoring_withdrawn_at: opt_from_us(row.try_get(6)?)?,
                })
            })
            .collect()
    }

    async fn gateway_allow_lists(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<GatewayAllowList>, StorageError> {
        let rows = sqlx::query_as(GATEWAY_ALLOW_LISTS_SQL)
            .bind(us(at))
            .fetch_all(&self.pool)
            .await?;
        Ok(assemble_allow_lists(rows))
    }

    async fn store_derived(&self, batch: &DerivedBatch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for b in &batch.beats {
            sqlx::query(
                "INSERT INTO beats (patient_id, at, stream_id, sample_index, rr_ms, late)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&b.patient_id)
            .bind(us(b.at))
            .bind(b.stream_id as i64)
            .bind(to_i64(b.sample_index, "sample index")?)
            .bind(b.rr_ms)
            .bind(b.late)
            .execute(&mut *tx)
            .await?;
        }
        for h in &batch.heart_rate {
            sqlx::query("INSERT INTO heart_rate (patient_id, at, bpm) VALUES (?, ?, ?)")
                .bind(&h.patient_id)
                .bind(us(h.at))
                .bind(h.bpm)
                .execute(&mut *tx)
                .await?;
        }
        for g in &batch.gaps {
            sqlx::query(
                "INSERT INTO ecg_gaps (patient_id, stream_id, from_index, to_index, detected_at)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&g.patient_id)
            .bind(g.stream_id as i64)
            .bind(to_i64(g.from_index, "sample index")?)
            .bind(to_i64(g.to_index, "sample index")?)
            .bind(us(g.detected_at))
            .execute(&mut *tx)
            .await?;
        }
        for e in &batch.episodes {
            sqlx::query(UPSERT_EPISODE_SQL)
                .bind(&e.patient_id)
                .bind(e.stream_id as i64)
                .bind(e.kind.label())
                .bind(to_i64(e.start_index, "sample index")?)
                .bind(us(e.started_at))
                .bind(e.ended_at.map(us))
                .bind(e.signal_usable)
                .bind(e.max_rr_ms)
                .bind(e.extreme_per_min)
                .execute(&mut *tx)
                .await?;
        }
        for q in &batch.quality {
            sqlx::query(UPSERT_QUALITY_RUN_SQL)
                .bind(&q.patient_id)
                .bind(q.stream_id as i64)
                .bind(quality_label(q.quality))
                .bind(us(q.started_at))
                .bind(us(q.ended_at))
                .execute(&mut *tx)
                .await?;
        }
        for cp in &batch.checkpoints {
            let state = cp.state.as_ref();
            sqlx::query(UPSERT_CHECKPOINT_SQL)
                .bind(&cp.patient_id)
                .bind(cp.stream_id as i64)
                .bind(to_i64(cp.next_index, "sample index")?)
                .bind(
                    cp.last_beat_index
                        .map(|i| to_i64(i, "sample index"))
                        .transpose()?,
                )
                .bind(us(cp.updated_at))
                .bind(state.map(|s| to_i64(s.index, "sample index")).transpose()?)
                .bind(state.map(|s| us(s.at)))
                .bind(state.map(|s| s.bytes.as_slice()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StorageError> {
        let rows = sqlx::query(CHECKPOINTS_SQL).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                checkpoint_from_row(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    from_us(row.try_get(4)?)?,
                    (
                        row.try_get(5)?,
                        opt_from_us(row.try_get(6)?)?,
                        row.try_get(7)?,
                    ),
                )
            })
            .collect()
    }

    async fn rhythm_episodes(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EpisodeRecord>, StorageError> {
        let rows = self
            .rows_in_range(EPISODES_SQL, patient, (from, to))
            .await?;
        rows.iter()
            .map(|row| {
                episode_from_columns((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    from_us(row.try_get(4)?)?,
                    opt_from_us(row.try_get(5)?)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    row.try_get(8)?,
                ))
            })
            .collect()
    }

    async fn quality_runs(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<QualityRunRecord>, StorageError> {
        let rows = self
            .rows_in_range(QUALITY_RUNS_SQL, patient, (from, to))
            .await?;
        rows.iter()
            .map(|row| {
                quality_run_from_columns((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    from_us(row.try_get(3)?)?,
                    from_us(row.try_get(4)?)?,
                ))
            })
            .collect()
    }

    async fn observations(
        &self,
        patient: &str,
        vital: VitalSign,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ObservationRecord>, StorageError> {
        self.select_observations(
            OBSERVATIONS_OLDEST_FIRST_SQL,
            patient,
            vital,
            (from, to),
            u32::MAX,
        )
        .await
    }

    async fn recent_observations(
        &self,
        patient: &str,
        vital: VitalSign,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ObservationRecord>, StorageError> {
        self.select_observations(
            OBSERVATIONS_NEWEST_FIRST_SQL,
            patient,
            vital,
            (from, to),
            limit,
        )
        .await
    }

    async fn device_states(
        &self,
        patient: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<DeviceState>, StorageError> {
        let rows = sqlx::query(DEVICE_STATES_SQL)
            .bind(patient)
            .bind(us(at))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let battery: Option<i64> = row.try_get(2)?;
                Ok(DeviceState {
                    device_id: row.try_get(0)?,
                    model: row.try_get(1)?,
                    battery_percent: battery.and_then(|b| u8::try_from(b).ok()),
                    status_at: opt_from_us(row.try_get(3)?)?,
                    gateway_id: row.try_get(4)?,
                    gateway_online: row.try_get(5)?,
                    gateway_last_seen: opt_from_us(row.try_get(6)?)?,
                })
            })
            .collect()
    }

    async fn ecg_chunks(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EcgRecord>, StorageError> {
        let rows = self
            .rows_in_range(
            "SELECT patient_id, device_id, lead, stream_id, first_sample_index, first_sample_at,
                    sample_rate_hz, uv_per_count, lead_off, samples, received_at
             FROM ecg_chunks
             WHERE patient_id = ? AND first_sample_at >= ? AND first_sample_at < ?
             ORDER BY first_sample_at, first_sample_index",
                patient,
                (from, to),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(3)?;
                let packed: Vec<u8> = row.try_get(9)?;
                Ok(EcgRecord {
                    patient_id: row.try_get(0)?,
                    device_id: row.try_get(1)?,
                    lead: row.try_get(2)?,
                    stream_id: stream as u64,
                    first_sample_index: to_u64(row.try_get(4)?, "sample index")?,
                    first_sample_at: from_us(row.try_get(5)?)?,
                    sample_rate_hz: row.try_get(6)?,
                    uv_per_count: row.try_get(7)?,
                    lead_off: row.try_get(8)?,
                    samples: ecg_codec::unpack(&packed).map_err(|e| StorageError::Corrupt {
                        what: "ECG samples",
                        detail: e.to_string(),
                    })?,
                    received_at: from_us(row.try_get(10)?)?,
                })
            })
            .collect()
    }

    async fn beats(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BeatRecord>, StorageError> {
        let rows = self
            .rows_in_range(
                "SELECT patient_id, at, stream_id, sample_index, rr_ms, late FROM beats
             WHERE patient_id = ? AND at >= ? AND at < ? ORDER BY at",
                patient,
                (from, to),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(2)?;
                Ok(BeatRecord {
                    patient_id: row.try_get(0)?,
                    at: from_us(row.try_get(1)?)?,
                    stream_id: stream as u64,
                    sample_index: to_u64(row.try_get(3)?, "sample index")?,
                    rr_ms: row.try_get(4)?,
                    late: row.try_get(5)?,
                })
            })
            .collect()
    }

    async fn trend(
        &self,
        patient: &str,
        series: Series,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> Result<Vec<TrendPoint>, StorageError> {
        let width_us = bucket_width_s(from, to, max_points) * 1_000_000;
        let (sql, code) = match series {
            Series::Vital(vital) => (
                "SELECT ?2 + ((measured_at - ?2) / ?1) * ?1 AS b, min(value), avg(value),
                        max(value), count(*)
                 FROM observations
                 WHERE patient_id = ?4 AND loinc = ?5 AND measured_at >= ?2 AND measured_at < ?3
                 GROUP BY b ORDER BY b",
                vital.loinc(),
            ),
            Series::HeartRate => (
                "SELECT ?2 + ((at - ?2) / ?1) * ?1 AS b, min(bpm), avg(bpm), max(bpm), count(*)
                 FROM heart_rate
                 WHERE patient_id = ?4 AND ?5 IS NOT NULL AND at >= ?2 AND at < ?3
                 GROUP BY b ORDER BY b",
                "",
            ),
        };
        let rows = sqlx::query(sql)
            .bind(width_us)
            .bind(us(from))
            .bind(us(to))
            .bind(patient)
            .bind(code)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TrendPoint {
                    at: from_us(row.try_get(0)?)?,
                    min: row.try_get(1)?,
                    mean: row.try_get(2)?,
                    max: row.try_get(3)?,
                    count: row.try_get(4)?,
                })
            })
            .collect()
    }

    async fn gateway_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<GatewayStats>, StorageError> {
        let since_minute = since.map(|s| us(s) - us(s).rem_euclid(60_000_000));
        let since = since.map(us);
        let counts = sqlx::query_as(
            "SELECT gateway_id, sum(received), sum(stored), sum(duplicates), sum(dead_lettered)
             FROM ingest_counts WHERE ?1 IS NULL OR minute >= ?1 GROUP BY gateway_id",
        )
        .bind(since_minute)
        .fetch_all(&self.pool)
        .await?;
        let dead_letters = sqlx::query_as(
            "SELECT gateway_id, reason, count(*) FROM dead_letters
             WHERE ?1 IS NULL OR received_at >= ?1 GROUP BY gateway_id, reason",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        // Times are stored as microseconds here: convert before merging.
        let states = sqlx::query_as::<_, (String, i64, Option<i64>)>(
            "SELECT gateway_id, last_seen, clock_offset_ms FROM gateway_state",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(gateway_id, last_seen_us, offset)| {
            Ok((gateway_id, Some(from_us(last_seen_us)?), offset))
        })
        .collect::<Result<_, StorageError>>()?;
        Ok(assemble_gateway_stats(counts, dead_letters, states))
    }

    async fn apply_retention(
        &self,
        medical_before: DateTime<Utc>,
        other_before: DateTime<Utc>,
    ) -> Result<RetentionReport, StorageError> {
        let mut report = RetentionReport::default();
        let tables = MEDICAL_TABLES
            .iter()
            .map(|t| (*t, medical_before))
            .chain(OTHER_TABLES.iter().map(|t| (*t, other_before)));
        for ((table, column), before) in tables {
            // Table and column names come from the constants above, never from input.
            let sql = format!("DELETE FROM {table} WHERE {column} < ?");
            let done = sqlx::query(&sql)
                .bind(us(before))
                .execute(&self.pool)
                .await?;
            report
                .dropped
                .push((table.to_owned(), done.rows_affected()));
        }
        Ok(report)
    }

    async fn upsert_clinic(&self, c: &Clinic) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO clinics (id, name, director, emergency_phone, opening_hours, area)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, director = excluded.director,
               emergency_phone = excluded.emergency_phone, opening_hours = excluded.opening_hours,
               area = excluded.area",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.director)
        .bind(&c.emergency_phone)
        .bind(&c.opening_hours)
        .bind(&c.area)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upsert_patient(&self, p: &Patient) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO patients (id, name, name_furigana, date_of_birth, sex, address, map_url,
               key_person_name, key_person_phone, main_diseases, medications, allergies,
               advance_directive, dnar, home_oxygen_l_per_min, news2_spo2_scale, reading_schedule,
               primary_clinic_id, consent_monitoring_at, consent_monitoring_withdrawn_at,
               consent_night_sharing_at, consent_night_sharing_withdrawn_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21, ?22)
             ON CONFLICT (id) DO UPDATE SET name = ?2, name_furigana = ?3, date_of_birth = ?4,
               sex = ?5, address = ?6, map_url = ?7, key_person_name = ?8, key_person_phone = ?9,
               main_diseases = ?10, medications = ?11, allergies = ?12, advance_directive = ?13,
               dnar = ?14, home_oxygen_l_per_min = ?15, news2_spo2_scale = ?16,
               reading_schedule = ?17, primary_clinic_id = ?18, consent_monitoring_at = ?19,
               consent_monitoring_withdrawn_at = ?20, consent_night_sharing_at = ?21,
               consent_night_sharing_withdrawn_at = ?22",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.name_furigana)
        .bind(p.date_of_birth.to_string())
        .bind(&p.sex)
        .bind(&p.address)
        .bind(&p.map_url)
        .bind(&p.key_person_name)
        .bind(&p.key_person_phone)
        .bind(json_list(&p.main_diseases))
        .bind(json_list(&p.medications))
        .bind(json_list(&p.allergies))
        .bind(&p.advance_directive)
        .bind(p.dnar)
        .bind(p.home_oxygen_l_per_min)
        .bind(p.news2_spo2_scale)
        .bind(&p.reading_schedule)
        .bind(&p.primary_clinic_id)
        .bind(p.consent_monitoring_at.map(us))
        .bind(p.consent_monitoring_withdrawn_at.map(us))
        .bind(p.consent_night_sharing_at.map(us))
        .bind(p.consent_night_sharing_withdrawn_at.map(us))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upsert_device(&self, d: &Device) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO devices (id, model, serial, ble_address, area) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET model = excluded.model, serial = excluded.serial,
               ble_address = excluded.ble_address, area = excluded.area",
        )
        .bind(&d.id)
        .bind(&d.model)
        .bind(&d.serial)
        .bind(&d.ble_address)
        .bind(&d.area)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upsert_gateway(&self, g: &Gateway) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO gateways (id, patient_id, note) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, note = excluded.note",
        )
        .bind(&g.id)
        .bind(&g.patient_id)
        .bind(&g.note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn add_loan(&self, l: &Loan) -> Result<i64, StorageError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO loans (device_id, patient_id, device_user, lent_from, lent_until)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&l.device_id)
        .bind(&l.patient_id)
        .bind(l.device_user.map(i64::from))
        .bind(us(l.lent_from))
        .bind(l.lent_until.map(us))
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn end_loan(&self, loan_id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = sqlx::query("UPDATE loans SET lent_until = ? WHERE id = ?")
            .bind(us(at))
            .bind(loan_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                what: "loan",
                id: loan_id.to_string(),
            });
        }
        Ok(())
    }

    async fn patients(&self) -> Result<Vec<Patient>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, name, name_furigana, date_of_birth, sex, address, map_url, key_person_name,
               key_person_phone, main_diseases, medications, allergies, advance_directive, dnar,
               home_oxygen_l_per_min, news2_spo2_scale, reading_schedule, primary_clinic_id,
               consent_monitoring_at, consent_monitoring_withdrawn_at, consent_night_sharing_at,
               consent_night_sharing_withdrawn_at
             FROM patients ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let dob: String = row.try_get(3)?;
                Ok(Patient {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    name_furigana: row.try_get(2)?,
                    date_of_birth: NaiveDate::from_str(&dob).map_err(|e| {
                        StorageError::Corrupt {
                            what: "date of birth",
                            detail: e.to_string(),
                        }
                    })?,
                    sex: row.try_get(4)?,
                    address: row.try_get(5)?,
                    map_url: row.try_get(6)?,
                    key_person_name: row.try_get(7)?,
                    key_person_phone: row.try_get(8)?,
                    main_diseases: parse_json_list(&row.try_get::<String, _>(9)?)?,
                    medications: parse_json_list(&row.try_get::<String, _>(10)?)?,
                    allergies: parse_json_list(&row.try_get::<String, _>(11)?)?,
                    advance_directive: row.try_get(12)?,
                    dnar: row.try_get(13)?,
                    home_oxygen_l_per_min: row.try_get(14)?,
                    news2_spo2_scale: row.try_get(15)?,
                    reading_schedule: row.try_get(16)?,
                    primary_clinic_id: row.try_get(17)?,
                    consent_monitoring_at: opt_from_us(row.try_get(18)?)?,
                    consent_monitoring_withdrawn_at: opt_from_us(row.try_get(19)?)?,
                    consent_night_sharing_at: opt_from_us(row.try_get(20)?)?,
                    consent_night_sharing_withdrawn_at: opt_from_us(row.try_get(21)?)?,
                })
            })
            .collect()
    }
}

fn observation_from_row(row: &SqliteRow) -> Result<ObservationRecord, StorageError> {
    let code: String = row.try_get(2)?;
    let device_time: Option<String> = row.try_get(5)?;
    Ok(ObservationRecord {
        patient_id: row.try_get(0)?,
        device_id: row.try_get(1)?,
        vital: parse_vital(&code)?,
        value: row.try_get(3)?,
        measured_at: from_us(row.try_get(4)?)?,
        device_time: device_time
            .map(|t| NaiveDateTime::from_str(&t))
            .transpose()
            .map_err(|e| StorageError::Corrupt {
                what: "device time",
                detail: e.to_string(),
            })?,
        received_at: from_us(row.try_get(6)?)?,
        time_flags: parse_json_list(&row.try_get::<String, _>(7)?)?,
    })
}

async fn write_content(
    tx: &mut Transaction<'_, Sqlite>,
    m: &IngestMessage,
) -> Result<(), StorageError> {
    let (epoch, seq) = match m.key {
        Some((epoch, seq)) => (Some(epoch.to_string()), Some(to_i64(seq, "sequence")?)),
        None => (None, None),
    };
    match &m.content {
        Content::Observations(records) => {
            for r in records {
                sqlx::query(
                    "INSERT INTO observations (patient_id, measured_at, loinc, unit, value,
                       device_id, device_time, received_at, time_flags, gateway_id, epoch, seq)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&r.patient_id)
                .bind(us(r.measured_at))
                .bind(r.vital.loinc())
                .bind(r.vital.unit().code())
                .bind(r.value)
                .bind(&r.device_id)
                .bind(
                    r.device_time
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
                )
                .bind(us(r.received_at))
                .bind(json_list(&r.time_flags))
                .bind(m.gateway.as_str())
                .bind(epoch.clone().unwrap_or_default())
                .bind(seq.unwrap_or(-1))
                .execute(&mut **tx)
                .await?;
            }
        }
        Content::Ecg(r) => {
            sqlx::query(
                "INSERT INTO ecg_chunks (patient_id, first_sample_at, device_id, lead, stream_id,
                   first_sample_index, sample_count, sample_rate_hz, uv_per_count, lead_off,
                   samples, received_at, gateway_id, epoch, seq)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.patient_id)
            .bind(us(r.first_sample_at))
            .bind(&r.device_id)
            .bind(&r.lead)
            .bind(r.stream_id as i64)
            .bind(to_i64(r.first_sample_index, "sample index")?)
            .bind(i64::try_from(r.samples.len()).unwrap_or(i64::MAX))
            .bind(r.sample_rate_hz)
            .bind(r.uv_per_count)
            .bind(r.lead_off)
            .bind(ecg_codec::pack(&r.samples))
            .bind(us(r.received_at))
            .bind(m.gateway.as_str())
            .bind(epoch.unwrap_or_default())
            .bind(seq.unwrap_or(-1))
            .execute(&mut **tx)
            .await?;
        }
        Content::Status(s) => {
            sqlx::query(
                "INSERT INTO device_status (device_id, at, gateway_id, connected, battery_percent,
                   lead_off, signal_quality, firmware)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.device_id)
            .bind(us(s.at))
            .bind(m.gateway.as_str())
            .bind(s.connected)
            .bind(s.battery_percent.map(i64::from))
            .bind(s.lead_off)
            .bind(s.signal_quality.map(i64::from))
            .bind(&s.firmware)
            .execute(&mut **tx)
            .await?;
        }
        Content::Presence(p) => {
            sqlx::query(
                "INSERT INTO gateway_state (gateway_id, last_seen, online, software_version, outbox_depth)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (gateway_id) DO UPDATE SET online = excluded.online,
                   software_version = excluded.software_version, outbox_depth = excluded.outbox_depth",
            )
            .bind(m.gateway.as_str())
            .bind(us(m.received_at))
            .bind(p.online)
            .bind(&p.software_version)
            .bind(p.outbox_depth.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
            .execute(&mut **tx)
            .await?;
        }
        Content::DeadLetter(d) => {
            sqlx::query(
                "INSERT INTO dead_letters (received_at, gateway_id, topic, epoch, seq, reason,
                   detail, payload)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(us(m.received_at))
            .bind(m.gateway.as_str())
            .bind(&d.topic)
            .bind(epoch)
            .bind(seq)
            .bind(d.reason)
            .bind(&d.detail)
            .bind(&d.payload)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Runs a query whose parameters are a patient and a time range (`$1`, `$2..$3`).
    async fn rows_in_range(
        &self,
        sql: &str,
        patient: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        sqlx::query(sql)
            .bind(patient)
            .bind(us(from))
            .bind(us(to))
            .fetch_all(&self.pool)
            .await
    }

    /// Runs one of the shared observation queries (`$1` patient, `$2` LOINC, `$3..$4` range,
    /// `$5` limit).
    async fn select_observations(
        &self,
        sql: &str,
        patient: &str,
        vital: VitalSign,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        limit: u32,
    ) -> Result<Vec<ObservationRecord>, StorageError> {
        let rows = sqlx::query(sql)
            .bind(patient)
            .bind(vital.loinc())
            .bind(us(from))
            .bind(us(to))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(observation_from_row).collect()
    }
}
