//! Notification: who is told, over which channel, and knowing it arrived.
//!
//! The [`Notifier`] task follows the alert broadcast. For each raise and escalation it asks the
//! [`WhoToNotify`] hook (implemented by the on-call routing, `crate::oncall`) who should be told
//! now, delivers through every [`Channel`], and reports back to the alert service: a confirmed
//! delivery moves the alert to *notified*; a delivery that keeps failing becomes a high-priority
//! technical alarm for the coordinator and the operator.
//!
//! The dashboards' WebSocket layer is the other channel: it subscribes to the same broadcast
//! ([`super::service::AlertHandle::subscribe`]) and reports a dashboard's receipt with
//! [`super::service::AlertHandle::notified`].

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use super::engine::{Category, Input, Observation};
use super::lifecycle::{Alert, AlertState};
use super::service::{AlertEvent, AlertHandle};
use super::webhook::{DeliveryError, Webhook};
use crate::oncall::escalation::AlertRouting;
use crate::oncall::rota::PatientId;

/// Someone (or some line) to tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// Role, e.g. `on_call_doctor`, `operator`.
    pub role: String,
    /// Display name.
    pub name: String,
    /// The person's registry user id, when the recipient is a person (the rota's doctor ids are
    /// registry user ids); they get access to the patient while the alert is open.
    pub user_id: Option<String>,
}

/// The hook an alert asks "who should be notified now": the on-call routing implements it.
pub trait WhoToNotify: Send + Sync {
    /// The recipients of `alert` at its current escalation level. Empty means nobody could be
    /// found, which the notifier treats as a failed delivery (an alert is never silently dropped).
    fn recipients(&self, alert: &Alert) -> Vec<Recipient>;
}

/// Clinical and adherence alerts go along the on-call escalation plan; technical alarms go to the
/// operator and the coordinator.
#[derive(Debug)]
pub struct OnCallRecipients<R> {
    routing: R,
}

impl<R: AlertRouting> OnCallRecipients<R> {
    /// Wraps the on-call routing.
    pub fn new(routing: R) -> Self {
        Self { routing }
    }
}

impl<R: AlertRouting> WhoToNotify for OnCallRecipients<R> {
    fn recipients(&self, alert: &Alert) -> Vec<Recipient> {
        if alert.category == Category::Technical {
            return ["operator", "coordinator"]
                .into_iter()
                .map(|r| Recipient {
                    role: r.into(),
                    name: r.into(),
                    user_id: None,
                })
                .collect();
        }
        let plan = match self
            .routing
            .escalation_plan(&PatientId::from(alert.patient.as_str()), alert.raised_at)
        {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(patient_id = %alert.patient, alert_id = %alert.id, %error, "No route for alert.");
                return Vec::new();
            }
        };
        // Past the end of the chain the last level is repeated (the plan's own contract).
        let level = usize::try_from(alert.level)
            .unwrap_or(usize::MAX)
            .min(plan.levels.len().saturating_sub(1));
        plan.recipient(level)
            .map(|r| {
                vec![Recipient {
                    role: format!("{:?}", r.role),
                    name: r.name.clone(),
                    user_id: r.doctor_id.as_ref().map(ToString::to_string),
                }]
            })
            .unwrap_or_default()
    }
}

/// A delivery channel.
pub trait Channel: Send + Sync {
    /// Its name, recorded as the receiver that confirmed.
    fn name(&self) -> String;
    /// Delivers, returning once a receiver confirmed.
    fn deliver(
        &self,
        event: &AlertEvent,
        recipients: &[Recipient],
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

impl Channel for Webhook {
    fn name(&self) -> String {
        "webhook".into()
    }

    async fn deliver(
        &self,
        event: &AlertEvent,
        _recipients: &[Recipient],
    ) -> Result<(), DeliveryError> {
        Webhook::deliver(self, event).await.map(|_| ())
    }
}

/// Follows the alert broadcast and delivers.
#[derive(Debug)]
pub struct Notifier<W, C> {
    who: Arc<W>,
    channel: Arc<C>,
    alerts: AlertHandle,
}

impl<W: WhoToNotify + 'static, C: Channel + 'static> Notifier<W, C> {
    /// A notifier delivering `alerts`' events over `channel`.
    pub fn new(who: W, channel: C, alerts: AlertHandle) -> Self {
        Self {
            who: Arc::new(who),
            channel: Arc::new(channel),
            alerts,
        }
    }

    /// Runs until the alert service stops. Each delivery runs in its own task, so one slow
    /// receiver does not hold up the next alert.
    pub async fn run(self) {
        let mut events = self.alerts.subscribe();
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Missed events stay in the store; escalation re-notifies open alerts.
                    tracing::error!(missed = n, "Notifier lagged behind the alert broadcast.");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let needs_delivery = matches!(
                event.transition.to,
                AlertState::Raised | AlertState::Escalated
            ) || (event.transition.to == AlertState::ClearedUnacknowledged
                && event.transition.from == Some(AlertState::ClearedUnacknowledged));
            if !needs_delivery {
                continue;
            }
            let (who, channel, alerts) =
                (self.who.clone(), self.channel.clone(), self.alerts.clone());
            tokio::spawn(async move { deliver(&*who, &*channel, &alerts, event).await });
        }
    }
}

async fn deliver<W: WhoToNotify, C: Channel>(
    who: &W,
    channel: &C,
    alerts: &AlertHandle,
    event: AlertEvent,
) {
    let recipients = who.recipients(&event.alert);
    let person = recipients.iter().find_map(|r| r.user_id.as_deref());
    let outcome = if recipients.is_empty() {
        Err(DeliveryError::Exhausted {
            attempts: 0,
            last: "nobody to notify".into(),
        })
    } else {
        channel.deliver(&event, &recipients).await
    };
    let alert = &event.alert;
    let delivered = match outcome {
        Ok(()) => {
            if let Err(error) = alerts.notified_to(alert.id, &channel.name(), person).await {
                tracing::error!(alert_id = %alert.id, %error, "Could not record delivery.");
            }
            true
        }
        Err(error) => {
            tracing::error!(patient_id = %alert.patient, alert_id = %alert.id, %error, "Alert notification failed.");
            false
        }
    };
    // A failing delivery of the delivery alarm itself is logged, not raised again (no loop).
    if alert.key.starts_with("notification_failed/") {
        return;
    }
    let input = Input {
        at: chrono::Utc::now().max(alert.raised_at),
        patient: alert.patient.clone(),
        observation: Observation::Notification {
            alert_key: alert.key.clone(),
            delivered,
        },
    };
    if let Err(error) = alerts.observe(input).await {
        tracing::error!(alert_id = %alert.id, %error, "Could not record the notification outcome.");
    }
}
