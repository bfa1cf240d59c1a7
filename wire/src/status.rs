//! Device status and gateway presence: state, not readings. The latest one wins.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_TEXT_BYTES;
use crate::{DeviceRef, WireError};

/// The state of one device as the gateway last saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: DeviceRef,
    /// When the gateway observed this state.
    pub at: DateTime<Utc>,
    /// Whether the gateway is connected to the device right now.
    pub connected: bool,
    /// Battery charge, 0–100 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// The device reports its ECG electrodes or finger sensor off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_off: Option<bool>,
    /// The device's own signal-quality figure, 0 (unusable) – 100 (best), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_quality: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
}

impl DeviceStatus {
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        self.device.validate()?;
        check_percent("battery_percent", self.battery_percent)?;
        check_percent("signal_quality", self.signal_quality)?;
        if let Some(firmware) = &self.firmware
            && firmware.len() > MAX_TEXT_BYTES
        {
            return Err(WireError::Schema("firmware version is too long".into()));
        }
        Ok(())
    }
}

fn check_percent(what: &'static str, value: Option<u8>) -> Result<(), WireError> {
    match value {
        Some(v) if v > 100 => Err(WireError::OutOfRange {
            what,
            value: v.into(),
            min: 0,
            max: 100,
        }),
        _ => Ok(()),
    }
}

/// Whether a gateway is online, and its health. Published retained; the broker publishes the
/// `online: false` form as the gateway's Last Will when its connection drops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub online: bool,
    /// When the gateway published this (for a Last Will: when it connected).
    pub at: DateTime<Utc>,
    pub software_version: String,
    /// Whether the gateway's clock is NTP-synchronised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_synced: Option<bool>,
    /// Readings waiting in the outbox for the server's acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_depth: Option<u64>,
    /// Bytes the outbox uses on disk, and its quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_quota_bytes: Option<u64>,
}

impl Presence {
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        if self.software_version.len() > MAX_TEXT_BYTES {
            return Err(WireError::Schema("software version is too long".into()));
        }
        Ok(())
    }
}
