//! IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit), as used by every SIG health profile.
//!
//! Both are `mantissa × 10^exponent` with two's-complement fields; a few mantissas are reserved for
//! special values, which are recognised on the raw word before sign extension (protocol notes §2.1).

use serde::{Serialize, Serializer};

/// A special (non-numeric) 11073 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// Not a number: the device has no valid value.
    NaN,
    /// Not at this resolution.
    NRes,
    /// Above the representable range.
    PositiveInfinity,
    /// Below the representable range.
    NegativeInfinity,
    /// Reserved for future use.
    Reserved,
}

impl Special {
    /// The label used in JSON output.
    pub fn label(self) -> &'static str {
        match self {
            Self::NaN => "NaN",
            Self::NRes => "NRes",
            Self::PositiveInfinity => "+INF",
            Self::NegativeInfinity => "-INF",
            Self::Reserved => "reserved",
        }
    }
}

/// A decoded 11073 number: a finite value or one of the special values.
///
/// Serialises as a JSON number, or as a string label (`"NaN"`, `"NRes"`, `"+INF"`, `"-INF"`,
/// `"reserved"`) for the specials, so that "the device said NaN" stays distinct from "absent".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A number, already scaled by the exponent.
    Number(f64),
    /// A special value.
    Special(Special),
}

impl Value {
    /// The number, or `None` for a special value.
    pub fn number(self) -> Option<f64> {
        match self {
            Self::Number(v) => Some(v),
            Self::Special(_) => None,
        }
    }

    /// Applies a unit conversion to a number; specials pass through unchanged.
    pub fn map(self, f: impl FnOnce(f64) -> f64) -> Self {
        match self {
            Self::Number(v) => Self::Number(f(v)),
            special => special,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(v) => s.serialize_f64(*v),
            Self::Special(sp) => s.serialize_str(sp.label()),
        }
    }
}

/// `mantissa × 10^exponent` computed so that decimal values come out as the nearest `f64`
/// (18.9, not 18.900000000000002): divide by a power of ten instead of multiplying by 0.1.
fn scale(mantissa: i32, exponent: i32) -> f64 {
    let m = f64::from(mantissa);
    if exponent >= 0 {
        m * 10f64.powi(exponent)
    } else {
        m / 10f64.powi(-exponent)
    }
}

/// Decodes a 16-bit SFLOAT (4-bit signed exponent, 12-bit signed mantissa).
pub fn sfloat(raw: u16) -> Value {
    match raw {
        0x07FF => Value::Special(Special::NaN),
        0x0800 => Value::Special(Special::NRes),
        0x07FE => Value::Special(Special::PositiveInfinity),
        0x0802 => Value::Special(Special::NegativeInfinity),
        0x0801 => Value::Special(Special::Reserved),
        _ => {
            // Sign-extend both fields by shifting them to the top of an i16/i32 and back.
            let exponent = i32::from((raw as i16) >> 12);
            let mantissa = i32::from(((raw << 4) as i16) >> 4);
            Value::Number(scale(mantissa, exponent))
        }
    }
}

/// Decodes a 32-bit FLOAT (8-bit signed exponent, 24-bit signed mantissa).
pub fn float(raw: u32) -> Value {
    match raw {
        0x007F_FFFF => Value::Special(Special::NaN),
        0x0080_0000 => Value::Special(Special::NRes),
        0x007F_FFFE => Value::Special(Special::PositiveInfinity),
        0x0080_0002 => Value::Special(Special::NegativeInfinity),
        0x0080_0001 => Value::Special(Special::Reserved),
        _ => {
            let exponent = i32::from((raw >> 24) as u8 as i8);
            let mantissa = ((raw << 8) as i32) >> 8;
            Value::Number(scale(mantissa, exponent))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn sf(hex: &str) -> Value {
        let b = parse_hex(hex).unwrap();
        sfloat(u16::from_le_bytes([b[0], b[1]]))
    }

    fn fl(hex: &str) -> Value {
        let b = parse_hex(hex).unwrap();
        float(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[test]
    fn sfloat_vectors_from_protocol_notes() {
        let n = Value::Number;
        assert_eq!(sf("78 00"), n(120.0));
        assert_eq!(sf("48 00"), n(72.0));
        assert_eq!(sf("BD F0"), n(18.9));
        assert_eq!(sf("B6 E3"), n(9.5));
        assert_eq!(sf("FB 0F"), n(-5.0));
        assert_eq!(sf("FF 0F"), n(-1.0));
        assert_eq!(sf("01 30"), n(1000.0));
        assert_eq!(sf("FF 07"), Value::Special(Special::NaN));
        assert_eq!(sf("00 08"), Value::Special(Special::NRes));
        assert_eq!(sf("FE 07"), Value::Special(Special::PositiveInfinity));
        assert_eq!(sf("02 08"), Value::Special(Special::NegativeInfinity));
        assert_eq!(sf("01 08"), Value::Special(Special::Reserved));
    }

    #[test]
    fn float_vectors_from_protocol_notes() {
        let n = Value::Number;
        assert_eq!(fl("B0 0E 00 FE"), n(37.6));
        assert_eq!(fl("6E 01 00 FF"), n(36.6));
        assert_eq!(fl("72 01 00 FF"), n(37.0));
        assert_eq!(fl("DA 03 00 FF"), n(98.6));
        assert_eq!(fl("FE FF FF 00"), n(-2.0));
        assert_eq!(fl("03 00 00 02"), n(300.0));
        assert_eq!(fl("FF FF 7F 00"), Value::Special(Special::NaN));
        assert_eq!(fl("00 00 80 00"), Value::Special(Special::NRes));
        assert_eq!(fl("FE FF 7F 00"), Value::Special(Special::PositiveInfinity));
        assert_eq!(fl("02 00 80 00"), Value::Special(Special::NegativeInfinity));
        assert_eq!(fl("01 00 80 00"), Value::Special(Special::Reserved));
    }

    #[test]
    fn negative_exponent_is_sign_extended_unlike_the_obniz_parser() {
        // 17.6 kPa from the A&D example: exponent nibble 0xF must mean -1, not 15.
        assert_eq!(sf("B0 F0"), Value::Number(17.6));
        // Largest and smallest mantissas next to the specials stay numbers.
        assert_eq!(sfloat(0x07FD), Value::Number(2045.0));
        assert_eq!(sfloat(0x0803), Value::Number(-2045.0));
    }

    #[test]
    fn specials_serialise_as_labels() {
        assert_eq!(serde_json::to_string(&sf("FF 07")).unwrap(), "\"NaN\"");
        assert_eq!(serde_json::to_string(&sf("BD F0")).unwrap(), "18.9");
    }
}
