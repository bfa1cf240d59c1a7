//! The rules stage's entrance: what ingest stored and what the hot path derived, turned into the
//! engine's [`Input`]s and queued for the alert service.
//!
//! One bounded queue for every patient: a full queue makes ingest and the hot path wait
//! (backpressure), it never sheds. The alert engine must see every reading, unlike the live feed,
//! which a slow browser may lag behind.

use chrono::{DateTime, Utc};
use mimamori_wire::VitalSign;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::engine::{EcgSecond, Input, Observation};
use super::rules::{DeviceKind, Measure};
use super::service::{AlertCore, AlertHandle};
use super::store::AlertStore;
use crate::registry::Directory;
use crate::storage::{ObservationRecord, StatusRecord, Storage};

/// Inputs queued for the alert service before ingest waits.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The sending side, cheap to clone: one per producer (committer, hot-path workers).
#[derive(Clone, Debug)]
pub struct AlertFeed {
    tx: Option<mpsc::Sender<FeedItem>>,
}

/// What travels on the feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedItem {
    /// An input for one patient.
    Input(Input),
    /// A gateway's presence: an input for every patient the gateway serves, found in the registry
    /// when it is drained (ingest knows gateways, not whom they serve).
    GatewayPresence {
        gateway: String,
        online: bool,
        at: DateTime<Utc>,
    },
}

impl AlertFeed {
    /// A feed and the receiver [`run`] drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<FeedItem>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx: Some(tx) }, rx)
    }

    /// A feed that goes nowhere, for tools and tests that run ingest without alerts.
    pub fn disconnected() -> Self {
        Self { tx: None }
    }

    /// Queues one input, waiting while the queue is full.
    pub async fn send(&self, input: Input) {
        self.send_item(FeedItem::Input(input)).await;
    }

    async fn send_item(&self, item: FeedItem) {
        if let Some(tx) = &self.tx
            && tx.send(item).await.is_err()
        {
            tracing::error!("Alert service has stopped; an input was not evaluated.");
        }
    }

    /// A stored vital sign, if a rule reads it.
    pub async fn observation(&self, record: &ObservationRecord) {
        if let Some(input) = vital_input(record) {
            self.send(input).await;
        }
    }

    /// A device's reported state, for the patient its loan names.
    pub async fn device_status(&self, patient: &str, record: &StatusRecord) {
        for input in status_inputs(patient, record) {
            self.send(input).await;
        }
    }

    /// A gateway's presence (online, or offline by its Last Will).
    pub async fn gateway_presence(&self, gateway: &str, online: bool, at: DateTime<Utc>) {
        self.send_item(FeedItem::GatewayPresence {
            gateway: gateway.to_owned(),
            online,
            at,
        })
        .await;
    }

    /// One second of the hot path's ECG analysis.
    pub async fn ecg_second(&self, patient: &str, at: DateTime<Utc>, second: EcgSecond) {
        self.send(Input {
            at,
            patient: patient.to_owned(),
            observation: Observation::Ecg(second),
        })
        .await;
    }
}

/// Drains the feed into the alert service, one input at a time, in arrival order.
pub async fn run(mut rx: mpsc::Receiver<FeedItem>, alerts: AlertHandle, directory: Directory) {
    while let Some(item) = rx.recv().await {
        let inputs = match item {
            FeedItem::Input(input) => vec![input],
            FeedItem::GatewayPresence {
                gateway,
                online,
                at,
            } => match directory.patients_of_gateway(&gateway).await {
                Ok(patients) => patients
                    .into_iter()
                    .map(|patient| Input {
                        at,
                        patient,
                        observation: Observation::Gateway { online },
                    })
                    .collect(),
                Err(error) => {
                    tracing::error!(%gateway, %error, "Could not find whom a gateway serves.");
                    Vec::new()
                }
            },
        };
        for input in inputs {
            let span = tracing::debug_span!("alert_input", patient_id = %input.patient);
            if let Err(error) = alerts.observe(input).instrument(span).await {
                // Persisting the alert change failed; the engine state moved on regardless and
                // the checkpoint replays from the last saved point after a restart.
                tracing::error!(%error, "Alert evaluation failed.");
            }
        }
    }
}

/// How far back a restart replays when the engine never checkpointed (no alert ever changed):
/// the longest minimum duration of a rule is minutes; trend baselines rebuild from later readings.
pub const REPLAY_WITHOUT_CHECKPOINT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// After a restart, feeds the engine the stored observations it had not processed: those measured
/// from its checkpoint on (the core skips what the checkpoint already covers), oldest first, and
/// each loaned device's latest reported battery when it came after the checkpoint (a flat battery
/// reported just before a crash must not wait for the device's next report). Gateway presence
/// needs no replay: it is retained at the broker and delivered again when the server subscribes.
/// Run before ingest starts feeding live readings, so the engine sees each patient's readings in
/// order. Returns how many inputs were replayed.
pub async fn replay<S: Storage, A: AlertStore>(
    core: &mut AlertCore<A>,
    store: &S,
    patients: &[String],
    now: DateTime<Utc>,
) -> Result<usize, ReplayError> {
    let from = core
        .processed_through()
        .unwrap_or(now - REPLAY_WITHOUT_CHECKPOINT);
    let mut inputs = Vec::new();
    for patient in patients {
        for vital in VitalSign::ALL {
            if measure_of(vital).is_none() {
                continue;
            }
            let records = store
                .observations(patient, vital, from, now + chrono::TimeDelta::days(1))
                .await?;
            inputs.extend(records.iter().filter_map(vital_input));
        }
        for device in store.device_states(patient, now).await? {
            if let (Some(at), Some(percent)) = (device.status_at, device.battery_percent)
                && at >= from
            {
                inputs.push(battery_input(patient, &device.device_id, at, percent));
            }
        }
    }
    inputs.sort_by_key(|i| i.at);
    for input in &inputs {
        core.observe(input).await?;
    }
    Ok(inputs.len())
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading observations to replay: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("replaying into the alert service: {0}")]
    Service(#[from] super::service::ServiceError),
}

