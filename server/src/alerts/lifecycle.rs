//! The alert lifecycle, pure: raised → notified → acknowledged → resolved, with escalation of
//! unacknowledged alerts, clearing while unacknowledged, latching of high-priority alerts and
//! snooze with a reason.
//!
//! Every change is a [`Transition`] saying who made it and when; the store persists the alert and
//! its transitions together, so a restart resumes exactly where the lifecycle was.
//!
//! Latching (IEC 60601-1-8 6.2): a high-priority alert whose condition clears before anyone
//! acknowledged it stays open as [`AlertState::ClearedUnacknowledged`] until acknowledged; lower
//! priorities close when their condition clears.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::{Category, Change, Signal};
use super::finding::Finding;
use super::rules::Priority;
use crate::language::Language;

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, no delivery confirmed yet.
    Raised,
    /// A receiver confirmed delivery.
    Notified,
    /// Nobody acknowledged in time: the next tier is being notified.
    Escalated,
    /// Someone took responsibility.
    Acknowledged,
    /// The condition ended before anyone acknowledged (latched alerts stay open in this state).
    ClearedUnacknowledged,
    /// Closed.
    Resolved,
}

impl AlertState {
    /// The state as a clinician reads it, in `language`.
    pub const fn label(self, language: Language) -> &'static str {
        match (self, language) {
            (Self::Raised, Language::Ja) => "発生",
            (Self::Raised, Language::En) => "raised",
            (Self::Notified, Language::Ja) => "通知済",
            (Self::Notified, Language::En) => "notified",
            (Self::Escalated, Language::Ja) => "エスカレート済",
            (Self::Escalated, Language::En) => "escalated",
            (Self::Acknowledged, Language::Ja) => "確認済",
            (Self::Acknowledged, Language::En) => "acknowledged",
            (Self::ClearedUnacknowledged, Language::Ja) => "解消（未確認）",
            (Self::ClearedUnacknowledged, Language::En) => "cleared, unacknowledged",
            (Self::Resolved, Language::Ja) => "解決済",
            (Self::Resolved, Language::En) => "resolved",
        }
    }

    /// The text stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Notified => "notified",
            Self::Escalated => "escalated",
            Self::Acknowledged => "acknowledged",
            Self::ClearedUnacknowledged => "cleared_unacknowledged",
            Self::Resolved => "resolved",
        }
    }

    fn unacknowledged(self) -> bool {
        matches!(
            self,
            Self::Raised | Self::Notified | Self::Escalated | Self::ClearedUnacknowledged
        )
    }
}

/// Who made a transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The rules engine or the escalation timer.
    System,
    /// A staff member (user id).
    User(String),
    /// A receiver that confirmed delivery (webhook endpoint, dashboard session).
    Receiver(String),
}

/// One persisted change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The alert.
    pub alert_id: Uuid,
    /// 0-based position in the alert's history.
    pub seq: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// State before (`None` for the raise).
    pub from: Option<AlertState>,
    /// State after.
    pub to: AlertState,
    /// Who.
    pub actor: Actor,
    /// Why (snooze reason, escalation level, the detail of the raise …).
    pub note: String,
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id (also the webhook idempotency key's root).
    pub id: Uuid,
    /// Whose.
    pub patient: String,
    /// The engine's alert key.
    pub key: String,
    /// Priority.
    pub priority: Priority,
    /// Category.
    pub category: Category,
    /// What was found, in English (logs, the webhook's text); [`Alert::finding`] is the same as
    /// data, for readers that phrase it in their own language.
    pub detail: String,
    /// What was found. Absent from alerts stored before findings were data.
    #[serde(default)]
    pub finding: Option<Finding>,
    /// Technical conditions that qualified it.
    pub qualified_by: Vec<String>,
    /// Version of the rules file that raised it.
    pub rules_version: String,
    /// When raised.
    pub raised_at: DateTime<Utc>,
    /// Current state.
    pub state: AlertState,
    /// Whether the underlying condition still holds.
    pub condition_active: bool,
    /// Escalation tier being notified (0 = first).
    pub level: u32,
    /// When the next escalation is due, if unacknowledged.
    pub escalate_at: Option<DateTime<Utc>>,
    /// Escalation and re-notification are held until then.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Number of transitions so far.
    pub transitions: u32,
    /// The person the current escalation level notifies (a registry user id): they may open the
    /// patient's record while the alert is open.
    #[serde(default)]
    pub routed_to: Option<String>,
}

impl Alert {
    /// A short title in `language` (the rule key for alerts stored before findings were data).
    pub fn title(&self, language: Language) -> String {
        self.finding
            .as_ref()
            .map_or_else(|| self.key.clone(), |f| f.title(language))
    }

