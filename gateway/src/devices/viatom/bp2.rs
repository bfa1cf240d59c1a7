//! BP2 / BP2A / BP2T / BP2W / LP-BP2W blood pressure + ECG monitors (protocol notes A.3):
//! the real-time answer to 0xA5 command 0x08 and the device information of 0xE1.

use serde::Serialize;

use super::ecg_gain::{BP2_UV_PER_COUNT, INVALID_SAMPLE};
use super::er1::BatteryState;
use super::samples_uv;
use crate::devices::cursor::Cursor;
use crate::devices::date_time::DeviceDateTime;
use crate::devices::error::DecodeError;
use crate::devices::units::percent_u8;

/// BP2 live ECG sample rate.
pub const LIVE_SAMPLE_RATE_HZ: u32 = 250;

/// What the monitor is doing (status byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bp2Status {
    /// 0.
    Sleep,
    /// 1.
    History,
    /// 2.
    Charging,
    /// 3.
    Ready,
    /// 4.
    BpMeasuring,
    /// 5.
    BpDone,
    /// 6.
    EcgMeasuring,
    /// 7.
    EcgDone,
    /// 15.
    TripleBpMeasuring,
    /// 16.
    TripleBpWaiting,
    /// 17.
    TripleBpDone,
    /// Any other code.
    Unknown(u8),
}

impl Bp2Status {
    fn from_code(c: u8) -> Self {
        match c {
            0 => Self::Sleep,
            1 => Self::History,
            2 => Self::Charging,
            3 => Self::Ready,
            4 => Self::BpMeasuring,
            5 => Self::BpDone,
            6 => Self::EcgMeasuring,
            7 => Self::EcgDone,
            15 => Self::TripleBpMeasuring,
            16 => Self::TripleBpWaiting,
            17 => Self::TripleBpDone,
            other => Self::Unknown(other),
        }
    }
}

/// The 20-byte block of a real-time answer, by block type (byte 9).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "block", rename_all = "snake_case")]
pub enum Bp2Block {
    /// 0: cuff inflating or deflating.
    BpMeasuring {
        /// Cuff pressure, mmHg (sent in 0.01 mmHg).
        cuff_pressure_mmhg: f64,
        /// A pulse is being seen.
        pulse_seen: bool,
        /// Pulse rate, beats per minute.
        pulse_rate_per_min: u16,
        /// Deflating (else inflating).
        deflating: bool,
    },
    /// 1: finished measurement.
    BpResult {
        /// Systolic, mmHg.
        systolic_mmhg: u16,
        /// Diastolic, mmHg.
        diastolic_mmhg: u16,
        /// Mean arterial pressure, mmHg.
        mean_arterial_mmhg: u16,
        /// Pulse rate, beats per minute.
        pulse_rate_per_min: u16,
        /// Device result code (0 = normal).
        result_code: u8,
    },
    /// 2: ECG recording in progress.
    EcgMeasuring {
        /// Seconds recorded.
        elapsed_s: u32,
        /// Poor signal.
        poor_signal: bool,
        /// Lead off.
        lead_off: bool,
        /// Heart rate, beats per minute.
        heart_rate_per_min: u16,
    },
    /// 3: ECG recording finished.
    EcgResult {
        /// Device diagnosis bits.
        result_bits: u32,
        /// Heart rate, beats per minute.
        heart_rate_per_min: u16,
        /// QRS duration, ms.
        qrs_ms: u16,
        /// Premature ventricular contractions counted.
        pvc_count: u16,
        /// Corrected QT, ms.
        qtc_ms: u16,
    },
    /// Any other block type.
    Unknown {
        /// The block type code.
        block_type: u8,
    },
}

/// One real-time answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bp2Live {
    /// Device state.
    pub status: Bp2Status,
    /// Battery state.
    pub battery_state: BatteryState,
    /// Battery, %.
    pub battery_percent: u8,
    /// Battery voltage, mV.
    pub battery_mv: u16,
    /// The measuring/result block.
    pub block: Bp2Block,
    /// ECG samples as sent, counts.
    pub samples: Vec<i16>,
    /// The same samples in µV; `null` for the invalid marker.
    pub samples_uv: Vec<Option<f64>>,
    /// µV per count.
    pub uv_per_count: f64,
    /// Samples per second.
    pub sample_rate_hz: u32,
}

