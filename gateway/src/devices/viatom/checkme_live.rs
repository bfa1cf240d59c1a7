//! The Checkme Pro "Remote Monitor" live stream (protocol notes A.1): frames `A5 5A`, total length,
//! tagged blocks, two check bytes. One frame per 40 ms carries 5 ECG and 5 pleth samples
//! (125 samples/s each).
//!
//! No public source verifies the two check bytes, so checking them is a per-model switch
//! ([`CheckBytes`]). The decoder always reports which of a few candidate algorithms match, so a
//! deployment can settle the question from a capture of the real device (see the README).

use serde::Serialize;

use super::ecg_gain::CHECKME_LIVE_UV_PER_COUNT;
use super::samples_uv;
use crate::devices::cursor::Cursor;
use crate::devices::error::{DecodeError, Hex};
use crate::devices::reassembler::FrameCheck;

/// Live ECG and pleth sample rate.
pub const SAMPLE_RATE_HZ: u32 = 125;
/// Bytes before the first tag (`A5 5A` + length).
const HEADER: usize = 3;
/// Trailing check bytes.
const CHECK: usize = 2;

/// A candidate algorithm for the two trailing check bytes, computed over every byte before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckAlgorithm {
    /// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), little-endian.
    Crc16CcittFalse,
    /// CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF), little-endian.
    Crc16Modbus,
    /// 16-bit sum of the bytes, little-endian.
    Sum16,
}

impl CheckAlgorithm {
    /// Every candidate, for reporting which ones match a frame.
    pub const ALL: [Self; 3] = [Self::Crc16CcittFalse, Self::Crc16Modbus, Self::Sum16];

    /// The two bytes this algorithm expects for `bytes`.
    pub fn compute(self, bytes: &[u8]) -> [u8; 2] {
        let v: u16 = match self {
            Self::Crc16CcittFalse => bytes.iter().fold(0xFFFF, |mut crc, &b| {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x1021
                    } else {
                        crc << 1
                    };
                }
                crc
            }),
            Self::Crc16Modbus => bytes.iter().fold(0xFFFF, |mut crc, &b| {
                crc ^= u16::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xA001
                    } else {
                        crc >> 1
                    };
                }
                crc
            }),
            Self::Sum16 => bytes
                .iter()
                .fold(0u16, |s, &b| s.wrapping_add(u16::from(b))),
        };
        v.to_le_bytes()
    }
}

/// Whether a model's live frames must carry valid check bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckBytes {
    /// Accept frames on structure alone (length and tags). The default: the algorithm is unknown.
    #[default]
    Unverified,
    /// Require CRC-16/CCITT-FALSE.
    Crc16CcittFalse,
    /// Require CRC-16/MODBUS.
    Crc16Modbus,
    /// Require a 16-bit byte sum.
    Sum16,
}

impl CheckBytes {
    fn algorithm(self) -> Option<CheckAlgorithm> {
        match self {
            Self::Unverified => None,
            Self::Crc16CcittFalse => Some(CheckAlgorithm::Crc16CcittFalse),
            Self::Crc16Modbus => Some(CheckAlgorithm::Crc16Modbus),
            Self::Sum16 => Some(CheckAlgorithm::Sum16),
        }
    }
}

/// ECG block (tag `01`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcgBlock {
    /// 5 samples as sent, counts.
    pub samples: [i16; 5],
    /// The same samples in µV.
    pub samples_uv: Vec<Option<f64>>,
    /// µV per count.
    pub uv_per_count: f64,
    /// Heart rate, beats per minute; `None` when the device sends 0 (no value yet).
    pub heart_rate_per_min: Option<u16>,
    /// QRS duration, ms.
    pub qrs_ms: u16,
    /// ST level, mV (sent in 0.01 mV; read as signed, which the sources do not settle).
    pub st_mv: f64,
    /// PVCs counted.
    pub pvc_count: u16,
    /// An R wave is in this block.
    pub r_wave: bool,
    /// Device analysis result code.
    pub result: u8,
}

/// SpO2 block (tag `02`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spo2Block {
    /// 5 pleth samples.
    pub pleth: [u16; 5],
    /// Pulse rate, beats per minute; `None` when 0.
    pub pulse_rate_per_min: Option<u16>,
    /// SpO2, %; `None` when 0 or above 100 (the device's "no value" codes).
    pub spo2_percent: Option<u8>,
    /// Perfusion index, %.
    pub perfusion_index_percent: f64,
    /// A pulse beat is in this block.
    pub pulse: bool,
    /// Device analysis result code.
    pub result: u8,
}

