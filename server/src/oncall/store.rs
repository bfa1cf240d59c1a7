//! Rota persistence (migrations `0200_oncall_shifts.sql`), the same code for PostgreSQL and
//! SQLite.
//!
//! A rota is published for a period at a time (a month, agreed between the clinics): publishing
//! replaces every shift that starts in that period in one transaction, so a reader sees the old
//! rota or the new one, never half of each.

use chrono::{DateTime, Utc};
use std::future::Future;

use sqlx::{Database, Pool, Row};

use super::rota::{CareNetwork, Rota, RotaError, Shift};

/// Errors from the rota store.
#[derive(Debug, thiserror::Error)]
pub enum RotaStoreError {
    /// The database refused or failed (including PostgreSQL's overlap constraint).
    #[error("rota database error")]
    Database(#[from] sqlx::Error),
    /// A shift to publish starts outside the period being replaced; nothing was written.
    #[error("shift starting {starts_at} is outside the published period")]
    OutsidePeriod {
        /// The shift's start.
        starts_at: DateTime<Utc>,
    },
    /// A stored time cannot be an instant (a corrupt row).
    #[error("stored time {0} is out of range")]
    CorruptTime(i64),
    /// The shifts do not form a valid rota with the network; nothing was written.
    #[error("invalid rota")]
    Invalid(#[from] RotaError),
}

impl RotaStoreError {
    /// Whether trying again may succeed (a lost connection, a pool timeout), as opposed to a
    /// rota that will be refused every time.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            )
        )
    }
}

/// Publishing and reading rotas; implemented for PostgreSQL and SQLite pools from one body.
pub trait RotaStore {
    /// Replaces the shifts starting in `[from, to)` with `shifts`, after checking them with the
    /// network and with the shifts kept on either side.
    ///
    /// # Errors
    /// [`RotaStoreError::OutsidePeriod`] when a shift starts outside the period,
    /// [`RotaStoreError::Invalid`] when shifts overlap or name an unknown doctor or clinic,
    /// [`RotaStoreError::Database`] otherwise. Nothing is written on error.
    fn publish(
        &self,
        network: &CareNetwork,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        shifts: Vec<Shift>,
    ) -> impl Future<Output = Result<(), RotaStoreError>> + Send;

