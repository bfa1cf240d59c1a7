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
