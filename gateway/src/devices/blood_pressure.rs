//! Blood Pressure Service 0x1810: Blood Pressure Measurement 0x2A35 and Intermediate Cuff
//! Pressure 0x2A36 (protocol notes §2.3). Both share one layout; values are reported in mmHg
//! whatever unit the cuff used.

use serde::Serialize;

use super::cursor::Cursor;
use super::date_time::DeviceDateTime;
use super::error::DecodeError;
use super::ieee11073::{Value, sfloat};
use super::units::{MMHG_PER_KPA, non_negative, round_centi};

/// The unit a device used on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PressureUnit {
    /// Millimetres of mercury.
    #[serde(rename = "mm[Hg]")]
    Mmhg,
    /// Kilopascal.
    #[serde(rename = "kPa")]
    Kpa,
}

impl PressureUnit {
    fn from_flags(flags: u8) -> Self {
        if flags & 0x01 != 0 {
            Self::Kpa
        } else {
            Self::Mmhg
        }
    }
}

/// Pulse rate range bits (3–4) of the measurement status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PulseRateRange {
    /// Within range.
    WithinRange,
    /// Above the device's upper limit.
    AboveUpperLimit,
    /// Below the device's lower limit.
    BelowLowerLimit,
    /// Reserved code 3.
    Reserved,
}

/// Measurement status (u16) of a blood pressure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BloodPressureStatus {
    /// The raw word, for audit.
    pub raw: u16,
    /// Bit 0.
    pub body_movement: bool,
    /// Bit 1.
    pub cuff_too_loose: bool,
    /// Bit 2.
    pub irregular_pulse: bool,
    /// Bits 3–4.
    pub pulse_rate_range: PulseRateRange,
    /// Bit 5.
    pub improper_position: bool,
}

impl BloodPressureStatus {
    fn from_raw(raw: u16) -> Self {
        Self {
            raw,
            body_movement: raw & 0x01 != 0,
            cuff_too_loose: raw & 0x02 != 0,
            irregular_pulse: raw & 0x04 != 0,
            pulse_rate_range: match (raw >> 3) & 0x03 {
                0 => PulseRateRange::WithinRange,
                1 => PulseRateRange::AboveUpperLimit,
                2 => PulseRateRange::BelowLowerLimit,
                _ => PulseRateRange::Reserved,
            },
            improper_position: raw & 0x20 != 0,
        }
    }
}

/// A finished blood pressure measurement (0x2A35).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BloodPressure {
    /// The unit the cuff used on the air; the values below are in mmHg either way.
    pub reported_unit: PressureUnit,
    /// Systolic pressure, mmHg.
    pub systolic_mmhg: Value,
    /// Diastolic pressure, mmHg.
    pub diastolic_mmhg: Value,
    /// Mean arterial pressure, mmHg (often NaN).
    pub mean_arterial_mmhg: Value,
    /// The device's clock at measurement, if sent.
    pub time_stamp: Option<DeviceDateTime>,
    /// Pulse rate, beats per minute, if sent.
    pub pulse_rate_per_min: Option<Value>,
    /// The cuff's user slot; `None` when absent or 0xFF (unknown user).
    pub user_id: Option<u8>,
    /// Measurement status, if sent.
    pub status: Option<BloodPressureStatus>,
}

/// Intermediate cuff pressure during a measurement (0x2A36).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CuffPressure {
    /// The unit the cuff used on the air.
    pub reported_unit: PressureUnit,
    /// Current cuff pressure, mmHg.
    pub cuff_pressure_mmhg: Value,
    /// Pulse rate, beats per minute, if sent.
    pub pulse_rate_per_min: Option<Value>,
    /// Measurement status, if sent.
    pub status: Option<BloodPressureStatus>,
}

/// Decodes a Blood Pressure Measurement (0x2A35).
pub fn decode_measurement(bytes: &[u8]) -> Result<BloodPressure, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let unit = PressureUnit::from_flags(flags);
    let systolic = pressure(&mut c, "systolic", unit)?;
    let diastolic = pressure(&mut c, "diastolic", unit)?;
    let mean = pressure(&mut c, "mean_arterial_pressure", unit)?;
    let tail = Tail::read(&mut c, flags)?;
    Ok(BloodPressure {
        reported_unit: unit,
        systolic_mmhg: systolic,
        diastolic_mmhg: diastolic,
        mean_arterial_mmhg: mean,
        time_stamp: tail.time_stamp,
        pulse_rate_per_min: tail.pulse_rate,
        user_id: tail.user_id,
        status: tail.status,
    })
}

