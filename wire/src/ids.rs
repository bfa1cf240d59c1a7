//! Identifiers: gateways, outbox epochs, devices.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::WireError;
use crate::limits::MAX_TEXT_BYTES;

/// A gateway's identity: its MQTT user name and its namespace in the topic tree.
///
/// Restricted to characters that cannot change the meaning of a topic or ACL pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayId(String);

impl GatewayId {
    /// Checks that `id` is 1 to 64 characters of `a-z`, `0-9`, `-` or `_`.
    pub fn new(id: impl Into<String>) -> Result<Self, WireError> {
        let id = id.into();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(WireError::InvalidGatewayId(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for GatewayId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for GatewayId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The random 128-bit identity of one gateway outbox, created with it.
///
/// `(gateway, epoch, seq)` is the idempotency key of a message. A re-imaged gateway starts a new
/// outbox with a new epoch and sequence 0, so its readings are not mistaken for replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(u128);

impl Epoch {
    /// An epoch from 16 random bytes (the gateway draws them from the OS when it creates its outbox).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Parses the wire form: 32 hexadecimal digits.
    pub fn parse(text: &str) -> Result<Self, WireError> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WireError::InvalidEpoch(text.to_owned()));
        }
        u128::from_str_radix(text, 16)
            .map(Self)
            .map_err(|_| WireError::InvalidEpoch(text.to_owned()))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The device a reading came from, as the gateway knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRef {
    /// Stable id of the physical device: `<model>:<serial>` where the device reports a serial,
    /// otherwise `<model>:<BLE address>`. The server matches it against its loan registry.
    pub id: String,
    /// Model as detected by the gateway's decoder registry, e.g. `checkme-pro`, `ble-blood-pressure`.
    pub model: String,
    /// BLE address, `AA:BB:CC:DD:EE:FF`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ble_address: Option<String>,
}

impl DeviceRef {
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        let printable = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_control())
        };
        if !printable(&self.id, 128) {
            return Err(WireError::InvalidDeviceId(self.id.clone()));
        }
        if !printable(&self.model, MAX_TEXT_BYTES) {
            return Err(WireError::Schema(format!(
                "device model {:?} is invalid",
                self.model
            )));
        }
        if let Some(address) = &self.ble_address
            && !printable(address, 32)
        {
            return Err(WireError::Schema(format!(
                "BLE address {address:?} is invalid"
            )));
        }
        Ok(())
    }
}
