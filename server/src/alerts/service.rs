//! The alert service: one task owning the engine, the lifecycle and the store.
//!
//! Observations and staff actions arrive as commands on a bounded channel; every change is
//! persisted before it is published on the alert broadcast (which the dashboards' WebSocket layer
//! and the notifier consume). A timer ticks the engine (gateway offline, missed readings) and
//! escalates unacknowledged alerts. Time comes from [`Clock`], which follows tokio's clock, so
//! escalation is tested on a paused clock.
//!
//! This is the sink that must not drop: the command channel applies backpressure, never sheds.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::engine::{Engine, Input, Signal};
use super::lifecycle::{Alert, EscalationDelays, Lifecycle, LifecycleError, Transition};
use super::rules::{Override, Overrides, RuleSet, RulesError, ThresholdRule};
use super::store::{AlertStore, EngineCheckpoint, StoreError};

/// UTC time that advances with tokio's clock (and so stops when the test clock is paused).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_utc: DateTime<Utc>,
    base: tokio::time::Instant,
}

impl Clock {
    /// A clock reading `now` at this instant.
    pub fn starting_at(now: DateTime<Utc>) -> Self {
        Self {
            base_utc: now,
            base: tokio::time::Instant::now(),
        }
    }

    /// The system clock.
    pub fn system() -> Self {
        Self::starting_at(Utc::now())
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.base;
        self.base_utc + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}

/// What the service publishes: the alert as it now is and the transition that made it so.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertEvent {
    /// The alert after the transition.
    pub alert: Alert,
    /// The transition.
    pub transition: Transition,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Persisting failed; nothing was published.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lifecycle refused the action.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A rule override was refused (unknown rule, outside the safety range, no hysteresis …);
    /// nothing was audited or changed.
    #[error("rule override refused: {0}")]
    OverrideRefused(#[from] RulesError),
    /// The service task has stopped.
    #[error("alert service has stopped")]
    Stopped,
}

/// Service settings.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Escalation delays by priority.
    pub delays: EscalationDelays,
    /// How often the engine is ticked and escalations checked, s.
    pub tick_every_s: u32,
    /// Alert broadcast capacity (events); a lagging receiver loses events, never the service.
    pub broadcast_capacity: usize,
    /// Command queue capacity; full means backpressure on ingest.
    pub command_capacity: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            delays: EscalationDelays::default(),
            tick_every_s: 5,
            broadcast_capacity: 1024,
            command_capacity: 1024,
        }
    }
}

/// A patient's threshold rules as the engine judges them now.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientThresholds {
    /// The threshold rules of the rules file in use (the defaults).
    pub rules: Vec<ThresholdRule>,
    /// The patient's overrides in force, one per rule at most.
    pub overrides: Vec<Override>,
}

