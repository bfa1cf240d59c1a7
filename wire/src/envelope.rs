//! The envelope every gateway → server message travels in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_PAYLOAD_BYTES;
use crate::{
    Channel, DeviceStatus, EcgChunk, Epoch, GatewayId, ObservationBatch, Presence, WIRE_VERSION,
    WireError,
};

/// A gateway → server message.
///
/// `(gateway, epoch, seq)` identifies it: the gateway id comes from the topic (the broker's ACL
/// vouches for it), `epoch` names the outbox it was written to, and `seq` is its position there.
/// The server stores a message with a given key once, however often it is delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Wire version; this crate writes [`WIRE_VERSION`].
    pub v: u16,
    pub epoch: Epoch,
    /// Position in the outbox, from 0. For [`Body::Presence`], the next sequence the outbox will
    /// assign (presence is state and is not deduplicated).
    pub seq: u64,
    /// When the gateway (last) sent it.
    pub sent_at: DateTime<Utc>,
    /// The gateway the sender claims to be. Optional and never trusted: a receiver compares it
    /// with the topic's gateway and refuses a mismatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayId>,
    #[serde(flatten)]
    pub body: Body,
}

/// What a message carries. On the wire, the `kind` field names the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Observations(ObservationBatch),
    Ecg(EcgChunk),
    DeviceStatus(DeviceStatus),
    Presence(Presence),
}

impl Body {
    /// The channel this body must be published on.
    pub fn channel(&self) -> Channel {
        match self {
            Self::Observations(_) => Channel::Observations,
            Self::Ecg(_) => Channel::Ecg,
            Self::DeviceStatus(_) => Channel::DeviceStatus,
            Self::Presence(_) => Channel::Presence,
        }
    }

    fn validate(&self) -> Result<(), WireError> {
        match self {
            Self::Observations(batch) => batch.validate(),
            Self::Ecg(chunk) => chunk.validate(),
            Self::DeviceStatus(status) => status.validate(),
            Self::Presence(presence) => presence.validate(),
        }
    }
}

impl Envelope {
    /// A message of the current wire version.
    pub fn new(epoch: Epoch, seq: u64, sent_at: DateTime<Utc>, body: Body) -> Self {
        Self {
            v: WIRE_VERSION,
            epoch,
            seq,
            sent_at,
            gateway: None,
            body,
        }
    }

    /// Encodes to the wire form (JSON).
    ///
    /// Fails when the result would break the contract's limits, so a gateway never sends what a
    /// server must refuse.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.body.validate()?;
        let bytes = serde_json::to_vec(self).map_err(|e| WireError::Schema(e.to_string()))?;
        check_size(bytes.len())?;
        Ok(bytes)
    }

    /// Decodes and validates a payload: size, version, schema, units, limits.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        check_size(payload.len())?;
        check_version(payload)?;
        let envelope: Self =
            serde_json::from_slice(payload).map_err(|e| WireError::Schema(e.to_string()))?;
        envelope.body.validate()?;
        Ok(envelope)
    }

    /// Decodes a payload received on `channel` from `gateway` (both taken from the topic) and
    /// checks the payload agrees with them.
    pub fn decode_from(
        payload: &[u8],
        gateway: &GatewayId,
        channel: Channel,
    ) -> Result<Self, WireError> {
        let envelope = Self::decode(payload)?;
        if envelope.body.channel() != channel {
            return Err(WireError::ChannelMismatch {
                topic: channel.suffix(),
                body: envelope.body.channel().suffix(),
            });
        }
        if let Some(claimed) = &envelope.gateway
            && claimed != gateway
        {
            return Err(WireError::GatewayMismatch {
                topic: gateway.to_string(),
                claimed: claimed.to_string(),
            });
        }
        Ok(envelope)
    }
}

pub(crate) fn check_size(len: usize) -> Result<(), WireError> {
    if len > MAX_PAYLOAD_BYTES {
        Err(WireError::PayloadTooLarge(len, MAX_PAYLOAD_BYTES))
    } else {
        Ok(())
    }
}

/// Reads only the version field first, so a message from a newer gateway is refused as
/// "unsupported version" rather than as a confusing schema error.
pub(crate) fn check_version(payload: &[u8]) -> Result<(), WireError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        v: u16,
    }
    let VersionOnly { v } =
        serde_json::from_slice(payload).map_err(|e| WireError::Schema(e.to_string()))?;
    if v == 0 || v > WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(v, WIRE_VERSION));
    }
    Ok(())
}

/// Decodes a downlink message: size and version first, then the schema.
pub(crate) fn decode_versioned<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, WireError> {
    check_size(payload.len())?;
    check_version(payload)?;
    serde_json::from_slice(payload).map_err(|e| WireError::Schema(e.to_string()))
}
