//! The audit trail: who did what to which patient's data, when, from where, and
//! on what basis (care team, on-call alert, break-glass with its reason).
//!
//! Writes are fail-closed: if the audit row cannot be stored, the request that
//! wanted patient data is refused (see [`super::api::scope`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _, SqlitePool};
use utoipa::ToSchema;

use super::data::{PatientId, UserId};

/// Outcome of an access attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Data was served or changed.
    Allowed,
    /// The request was refused by the access policy.
    Refused,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Refused => "refused",
        }
    }
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who.
    pub user_id: UserId,
    /// Which patient (absent for non-patient actions such as login).
    pub patient_id: Option<PatientId>,
    /// What: method and route template, e.g. `GET /api/v1/patients/{patient_id}`, or a WS action.
    pub action: String,
    /// Allowed or refused.
    pub outcome: AuditOutcome,
    /// Basis of access (`care_team`, `on_call_alert`, `break_glass`, `administrator`).
    pub basis: Option<&'static str>,
    /// Client address.
    pub remote_addr: String,
    /// Break-glass reason.
    pub break_glass_reason: Option<String>,
}

/// A stored audit row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Monotonic id (pagination cursor).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub user_id: String,
    /// Which patient.
    pub patient_id: Option<String>,
    /// What.
    pub action: String,
    /// Allowed or refused.
    pub outcome: String,
    /// On what basis.
    pub basis: Option<String>,
    /// From where.
    pub remote_addr: String,
    /// Why (break-glass).
    pub break_glass_reason: Option<String>,
}

/// Filter for the administrators' audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this patient.
    pub patient_id: Option<String>,
    /// Only rows with id below this (keyset pagination, newest first).
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: u32,
}

/// Failure to write or read the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database refused or failed.
    #[error("audit store failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where audit rows go.
#[derive(Debug, Clone)]
pub enum AuditLog {
    /// PostgreSQL / TimescaleDB.
    Postgres(PgPool),
    /// Embedded SQLite.
    Sqlite(SqlitePool),
}

const INSERT_COLUMNS: &str =
    "user_id, patient_id, action, outcome, basis, remote_addr, break_glass_reason";

impl AuditLog {
    /// Appends rows (one statement per row, one transaction for all).
    pub async fn append(&self, entries: &[AuditEntry]) -> Result<(), AuditError> {
        if entries.is_empty() {
            return Ok(());
        }
        match self {
            AuditLog::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for e in entries {
                    sqlx::query(&format!(
                        "INSERT INTO audit_events ({INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(&e.user_id.0)
                    .bind(e.patient_id.as_ref().map(|p| p.0.as_str()))
                    .bind(&e.action)
                    .bind(e.outcome.as_str())
                    .bind(e.basis)
                    .bind(&e.remote_addr)
                    .bind(e.break_glass_reason.as_deref())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            AuditLog::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let at = Utc::now();
                for e in entries {
                    sqlx::query(&format!(
                        "INSERT INTO audit_events (at, {INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ))
                    .bind(at)
                    .bind(&e.user_id.0)
                    .bind(e.patient_id.as_ref().map(|p| p.0.as_str()))
                    .bind(&e.action)
                    .bind(e.outcome.as_str())
                    .bind(e.basis)
                    .bind(&e.remote_addr)
                    .bind(e.break_glass_reason.as_deref())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Rows matching `q`, newest first.
    pub async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        const COLUMNS: &str =
            "id, at, user_id, patient_id, action, outcome, basis, remote_addr, break_glass_reason";
        let before = q.before_id.unwrap_or(i64::MAX);
        let limit = i64::from(q.limit);
        macro_rules! fetch {
            ($pool:expr, $sql:expr) => {{
                let rows = sqlx::query($sql)
                    .bind(q.user_id.as_deref())
                    .bind(q.patient_id.as_deref())
                    .bind(before)
                    .bind(limit)
                    .fetch_all($pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(AuditRecord {
                            id: r.try_get("id")?,
                            at: r.try_get("at")?,
                            user_id: r.try_get("user_id")?,
                            patient_id: r.try_get("patient_id")?,
                            action: r.try_get("action")?,
                            outcome: r.try_get("outcome")?,
                            basis: r.try_get("basis")?,
                            remote_addr: r.try_get("remote_addr")?,
                            break_glass_reason: r.try_get("break_glass_reason")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }};
        }
        Ok(match self {
            AuditLog::Postgres(pool) => fetch!(
                pool,
                &format!(
                    "SELECT {COLUMNS} FROM audit_events \
                     WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR patient_id = $2) \
                     AND id < $3 ORDER BY id DESC LIMIT $4"
                )
            ),
            AuditLog::Sqlite(pool) => fetch!(
                pool,
                &format!(
                    "SELECT {COLUMNS} FROM audit_events \
                     WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR patient_id = ?2) \
                     AND id < ?3 ORDER BY id DESC LIMIT ?4"
                )
            ),
        })
    }
}
