//! One [`Storage`] implementation for both SQL backends, generic over their [`Dialect`].
//!
//! Every statement both databases understand is written once ([`statements`]), and so are the
//! order of its binds and the mapping of its rows (here). A backend (`sqlite.rs`, `timescale.rs`) provides only what differs: how an instant, a list and a
//! device's clock reading are stored, the bulk writes (TimescaleDB sends each table's share of a
//! batch as one `UNNEST` statement, SQLite writes row by row), trend buckets, chunk retention and
//! migrations.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use mimamori_wire::{Epoch, GatewayId, VitalSign};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use self::assemble::{assemble_allow_lists, assemble_gateway_stats, assemble_watermarks};
use self::statements::*;
use crate::storage::{
    AnalysisState, BeatRecord, Checkpoint, Clinic, CommitOutcome, Content, DeadLetter,
    DerivedBatch, Device, DeviceState, EcgRecord, EpisodeKind, EpisodeRecord, Gateway,
    GatewayAllowList, GatewayStats, HeartRateRecord, IngestBatch, IngestMessage, Loan, LoanRecord,
    ObservationRecord, Patient, PresenceRecord, QualityRunRecord, RetentionReport, Series,
    StatusRecord, Storage, StorageError, StoredWatermark, TrendPoint, ecg_codec, parse_quality,
    quality_label,
};

mod assemble;
mod statements;

/// A Rust type that `D`'s driver writes to a column and reads back.
pub trait ColumnType<D: Database>: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D> {}

impl<D: Database, T> ColumnType<D> for T where
    T: Type<D> + for<'q> Encode<'q, D> + for<'r> Decode<'r, D>
{
}

/// What differs between the SQL of the two backends.
pub trait Dialect: Database {
    /// An instant as stored.
    type Time: ColumnType<Self> + Copy + Send + Sync + Unpin + 'static;
    /// A list of short labels as stored.
    type List: ColumnType<Self> + Send + Sync + 'static;

