//! PostgreSQL + TimescaleDB storage backend.
//!
//! Times are `timestamptz`; ids are text; `u64` stream ids are stored bit-cast into `bigint` (they
//! are opaque random ids), sequences and sample indices are checked to fit before they get here
//! ([`crate::transforms::decode`]). The queries are shared with SQLite ([`super::sql`]); this is
//! PostgreSQL's [`Dialect`]: the bulk tables of a batch are written with
//! `INSERT … SELECT FROM UNNEST(…)`, one statement per table per transaction whatever the batch
//! size, and retention drops whole hypertable chunks.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::sql::{Carried, DedupKey, Dialect, SqlStore, to_i64, to_u64};
use crate::storage::{
    BeatRecord, EcgRecord, HeartRateRecord, ObservationRecord, StorageError, ecg_codec,
};

/// The TimescaleDB backend; cheap to clone (a pool handle).
pub type TimescaleStore = SqlStore<Postgres>;

/// The hypertables retention drops chunks of; other tables have their old rows deleted.
const HYPERTABLES: [&str; 8] = [
    "observations",
    "ecg_chunks",
    "beats",
    "heart_rate",
    "rhythm_episodes",
    "ecg_quality_runs",
    "device_status",
    "dead_letters",
];

impl TimescaleStore {
    /// Connects a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        Ok(Self::with_pool(pool))
    }
}

impl Dialect for Postgres {
    type Time = DateTime<Utc>;
    /// `text[]`.
    type List = Vec<String>;

    fn time(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    fn from_time(stored: DateTime<Utc>) -> Result<DateTime<Utc>, StorageError> {
        Ok(stored)
    }

    fn list(items: &[String]) -> Vec<String> {
        items.to_vec()
    }

    fn from_list(stored: Vec<String>) -> Result<Vec<String>, StorageError> {
        Ok(stored)
    }

    fn device_time(row: &PgRow, index: usize) -> Result<Option<NaiveDateTime>, StorageError> {
        Ok(row.try_get(index)?)
    }

    // `origin => $2` aligns buckets on the range, so there are at most `max_points`.
    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    const TREND_VITAL_SQL: &'static str =
        "SELECT time_bucket($1 * INTERVAL '1 microsecond', measured_at, origin => $2) AS b,
            min(value), avg(value), max(value), count(*)
     FROM observations
     WHERE patient_id = $4 AND loinc = $5 AND measured_at >= $2 AND measured_at < $3
     GROUP BY b ORDER BY b";
    const TREND_HEART_RATE_SQL: &'static str =
        "SELECT time_bucket($1 * INTERVAL '1 microsecond', at, origin => $2) AS b,
            min(bpm), avg(bpm), max(bpm), count(*)
     FROM heart_rate
     WHERE patient_id = $4 AND $5::text IS NOT NULL AND at >= $2 AND at < $3
     GROUP BY b ORDER BY b";

    async fn migrate(pool: &PgPool) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/postgres").run(pool).await?;
        Ok(())
    }

