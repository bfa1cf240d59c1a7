//! The server's configuration: one typed struct read from TOML, checked before anything starts.
//!
//! With no file at all the server runs on embedded defaults (an in-process broker on loopback and
//! a SQLite file), which is what the one-command demo uses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{field} = {value} is invalid: {why}")]
    Invalid {
        field: &'static str,
        value: String,
        why: String,
    },
}

/// Everything `mimamori-server serve` needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The MQTT broker to subscribe to. Absent: the embedded broker is started and used.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// The in-process broker used when `mqtt` is absent (demo only: no ACL, no persistence).
    #[serde(default)]
    pub embedded_broker: EmbeddedBrokerConfig,
    /// Where readings are stored.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Batching and validation of incoming messages.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The per-patient real-time analysis.
    #[serde(default)]
    pub hot_path: HotPathConfig,
    /// How long data is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The HTTP edge (REST, WebSocket, dashboard).
    #[serde(default)]
    pub http: HttpListenConfig,
    /// The device allow-lists published to the gateways (`down/config`).
    #[serde(default)]
    pub gateway_config: GatewayConfigPublishing,
    /// Who is woken, and how. Absent: alerts reach the dashboards only, and the watchdog pages
    /// because no notifier beats.
    #[serde(default)]
    pub notify: Option<NotifyConfig>,
}

/// Paging: the on-call rota over the registry's care network decides whom, a signed webhook (a phone-call or pager
/// service) carries it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The on-call rota: who is on call when (format: `fixtures/oncall/setagaya-rota.toml`),
    /// naming registry clinic and user ids. Clinics, doctors and patients' primary clinics come
    /// from the registry; the doctor an alert is routed to may open that patient.
    pub rota_file: PathBuf,
    /// The webhook receiver. Its secret may be left out here and given in
    /// `MIMAMORI_WEBHOOK_SECRET` instead, so it stays out of configuration files.
    pub webhook: crate::alerts::webhook::WebhookConfig,
}

impl Config {
    /// Reads and checks a TOML file; `None` gives the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = match path {
            None => Self::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(&text).map_err(|e| match e {
                    ConfigError::Parse { source, .. } => ConfigError::Parse {
                        path: path.to_owned(),
                        source,
                    },
                    other => other,
                })?
            }
        };
        Ok(config)
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source: Box::new(source),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks limits that the types alone cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, why: &str| ConfigError::Invalid {
            field,
            value,
            why: why.to_owned(),
        };
        let ingest = &self.ingest;
        if !(1..=50).contains(&ingest.batch_max_delay_ms) {
            return Err(invalid(
                "ingest.batch_max_delay_ms",
                ingest.batch_max_delay_ms.to_string(),
                "must be 1..=50 ms: a message waits at most this long for its commit",
            ));
        }
        if ingest.batch_max_messages == 0 {
            return Err(invalid(
                "ingest.batch_max_messages",
                "0".into(),
                "must be at least 1",
            ));
        }
        if self.hot_path.workers == 0 {
            return Err(invalid(
                "hot_path.workers",
                "0".into(),
                "must be at least 1",
            ));
        }
        if self.gateway_config.refresh_s == 0 {
            return Err(invalid(
                "gateway_config.refresh_s",
                "0".into(),
                "must be at least 1 s",
            ));
        }
        self.retention.check()?;
        Ok(())
    }
}

/// Connection to an external MQTT broker (Mosquitto in production).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; with `clean_session = false` the broker keeps this id's session (subscriptions
    /// and undelivered QoS 1 messages) while the server is down.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// User name of the backend's broker account (its ACL must allow `mimamori/v1/gw/#`).
    pub username: String,
    /// Password; the environment variable `MIMAMORI_MQTT_PASSWORD` overrides it.
    #[serde(default)]
    pub password: Option<String>,
    /// PEM file of the CA that signed the broker's certificate; when set, TLS is used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Keep-alive interval in seconds.
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
}

fn default_client_id() -> String {
    "mimamori-server".to_owned()
}
const fn default_keep_alive_s() -> u64 {
    15
}

/// The embedded broker (rumqttd) for the demo and single-box trials.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedBrokerConfig {
    /// Address to listen on; always loopback, since the broker has no ACL. Port 0 picks a free one.
    #[serde(default = "default_embedded_listen")]
    pub listen: SocketAddr,
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        Self {
            listen: default_embedded_listen(),
        }
    }
}

fn default_embedded_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 18830))
}

/// Where the HTTP edge listens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListenConfig {
    /// Address to listen on. When its port is taken (another service on 8080), a free port on the
    /// same address is used and printed; port 0 always picks a free one.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
}