fn block(block_type: u8, b: &[u8; 20]) -> Bp2Block {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    match block_type {
        0 => Bp2Block::BpMeasuring {
            cuff_pressure_mmhg: f64::from(u16_at(1)) / 100.0,
            pulse_seen: b[3] == 0,
            pulse_rate_per_min: u16_at(4),
            deflating: b[6] == 1,
        },
        1 => Bp2Block::BpResult {
            systolic_mmhg: u16_at(3),
            diastolic_mmhg: u16_at(5),
            mean_arterial_mmhg: u16_at(7),
            pulse_rate_per_min: u16_at(9),
            result_code: b[11],
        },
        2 => {
            let flags = u32_at(4);
            Bp2Block::EcgMeasuring {
                elapsed_s: u32_at(0),
                poor_signal: flags & 0x01 != 0,
                lead_off: flags & 0x02 != 0,
                heart_rate_per_min: u16_at(8),
            }
        }
        3 => Bp2Block::EcgResult {
            result_bits: u32_at(0),
            heart_rate_per_min: u16_at(4),
            qrs_ms: u16_at(6),
            pvc_count: u16_at(8),
            qtc_ms: u16_at(10),
        },
        other => Bp2Block::Unknown { block_type: other },
    }
}

/// Decodes the payload of a 0x08 response.
pub fn decode_live(payload: &[u8]) -> Result<Bp2Live, DecodeError> {
    let mut c = Cursor::new(payload);
    let status = Bp2Status::from_code(c.u8("status")?);
    let battery_state = BatteryState::from_code(c.u8("battery_state")?);
    let battery_percent = percent_u8("battery", c.u8("battery")?)?;
    let battery_mv = c.u16("battery_voltage")?;
    c.take("triple_bp_and_reserved", 4)?;
    let block_type = c.u8("block_type")?;
    let block_bytes = c.array::<20>("block")?;
    let w = usize::from(c.u16("wave_length")?);
    if !w.is_multiple_of(2) {
        return Err(DecodeError::BadLength {
            declared: w,
            actual: w - 1,
        });
    }
    let wave = c.take("samples", w)?;
    let samples: Vec<i16> = wave
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    Ok(Bp2Live {
        status,
        battery_state,
        battery_percent,
        battery_mv,
        block: block(block_type, &block_bytes),
        samples_uv: samples_uv(&samples, BP2_UV_PER_COUNT, Some(INVALID_SAMPLE)),
        samples,
        uv_per_count: BP2_UV_PER_COUNT,
        sample_rate_hz: LIVE_SAMPLE_RATE_HZ,
    })
}

/// Device information (answer to 0xE1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LepuDeviceInfo {
    /// Hardware version letter.
    pub hardware: char,
    /// Firmware version, `major.minor.patch`.
    pub firmware: String,
    /// Bootloader version.
    pub bootloader: String,
    /// Branch code.
    pub branch_code: String,
    /// Device type code.
    pub device_type: u16,
    /// Protocol version, `major.minor`.
    pub protocol: String,
    /// The device's clock when it answered.
    pub clock: DeviceDateTime,
    /// Largest frame the device handles, bytes.
    pub max_frame_bytes: u16,
    /// Serial number.
    pub serial_number: String,
}

fn ascii(field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
    let trimmed = bytes.split(|&b| b == 0).next().unwrap_or_default();
    if !trimmed.iter().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::Malformed {
            field,
            detail: format!("non-ASCII bytes {:02X?}", trimmed),
        });
    }
    Ok(trimmed.iter().map(|&b| char::from(b)).collect())
}

