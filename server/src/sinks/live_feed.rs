//! One broadcast channel per patient: the WebSocket layer and the alert engine subscribe to it.
//!
//! A broadcast drops the oldest events for a subscriber that falls behind (it sees
//! `RecvError::Lagged`), so a slow browser loses frames and never stalls the pipeline. A consumer
//! that must not miss anything (the alert engine) re-reads the stored data after a lag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use mimamori_wire::VitalSign;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::storage::PatientId;

/// Events kept per patient for a subscriber that is behind, before it starts losing them.
pub const PATIENT_FEED_CAPACITY: usize = 1024;

/// Something that just happened for a patient.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A stored vital-sign value.
    Observation {
        #[serde(serialize_with = "serialize_vital")]
        vital: VitalSign,
        value: f64,
        /// UCUM unit of `value`.
        unit: &'static str,
        measured_at: DateTime<Utc>,
        device_id: String,
    },
    /// A stored ECG chunk, samples in device counts.
    Ecg {
        stream_id: u64,
        lead: String,
        first_sample_index: u64,
        first_sample_at: DateTime<Utc>,
        sample_rate_hz: f64,
        uv_per_count: f64,
        samples: Arc<[i16]>,
    },
    /// A detected beat.
    Beat {
        at: DateTime<Utc>,
        /// Interval from the previous beat, milliseconds.
        rr_ms: Option<f64>,
    },
    /// Heart rate from the ECG, once per second.
    HeartRate { at: DateTime<Utc>, bpm: f64 },
    /// A stretch of ECG that never arrived.
    EcgGap {
        stream_id: u64,
        from_index: u64,
        to_index: u64,
    },
}

fn serialize_vital<S: serde::Serializer>(vital: &VitalSign, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(vital.loinc())
}

/// The per-patient channels. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct LiveFeed {
    // A std mutex: held only to look up or insert a sender, never across an await.
    channels: Arc<Mutex<HashMap<PatientId, broadcast::Sender<LiveEvent>>>>,
}

impl LiveFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to a patient's events from now on.
    pub fn subscribe(&self, patient: &str) -> broadcast::Receiver<LiveEvent> {
        self.sender(patient).subscribe()
    }

    /// Sends an event to whoever listens; nobody listening is fine.
    pub fn publish(&self, patient: &str, event: LiveEvent) {
        let sender = self.sender(patient);
        // An error only means no subscriber right now.
        let _ = sender.send(event);
    }

    fn sender(&self, patient: &str) -> broadcast::Sender<LiveEvent> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry(patient.to_owned())
            .or_insert_with(|| broadcast::channel(PATIENT_FEED_CAPACITY).0)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscriber_gets_only_its_patients_events() {
        let feed = LiveFeed::new();
        let mut a = feed.subscribe("p-a");
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        feed.publish("p-b", LiveEvent::HeartRate { at, bpm: 60.0 });
        feed.publish("p-a", LiveEvent::HeartRate { at, bpm: 72.0 });
        assert_eq!(
            a.recv().await.unwrap(),
            LiveEvent::HeartRate { at, bpm: 72.0 }
        );
        assert!(a.try_recv().is_err());
    }

    #[tokio::test]
    async fn slow_subscriber_lags_instead_of_blocking() {
        let feed = LiveFeed::new();
        let mut slow = feed.subscribe("p");
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..PATIENT_FEED_CAPACITY + 10 {
            feed.publish("p", LiveEvent::HeartRate { at, bpm: i as f64 });
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
    }
}