/// The deterministic id of the alert a raise creates: the same raise, replayed, has the same id.
pub fn alert_id(patient: &str, key: &str, raised_at: DateTime<Utc>) -> Uuid {
    let mut h = Sha256::new();
    for part in [patient, key, &raised_at.to_rfc3339()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The state the service task owns; usable directly (synchronously awaited) in tests and tools.
#[derive(Debug)]
pub struct AlertCore<S> {
    engine: Engine,
    lifecycle: Lifecycle,
    store: S,
    /// Observation time covered by the stored checkpoint: replay starts after it.
    through: Option<DateTime<Utc>>,
    /// Latest observation time processed (ticks follow the server's clock and do not count).
    observed: Option<DateTime<Utc>>,
    /// Per patient, what the restored checkpoint had already processed: replayed observations
    /// up to there are skipped (see [`Engine::processed`]).
    replayed: std::collections::BTreeMap<String, (DateTime<Utc>, u32)>,
    /// When a tick last saved the checkpoint for readings that raised nothing.
    periodic_checkpoint: Option<DateTime<Utc>>,
    events: broadcast::Sender<AlertEvent>,
}

/// Readings that change no alert still move the engine (debounce timers, baselines); a tick saves
/// the checkpoint at most this often when they did, so a restart replays minutes, not days.
const PERIODIC_CHECKPOINT: TimeDelta = TimeDelta::seconds(60);

impl<S: AlertStore> AlertCore<S> {
    /// Resumes from the store: open alerts and the engine checkpoint, if any.
    pub async fn resume(
        store: S,
        rules: RuleSet,
        overrides: Overrides,
        config: &ServiceConfig,
    ) -> Result<Self, ServiceError> {
        let (alerts, checkpoint) = store.load().await?;
        let (engine, through) = match checkpoint {
            Some(c) => match Engine::restore(rules.clone(), overrides.clone(), &c.state) {
                Ok(engine) => (engine, Some(c.through)),
                Err(error) => {
                    tracing::error!(%error, "Engine checkpoint unreadable; starting the engine fresh.");
                    (Engine::new(rules, overrides), None)
                }
            },
            None => (Engine::new(rules, overrides), None),
        };
        let (events, _) = broadcast::channel(config.broadcast_capacity.max(1));
        Ok(Self {
            lifecycle: Lifecycle::from_alerts(config.delays, alerts),
            store,
            through,
            observed: through,
            replayed: engine.processed(),
            periodic_checkpoint: None,
            engine,
            events,
        })
    }

    /// Observations at or before this time were processed before the restart; replay only later ones.
    pub fn processed_through(&self) -> Option<DateTime<Utc>> {
        self.through
    }

    /// The engine (to set patient contexts).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The lifecycle, read-only.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The alert broadcast.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.events.subscribe()
    }

    /// Processes one observation (skipped if already processed before a restart: a patient's
    /// observations up to the checkpoint's latest time, counting those sharing that time).
    /// An observation older than the patient's latest that first arrives after the checkpoint
    /// is taken as processed too; it then misses only adherence and trend bookkeeping.
    pub async fn observe(&mut self, input: &Input) -> Result<Vec<Transition>, ServiceError> {
        if let Some((latest, remaining)) = self.replayed.get_mut(&input.patient) {
            if input.at < *latest {
                return Ok(Vec::new());
            }
            if input.at == *latest && *remaining > 0 {
                *remaining -= 1;
                return Ok(Vec::new());
            }
        }
        let signals = self.engine.observe(input);
        self.observed = Some(self.observed.map_or(input.at, |o| o.max(input.at)));
        let transitions = self.apply(&signals);
        self.persist(transitions, !signals.is_empty()).await
    }

    /// Lets time pass: engine ticks and escalations.
    pub async fn tick(&mut self, at: DateTime<Utc>) -> Result<Vec<Transition>, ServiceError> {
        let signals = self.engine.tick(at);
        let mut transitions = self.apply(&signals);
        transitions.extend(self.lifecycle.escalate_due(at));
        let periodic = self.observed != self.through
            && self
                .periodic_checkpoint
                .is_none_or(|last| at - last >= PERIODIC_CHECKPOINT);
        if periodic {
            self.periodic_checkpoint = Some(at);
        }
        self.persist(transitions, periodic || !signals.is_empty())
            .await
    }

    /// A receiver confirmed delivery, meant for `person` when the recipient is one.
    pub async fn notified(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        receiver: &str,
        person: Option<&str>,
    ) -> Result<Vec<Transition>, ServiceError> {
        let t: Vec<_> = self
            .lifecycle
            .notified_to(id, at, receiver, person)?
            .into_iter()
            .collect();
        self.persist(t, false).await
    }

    /// A staff member acknowledges.
    pub async fn acknowledge(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
    ) -> Result<Vec<Transition>, ServiceError> {
        let t = self.lifecycle.acknowledge(id, at, user)?;
        self.persist(t, false).await
    }

    /// A staff member acknowledges, escalates or resolves, with a note.
    pub async fn act(
        &mut self,
        id: Uuid,
        action: StaffAction,
        at: DateTime<Utc>,
        user: &str,
        note: &str,
    ) -> Result<Vec<Transition>, ServiceError> {
        let mut t = match action {
            StaffAction::Acknowledge => self.lifecycle.acknowledge(id, at, user)?,
            StaffAction::Escalate => vec![self.lifecycle.escalate(id, at, user, note)?],
            StaffAction::Resolve => vec![self.lifecycle.resolve(id, at, user, note)?],
        };
        if let (StaffAction::Acknowledge, Some(first)) = (action, t.first_mut())
            && !note.is_empty()
        {
            first.note = note.to_owned();
        }
        self.persist(t, false).await
    }

    /// A staff member snoozes, with a reason, for at most 30 minutes.
    pub async fn snooze(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
        minutes: u32,
        reason: &str,
    ) -> Result<Vec<Transition>, ServiceError> {
        let t = vec![self.lifecycle.snooze(id, at, user, minutes, reason)?];
        self.persist(t, false).await
    }

    /// `patient`'s threshold rules and the overrides in force at `at`.
    pub fn thresholds(&self, patient: &str, at: DateTime<Utc>) -> PatientThresholds {
        PatientThresholds {
            rules: self.engine.rules().threshold.clone(),
            overrides: self
                .engine
                .overrides()
                .in_force(patient, at)
                .cloned()
                .collect(),
        }
    }

    /// A doctor sets (or replaces) an override: checked against the rules in use, audited, then
    /// applied, so the very next observation is judged by it. If the audit fails nothing changes.
    pub async fn set_override(&mut self, o: Override) -> Result<(), ServiceError> {
        let mut next = self.engine.overrides().clone();
        next.set(self.engine.rules(), o.clone())?;
        self.store.audit_override(&o).await?;
        self.engine.set_overrides(next);
        tracing::info!(patient_id = %o.patient, rule = %o.rule, user_id = %o.set_by, expires_at = %o.expires_at, "Rule override set.");
        Ok(())
    }

    /// A doctor revokes `patient`'s override of `rule`: the revocation is audited, then the
    /// rule's default applies again. Returns the override revoked, `None` if none was in force.
    pub async fn revoke_override(
        &mut self,
        patient: &str,
        rule: &str,
        revoked_by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Override>, ServiceError> {
        let Some(revocation) = self.engine.overrides().revocation(
            self.engine.rules(),
            patient,
            rule,
            revoked_by,
            reason,
            at,
        )?
        else {
            return Ok(None);
        };
        self.store.audit_override(&revocation).await?;
        let mut next = self.engine.overrides().clone();
        let revoked = next.remove(patient, rule);
        self.engine.set_overrides(next);
        tracing::info!(patient_id = %patient, rule = %rule, user_id = %revoked_by, "Rule override revoked.");
        Ok(revoked)
    }

    fn apply(&mut self, signals: &[Signal]) -> Vec<Transition> {
        let version = self.engine.rules().version.clone();
        signals
            .iter()
            .flat_map(|s| {
                self.lifecycle
                    .apply(s, &version, alert_id(&s.patient, &s.key, s.at))
            })
            .collect()
    }

    /// Saves, then publishes. The engine checkpoint goes with every step whose signals changed the
    /// engine's alert state, in the same transaction, so the stored engine and lifecycle always
    /// agree; observations after the checkpoint are replayed by the caller after a restart.
    /// (Observations sharing the checkpoint's exact timestamp are taken as processed.)
    async fn persist(
        &mut self,
        transitions: Vec<Transition>,
        checkpoint: bool,
    ) -> Result<Vec<Transition>, ServiceError> {
        if transitions.is_empty() && !checkpoint {
            return Ok(transitions);
        }
        let alerts: Vec<Alert> = transitions
            .iter()
            .filter_map(|t| self.lifecycle.alert(t.alert_id).cloned())
            .collect();
        let cp = checkpoint
            .then_some(self.observed)
            .flatten()
            .map(|through| EngineCheckpoint {
                through,
                state: self.engine.checkpoint(),
            });
        self.store.save(&alerts, &transitions, cp.as_ref()).await?;
        if let Some(cp) = cp {
            self.through = Some(cp.through);
        }
        for t in &transitions {
            if let Some(alert) = self.lifecycle.alert(t.alert_id) {
                tracing::info!(patient_id = %alert.patient, alert_id = %alert.id, rule = %alert.key, to = t.to.as_str(), "Alert transition.");
                // No receiver is fine: nobody is watching right now, the store has it.
                let _ = self.events.send(AlertEvent {
                    alert: alert.clone(),
                    transition: t.clone(),
                });
            }
        }
        Ok(transitions)
    }
}

/// What a staff member does to an alert from the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffAction {
    /// "I have it."
    Acknowledge,
    /// "The next tier must look."
    Escalate,
    /// "Done."
    Resolve,
}

enum Command {
    Observe(
        Input,
        oneshot::Sender<Result<Vec<Transition>, ServiceError>>,
    ),
    Notified(
        Uuid,
        String,
        Option<String>,
        oneshot::Sender<Result<Vec<Transition>, ServiceError>>,
    ),
    Acknowledge(
        Uuid,
        String,
        oneshot::Sender<Result<Vec<Transition>, ServiceError>>,
    ),
    Act {
        id: Uuid,
        action: StaffAction,
        user: String,
        note: String,
        reply: oneshot::Sender<Result<Vec<Transition>, ServiceError>>,
    },
    Thresholds(
        String,
        oneshot::Sender<Result<PatientThresholds, ServiceError>>,
    ),
    SetOverride(Override, oneshot::Sender<Result<(), ServiceError>>),
    RevokeOverride {
        patient: String,
        rule: String,
        revoked_by: String,
        reason: String,
        reply: oneshot::Sender<Result<Option<Override>, ServiceError>>,
    },
}

/// A handle to the running service task.
#[derive(Clone, Debug)]
pub struct AlertHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<AlertEvent>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Observe(..) => "Observe",
            Self::Notified(..) => "Notified",
            Self::Acknowledge(..) => "Acknowledge",
            Self::Act { .. } => "Act",
            Self::Thresholds(..) => "Thresholds",
            Self::SetOverride(..) => "SetOverride",
            Self::RevokeOverride { .. } => "RevokeOverride",
        })
    }
}

