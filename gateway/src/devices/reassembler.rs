//! Reassembles vendor frames from BLE notifications.
//!
//! Viatom devices split one frame over many 20-byte notifications (ATT MTU 23) and a notification
//! may also end one frame and start the next. Bytes are buffered; the buffer is looked at (never
//! parsed) until a whole frame is there, so a partial frame costs nothing. Bytes that cannot start a
//! frame, and frames whose CRC or structure is wrong, are handed back as rejections (with their
//! bytes, for the log) and scanning resumes at the next possible frame start.

use super::error::DecodeError;
use super::viatom::{a5_frame, aa_frame, checkme_live};

/// What the start of a buffer looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCheck {
    /// More bytes are needed to tell.
    Incomplete,
    /// The first byte cannot start a frame.
    NotAFrame,
    /// A frame of this total length starts here; its CRC or structure is not yet checked.
    Length(usize),
}

/// One framing: how to find frames in a byte stream and how to check a complete one.
pub trait Framing {
    /// Looks at the start of `buf` (header and length only).
    fn check(&self, buf: &[u8]) -> FrameCheck;
    /// Checks a complete candidate frame (CRC, structure).
    fn validate(&self, frame: &[u8]) -> Result<(), DecodeError>;
    /// Whether `byte` could be the first byte of a frame (where to resume after garbage).
    fn may_start(&self, byte: u8) -> bool;
}

/// 0x55 responses of the 0xAA file protocol (O2 family and friends).
#[derive(Debug, Clone, Copy, Default)]
pub struct AaResponses;

impl Framing for AaResponses {
    fn check(&self, buf: &[u8]) -> FrameCheck {
        aa_frame::response_len(buf)
    }
    fn validate(&self, frame: &[u8]) -> Result<(), DecodeError> {
        aa_frame::decode_response(frame).map(drop)
    }
    fn may_start(&self, byte: u8) -> bool {
        byte == 0x55
    }
}

/// The Lepu 0xA5 framing (ER1/ER2, BP2).
#[derive(Debug, Clone, Copy, Default)]
pub struct A5Frames;

impl Framing for A5Frames {
    fn check(&self, buf: &[u8]) -> FrameCheck {
        a5_frame::check(buf)
    }
    fn validate(&self, frame: &[u8]) -> Result<(), DecodeError> {
        a5_frame::decode(frame).map(drop)
    }
    fn may_start(&self, byte: u8) -> bool {
        byte == 0xA5
    }
}

/// The Checkme Pro pipe: `A5 5A` live frames and 0x55 file-protocol responses interleaved.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckmePipe {
    /// The model's check-byte switch for live frames.
    pub check_bytes: checkme_live::CheckBytes,
}

impl Framing for CheckmePipe {
    fn check(&self, buf: &[u8]) -> FrameCheck {
        match buf.first() {
            Some(0x55) => aa_frame::response_len(buf),
            _ => checkme_live::check(buf),
        }
    }
    fn validate(&self, frame: &[u8]) -> Result<(), DecodeError> {
        match frame.first() {
            Some(0x55) => aa_frame::decode_response(frame).map(drop),
            _ => checkme_live::decode(frame, self.check_bytes).map(drop),
        }
    }
    fn may_start(&self, byte: u8) -> bool {
        byte == 0x55 || byte == 0xA5
    }
}

/// What the reassembler hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Reassembled {
    /// A complete frame that passed its framing's checks.
    Frame(Vec<u8>),
    /// Bytes that were dropped, and why (to be counted and logged in hex).
    Rejected {
        /// Why.
        error: DecodeError,
        /// The dropped bytes.
        bytes: Vec<u8>,
    },
}

/// Buffers notifications and yields frames.
#[derive(Debug)]
pub struct Reassembler<F> {
    framing: F,
    buf: Vec<u8>,
}

impl<F: Framing> Reassembler<F> {
    /// A reassembler for one device connection.
    pub fn new(framing: F) -> Self {
        Self {
            framing,
            buf: Vec::with_capacity(512),
        }
    }

    /// Appends one notification.
    pub fn push(&mut self, notification: &[u8]) {
        self.buf.extend_from_slice(notification);
    }