/// The rule measure a wire vital sign feeds. Diastolic and mean pressure feed no rule.
pub fn measure_of(vital: VitalSign) -> Option<Measure> {
    match vital {
        VitalSign::Spo2 => Some(Measure::Spo2),
        // A cuff's or strap's pulse counts as pulse for NEWS2 and the pulse thresholds.
        VitalSign::PulseRateOximetry | VitalSign::HeartRate => Some(Measure::PulseRate),
        VitalSign::SystolicBp => Some(Measure::SystolicBp),
        VitalSign::BodyTemperature => Some(Measure::BodyTemperature),
        VitalSign::BodyWeight => Some(Measure::BodyWeight),
        VitalSign::DiastolicBp | VitalSign::MeanArterialPressure => None,
    }
}

fn vital_input(record: &ObservationRecord) -> Option<Input> {
    Some(Input {
        at: record.measured_at,
        patient: record.patient_id.clone(),
        observation: Observation::Vital {
            measure: measure_of(record.vital)?,
            value: record.value,
            artefact: false,
        },
    })
}

/// The kind of device a wire device id (`<model>:<serial>`) names, as far as alarms care.
pub fn device_kind(device_id: &str) -> DeviceKind {
    let model = device_id.split(':').next().unwrap_or(device_id);
    if model.contains("blood-pressure") || model.contains("bp") {
        DeviceKind::BpCuff
    } else if model.contains("oxim") || model.ends_with("-o2") {
        DeviceKind::Oximeter
    } else if model.contains("thermo") {
        DeviceKind::Thermometer
    } else if model.contains("scale") || model.contains("weight") {
        DeviceKind::Scale
    } else {
        // Checkme Pro X, VitaLook's ECG: ECG recorders (their oximeter rides on the same battery).
        DeviceKind::Ecg
    }
}

fn status_inputs(patient: &str, record: &StatusRecord) -> Vec<Input> {
    record
        .battery_percent
        .map(|percent| battery_input(patient, &record.device_id, record.at, percent))
        .into_iter()
        .collect()
}

fn battery_input(patient: &str, device_id: &str, at: DateTime<Utc>, percent: u8) -> Input {
    Input {
        at,
        patient: patient.to_owned(),
        observation: Observation::Battery {
            device: device_kind(device_id),
            percent: f64::from(percent),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(vital: VitalSign, value: f64) -> ObservationRecord {
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        ObservationRecord {
            patient_id: "p-1".into(),
            device_id: "ble-pulse-oximeter:OX1".into(),
            vital,
            value,
            measured_at: at,
            device_time: None,
            received_at: at,
            time_flags: vec![],
        }
    }

    #[test]
    fn vitals_map_to_the_rules_measures_and_keep_their_value_and_time() {
        let input = vital_input(&record(VitalSign::Spo2, 88.0)).unwrap();
        assert_eq!(input.patient, "p-1");
        assert_eq!(input.at, record(VitalSign::Spo2, 88.0).measured_at);
        assert_eq!(
            input.observation,
            Observation::Vital {
                measure: Measure::Spo2,
                value: 88.0,
                artefact: false
            }
        );
        assert!(vital_input(&record(VitalSign::DiastolicBp, 80.0)).is_none());
        assert!(matches!(
            vital_input(&record(VitalSign::HeartRate, 120.0))
                .unwrap()
                .observation,
            Observation::Vital {
                measure: Measure::PulseRate,
                ..
            }
        ));
    }

    #[test]
    fn device_kinds_follow_the_model_in_the_device_id() {
        assert_eq!(device_kind("ble-blood-pressure:UA0001"), DeviceKind::BpCuff);
        assert_eq!(device_kind("ble-pulse-oximeter:OX1"), DeviceKind::Oximeter);
        assert_eq!(device_kind("ble-thermometer:T1"), DeviceKind::Thermometer);
        assert_eq!(device_kind("ble-weight-scale:W1"), DeviceKind::Scale);
        assert_eq!(device_kind("viatom-o2:O2-1"), DeviceKind::Oximeter);
        assert_eq!(device_kind("viatom-bp2:B1"), DeviceKind::BpCuff);
        assert_eq!(device_kind("checkme-pro:CP0001"), DeviceKind::Ecg);
    }

    #[tokio::test]
    async fn a_full_feed_waits_instead_of_dropping() {
        let (feed, mut rx) = AlertFeed::channel(1);
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        feed.gateway_presence("gw-1", false, at).await;
        let second = tokio::spawn({
            let feed = feed.clone();
            async move { feed.gateway_presence("gw-1", true, at).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "the second send must wait for room");
        assert!(matches!(
            rx.recv().await.unwrap(),
            FeedItem::GatewayPresence { online: false, .. }
        ));
        second.await.unwrap();
        assert!(matches!(
            rx.recv().await.unwrap(),
            FeedItem::GatewayPresence { online: true, .. }
        ));
    }
}
