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
use super::service::AlertHandle;
use crate::storage::{ObservationRecord, StatusRecord};

/// Inputs queued for the alert service before ingest waits.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The sending side, cheap to clone: one per producer (committer, hot-path workers).
#[derive(Clone, Debug)]
pub struct AlertFeed {
    tx: Option<mpsc::Sender<Input>>,
}

impl AlertFeed {
    /// A feed and the receiver [`run`] drains.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Input>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx: Some(tx) }, rx)
    }

    /// A feed that goes nowhere, for tools and tests that run ingest without alerts.
    pub fn disconnected() -> Self {
        Self { tx: None }
    }

    /// Queues one input, waiting while the queue is full.
    pub async fn send(&self, input: Input) {
        if let Some(tx) = &self.tx
            && tx.send(input).await.is_err()
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

    /// A gateway's presence (online, or offline by its Last Will) for a patient it serves.
    pub async fn gateway_presence(&self, patient: &str, online: bool, at: DateTime<Utc>) {
        self.send(Input {
            at,
            patient: patient.to_owned(),
            observation: Observation::Gateway { online },
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
pub async fn run(mut rx: mpsc::Receiver<Input>, alerts: AlertHandle) {
    while let Some(input) = rx.recv().await {
        let span = tracing::debug_span!("alert_input", patient_id = %input.patient);
        if let Err(error) = alerts.observe(input).instrument(span).await {
            // Persisting the alert change failed; the engine state moved on regardless and the
            // checkpoint replays from the last saved point after a restart.
            tracing::error!(%error, "Alert evaluation failed.");
        }
    }
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
    let device = device_kind(&record.device_id);
    record
        .battery_percent
        .map(|percent| Input {
            at: record.at,
            patient: patient.to_owned(),
            observation: Observation::Battery {
                device,
                percent: f64::from(percent),
            },
        })
        .into_iter()
        .collect()
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
        feed.gateway_presence("p-1", false, at).await;
        let second = tokio::spawn({
            let feed = feed.clone();
            async move { feed.gateway_presence("p-1", true, at).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "the second send must wait for room");
        assert!(matches!(
            rx.recv().await.unwrap().observation,
            Observation::Gateway { online: false }
        ));
        second.await.unwrap();
        assert!(matches!(
            rx.recv().await.unwrap().observation,
            Observation::Gateway { online: true }
        ));
    }
}