impl AlertHandle {
    /// Starts the service task.
    pub fn spawn<S: AlertStore + 'static>(
        core: AlertCore<S>,
        clock: Clock,
        config: &ServiceConfig,
    ) -> Self {
        let (commands, rx) = mpsc::channel(config.command_capacity.max(1));
        let events = core.events.clone();
        let tick = std::time::Duration::from_secs(config.tick_every_s.max(1).into());
        tokio::spawn(run(core, rx, clock, tick));
        Self { commands, events }
    }

    /// The alert broadcast (for the dashboards' WebSocket layer and the notifier).
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.events.subscribe()
    }

    /// Feeds an observation; waits until its consequences are persisted.
    pub async fn observe(&self, input: Input) -> Result<Vec<Transition>, ServiceError> {
        self.call(|tx| Command::Observe(input, tx)).await
    }

    /// A receiver (webhook endpoint, dashboard session) confirmed delivery.
    pub async fn notified(
        &self,
        id: Uuid,
        receiver: &str,
    ) -> Result<Vec<Transition>, ServiceError> {
        self.notified_to(id, receiver, None).await
    }

    /// A receiver confirmed delivery meant for `person` (registry user id), who may then open
    /// the patient's record while the alert is open.
    pub async fn notified_to(
        &self,
        id: Uuid,
        receiver: &str,
        person: Option<&str>,
    ) -> Result<Vec<Transition>, ServiceError> {
        let (receiver, person) = (receiver.to_owned(), person.map(str::to_owned));
        self.call(|tx| Command::Notified(id, receiver, person, tx))
            .await
    }

    /// A staff member acknowledges.
    pub async fn acknowledge(&self, id: Uuid, user: &str) -> Result<Vec<Transition>, ServiceError> {
        let user = user.to_owned();
        self.call(|tx| Command::Acknowledge(id, user, tx)).await
    }

    /// A staff member acknowledges, escalates or resolves, with a note.
    pub async fn act(
        &self,
        id: Uuid,
        action: StaffAction,
        user: &str,
        note: &str,
    ) -> Result<Vec<Transition>, ServiceError> {
        let (user, note) = (user.to_owned(), note.to_owned());
        self.call(|reply| Command::Act {
            id,
            action,
            user,
            note,
            reply,
        })
        .await
    }

    /// `patient`'s threshold rules and the overrides in force now.
    pub async fn thresholds(&self, patient: &str) -> Result<PatientThresholds, ServiceError> {
        let patient = patient.to_owned();
        self.call(|tx| Command::Thresholds(patient, tx)).await
    }

    /// A doctor sets an override (stamped by the caller with `set_at`); applies from the next
    /// observation once audited.
    pub async fn set_override(&self, o: Override) -> Result<(), ServiceError> {
        self.call(|tx| Command::SetOverride(o, tx)).await
    }

    /// A doctor revokes `patient`'s override of `rule` now; `None` if none was in force.
    pub async fn revoke_override(
        &self,
        patient: &str,
        rule: &str,
        revoked_by: &str,
        reason: &str,
    ) -> Result<Option<Override>, ServiceError> {
        let (patient, rule) = (patient.to_owned(), rule.to_owned());
        let (revoked_by, reason) = (revoked_by.to_owned(), reason.to_owned());
        self.call(|reply| Command::RevokeOverride {
            patient,
            rule,
            revoked_by,
            reason,
            reply,
        })
        .await
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ServiceError>>) -> Command,
    ) -> Result<T, ServiceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)?
    }
}