    /// What was found, in `language` (English for alerts stored before findings were data).
    pub fn summary(&self, language: Language) -> String {
        self.finding
            .as_ref()
            .map_or_else(|| self.detail.clone(), |f| f.phrase(language))
    }

    /// Whether the alert is still open.
    pub fn is_open(&self) -> bool {
        match self.state {
            AlertState::Resolved => false,
            // Latched alerts stay open until acknowledged; the others close with their condition.
            AlertState::ClearedUnacknowledged => self.latched(),
            _ => true,
        }
    }

    /// High-priority alerts latch.
    pub fn latched(&self) -> bool {
        self.priority == Priority::High
    }
}

/// Escalation delays by priority; `None` means the priority never escalates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationDelays {
    /// High priority, s.
    pub high_s: Option<u32>,
    /// Medium priority, s.
    pub medium_s: Option<u32>,
    /// Low priority, s.
    pub low_s: Option<u32>,
}

impl Default for EscalationDelays {
    /// High after 5 min, medium after 15 min, low never (a care-team task, not a page).
    fn default() -> Self {
        Self {
            high_s: Some(300),
            medium_s: Some(900),
            low_s: None,
        }
    }
}

impl EscalationDelays {
    fn of(self, p: Priority) -> Option<TimeDelta> {
        match p {
            Priority::High => self.high_s,
            Priority::Medium => self.medium_s,
            Priority::Low => self.low_s,
        }
        .map(|s| TimeDelta::seconds(s.into()))
    }
}

/// Longest snooze, min.
pub const MAX_SNOOZE_MIN: u32 = 30;

/// Why an action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    /// No such alert.
    #[error("no alert {0}")]
    UnknownAlert(Uuid),
    /// The action does not apply in the alert's state.
    #[error("alert {id} is {state:?}: cannot {action}")]
    WrongState {
        /// The alert.
        id: Uuid,
        /// Its state.
        state: AlertState,
        /// What was asked.
        action: &'static str,
    },
    /// Snooze longer than allowed.
    #[error("snooze of {0} min exceeds {MAX_SNOOZE_MIN} min")]
    SnoozeTooLong(u32),
    /// Snooze without a reason.
    #[error("snooze needs a reason")]
    SnoozeWithoutReason,
}

/// All alerts, open and closed, and the index of open ones by (patient, key) for de-duplication.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    delays: EscalationDelays,
    alerts: BTreeMap<Uuid, Alert>,
    open: BTreeMap<(String, String), Uuid>,
}

impl Lifecycle {
    /// An empty lifecycle.
    pub fn new(delays: EscalationDelays) -> Self {
        Self {
            delays,
            alerts: BTreeMap::new(),
            open: BTreeMap::new(),
        }
    }

    /// Resumes from persisted alerts.
    pub fn from_alerts(delays: EscalationDelays, alerts: impl IntoIterator<Item = Alert>) -> Self {
        let mut l = Self::new(delays);
        for a in alerts {
            if a.is_open() {
                l.open.insert((a.patient.clone(), a.key.clone()), a.id);
            }
            l.alerts.insert(a.id, a);
        }
        l
    }

    /// An alert by id.
    pub fn alert(&self, id: Uuid) -> Option<&Alert> {
        self.alerts.get(&id)
    }

    /// Every alert, by id.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// The open alert of a patient's key.
    pub fn open_alert(&self, patient: &str, key: &str) -> Option<&Alert> {
        self.open
            .get(&(patient.to_owned(), key.to_owned()))
            .and_then(|id| self.alerts.get(id))
    }