/// One live frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckmeLive {
    /// ECG block, if present.
    pub ecg: Option<EcgBlock>,
    /// SpO2 block, if present.
    pub spo2: Option<Spo2Block>,
    /// Battery, % (tag `F1`).
    pub battery_percent: Option<u8>,
    /// Packet counter (second byte after tag `F3`).
    pub packet_counter: Option<u8>,
    /// A tag this decoder does not know; parsing stopped there, earlier blocks are kept.
    pub unknown_tag: Option<u8>,
    /// The two trailing check bytes as sent.
    pub check_bytes: String,
    /// Candidate algorithms whose result equals the check bytes (evidence for the README's check).
    pub check_matches: Vec<CheckAlgorithm>,
    /// Samples per second of the ECG and pleth blocks.
    pub sample_rate_hz: u32,
}

/// Looks at the start of a buffer for the reassembler.
pub(crate) fn check(buf: &[u8]) -> FrameCheck {
    match buf {
        [] => FrameCheck::Incomplete,
        [0xA5] => FrameCheck::Incomplete,
        [0xA5, 0x5A] => FrameCheck::Incomplete,
        [0xA5, 0x5A, len, ..] if usize::from(*len) >= HEADER + CHECK => {
            FrameCheck::Length(usize::from(*len))
        }
        _ => FrameCheck::NotAFrame,
    }
}

/// Decodes one complete live frame. `check_bytes` is the model's switch.
pub fn decode(frame: &[u8], check_bytes: CheckBytes) -> Result<CheckmeLive, DecodeError> {
    if frame.len() < HEADER + CHECK || frame[0] != 0xA5 || frame[1] != 0x5A {
        return Err(DecodeError::BadHeader {
            expected: "A5 5A len",
            got: Hex(frame[..frame.len().min(3)].to_vec()),
        });
    }
    let declared = usize::from(frame[2]);
    if declared != frame.len() {
        return Err(DecodeError::BadLength {
            declared,
            actual: frame.len(),
        });
    }
    let (body, check) = frame.split_at(frame.len() - CHECK);
    if let Some(alg) = check_bytes.algorithm() {
        let computed = alg.compute(body);
        if computed != check {
            return Err(DecodeError::BadCrc {
                received: check[0],
                computed: computed[0],
            });
        }
    }
    let mut out = CheckmeLive {
        ecg: None,
        spo2: None,
        battery_percent: None,
        packet_counter: None,
        unknown_tag: None,
        check_bytes: Hex(check.to_vec()).to_string(),
        check_matches: CheckAlgorithm::ALL
            .into_iter()
            .filter(|a| a.compute(body) == check)
            .collect(),
        sample_rate_hz: SAMPLE_RATE_HZ,
    };
    let mut c = Cursor::new(&body[HEADER..]);
    while c.remaining() > 0 {
        match c.u8("tag")? {
            0x01 => out.ecg = Some(ecg_block(&mut c)?),
            0x02 => out.spo2 = Some(spo2_block(&mut c)?),
            0xF1 => {
                out.battery_percent = Some(crate::devices::units::percent_u8(
                    "battery",
                    c.u8("battery")?,
                )?)
            }
            0xF2 => {}
            0xF3 => out.packet_counter = Some(c.array::<2>("packet_counter")?[1]),
            other => {
                out.unknown_tag = Some(other);
                break;
            }
        }
    }
    Ok(out)
}

fn ecg_block(c: &mut Cursor<'_>) -> Result<EcgBlock, DecodeError> {
    let mut samples = [0i16; 5];
    for s in &mut samples {
        *s = c.i16("ecg_sample")?;
    }
    let hr = c.u16("heart_rate")?;
    let qrs_ms = c.u16("qrs")?;
    let st = c.i16("st")?;
    let pvc_count = c.u16("pvc_count")?;
    let r_wave = c.u8("r_wave_flag")? != 0;
    let result = c.u8("ecg_result")?;
    Ok(EcgBlock {
        samples_uv: samples_uv(&samples, CHECKME_LIVE_UV_PER_COUNT, None),
        samples,
        uv_per_count: CHECKME_LIVE_UV_PER_COUNT,
        heart_rate_per_min: (hr != 0).then_some(hr),
        qrs_ms,
        st_mv: f64::from(st) / 100.0,
        pvc_count,
        r_wave,
        result,
    })
}

