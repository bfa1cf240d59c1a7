//! Turns a received MQTT message into an [`IngestMessage`]: a validated reading attached to its
//! owner, or a dead letter with its reason. Bad input is expected input: nothing here fails.
//!
//! The gateway is the topic's, never the payload's. A refused payload keeps its `(epoch, seq)`
//! when it can be read, so it counts as stored for the gateway's end-to-end ack and does not block
//! the outbox behind it. Presence is state: its `seq` is not a message key and is never used.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use mimamori_wire::{
    Body, Channel, EcgChunk, Envelope, Epoch, GatewayId, ObservationBatch, TimeFlag, Topic,
};
use serde::Deserialize;

use crate::config::IngestConfig;
use crate::registry::LoanBook;
use crate::storage::{
    Content, DeadLetter, EcgRecord, IngestMessage, ObservationRecord, PresenceRecord, StatusRecord,
};

/// Gateway id used for messages whose topic names no valid gateway.
pub const UNKNOWN_GATEWAY: &str = "_unknown";

/// Reason label for a sequence or sample index too large to store.
const OUT_OF_RANGE: &str = "out_of_range";

/// A message as the source received it.
#[derive(Clone, Debug)]
pub struct RawMessage {
    pub topic: String,
    pub payload: Bytes,
    pub received_at: DateTime<Utc>,
}

/// Plausibility limits for device times.
#[derive(Clone, Copy, Debug)]
pub struct TimeLimits {
    pub max_future_skew: Duration,
    pub max_age: Duration,
}

impl From<&IngestConfig> for TimeLimits {
    fn from(config: &IngestConfig) -> Self {
        Self {
            max_future_skew: Duration::seconds(config.max_future_skew_s),
            max_age: Duration::days(config.max_age_days),
        }
    }
}

/// Decodes, validates and attributes one message.
pub fn decode(raw: &RawMessage, loans: &LoanBook, limits: TimeLimits) -> IngestMessage {
    let topic = match Topic::parse(&raw.topic) {
        Ok(topic) if topic.channel.is_uplink() => topic,
        Ok(_) | Err(_) => {
            let gateway = raw
                .topic
                .split('/')
                .nth(3)
                .and_then(|g| GatewayId::new(g).ok())
                .unwrap_or_else(unknown_gateway);
            return dead(
                raw,
                gateway,
                None,
                "unknown_topic",
                format!("topic {:?} is not an uplink of the v1 tree", raw.topic),
            );
        }
    };
    let gateway = topic.gateway;
    let key = if topic.channel == Channel::Presence {
        None
    } else {
        read_key(&raw.payload)
    };
    let envelope = match Envelope::decode_from(&raw.payload, &gateway, topic.channel) {
        Ok(envelope) => envelope,
        Err(e) => return dead(raw, gateway, key, e.reason(), e.to_string()),
    };
    let key = match envelope.body {
        Body::Presence(_) => None,
        _ => {
            if i64::try_from(envelope.seq).is_err() {
                return dead(
                    raw,
                    gateway,
                    None,
                    OUT_OF_RANGE,
                    format!("sequence {} does not fit 63 bits", envelope.seq),
                );
            }
            Some((envelope.epoch, envelope.seq))
        }
    };
    let content = match &envelope.body {
        Body::Observations(batch) => observations(batch, loans, raw.received_at, limits),
        Body::Ecg(chunk) => ecg(chunk, loans),
        Body::DeviceStatus(status) => Ok(Content::Status(StatusRecord {
            device_id: status.device.id.clone(),
            at: status.at,
            connected: status.connected,
            battery_percent: status.battery_percent,
            lead_off: status.lead_off,
            signal_quality: status.signal_quality,
            firmware: status.firmware.clone(),
        })),
        Body::Presence(presence) => Ok(Content::Presence(PresenceRecord {
            online: presence.online,
            software_version: presence.software_version.clone(),
            outbox_depth: presence.outbox_depth,
        })),
    };
    match content {
        Ok(content) => IngestMessage {
            gateway,
            key,
            known_duplicate: false,
            received_at: raw.received_at,
            sent_at: Some(envelope.sent_at),
            content,
        },
        Err((reason, detail)) => {
            let mut message = dead(raw, gateway, key, reason, detail);
            message.sent_at = Some(envelope.sent_at);
            message
        }
    }
}

