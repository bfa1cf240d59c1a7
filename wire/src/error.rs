//! Typed errors for everything that can be wrong with a message on the wire.

use thiserror::Error;

/// Why a topic or payload was refused. Every variant is expected input from an untrusted peer:
/// callers count it by [`WireError::reason`] and carry on.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WireError {
    #[error("payload of {0} bytes exceeds the limit of {1} bytes")]
    PayloadTooLarge(usize, usize),
    #[error("wire version {0} is not supported (this build reads up to {1})")]
    UnsupportedVersion(u16, u16),
    #[error("payload does not match the schema: {0}")]
    Schema(String),
    #[error("topic {0:?} is not in the mimamori v1 tree")]
    UnknownTopic(String),
    #[error("gateway id {0:?} is invalid: 1 to 64 characters of a-z, 0-9, '-' or '_'")]
    InvalidGatewayId(String),
    #[error("device id {0:?} is invalid: 1 to 128 printable characters")]
    InvalidDeviceId(String),
    #[error("epoch {0:?} is not 32 hexadecimal digits")]
    InvalidEpoch(String),
    #[error("payload claims gateway {claimed:?} but was published in the namespace of {topic:?}")]
    GatewayMismatch { topic: String, claimed: String },
    #[error("a {body} message was published on the {topic} channel")]
    ChannelMismatch {
        topic: &'static str,
        body: &'static str,
    },
    #[error("unit {got:?} does not match {vital}, whose unit is {expected:?}")]
    UnitMismatch {
        vital: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("{what} value {value} is not a finite number")]
    NotFinite { what: &'static str, value: f64 },
    #[error("{what}: {count} items exceed the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("ECG sample block of {0} bytes is not a whole number of int16 samples")]
    OddSampleBytes(usize),
    #[error("ECG samples are not valid base64: {0}")]
    SampleEncoding(String),
    #[error("sample rate {0} Hz is outside 50..=2000 Hz")]
    SampleRate(f64),
    #[error("ECG gain {0} uV per count is outside (0, 1000]")]
    Gain(f64),
    #[error(
        "{vital} value {value} {unit} is outside the physiologically possible range {min}..={max}"
    )]
    Implausible {
        vital: &'static str,
        value: f64,
        unit: &'static str,
        min: f64,
        max: f64,
    },
    #[error("{what} {value} is outside {min}..={max}")]
    OutOfRange {
        what: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
}

impl WireError {
    /// A short, stable label for counting rejections (a Prometheus label value, a dead-letter reason).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PayloadTooLarge(..) => "payload_too_large",
            Self::UnsupportedVersion(..) => "unsupported_version",
            Self::Schema(_) => "schema",
            Self::UnknownTopic(_) => "unknown_topic",
            Self::InvalidGatewayId(_) => "invalid_gateway_id",
            Self::InvalidDeviceId(_) => "invalid_device_id",
            Self::InvalidEpoch(_) => "invalid_epoch",
            Self::GatewayMismatch { .. } => "gateway_mismatch",
            Self::ChannelMismatch { .. } => "channel_mismatch",
            Self::UnitMismatch { .. } => "unit_mismatch",
            Self::NotFinite { .. } => "not_finite",
            Self::TooMany { .. } => "too_many_items",
            Self::Empty { .. } => "empty",
            Self::OddSampleBytes(_) | Self::SampleEncoding(_) => "sample_encoding",
            Self::SampleRate(_) => "sample_rate",
            Self::Gain(_) => "gain",
            Self::Implausible { .. } => "implausible_value",
            Self::OutOfRange { .. } => "out_of_range",
        }
    }
}