/// Decodes an Intermediate Cuff Pressure (0x2A36). The diastolic and MAP slots are unused (NaN by
/// the spec, zeros on some devices) and ignored.
pub fn decode_cuff_pressure(bytes: &[u8]) -> Result<CuffPressure, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let unit = PressureUnit::from_flags(flags);
    let cuff = pressure(&mut c, "cuff_pressure", unit)?;
    c.take("unused_diastolic_and_map", 4)?;
    let tail = Tail::read(&mut c, flags)?;
    Ok(CuffPressure {
        reported_unit: unit,
        cuff_pressure_mmhg: cuff,
        pulse_rate_per_min: tail.pulse_rate,
        status: tail.status,
    })
}

fn pressure(
    c: &mut Cursor<'_>,
    field: &'static str,
    unit: PressureUnit,
) -> Result<Value, DecodeError> {
    let v = non_negative(field, sfloat(c.u16(field)?))?;
    Ok(match unit {
        PressureUnit::Mmhg => v,
        PressureUnit::Kpa => v.map(|kpa| round_centi(kpa * MMHG_PER_KPA)),
    })
}

/// The optional fields after the three pressures, present according to the flags.
struct Tail {
    time_stamp: Option<DeviceDateTime>,
    pulse_rate: Option<Value>,
    user_id: Option<u8>,
    status: Option<BloodPressureStatus>,
}

