//! Persistence of the alert lifecycle, the engine checkpoint, override audit and heartbeats.
//!
//! One trait, [`AlertStore`], with a PostgreSQL and an SQLite implementation generated from one
//! body (the SQL is portable: `$n` parameters, `ON CONFLICT`), so the two cannot drift apart.
//! Migrations: `server/migrations/{postgres,sqlite}/0100_alerts.sql`.
//!
//! [`AlertStore::save`] writes alerts, their transitions and the engine checkpoint in one
//! transaction: after a crash either all of a step is there or none, so a restart resumes from the
//! checkpoint and replays the same observations to the same result, with no alert lost or raised
//! twice.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row as _, SqlitePool};

use super::lifecycle::{Alert, Transition};
use super::rules::Override;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("alert store database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored snapshot no longer parses.
    #[error("stored alert snapshot does not parse: {0}")]
    Snapshot(#[from] serde_json::Error),
    /// Migrations failed.
    #[error("alert store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying may succeed (connection trouble rather than bad data).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            )
        )
    }
}

/// The engine state saved with the transitions it produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineCheckpoint {
    /// The time of the last observation or tick included.
    pub through: DateTime<Utc>,
    /// [`super::engine::Engine::checkpoint`].
    pub state: String,
}

/// Where alerts live.
pub trait AlertStore: Send + Sync {
    /// Saves alerts (full state), new transitions and optionally the engine checkpoint, atomically.
    /// Saving a transition twice changes nothing.
    fn save(
        &self,
        alerts: &[Alert],
        transitions: &[Transition],
        checkpoint: Option<&EngineCheckpoint>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every stored alert and the engine checkpoint, to resume after a restart.
    fn load(
        &self,
    ) -> impl Future<Output = Result<(Vec<Alert>, Option<EngineCheckpoint>), StoreError>> + Send;

    /// An alert's transitions, in order.
    fn transitions(
        &self,
        alert_id: uuid::Uuid,
    ) -> impl Future<Output = Result<Vec<Transition>, StoreError>> + Send;

    /// Appends a doctor's override, or its revocation ([`Override::revocation`]), to the audit trail.
    fn audit_override(&self, o: &Override) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest audit record of each patient and rule, revocations and expired ones included
    /// ([`super::rules::Overrides::restore`] keeps those in force).
    fn latest_overrides(&self) -> impl Future<Output = Result<Vec<Override>, StoreError>> + Send;

    /// Records that `component` was alive at `at`.
    fn heartbeat(
        &self,
        component: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The last heartbeat of every component.
    fn heartbeats(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, DateTime<Utc>)>, StoreError>> + Send;
}

/// The alert store on PostgreSQL / TimescaleDB.
#[derive(Clone, Debug)]
pub struct PgAlertStore {
    pool: PgPool,
}

impl PgAlertStore {
    /// Wraps a pool whose database is already migrated (by [`crate::storage::open`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Runs the migrations (all of the server's) and wraps the pool.
    pub async fn migrate(pool: PgPool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The alert store on SQLite, the embedded default.
#[derive(Clone, Debug)]
pub struct SqliteAlertStore {
    pool: SqlitePool,
}

impl SqliteAlertStore {
    /// Wraps a pool whose database is already migrated (by [`crate::storage::open`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Runs the migrations (all of the server's) and wraps the pool.
    pub async fn migrate(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// One body for both backends: the SQL is the same, only the pool type differs.
macro_rules! sql_alert_store {
    ($store:ty) => {
        impl AlertStore for $store {
            async fn save(
                &self,
                alerts: &[Alert],
                transitions: &[Transition],
                checkpoint: Option<&EngineCheckpoint>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for a in alerts {
                    sqlx::query(
                        "INSERT INTO alert (id, patient_id, rule_key, raised_at, priority, category, state, rules_version, snapshot)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (id) DO UPDATE SET state = excluded.state, snapshot = excluded.snapshot",
                    )
                    .bind(a.id.to_string())
                    .bind(&a.patient)
                    .bind(&a.key)
                    .bind(a.raised_at)
                    .bind(a.priority.as_str())
                    .bind(a.category.as_str())
                    .bind(a.state.as_str())
                    .bind(&a.rules_version)
                    .bind(serde_json::to_string(a)?)
                    .execute(&mut *tx)
                    .await?;
                }
                for t in transitions {
                    sqlx::query(
                        "INSERT INTO alert_transition (alert_id, seq, at, from_state, to_state, actor, note)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (alert_id, seq) DO NOTHING",
                    )
                    .bind(t.alert_id.to_string())
                    .bind(i64::from(t.seq))
                    .bind(t.at)
                    .bind(t.from.map(|s| s.as_str()))
                    .bind(t.to.as_str())
                    .bind(serde_json::to_string(&t.actor)?)
                    .bind(&t.note)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(c) = checkpoint {
                    sqlx::query(
                        "INSERT INTO alert_engine_checkpoint (id, through, state) VALUES (1, $1, $2)
                         ON CONFLICT (id) DO UPDATE SET through = excluded.through, state = excluded.state",
                    )
                    .bind(c.through)
                    .bind(&c.state)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn load(&self) -> Result<(Vec<Alert>, Option<EngineCheckpoint>), StoreError> {
                let rows = sqlx::query("SELECT snapshot FROM alert ORDER BY raised_at, id").fetch_all(&self.pool).await?;
                let alerts = rows
                    .iter()
                    .map(|r| serde_json::from_str::<Alert>(&r.get::<String, _>(0)))
                    .collect::<Result<Vec<_>, _>>()?;
                let checkpoint = sqlx::query("SELECT through, state FROM alert_engine_checkpoint WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| EngineCheckpoint { through: r.get(0), state: r.get(1) });
                Ok((alerts, checkpoint))
            }

            async fn transitions(&self, alert_id: uuid::Uuid) -> Result<Vec<Transition>, StoreError> {
                let rows = sqlx::query(
                    "SELECT seq, at, from_state, to_state, actor, note FROM alert_transition WHERE alert_id = $1 ORDER BY seq",
                )
                .bind(alert_id.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let state = |s: String| serde_json::from_value(serde_json::Value::String(s));
                        Ok(Transition {
                            alert_id,
                            seq: u32::try_from(r.get::<i64, _>(0)).unwrap_or(u32::MAX),
                            at: r.get(1),
                            from: r.get::<Option<String>, _>(2).map(state).transpose()?,
                            to: state(r.get(3))?,
                            actor: serde_json::from_str(&r.get::<String, _>(4))?,
                            note: r.get(5),
                        })
                    })
                    .collect()
            }

            async fn audit_override(&self, o: &Override) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO alert_rule_override_audit (patient_id, rule_id, raise_value, clear_value, set_by, reason, set_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&o.patient)
                .bind(&o.rule)
                .bind(o.raise_value)
                .bind(o.clear_value)
                .bind(&o.set_by)
                .bind(&o.reason)
                .bind(o.set_at)
                .bind(o.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn latest_overrides(&self) -> Result<Vec<Override>, StoreError> {
                // Latest by insertion order: two changes within one clock tick still order right.
                let rows = sqlx::query(
                    "SELECT patient_id, rule_id, raise_value, clear_value, set_by, reason, set_at, expires_at
                     FROM alert_rule_override_audit a
                     WHERE id = (SELECT max(id) FROM alert_rule_override_audit b
                                 WHERE b.patient_id = a.patient_id AND b.rule_id = a.rule_id)
                     ORDER BY patient_id, rule_id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| Override {
                        patient: r.get(0),
                        rule: r.get(1),
                        raise_value: r.get(2),
                        clear_value: r.get(3),
                        set_by: r.get(4),
                        reason: r.get(5),
                        set_at: r.get(6),
                        expires_at: r.get(7),
                    })
                    .collect())
            }

            async fn heartbeat(&self, component: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO service_heartbeat (component, at) VALUES ($1, $2)
                     ON CONFLICT (component) DO UPDATE SET at = excluded.at",
                )
                .bind(component)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn heartbeats(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
                let rows = sqlx::query("SELECT component, at FROM service_heartbeat ORDER BY component")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            }
        }
    };
}

sql_alert_store!(PgAlertStore);
sql_alert_store!(SqliteAlertStore);
