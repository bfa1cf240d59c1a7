//! The gateway's configuration file (`run --config FILE`), TOML, with environment overrides for
//! secrets and endpoints. Unknown keys are errors, so a typo fails at start-up.
//!
//! ```toml
//! outbox_dir = "/var/lib/mimamori/outbox"
//! outbox_quota_bytes = 2147483648
//!
//! [mqtt]
//! endpoint_host = "broker.example.jp"
//! endpoint_port = 8883
//! gateway_id = "home-0042"
//! ca_file = "/etc/mimamori/ca.pem"          # password from MIMAMORI_MQTT_PASSWORD
//!
//! [[devices]]                                # the devices lent to this home
//! address = "AA:BB:CC:DD:EE:01"
//! model = "ua-651ble"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::devices::model::DeviceFamily;
use crate::devices::viatom::checkme_live::CheckBytes;
use crate::publish::MqttConfig;

/// One device on this gateway's allow-list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// BLE address, `AA:BB:CC:DD:EE:FF` (case does not matter).
    pub address: String,
    /// Family, when the advertised name does not tell (e.g. a Checkme Pro X under a new name).
    #[serde(default)]
    pub family: Option<DeviceFamily>,
    /// Model name sent to the server (default: derived from the family and services).
    #[serde(default)]
    pub model: Option<String>,
    /// Check-byte switch for Checkme live frames.
    #[serde(default)]
    pub check_bytes: CheckBytes,
}

/// BLE settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BleConfig {
    /// First reconnect delay after a device disconnects or fails, ms; doubles per failure.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Interval of the real-time polls of O2, ER1 and BP2 devices, ms.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
}

const fn default_reconnect_min_ms() -> u64 {
    1_000
}
const fn default_reconnect_max_ms() -> u64 {
    60_000
}
const fn default_poll_interval_ms() -> u64 {
    1_000
}

impl Default for BleConfig {
    fn default() -> Self {
        Self {
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            poll_interval_ms: default_poll_interval_ms(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Outbox directory.
    pub outbox_dir: PathBuf,
    /// Outbox disk quota, bytes (default 2 GiB).
    #[serde(default = "default_quota")]
    pub outbox_quota_bytes: u64,
    /// MQTT.
    pub mqtt: MqttConfig,
    /// BLE.
    #[serde(default)]
    pub ble: BleConfig,
    /// Allow-list.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
}

const fn default_quota() -> u64 {
    2 << 30
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Error.
        source: toml::de::Error,
    },
    /// A value is wrong.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file and applies `MIMAMORI_MQTT_PASSWORD`, `MIMAMORI_MQTT_HOST` and
    /// `MIMAMORI_MQTT_PORT` from the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if let Ok(p) = std::env::var("MIMAMORI_MQTT_PASSWORD") {
            config.mqtt.password = p;
        }
        if let Ok(h) = std::env::var("MIMAMORI_MQTT_HOST") {
            config.mqtt.endpoint_host = h;
        }
        if let Ok(p) = std::env::var("MIMAMORI_MQTT_PORT") {
            config.mqtt.endpoint_port = p.parse().map_err(|_| {
                ConfigError::Invalid(format!("MIMAMORI_MQTT_PORT {p:?} is not a port"))
            })?;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.mqtt.password.is_empty() {
            return Err(ConfigError::Invalid(
                "no MQTT password (set mqtt.password or MIMAMORI_MQTT_PASSWORD)".into(),
            ));
        }
        for d in &self.devices {
            let ok = d.address.len() == 17
                && d.address
                    .split(':')
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "device address {:?} is not AA:BB:CC:DD:EE:FF",
                    d.address
                )));
            }
        }
        Ok(())
    }

    /// The allow-list entry for an address.
    pub fn device(&self, address: &str) -> Option<&DeviceConfig> {
        self.devices
            .iter()
            .find(|d| d.address.eq_ignore_ascii_case(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_typos_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(
            &path,
            "outbox_dir = \"/tmp/x\"\n[mqtt]\nendpoint_host = \"h\"\nendpoint_port = 8883\ngateway_id = \"home-1\"\npassword = \"p\"\n\n[[devices]]\naddress = \"aa:bb:cc:dd:ee:01\"\nfamily = \"checkme-pro\"\ncheck_bytes = \"unverified\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.device("AA:BB:CC:DD:EE:01").unwrap().family,
            Some(DeviceFamily::CheckmePro)
        );
        assert_eq!(c.ble, BleConfig::default());
        std::fs::write(&path, "outbox_dir = \"/tmp/x\"\noutbox_qouta = 1\n").unwrap();
        assert!(matches!(
            Config::load(&path),
            Err(ConfigError::Parse { .. })
        ));
    }
}
