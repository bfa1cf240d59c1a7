//! Current Time Service 0x1805: Current Time 0x2A2B (protocol notes §2.8), read to learn a device's
//! clock and written to set it.

use chrono::{Datelike, NaiveDateTime};
use serde::Serialize;

use super::cursor::Cursor;
use super::date_time::DeviceDateTime;
use super::error::DecodeError;

/// The Current Time characteristic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CurrentTime {
    /// The device's local wall-clock time.
    pub date_time: DeviceDateTime,
    /// 1 Monday … 7 Sunday, 0 unknown.
    pub day_of_week: u8,
    /// Fractions of a second in 1/256 s.
    pub fractions256: u8,
    /// Adjust reason bits: 0 manual update, 1 external reference, 2 time-zone change, 3 DST change.
    pub adjust_reason: u8,
}

impl CurrentTime {
    /// The value to write to set a device's clock to `local` (Tokyo wall-clock time), marked as
    /// set from an external reference (the gateway's NTP-synced clock).
    pub fn for_setting(local: NaiveDateTime) -> Self {
        Self {
            date_time: DeviceDateTime::from_naive(local),
            day_of_week: local.weekday().number_from_monday() as u8,
            fractions256: 0,
            adjust_reason: 0x02,
        }
    }

    /// The 10-byte wire form.
    pub fn encode(&self) -> [u8; 10] {
        let d = self.date_time.encode();
        [
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            self.day_of_week,
            self.fractions256,
            self.adjust_reason,
        ]
    }
}

/// Decodes a Current Time (0x2A2B).
pub fn decode(bytes: &[u8]) -> Result<CurrentTime, DecodeError> {
    let mut c = Cursor::new(bytes);
    Ok(CurrentTime {
        date_time: DeviceDateTime::read(&mut c, "date_time")?,
        day_of_week: c.u8("day_of_week")?,
        fractions256: c.u8("fractions256")?,
        adjust_reason: c.u8("adjust_reason")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    #[test]
    fn protocol_note_vector_round_trips() {
        let bytes = parse_hex("E8 07 03 05 0E 07 09 02 00 01").unwrap();
        let t = decode(&bytes).unwrap();
        assert_eq!(t.date_time.to_string(), "2024-03-05T14:07:09");
        assert_eq!((t.day_of_week, t.fractions256, t.adjust_reason), (2, 0, 1));
        assert_eq!(t.encode().to_vec(), bytes);
    }

    #[test]
    fn setting_value_has_weekday_and_external_reference() {
        let local = "2024-03-05T14:07:09".parse().unwrap();
        assert_eq!(
            CurrentTime::for_setting(local).encode().to_vec(),
            parse_hex("E8 07 03 05 0E 07 09 02 00 02").unwrap()
        );
    }
}