impl Default for HttpListenConfig {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
        }
    }
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// The storage backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "backend", rename_all = "snake_case")]
pub enum StorageConfig {
    /// PostgreSQL with TimescaleDB.
    Postgres {
        /// `postgres://user@host:port/db`; the environment variable `MIMAMORI_DATABASE_URL`
        /// overrides it.
        url: String,
        /// Connection pool size.
        #[serde(default = "default_pool_size")]
        max_connections: u32,
    },
    /// A SQLite file (the embedded default).
    Sqlite {
        /// Path of the database file; created when missing.
        path: PathBuf,
    },
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self::Sqlite {
            path: PathBuf::from("mimamori.sqlite3"),
        }
    }
}

const fn default_pool_size() -> u32 {
    8
}

/// Batching and validation of incoming messages.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// A batch is committed when it holds this many messages…
    #[serde(default = "default_batch_max_messages")]
    pub batch_max_messages: usize,
    /// …or when its first message has waited this long, in milliseconds (1..=50).
    #[serde(default = "default_batch_max_delay_ms")]
    pub batch_max_delay_ms: u64,
    /// Deliveries waiting for the committer beyond which a warning is logged, in messages. The
    /// queue is bounded by the broker's in-flight window (the server acknowledges only after the
    /// commit), never by blocking the MQTT loop, which must keep polling for its keep-alive.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// A device time further than this in the future of the gateway's receive time is flagged
    /// `implausible_device_time`, in seconds.
    #[serde(default = "default_max_future_skew_s")]
    pub max_future_skew_s: i64,
    /// A measurement older than this at receipt is flagged `implausible_device_time`, in days
    /// (a cuff's memory holds days, not years).
    #[serde(default = "default_max_age_days")]
    pub max_age_days: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max_messages: default_batch_max_messages(),
            batch_max_delay_ms: default_batch_max_delay_ms(),
            queue_capacity: default_queue_capacity(),
            max_future_skew_s: default_max_future_skew_s(),
            max_age_days: default_max_age_days(),
        }
    }
}

impl IngestConfig {
    /// [`Self::batch_max_delay_ms`] as a duration.
    pub fn batch_max_delay(&self) -> Duration {
        Duration::from_millis(self.batch_max_delay_ms)
    }
}

const fn default_batch_max_messages() -> usize {
    500
}
const fn default_batch_max_delay_ms() -> u64 {
    20
}
const fn default_queue_capacity() -> usize {
    4096
}
const fn default_max_future_skew_s() -> i64 {
    300
}
const fn default_max_age_days() -> i64 {
    30
}

/// The device allow-lists the server publishes to each gateway, retained, on its `down/config`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfigPublishing {
    /// How often the loan registry is re-read, in seconds. Only gateways whose list changed are
    /// published again, so an ended loan or a withdrawn consent reaches the home within this time.
    #[serde(default = "default_gateway_config_refresh_s")]
    pub refresh_s: u64,
}

impl Default for GatewayConfigPublishing {
    fn default() -> Self {
        Self {
            refresh_s: default_gateway_config_refresh_s(),
        }
    }
}

impl GatewayConfigPublishing {
    /// [`Self::refresh_s`] as a duration.
    pub fn refresh(&self) -> Duration {
        Duration::from_secs(self.refresh_s)
    }
}

const fn default_gateway_config_refresh_s() -> u64 {
    30
}

/// The per-patient real-time analysis.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotPathConfig {
    /// Number of worker tasks; each patient is owned by exactly one (patient id hash).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Capacity of each worker's queue, in ECG chunks. When full, the committer waits
    /// (backpressure up to the broker) rather than dropping raw data.
    #[serde(default = "default_worker_queue")]
    pub worker_queue_capacity: usize,
    /// How many out-of-order chunks a stream holds back waiting for a missing one before the
    /// missing stretch is recorded as a gap.
    #[serde(default = "default_reorder_window")]
    pub reorder_window_chunks: usize,
}

impl Default for HotPathConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            worker_queue_capacity: default_worker_queue(),
            reorder_window_chunks: default_reorder_window(),
        }
    }
}

const fn default_workers() -> usize {
    4
}
const fn default_worker_queue() -> usize {
    1024
}
const fn default_reorder_window() -> usize {
    8
}