fn unknown_gateway() -> GatewayId {
    GatewayId::new(UNKNOWN_GATEWAY).unwrap_or_else(|_| unreachable!("constant gateway id is valid"))
}

fn dead(
    raw: &RawMessage,
    gateway: GatewayId,
    key: Option<(Epoch, u64)>,
    reason: &'static str,
    detail: String,
) -> IngestMessage {
    IngestMessage {
        gateway,
        key,
        known_duplicate: false,
        received_at: raw.received_at,
        sent_at: None,
        content: Content::DeadLetter(DeadLetter {
            reason,
            detail,
            topic: raw.topic.clone(),
            payload: raw.payload.to_vec(),
        }),
    }
}

/// Reads `(epoch, seq)` from a payload that may be otherwise invalid.
fn read_key(payload: &[u8]) -> Option<(Epoch, u64)> {
    #[derive(Deserialize)]
    struct KeyOnly {
        epoch: Epoch,
        seq: u64,
    }
    let KeyOnly { epoch, seq } = serde_json::from_slice(payload).ok()?;
    i64::try_from(seq).ok().map(|_| (epoch, seq))
}

type Refusal = (&'static str, String);

fn observations(
    batch: &ObservationBatch,
    loans: &LoanBook,
    received_at: DateTime<Utc>,
    limits: TimeLimits,
) -> Result<Content, Refusal> {
    let mut records = Vec::with_capacity(batch.observations.len());
    for o in &batch.observations {
        o.check_possible()
            .map_err(|e| (e.reason(), e.to_string()))?;
        let patient = loans
            .owner(&batch.device.id, o.measured_at, o.device_user)
            .map_err(|e| (e.reason(), e.to_string()))?;
        let mut time_flags: Vec<String> = o
            .time_flags
            .iter()
            .map(|f| flag_label(*f).to_owned())
            .collect();
        let implausible = o.measured_at > o.received_at + limits.max_future_skew
            || o.measured_at < received_at - limits.max_age;
        let label = flag_label(TimeFlag::ImplausibleDeviceTime);
        if implausible && !time_flags.iter().any(|f| f == label) {
            time_flags.push(label.to_owned());
        }
        if !batch.clock_synced {
            time_flags.push("gateway_clock_unsynced".to_owned());
        }
        records.push(ObservationRecord {
            patient_id: patient.clone(),
            device_id: batch.device.id.clone(),
            vital: o.vital,
            value: o.value,
            measured_at: o.measured_at,
            device_time: o.device_time,
            received_at: o.received_at,
            time_flags,
        });
    }
    Ok(Content::Observations(records))
}

fn ecg(chunk: &EcgChunk, loans: &LoanBook) -> Result<Content, Refusal> {
    if i64::try_from(chunk.end_sample_index()).is_err() {
        return Err((
            OUT_OF_RANGE,
            format!(
                "sample index {} does not fit 63 bits",
                chunk.first_sample_index
            ),
        ));
    }
    let patient = loans
        .owner(&chunk.device.id, chunk.first_sample_at, None)
        .map_err(|e| (e.reason(), e.to_string()))?;
    Ok(Content::Ecg(EcgRecord {
        patient_id: patient.clone(),
        device_id: chunk.device.id.clone(),
        lead: chunk.lead.clone(),
        stream_id: chunk.stream_id,
        first_sample_index: chunk.first_sample_index,
        first_sample_at: chunk.first_sample_at,
        sample_rate_hz: chunk.sample_rate_hz,
        uv_per_count: chunk.uv_per_count,
        lead_off: chunk.lead_off,
        samples: chunk.samples.clone(),
        received_at: chunk.received_at,
    }))
}

/// The wire label of a time flag.
pub fn flag_label(flag: TimeFlag) -> &'static str {
    match flag {
        TimeFlag::NoDeviceTime => "no_device_time",
        TimeFlag::ImplausibleDeviceTime => "implausible_device_time",
        TimeFlag::StoredOnDevice => "stored_on_device",
    }
}
