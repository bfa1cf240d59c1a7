//! The Viatom "0xAA" file-transfer protocol (protocol notes §1.2): requests start `AA`, responses
//! `55`; byte 2 is the bitwise NOT of byte 1; u16 block number; u16 payload length; payload; CRC-8.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::crc8_smbus;
use crate::devices::cursor::Cursor;
use crate::devices::error::{DecodeError, Hex};
use crate::devices::reassembler::FrameCheck;

/// Header + CRC bytes around the payload.
pub const OVERHEAD: usize = super::FRAME_OVERHEAD;
/// Largest payload accepted: file blocks are ≤ 512 bytes on BLE, 1024 on the classic link.
pub const MAX_PAYLOAD: usize = 1024;

/// A file name the device can be asked for: ASCII, no NUL, at most 30 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// Validates a file name.
    pub fn new(name: &str) -> Result<Self, DecodeError> {
        if name.is_empty() || name.len() > 30 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DecodeError::Malformed {
                field: "file_name",
                detail: format!("{name:?} is not 1-30 printable ASCII characters"),
            });
        }
        Ok(Self(name.to_owned()))
    }
}

/// The requests the gateway may send. Writing, deleting files, firmware and language updates and
/// factory reset (0x18) are deliberately absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AaRequest {
    /// 0x03: open a file for reading; the answer carries its size.
    StartRead(FileName),
    /// 0x04: read block `n` of the open file.
    ReadContent(u16),
    /// 0x05: close the file.
    EndRead,
    /// 0x14: device information (JSON).
    GetInfo,
    /// 0x15: ping; answered in file mode.
    Ping,
    /// 0x16 with `{"SetTIME":"yyyy-MM-dd,HH:mm:ss"}`: set the clock to this local (Tokyo) time.
    SetTime(NaiveDateTime),
    /// 0x17: O2-family real-time parameters.
    O2LiveParams,
    /// 0x1B: O2-family real-time parameters and pleth wave.
    O2LiveWave,
}

impl AaRequest {
    fn command(&self) -> u8 {
        match self {
            Self::StartRead(_) => 0x03,
            Self::ReadContent(_) => 0x04,
            Self::EndRead => 0x05,
            Self::GetInfo => 0x14,
            Self::Ping => 0x15,
            Self::SetTime(_) => 0x16,
            Self::O2LiveParams => 0x17,
            Self::O2LiveWave => 0x1B,
        }
    }

    /// The complete frame to write.
    pub fn encode(&self) -> Vec<u8> {
        let block = match self {
            Self::ReadContent(n) => *n,
            _ => 0,
        };
        let payload: Vec<u8> = match self {
            Self::StartRead(FileName(name)) => name.bytes().chain([0]).collect(),
            Self::SetTime(t) => {
                format!("{{\"SetTIME\":\"{}\"}}", t.format("%Y-%m-%d,%H:%M:%S")).into_bytes()
            }
            Self::O2LiveWave => vec![0x00],
            _ => Vec::new(),
        };
        let cmd = self.command();
        let mut frame = Vec::with_capacity(OVERHEAD + payload.len());
        frame.extend([0xAA, cmd, !cmd]);
        frame.extend(block.to_le_bytes());
        frame.extend((payload.len() as u16).to_le_bytes());
        frame.extend(payload);
        frame.push(crc8_smbus(&frame));
        frame
    }
}

/// The status byte of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AaStatus {
    /// 0x00.
    Ok,
    /// 0x01, e.g. "no such file" on START_READ.
    Error,
}

/// A response frame. The response does not name the command it answers: the caller knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AaResponse<'a> {
    /// Status.
    pub status: AaStatus,
    /// Block number echoed by READ_CONTENT.
    pub block: u16,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// What a framing check of buffered bytes found (used by the reassembler).
pub(crate) fn response_len(buf: &[u8]) -> FrameCheck {
    super::check_inverted_header(buf, 0x55, MAX_PAYLOAD, |status| status <= 0x01)
}

/// Decodes one complete response frame, checking header, length and CRC.
pub fn decode_response(frame: &[u8]) -> Result<AaResponse<'_>, DecodeError> {
    let mut c = Cursor::new(frame);
    let [start, status, inverted] = c.array::<3>("header")?;
    if start != 0x55 || inverted != !status {
        return Err(DecodeError::BadHeader {
            expected: "55 ss ~ss",
            got: Hex(frame[..3].to_vec()),
        });
    }
    let status = match status {
        0x00 => AaStatus::Ok,
        0x01 => AaStatus::Error,
        other => {
            return Err(DecodeError::Unsupported {
                field: "status",
                value: u32::from(other),
            });
        }
    };
    let block = c.u16("block")?;
    let len = usize::from(c.u16("length")?);
    if frame.len() != OVERHEAD + len {
        return Err(DecodeError::BadLength {
            declared: OVERHEAD + len,
            actual: frame.len(),
        });
    }
    let payload = c.take("payload", len)?;
    let received = c.u8("crc")?;
    let computed = crc8_smbus(&frame[..frame.len() - 1]);
    if received != computed {
        return Err(DecodeError::BadCrc { received, computed });
    }
    Ok(AaResponse {
        status,
        block,
        payload,
    })
}

