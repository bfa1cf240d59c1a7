//! What the server sends down to a gateway: the end-to-end acknowledgement and the device
//! allow-list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::decode_versioned;
use crate::{Epoch, WIRE_VERSION, WireError};

/// The server's word that it has durably stored every message of `epoch` with a sequence up to
/// and including `stored_through` (refused messages count: they are stored as dead letters).
///
/// Only this releases outbox entries at the gateway. A broker's PUBACK does not: a broker loses
/// what it had not persisted when it dies, and under MQTT 3.1.1 it acknowledges a publish its ACL
/// refuses and then drops it. Published retained, so a reconnecting gateway learns it at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAck {
    pub v: u16,
    pub epoch: Epoch,
    /// Highest sequence `n` such that every message `0..=n` of the epoch is stored.
    pub stored_through: u64,
    /// When the server committed it.
    pub at: DateTime<Utc>,
}

impl StoredAck {
    pub fn new(epoch: Epoch, stored_through: u64, at: DateTime<Utc>) -> Self {
        Self {
            v: WIRE_VERSION,
            epoch,
            stored_through,
            at,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of plain fields always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        decode_versioned(payload)
    }
}

/// A device lent to the home, which the gateway may connect to and ingest from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedDevice {
    /// Model as the gateway's decoder registry names it.
    pub model: String,
    pub serial: Option<String>,
    /// `AA:BB:CC:DD:EE:FF`
    pub ble_address: Option<String>,
    /// For shared BP cuffs and scales: the user slot that is this patient's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_user: Option<u8>,
}

/// The server's configuration for one gateway, from its loan registry. Published retained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConfig {
    pub v: u16,
    pub updated_at: DateTime<Utc>,
    /// Devices this gateway may ingest from. Devices seen but not listed are reported, never read.
    pub allowed_devices: Vec<AllowedDevice>,
}

impl GatewayConfig {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        decode_versioned(payload)
    }
}
