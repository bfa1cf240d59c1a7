//! The Lepu "0xA5" framing of the ER1/ER2 ECG patches and BP2 monitors (protocol notes §1.4, A.3):
//! `A5`, command, NOT command, packet type (00 request, 01 OK), sequence, u16 length, payload, CRC-8.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::crc8_smbus;
use crate::devices::cursor::Cursor;
use crate::devices::date_time::DeviceDateTime;
use crate::devices::error::{DecodeError, Hex};
use crate::devices::reassembler::FrameCheck;

/// Header + CRC bytes around the payload.
pub const OVERHEAD: usize = super::FRAME_OVERHEAD;
/// Largest payload accepted. The BP2 reports a maximum frame of 258 bytes; file reads can be
/// longer on other models, so allow some room without letting garbage hold the buffer hostage.
pub const MAX_PAYLOAD: usize = 2048;

/// A file name for 0xF2: ASCII, at most 16 bytes (sent zero-padded to 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A5FileName([u8; 16]);

impl A5FileName {
    /// Validates a file name.
    pub fn new(name: &str) -> Result<Self, DecodeError> {
        if name.is_empty() || name.len() > 16 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DecodeError::Malformed {
                field: "file_name",
                detail: format!("{name:?} is not 1-16 printable ASCII characters"),
            });
        }
        let mut out = [0u8; 16];
        out[..name.len()].copy_from_slice(name.as_bytes());
        Ok(Self(out))
    }
}

/// The requests the gateway may send. The BP2 commands that start cuff inflation or switch mode
/// (0x09, 0x0A, 0x24, 0x25, 0x39), set config on ER1 / factory reset on BP2 (0x04), reboot (0xE2)
/// and factory reset (0xE3, 0xEE) have no variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum A5Request {
    /// 0x00: read configuration.
    GetConfig,
    /// 0x03: ER1/ER2 real-time data; the byte is the rate code (the vendor SDK sends 0x7D).
    Er1RealTime {
        /// Rate code.
        rate: u8,
    },
    /// 0x06: BP2 real-time state.
    Bp2RealTimeState,
    /// 0x08: BP2 real-time data (poll).
    Bp2RealTime,
    /// 0xE1: device information.
    GetInfo,
    /// 0xE4: ER2 battery.
    Er2Battery,
    /// 0xEC: set the clock to this local (Tokyo) time.
    SetTime(NaiveDateTime),
    /// 0xF1: file list.
    FileList,
    /// 0xF2: start reading a file at an offset.
    ReadStart {
        /// File.
        file: A5FileName,
        /// Byte offset.
        offset: u32,
    },
    /// 0xF3: read the next chunk at an offset.
    ReadData {
        /// Byte offset.
        offset: u32,
    },
    /// 0xF4: end reading.
    ReadEnd,
}

impl A5Request {
    fn command(&self) -> u8 {
        match self {
            Self::GetConfig => 0x00,
            Self::Er1RealTime { .. } => 0x03,
            Self::Bp2RealTimeState => 0x06,
            Self::Bp2RealTime => 0x08,
            Self::GetInfo => 0xE1,
            Self::Er2Battery => 0xE4,
            Self::SetTime(_) => 0xEC,
            Self::FileList => 0xF1,
            Self::ReadStart { .. } => 0xF2,
            Self::ReadData { .. } => 0xF3,
            Self::ReadEnd => 0xF4,
        }
    }

    /// The complete frame to write, with sequence number `seq`.
    pub fn encode(&self, seq: u8) -> Vec<u8> {
        let payload: Vec<u8> = match self {
            Self::Er1RealTime { rate } => vec![*rate],
            Self::SetTime(t) => DeviceDateTime::from_naive(*t).encode().to_vec(),
            Self::ReadStart { file, offset } => {
                file.0.iter().copied().chain(offset.to_le_bytes()).collect()
            }
            Self::ReadData { offset } => offset.to_le_bytes().to_vec(),
            _ => Vec::new(),
        };
        let cmd = self.command();
        let mut frame = Vec::with_capacity(OVERHEAD + payload.len());
        frame.extend([0xA5, cmd, !cmd, 0x00, seq]);
        frame.extend((payload.len() as u16).to_le_bytes());
        frame.extend(payload);
        frame.push(crc8_smbus(&frame));
        frame
    }
}

/// Byte 3 of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketType {
    /// 0x00: host → device.
    Request,
    /// 0x01: device → host, success.
    Ok,
    /// Any other code: device → host, failure.
    Error(u8),
}

/// A checked frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A5Frame<'a> {
    /// Command (echoed in the response).
    pub command: u8,
    /// Packet type.
    pub packet_type: PacketType,
    /// Sequence number.
    pub seq: u8,
    /// Payload.
    pub payload: &'a [u8],
}

/// Looks at the start of a buffer for the reassembler.
pub(crate) fn check(buf: &[u8]) -> FrameCheck {
    super::check_inverted_header(buf, 0xA5, MAX_PAYLOAD, |_| true)
}