async fn run<S: AlertStore>(
    mut core: AlertCore<S>,
    mut rx: mpsc::Receiver<Command>,
    clock: Clock,
    tick: std::time::Duration,
) {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = rx.recv() => {
                let Some(command) = command else { break };
                let now = clock.now();
                // The caller may have gone; the change is persisted either way.
                match command {
                    Command::Observe(input, reply) => { let _ = reply.send(core.observe(&input).await); }
                    Command::Notified(id, who, person, reply) => { let _ = reply.send(core.notified(id, now, &who, person.as_deref()).await); }
                    Command::Acknowledge(id, who, reply) => { let _ = reply.send(core.acknowledge(id, now, &who).await); }
                    Command::Act { id, action, user, note, reply } => { let _ = reply.send(core.act(id, action, now, &user, &note).await); }
                    Command::Thresholds(patient, reply) => { let _ = reply.send(Ok(core.thresholds(&patient, now))); }
                    Command::SetOverride(o, reply) => { let _ = reply.send(core.set_override(o).await); }
                    Command::RevokeOverride { patient, rule, revoked_by, reason, reply } => { let _ = reply.send(core.revoke_override(&patient, &rule, &revoked_by, &reason, now).await); }
                }
            }
            _ = ticker.tick() => {
                if let Err(error) = core.tick(clock.now()).await {
                    // Retried on the next tick: escalation is late, never lost.
                    tracing::error!(%error, "Alert tick failed.");
                }
            }
        }
    }
}
