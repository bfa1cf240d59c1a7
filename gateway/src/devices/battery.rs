//! Battery Service 0x180F: Battery Level 0x2A19, one byte, 0–100 %.

use serde::Serialize;

use super::cursor::Cursor;
use super::error::DecodeError;
use super::units::percent_u8;

/// A battery level reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatteryLevel {
    /// Charge, %.
    pub battery_percent: u8,
}

/// Decodes a Battery Level (0x2A19).
pub fn decode(bytes: &[u8]) -> Result<BatteryLevel, DecodeError> {
    let level = Cursor::new(bytes).u8("battery_level")?;
    Ok(BatteryLevel {
        battery_percent: percent_u8("battery_level", level)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_and_impossible_level() {
        assert_eq!(decode(&[0x55]).unwrap().battery_percent, 85);
        assert_eq!(
            decode(&[101]).unwrap_err(),
            DecodeError::ImpossibleValue {
                field: "battery_level",
                value: 101.0
            }
        );
        assert_eq!(decode(&[]).unwrap_err().reason(), "truncated");
    }
}