    /// The shifts overlapping `[from, to)`, in time order, with their backups in call order.
    ///
    /// # Errors
    /// [`RotaStoreError::Database`].
    fn load(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Shift>, RotaStoreError>> + Send;
}

/// How far around a published period kept shifts are checked for overlaps: longer than any shift.
const NEIGHBOURHOOD: chrono::Days = chrono::Days::new(7);

// sqlx's generic bounds for "any database with these column types" would repeat on every
// function; the two backends share one body through this macro instead. Placeholders are `$n`,
// which both PostgreSQL and SQLite accept. Times go through `$to_db`/`$from_db`: TIMESTAMPTZ in
// PostgreSQL, INTEGER microseconds in SQLite (the core tables' convention).
macro_rules! rota_store {
    ($module:ident, $db:ty, $time:ty, $to_db:expr, $from_db:expr) => {
        mod $module {
            use super::*;

            fn to_db(t: DateTime<Utc>) -> $time {
                ($to_db)(t)
            }

            fn from_db(t: $time) -> Result<DateTime<Utc>, RotaStoreError> {
                ($from_db)(t)
            }

            async fn select_overlapping(
                conn: &mut <$db as Database>::Connection,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<Shift>, RotaStoreError> {
                // One query, shifts joined with their backups; a shift's rows come together.
                let rows = sqlx::query(
                    "SELECT s.id, s.starts_at, s.ends_at, s.clinic_id, s.doctor_id, \
                     s.triage_clinic_id, b.doctor_id \
                     FROM oncall_shifts s LEFT JOIN oncall_shift_backups b ON b.shift_id = s.id \
                     WHERE s.starts_at < $2 AND s.ends_at > $1 \
                     ORDER BY s.starts_at, s.id, b.position",
                )
                .bind(to_db(from))
                .bind(to_db(to))
                .fetch_all(&mut *conn)
                .await?;
                let mut shifts: Vec<(i64, Shift)> = Vec::new();
                for row in rows {
                    let id: i64 = row.try_get(0)?;
                    if shifts.last().is_none_or(|(last, _)| *last != id) {
                        let shift = Shift {
                            starts_at: from_db(row.try_get(1)?)?,
                            ends_at: from_db(row.try_get(2)?)?,
                            clinic: row.try_get::<String, _>(3)?.into(),
                            doctor: row.try_get::<String, _>(4)?.into(),
                            backups: Vec::new(),
                            triage_clinic: row.try_get::<String, _>(5)?.into(),
                        };
                        shifts.push((id, shift));
                    }
                    let backup: Option<String> = row.try_get(6)?;
                    if let (Some(b), Some((_, shift))) = (backup, shifts.last_mut()) {
                        shift.backups.push(b.into());
                    }
                }
                Ok(shifts.into_iter().map(|(_, s)| s).collect())
            }

            impl RotaStore for Pool<$db> {
                async fn publish(
                    &self,
                    network: &CareNetwork,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                    shifts: Vec<Shift>,
                ) -> Result<(), RotaStoreError> {
                    if let Some(s) = shifts.iter().find(|s| s.starts_at < from || s.starts_at >= to) {
                        return Err(RotaStoreError::OutsidePeriod {
                            starts_at: s.starts_at,
                        });
                    }
                    let mut tx = self.begin().await?;
                    sqlx::query(
                        "DELETE FROM oncall_shift_backups WHERE shift_id IN \
                         (SELECT id FROM oncall_shifts WHERE starts_at >= $1 AND starts_at < $2)",
                    )
                    .bind(to_db(from))
                    .bind(to_db(to))
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM oncall_shifts WHERE starts_at >= $1 AND starts_at < $2")
                        .bind(to_db(from))
                        .bind(to_db(to))
                        .execute(&mut *tx)
                        .await?;
                    // Check the kept shifts around the period with the new ones before writing,
                    // so SQLite refuses overlaps as PostgreSQL's exclusion constraint does.
                    let mut around =
                        select_overlapping(&mut tx, from - NEIGHBOURHOOD, to + NEIGHBOURHOOD).await?;
                    around.extend(shifts.iter().cloned());
                    Rota::new(around, network)?;

                    for s in &shifts {
                        let id: i64 = sqlx::query(
                            "INSERT INTO oncall_shifts \
                             (starts_at, ends_at, clinic_id, doctor_id, triage_clinic_id) \
                             VALUES ($1, $2, $3, $4, $5) RETURNING id",
                        )
                        .bind(to_db(s.starts_at))
                        .bind(to_db(s.ends_at))
                        .bind(s.clinic.0.as_str())
                        .bind(s.doctor.0.as_str())
                        .bind(s.triage_clinic.0.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                        for (position, backup) in (0_i32..).zip(&s.backups) {
                            sqlx::query(
                                "INSERT INTO oncall_shift_backups (shift_id, position, doctor_id) \
                                 VALUES ($1, $2, $3)",
                            )
                            .bind(id)
                            .bind(position)
                            .bind(backup.0.as_str())
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn load(
                    &self,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> Result<Vec<Shift>, RotaStoreError> {
                    let mut conn = self.acquire().await?;
                    select_overlapping(&mut conn, from, to).await
                }
            }
        }
    };
}

rota_store!(
    postgres,
    sqlx::Postgres,
    DateTime<Utc>,
    |t| t,
    Ok::<_, RotaStoreError>
);
rota_store!(
    sqlite,
    sqlx::Sqlite,
    i64,
    |t: DateTime<Utc>| t.timestamp_micros(),
    |us| DateTime::from_timestamp_micros(us).ok_or(RotaStoreError::CorruptTime(us))
);