/// Decodes the payload of a 0xE1 response (BP2 layout, LP-BP2W verified on hardware).
pub fn decode_device_info(payload: &[u8]) -> Result<LepuDeviceInfo, DecodeError> {
    let mut c = Cursor::new(payload);
    let v = c.array::<9>("versions")?;
    let branch = c.take("branch_code", 8)?;
    c.take("reserved", 3)?;
    let device_type = c.u16("device_type")?;
    let [proto_minor, proto_major] = c.array::<2>("protocol_version")?;
    let clock = DeviceDateTime::read(&mut c, "clock")?;
    let max_frame_bytes = c.u16("max_frame")?;
    c.take("reserved", 4)?;
    let sn_len = usize::from(c.u8("serial_number_length")?);
    let sn = c.take("serial_number", sn_len)?;
    Ok(LepuDeviceInfo {
        hardware: char::from(v[0]),
        firmware: format!("{}.{}.{}", v[3], v[2], v[1]),
        bootloader: format!("{}.{}.{}", v[7], v[6], v[5]),
        branch_code: ascii("branch_code", branch)?,
        device_type,
        protocol: format!("{proto_major}.{proto_minor}"),
        clock,
        max_frame_bytes,
        serial_number: ascii("serial_number", sn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::viatom::a5_frame;

    fn live(hex: &str) -> Bp2Live {
        let f = parse_hex(hex).unwrap();
        let frame = a5_frame::decode(&f).unwrap();
        assert_eq!(frame.command, 0x08);
        decode_live(frame.payload).unwrap()
    }

    #[test]
    fn device_info_from_a_real_lp_bp2w() {
        let p = parse_hex("42 00 01 01 01 00 00 01 00 33 32 31 32 30 30 31 31 05 00 00 22 86 03 01 EA 07 03 07 17 06 37 02 01 00 00 00 00 0A 32 35 32 33 43 30 30 38 31 32").unwrap();
        let i = decode_device_info(&p).unwrap();
        assert_eq!(i.hardware, 'B');
        assert_eq!(
            (i.firmware.as_str(), i.bootloader.as_str()),
            ("1.1.0", "1.0.0")
        );
        assert_eq!(i.branch_code, "32120011");
        assert_eq!((i.device_type, i.protocol.as_str()), (0x8622, "1.3"));
        assert_eq!(i.clock.to_string(), "2026-03-07T23:06:55");
        assert_eq!(
            (i.max_frame_bytes, i.serial_number.as_str()),
            (258, "2523C00812")
        );
        assert_eq!(
            decode_device_info(&p[..45]).unwrap_err().reason(),
            "truncated"
        );
    }

    #[test]
    fn bp_done_vector() {
        let r = live(
            "A5 08 F7 01 01 20 00 05 00 50 3C 0F 00 00 00 00 01 00 00 00 7B 00 50 00 5E 00 46 00 00 00 00 00 00 00 00 00 00 00 00 42",
        );
        assert_eq!(
            (r.status, r.battery_state, r.battery_percent, r.battery_mv),
            (Bp2Status::BpDone, BatteryState::Normal, 80, 3900)
        );
        assert_eq!(
            r.block,
            Bp2Block::BpResult {
                systolic_mmhg: 123,
                diastolic_mmhg: 80,
                mean_arterial_mmhg: 94,
                pulse_rate_per_min: 70,
                result_code: 0
            }
        );
        assert!(r.samples.is_empty());
    }

    #[test]
    fn ecg_measuring_vector() {
        let r = live(
            "A5 08 F7 01 02 28 00 06 01 5F 04 10 00 00 00 00 02 0C 00 00 00 00 00 00 00 48 00 00 00 00 00 00 00 00 00 00 00 08 00 64 00 CE FF 00 00 FF 7F AA",
        );
        assert_eq!(
            (r.status, r.battery_state, r.battery_percent, r.battery_mv),
            (Bp2Status::EcgMeasuring, BatteryState::Charging, 95, 4100)
        );
        assert_eq!(
            r.block,
            Bp2Block::EcgMeasuring {
                elapsed_s: 12,
                poor_signal: false,
                lead_off: false,
                heart_rate_per_min: 72
            }
        );
        assert_eq!(
            r.samples_uv,
            vec![Some(309.8), Some(-154.9), Some(0.0), None]
        );
    }

    #[test]
    fn bp_measuring_vector() {
        let r = live(
            "A5 08 F7 01 03 20 00 04 00 50 3C 0F 00 00 00 00 00 00 98 3A 00 44 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 B1",
        );
        assert_eq!(r.status, Bp2Status::BpMeasuring);
        assert_eq!(
            r.block,
            Bp2Block::BpMeasuring {
                cuff_pressure_mmhg: 150.0,
                pulse_seen: true,
                pulse_rate_per_min: 68,
                deflating: false
            }
        );
    }
}
