//! Shared state of the HTTP edge and its configuration.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::access::{self, AccessBasis, AccessFacts, BreakGlassGrant, Principal, RoutedAlert};
use super::api::health::HttpMetrics;
use super::audit::{AuditEntry, AuditLog, AuditOutcome};
use super::auth::network::ClinicNetworks;
use super::auth::rate_limit::{LoginLimits, LoginRateLimiter};
use super::auth::session::{SessionLimits, SessionStore};
use super::data::{ClinicalData, PatientId};
use super::error::ApiError;

/// Configuration of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Addresses inside the clinics; outside them TOTP is required.
    pub clinic_networks: ClinicNetworks,
    /// Mark cookies `Secure` (set when served behind TLS).
    pub secure_cookies: bool,
    /// Origins allowed for WebSocket and state-changing requests besides the
    /// request's own `Host` (e.g. `https://mimamori.example.jp`).
    pub extra_origins: Vec<String>,
    /// Login throttling.
    pub login_limits: LoginLimits,
    /// Session lifetimes.
    pub session_limits: SessionLimits,
    /// Break-glass grants last this long.
    pub break_glass_duration: chrono::Duration,
    /// WebSocket limits.
    pub ws: WsLimits,
}

/// Per-connection WebSocket limits.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Live ECG frames queued per connection before the oldest are dropped (at 4 frames/s, 32 ≈ 8 s).
    pub ecg_queue_frames: usize,
    /// Alerts and state changes queued per connection; a client this far behind is disconnected
    /// (it reconnects and reloads) rather than silently missing one.
    pub event_queue_messages: usize,
    /// Ping interval; a client silent for three intervals is dropped.
    pub heartbeat: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            clinic_networks: ClinicNetworks::new(vec![
                ipnet::IpNet::from(IpAddr::from([127, 0, 0, 1])),
                ipnet::IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ]),
            secure_cookies: false,
            extra_origins: Vec::new(),
            login_limits: LoginLimits::default(),
            session_limits: SessionLimits::default(),
            break_glass_duration: chrono::Duration::hours(1),
            ws: WsLimits {
                ecg_queue_frames: 32,
                event_queue_messages: 1024,
                heartbeat: Duration::from_secs(15),
            },
        }
    }
}

/// State shared by all handlers.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
/// The shared parts behind [`AppState`].
pub struct Inner {
    pub(crate) config: HttpConfig,
    pub(crate) data: Arc<dyn ClinicalData>,
    pub(crate) sessions: SessionStore,
    pub(crate) login_limiter: Mutex<LoginRateLimiter>,
    pub(crate) audit: AuditLog,
    pub(crate) break_glass: Mutex<Vec<BreakGlassGrant>>,
    /// TOTP secrets offered to a session and not yet confirmed, by session token.
    pub(crate) pending_totp: Mutex<std::collections::HashMap<String, String>>,
    pub(crate) metrics: HttpMetrics,
    pub(crate) extra_metrics: Option<ExtraMetrics>,
}

/// Renders the server core's Prometheus counters after the HTTP edge's own.
pub struct ExtraMetrics(pub Box<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

impl std::ops::Deref for ExtraMetrics {
    type Target = dyn Fn() -> String + Send + Sync;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for dyn ClinicalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClinicalData")
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// State over a data port and an audit store.
    pub fn new(config: HttpConfig, data: Arc<dyn ClinicalData>, audit: AuditLog) -> Self {
        Self(Arc::new(Inner {
            sessions: SessionStore::new(config.session_limits),
            login_limiter: Mutex::new(LoginRateLimiter::new(config.login_limits)),
            config,
            data,
            audit,
            break_glass: Mutex::default(),
            pending_totp: Mutex::default(),
            metrics: HttpMetrics::default(),
            extra_metrics: None,
        }))
    }

    /// Keeps sessions in `journal` too, so they survive a restart (call before serving).
    pub fn with_session_journal(
        mut self,
        journal: crate::http::auth::session_journal::SessionJournal,
    ) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => {
                inner.sessions = SessionStore::journalled(inner.config.session_limits, journal);
            }
            None => tracing::error!("Session journal added after the state was shared; ignored."),
        }
        self
    }

    /// Brings back the journalled sessions, each user's roles and teams read afresh.
    pub async fn restore_sessions(&self) -> usize {
        let data = self.data.clone();
        self.sessions
            .restore(Utc::now(), move |login| {
                let data = data.clone();
                async move {
                    match data.user_by_login(&login).await {
                        Ok(account) => account.as_ref().map(super::auth::session::SessionUser::from),
                        Err(error) => {
                            tracing::error!(%error, "Reading an account to restore its session failed.");
                            None
                        }
                    }
                }
            })
            .await
    }

    /// Adds the core's metrics renderer to `/metrics` (call before serving).
    pub fn with_extra_metrics(
        mut self,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.extra_metrics = Some(ExtraMetrics(Box::new(render))),
            None => tracing::error!("Extra metrics added after the state was shared; ignored."),
        }
        self
    }

    /// The one access check for patient data: decides, audits, and refuses.
    /// `action` names what is being done (route template or WS action).
    pub async fn authorize(
        &self,
        user: &Principal,
        patient_id: &PatientId,
        action: &str,
        remote: IpAddr,
    ) -> Result<AccessBasis, ApiError> {
        let basis = self.decide(user, patient_id).await?;
        let entry = AuditEntry {
            user_id: user.user_id.clone(),
            patient_id: Some(patient_id.clone()),
            action: action.to_owned(),
            outcome: if basis.is_some() {
                AuditOutcome::Allowed
            } else {
                AuditOutcome::Refused
            },
            basis: basis.as_ref().map(AccessBasis::as_str),
            remote_addr: remote.to_string(),
            break_glass_reason: basis
                .as_ref()
                .and_then(|b| b.break_glass_reason().map(str::to_owned)),
        };
        // Fail closed: no audit row, no data.
        self.audit.append(std::slice::from_ref(&entry)).await?;
        basis.ok_or(ApiError::PatientOutOfScope)
    }

    /// The policy decision without auditing (lists audit each patient they return).
    pub async fn decide(
        &self,
        user: &Principal,
        patient_id: &PatientId,
    ) -> Result<Option<AccessBasis>, ApiError> {
        let patient = match self.data.patient(patient_id).await {
            Ok(p) => p,
            // An unknown patient is refused like a foreign one: ids are not probed.
            Err(super::data::DataError::PatientNotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let routed = self.routed_alerts().await?;
        let grants = self.live_grants(Utc::now());
        Ok(access::decide(
            user,
            &AccessFacts {
                patient_id,
                patient_care_teams: &patient.summary.care_teams,
                routed_alerts: &routed,
                break_glass: &grants,
                now: Utc::now(),
            },
        ))
    }

    /// Open alerts that are routed to someone.
    pub async fn routed_alerts(&self) -> Result<Vec<RoutedAlert>, ApiError> {
        Ok(self
            .data
            .alerts(true)
            .await?
            .into_iter()
            .filter_map(|a| {
                a.routed_to.map(|to| RoutedAlert {
                    alert_id: a.id,
                    patient_id: a.patient_id,
                    routed_to: to,
                })
            })
            .collect())
    }

    pub(crate) fn live_grants(&self, now: DateTime<Utc>) -> Vec<BreakGlassGrant> {
        let mut grants = self
            .break_glass
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        grants.retain(|g| g.expires_at > now);
        grants.clone()
    }
}
