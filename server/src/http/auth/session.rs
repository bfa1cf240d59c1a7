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

use super::session_journal::{SessionJournal, StoredSession};
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
    /// `last_seen` as last written to the journal.
    journaled_seen: DateTime<Utc>,
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

/// The session store: in memory, and journalled in the database when given one (see
/// [`SessionStore::journalled`]) so that a restart does not log everybody out.
#[derive(Debug, Default)]
pub struct SessionStore {
    limits: SessionLimits,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    journal: Option<Journal>,
}

/// The journal and the one task that writes to it, in the order the changes happened (a logout's
/// delete must never overtake the login's insert).
#[derive(Debug)]
struct Journal {
    reader: SessionJournal,
    writes: tokio::sync::mpsc::UnboundedSender<JournalWrite>,
}

#[derive(Debug)]
enum JournalWrite {
    Record(StoredSession),
    /// A session's hash, and who waits until its removal is written (a logout).
    Forget(String, Option<tokio::sync::oneshot::Sender<()>>),
}

async fn write_journal(
    journal: SessionJournal,
    mut writes: tokio::sync::mpsc::UnboundedReceiver<JournalWrite>,
) {
    while let Some(write) = writes.recv().await {
        let (change, result, done) = match write {
            JournalWrite::Record(stored) => ("record", journal.record(&stored).await, None),
            JournalWrite::Forget(token_sha256, done) => {
                ("forget", journal.forget(&token_sha256).await, done)
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, change, "Writing the session journal failed; a restart may not restore this change.");
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// A session's `last_seen` is journalled at most this often (a restart may then end a session
/// up to this much earlier than its idle limit would have).
const JOURNAL_SEEN_EVERY: Duration = Duration::minutes(1);

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl SessionStore {
    /// A store with the given lifetimes.
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            sessions: Mutex::default(),
            journal: None,
        }
    }

    /// A store that also keeps its sessions in `journal`, so they survive a restart. Starts the
    /// journal's writer task.
    pub fn journalled(limits: SessionLimits, journal: SessionJournal) -> Self {
        let (writes, pending) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_journal(journal.clone(), pending));
        Self {
            journal: Some(Journal {
                reader: journal,
                writes,
            }),
            ..Self::new(limits)
        }
    }

    /// Brings back the journalled sessions still within their limits; `user_of` reads each
    /// user's roles and teams afresh (`None`: the account is gone, and so is the session).
    pub async fn restore<F, Fut>(&self, now: DateTime<Utc>, user_of: F) -> usize
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Option<SessionUser>>,
    {
        let Some(journal) = &self.journal else {
            return 0;
        };
        let stored = match journal.reader.load().await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%error, "Reading the session journal failed; nobody stays logged in.");
                return 0;
            }
        };
        let mut restored = 0;
        for s in stored {
            let mut key = [0u8; 32];
            if hex::decode_to_slice(&s.token_sha256, &mut key).is_err() {
                continue;
            }
            let user = user_of(s.login.clone()).await;
            let session = user.map(|user| Session {
                user,
                created_at: s.created_at,
                last_seen: s.last_seen,
                second_factor: s.second_factor,
                login_address: s.login_address,
                journaled_seen: s.last_seen,
            });
            match session.filter(|session| !expired(session, self.limits, now)) {
                Some(session) => {
                    self.lock().insert(key, session);
                    restored += 1;
                }
                None => self.journal_forget(&key),
            }
        }
        restored
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn journal_record(&self, key: &[u8; 32], session: &Session) {
        self.journal_write(JournalWrite::Record(StoredSession {
            token_sha256: hex::encode(key),
            login: session.user.login.clone(),
            created_at: session.created_at,
            last_seen: session.last_seen,
            second_factor: session.second_factor,
            login_address: session.login_address,
        }));
    }

    fn journal_forget(&self, key: &[u8; 32]) {
        self.journal_write(JournalWrite::Forget(hex::encode(key), None));
    }

    fn journal_write(&self, write: JournalWrite) {
        if let Some(journal) = &self.journal
            && journal.writes.send(write).is_err()
        {
            tracing::error!("The session journal's writer has stopped.");
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
            journaled_seen: now,
        };
        let key = digest(&token);
        self.journal_record(&key, &session);
        let mut sessions = self.lock();
        let limits = self.limits;
        let gone: Vec<[u8; 32]> = sessions
            .iter()
            .filter(|(_, s)| expired(s, limits, now))
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            sessions.remove(k);
            self.journal_forget(k);
        }
        sessions.insert(key, session);
        token
    }

    /// Looks up and touches the session behind a cookie value.
    pub fn touch(&self, token: &str, now: DateTime<Utc>) -> Result<Session, SessionRejection> {
        let key = digest(token);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&key).ok_or(SessionRejection::Unknown)?;
        if expired(session, self.limits, now) {
            sessions.remove(&key);
            self.journal_forget(&key);
            return Err(SessionRejection::Expired);
        }
        session.last_seen = now;
        if now - session.journaled_seen >= JOURNAL_SEEN_EVERY {
            session.journaled_seen = now;
            self.journal_record(&key, session);
        }
        Ok(session.clone())
    }

    /// Ends the session behind a cookie value (logout). Returns once the journal no longer holds
    /// it, so a crash right after a logout cannot bring the session back at the restart.
    pub async fn close(&self, token: &str) {
        let key = digest(token);
        self.lock().remove(&key);
        let (done, written) = tokio::sync::oneshot::channel();
        self.journal_write(JournalWrite::Forget(hex::encode(key), Some(done)));
        if self.journal.is_some() {
            // The writer answers after the write, failed or not (a failure is logged there).
            let _ = written.await;
        }
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

    #[tokio::test]
    async fn logout_closes_and_tokens_are_unguessable() {
        let store = SessionStore::default();
        let t0 = Utc::now();
        let a = store.open(user(), true, "10.0.0.1".parse().unwrap(), t0);
        let b = store.open(user(), true, "10.0.0.1".parse().unwrap(), t0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        store.close(&a).await;
        assert!(store.touch(&a, t0).is_err());
        assert!(store.touch(&b, t0).is_ok());
    }
}
