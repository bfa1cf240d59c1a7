//! Why a notification could not be decoded.

use std::fmt;

/// A rejected notification or frame. Every variant is a counted reason (see [`DecodeError::reason`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes ended before a field that the flags or the length say is there.
    #[error("truncated: {field} needs {needed} bytes at offset {offset}, only {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Offset of the field in the input.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A frame does not start with the expected header bytes.
    #[error("bad header: expected {expected}, got {got}")]
    BadHeader {
        /// What a header of this framing looks like.
        expected: &'static str,
        /// The bytes that were there, in hex.
        got: Hex,
    },
    /// The CRC byte does not match the frame.
    #[error("bad crc: frame says {received:#04x}, computed {computed:#04x}")]
    BadCrc {
        /// CRC carried by the frame.
        received: u8,
        /// CRC computed over the frame.
        computed: u8,
    },
    /// The length field disagrees with the number of bytes.
    #[error("bad length: header says {declared} bytes, frame has {actual}")]
    BadLength {
        /// Length the header declares.
        declared: usize,
        /// Length actually received.
        actual: usize,
    },
    /// A value that a device cannot have measured (outside the physical range of the field).
    #[error("impossible value: {field} = {value}")]
    ImpossibleValue {
        /// The field.
        field: &'static str,
        /// The value as decoded, in the field's unit.
        value: f64,
    },
    /// A field holds a code this decoder does not know.
    #[error("unsupported {field}: {value:#04x}")]
    Unsupported {
        /// The field.
        field: &'static str,
        /// The code.
        value: u32,
    },
    /// Bytes outside any frame (noise, or the tail of a frame whose start was lost).
    #[error("{len} bytes outside any frame")]
    Unframed {
        /// How many bytes were dropped.
        len: usize,
    },
    /// A text field (device info JSON, serial number) is not what it should be.
    #[error("malformed {field}: {detail}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl DecodeError {
    /// A short, fixed label for counters and logs (`error_code`), never a raw message.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::BadHeader { .. } => "bad_header",
            Self::BadCrc { .. } => "bad_crc",
            Self::BadLength { .. } => "bad_length",
            Self::ImpossibleValue { .. } => "impossible_value",
            Self::Unsupported { .. } => "unsupported",
            Self::Unframed { .. } => "unframed",
            Self::Malformed { .. } => "malformed",
        }
    }
}

/// Bytes shown as space-separated upper-case hex, the way the protocol notes write them.
#[derive(Clone, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex({self})")
    }
}

/// Errors of [`parse_hex`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator.
    #[error("invalid hex character {0:?}")]
    InvalidChar(char),
    /// An odd number of hex digits.
    #[error("odd number of hex digits ({0})")]
    OddLength(usize),
}

/// Parses hex such as `"A5 5A 2D"` or `"a55a2d"`; spaces, colons and dashes separate bytes freely.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut digits = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ' ' | '\t' | '\n' | '\r' | ':' | '-' | ',' => continue,
            _ => digits.push(c.to_digit(16).ok_or(HexError::InvalidChar(c))? as u8),
        }
    }
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::OddLength(digits.len()));
    }
    Ok(digits.chunks_exact(2).map(|p| (p[0] << 4) | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_with_separators() {
        assert_eq!(
            parse_hex("A5 5a:2d-00").unwrap(),
            vec![0xA5, 0x5A, 0x2D, 0x00]
        );
        assert_eq!(Hex(vec![0xA5, 0x0F]).to_string(), "A5 0F");
        assert_eq!(parse_hex("A5 5"), Err(HexError::OddLength(3)));
        assert_eq!(parse_hex("zz"), Err(HexError::InvalidChar('z')));
    }
}
