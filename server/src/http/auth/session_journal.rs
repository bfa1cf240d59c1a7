//! Sessions kept in the database beside the in-memory store, so they survive a restart.
//!
//! Written behind the store's back (a spawned task per change): a request never waits on it, and
//! a lost write only means that session is not restored. Migrations:
//! `server/migrations/*/0302_sessions.sql`.

use std::net::IpAddr;

use crate::storage::on_pool;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row as _, SqlitePool};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Hex SHA-256 of the cookie.
    pub token_sha256: String,
    pub login: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub second_factor: bool,
    pub login_address: IpAddr,
}

/// Where sessions are journalled.
#[derive(Debug, Clone)]
pub enum SessionJournal {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl SessionJournal {
    /// Inserts or updates a session.
    pub async fn record(&self, s: &StoredSession) -> Result<(), sqlx::Error> {
        on_pool!(SessionJournal, self, |pool| {
            sqlx::query(
                "INSERT INTO dashboard_sessions
                   (token_sha256, login, created_at, last_seen, second_factor, login_address)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (token_sha256) DO UPDATE SET last_seen = excluded.last_seen",
            )
            .bind(&s.token_sha256)
            .bind(&s.login)
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(s.second_factor)
            .bind(s.login_address.to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Removes a session (logout, expiry).
    pub async fn forget(&self, token_sha256: &str) -> Result<(), sqlx::Error> {
        on_pool!(SessionJournal, self, |pool| {
            sqlx::query("DELETE FROM dashboard_sessions WHERE token_sha256 = $1")
                .bind(token_sha256)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every stored session.
    pub async fn load(&self) -> Result<Vec<StoredSession>, sqlx::Error> {
        let rows = on_pool!(SessionJournal, self, |pool| {
            sqlx::query(
                "SELECT token_sha256, login, created_at, last_seen, second_factor, login_address
                 FROM dashboard_sessions",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok::<_, sqlx::Error>((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<DateTime<Utc>, _>(2)?,
                    r.try_get::<DateTime<Utc>, _>(3)?,
                    r.try_get::<bool, _>(4)?,
                    r.try_get::<String, _>(5)?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows
            .into_iter()
            .filter_map(
                |(token_sha256, login, created_at, last_seen, second_factor, address)| {
                    Some(StoredSession {
                        token_sha256,
                        login,
                        created_at,
                        last_seen,
                        second_factor,
                        login_address: address.parse().ok()?,
                    })
                },
            )
            .collect())
    }
}