    fn time(at: DateTime<Utc>) -> Self::Time;
    fn from_time(stored: Self::Time) -> Result<DateTime<Utc>, StorageError>;
    fn list(items: &[String]) -> Self::List;
    fn from_list(stored: Self::List) -> Result<Vec<String>, StorageError>;
    /// Reads `observations.device_time` (the device's own clock, no time zone) of a row.
    fn device_time(row: &Self::Row, index: usize) -> Result<Option<NaiveDateTime>, StorageError>;
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// One vital sign's trend: `$1` bucket width in microseconds, `$2..$3` range (buckets aligned
    /// on `$2`), `$4` patient, `$5` LOINC code; rows `(bucket start, min, mean, max, count)`.
    const TREND_VITAL_SQL: &'static str;
    /// As [`Self::TREND_VITAL_SQL`], over `heart_rate` (`$5` is bound but means nothing).
    const TREND_HEART_RATE_SQL: &'static str;

    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Inserts the idempotency keys not stored yet and returns those it inserted. The bulk
    /// writes below are never given an empty slice.
    fn insert_dedup_keys(
        conn: &mut Self::Connection,
        keys: &[(DedupKey, DateTime<Utc>)],
    ) -> impl Future<Output = Result<HashSet<DedupKey>, StorageError>> + Send;
    fn insert_observations(
        conn: &mut Self::Connection,
        rows: &[Carried<'_, ObservationRecord>],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn insert_ecg_chunks(
        conn: &mut Self::Connection,
        rows: &[Carried<'_, EcgRecord>],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn insert_beats(
        conn: &mut Self::Connection,
        beats: &[BeatRecord],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn insert_heart_rate(
        conn: &mut Self::Connection,
        rates: &[HeartRateRecord],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Drops the chunks of `table` wholly older than `before` and returns how many went, or `None`
    /// when `table` is not split in chunks (its older rows are then deleted one by one).
    fn drop_chunks(
        pool: &Pool<Self>,
        table: &'static str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<u64>, StorageError>> + Send;
}

/// A store over a pool of `D`: [`crate::sinks::sqlite::SqliteStore`] or
/// [`crate::sinks::timescale::TimescaleStore`]. Cheap to clone (a pool handle).
#[derive(Debug)]
pub struct SqlStore<D: Database> {
    pool: Pool<D>,
}

impl<D: Database> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<D: Database> SqlStore<D> {
    pub(crate) fn with_pool(pool: Pool<D>) -> Self {
        Self { pool }
    }

    /// The pool, for modules that own their own tables (alerts, on-call, HTTP).
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

/// Tables of the medical record (5-year floor) and their time column.
const MEDICAL_TABLES: [(&str, &str); 6] = [
    ("observations", "measured_at"),
    ("ecg_chunks", "first_sample_at"),
    ("beats", "at"),
    ("heart_rate", "at"),
    ("rhythm_episodes", "started_at"),
    ("ecg_quality_runs", "started_at"),
];
/// Tables of other records (3-year floor) and their time column. Dedup keys at or below a
/// watermark are covered by it, so old ones can go.
const OTHER_TABLES: [(&str, &str); 3] = [
    ("device_status", "at"),
    ("dead_letters", "received_at"),
    ("ingest_dedup", "received_at"),
];

/// A message's idempotency key as `ingest_dedup` stores it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DedupKey {
    pub gateway: String,
    pub epoch: String,
    pub seq: i64,
}

/// A record with the message that carried it, for the tables that keep the message's key.
#[derive(Debug)]
pub struct Carried<'a, T> {
    pub record: &'a T,
    pub message: &'a IngestMessage,
    /// The message's `(epoch, seq)` as stored, when it had a key.
    pub key: Option<(String, i64)>,
}

impl<'a, T> Carried<'a, T> {
    fn by(record: &'a T, message: &'a IngestMessage, key: &Option<(String, i64)>) -> Self {
        Self {
            record,
            message,
            key: key.clone(),
        }
    }

    /// The stored epoch: empty for a message without a key.
    pub fn epoch(&self) -> String {
        self.key
            .as_ref()
            .map(|(e, _)| e.clone())
            .unwrap_or_default()
    }

    /// The stored sequence: -1 for a message without a key.
    pub fn seq(&self) -> i64 {
        self.key.as_ref().map_or(-1, |(_, s)| *s)
    }
}

/// The contents of a batch's fresh messages, by table.
struct Contents<'a> {
    observations: Vec<Carried<'a, ObservationRecord>>,
    ecg: Vec<Carried<'a, EcgRecord>>,
    statuses: Vec<Carried<'a, StatusRecord>>,
    /// One per gateway: the last of the batch stands.
    presence: BTreeMap<&'a str, Carried<'a, PresenceRecord>>,
    dead_letters: Vec<Carried<'a, DeadLetter>>,
}

impl<'a> Contents<'a> {
    fn of(batch: &'a IngestBatch, fresh: &[bool]) -> Result<Self, StorageError> {
        let mut contents = Contents {
            observations: vec![],
            ecg: vec![],
            statuses: vec![],
            presence: BTreeMap::new(),
            dead_letters: vec![],
        };
        for (message, _) in batch.messages.iter().zip(fresh).filter(|(_, f)| **f) {
            let key = match message.key {
                Some((epoch, seq)) => Some((epoch.to_string(), to_i64(seq, "sequence")?)),
                None => None,
            };
            match &message.content {
                Content::Observations(records) => contents
                    .observations
                    .extend(records.iter().map(|r| Carried::by(r, message, &key))),
                Content::Ecg(r) => contents.ecg.push(Carried::by(r, message, &key)),
                Content::Status(s) => contents.statuses.push(Carried::by(s, message, &key)),
                Content::Presence(p) => {
                    let p = Carried::by(p, message, &key);
                    contents.presence.insert(message.gateway.as_str(), p);
                }
                Content::DeadLetter(d) => {
                    let d = Carried::by(d, message, &key);
                    contents.dead_letters.push(d);
                }
            }
        }
        Ok(contents)
    }
}

// sqlx implements its traits per driver, so the shared code names every column type it binds or
// reads; both drivers provide them all.
impl<D> Storage for SqlStore<D>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    usize: ColumnIndex<D::Row>,
    str: Type<D>,
    for<'q> &'q str: Encode<'q, D>,
    bool: ColumnType<D>,
    i16: ColumnType<D>,
    i64: ColumnType<D>,
    f64: ColumnType<D>,
    String: ColumnType<D>,
    Vec<u8>: ColumnType<D>,
    NaiveDate: ColumnType<D>,
    Option<bool>: ColumnType<D>,
    Option<i16>: ColumnType<D>,
    Option<i64>: ColumnType<D>,
    Option<f64>: ColumnType<D>,
    Option<String>: ColumnType<D>,
    Option<Vec<u8>>: ColumnType<D>,
    Option<D::Time>: ColumnType<D>,
{
    async fn migrate(&self) -> Result<(), StorageError> {
        D::migrate(&self.pool).await
    }

    async fn commit_ingest(&self, batch: &IngestBatch) -> Result<CommitOutcome, StorageError> {
        let mut tx = self.pool.begin().await?;

        // 1. Idempotency keys: what the insert reports was not there before.
        let keys = batch
            .messages
            .iter()
            .map(|m| match (m.key, m.known_duplicate) {
                (Some((epoch, seq)), false) => DedupKey::of(&m.gateway, epoch, seq).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let new_keys: Vec<_> = batch
            .messages
            .iter()
            .zip(&keys)
            .filter_map(|(m, key)| Some((key.clone()?, m.received_at)))
            .collect();
        let inserted = if new_keys.is_empty() {
            HashSet::new()
        } else {
            D::insert_dedup_keys(&mut tx, &new_keys).await?
        };
        let fresh = fresh_flags(batch, &keys, &inserted);

        // 2. Contents of fresh messages.
        let contents = Contents::of(batch, &fresh)?;
        if !contents.observations.is_empty() {
            D::insert_observations(&mut tx, &contents.observations).await?;
        }
        if !contents.ecg.is_empty() {
            D::insert_ecg_chunks(&mut tx, &contents.ecg).await?;
        }
        for Carried {
            record: s, message, ..
        } in &contents.statuses
        {
            sqlx::query(INSERT_DEVICE_STATUS_SQL)
                .bind(&s.device_id)
                .bind(D::time(s.at))
                .bind(message.gateway.as_str())
                .bind(s.connected)
                .bind(s.battery_percent.map(i16::from))
                .bind(s.lead_off)
                .bind(s.signal_quality.map(i16::from))
                .bind(&s.firmware)
                .execute(&mut *tx)
                .await?;
        }
        for Carried {
            record: p, message, ..
        } in contents.presence.values()
        {
            sqlx::query(UPSERT_GATEWAY_PRESENCE_SQL)
                .bind(message.gateway.as_str())
                .bind(D::time(message.received_at))
                .bind(p.online)
                .bind(&p.software_version)
                .bind(p.outbox_depth.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
                .execute(&mut *tx)
                .await?;
        }
        for Carried {
            record: d,
            message,
            key,
        } in &contents.dead_letters
        {
            let (epoch, seq) = key.clone().unzip();
            sqlx::query(INSERT_DEAD_LETTER_SQL)
                .bind(D::time(message.received_at))
                .bind(message.gateway.as_str())
                .bind(&d.topic)
                .bind(epoch)
                .bind(seq)
                .bind(d.reason)
                .bind(&d.detail)
                .bind(&d.payload)
                .execute(&mut *tx)
                .await?;
        }

        // 3. Ack watermarks, in the same transaction as the keys they summarise.
        for w in &batch.watermarks {
            sqlx::query(UPSERT_WATERMARK_SQL)
                .bind(w.gateway.as_str())
                .bind(w.epoch.to_string())
                .bind(to_i64(w.stored_through, "sequence")?)
                .bind(D::time(Utc::now()))
                .execute(&mut *tx)
                .await?;
        }

        // 4. Counters and last-seen per gateway.
        for (gateway, c) in count_batch(batch, &fresh) {
            let seen = c.last_seen.unwrap_or_else(Utc::now);
            sqlx::query(ADD_INGEST_COUNTS_SQL)
                .bind(&gateway)
                .bind(D::time(start_of_minute(seen)))
                .bind(c.received)
                .bind(c.stored)
                .bind(c.duplicates)
                .bind(c.dead_lettered)
                .execute(&mut *tx)
                .await?;
            sqlx::query(UPSERT_GATEWAY_SEEN_SQL)
                .bind(&gateway)
                .bind(D::time(seen))
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
        let rows = sqlx::query(LOANS_SQL).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let user: Option<i16> = row.try_get(2)?;
                Ok(LoanRecord {
                    device_id: row.try_get(0)?,
                    patient_id: row.try_get(1)?,
                    device_user: user.and_then(|u| u8::try_from(u).ok()),
                    lent_from: D::from_time(row.try_get(3)?)?,
                    lent_until: from_opt_time::<D>(row.try_get(4)?)?,
                    consent_monitoring_at: from_opt_time::<D>(row.try_get(5)?)?,
                    consent_monitoring_withdrawn_at: from_opt_time::<D>(row.try_get(6)?)?,
                })
            })
            .collect()
    }

    async fn gateway_allow_lists(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<GatewayAllowList>, StorageError> {
        let rows = sqlx::query_as(GATEWAY_ALLOW_LISTS_SQL)
            .bind(D::time(at))
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
            D::insert_beats(&mut tx, &batch.beats).await?;
        }
        if !batch.heart_rate.is_empty() {
            D::insert_heart_rate(&mut tx, &batch.heart_rate).await?;
        }
        for gap in &batch.gaps {
            sqlx::query(INSERT_GAP_SQL)
                .bind(&gap.patient_id)
                .bind(gap.stream_id as i64)
                .bind(to_i64(gap.from_index, "sample index")?)
                .bind(to_i64(gap.to_index, "sample index")?)
                .bind(D::time(gap.detected_at))
                .execute(&mut *tx)
                .await?;
        }
        for e in &batch.episodes {
            sqlx::query(UPSERT_EPISODE_SQL)
                .bind(&e.patient_id)
                .bind(e.stream_id as i64)
                .bind(e.kind.label())
                .bind(to_i64(e.start_index, "sample index")?)
                .bind(D::time(e.started_at))
                .bind(e.ended_at.map(D::time))
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
                .bind(D::time(q.started_at))
                .bind(D::time(q.ended_at))
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
                .bind(D::time(cp.updated_at))
                .bind(state.map(|s| to_i64(s.index, "sample index")).transpose()?)
                .bind(state.map(|s| D::time(s.at)))
                .bind(state.map(|s| s.bytes.clone()))
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
                let stream: i64 = row.try_get(1)?;
                let last_beat: Option<i64> = row.try_get(3)?;
                let state_index: Option<i64> = row.try_get(5)?;
                let state_at = from_opt_time::<D>(row.try_get(6)?)?;
                let state = match (state_index, state_at, row.try_get(7)?) {
                    (Some(index), Some(at), Some(bytes)) => Some(AnalysisState {
                        index: to_u64(index, "sample index")?,
                        at,
                        bytes,
                    }),
                    _ => None,
                };
                Ok(Checkpoint {
                    patient_id: row.try_get(0)?,
                    stream_id: stream as u64,
                    next_index: to_u64(row.try_get(2)?, "sample index")?,
                    last_beat_index: last_beat.map(|i| to_u64(i, "sample index")).transpose()?,
                    updated_at: D::from_time(row.try_get(4)?)?,
                    state,
                })
            })
            .collect()
    }

    async fn rhythm_episodes(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EpisodeRecord>, StorageError> {
        let rows = in_range(EPISODES_SQL, patient, (from, to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(1)?;
                let kind: String = row.try_get(2)?;
                Ok(EpisodeRecord {
                    patient_id: row.try_get(0)?,
                    stream_id: stream as u64,
                    kind: EpisodeKind::parse(&kind)?,
                    start_index: to_u64(row.try_get(3)?, "sample index")?,
                    started_at: D::from_time(row.try_get(4)?)?,
                    ended_at: from_opt_time::<D>(row.try_get(5)?)?,
                    signal_usable: row.try_get(6)?,
                    max_rr_ms: row.try_get(7)?,
                    extreme_per_min: row.try_get(8)?,
                })
            })
            .collect()
    }

    async fn quality_runs(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<QualityRunRecord>, StorageError> {
        let rows = in_range(QUALITY_RUNS_SQL, patient, (from, to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(1)?;
                let quality: String = row.try_get(2)?;
                Ok(QualityRunRecord {
                    patient_id: row.try_get(0)?,
                    stream_id: stream as u64,
                    quality: parse_quality(&quality)?,
                    started_at: D::from_time(row.try_get(3)?)?,
                    ended_at: D::from_time(row.try_get(4)?)?,
                })
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
        let query = of_vital(OBSERVATIONS_OLDEST_FIRST_SQL, patient, vital, (from, to));
        let rows = query
            .bind(i64::from(u32::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(observation_from_row::<D>).collect()
    }

    async fn recent_observations(
        &self,
        patient: &str,
        vital: VitalSign,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ObservationRecord>, StorageError> {
        let query = of_vital(OBSERVATIONS_NEWEST_FIRST_SQL, patient, vital, (from, to));
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(observation_from_row::<D>).collect()
    }

    async fn device_states(
        &self,
        patient: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<DeviceState>, StorageError> {
        let rows = sqlx::query(DEVICE_STATES_SQL)
            .bind(patient)
            .bind(D::time(at))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let battery: Option<i16> = row.try_get(2)?;
                Ok(DeviceState {
                    device_id: row.try_get(0)?,
                    model: row.try_get(1)?,
                    battery_percent: battery.and_then(|b| u8::try_from(b).ok()),
                    status_at: from_opt_time::<D>(row.try_get(3)?)?,
                    gateway_id: row.try_get(4)?,
                    gateway_online: row.try_get(5)?,
                    gateway_last_seen: from_opt_time::<D>(row.try_get(6)?)?,
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
        let rows = in_range(ECG_CHUNKS_SQL, patient, (from, to))
            .fetch_all(&self.pool)
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
                    first_sample_at: D::from_time(row.try_get(5)?)?,
                    sample_rate_hz: row.try_get(6)?,
                    uv_per_count: row.try_get(7)?,
                    lead_off: row.try_get(8)?,
                    samples: ecg_codec::unpack(&packed).map_err(|e| StorageError::Corrupt {
                        what: "ECG samples",
                        detail: e.to_string(),
                    })?,
                    received_at: D::from_time(row.try_get(10)?)?,
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
        let rows = in_range(BEATS_SQL, patient, (from, to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let stream: i64 = row.try_get(2)?;
                Ok(BeatRecord {
                    patient_id: row.try_get(0)?,
                    at: D::from_time(row.try_get(1)?)?,
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
            Series::Vital(vital) => (D::TREND_VITAL_SQL, vital.loinc()),
            Series::HeartRate => (D::TREND_HEART_RATE_SQL, ""),
        };
        let rows = sqlx::query(sql)
            .bind(width_us)
            .bind(D::time(from))
            .bind(D::time(to))
            .bind(patient)
            .bind(code)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TrendPoint {
                    at: D::from_time(row.try_get(0)?)?,
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
        let counts = sqlx::query_as(COUNTS_SINCE_SQL)
            .bind(since.map(|s| D::time(start_of_minute(s))))
            .fetch_all(&self.pool)
            .await?;
        let dead_letters = sqlx::query_as(DEAD_LETTERS_SINCE_SQL)
            .bind(since.map(D::time))
            .fetch_all(&self.pool)
            .await?;
        let states = sqlx::query_as::<_, (String, D::Time, Option<i64>)>(GATEWAY_STATES_SQL)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(gateway_id, last_seen, offset)| {
                Ok((gateway_id, Some(D::from_time(last_seen)?), offset))
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
            let dropped = match D::drop_chunks(&self.pool, table, before).await? {
                Some(chunks) => chunks,
                None => {
                    // Table and column names come from the constants above, never from input.
                    let sql = format!("DELETE FROM {table} WHERE {column} < $1");
                    let done = sqlx::query(&sql)
                        .bind(D::time(before))
                        .execute(&self.pool)
                        .await?;
                    D::rows_affected(&done)
                }
            };
            report.dropped.push((table.to_owned(), dropped));
        }
        Ok(report)
    }

    async fn upsert_clinic(&self, c: &Clinic) -> Result<(), StorageError> {
        sqlx::query(UPSERT_CLINIC_SQL)
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
        sqlx::query(UPSERT_PATIENT_SQL)
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.name_furigana)
            .bind(p.date_of_birth)
            .bind(&p.sex)
            .bind(&p.address)
            .bind(&p.map_url)
            .bind(&p.key_person_name)
            .bind(&p.key_person_phone)
            .bind(D::list(&p.main_diseases))
            .bind(D::list(&p.medications))
            .bind(D::list(&p.allergies))
            .bind(&p.advance_directive)
            .bind(p.dnar)
            .bind(p.home_oxygen_l_per_min)
            .bind(p.news2_spo2_scale)
            .bind(&p.reading_schedule)
            .bind(&p.primary_clinic_id)
            .bind(p.consent_monitoring_at.map(D::time))
            .bind(p.consent_monitoring_withdrawn_at.map(D::time))
            .bind(p.consent_night_sharing_at.map(D::time))
            .bind(p.consent_night_sharing_withdrawn_at.map(D::time))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_device(&self, d: &Device) -> Result<(), StorageError> {
        sqlx::query(UPSERT_DEVICE_SQL)
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
        sqlx::query(UPSERT_GATEWAY_SQL)
            .bind(&g.id)
            .bind(&g.patient_id)
            .bind(&g.note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_loan(&self, l: &Loan) -> Result<i64, StorageError> {
        let id: i64 = sqlx::query_scalar(ADD_LOAN_SQL)
            .bind(&l.device_id)
            .bind(&l.patient_id)
            .bind(l.device_user.map(i16::from))
            .bind(D::time(l.lent_from))
            .bind(l.lent_until.map(D::time))
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn end_loan(&self, loan_id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = sqlx::query(END_LOAN_SQL)
            .bind(loan_id)
            .bind(D::time(at))
            .execute(&self.pool)
            .await?;
        if D::rows_affected(&done) == 0 {
            return Err(StorageError::NotFound {
                what: "loan",
                id: loan_id.to_string(),
            });
        }
        Ok(())
    }

    async fn patients(&self) -> Result<Vec<Patient>, StorageError> {
        let rows = sqlx::query(PATIENTS_SQL).fetch_all(&self.pool).await?;
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
                    main_diseases: D::from_list(row.try_get(9)?)?,
                    medications: D::from_list(row.try_get(10)?)?,
                    allergies: D::from_list(row.try_get(11)?)?,
                    advance_directive: row.try_get(12)?,
                    dnar: row.try_get(13)?,
                    home_oxygen_l_per_min: row.try_get(14)?,
                    news2_spo2_scale: row.try_get(15)?,
                    reading_schedule: row.try_get(16)?,
                    primary_clinic_id: row.try_get(17)?,
                    consent_monitoring_at: from_opt_time::<D>(row.try_get(18)?)?,
                    consent_monitoring_withdrawn_at: from_opt_time::<D>(row.try_get(19)?)?,
                    consent_night_sharing_at: from_opt_time::<D>(row.try_get(20)?)?,
                    consent_night_sharing_withdrawn_at: from_opt_time::<D>(row.try_get(21)?)?,
                })
            })
            .collect()
    }
}

/// A query whose parameters are a patient and a time range (`$1`, `$2..$3`).
fn in_range<'q, D: Dialect>(
    sql: &'q str,
    patient: &'q str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Query<'q, D, D::Arguments<'q>>
where
    str: Type<D>,
    &'q str: Encode<'q, D>,
{
    sqlx::query(sql)
        .bind(patient)
        .bind(D::time(from))
        .bind(D::time(to))
}

/// One of the observation queries (`$1` patient, `$2` LOINC, `$3..$4` range), the limit (`$5`)
/// still to bind.
fn of_vital<'q, D: Dialect>(
    sql: &'q str,
    patient: &'q str,
    vital: VitalSign,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Query<'q, D, D::Arguments<'q>>
where
    str: Type<D>,
    for<'a> &'a str: Encode<'a, D>,
{
    sqlx::query(sql)
        .bind(patient)
        .bind(vital.loinc())
        .bind(D::time(from))
        .bind(D::time(to))
}

/// Maps a row of the observation queries.
fn observation_from_row<D: Dialect>(row: &D::Row) -> Result<ObservationRecord, StorageError>
where
    usize: ColumnIndex<D::Row>,
    String: ColumnType<D>,
    f64: ColumnType<D>,
{
    let code: String = row.try_get(2)?;
    Ok(ObservationRecord {
        patient_id: row.try_get(0)?,
        device_id: row.try_get(1)?,
        vital: parse_vital(&code)?,
        value: row.try_get(3)?,
        measured_at: D::from_time(row.try_get(4)?)?,
        device_time: D::device_time(row, 5)?,
        received_at: D::from_time(row.try_get(6)?)?,
        time_flags: D::from_list(row.try_get(7)?)?,
    })
}

fn from_opt_time<D: Dialect>(
    stored: Option<D::Time>,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    stored.map(D::from_time).transpose()
}

/// The minute an instant falls in (UTC), the key of `ingest_counts`.
fn start_of_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at - Duration::microseconds(at.timestamp_micros().rem_euclid(60_000_000))
}

impl DedupKey {
    fn of(gateway: &GatewayId, epoch: Epoch, seq: u64) -> Result<Self, StorageError> {
        Ok(Self {
            gateway: gateway.to_string(),
            epoch: epoch.to_string(),
            seq: to_i64(seq, "sequence")?,
        })
    }
}

/// Which messages of a batch to write: keyed ones whose key was inserted now (first occurrence
/// within the batch only), and every unkeyed one (presence, unreadable payloads). `keys` holds
/// each message's key, `None` for unkeyed and known duplicates.
fn fresh_flags(
    batch: &IngestBatch,
    keys: &[Option<DedupKey>],
    inserted: &HashSet<DedupKey>,
) -> Vec<bool> {
    let mut seen = HashSet::new();
    batch
        .messages
        .iter()
        .zip(keys)
        .map(|(m, key)| match key {
            _ if m.known_duplicate => false,
            None => true,
            Some(key) => seen.insert(key) && inserted.contains(key),
        })
        .collect()
}

/// Per-gateway counters of one batch.
#[derive(Debug, Default)]
struct BatchCounts {
    received: i64,
    stored: i64,
    duplicates: i64,
    dead_lettered: i64,
    last_seen: Option<DateTime<Utc>>,
    clock_offset_ms: Option<i64>,
}

fn count_batch(batch: &IngestBatch, fresh: &[bool]) -> BTreeMap<String, BatchCounts> {
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

/// Width of one trend bucket in whole seconds, so `[from, to)` splits into at most `max_points`.
fn bucket_width_s(from: DateTime<Utc>, to: DateTime<Utc>, max_points: u32) -> i64 {
    let span_s = (to - from).num_seconds().max(1);
    let points = i64::from(max_points.max(1));
    // Ceiling division: never more than `points` buckets.
    ((span_s + points - 1) / points).max(1)
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

fn parse_vital(code: &str) -> Result<VitalSign, StorageError> {
    VitalSign::from_loinc(code).ok_or_else(|| StorageError::Corrupt {
        what: "LOINC code",
        detail: code.to_owned(),
    })
}