/// Decodes one complete frame, checking header, length and CRC.
pub fn decode(frame: &[u8]) -> Result<A5Frame<'_>, DecodeError> {
    let mut c = Cursor::new(frame);
    let [start, command, inverted, packet_type, seq] = c.array::<5>("header")?;
    if start != 0xA5 || inverted != !command {
        return Err(DecodeError::BadHeader {
            expected: "A5 cc ~cc",
            got: Hex(frame[..3].to_vec()),
        });
    }
    let payload = super::payload_after_crc(frame)?;
    let packet_type = match packet_type {
        0x00 => PacketType::Request,
        0x01 => PacketType::Ok,
        other => PacketType::Error(other),
    };
    Ok(A5Frame {
        command,
        packet_type,
        seq,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn hex(s: &str) -> Vec<u8> {
        parse_hex(s).unwrap()
    }

    #[test]
    fn request_vectors_from_protocol_notes() {
        let t = "2024-03-05T14:07:09".parse().unwrap();
        let cases = [
            (A5Request::GetInfo, 0, "A5 E1 1E 00 00 00 00 69"),
            (
                A5Request::Er1RealTime { rate: 0x7D },
                1,
                "A5 03 FC 00 01 01 00 7D 35",
            ),
            (A5Request::FileList, 2, "A5 F1 0E 00 02 00 00 13"),
            (
                A5Request::SetTime(t),
                3,
                "A5 EC 13 00 03 07 00 E8 07 03 05 0E 07 09 74",
            ),
            (
                A5Request::ReadStart {
                    file: A5FileName::new("20240305140709").unwrap(),
                    offset: 0,
                },
                4,
                "A5 F2 0D 00 04 14 00 32 30 32 34 30 33 30 35 31 34 30 37 30 39 00 00 00 00 00 00 B5",
            ),
            (
                A5Request::ReadData { offset: 512 },
                5,
                "A5 F3 0C 00 05 04 00 00 02 00 00 1E",
            ),
            (A5Request::ReadEnd, 6, "A5 F4 0B 00 06 00 00 D8"),
            // BP2 (addendum A.3)
            (A5Request::Bp2RealTime, 1, "A5 08 F7 00 01 00 00 85"),
            (A5Request::GetConfig, 2, "A5 00 FF 00 02 00 00 6E"),
            (
                A5Request::ReadStart {
                    file: A5FileName::new("bp2nibp.list").unwrap(),
                    offset: 0,
                },
                3,
                "A5 F2 0D 00 03 14 00 62 70 32 6E 69 62 70 2E 6C 69 73 74 00 00 00 00 00 00 00 00 FE",
            ),
            (
                A5Request::ReadData { offset: 0 },
                4,
                "A5 F3 0C 00 04 04 00 00 00 00 00 17",
            ),
            (A5Request::ReadEnd, 5, "A5 F4 0B 00 05 00 00 65"),
        ];
        for (request, seq, expected) in cases {
            let frame = request.encode(seq);
            assert_eq!(frame, hex(expected), "{request:?}");
            let parsed = decode(&frame).unwrap();
            assert_eq!((parsed.packet_type, parsed.seq), (PacketType::Request, seq));
        }
    }

    #[test]
    fn dangerous_commands_cannot_be_built() {
        let all = [
            A5Request::GetConfig,
            A5Request::Er1RealTime { rate: 0 },
            A5Request::Bp2RealTimeState,
            A5Request::Bp2RealTime,
            A5Request::GetInfo,
            A5Request::Er2Battery,
            A5Request::SetTime("2024-01-01T00:00:00".parse().unwrap()),
            A5Request::FileList,
            A5Request::ReadStart {
                file: A5FileName::new("a").unwrap(),
                offset: 0,
            },
            A5Request::ReadData { offset: 0 },
            A5Request::ReadEnd,
        ];
        let dangerous = [0x04, 0x09, 0x0A, 0x24, 0x25, 0x39, 0xE2, 0xE3, 0xEE];
        for r in all {
            assert!(!dangerous.contains(&r.encode(0)[1]), "{r:?}");
        }
    }

    #[test]
    fn corrupt_frames_are_rejected() {
        let good = hex("A5 E1 1E 00 00 00 00 69");
        let mut bad = good.clone();
        bad[7] = 0x68;
        assert_eq!(
            decode(&bad).unwrap_err(),
            DecodeError::BadCrc {
                received: 0x68,
                computed: 0x69
            }
        );
        bad = good.clone();
        bad[2] = 0x1F;
        assert_eq!(decode(&bad).unwrap_err().reason(), "bad_header");
        assert_eq!(decode(&good[..6]).unwrap_err().reason(), "truncated");
        assert_eq!(
            decode(&hex("A5 E1 1E 00 00 01 00 69"))
                .unwrap_err()
                .reason(),
            "bad_length"
        );
    }
}
