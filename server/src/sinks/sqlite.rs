//! SQLite storage backend: the embedded default for the demo and single-box trials.
//!
//! Same tables as TimescaleDB (`migrations/sqlite/`), with times as INTEGER microseconds since the
//! Unix epoch (UTC) so range comparisons are numeric, and arrays as JSON text. WAL mode with
//! `synchronous = FULL`: a commit is on disk before the broker is acknowledged. The queries are
//! shared with TimescaleDB ([`super::sql`]); this is SQLite's [`Dialect`].

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

use super::sql::{Carried, DedupKey, Dialect, SqlStore, to_i64};
use crate::storage::{
    BeatRecord, EcgRecord, HeartRateRecord, ObservationRecord, StorageError, ecg_codec,
};

/// The SQLite backend; cheap to clone (a pool handle).
pub type SqliteStore = SqlStore<Sqlite>;

/// How `observations.device_time` is written (ISO 8601, no time zone).
const DEVICE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self::with_pool(pool))
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` is a different database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self::with_pool(pool))
    }
}

impl Dialect for Sqlite {
    /// Microseconds since the Unix epoch.
    type Time = i64;
    /// JSON text.
    type List = String;

    fn time(at: DateTime<Utc>) -> i64 {
        at.timestamp_micros()
    }

    fn from_time(micros: i64) -> Result<DateTime<Utc>, StorageError> {
        DateTime::from_timestamp_micros(micros).ok_or_else(|| StorageError::Corrupt {
            what: "time",
            detail: micros.to_string(),
        })
    }

    fn list(items: &[String]) -> String {
        serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
    }

    fn from_list(text: String) -> Result<Vec<String>, StorageError> {
        serde_json::from_str(&text).map_err(|e| StorageError::Corrupt {
            what: "list",
            detail: e.to_string(),
        })
    }

    fn device_time(row: &SqliteRow, index: usize) -> Result<Option<NaiveDateTime>, StorageError> {
        let text: Option<String> = row.try_get(index)?;
        text.map(|t| NaiveDateTime::from_str(&t))
            .transpose()
            .map_err(|e| StorageError::Corrupt {
                what: "device time",
                detail: e.to_string(),
            })
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    const TREND_VITAL_SQL: &'static str = "SELECT $2 + ((measured_at - $2) / $1) * $1 AS b,
            min(value), avg(value), max(value), count(*)
     FROM observations
     WHERE patient_id = $4 AND loinc = $5 AND measured_at >= $2 AND measured_at < $3
     GROUP BY b ORDER BY b";
    const TREND_HEART_RATE_SQL: &'static str =
        "SELECT $2 + ((at - $2) / $1) * $1 AS b, min(bpm), avg(bpm), max(bpm), count(*)
     FROM heart_rate
     WHERE patient_id = $4 AND $5 IS NOT NULL AND at >= $2 AND at < $3
     GROUP BY b ORDER BY b";

    async fn migrate(pool: &SqlitePool) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/sqlite").run(pool).await?;
        Ok(())
    }

    async fn insert_dedup_keys(
        conn: &mut SqliteConnection,
        keys: &[(DedupKey, DateTime<Utc>)],
    ) -> Result<HashSet<DedupKey>, StorageError> {
        let mut inserted = HashSet::new();
        for (key, received_at) in keys {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO ingest_dedup (gateway_id, epoch, seq, received_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&key.gateway)
            .bind(&key.epoch)
            .bind(key.seq)
            .bind(Self::time(*received_at))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 1 {
                inserted.insert(key.clone());
            }
        }
        Ok(inserted)
    }

    async fn insert_observations(
        conn: &mut SqliteConnection,
        rows: &[Carried<'_, ObservationRecord>],
    ) -> Result<(), StorageError> {
        for row in rows {
            let r = row.record;
            let query = sqlx::query(
                "INSERT INTO observations (patient_id, measured_at, loinc, unit, value,
                   device_id, device_time, received_at, time_flags, gateway_id, epoch, seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&r.patient_id)
            .bind(Self::time(r.measured_at))
            .bind(r.vital.loinc())
            .bind(r.vital.unit().code())
            .bind(r.value)
            .bind(&r.device_id)
            .bind(
                r.device_time
                    .map(|t| t.format(DEVICE_TIME_FORMAT).to_string()),
            )
            .bind(Self::time(r.received_at))
            .bind(Self::list(&r.time_flags));
            bind_message_key(query, row).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_ecg_chunks(
        conn: &mut SqliteConnection,
        rows: &[Carried<'_, EcgRecord>],
    ) -> Result<(), StorageError> {
        for row in rows {
            let r = row.record;
            let query = sqlx::query(
                "INSERT INTO ecg_chunks (patient_id, first_sample_at, device_id, lead, stream_id,
                   first_sample_index, sample_count, sample_rate_hz, uv_per_count, lead_off,
                   samples, received_at, gateway_id, epoch, seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&r.patient_id)
            .bind(Self::time(r.first_sample_at))
            .bind(&r.device_id)
            .bind(&r.lead)
            .bind(r.stream_id as i64)
            .bind(to_i64(r.first_sample_index, "sample index")?)
            .bind(i64::try_from(r.samples.len()).unwrap_or(i64::MAX))
            .bind(r.sample_rate_hz)
            .bind(r.uv_per_count)
            .bind(r.lead_off)
            .bind(ecg_codec::pack(&r.samples))
            .bind(Self::time(r.received_at));
            bind_message_key(query, row).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_beats(
        conn: &mut SqliteConnection,
        beats: &[BeatRecord],
    ) -> Result<(), StorageError> {
        for b in beats {
            sqlx::query(
                "INSERT INTO beats (patient_id, at, stream_id, sample_index, rr_ms, late)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&b.patient_id)
            .bind(Self::time(b.at))
            .bind(b.stream_id as i64)
            .bind(to_i64(b.sample_index, "sample index")?)
            .bind(b.rr_ms)
            .bind(b.late)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn insert_heart_rate(
        conn: &mut SqliteConnection,
        rates: &[HeartRateRecord],
    ) -> Result<(), StorageError> {
        for h in rates {
            sqlx::query("INSERT INTO heart_rate (patient_id, at, bpm) VALUES ($1, $2, $3)")
                .bind(&h.patient_id)
                .bind(Self::time(h.at))
                .bind(h.bpm)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// SQLite has no chunks: retention deletes rows.
    async fn drop_chunks(
        _pool: &SqlitePool,
        _table: &'static str,
        _before: DateTime<Utc>,
    ) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}

/// Binds the last columns of the rows a message carried: `gateway_id, epoch, seq`.
fn bind_message_key<'q, T>(
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    row: &'q Carried<'_, T>,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    query
        .bind(row.message.gateway.as_str())
        .bind(row.epoch())
        .bind(row.seq())
}
