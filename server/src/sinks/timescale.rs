//! PostgreSQL + TimescaleDB storage backend.
//!
//! Batches are written with `INSERT … SELECT FROM UNNEST(…)`: one statement per table per
//! transaction whatever the batch size. Times are `timestamptz`; ids are text; `u64` stream ids
//! are stored bit-cast into `bigint` (they are opaque random ids), sequences and sample indices are
//! checked to fit before they get here ([`crate::transforms::decode`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use mimamori_wire::{Epoch, GatewayId, VitalSign};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use crate::storage::{
    BeatRecord, CHECKPOINTS_SQL, Checkpoint, Clinic, CommitOutcome, Content, DEVICE_STATES_SQL,
    DerivedBatch, Device, DeviceState, EPISODES_SQL, EcgRecord, EpisodeRecord,
    GATEWAY_ALLOW_LISTS_SQL, Gateway, GatewayAllowList, GatewayStats, IngestBatch, Loan,
    LoanRecord, OBSERVATIONS_NEWEST_FIRST_SQL, OBSERVATIONS_OLDEST_FIRST_SQL, ObservationRecord,
    Patient, QUALITY_RUNS_SQL, QualityRunRecord, RetentionReport, SEQUENCES_ABOVE_WATERMARKS_SQL,
    Series, Storage, StorageError, StoredWatermark, TrendPoint, UPSERT_CHECKPOINT_SQL,
    UPSERT_EPISODE_SQL, UPSERT_QUALITY_RUN_SQL, WATERMARKS_SQL, assemble_allow_lists,
    assemble_gateway_stats, assemble_watermarks, checkpoint_from_row, ecg_codec,
    episode_from_columns, quality_label, quality_run_from_columns,
};

/// Tables that are part of the medical record (5-year floor) and their time column.
const MEDICAL_HYPERTABLES: [&str; 6] = [
    "observations",
    "ecg_chunks",
    "beats",
    "heart_rate",
    "rhythm_episodes",
    "ecg_quality_runs",
];
/// Hypertables of other records (3-year floor).
const OTHER_HYPERTABLES: [&str; 2] = ["device_status", "dead_letters"];

/// The TimescaleDB backend; cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct TimescaleStore {
    pool: PgPool,
}

impl TimescaleStore {
    /// Connects a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for modules that own their own tables (alerts, on-call, HTTP).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|_| StorageError::Corrupt {
        what,
        detail: format!("{value} does not fit a bigint"),
    })
}

pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::Corrupt {
        what,
        detail: format!("{value} is negative"),
    })
}

pub(crate) fn parse_epoch(text: &str) -> Result<Epoch, StorageError> {
    Epoch::parse(text).map_err(|e| StorageError::Corrupt {
        what: "epoch",
        detail: e.to_string(),
    })
}

pub(crate) fn parse_gateway(text: &str) -> Result<GatewayId, StorageError> {
    GatewayId::new(text).map_err(|e| StorageError::Corrupt {
        what: "gateway id",
        detail: e.to_string(),
    })
}

pub(crate) fn parse_vital(code: &str) -> Result<VitalSign, StorageError> {
    VitalSign::from_loinc(code).ok_or_else(|| StorageError::Corrupt {
        what: "LOINC code",
        detail: code.to_owned(),
    })
}

/// Which messages of a batch to write: keyed ones that are new to the dedup table (first
/// occurrence within the batch only), and every unkeyed one (presence, unreadable payloads).
pub(crate) fn fresh_flags(
    batch: &IngestBatch,
    mut newly_inserted: impl FnMut(&GatewayId, &Epoch, u64) -> bool,
) -> Vec<bool> {
    let mut seen = HashSet::new();
    batch
        .messages
        .iter()
        .map(|m| match (&m.key, m.known_duplicate) {
            (_, true) => false,
            (None, false) => true,
            (Some((epoch, seq)), false) => {
                seen.insert((m.gateway.clone(), *epoch, *seq))
                    && newly_inserted(&m.gateway, epoch, *seq)
            }
        })
        .collect()
}

/// Per-gateway counters of one batch.
#[derive(Debug, Default)]
pub(crate) struct BatchCounts {
    pub received: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub dead_lettered: i64,
    pub last_seen: Option<DateTime<Utc>>,
    pub clock_offset_ms: Option<i64>,
}

