//! Pulse Oximeter Service 0x1822: PLX Spot-check 0x2A5E and PLX Continuous 0x2A5F
//! (protocol notes §2.6). The flag bits differ between the two characteristics.

use serde::Serialize;

use super::cursor::Cursor;
use super::date_time::DeviceDateTime;
use super::error::DecodeError;
use super::ieee11073::{Value, sfloat};
use super::units::{non_negative, percent};

/// An SpO2 / pulse rate pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spo2Pr {
    /// Oxygen saturation, %.
    pub spo2_percent: Value,
    /// Pulse rate, beats per minute.
    pub pulse_rate_per_min: Value,
}

impl Spo2Pr {
    fn read(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            spo2_percent: percent("spo2", sfloat(c.u16("spo2")?))?,
            pulse_rate_per_min: non_negative("pulse_rate", sfloat(c.u16("pulse_rate")?))?,
        })
    }
}

/// Measurement status (u16). Bits 0–4 are reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlxMeasurementStatus {
    /// The raw word.
    pub raw: u16,
    /// Names of the bits that are set.
    pub set: Vec<&'static str>,
}

const MEASUREMENT_STATUS_BITS: [(u32, &str); 11] = [
    (5, "measurement_ongoing"),
    (6, "early_estimated_data"),
    (7, "validated_data"),
    (8, "fully_qualified_data"),
    (9, "data_from_measurement_storage"),
    (10, "data_for_demonstration"),
    (11, "data_for_testing"),
    (12, "calibration_ongoing"),
    (13, "measurement_unavailable"),
    (14, "questionable_measurement"),
    (15, "invalid_measurement"),
];

const DEVICE_STATUS_BITS: [(u32, &str); 16] = [
    (0, "extended_display_update_ongoing"),
    (1, "equipment_malfunction"),
    (2, "signal_processing_irregularity"),
    (3, "inadequate_signal"),
    (4, "poor_signal"),
    (5, "low_perfusion"),
    (6, "erratic_signal"),
    (7, "non_pulsatile_signal"),
    (8, "questionable_pulse"),
    (9, "signal_analysis_ongoing"),
    (10, "sensor_interference"),
    (11, "sensor_unconnected_to_user"),
    (12, "unknown_sensor_connected"),
    (13, "sensor_displaced"),
    (14, "sensor_malfunctioning"),
    (15, "sensor_disconnected"),
];

fn set_bits(raw: u32, table: &[(u32, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(bit, _)| raw & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// Device and sensor status (u24). Bits 16–23 are reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlxDeviceStatus {
    /// The raw 24-bit value.
    pub raw: u32,
    /// Names of the bits that are set.
    pub set: Vec<&'static str>,
}

impl PlxDeviceStatus {
    /// True when the probe is off the finger or disconnected: the reading is not a measurement.
    pub fn sensor_off(&self) -> bool {
        self.raw & ((1 << 11) | (1 << 15)) != 0
    }
}

/// A spot-check reading (0x2A5E).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlxSpotCheck {
    /// SpO2 and pulse rate.
    #[serde(flatten)]
    pub reading: Spo2Pr,
    /// The device's clock at measurement, if sent.
    pub time_stamp: Option<DeviceDateTime>,
    /// Measurement status, if sent.
    pub measurement_status: Option<PlxMeasurementStatus>,
    /// Device and sensor status, if sent.
    pub device_status: Option<PlxDeviceStatus>,
    /// Pulse amplitude index, %, if sent.
    pub pulse_amplitude_index_percent: Option<Value>,
    /// Flag bit 4: the device says its clock is not set, so its time stamp means nothing.
    pub device_clock_not_set: bool,
}

/// A continuous reading (0x2A5F).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlxContinuous {
    /// SpO2 and pulse rate, normal averaging.
    #[serde(flatten)]
    pub normal: Spo2Pr,
    /// Fast-responding SpO2 and pulse rate, if sent.
    pub fast: Option<Spo2Pr>,
    /// Slow-responding SpO2 and pulse rate, if sent.
    pub slow: Option<Spo2Pr>,
    /// Measurement status, if sent.
    pub measurement_status: Option<PlxMeasurementStatus>,
    /// Device and sensor status, if sent.
    pub device_status: Option<PlxDeviceStatus>,
    /// Pulse amplitude index, %, if sent.
    pub pulse_amplitude_index_percent: Option<Value>,
}

fn measurement_status(c: &mut Cursor<'_>) -> Result<PlxMeasurementStatus, DecodeError> {
    let raw = c.u16("measurement_status")?;
    Ok(PlxMeasurementStatus {
        raw,
        set: set_bits(u32::from(raw), &MEASUREMENT_STATUS_BITS),
    })
}

fn device_status(c: &mut Cursor<'_>) -> Result<PlxDeviceStatus, DecodeError> {
    let raw = c.u24("device_and_sensor_status")?;
    Ok(PlxDeviceStatus {
        raw,
        set: set_bits(raw, &DEVICE_STATUS_BITS),
    })
}

fn pulse_amplitude_index(c: &mut Cursor<'_>) -> Result<Value, DecodeError> {
    percent(
        "pulse_amplitude_index",
        sfloat(c.u16("pulse_amplitude_index")?),
    )
}