    /// Applies an engine signal. A raise for a key that already has an open alert is a duplicate
    /// (the condition returned while the alert is still latched, or the signal was replayed after a
    /// restart) and changes nothing but the condition flag. `new_id` names a new alert.
    pub fn apply(&mut self, signal: &Signal, rules_version: &str, new_id: Uuid) -> Vec<Transition> {
        let open_key = (signal.patient.clone(), signal.key.clone());
        match &signal.change {
            Change::Raise {
                priority,
                category,
                finding,
                qualified_by,
            } => {
                if let Some(alert) = self
                    .open
                    .get(&open_key)
                    .and_then(|id| self.alerts.get_mut(id))
                {
                    alert.condition_active = true;
                    return Vec::new();
                }
                // Replayed raise of an alert that has since closed: same (patient, key, time).
                if self.alerts.values().any(|a| {
                    a.patient == signal.patient && a.key == signal.key && a.raised_at == signal.at
                }) {
                    return Vec::new();
                }
                let alert = Alert {
                    id: new_id,
                    patient: signal.patient.clone(),
                    key: signal.key.clone(),
                    priority: *priority,
                    category: *category,
                    detail: finding.to_string(),
                    finding: Some(finding.clone()),
                    qualified_by: qualified_by.clone(),
                    rules_version: rules_version.to_owned(),
                    raised_at: signal.at,
                    state: AlertState::Raised,
                    condition_active: true,
                    level: 0,
                    escalate_at: self.delays.of(*priority).map(|d| signal.at + d),
                    snoozed_until: None,
                    transitions: 0,
                    routed_to: None,
                };
                self.alerts.insert(new_id, alert);
                self.open.insert(open_key, new_id);
                vec![self.record(
                    new_id,
                    signal.at,
                    None,
                    AlertState::Raised,
                    Actor::System,
                    finding.to_string(),
                )]
            }
            Change::Clear => {
                let Some(id) = self.open.get(&open_key).copied() else {
                    return Vec::new();
                };
                let Some(alert) = self.alerts.get_mut(&id) else {
                    return Vec::new();
                };
                alert.condition_active = false;
                let from = alert.state;
                let to = match from {
                    AlertState::Acknowledged => AlertState::Resolved,
                    AlertState::Raised | AlertState::Notified | AlertState::Escalated => {
                        AlertState::ClearedUnacknowledged
                    }
                    AlertState::ClearedUnacknowledged | AlertState::Resolved => return Vec::new(),
                };
                let t = self.record(
                    id,
                    signal.at,
                    Some(from),
                    to,
                    Actor::System,
                    "condition cleared".into(),
                );
                self.close_if_done(id);
                vec![t]
            }
        }
    }

    /// A receiver confirmed delivery.
    pub fn notified(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        receiver: &str,
    ) -> Result<Option<Transition>, LifecycleError> {
        self.notified_to(id, at, receiver, None)
    }

