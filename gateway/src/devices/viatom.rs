//! Viatom / Lepu (Wellue) vendor protocols, all on one notification pipe per device
//! (protocol notes §1 and addendum A.1–A.3).
//!
//! - [`aa_frame`]: the 0xAA request / 0x55 response file protocol with CRC-8 (Checkme, O2 family).
//! - [`a5_frame`]: the 0xA5 framing with CRC-8 of the ER1/ER2 ECG patches and BP2 monitors.
//! - [`checkme_live`]: the `A5 5A` "Remote Monitor" stream of the Checkme Pro.
//! - [`o2`], [`er1`], [`bp2`]: payloads of the individual device families.
//!
//! Requests are built only from enums whose variants are the safe commands: the dangerous ones
//! (cuff inflation, mode switch, reboot, factory reset, file delete, firmware write) have no variant,
//! so no code path can send them.

pub mod a5_frame;
pub mod aa_frame;
pub mod bp2;
pub mod checkme_live;
pub mod er1;
pub mod o2;

use crate::devices::error::DecodeError;
use crate::devices::reassembler::FrameCheck;

/// CRC-8 with polynomial 0x07, init 0, no reflection, no final XOR (CRC-8/SMBUS), as both the
/// 0xAA and 0xA5 framings use it.
pub fn crc8_smbus(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// Header check shared by the 0xAA/0x55 and 0xA5 framings: start byte, byte 2 = NOT byte 1,
/// u16 LE payload length at offset 5, [`FRAME_OVERHEAD`] bytes around the payload.
pub(crate) fn check_inverted_header(
    buf: &[u8],
    start: u8,
    max_payload: usize,
    byte1_ok: impl Fn(u8) -> bool,
) -> FrameCheck {
    match buf {
        [] => FrameCheck::Incomplete,
        [first, ..] if *first != start => FrameCheck::NotAFrame,
        [_] | [_, _] => FrameCheck::Incomplete,
        [_, b1, b2, ..] if *b2 != !*b1 || !byte1_ok(*b1) => FrameCheck::NotAFrame,
        _ if buf.len() < 7 => FrameCheck::Incomplete,
        _ => {
            let n = usize::from(u16::from_le_bytes([buf[5], buf[6]]));
            if n > max_payload {
                FrameCheck::NotAFrame
            } else {
                FrameCheck::Length(FRAME_OVERHEAD + n)
            }
        }
    }
}

/// Bytes of header (7) and CRC (1) around the payload in both CRC-8 framings.
pub const FRAME_OVERHEAD: usize = 8;

/// Checks the declared length against the frame and the trailing CRC-8; returns the payload.
pub(crate) fn payload_after_crc(frame: &[u8]) -> Result<&[u8], DecodeError> {
    if frame.len() < 7 {
        return Err(DecodeError::Truncated {
            field: "header",
            offset: 0,
            needed: 7,
            available: frame.len(),
        });
    }
    let declared = FRAME_OVERHEAD + usize::from(u16::from_le_bytes([frame[5], frame[6]]));
    if frame.len() != declared {
        return Err(DecodeError::BadLength {
            declared,
            actual: frame.len(),
        });
    }
    let (body, crc) = frame.split_at(frame.len() - 1);
    let computed = crc8_smbus(body);
    if crc[0] != computed {
        return Err(DecodeError::BadCrc {
            received: crc[0],
            computed,
        });
    }
    Ok(&body[7..])
}

/// Micro-volts per count of each ECG stream, from the vendor sources in the protocol notes.
pub mod ecg_gain {
    /// Checkme Pro live `A5 5A` stream: raw × 4033 / (32767 × 12) × 1.05 mV.
    pub const CHECKME_LIVE_UV_PER_COUNT: f64 = 4033.0 / (32767.0 * 12.0) * 1.05 * 1000.0;
    /// ER1/ER2 live stream: 1.0035 × 1800 / (4096 × 178.74) mV.
    pub const ER1_UV_PER_COUNT: f64 = 1.0035 * 1800.0 / (4096.0 * 178.74) * 1000.0;
    /// BP2 live and stored ECG: 0.003098 mV.
    pub const BP2_UV_PER_COUNT: f64 = 3.098;
    /// Sample value that marks "invalid / lead off" in the ER1 and BP2 streams.
    pub const INVALID_SAMPLE: i16 = 0x7FFF;
}

/// ECG samples as sent (counts) and in µV, with `None` for the invalid marker.
pub(crate) fn samples_uv(
    samples: &[i16],
    uv_per_count: f64,
    invalid: Option<i16>,
) -> Vec<Option<f64>> {
    samples
        .iter()
        .map(|&s| {
            (Some(s) != invalid).then(|| (f64::from(s) * uv_per_count * 100.0).round() / 100.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_check_value() {
        assert_eq!(crc8_smbus(b"123456789"), 0xF4);
    }

    #[test]
    fn gains_match_the_vendor_figures() {
        assert!((ecg_gain::CHECKME_LIVE_UV_PER_COUNT - 10.7696).abs() < 1e-4);
        assert!((ecg_gain::ER1_UV_PER_COUNT - 2.4672).abs() < 1e-4);
    }
}
