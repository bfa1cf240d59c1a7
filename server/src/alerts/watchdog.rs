//! The watchdog: a small process of its own that pages the operator when a part of the server has
//! gone silent.
//!
//! The server's parts write heartbeats ([`super::store::AlertStore::heartbeat`]: `ingest`,
//! `broker_subscription`, `notifier`); the watchdog reads them and pages the operator by signed
//! webhook when one is older than the limit (2 minutes) or missing, once per silence, and again
//! when it recovers. It shares nothing with the server process but the database, so a hung or
//! crashed server cannot silence it.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::store::{AlertStore, StoreError};
use super::webhook::{DeliveryError, Webhook};

/// The components that must keep beating.
pub const COMPONENTS: [&str; 3] = ["ingest", "broker_subscription", "notifier"];

/// Silence that pages, s.
pub const DEFAULT_SILENCE_S: u32 = 120;

/// A page to the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page {
    /// Idempotency key: component and the start of the episode.
    pub id: String,
    /// The component.
    pub component: String,
    /// Silent, or beating again.
    pub silent: bool,
    /// Its last heartbeat, if any.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// When the watchdog noticed.
    pub at: DateTime<Utc>,
}

/// Why a watchdog round failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// Heartbeats could not be read (which is itself reported as a page of `database`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operator could not be paged.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

/// Which components are silent, remembered between rounds so each silence pages once.
#[derive(Debug, Default)]
pub struct Watchdog {
    silence: TimeDelta,
    paged: BTreeSet<String>,
}

impl Watchdog {
    /// A watchdog paging after `silence_s` seconds without a heartbeat.
    pub fn new(silence_s: u32) -> Self {
        Self {
            silence: TimeDelta::seconds(silence_s.into()),
            paged: BTreeSet::new(),
        }
    }

    /// The pages due at `now` given the last heartbeats (pure).
    pub fn check(
        &mut self,
        now: DateTime<Utc>,
        heartbeats: &[(String, DateTime<Utc>)],
    ) -> Vec<Page> {
        let mut pages = Vec::new();
        for component in COMPONENTS {
            let last = heartbeats
                .iter()
                .find(|(c, _)| c == component)
                .map(|(_, at)| *at);
            let silent = last.is_none_or(|l| now - l > self.silence);
            let was_paged = self.paged.contains(component);
            if silent != was_paged {
                if silent {
                    self.paged.insert(component.to_owned());
                } else {
                    self.paged.remove(component);
                }
                let since = last.map_or_else(|| "never".to_owned(), |l| l.to_rfc3339());
                pages.push(Page {
                    id: format!(
                        "{component}:{since}:{}",
                        if silent { "silent" } else { "recovered" }
                    ),
                    component: component.to_owned(),
                    silent,
                    last_heartbeat: last,
                    at: now,
                });
            }
        }
        pages
    }

    /// One round: read heartbeats, page the operator. A page that cannot be delivered is not
    /// forgotten: the component is un-marked so the next round pages again.
    pub async fn round(
        &mut self,
        store: &impl AlertStore,
        operator: &Webhook,
        now: DateTime<Utc>,
    ) -> Result<Vec<Page>, WatchdogError> {
        let heartbeats = store.heartbeats().await?;
        let pages = self.check(now, &heartbeats);
        for page in &pages {
            if let Err(error) = operator.send(&page.id, page).await {
                if page.silent {
                    self.paged.remove(&page.component);
                } else {
                    self.paged.insert(page.component.clone());
                }
                return Err(error.into());
            }
        }
        Ok(pages)
    }
}