    async fn insert_dedup_keys(
        conn: &mut PgConnection,
        keys: &[(DedupKey, DateTime<Utc>)],
    ) -> Result<HashSet<DedupKey>, StorageError> {
        let rows = sqlx::query(
            "INSERT INTO ingest_dedup (gateway_id, epoch, seq, received_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::timestamptz[])
             ON CONFLICT DO NOTHING
             RETURNING gateway_id, epoch, seq",
        )
        .bind(column(keys, |(k, _)| k.gateway.clone()))
        .bind(column(keys, |(k, _)| k.epoch.clone()))
        .bind(column(keys, |(k, _)| k.seq))
        .bind(column(keys, |(_, at)| *at))
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DedupKey {
                    gateway: row.try_get(0)?,
                    epoch: row.try_get(1)?,
                    seq: row.try_get(2)?,
                })
            })
            .collect()
    }

    async fn insert_observations(
        conn: &mut PgConnection,
        rows: &[Carried<'_, ObservationRecord>],
    ) -> Result<(), StorageError> {
        let query = sqlx::query(
            "INSERT INTO observations (patient_id, measured_at, loinc, unit, value, device_id,
               device_time, received_at, time_flags, gateway_id, epoch, seq)
             SELECT p, m, l, u, v, d, dt, r, COALESCE(string_to_array(NULLIF(f, ''), ','), '{}'), g, e, s
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[],
                         $6::text[], $7::timestamp[], $8::timestamptz[], $9::text[], $10::text[],
                         $11::text[], $12::int8[])
               AS t(p, m, l, u, v, d, dt, r, f, g, e, s)",
        )
        .bind(column(rows, |c| c.record.patient_id.clone()))
        .bind(column(rows, |c| c.record.measured_at))
        .bind(column(rows, |c| c.record.vital.loinc()))
        .bind(column(rows, |c| c.record.vital.unit().code()))
        .bind(column(rows, |c| c.record.value))
        .bind(column(rows, |c| c.record.device_id.clone()))
        .bind(column(rows, |c| c.record.device_time))
        .bind(column(rows, |c| c.record.received_at))
        .bind(column(rows, |c| c.record.time_flags.join(",")));
        bind_message_keys(query, rows).execute(conn).await?;
        Ok(())
    }

    async fn insert_ecg_chunks(
        conn: &mut PgConnection,
        rows: &[Carried<'_, EcgRecord>],
    ) -> Result<(), StorageError> {
        let first_indices = rows
            .iter()
            .map(|c| to_i64(c.record.first_sample_index, "sample index"))
            .collect::<Result<Vec<_>, _>>()?;
        let query = sqlx::query(
            "INSERT INTO ecg_chunks (patient_id, first_sample_at, device_id, lead, stream_id,
               first_sample_index, sample_count, sample_rate_hz, uv_per_count, lead_off, samples,
               received_at, gateway_id, epoch, seq)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::int8[],
               $6::int8[], $7::int4[], $8::float8[], $9::float8[], $10::bool[], $11::bytea[],
               $12::timestamptz[], $13::text[], $14::text[], $15::int8[])",
        )
        .bind(column(rows, |c| c.record.patient_id.clone()))
        .bind(column(rows, |c| c.record.first_sample_at))
        .bind(column(rows, |c| c.record.device_id.clone()))
        .bind(column(rows, |c| c.record.lead.clone()))
        .bind(column(rows, |c| c.record.stream_id as i64))
        .bind(first_indices)
        .bind(column(rows, |c| {
            i32::try_from(c.record.samples.len()).unwrap_or(i32::MAX)
        }))
        .bind(column(rows, |c| c.record.sample_rate_hz))
        .bind(column(rows, |c| c.record.uv_per_count))
        .bind(column(rows, |c| c.record.lead_off))
        .bind(column(rows, |c| ecg_codec::pack(&c.record.samples)))
        .bind(column(rows, |c| c.record.received_at));
        bind_message_keys(query, rows).execute(conn).await?;
        Ok(())
    }

    async fn insert_beats(
        conn: &mut PgConnection,
        beats: &[BeatRecord],
    ) -> Result<(), StorageError> {
        let sample_indices = beats
            .iter()
            .map(|b| to_i64(b.sample_index, "sample index"))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(
            "INSERT INTO beats (patient_id, at, stream_id, sample_index, rr_ms, late)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[], $5::float8[], $6::bool[])",
        )
        .bind(column(beats, |b| b.patient_id.clone()))
        .bind(column(beats, |b| b.at))
        .bind(column(beats, |b| b.stream_id as i64))
        .bind(sample_indices)
        .bind(column(beats, |b| b.rr_ms))
        .bind(column(beats, |b| b.late))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn insert_heart_rate(
        conn: &mut PgConnection,
        rates: &[HeartRateRecord],
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO heart_rate (patient_id, at, bpm)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[])",
        )
        .bind(column(rates, |h| h.patient_id.clone()))
        .bind(column(rates, |h| h.at))
        .bind(column(rates, |h| h.bpm))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn drop_chunks(
        pool: &PgPool,
        table: &'static str,
        before: DateTime<Utc>,
    ) -> Result<Option<u64>, StorageError> {
        if !HYPERTABLES.contains(&table) {
            return Ok(None);
        }
        let dropped: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM drop_chunks($1::regclass, older_than => $2::timestamptz)",
        )
        .bind(table)
        .bind(before)
        .fetch_one(pool)
        .await?;
        Ok(Some(to_u64(dropped, "count")?))
    }
}

/// One column of a batch, to bind as an array for `UNNEST`.
fn column<R, T>(rows: &[R], value: impl FnMut(&R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// Binds the last columns of the rows messages carried: `gateway_id, epoch, seq` arrays.
fn bind_message_keys<'q, T>(
    query: Query<'q, Postgres, PgArguments>,
    rows: &[Carried<'_, T>],
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(column(rows, |c| c.message.gateway.to_string()))
        .bind(column(rows, Carried::epoch))
        .bind(column(rows, Carried::seq))
}
