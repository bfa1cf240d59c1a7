//! O2-family (O2Ring, Checkme O2, KidsO2, SleepU…) real-time payloads of the 0xAA protocol
//! (protocol notes §1.3): answers to commands 0x17 and 0x1B.

use serde::Serialize;

use crate::devices::cursor::Cursor;
use crate::devices::error::DecodeError;
use crate::devices::units::percent_u8;

/// Charging state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeState {
    /// 0.
    NotCharging,
    /// 1.
    Charging,
    /// 2.
    Full,
    /// Any other code.
    Unknown(u8),
}

impl ChargeState {
    fn from_code(c: u8) -> Self {
        match c {
            0 => Self::NotCharging,
            1 => Self::Charging,
            2 => Self::Full,
            other => Self::Unknown(other),
        }
    }
}

/// SpO2 byte: 0 while calibrating and 255 with no finger are "no value", not 0 % or 255 %.
fn spo2(raw: u8) -> Result<Option<u8>, DecodeError> {
    match raw {
        0 | 0xFF => Ok(None),
        v => percent_u8("spo2", v).map(Some),
    }
}

/// Answer to 0x17: real-time parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct O2LiveParams {
    /// SpO2, %; `None` while calibrating or with no finger.
    pub spo2_percent: Option<u8>,
    /// Pulse rate, beats per minute; `None` when 0.
    pub pulse_rate_per_min: Option<u16>,
    /// Step count.
    pub steps: u32,
    /// Battery, %.
    pub battery_percent: u8,
    /// Charging state.
    pub charge_state: ChargeState,
    /// Motion magnitude, device units.
    pub motion: u8,
    /// Perfusion index, raw device units (the scale is not confirmed for this family).
    pub perfusion_index_raw: u8,
    /// Sensor on the finger.
    pub worn: bool,
    /// Seconds left before the device reports lead-off.
    pub lead_off_countdown_s: u8,
    /// Optional alarm bits.
    pub alarm_bits: Option<u8>,
}

/// Decodes the answer to 0x17.
pub fn decode_live_params(payload: &[u8]) -> Result<O2LiveParams, DecodeError> {
    let mut c = Cursor::new(payload);
    let spo2_percent = spo2(c.u8("spo2")?)?;
    let pr = c.u16("pulse_rate")?;
    let steps = c.u32("steps")?;
    let battery_percent = percent_u8("battery", c.u8("battery")?)?;
    let charge_state = ChargeState::from_code(c.u8("charge_state")?);
    let motion = c.u8("motion")?;
    let perfusion_index_raw = c.u8("perfusion_index")?;
    let state = c.u8("state")?;
    let alarm_bits = (c.remaining() > 0).then(|| c.u8("alarm")).transpose()?;
    Ok(O2LiveParams {
        spo2_percent,
        pulse_rate_per_min: (pr != 0).then_some(pr),
        steps,
        battery_percent,
        charge_state,
        motion,
        perfusion_index_raw,
        worn: state & 0x01 != 0,
        lead_off_countdown_s: state >> 4,
        alarm_bits,
    })
}

/// Answer to 0x1B: real-time parameters and pleth wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct O2LiveWave {
    /// SpO2, %; `None` while calibrating or with no finger.
    pub spo2_percent: Option<u8>,
    /// Pulse rate, beats per minute; `None` when 0.
    pub pulse_rate_per_min: Option<u16>,
    /// Battery, %.
    pub battery_percent: u8,
    /// Charging state.
    pub charge_state: ChargeState,
    /// Perfusion index, raw device units.
    pub perfusion_index_raw: u8,
    /// Sensor on the finger.
    pub worn: bool,
    /// Pleth samples as sent (156 and 246 are pulse markers in the vendor SDK).
    pub pleth: Vec<u8>,
}

/// Decodes the answer to 0x1B.
pub fn decode_live_wave(payload: &[u8]) -> Result<O2LiveWave, DecodeError> {
    let mut c = Cursor::new(payload);
    let spo2_percent = spo2(c.u8("spo2")?)?;
    let pr = c.u16("pulse_rate")?;
    let battery_percent = percent_u8("battery", c.u8("battery")?)?;
    let charge_state = ChargeState::from_code(c.u8("charge_state")?);
    let perfusion_index_raw = c.u8("perfusion_index")?;
    let state = c.u8("state")?;
    c.take("reserved", 3)?;
    let n = usize::from(c.u16("wave_length")?);
    let pleth = c.take("wave", n)?.to_vec();
    Ok(O2LiveWave {
        spo2_percent,
        pulse_rate_per_min: (pr != 0).then_some(pr),
        battery_percent,
        charge_state,
        perfusion_index_raw,
        worn: state == 1,
        pleth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::viatom::aa_frame::decode_response;

    #[test]
    fn live_params_vector() {
        let f = parse_hex("55 00 FF 00 00 0C 00 61 48 00 00 00 00 00 55 00 03 19 01 0D").unwrap();
        let r = decode_live_params(decode_response(&f).unwrap().payload).unwrap();
        assert_eq!(
            r,
            O2LiveParams {
                spo2_percent: Some(97),
                pulse_rate_per_min: Some(72),
                steps: 0,
                battery_percent: 85,
                charge_state: ChargeState::NotCharging,
                motion: 3,
                perfusion_index_raw: 25,
                worn: true,
                lead_off_countdown_s: 0,
                alarm_bits: None,
            }
        );
    }

    #[test]
    fn live_wave_vector() {
        let f =
            parse_hex("55 00 FF 00 00 11 00 60 41 00 50 00 2A 01 00 00 00 05 00 0A 14 1E 28 32 76")
                .unwrap();
        let r = decode_live_wave(decode_response(&f).unwrap().payload).unwrap();
        assert_eq!(
            (r.spo2_percent, r.pulse_rate_per_min, r.battery_percent),
            (Some(96), Some(65), 80)
        );
        assert_eq!((r.perfusion_index_raw, r.worn), (42, true));
        assert_eq!(r.pleth, vec![10, 20, 30, 40, 50]);
    }

    #[test]
    fn no_finger_is_no_value_and_bad_values_are_rejected() {
        let mut p = parse_hex("61 48 00 00 00 00 00 55 00 03 19 01").unwrap();
        p[0] = 0xFF;
        assert_eq!(decode_live_params(&p).unwrap().spo2_percent, None);
        p[0] = 120;
        assert_eq!(
            decode_live_params(&p).unwrap_err(),
            DecodeError::ImpossibleValue {
                field: "spo2",
                value: 120.0
            }
        );
        // Wave length larger than the payload.
        let w = parse_hex("60 41 00 50 00 2A 01 00 00 00 09 00 0A 14").unwrap();
        assert_eq!(decode_live_wave(&w).unwrap_err().reason(), "truncated");
    }
}