impl Tail {
    fn read(c: &mut Cursor<'_>, flags: u8) -> Result<Self, DecodeError> {
        let time_stamp = (flags & 0x02 != 0)
            .then(|| DeviceDateTime::read(c, "time_stamp"))
            .transpose()?;
        let pulse_rate = (flags & 0x04 != 0)
            .then(|| {
                c.u16("pulse_rate")
                    .map(sfloat)
                    .and_then(|v| non_negative("pulse_rate", v))
            })
            .transpose()?;
        let user_id = (flags & 0x08 != 0)
            .then(|| c.u8("user_id"))
            .transpose()?
            .filter(|&u| u != 0xFF);
        let status = (flags & 0x10 != 0)
            .then(|| {
                c.u16("measurement_status")
                    .map(BloodPressureStatus::from_raw)
            })
            .transpose()?;
        // Bytes after the last flagged field are ignored: later spec revisions append fields, and
        // rejecting the whole record for them would lose a valid reading.
        Ok(Self {
            time_stamp,
            pulse_rate,
            user_id,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::ieee11073::Special;

    fn bp(hex: &str) -> BloodPressure {
        decode_measurement(&parse_hex(hex).unwrap()).unwrap()
    }

    fn num(v: f64) -> Value {
        Value::Number(v)
    }

    #[test]
    fn minimal_mmhg_record() {
        let r = bp("00 78 00 50 00 5D 00");
        assert_eq!(
            (r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg),
            (num(120.0), num(80.0), num(93.0))
        );
        assert_eq!(r.reported_unit, PressureUnit::Mmhg);
        assert_eq!(
            (r.time_stamp, r.pulse_rate_per_min, r.user_id, r.status),
            (None, None, None, None)
        );
    }

    #[test]
    fn full_record_with_irregular_pulse() {
        let r = bp("1E 8A 00 58 00 69 00 E8 07 03 05 0E 07 09 48 00 01 04 00");
        assert_eq!(
            (r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg),
            (num(138.0), num(88.0), num(105.0))
        );
        assert_eq!(r.time_stamp.unwrap().to_string(), "2024-03-05T14:07:09");
        assert_eq!(r.pulse_rate_per_min, Some(num(72.0)));
        assert_eq!(r.user_id, Some(1));
        let s = r.status.unwrap();
        assert!(s.irregular_pulse && !s.body_movement && !s.cuff_too_loose && !s.improper_position);
    }

    #[test]
    fn kpa_record_is_reported_in_mmhg() {
        let r = bp("07 A0 F0 6B F0 7D F0 DD 07 08 1A 09 0A 14 40 00");
        assert_eq!(r.reported_unit, PressureUnit::Kpa);
        assert_eq!(r.systolic_mmhg, num(round_centi(16.0 * MMHG_PER_KPA)));
        assert_eq!(r.diastolic_mmhg, num(round_centi(10.7 * MMHG_PER_KPA)));
        assert_eq!(r.mean_arterial_mmhg, num(round_centi(12.5 * MMHG_PER_KPA)));
        assert_eq!(r.systolic_mmhg, num(120.01));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2013-08-26T09:10:20");
        assert_eq!(r.pulse_rate_per_min, Some(num(64.0)));
    }

    #[test]
    fn nan_mean_arterial_pressure() {
        let r = bp("06 80 00 52 00 FF 07 E9 07 01 1F 17 3B 3A 3A 00");
        assert_eq!((r.systolic_mmhg, r.diastolic_mmhg), (num(128.0), num(82.0)));
        assert_eq!(r.mean_arterial_mmhg, Value::Special(Special::NaN));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2025-01-31T23:59:58");
        assert_eq!(r.pulse_rate_per_min, Some(num(58.0)));
    }

    #[test]
    fn nordic_full_record_with_unknown_year() {
        let r = bp("1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00");
        assert_eq!(r.mean_arterial_mmhg, num(120.0));
        assert_eq!(r.time_stamp.unwrap().to_string(), "????-04-17T20:41:59");
        assert_eq!(r.pulse_rate_per_min, Some(num(60.0)));
        let s = r.status.unwrap();
        assert_eq!(s.raw, 0x0027);
        assert!(s.body_movement && s.cuff_too_loose && s.irregular_pulse && s.improper_position);
        assert_eq!(s.pulse_rate_range, PulseRateRange::WithinRange);
    }

    #[test]
    fn nordic_kpa_record_with_pulse_below_range() {
        let r = bp("15 BD F0 0B 00 9F F0 3C 00 12 00");
        assert_eq!(r.systolic_mmhg, num(round_centi(18.9 * MMHG_PER_KPA)));
        assert_eq!(r.diastolic_mmhg, num(round_centi(11.0 * MMHG_PER_KPA)));
        assert_eq!(r.mean_arterial_mmhg, num(round_centi(15.9 * MMHG_PER_KPA)));
        assert_eq!(r.pulse_rate_per_min, Some(num(60.0)));
        let s = r.status.unwrap();
        assert!(s.cuff_too_loose);
        assert_eq!(s.pulse_rate_range, PulseRateRange::BelowLowerLimit);
    }

    #[test]
    fn nordic_minimal_record_in_mmhg_flag() {
        let r = bp("00 BD F0 0B 00 9F F0");
        assert_eq!(
            (r.systolic_mmhg, r.diastolic_mmhg, r.mean_arterial_mmhg),
            (num(18.9), num(11.0), num(15.9))
        );
    }

    #[test]
    fn unknown_user_0xff_is_no_user() {
        assert_eq!(bp("08 78 00 50 00 5D 00 FF").user_id, None);
    }

    #[test]
    fn flags_promising_absent_fields_are_truncation() {
        // Time stamp flag set, only 3 of 7 time bytes present.
        let err =
            decode_measurement(&parse_hex("02 78 00 50 00 5D 00 E8 07 03").unwrap()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "time_stamp",
                offset: 7,
                needed: 7,
                available: 3
            }
        );
        // Every prefix of a full record fails cleanly.
        let full = parse_hex("1E 8A 00 58 00 69 00 E8 07 03 05 0E 07 09 48 00 01 04 00").unwrap();
        for n in 0..full.len() {
            assert_eq!(
                decode_measurement(&full[..n]).unwrap_err().reason(),
                "truncated",
                "prefix {n}"
            );
        }
    }

    #[test]
    fn negative_pressure_is_impossible() {
        let err = decode_measurement(&parse_hex("00 FB 0F 50 00 5D 00").unwrap()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::ImpossibleValue {
                field: "systolic",
                value: -5.0
            }
        );
    }

    #[test]
    fn cuff_pressure_vectors() {
        let d = |h: &str| decode_cuff_pressure(&parse_hex(h).unwrap()).unwrap();
        assert_eq!(d("00 2D 00 FF 07 FF 07").cuff_pressure_mmhg, num(45.0));
        let r = d("04 98 00 FF 07 FF 07 46 00");
        assert_eq!(
            (r.cuff_pressure_mmhg, r.pulse_rate_per_min),
            (num(152.0), Some(num(70.0)))
        );
        let r = d("01 D5 F0 FF 07 FF 07");
        assert_eq!(
            (r.reported_unit, r.cuff_pressure_mmhg),
            (PressureUnit::Kpa, num(round_centi(21.3 * MMHG_PER_KPA)))
        );
        assert_eq!(d("00 D7 F0 00 00 00 00").cuff_pressure_mmhg, num(21.5));
        let r = d("15 6F F0 00 00 00 00 3C 00 12 00");
        assert_eq!(r.cuff_pressure_mmhg, num(round_centi(11.1 * MMHG_PER_KPA)));
        assert_eq!(r.pulse_rate_per_min, Some(num(60.0)));
        assert_eq!(r.status.unwrap().raw, 0x0012);
    }
}
