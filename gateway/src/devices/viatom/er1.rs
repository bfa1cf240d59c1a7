//! ER1 / ER2 / DuoEK / VBeat ECG patches: the real-time answer to 0xA5 command 0x03
//! (protocol notes §1.4). ECG at 125 samples/s, 2.4672 µV per count, `0x7FFF` = invalid.

use serde::Serialize;

use super::ecg_gain::{ER1_UV_PER_COUNT, INVALID_SAMPLE};
use super::samples_uv;
use crate::devices::cursor::Cursor;
use crate::devices::error::DecodeError;
use crate::devices::units::percent_u8;

/// ER1 live ECG sample rate.
pub const SAMPLE_RATE_HZ: u32 = 125;

/// Battery state bits 6–7 of the system flags (also used by the BP2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatteryState {
    /// 0.
    Normal,
    /// 1.
    Charging,
    /// 2.
    Full,
    /// 3.
    Low,
}

impl BatteryState {
    pub(crate) fn from_code(code: u8) -> Self {
        match code & 0x03 {
            0 => Self::Normal,
            1 => Self::Charging,
            2 => Self::Full,
            _ => Self::Low,
        }
    }
}

/// One real-time answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Er1Live {
    /// Heart rate, beats per minute.
    pub heart_rate_per_min: u16,
    /// R-wave flag (a beat in this block).
    pub r_wave: bool,
    /// Poor signal.
    pub poor_signal: bool,
    /// Battery state.
    pub battery_state: BatteryState,
    /// Battery, %.
    pub battery_percent: u8,
    /// Seconds recorded so far (valid while measuring).
    pub record_time_s: u32,
    /// Current run state (low nibble): 0 idle, 1 preparing, 2 measuring, 3 saving, 4 saved,
    /// 5 under 30 s not saved, 6 retest, 7 lead off.
    pub run_state: u8,
    /// ECG samples as sent, counts.
    pub samples: Vec<i16>,
    /// The same samples in µV; `null` for the invalid marker (lead off).
    pub samples_uv: Vec<Option<f64>>,
    /// µV per count.
    pub uv_per_count: f64,
    /// Samples per second.
    pub sample_rate_hz: u32,
}

/// Decodes the payload of a 0x03 response.
pub fn decode_live(payload: &[u8]) -> Result<Er1Live, DecodeError> {
    let mut c = Cursor::new(payload);
    let heart_rate_per_min = c.u16("heart_rate")?;
    let flags = c.u8("system_flags")?;
    let battery_percent = percent_u8("battery", c.u8("battery")?)?;
    let record_time_s = c.u32("record_time")?;
    let run_state = c.u8("run_status")? & 0x0F;
    c.take("reserved", 11)?;
    let n = usize::from(c.u16("sample_count")?);
    let wave = c.take("samples", 2 * n)?;
    let samples: Vec<i16> = wave
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    Ok(Er1Live {
        heart_rate_per_min,
        r_wave: flags & 0x01 != 0,
        poor_signal: flags & 0x04 != 0,
        battery_state: BatteryState::from_code(flags >> 6),
        battery_percent,
        record_time_s,
        run_state,
        samples_uv: samples_uv(&samples, ER1_UV_PER_COUNT, Some(INVALID_SAMPLE)),
        samples,
        uv_per_count: ER1_UV_PER_COUNT,
        sample_rate_hz: SAMPLE_RATE_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::viatom::a5_frame::{self, PacketType};

    #[test]
    fn live_vector_from_protocol_notes() {
        let f = parse_hex(
            "A5 03 FC 01 01 1E 00 48 00 00 5A 23 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 04 00 64 00 CE FF 00 00 FF 7F E1",
        )
        .unwrap();
        let frame = a5_frame::decode(&f).unwrap();
        assert_eq!(
            (frame.command, frame.packet_type, frame.seq),
            (0x03, PacketType::Ok, 1)
        );
        let r = decode_live(frame.payload).unwrap();
        assert_eq!(
            (
                r.heart_rate_per_min,
                r.r_wave,
                r.battery_percent,
                r.record_time_s,
                r.run_state
            ),
            (72, false, 90, 35, 2)
        );
        assert_eq!(r.battery_state, BatteryState::Normal);
        assert_eq!(r.samples, vec![100, -50, 0, 0x7FFF]);
        assert_eq!(
            r.samples_uv,
            vec![Some(246.72), Some(-123.36), Some(0.0), None]
        );
    }

    #[test]
    fn sample_count_beyond_payload_is_truncation() {
        let mut p =
            parse_hex("48 00 00 5A 23 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 04 00 64 00")
                .unwrap();
        assert_eq!(decode_live(&p).unwrap_err().reason(), "truncated");
        p[3] = 0xC8; // battery 200 %
        assert_eq!(decode_live(&p).unwrap_err().reason(), "impossible_value");
    }
}