fn spo2_block(c: &mut Cursor<'_>) -> Result<Spo2Block, DecodeError> {
    let mut pleth = [0u16; 5];
    for p in &mut pleth {
        *p = c.u16("pleth_sample")?;
    }
    let pr = c.u16("pulse_rate")?;
    let spo2 = c.u8("spo2")?;
    let pi = c.u8("perfusion_index")?;
    let pulse = c.u8("pulse_flag")? != 0;
    let result = c.u8("spo2_result")?;
    Ok(Spo2Block {
        pleth,
        pulse_rate_per_min: (pr != 0).then_some(pr),
        spo2_percent: (1..=100).contains(&spo2).then_some(spo2),
        perfusion_index_percent: f64::from(pi) / 10.0,
        pulse,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn live(hex: &str) -> CheckmeLive {
        decode(&parse_hex(hex).unwrap(), CheckBytes::Unverified).unwrap()
    }

    const ECG_SPO2: &str = "A5 5A 2D 01 00 00 2E 00 5D 00 2E 00 ED FF 48 00 58 00 05 00 00 00 01 00 02 0A 00 23 00 3C 00 2D 00 14 00 48 00 61 19 01 00 F1 55 00 00";

    #[test]
    fn ecg_and_spo2_vector() {
        let r = live(ECG_SPO2);
        let ecg = r.ecg.unwrap();
        assert_eq!(ecg.samples, [0, 46, 93, 46, -19]);
        let mv: Vec<f64> = ecg
            .samples_uv
            .iter()
            .map(|u| (u.unwrap() / 1000.0 * 10000.0).round() / 10000.0)
            .collect();
        assert_eq!(mv, vec![0.0, 0.4954, 1.0016, 0.4954, -0.2046]);
        assert_eq!(
            (
                ecg.heart_rate_per_min,
                ecg.qrs_ms,
                ecg.st_mv,
                ecg.pvc_count,
                ecg.r_wave
            ),
            (Some(72), 88, 0.05, 0, true)
        );
        let spo2 = r.spo2.unwrap();
        assert_eq!(spo2.pleth, [10, 35, 60, 45, 20]);
        assert_eq!(
            (
                spo2.pulse_rate_per_min,
                spo2.spo2_percent,
                spo2.perfusion_index_percent,
                spo2.pulse
            ),
            (Some(72), Some(97), 2.5, true)
        );
        assert_eq!(r.battery_percent, Some(85));
        assert_eq!((r.unknown_tag, r.check_bytes.as_str()), (None, "00 00"));
    }

    #[test]
    fn spo2_only_vector() {
        let r = live("A5 5A 18 02 0A 00 23 00 3C 00 2D 00 14 00 48 00 61 19 01 00 F1 3C 00 00");
        assert!(r.ecg.is_none());
        let spo2 = r.spo2.unwrap();
        assert_eq!(
            (spo2.pleth, spo2.pulse_rate_per_min, spo2.spo2_percent),
            ([10, 35, 60, 45, 20], Some(72), Some(97))
        );
        assert_eq!(r.battery_percent, Some(60));
    }

    #[test]
    fn ecg_only_vector_with_packet_counter() {
        let r = live(
            "A5 5A 1F 01 00 00 2E 00 5D 00 2E 00 ED FF 48 00 58 00 05 00 00 00 01 00 F1 55 F3 00 07 00 00",
        );
        assert!(r.spo2.is_none());
        assert_eq!(r.ecg.unwrap().samples, [0, 46, 93, 46, -19]);
        assert_eq!((r.battery_percent, r.packet_counter), (Some(85), Some(7)));
    }

    #[test]
    fn unknown_tag_stops_parsing_but_keeps_earlier_blocks() {
        let r = live("A5 5A 0A F1 55 7E 01 02 00 00");
        assert_eq!((r.battery_percent, r.unknown_tag), (Some(85), Some(0x7E)));
    }

    #[test]
    fn block_overrunning_the_frame_is_truncation() {
        // Length says 8: F1 55 then tag 01 with no room for its 20 bytes.
        let err = decode(
            &parse_hex("A5 5A 08 F1 55 01 00 00").unwrap(),
            CheckBytes::Unverified,
        )
        .unwrap_err();
        assert_eq!(err.reason(), "truncated");
        assert_eq!(
            decode(
                &parse_hex("A5 5A 09 F1 55 00 00").unwrap(),
                CheckBytes::Unverified
            )
            .unwrap_err()
            .reason(),
            "bad_length"
        );
    }

    #[test]
    fn verified_check_bytes_are_a_per_model_switch() {
        let mut f = parse_hex(ECG_SPO2).unwrap();
        // The documented vector carries placeholder 00 00: unverified accepts, a strict model rejects.
        assert_eq!(
            decode(&f, CheckBytes::Crc16Modbus).unwrap_err().reason(),
            "bad_crc"
        );
        let n = f.len();
        let good = CheckAlgorithm::Crc16Modbus.compute(&f[..n - 2]);
        f[n - 2..].copy_from_slice(&good);
        let r = decode(&f, CheckBytes::Crc16Modbus).unwrap();
        assert!(r.check_matches.contains(&CheckAlgorithm::Crc16Modbus));
    }

    #[test]
    fn crc16_candidates_match_their_check_values() {
        assert_eq!(
            u16::from_le_bytes(CheckAlgorithm::Crc16CcittFalse.compute(b"123456789")),
            0x29B1
        );
        assert_eq!(
            u16::from_le_bytes(CheckAlgorithm::Crc16Modbus.compute(b"123456789")),
            0x4B37
        );
    }
}