/// The answer to START_READ: the file's size in bytes.
pub fn file_size(payload: &[u8]) -> Result<u32, DecodeError> {
    Cursor::new(payload).u32("file_size")
}

/// The answer to GET_INFO: a JSON object, possibly followed by padding (cut at the last `}`).
pub fn device_info(
    payload: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, DecodeError> {
    let end = payload
        .iter()
        .rposition(|&b| b == b'}')
        .ok_or_else(|| DecodeError::Malformed {
            field: "device_info",
            detail: "no closing brace".into(),
        })?;
    serde_json::from_slice(&payload[..=end]).map_err(|e| DecodeError::Malformed {
        field: "device_info",
        detail: e.to_string(),
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
        let cases = [
            (AaRequest::O2LiveParams, "AA 17 E8 00 00 00 00 1B"),
            (AaRequest::GetInfo, "AA 14 EB 00 00 00 00 C6"),
            (AaRequest::Ping, "AA 15 EA 00 00 00 00 8D"),
            (AaRequest::O2LiveWave, "AA 1B E4 00 00 01 00 00 5E"),
            (
                AaRequest::StartRead(FileName::new("usr.dat").unwrap()),
                "AA 03 FC 00 00 08 00 75 73 72 2E 64 61 74 00 7C",
            ),
            (AaRequest::ReadContent(0), "AA 04 FB 00 00 00 00 6A"),
            (AaRequest::ReadContent(1), "AA 04 FB 01 00 00 00 7C"),
            (AaRequest::ReadContent(0x0102), "AA 04 FB 02 01 00 00 2D"),
            (AaRequest::EndRead, "AA 05 FA 00 00 00 00 21"),
            (
                AaRequest::SetTime("2024-03-05T14:07:09".parse().unwrap()),
                "AA 16 E9 00 00 21 00 7B 22 53 65 74 54 49 4D 45 22 3A 22 32 30 32 34 2D 30 33 2D 30 35 2C 31 34 3A 30 37 3A 30 39 22 7D E4",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(request.encode(), hex(expected), "{request:?}");
        }
    }

    #[test]
    fn dangerous_commands_cannot_be_built() {
        // Every representable request, with its command byte: none is a write, delete, update or reset.
        let all = [
            AaRequest::StartRead(FileName::new("a").unwrap()),
            AaRequest::ReadContent(0),
            AaRequest::EndRead,
            AaRequest::GetInfo,
            AaRequest::Ping,
            AaRequest::SetTime("2024-01-01T00:00:00".parse().unwrap()),
            AaRequest::O2LiveParams,
            AaRequest::O2LiveWave,
        ];
        let dangerous = [
            0x00, 0x01, 0x02, 0x06, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x18,
        ];
        for r in all {
            assert!(!dangerous.contains(&r.encode()[1]), "{r:?}");
        }
    }

    #[test]
    fn response_vectors_from_protocol_notes() {
        let f = hex("55 00 FF 00 00 04 00 D2 04 00 00 A0");
        let r = decode_response(&f).unwrap();
        assert_eq!((r.status, r.block), (AaStatus::Ok, 0));
        assert_eq!(file_size(r.payload).unwrap(), 1234);

        let f = hex("55 01 FE 00 00 00 00 4E");
        let r = decode_response(&f).unwrap();
        assert_eq!((r.status, r.payload.len()), (AaStatus::Error, 0));
    }

    #[test]
    fn bad_crc_header_and_length_are_rejected() {
        let mut f = hex("55 00 FF 00 00 04 00 D2 04 00 00 A0");
        f[8] ^= 0x01;
        assert_eq!(decode_response(&f).unwrap_err().reason(), "bad_crc");
        assert_eq!(
            decode_response(&hex("55 00 FE 00 00 00 00 00"))
                .unwrap_err()
                .reason(),
            "bad_header"
        );
        assert_eq!(
            decode_response(&hex("55 00 FF 00 00 04 00 D2 04"))
                .unwrap_err()
                .reason(),
            "bad_length"
        );
        assert!(FileName::new("a\0b").is_err() && FileName::new(&"x".repeat(31)).is_err());
    }

    #[test]
    fn device_info_json_is_cut_at_last_brace() {
        let info = device_info(b"{\"Model\":\"1642\",\"SN\":\"1234\"}\0\0\0").unwrap();
        assert_eq!(info["Model"], "1642");
        assert_eq!(device_info(b"\0\0").unwrap_err().reason(), "malformed");
    }
}