/// Decodes a PLX Spot-check Measurement (0x2A5E).
pub fn decode_spot_check(bytes: &[u8]) -> Result<PlxSpotCheck, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let reading = Spo2Pr::read(&mut c)?;
    let time_stamp = (flags & 0x01 != 0)
        .then(|| DeviceDateTime::read(&mut c, "time_stamp"))
        .transpose()?;
    let measurement_status = (flags & 0x02 != 0)
        .then(|| measurement_status(&mut c))
        .transpose()?;
    let device_status = (flags & 0x04 != 0)
        .then(|| device_status(&mut c))
        .transpose()?;
    let pai = (flags & 0x08 != 0)
        .then(|| pulse_amplitude_index(&mut c))
        .transpose()?;
    Ok(PlxSpotCheck {
        reading,
        time_stamp,
        measurement_status,
        device_status,
        pulse_amplitude_index_percent: pai,
        device_clock_not_set: flags & 0x10 != 0,
    })
}

/// Decodes a PLX Continuous Measurement (0x2A5F).
pub fn decode_continuous(bytes: &[u8]) -> Result<PlxContinuous, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let normal = Spo2Pr::read(&mut c)?;
    let fast = (flags & 0x01 != 0)
        .then(|| Spo2Pr::read(&mut c))
        .transpose()?;
    let slow = (flags & 0x02 != 0)
        .then(|| Spo2Pr::read(&mut c))
        .transpose()?;
    let measurement_status = (flags & 0x04 != 0)
        .then(|| measurement_status(&mut c))
        .transpose()?;
    let device_status = (flags & 0x08 != 0)
        .then(|| device_status(&mut c))
        .transpose()?;
    let pai = (flags & 0x10 != 0)
        .then(|| pulse_amplitude_index(&mut c))
        .transpose()?;
    Ok(PlxContinuous {
        normal,
        fast,
        slow,
        measurement_status,
        device_status,
        pulse_amplitude_index_percent: pai,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::ieee11073::Special;

    fn spot(hex: &str) -> PlxSpotCheck {
        decode_spot_check(&parse_hex(hex).unwrap()).unwrap()
    }

    fn cont(hex: &str) -> PlxContinuous {
        decode_continuous(&parse_hex(hex).unwrap()).unwrap()
    }

    fn pair(spo2: f64, pr: f64) -> Spo2Pr {
        Spo2Pr {
            spo2_percent: Value::Number(spo2),
            pulse_rate_per_min: Value::Number(pr),
        }
    }

    #[test]
    fn spot_check_vectors() {
        let r = spot("00 62 00 48 00");
        assert_eq!(r.reading, pair(98.0, 72.0));
        assert!(r.time_stamp.is_none() && !r.device_clock_not_set);

        let r = spot("0F 61 00 41 00 E8 07 03 05 0E 07 09 80 00 20 00 00 34 F0");
        assert_eq!(r.reading, pair(97.0, 65.0));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2024-03-05T14:07:09");
        assert_eq!(
            r.measurement_status.as_ref().unwrap().set,
            vec!["validated_data"]
        );
        assert_eq!(r.device_status.as_ref().unwrap().set, vec!["low_perfusion"]);
        assert_eq!(r.pulse_amplitude_index_percent, Some(Value::Number(5.2)));

        let r = spot("10 5F 00 58 00");
        assert_eq!(r.reading, pair(95.0, 88.0));
        assert!(r.device_clock_not_set);

        let r = spot("02 FF 07 FF 07 00 20");
        assert_eq!(r.reading.spo2_percent, Value::Special(Special::NaN));
        assert_eq!(r.reading.pulse_rate_per_min, Value::Special(Special::NaN));
        assert_eq!(
            r.measurement_status.unwrap().set,
            vec!["measurement_unavailable"]
        );
    }

    #[test]
    fn continuous_vectors() {
        assert_eq!(cont("00 62 00 48 00").normal, pair(98.0, 72.0));

        let r = cont("1C 60 00 3D 00 00 01 00 08 00 1F F0");
        assert_eq!(r.normal, pair(96.0, 61.0));
        assert_eq!(
            r.measurement_status.unwrap().set,
            vec!["fully_qualified_data"]
        );
        let dev = r.device_status.unwrap();
        assert_eq!(
            (dev.raw, dev.set.clone()),
            (0x000800, vec!["sensor_unconnected_to_user"])
        );
        assert!(dev.sensor_off());
        assert_eq!(r.pulse_amplitude_index_percent, Some(Value::Number(3.1)));

        let r = cont("03 61 00 46 00 60 00 4A 00 61 00 45 00");
        assert_eq!(
            (r.normal, r.fast, r.slow),
            (
                pair(97.0, 70.0),
                Some(pair(96.0, 74.0)),
                Some(pair(97.0, 69.0))
            )
        );
    }

    #[test]
    fn spo2_above_100_is_impossible() {
        // SpO2 101
        let err = decode_spot_check(&parse_hex("00 65 00 48 00").unwrap()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::ImpossibleValue {
                field: "spo2",
                value: 101.0
            }
        );
    }

    #[test]
    fn fast_flag_without_bytes_is_truncation() {
        let err = decode_continuous(&parse_hex("01 62 00 48 00 60").unwrap()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "spo2",
                offset: 5,
                needed: 2,
                available: 1
            }
        );
    }
}
