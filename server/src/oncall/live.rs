//! The routing `serve` runs: the rota file's shifts over the care network read from the registry,
//! rebuilt while the server runs so that a patient, clinic or doctor added or changed in the
//! registry (`admin seed`, the API) is routable without a restart.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::registry::Directory;
use crate::registry::directory::RoutingRecords;
use crate::storage::StorageError;

use super::coverage::CoverageConfig;
use super::escalation::{AlertRouting, EscalationPlan};
use super::network::{self, NetworkError};
use super::rota::{PatientId, Shift};
use super::route::{OnCallResolver, RouteError};

/// How often the registry is read again. The registry is written by other processes (the admin
/// command, the API) without telling the server, so polling is the one simple way to see their
/// changes; three small reads every few seconds cost nothing, and this matches how long the HTTP
/// edge caches the same tables. An alert for a patient registered moments ago that finds no
/// route is not lost: it becomes a delivery-failure alarm and is notified again on escalation.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Why the routing could not be (re)built.
#[derive(Debug, thiserror::Error)]
pub enum LiveRoutingError {
    /// The registry could not be read.
    #[error("cannot read the registry for on-call routing")]
    Registry(#[from] StorageError),
    /// The rota does not fit the registry.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

struct Inner {
    directory: Directory,
    config: CoverageConfig,
    shifts: Vec<Shift>,
    resolver: RwLock<Arc<OnCallResolver>>,
    /// The records the last rebuild was tried with, good or not: unchanged records are not
    /// rebuilt (nor their error logged) again.
    last_records: Mutex<RoutingRecords>,
}

/// On-call routing over the registry, current to within [`REFRESH_INTERVAL`]. Cheap to clone.
#[derive(Clone)]
pub struct LiveRouting(Arc<Inner>);

impl std::fmt::Debug for LiveRouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRouting").finish_non_exhaustive()
    }
}

impl LiveRouting {
    /// Reads the registry and builds the routing for `shifts`.
    ///
    /// # Errors
    /// An unreadable registry, or a rota naming a clinic or user the registry does not have (the
    /// error names the id).
    pub async fn start(
        directory: Directory,
        config: CoverageConfig,
        shifts: Vec<Shift>,
    ) -> Result<Self, LiveRoutingError> {
        let records = directory.routing_records().await?;
        let (network, rota) = network::build(&records, shifts.clone())?;
        let resolver = OnCallResolver::new(config.clone(), network, rota);
        Ok(Self(Arc::new(Inner {
            directory,
            config,
            shifts,
            resolver: RwLock::new(Arc::new(resolver)),
            last_records: Mutex::new(records),
        })))
    }

    /// Reads the registry again and, when it changed, rebuilds. On error the last good routing
    /// stays in use.
    ///
    /// # Errors
    /// As [`Self::start`]; a failed rebuild is reported once, not again until the records change.
    pub async fn refresh(&self) -> Result<(), LiveRoutingError> {
        let records = self.0.directory.routing_records().await?;
        {
            let mut last = self
                .0
                .last_records
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *last == records {
                return Ok(());
            }
            *last = records.clone();
        }
        let (network, rota) = network::build(&records, self.0.shifts.clone())?;
        let resolver = OnCallResolver::new(self.0.config.clone(), network, rota);
        *self
            .0
            .resolver
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(resolver);
        tracing::info!("On-call routing rebuilt from the registry.");
        Ok(())
    }

    /// Refreshes every [`REFRESH_INTERVAL`] until the task is aborted, logging failures.
    pub async fn keep_current(self) {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = self.refresh().await {
                tracing::error!(%error, "On-call routing not rebuilt; the last good one stays in use.");
            }
        }
    }

    fn current(&self) -> Arc<OnCallResolver> {
        self.0
            .resolver
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AlertRouting for LiveRouting {
    fn escalation_plan(
        &self,
        patient: &PatientId,
        raised_at: DateTime<Utc>,
    ) -> Result<EscalationPlan, RouteError> {
        self.current().escalation_plan(patient, raised_at)
    }
}
