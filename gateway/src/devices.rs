//! Device decoders: pure functions from notification bytes to typed readings with units.
//!
//! One module per device family; every decoder is registered once, in [`Profile`], which the
//! CLI (`decode --profile`), the BLE session and the simulator all go through.
//!
//! | module | what |
//! |---|---|
//! | [`ieee11073`], [`date_time`] | SFLOAT/FLOAT with special values; the 7-byte Date Time and its Tokyo reading |
//! | [`blood_pressure`] | 0x2A35, 0x2A36 |
//! | [`thermometer`] | 0x2A1C, 0x2A1E |
//! | [`weight_scale`] | 0x2A9D |
//! | [`pulse_oximeter`] | 0x2A5E, 0x2A5F |
//! | [`heart_rate`] | 0x2A37 |
//! | [`battery`], [`current_time`] | 0x2A19, 0x2A2B |
//! | [`viatom`] | Checkme live stream, 0xAA and 0xA5 framings, O2 / ER1 / BP2 payloads |
//! | [`reassembler`] | frames split across notifications |
//! | [`model`] | which family a discovered device belongs to |

pub mod battery;
pub mod blood_pressure;
pub mod current_time;
mod cursor;
pub mod date_time;
pub mod error;
pub mod heart_rate;
pub mod ieee11073;
pub mod model;
pub mod pulse_oximeter;
pub mod reassembler;
pub mod thermometer;
mod units;
pub mod viatom;
pub mod weight_scale;

use serde::Serialize;

pub use error::{DecodeError, Hex};
use viatom::checkme_live::CheckBytes;

/// Every decoder, by the name used on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Blood Pressure Measurement 0x2A35.
    BloodPressure,
    /// Intermediate Cuff Pressure 0x2A36.
    CuffPressure,
    /// Temperature Measurement 0x2A1C.
    Temperature,
    /// Intermediate Temperature 0x2A1E.
    IntermediateTemperature,
    /// Weight Measurement 0x2A9D.
    Weight,
    /// PLX Spot-check Measurement 0x2A5E.
    PlxSpot,
    /// PLX Continuous Measurement 0x2A5F.
    PlxContinuous,
    /// Heart Rate Measurement 0x2A37.
    HeartRate,
    /// Battery Level 0x2A19.
    Battery,
    /// Current Time 0x2A2B.
    CurrentTime,
    /// Date Time 0x2A08.
    DateTime,
    /// Checkme Pro `A5 5A` live frame.
    CheckmeLive,
    /// Any 0x55 response of the Viatom 0xAA protocol (status, block, payload; JSON when it is).
    ViatomResponse,
    /// 0x55 response to O2 command 0x17.
    O2Live,
    /// 0x55 response to O2 command 0x1B.
    O2Wave,
    /// Any Lepu 0xA5 frame; ER1 live (0x03), BP2 live (0x08) and device info (0xE1) are decoded.
    LepuFrame,
    /// The payload of a BP2 0xE1 (device information) answer, without the frame.
    Bp2DeviceInfo,
}