pub(crate) fn count_batch(batch: &IngestBatch, fresh: &[bool]) -> BTreeMap<String, BatchCounts> {
    let mut counts: BTreeMap<String, BatchCounts> = BTreeMap::new();
    for (message, &fresh) in batch.messages.iter().zip(fresh) {
        let c = counts.entry(message.gateway.to_string()).or_default();
        c.received += 1;
        match (&message.content, fresh) {
            (_, false) => c.duplicates += 1,
            (Content::DeadLetter(_), true) => c.dead_lettered += 1,
            (_, true) => c.stored += 1,
        }
        if c.last_seen.is_none_or(|seen| seen < message.received_at) {
            c.last_seen = Some(message.received_at);
            c.clock_offset_ms = message
                .sent_at
                .map(|sent| (message.received_at - sent).num_milliseconds());
        }
    }
    counts
}

impl Storage for TimescaleStore {
    async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<CommitOutcome, StorageError> {
        let mut tx = self.pool.begin().await?;

        // 1. Idempotency keys: what comes back was not there before.
        let (mut gws, mut epochs, mut seqs, mut times) = (vec![], vec![], vec![], vec![]);
        for m in batch.messages.iter().filter(|m| !m.known_duplicate) {
            if let Some((epoch, seq)) = m.key {
                gws.push(m.gateway.to_string());
                epochs.push(epoch.to_string());
                seqs.push(to_i64(seq, "sequence")?);
                times.push(m.received_at);
            }
        }
        let mut inserted = HashSet::new();
        if !gws.is_empty() {
            let rows = sqlx::query(
                "INSERT INTO ingest_dedup (gateway_id, epoch, seq, received_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::timestamptz[])
                 ON CONFLICT DO NOTHING
                 RETURNING gateway_id, epoch, seq",
            )
            .bind(&gws)
            .bind(&epochs)
            .bind(&seqs)
            .bind(&times)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let gw: String = row.try_get(0)?;
                let epoch: String = row.try_get(1)?;
                let seq: i64 = row.try_get(2)?;
                inserted.insert((gw, epoch, seq));
            }
        }
        let fresh = fresh_flags(batch, |gw, epoch, seq| {
            i64::try_from(seq)
                .is_ok_and(|seq| inserted.contains(&(gw.to_string(), epoch.to_string(), seq)))
        });

        // 2. Contents of fresh messages.
        write_contents(&mut tx, batch, &fresh).await?;

        // 3. Ack watermarks, in the same transaction as the keys they summarise.
        for w in &batch.watermarks {
            sqlx::query(
                "INSERT INTO ingest_watermarks (gateway_id, epoch, stored_through, updated_at)
                 VALUES ($1, $2, $3, now())
                 ON CONFLICT (gateway_id, epoch) DO UPDATE
                 SET stored_through = GREATEST(ingest_watermarks.stored_through, EXCLUDED.stored_through),
                     updated_at = now()",
            )
            .bind(w.gateway.as_str())
            .bind(w.epoch.to_string())
            .bind(to_i64(w.stored_through, "sequence")?)
            .execute(&mut *tx)
            .await?;
        }