    /// Drops a half-received frame, e.g. when the device disconnects.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes waiting for the rest of their frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame or rejection, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Reassembled> {
        match self.framing.check(&self.buf) {
            FrameCheck::Incomplete => None,
            FrameCheck::NotAFrame => {
                let skip = self.resume_point(self.buf.len());
                let bytes: Vec<u8> = self.buf.drain(..skip).collect();
                Some(Reassembled::Rejected {
                    error: DecodeError::Unframed { len: bytes.len() },
                    bytes,
                })
            }
            FrameCheck::Length(n) if self.buf.len() < n => None,
            FrameCheck::Length(n) => match self.framing.validate(&self.buf[..n]) {
                Ok(()) => Some(Reassembled::Frame(self.buf.drain(..n).collect())),
                Err(error) => {
                    // The header may have been a false start inside garbage: resume at the next
                    // possible start within the candidate rather than skipping all of it.
                    let skip = self.resume_point(n);
                    Some(Reassembled::Rejected {
                        error,
                        bytes: self.buf.drain(..skip).collect(),
                    })
                }
            },
        }
    }

    /// Index of the first possible frame start after position 0 and before `limit`, else `limit`.
    fn resume_point(&self, limit: usize) -> usize {
        self.buf[1..limit]
            .iter()
            .position(|&b| self.framing.may_start(b))
            .map_or(limit, |i| i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    const LIVE: &str = "A5 5A 18 02 0A 00 23 00 3C 00 2D 00 14 00 48 00 61 19 01 00 F1 3C 00 00";
    const FILE_SIZE: &str = "55 00 FF 00 00 04 00 D2 04 00 00 A0";

    fn drain<F: Framing>(r: &mut Reassembler<F>) -> Vec<Reassembled> {
        std::iter::from_fn(|| r.next_frame()).collect()
    }

    #[test]
    fn frames_split_across_20_byte_notifications_are_joined() {
        let stream = [
            parse_hex(LIVE).unwrap(),
            parse_hex(FILE_SIZE).unwrap(),
            parse_hex(LIVE).unwrap(),
        ]
        .concat();
        let mut r = Reassembler::new(CheckmePipe::default());
        let mut out = Vec::new();
        for chunk in stream.chunks(20) {
            r.push(chunk);
            out.extend(drain(&mut r));
        }
        assert_eq!(
            out,
            vec![
                Reassembled::Frame(parse_hex(LIVE).unwrap()),
                Reassembled::Frame(parse_hex(FILE_SIZE).unwrap()),
                Reassembled::Frame(parse_hex(LIVE).unwrap()),
            ]
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let stream = [parse_hex(FILE_SIZE).unwrap(), parse_hex(FILE_SIZE).unwrap()].concat();
        for cut in 0..=stream.len() {
            let mut r = Reassembler::new(AaResponses);
            r.push(&stream[..cut]);
            let mut out = drain(&mut r);
            r.push(&stream[cut..]);
            out.extend(drain(&mut r));
            assert_eq!(out.len(), 2, "cut at {cut}");
            assert!(
                out.iter().all(|o| matches!(o, Reassembled::Frame(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_is_rejected_and_scanning_resyncs() {
        let mut r = Reassembler::new(A5Frames);
        r.push(&parse_hex("00 11 22").unwrap());
        r.push(&parse_hex("A5 E1 1E 00 00 00 00 69").unwrap());
        let out = drain(&mut r);
        assert_eq!(
            out,
            vec![
                Reassembled::Rejected {
                    error: DecodeError::Unframed { len: 3 },
                    bytes: vec![0x00, 0x11, 0x22]
                },
                Reassembled::Frame(parse_hex("A5 E1 1E 00 00 00 00 69").unwrap()),
            ]
        );
    }

    #[test]
    fn bad_crc_frame_is_rejected_and_the_next_frame_survives() {
        let mut bad = parse_hex("A5 E1 1E 00 00 00 00 69").unwrap();
        bad[7] = 0x00;
        let mut r = Reassembler::new(A5Frames);
        r.push(&bad);
        r.push(&parse_hex("A5 F1 0E 00 02 00 00 13").unwrap());
        let out = drain(&mut r);
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[0], Reassembled::Rejected { error: DecodeError::BadCrc { .. }, bytes } if *bytes == bad)
        );
        assert_eq!(
            out[1],
            Reassembled::Frame(parse_hex("A5 F1 0E 00 02 00 00 13").unwrap())
        );
    }

    #[test]
    fn false_header_inside_garbage_does_not_swallow_a_real_frame() {
        // "A5 00 FF" looks like a header with a payload length of 0x0000 -> 8 bytes; its CRC fails
        // and the real frame starting inside it must still come out.
        let real = parse_hex("A5 F4 0B 00 05 00 00 65").unwrap();
        let mut r = Reassembler::new(A5Frames);
        r.push(&[0xA5, 0x00, 0xFF, 0x00]);
        r.push(&real);
        let out = drain(&mut r);
        assert_eq!(out.last(), Some(&Reassembled::Frame(real)));
    }

    #[test]
    fn partial_frame_waits_and_clear_drops_it() {
        let mut r = Reassembler::new(CheckmePipe::default());
        r.push(&parse_hex(LIVE).unwrap()[..10]);
        assert_eq!(r.next_frame(), None);
        assert_eq!(r.buffered(), 10);
        r.clear();
        assert_eq!(r.buffered(), 0);
    }
}
