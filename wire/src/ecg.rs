//! ECG chunks: a run of consecutive samples of one lead.
//!
//! Samples travel as base64 of little-endian int16 (2 bytes a sample, 2.7 characters in JSON),
//! never as a JSON array of numbers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_ECG_SAMPLES_PER_CHUNK, MAX_TEXT_BYTES};
use crate::{DeviceRef, WireError};

/// A run of consecutive samples of one ECG lead from one recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EcgChunk {
    pub device: DeviceRef,
    /// Lead name as the device labels it, e.g. `I`, `II`, `MLII`.
    pub lead: String,
    /// Samples per second (UCUM `Hz`).
    pub sample_rate_hz: f64,
    /// Gain: microvolts per sample count (UCUM `uV`).
    pub uv_per_count: f64,
    /// Random id of one continuous recording; a new one starts whenever the device reconnects.
    pub stream_id: u64,
    /// Index of the first sample within the recording. With `samples.len()` it tells a receiver
    /// exactly where a gap is, without trusting clocks.
    pub first_sample_index: u64,
    /// When the first sample was taken (UTC).
    pub first_sample_at: DateTime<Utc>,
    /// The device's own time stamp of the first sample, as it reported it, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time: Option<NaiveDateTime>,
    /// When the gateway received the chunk.
    pub received_at: DateTime<Utc>,
    /// Whether the gateway's clock was NTP-synchronised.
    pub clock_synced: bool,
    /// Whether the device reported its electrodes off during this chunk.
    #[serde(default)]
    pub lead_off: bool,
    #[serde(with = "samples_base64")]
    pub samples: Vec<i16>,
}

impl EcgChunk {
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        self.device.validate()?;
        if self.lead.is_empty() || self.lead.len() > MAX_TEXT_BYTES {
            return Err(WireError::Schema(format!(
                "ECG lead {:?} is invalid",
                self.lead
            )));
        }
        if !(50.0..=2000.0).contains(&self.sample_rate_hz) {
            return Err(WireError::SampleRate(self.sample_rate_hz));
        }
        if !(self.uv_per_count > 0.0 && self.uv_per_count <= 1000.0) {
            return Err(WireError::Gain(self.uv_per_count));
        }
        if self.samples.is_empty() {
            return Err(WireError::Empty { what: "ECG chunk" });
        }
        if self.samples.len() > MAX_ECG_SAMPLES_PER_CHUNK {
            return Err(WireError::TooMany {
                what: "ECG samples",
                count: self.samples.len(),
                limit: MAX_ECG_SAMPLES_PER_CHUNK,
            });
        }
        Ok(())
    }

    /// Index just past the last sample: where the next chunk of the recording should start.
    pub fn end_sample_index(&self) -> u64 {
        self.first_sample_index + self.samples.len() as u64
    }
}

/// Encodes samples as base64 of little-endian int16.
pub fn encode_samples(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

/// Decodes base64 of little-endian int16.
pub fn decode_samples(text: &str) -> Result<Vec<i16>, WireError> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| WireError::SampleEncoding(e.to_string()))?;
    if bytes.len() % 2 != 0 {
        return Err(WireError::OddSampleBytes(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

mod samples_base64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(samples: &[i16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_samples(samples))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i16>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::decode_samples(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_including_extremes() {
        let samples = [0, 1, -1, i16::MAX, i16::MIN, 1234, -4321];
        assert_eq!(decode_samples(&encode_samples(&samples)).unwrap(), samples);
    }

    #[test]
    fn samples_are_little_endian() {
        // 0x0102 little-endian is [02 01]; base64 of [02 01] is "AgE=".
        assert_eq!(encode_samples(&[0x0102]), "AgE=");
    }

    #[test]
    fn odd_byte_counts_and_bad_base64_are_refused() {
        assert_eq!(decode_samples("AA=="), Err(WireError::OddSampleBytes(1)));
        assert!(matches!(
            decode_samples("not base64!"),
            Err(WireError::SampleEncoding(_))
        ));
    }
}