/// How long data is kept, in days, and how often the retention job runs.
///
/// Legal floors (the job refuses shorter ages, [`RetentionConfig::check`]):
/// - **Medical record, 5 years** — 医師法 (Medical Practitioners' Act) art. 24 para. 2: the
///   診療録 is kept 5 years; 保険医療機関及び保険医療養担当規則 art. 9: the patient's 診療録 5 years
///   from the completion of treatment. Readings a doctor acts on (observations, ECG, beats and
///   heart rate) are treated as part of it.
/// - **Other records, 3 years** — 保険医療養担当規則 art. 9: other records of insured care 3 years
///   (医療法施行規則 art. 20 no. 10 asks 2 years of hospitals' 診療に関する諸記録; the longer wins).
///   Applies to dead letters and device status.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Age after which medical-record data is dropped, in days (≥ [`MEDICAL_RECORD_FLOOR_DAYS`]).
    #[serde(default = "default_medical_record_days")]
    pub medical_record_days: u32,
    /// Age after which other records are dropped, in days (≥ [`OTHER_RECORD_FLOOR_DAYS`]).
    #[serde(default = "default_other_record_days")]
    pub other_record_days: u32,
    /// Interval between runs of the retention job, in seconds.
    #[serde(default = "default_retention_interval_s")]
    pub interval_s: u64,
}

/// Five years (with leap days) in days: the floor for medical-record data.
pub const MEDICAL_RECORD_FLOOR_DAYS: u32 = 5 * 365 + 2;
/// Three years (with a leap day) in days: the floor for other records.
pub const OTHER_RECORD_FLOOR_DAYS: u32 = 3 * 365 + 1;

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            medical_record_days: default_medical_record_days(),
            other_record_days: default_other_record_days(),
            interval_s: default_retention_interval_s(),
        }
    }
}

impl RetentionConfig {
    /// Refuses ages below the legal floors.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.medical_record_days < MEDICAL_RECORD_FLOOR_DAYS {
            return Err(ConfigError::Invalid {
                field: "retention.medical_record_days",
                value: self.medical_record_days.to_string(),
                why: format!(
                    "medical records are kept at least 5 years ({MEDICAL_RECORD_FLOOR_DAYS} days; 医師法 art. 24, 療養担当規則 art. 9)"
                ),
            });
        }
        if self.other_record_days < OTHER_RECORD_FLOOR_DAYS {
            return Err(ConfigError::Invalid {
                field: "retention.other_record_days",
                value: self.other_record_days.to_string(),
                why: format!(
                    "other records are kept at least 3 years ({OTHER_RECORD_FLOOR_DAYS} days; 療養担当規則 art. 9)"
                ),
            });
        }
        Ok(())
    }
}

const fn default_medical_record_days() -> u32 {
    MEDICAL_RECORD_FLOOR_DAYS
}
const fn default_other_record_days() -> u32 {
    OTHER_RECORD_FLOOR_DAYS
}
const fn default_retention_interval_s() -> u64 {
    3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_embedded_defaults() {
        let config = Config::parse("").unwrap();
        assert!(config.mqtt.is_none());
        assert!(matches!(config.storage, StorageConfig::Sqlite { .. }));
    }

    #[test]
    fn unknown_field_is_refused() {
        let err = Config::parse("[ingest]\nbatch_max_delay = 10\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn batch_delay_over_50_ms_is_refused() {
        let err = Config::parse("[ingest]\nbatch_max_delay_ms = 51\n").unwrap_err();
        assert!(err.to_string().contains("batch_max_delay_ms"), "{err}");
    }

    #[test]
    fn retention_below_legal_floor_is_refused() {
        let err = Config::parse("[retention]\nmedical_record_days = 1000\n").unwrap_err();
        assert!(err.to_string().contains("5 years"), "{err}");
        let err = Config::parse("[retention]\nother_record_days = 365\n").unwrap_err();
        assert!(err.to_string().contains("3 years"), "{err}");
    }

    #[test]
    fn gateway_config_refresh_defaults_to_30_s_and_refuses_zero() {
        assert_eq!(Config::parse("").unwrap().gateway_config.refresh_s, 30);
        let err = Config::parse("[gateway_config]\nrefresh_s = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("gateway_config.refresh_s"),
            "{err}"
        );
    }

    #[test]
    fn example_file_is_valid() {
        let config = Config::parse(include_str!("../mimamori-server.example.toml")).unwrap();
        assert_eq!(config.mqtt.unwrap().port, 8883);
        assert_eq!(
            config.retention.medical_record_days,
            MEDICAL_RECORD_FLOOR_DAYS
        );
    }

    #[test]
    fn postgres_backend_parses() {
        let config =
            Config::parse("[storage]\nbackend = \"postgres\"\nurl = \"postgres://x@y/z\"\n")
                .unwrap();
        assert!(matches!(
            config.storage,
            StorageConfig::Postgres {
                max_connections: 8,
                ..
            }
        ));
    }
}
