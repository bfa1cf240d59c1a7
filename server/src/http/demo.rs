//! Wiring for the HTTP-only tests and `examples/dashboard_demo.rs` (the UI without broker or
//! database): simulated patients, an in-memory SQLite audit trail, and the HTTP state over them.
//! The one-command demo runs the real server (`scripts/demo`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::audit::AuditLog;
use super::simulated::Simulation;
use super::state::{AppState, HttpConfig};

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Hashing the demo passwords failed.
    #[error("demo accounts: {0}")]
    Accounts(#[from] super::auth::password::PasswordError),
    /// The audit database could not be opened.
    #[error("audit database: {0}")]
    Database(#[from] sqlx::Error),
    /// The audit migrations failed.
    #[error("audit migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An in-memory SQLite database with the server's SQLite migrations applied.
///
/// One connection that never closes: every `:memory:` connection is its own database.
pub async fn in_memory_sqlite() -> Result<sqlx::SqlitePool, DemoError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(SqliteConnectOptions::new().in_memory(true))
        .await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// The HTTP state over simulated patients; the simulation must be run
/// ([`Simulation::run`]) for live data to flow.
pub async fn simulated_state(
    config: HttpConfig,
    seed: u64,
) -> Result<(AppState, Simulation), DemoError> {
    let simulation = Simulation::new(chrono::Utc::now(), seed)?;
    let audit = AuditLog::Sqlite(in_memory_sqlite().await?);
    Ok((
        AppState::new(config, Arc::new(simulation.clone()), audit),
        simulation,
    ))
}

/// How often the dashboard example makes the next patient deteriorate.
pub const DEMO_DETERIORATION_EVERY: Duration = Duration::from_secs(180);
