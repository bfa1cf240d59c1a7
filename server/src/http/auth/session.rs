//! Server-side sessions behind an opaque cookie.
//!
//! The cookie carries 256 random bits; the server keeps only their SHA-256, so a
//! memory or log dump of the store does not yield usable cookies. Sessions end
//! after an idle period and at an absolute limit (a night shift), and remember
//! whether the second factor was given, so a session opened inside the clinic
//! cannot be carried outside without it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::http::access::Principal;
use crate::http::data::UserAccount;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "mimamori_session";

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login whatever happens.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(60),
            absolute: Duration::hours(13),
        }
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: SessionUser,
    /// When they logged in.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen: DateTime<Utc>,
    /// Whether the TOTP second factor was given at login.
    pub second_factor: bool,
    /// Address at login.
    pub login_address: IpAddr,
}

/// What a session knows about its user (no secrets).
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// For the access policy.
    pub principal: Principal,
    /// Login name.
    pub login: String,
    /// Name to show.
    pub display_name: String,
}

impl From<&UserAccount> for SessionUser {
    fn from(account: &UserAccount) -> Self {
        Self {
            principal: Principal {
                user_id: account.id.clone(),
                roles: account.roles.clone(),
                care_teams: account.care_teams.clone(),
            },
            login: account.login.clone(),
            display_name: account.display_name.clone(),
        }
    }
}

/// Why a cookie does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRejection {
    /// No such session (never existed, logged out, or expired and swept).
    #[error("no session")]
    Unknown,
    /// The session expired.
    #[error("session expired")]
    Expired,
}

/// In-memory session store. Sessions do not survive a restart: users log in again.
#[derive(Debug, Default)]
pub struct SessionStore {
    limits: SessionLimits,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl SessionStore {
    /// A store with the given lifetimes.
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            sessions: Mutex::default(),
        }
    }

    /// Opens a session; returns the cookie value.
    pub fn open(
        &self,
        user: SessionUser,
        second_factor: bool,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> String {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let session = Session {
            user,
            created_at: now,
            last_seen: now,
            second_factor,
            login_address: address,
        };
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let limits = self.limits;
        sessions.retain(|_, s| !expired(s, limits, now));
        sessions.insert(digest(&token), session);
        token
    }

    /// Looks up and touches the session behind a cookie value.
    pub fn touch(&self, token: &str, now: DateTime<Utc>) -> Result<Session, SessionRejection> {
        let key = digest(token);
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = sessions.get_mut(&key).ok_or(SessionRejection::Unknown)?;
        if expired(session, self.limits, now) {
            sessions.remove(&key);
            return Err(SessionRejection::Expired);
        }
        session.last_seen = now;
        Ok(session.clone())
    }

    /// Ends the session behind a cookie value (logout).
    pub fn close(&self, token: &str) {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.remove(&digest(token));
    }
}

fn expired(s: &Session, limits: SessionLimits, now: DateTime<Utc>) -> bool {
    now - s.last_seen >= limits.idle || now - s.created_at >= limits.absolute
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::data::UserId;

    fn user() -> SessionUser {
        SessionUser {
            principal: Principal {
                user_id: UserId("u".into()),
                roles: Default::default(),
                care_teams: Default::default(),
            },
            login: "u".into(),
            display_name: "U".into(),
        }
    }

    #[test]
    fn session_ends_after_idle_period_and_at_absolute_limit() {
        let store = SessionStore::new(SessionLimits {
            idle: Duration::minutes(10),
            absolute: Duration::minutes(25),
        });
        let t0 = Utc::now();
        let addr = "10.0.0.1".parse().unwrap();
        let token = store.open(user(), false, addr, t0);
        assert!(store.touch(&token, t0 + Duration::minutes(9)).is_ok());
        assert!(store.touch(&token, t0 + Duration::minutes(18)).is_ok());
        assert_eq!(
            store.touch(&token, t0 + Duration::minutes(25)).unwrap_err(),
            SessionRejection::Expired
        );
        assert_eq!(
            store.touch(&token, t0 + Duration::minutes(25)).unwrap_err(),
            SessionRejection::Unknown
        );

        let idle = store.open(user(), false, addr, t0);
        assert_eq!(
            store.touch(&idle, t0 + Duration::minutes(10)).unwrap_err(),
            SessionRejection::Expired
        );
    }

    #[test]
    fn logout_closes_and_tokens_are_unguessable() {
        let store = SessionStore::default();
        let t0 = Utc::now();
        let a = store.open(user(), true, "10.0.0.1".parse().unwrap(), t0);
        let b = store.open(user(), true, "10.0.0.1".parse().unwrap(), t0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        store.close(&a);
        assert!(store.touch(&a, t0).is_err());
        assert!(store.touch(&b, t0).is_ok());
    }
}