    /// A receiver confirmed delivery meant for `person` (a registry user id), who may then open
    /// the patient's record while the alert is open.
    pub fn notified_to(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        receiver: &str,
        person: Option<&str>,
    ) -> Result<Option<Transition>, LifecycleError> {
        let alert = self
            .alerts
            .get_mut(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        match alert.state {
            AlertState::Raised | AlertState::Escalated => {
                let from = alert.state;
                let level = alert.level;
                if let Some(person) = person {
                    alert.routed_to = Some(person.to_owned());
                }
                let note = match person {
                    Some(person) => format!("level {level}, routed to {person}"),
                    None => format!("level {level}"),
                };
                Ok(Some(self.record(
                    id,
                    at,
                    Some(from),
                    AlertState::Notified,
                    Actor::Receiver(receiver.to_owned()),
                    note,
                )))
            }
            // Later confirmations (another tier, a second dashboard) change no state.
            _ => Ok(None),
        }
    }

    /// A staff member takes responsibility.
    pub fn acknowledge(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
    ) -> Result<Vec<Transition>, LifecycleError> {
        let alert = self
            .alerts
            .get(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        if !alert.state.unacknowledged() {
            return Err(LifecycleError::WrongState {
                id,
                state: alert.state,
                action: "acknowledge",
            });
        }
        let from = alert.state;
        let condition_active = alert.condition_active;
        let mut out = vec![self.record(
            id,
            at,
            Some(from),
            AlertState::Acknowledged,
            Actor::User(user.to_owned()),
            String::new(),
        )];
        if !condition_active {
            out.push(self.record(
                id,
                at,
                Some(AlertState::Acknowledged),
                AlertState::Resolved,
                Actor::User(user.to_owned()),
                "condition already cleared".into(),
            ));
            self.close_if_done(id);
        }
        Ok(out)
    }

    /// A staff member closes an acknowledged alert.
    pub fn resolve(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
        note: &str,
    ) -> Result<Transition, LifecycleError> {
        let alert = self
            .alerts
            .get(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        if alert.state != AlertState::Acknowledged {
            return Err(LifecycleError::WrongState {
                id,
                state: alert.state,
                action: "resolve",
            });
        }
        let t = self.record(
            id,
            at,
            Some(AlertState::Acknowledged),
            AlertState::Resolved,
            Actor::User(user.to_owned()),
            note.to_owned(),
        );
        self.close_if_done(id);
        Ok(t)
    }

    /// A staff member passes an open alert to the next tier now, acknowledged or not: it becomes
    /// unacknowledged again at the next level, and escalates further on its own if nobody takes it.
    pub fn escalate(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
        note: &str,
    ) -> Result<Transition, LifecycleError> {
        let delays = self.delays;
        let alert = self
            .alerts
            .get_mut(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        if alert.state == AlertState::Resolved {
            return Err(LifecycleError::WrongState {
                id,
                state: alert.state,
                action: "escalate",
            });
        }
        let from = alert.state;
        alert.snoozed_until = None;
        let to = next_tier(alert, delays, at);
        Ok(self.record(
            id,
            at,
            Some(from),
            to,
            Actor::User(user.to_owned()),
            note.to_owned(),
        ))
    }

    /// Holds escalation of an unacknowledged alert for at most [`MAX_SNOOZE_MIN`], with a reason.
    /// The state does not change; the snooze is recorded as a transition to the same state.
    pub fn snooze(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        user: &str,
        minutes: u32,
        reason: &str,
    ) -> Result<Transition, LifecycleError> {
        if minutes > MAX_SNOOZE_MIN {
            return Err(LifecycleError::SnoozeTooLong(minutes));
        }
        if reason.trim().is_empty() {
            return Err(LifecycleError::SnoozeWithoutReason);
        }
        let alert = self
            .alerts
            .get_mut(&id)
            .ok_or(LifecycleError::UnknownAlert(id))?;
        if !alert.state.unacknowledged() {
            return Err(LifecycleError::WrongState {
                id,
                state: alert.state,
                action: "snooze",
            });
        }
        let until = at + TimeDelta::minutes(minutes.into());
        alert.snoozed_until = Some(until);
        alert.escalate_at = alert.escalate_at.map(|e| e.max(until));
        let state = alert.state;
        Ok(self.record(
            id,
            at,
            Some(state),
            state,
            Actor::User(user.to_owned()),
            format!("snoozed {minutes} min: {reason}"),
        ))
    }

    /// Escalates every unacknowledged alert whose delay has passed, to the next tier.
    pub fn escalate_due(&mut self, at: DateTime<Utc>) -> Vec<Transition> {
        let due: Vec<Uuid> = self
            .open
            .values()
            .copied()
            .filter(|id| {
                self.alerts.get(id).is_some_and(|a| {
                    a.state.unacknowledged()
                        && a.escalate_at.is_some_and(|e| e <= at)
                        && a.snoozed_until.is_none_or(|s| s <= at)
                })
            })
            .collect();
        let mut out = Vec::new();
        for id in due {
            let Some(alert) = self.alerts.get_mut(&id) else {
                continue;
            };
            let from = alert.state;
            let to = next_tier(alert, self.delays, at);
            let note = format!("level {}", alert.level);
            out.push(self.record(id, at, Some(from), to, Actor::System, note));
        }
        out
    }

    /// The earliest pending escalation, for the timer.
    pub fn next_escalation(&self) -> Option<DateTime<Utc>> {
        self.open
            .values()
            .filter_map(|id| self.alerts.get(id))
            .filter(|a| a.state.unacknowledged())
            .filter_map(|a| {
                a.escalate_at
                    .map(|e| a.snoozed_until.map_or(e, |s| e.max(s)))
            })
            .min()
    }

    fn record(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        from: Option<AlertState>,
        to: AlertState,
        actor: Actor,
        note: String,
    ) -> Transition {
        let alert = self
            .alerts
            .get_mut(&id)
            .expect("transition of a known alert");
        alert.state = to;
        let seq = alert.transitions;
        alert.transitions += 1;
        Transition {
            alert_id: id,
            seq,
            at,
            from,
            to,
            actor,
            note,
        }
    }

    fn close_if_done(&mut self, id: Uuid) {
        if let Some(a) = self.alerts.get(&id).filter(|a| !a.is_open()) {
            self.open.remove(&(a.patient.clone(), a.key.clone()));
        }
    }
}

/// Moves an alert to the next escalation tier at `at`; returns the state it enters. A
/// cleared-but-latched alert is escalated too, yet stays cleared-unacknowledged.
fn next_tier(alert: &mut Alert, delays: EscalationDelays, at: DateTime<Utc>) -> AlertState {
    alert.level += 1;
    alert.escalate_at = delays.of(alert.priority).map(|d| at + d);
    if alert.state == AlertState::ClearedUnacknowledged {
        alert.state
    } else {
        AlertState::Escalated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 17, 0, 0).unwrap() + TimeDelta::seconds(s)
    }

    fn raise(s: i64, key: &str, priority: Priority) -> Signal {
        Signal {
            at: at(s),
            patient: "p1".into(),
            key: key.into(),
            change: Change::Raise {
                priority,
                category: Category::Clinical,
                finding: Finding::Asystole,
                qualified_by: vec![],
            },
        }
    }

    fn clear(s: i64, key: &str) -> Signal {
        Signal {
            at: at(s),
            patient: "p1".into(),
            key: key.into(),
            change: Change::Clear,
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn states(ts: &[Transition]) -> Vec<AlertState> {
        ts.iter().map(|t| t.to).collect()
    }

    #[test]
    fn full_path_raised_notified_escalated_acknowledged_resolved() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        let mut ts = l.apply(&raise(0, "spo2_low", Priority::High), "v1", id(1));
        ts.extend(l.notified(id(1), at(2), "webhook:pager").unwrap());
        assert!(l.escalate_due(at(299)).is_empty());
        ts.extend(l.escalate_due(at(300)));
        assert_eq!(l.alert(id(1)).unwrap().level, 1);
        ts.extend(l.notified(id(1), at(302), "webhook:pager").unwrap());
        ts.extend(l.acknowledge(id(1), at(400), "dr-sato").unwrap());
        assert!(l.escalate_due(at(10_000)).is_empty());
        ts.extend(l.apply(&clear(500, "spo2_low"), "v1", id(9)));
        assert_eq!(
            states(&ts),
            vec![
                AlertState::Raised,
                AlertState::Notified,
                AlertState::Escalated,
                AlertState::Notified,
                AlertState::Acknowledged,
                AlertState::Resolved
            ]
        );
        assert_eq!(
            ts.iter().map(|t| t.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(ts[4].actor, Actor::User("dr-sato".into()));
        assert!(l.open_alert("p1", "spo2_low").is_none());
    }

    #[test]
    fn high_priority_latches_after_its_condition_clears() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        l.apply(&raise(0, "ecg_pause", Priority::High), "v1", id(1));
        let ts = l.apply(&clear(60, "ecg_pause"), "v1", id(2));
        assert_eq!(states(&ts), vec![AlertState::ClearedUnacknowledged]);
        assert!(l.open_alert("p1", "ecg_pause").is_some(), "latched");
        // The condition returns: still the same alert, no second raise.
        assert!(
            l.apply(&raise(90, "ecg_pause", Priority::High), "v1", id(3))
                .is_empty()
        );
        // Unacknowledged, it still escalates.
        assert_eq!(l.escalate_due(at(300)).len(), 1);
        let ts = l.acknowledge(id(1), at(400), "dr").unwrap();
        assert_eq!(states(&ts), vec![AlertState::Acknowledged]);
    }

    #[test]
    fn lower_priority_closes_when_cleared_unacknowledged() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        l.apply(&raise(0, "temperature_high", Priority::Medium), "v1", id(1));
        let ts = l.apply(&clear(60, "temperature_high"), "v1", id(2));
        assert_eq!(states(&ts), vec![AlertState::ClearedUnacknowledged]);
        assert!(l.open_alert("p1", "temperature_high").is_none());
        assert!(l.escalate_due(at(5000)).is_empty());
        // A new episode is a new alert.
        assert_eq!(
            l.apply(
                &raise(100, "temperature_high", Priority::Medium),
                "v1",
                id(3)
            )
            .len(),
            1
        );
    }

    #[test]
    fn a_replayed_raise_does_not_raise_twice() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        l.apply(&raise(0, "systolic_high", Priority::Medium), "v1", id(1));
        l.apply(&clear(10, "systolic_high"), "v1", id(2));
        assert!(
            l.apply(&raise(0, "systolic_high", Priority::Medium), "v1", id(3))
                .is_empty()
        );
    }

    #[test]
    fn snooze_needs_a_reason_is_capped_and_holds_escalation() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        l.apply(&raise(0, "pulse_high", Priority::High), "v1", id(1));
        assert_eq!(
            l.snooze(id(1), at(10), "nurse", 31, "walking"),
            Err(LifecycleError::SnoozeTooLong(31))
        );
        assert_eq!(
            l.snooze(id(1), at(10), "nurse", 10, " "),
            Err(LifecycleError::SnoozeWithoutReason)
        );
        l.snooze(
            id(1),
            at(10),
            "nurse",
            10,
            "patient on treadmill with nurse",
        )
        .unwrap();
        assert!(l.escalate_due(at(609)).is_empty());
        assert_eq!(l.next_escalation(), Some(at(610)));
        assert_eq!(l.escalate_due(at(610)).len(), 1);
    }

    #[test]
    fn low_priority_never_escalates() {
        let mut l = Lifecycle::new(EscalationDelays::default());
        l.apply(
            &raise(0, "missed_reading/systolic_bp", Priority::Low),
            "v1",
            id(1),
        );
        assert!(l.escalate_due(at(86_400)).is_empty());
        assert_eq!(l.next_escalation(), None);
    }
}