        // 4. Counters and last-seen per gateway.
        for (gateway, c) in count_batch(batch, &fresh) {
            sqlx::query(
                "INSERT INTO ingest_counts (gateway_id, minute, received, stored, duplicates, dead_lettered)
                 VALUES ($1, date_trunc('minute', $2::timestamptz), $3, $4, $5, $6)
                 ON CONFLICT (gateway_id, minute) DO UPDATE SET
                   received = ingest_counts.received + EXCLUDED.received,
                   stored = ingest_counts.stored + EXCLUDED.stored,
                   duplicates = ingest_counts.duplicates + EXCLUDED.duplicates,
                   dead_lettered = ingest_counts.dead_lettered + EXCLUDED.dead_lettered",
            )
            .bind(&gateway)
            .bind(c.last_seen.unwrap_or_else(Utc::now))
            .bind(c.received)
            .bind(c.stored)
            .bind(c.duplicates)
            .bind(c.dead_lettered)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO gateway_state (gateway_id, last_seen, clock_offset_ms)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (gateway_id) DO UPDATE SET
                   last_seen = GREATEST(gateway_state.last_seen, EXCLUDED.last_seen),
                   clock_offset_ms = COALESCE(EXCLUDED.clock_offset_ms, gateway_state.clock_offset_ms)",
            )
            .bind(&gateway)
            .bind(c.last_seen.unwrap_or_else(Utc::now))
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
                let user: Option<i16> = row.try_get(2)?;
                Ok(LoanRecord {
                    device_id: row.try_get(0)?,
                    patient_id: row.try_get(1)?,
                    device_user: user.and_then(|u| u8::try_from(u).ok()),
                    lent_from: row.try_get(3)?,
                    lent_until: row.try_get(4)?,
                    consent_monitoring_at: row.try_get(5)?,
                    consent_monitoring_withdrawn_at: row.try_get(6)?,
                })
            })
            .collect()
    }

    async fn gateway_allow_lists(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<GatewayAllowList>, StorageError> {
        let rows = sqlx::query_as(GATEWAY_ALLOW_LISTS_SQL)
            .bind(at)
            .fetch_all(&self.pool)
            .await?;
        Ok(assemble_allow_lists(rows))
    }

    async fn store_derived(&self, batch: &DerivedBatch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if !batch.beats.is_empty() {
            let b = &batch.beats;
            sqlx::query(
                "INSERT INTO beats (patient_id, at, stream_id, sample_index, rr_ms, late)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[], $5::float8[], $6::bool[])",
            )
            .bind(b.iter().map(|x| x.patient_id.clone()).collect::<Vec<_>>())
            .bind(b.iter().map(|x| x.at).collect::<Vec<_>>())
            .bind(b.iter().map(|x| x.stream_id as i64).collect::<Vec<_>>())
            .bind(
                b.iter()
                    .map(|x| to_i64(x.sample_index, "sample index"))
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .bind(b.iter().map(|x| x.rr_ms).collect::<Vec<_>>())
            .bind(b.iter().map(|x| x.late).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !batch.heart_rate.is_empty() {
            let h = &batch.heart_rate;
            sqlx::query(
                "INSERT INTO heart_rate (patient_id, at, bpm)
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[])",
            )
            .bind(h.iter().map(|x| x.patient_id.clone()).collect::<Vec<_>>())
            .bind(h.iter().map(|x| x.at).collect::<Vec<_>>())
            .bind(h.iter().map(|x| x.bpm).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        for gap in &batch.gaps {
            sqlx::query(
                "INSERT INTO ecg_gaps (patient_id, stream_id, from_index, to_index, detected_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&gap.patient_id)
            .bind(gap.stream_id as i64)
            .bind(to_i64(gap.from_index, "sample index")?)
            .bind(to_i64(gap.to_index, "sample index")?)
            .bind(gap.detected_at)
            .execute(&mut *tx)
            .await?;
        }
        for e in &batch.episodes {
            sqlx::query(UPSERT_EPISODE_SQL)
                .bind(&e.patient_id)
                .bind(e.stream_id as i64)
                .bind(e.kind.label())
                .bind(to_i64(e.start_index, "sample index")?)
                .bind(e.started_at)
                .bind(e.ended_at)
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
                .bind(q.started_at)
                .bind(q.ended_at)
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
                .bind(cp.updated_at)
                .bind(state.map(|s| to_i64(s.index, "sample index")).transpose()?)
                .bind(state.map(|s| s.at))
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
                    row.try_get(4)?,
                    (row.try_get(5)?, row.try_get(6)?, row.try_get(7)?),
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
                    row.try_get(4)?,
                    row.try_get(5)?,
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
                    row.try_get(3)?,
                    row.try_get(4)?,
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
            .bind(at)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let battery: Option<i16> = row.try_get(2)?;
                Ok(DeviceState {
                    device_id: row.try_get(0)?,
                    model: row.try_get(1)?,
                    battery_percent: battery.and_then(|b| u8::try_from(b).ok()),
                    status_at: row.try_get(3)?,
                    gateway_id: row.try_get(4)?,
                    gateway_online: row.try_get(5)?,
                    gateway_last_seen: row.try_get(6)?,
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
             WHERE patient_id = $1 AND first_sample_at >= $2 AND first_sample_at < $3
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
                    first_sample_at: row.try_get(5)?,
                    sample_rate_hz: row.try_get(6)?,
                    uv_per_count: row.try_get(7)?,
                    lead_off: row.try_get(8)?,
                    samples: ecg_codec::unpack(&packed).map_err(|e| StorageError::Corrupt {
                        what: "ECG samples",
                        detail: e.to_string(),
                    })?,
                    received_at: row.try_get(10)?,
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
             WHERE patient_id = $1 AND at >= $2 AND at < $3 ORDER BY at",
                patient,
                (from, to),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(2)?;
                Ok(BeatRecord {
                    patient_id: row.try_get(0)?,
                    at: row.try_get(1)?,
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
        let width_s = bucket_width_s(from, to, max_points);
        // `origin => from` aligns buckets on the range, so there are at most `max_points`.
        let (sql, code) = match series {
            Series::Vital(vital) => (
                "SELECT time_bucket(make_interval(secs => $1), measured_at, origin => $2) AS b,
                        min(value), avg(value), max(value), count(*)
                 FROM observations
                 WHERE patient_id = $4 AND loinc = $5 AND measured_at >= $2 AND measured_at < $3
                 GROUP BY b ORDER BY b",
                vital.loinc(),
            ),
            Series::HeartRate => (
                "SELECT time_bucket(make_interval(secs => $1), at, origin => $2) AS b,
                        min(bpm), avg(bpm), max(bpm), count(*)
                 FROM heart_rate
                 WHERE patient_id = $4 AND $5::text IS NOT NULL AND at >= $2 AND at < $3
                 GROUP BY b ORDER BY b",
                "",
            ),
        };
        let rows = sqlx::query(sql)
            .bind(width_s as f64)
            .bind(from)
            .bind(to)
            .bind(patient)
            .bind(code)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TrendPoint {
                    at: row.try_get(0)?,
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
        let counts = sqlx::query_as(
            "SELECT gateway_id, sum(received)::int8, sum(stored)::int8, sum(duplicates)::int8,
                    sum(dead_lettered)::int8
             FROM ingest_counts
             WHERE $1::timestamptz IS NULL OR minute >= date_trunc('minute', $1::timestamptz)
             GROUP BY gateway_id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let dead_letters = sqlx::query_as(
            "SELECT gateway_id, reason, count(*) FROM dead_letters
             WHERE $1::timestamptz IS NULL OR received_at >= $1::timestamptz
             GROUP BY gateway_id, reason",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let states =
            sqlx::query_as("SELECT gateway_id, last_seen, clock_offset_ms FROM gateway_state")
                .fetch_all(&self.pool)
                .await?;
        Ok(assemble_gateway_stats(counts, dead_letters, states))
    }

    async fn apply_retention(
        &self,
        medical_before: DateTime<Utc>,
        other_before: DateTime<Utc>,
    ) -> Result<RetentionReport, StorageError> {
        let mut report = RetentionReport::default();
        let tables = MEDICAL_HYPERTABLES
            .iter()
            .map(|t| (*t, medical_before))
            .chain(OTHER_HYPERTABLES.iter().map(|t| (*t, other_before)));
        for (table, before) in tables {
            let dropped: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM drop_chunks($1::regclass, older_than => $2::timestamptz)",
            )
            .bind(table)
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
            report
                .dropped
                .push((table.to_owned(), to_u64(dropped, "count")?));
        }
        // Dedup keys at or below a watermark are covered by it; older ones can go with other records.
        let done = sqlx::query("DELETE FROM ingest_dedup WHERE received_at < $1")
            .bind(other_before)
            .execute(&self.pool)
            .await?;
        report
            .dropped
            .push(("ingest_dedup".to_owned(), done.rows_affected()));
        Ok(report)
    }

    async fn upsert_clinic(&self, c: &Clinic) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO clinics (id, name, director, emergency_phone, opening_hours, area)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, director = EXCLUDED.director,
               emergency_phone = EXCLUDED.emergency_phone, opening_hours = EXCLUDED.opening_hours,
               area = EXCLUDED.area",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                     $18, $19, $20, $21, $22)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
               name_furigana = EXCLUDED.name_furigana, date_of_birth = EXCLUDED.date_of_birth,
               sex = EXCLUDED.sex, address = EXCLUDED.address, map_url = EXCLUDED.map_url,
               key_person_name = EXCLUDED.key_person_name,
               key_person_phone = EXCLUDED.key_person_phone,
               main_diseases = EXCLUDED.main_diseases, medications = EXCLUDED.medications,
               allergies = EXCLUDED.allergies, advance_directive = EXCLUDED.advance_directive,
               dnar = EXCLUDED.dnar, home_oxygen_l_per_min = EXCLUDED.home_oxygen_l_per_min,
               news2_spo2_scale = EXCLUDED.news2_spo2_scale,
               reading_schedule = EXCLUDED.reading_schedule,
               primary_clinic_id = EXCLUDED.primary_clinic_id,
               consent_monitoring_at = EXCLUDED.consent_monitoring_at,
               consent_monitoring_withdrawn_at = EXCLUDED.consent_monitoring_withdrawn_at,
               consent_night_sharing_at = EXCLUDED.consent_night_sharing_at,
               consent_night_sharing_withdrawn_at = EXCLUDED.consent_night_sharing_withdrawn_at",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.name_furigana)
        .bind(p.date_of_birth)
        .bind(&p.sex)
        .bind(&p.address)
        .bind(&p.map_url)
        .bind(&p.key_person_name)
        .bind(&p.key_person_phone)
        .bind(&p.main_diseases)
        .bind(&p.medications)
        .bind(&p.allergies)
        .bind(&p.advance_directive)
        .bind(p.dnar)
        .bind(p.home_oxygen_l_per_min)
        .bind(p.news2_spo2_scale)
        .bind(&p.reading_schedule)
        .bind(&p.primary_clinic_id)
        .bind(p.consent_monitoring_at)
        .bind(p.consent_monitoring_withdrawn_at)
        .bind(p.consent_night_sharing_at)
        .bind(p.consent_night_sharing_withdrawn_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upsert_device(&self, d: &Device) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO devices (id, model, serial, ble_address, area) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET model = EXCLUDED.model, serial = EXCLUDED.serial,
               ble_address = EXCLUDED.ble_address, area = EXCLUDED.area",
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
            "INSERT INTO gateways (id, patient_id, note) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, note = EXCLUDED.note",
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&l.device_id)
        .bind(&l.patient_id)
        .bind(l.device_user.map(i16::from))
        .bind(l.lent_from)
        .bind(l.lent_until)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn end_loan(&self, loan_id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = sqlx::query("UPDATE loans SET lent_until = $2 WHERE id = $1")
            .bind(loan_id)
            .bind(at)
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
                Ok(Patient {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    name_furigana: row.try_get(2)?,
                    date_of_birth: row.try_get(3)?,
                    sex: row.try_get(4)?,
                    address: row.try_get(5)?,
                    map_url: row.try_get(6)?,
                    key_person_name: row.try_get(7)?,
                    key_person_phone: row.try_get(8)?,
                    main_diseases: row.try_get(9)?,
                    medications: row.try_get(10)?,
                    allergies: row.try_get(11)?,
                    advance_directive: row.try_get(12)?,
                    dnar: row.try_get(13)?,
                    home_oxygen_l_per_min: row.try_get(14)?,
                    news2_spo2_scale: row.try_get(15)?,
                    reading_schedule: row.try_get(16)?,
                    primary_clinic_id: row.try_get(17)?,
                    consent_monitoring_at: row.try_get(18)?,
                    consent_monitoring_withdrawn_at: row.try_get(19)?,
                    consent_night_sharing_at: row.try_get(20)?,
                    consent_night_sharing_withdrawn_at: row.try_get(21)?,
                })
            })
            .collect()
    }
}

/// Width of one trend bucket in whole seconds, so `[from, to)` splits into at most `max_points`.
pub(crate) fn bucket_width_s(from: DateTime<Utc>, to: DateTime<Utc>, max_points: u32) -> i64 {
    let span_s = (to - from).num_seconds().max(1);
    let points = i64::from(max_points.max(1));
    // Ceiling division: never more than `points` buckets.
    ((span_s + points - 1) / points).max(1)
}

async fn write_contents(
    tx: &mut Transaction<'_, Postgres>,
    batch: &IngestBatch,
    fresh: &[bool],
) -> Result<(), StorageError> {
    #[derive(Default)]
    struct Obs {
        patient: Vec<String>,
        measured_at: Vec<DateTime<Utc>>,
        loinc: Vec<&'static str>,
        unit: Vec<&'static str>,
        value: Vec<f64>,
        device: Vec<String>,
        device_time: Vec<Option<NaiveDateTime>>,
        received_at: Vec<DateTime<Utc>>,
        flags: Vec<String>,
        gateway: Vec<String>,
        epoch: Vec<String>,
        seq: Vec<i64>,
    }
    #[derive(Default)]
    struct Ecg {
        patient: Vec<String>,
        at: Vec<DateTime<Utc>>,
        device: Vec<String>,
        lead: Vec<String>,
        stream: Vec<i64>,
        first: Vec<i64>,
        count: Vec<i32>,
        rate: Vec<f64>,
        gain: Vec<f64>,
        lead_off: Vec<bool>,
        samples: Vec<Vec<u8>>,
        received_at: Vec<DateTime<Utc>>,
        gateway: Vec<String>,
        epoch: Vec<String>,
        seq: Vec<i64>,
    }
    let mut obs = Obs::default();
    let mut ecg = Ecg::default();
    let mut presence: HashMap<String, (DateTime<Utc>, bool, String, Option<i64>)> = HashMap::new();
    for (m, _) in batch.messages.iter().zip(fresh).filter(|(_, f)| **f) {
        let (epoch, seq) = match m.key {
            Some((epoch, seq)) => (Some(epoch.to_string()), Some(to_i64(seq, "sequence")?)),
            None => (None, None),
        };
        match &m.content {
            Content::Observations(records) => {
                for r in records {
                    obs.patient.push(r.patient_id.clone());
                    obs.measured_at.push(r.measured_at);
                    obs.loinc.push(r.vital.loinc());
                    obs.unit.push(r.vital.unit().code());
                    obs.value.push(r.value);
                    obs.device.push(r.device_id.clone());
                    obs.device_time.push(r.device_time);
                    obs.received_at.push(r.received_at);
                    obs.flags.push(r.time_flags.join(","));
                    obs.gateway.push(m.gateway.to_string());
                    obs.epoch.push(epoch.clone().unwrap_or_default());
                    obs.seq.push(seq.unwrap_or(-1));
                }
            }
            Content::Ecg(r) => {
                ecg.patient.push(r.patient_id.clone());
                ecg.at.push(r.first_sample_at);
                ecg.device.push(r.device_id.clone());
                ecg.lead.push(r.lead.clone());
                ecg.stream.push(r.stream_id as i64);
                ecg.first
                    .push(to_i64(r.first_sample_index, "sample index")?);
                ecg.count
                    .push(i32::try_from(r.samples.len()).unwrap_or(i32::MAX));
                ecg.rate.push(r.sample_rate_hz);
                ecg.gain.push(r.uv_per_count);
                ecg.lead_off.push(r.lead_off);
                ecg.samples.push(ecg_codec::pack(&r.samples));
                ecg.received_at.push(r.received_at);
                ecg.gateway.push(m.gateway.to_string());
                ecg.epoch.push(epoch.clone().unwrap_or_default());
                ecg.seq.push(seq.unwrap_or(-1));
            }
            Content::Status(s) => {
                sqlx::query(
                    "INSERT INTO device_status (device_id, at, gateway_id, connected,
                       battery_percent, lead_off, signal_quality, firmware)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.device_id)
                .bind(s.at)
                .bind(m.gateway.as_str())
                .bind(s.connected)
                .bind(s.battery_percent.map(i16::from))
                .bind(s.lead_off)
                .bind(s.signal_quality.map(i16::from))
                .bind(&s.firmware)
                .execute(&mut **tx)
                .await?;
            }
            Content::Presence(p) => {
                let depth = p.outbox_depth.map(|d| i64::try_from(d).unwrap_or(i64::MAX));
                presence.insert(
                    m.gateway.to_string(),
                    (m.received_at, p.online, p.software_version.clone(), depth),
                );
            }
            Content::DeadLetter(d) => {
                sqlx::query(
                    "INSERT INTO dead_letters (received_at, gateway_id, topic, epoch, seq, reason,
                       detail, payload)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(m.received_at)
                .bind(m.gateway.as_str())
                .bind(&d.topic)
                .bind(&epoch)
                .bind(seq)
                .bind(d.reason)
                .bind(&d.detail)
                .bind(&d.payload)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    if !obs.patient.is_empty() {
        sqlx::query(
            "INSERT INTO observations (patient_id, measured_at, loinc, unit, value, device_id,
               device_time, received_at, time_flags, gateway_id, epoch, seq)
             SELECT p, m, l, u, v, d, dt, r, COALESCE(string_to_array(NULLIF(f, ''), ','), '{}'), g, e, s
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[],
                         $6::text[], $7::timestamp[], $8::timestamptz[], $9::text[], $10::text[],
                         $11::text[], $12::int8[])
               AS t(p, m, l, u, v, d, dt, r, f, g, e, s)",
        )
        .bind(&obs.patient)
        .bind(&obs.measured_at)
        .bind(&obs.loinc)
        .bind(&obs.unit)
        .bind(&obs.value)
        .bind(&obs.device)
        .bind(&obs.device_time)
        .bind(&obs.received_at)
        .bind(&obs.flags)
        .bind(&obs.gateway)
        .bind(&obs.epoch)
        .bind(&obs.seq)
        .execute(&mut **tx)
        .await?;
    }
    if !ecg.patient.is_empty() {
        sqlx::query(
            "INSERT INTO ecg_chunks (patient_id, first_sample_at, device_id, lead, stream_id,
               first_sample_index, sample_count, sample_rate_hz, uv_per_count, lead_off, samples,
               received_at, gateway_id, epoch, seq)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::int8[],
               $6::int8[], $7::int4[], $8::float8[], $9::float8[], $10::bool[], $11::bytea[],
               $12::timestamptz[], $13::text[], $14::text[], $15::int8[])",
        )
        .bind(&ecg.patient)
        .bind(&ecg.at)
        .bind(&ecg.device)
        .bind(&ecg.lead)
        .bind(&ecg.stream)
        .bind(&ecg.first)
        .bind(&ecg.count)
        .bind(&ecg.rate)
        .bind(&ecg.gain)
        .bind(&ecg.lead_off)
        .bind(&ecg.samples)
        .bind(&ecg.received_at)
        .bind(&ecg.gateway)
        .bind(&ecg.epoch)
        .bind(&ecg.seq)
        .execute(&mut **tx)
        .await?;
    }
    for (gateway, (seen, online, version, depth)) in presence {
        sqlx::query(
            "INSERT INTO gateway_state (gateway_id, last_seen, online, software_version, outbox_depth)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (gateway_id) DO UPDATE SET online = EXCLUDED.online,
               software_version = EXCLUDED.software_version, outbox_depth = EXCLUDED.outbox_depth",
        )
        .bind(&gateway)
        .bind(seen)
        .bind(online)
        .bind(&version)
        .bind(depth)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl TimescaleStore {
    /// Runs a query whose parameters are a patient and a time range (`$1`, `$2..$3`).
    async fn rows_in_range(
        &self,
        sql: &str,
        patient: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
        sqlx::query(sql)
            .bind(patient)
            .bind(from)
            .bind(to)
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
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(observation_from_row).collect()
    }
}

fn observation_from_row(row: &sqlx::postgres::PgRow) -> Result<ObservationRecord, StorageError> {
    let code: String = row.try_get(2)?;
    Ok(ObservationRecord {
        patient_id: row.try_get(0)?,
        device_id: row.try_get(1)?,
        vital: parse_vital(&code)?,
        value: row.try_get(3)?,
        measured_at: row.try_get(4)?,
        device_time: row.try_get::<Option<NaiveDateTime>, _>(5)?,
        received_at: row.try_get(6)?,
        time_flags: row.try_get(7)?,
    })
}