impl Profile {
    /// All profiles with their command-line names.
    pub const ALL: [(Self, &'static str); 17] = [
        (Self::BloodPressure, "blood-pressure"),
        (Self::CuffPressure, "cuff-pressure"),
        (Self::Temperature, "temperature"),
        (Self::IntermediateTemperature, "intermediate-temperature"),
        (Self::Weight, "weight"),
        (Self::PlxSpot, "plx-spot"),
        (Self::PlxContinuous, "plx-continuous"),
        (Self::HeartRate, "heart-rate"),
        (Self::Battery, "battery"),
        (Self::CurrentTime, "current-time"),
        (Self::DateTime, "date-time"),
        (Self::CheckmeLive, "checkme-live"),
        (Self::ViatomResponse, "viatom-response"),
        (Self::O2Live, "o2-live"),
        (Self::O2Wave, "o2-wave"),
        (Self::LepuFrame, "lepu-frame"),
        (Self::Bp2DeviceInfo, "bp2-device-info"),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }

    /// Looks a profile up by its command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }

    /// The SIG profile carried by a 16-bit characteristic UUID.
    pub fn for_characteristic(uuid16: u16) -> Option<Self> {
        Some(match uuid16 {
            0x2A35 => Self::BloodPressure,
            0x2A36 => Self::CuffPressure,
            0x2A1C => Self::Temperature,
            0x2A1E => Self::IntermediateTemperature,
            0x2A9D => Self::Weight,
            0x2A5E => Self::PlxSpot,
            0x2A5F => Self::PlxContinuous,
            0x2A37 => Self::HeartRate,
            0x2A19 => Self::Battery,
            0x2A2B => Self::CurrentTime,
            0x2A08 => Self::DateTime,
            _ => return None,
        })
    }

    /// Decodes one notification (SIG) or one complete frame (Viatom).
    pub fn decode(self, bytes: &[u8], check_bytes: CheckBytes) -> Result<Decoded, DecodeError> {
        use viatom::{a5_frame, aa_frame, bp2, checkme_live, er1, o2};
        Ok(match self {
            Self::BloodPressure => {
                Decoded::BloodPressure(blood_pressure::decode_measurement(bytes)?)
            }
            Self::CuffPressure => {
                Decoded::CuffPressure(blood_pressure::decode_cuff_pressure(bytes)?)
            }
            Self::Temperature | Self::IntermediateTemperature => {
                Decoded::Temperature(thermometer::decode(bytes)?)
            }
            Self::Weight => Decoded::Weight(weight_scale::decode(bytes)?),
            Self::PlxSpot => Decoded::PlxSpot(pulse_oximeter::decode_spot_check(bytes)?),
            Self::PlxContinuous => {
                Decoded::PlxContinuous(pulse_oximeter::decode_continuous(bytes)?)
            }
            Self::HeartRate => Decoded::HeartRate(heart_rate::decode(bytes)?),
            Self::Battery => Decoded::Battery(battery::decode(bytes)?),
            Self::CurrentTime => Decoded::CurrentTime(current_time::decode(bytes)?),
            Self::DateTime => Decoded::DateTime {
                date_time: date_time::DeviceDateTime::decode(bytes)?,
            },
            Self::CheckmeLive => Decoded::CheckmeLive(checkme_live::decode(bytes, check_bytes)?),
            Self::ViatomResponse => {
                let r = aa_frame::decode_response(bytes)?;
                Decoded::ViatomResponse {
                    status: r.status,
                    block: r.block,
                    payload: Hex(r.payload.to_vec()).to_string(),
                    json: aa_frame::device_info(r.payload).ok(),
                }
            }
            Self::O2Live => Decoded::O2Live(o2::decode_live_params(
                aa_frame::decode_response(bytes)?.payload,
            )?),
            Self::O2Wave => Decoded::O2Wave(o2::decode_live_wave(
                aa_frame::decode_response(bytes)?.payload,
            )?),
            Self::LepuFrame => {
                let f = a5_frame::decode(bytes)?;
                let response =
                    f.packet_type != a5_frame::PacketType::Request && !f.payload.is_empty();
                let content = match f.command {
                    0x03 if response => LepuContent::Er1Live(er1::decode_live(f.payload)?),
                    0x08 if response => LepuContent::Bp2Live(bp2::decode_live(f.payload)?),
                    0xE1 if response => {
                        LepuContent::DeviceInfo(bp2::decode_device_info(f.payload)?)
                    }
                    _ => LepuContent::Raw {
                        payload: Hex(f.payload.to_vec()).to_string(),
                    },
                };
                Decoded::LepuFrame {
                    command: f.command,
                    packet_type: f.packet_type,
                    seq: f.seq,
                    content,
                }
            }
            Self::Bp2DeviceInfo => Decoded::Bp2DeviceInfo(bp2::decode_device_info(bytes)?),
        })
    }
}

/// The content of a Lepu 0xA5 frame, by command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LepuContent {
    /// 0x03 answer.
    Er1Live(viatom::er1::Er1Live),
    /// 0x08 answer.
    Bp2Live(viatom::bp2::Bp2Live),
    /// 0xE1 answer.
    DeviceInfo(viatom::bp2::LepuDeviceInfo),
    /// Anything else, payload in hex.
    Raw {
        /// Payload bytes.
        payload: String,
    },
}

/// A decoded notification or frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "profile", rename_all = "kebab-case")]
pub enum Decoded {
    /// 0x2A35.
    BloodPressure(blood_pressure::BloodPressure),
    /// 0x2A36.
    CuffPressure(blood_pressure::CuffPressure),
    /// 0x2A1C / 0x2A1E.
    Temperature(thermometer::Temperature),
    /// 0x2A9D.
    Weight(weight_scale::Weight),
    /// 0x2A5E.
    PlxSpot(pulse_oximeter::PlxSpotCheck),
    /// 0x2A5F.
    PlxContinuous(pulse_oximeter::PlxContinuous),
    /// 0x2A37.
    HeartRate(heart_rate::HeartRate),
    /// 0x2A19.
    Battery(battery::BatteryLevel),
    /// 0x2A2B.
    CurrentTime(current_time::CurrentTime),
    /// 0x2A08.
    DateTime {
        /// The device's clock.
        date_time: date_time::DeviceDateTime,
    },
    /// `A5 5A` live frame.
    CheckmeLive(viatom::checkme_live::CheckmeLive),
    /// 0x55 response.
    ViatomResponse {
        /// Status.
        status: viatom::aa_frame::AaStatus,
        /// Block number.
        block: u16,
        /// Payload in hex.
        payload: String,
        /// The payload as JSON, when it is JSON (GET_INFO).
        json: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// O2 0x17 answer.
    O2Live(viatom::o2::O2LiveParams),
    /// O2 0x1B answer.
    O2Wave(viatom::o2::O2LiveWave),
    /// 0xA5 frame.
    LepuFrame {
        /// Command.
        command: u8,
        /// Packet type.
        packet_type: viatom::a5_frame::PacketType,
        /// Sequence number.
        seq: u8,
        /// Decoded content.
        content: LepuContent,
    },
    /// 0xE1 payload.
    Bp2DeviceInfo(viatom::bp2::LepuDeviceInfo),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_name_round_trips() {
        for (p, n) in Profile::ALL {
            assert_eq!(Profile::from_name(n), Some(p));
            assert_eq!(p.name(), n);
        }
    }

    #[test]
    fn no_decoder_panics_on_any_short_input() {
        // Every profile, every 0–3 byte input and a sweep of longer ones: errors, never panics.
        for (p, _) in Profile::ALL {
            for len in 0..=3usize {
                for seed in 0..=255u8 {
                    let bytes: Vec<u8> = (0..len)
                        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
                        .collect();
                    let _ = p.decode(&bytes, CheckBytes::Unverified);
                }
            }
            for len in 4..64usize {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| (i as u8).wrapping_mul(97) ^ 0x5A)
                    .collect();
                let _ = p.decode(&bytes, CheckBytes::Unverified);
            }
        }
    }
}
