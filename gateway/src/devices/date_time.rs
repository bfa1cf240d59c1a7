//! The 7-byte SIG Date Time (0x2A08 layout), and how a device's zone-less clock becomes a UTC instant.
//!
//! BLE date-times carry no zone. Our devices are in homes in Japan, so they are read as Asia/Tokyo
//! local time; Japan has had no daylight saving since 1951, so a fixed +09:00 offset is exact and
//! needs no zone database.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

use super::cursor::Cursor;
use super::error::DecodeError;

/// Asia/Tokyo: UTC+09:00 all year.
pub fn tokyo() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// A device clock reading exactly as sent: any part may be 0 = unknown, and nothing is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceDateTime {
    /// 1582–9999, 0 = unknown.
    pub year: u16,
    /// 1–12, 0 = unknown.
    pub month: u8,
    /// 1–31, 0 = unknown.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
}

impl DeviceDateTime {
    /// Reads the 7-byte layout (year u16 LE, month, day, hour, minute, second).
    pub(crate) fn read(c: &mut Cursor<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let [y0, y1, month, day, hour, minute, second] = c.array::<7>(field)?;
        Ok(Self {
            year: u16::from_le_bytes([y0, y1]),
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Decodes a standalone Date Time characteristic (0x2A08).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Cursor::new(bytes), "date_time")
    }

    /// The 7-byte wire form, for writing a device's clock.
    pub fn encode(&self) -> [u8; 7] {
        let [y0, y1] = self.year.to_le_bytes();
        [
            y0,
            y1,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ]
    }

    /// From a local (Tokyo) wall-clock time.
    pub fn from_naive(t: NaiveDateTime) -> Self {
        use chrono::{Datelike, Timelike};
        Self {
            // Years outside u16 cannot come from a real clock; saturate rather than wrap.
            year: u16::try_from(t.year()).unwrap_or(0),
            month: t.month() as u8,
            day: t.day() as u8,
            hour: t.hour() as u8,
            minute: t.minute() as u8,
            second: t.second() as u8,
        }
    }

    /// The wall-clock time if every part is known and forms a real date.
    pub fn to_naive(&self) -> Option<NaiveDateTime> {
        if self.year == 0 || self.month == 0 || self.day == 0 {
            return None;
        }
        NaiveDate::from_ymd_opt(
            i32::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )?
        .and_hms_opt(
            u32::from(self.hour),
            u32::from(self.minute),
            u32::from(self.second),
        )
    }

    /// Interprets the device time against the gateway's receive time. Never fails: a reading with
    /// an unknown or implausible device time is kept, timed at reception, with a flag saying why.
    pub fn interpret(&self, received_at: DateTime<Utc>) -> Timing {
        Timing::from_device(Some(*self), received_at)
    }
}

impl fmt::Display for DeviceDateTime {
    /// ISO-like, with `?` for unknown parts: `2024-03-05T14:07:09`, `????-04-17T20:41:59`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.year == 0 {
            f.write_str("????")?
        } else {
            write!(f, "{:04}", self.year)?
        }
        if self.month == 0 {
            f.write_str("-??")?
        } else {
            write!(f, "-{:02}", self.month)?
        }
        if self.day == 0 {
            f.write_str("-??")?
        } else {
            write!(f, "-{:02}", self.day)?
        }
        write!(f, "T{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

impl Serialize for DeviceDateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a device time was not used as the measurement time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFlag {
    /// The device sent no time stamp, or one with unknown parts (year 0).
    DeviceTimeUnknown,
    /// The device time is not a real date (month 13, 30 February, hour 25…).
    DeviceTimeInvalid,
    /// The device time is later than the gateway's receive time by more than [`FUTURE_TOLERANCE`].
    DeviceTimeInFuture,
    /// The device time is older than [`MAX_AGE`], or before [`EARLIEST_PLAUSIBLE_YEAR`].
    DeviceTimeTooOld,
    /// The device itself says its clock was never set (PLX flag bit 4).
    DeviceClockNotSet,
}

/// How far in the future a device clock may run before its time is distrusted.
pub const FUTURE_TOLERANCE: Duration = Duration::minutes(5);
/// How old a stored reading may be (BP monitors push their memory on connect) before its time is
/// distrusted: a little over a year of device memory.
pub const MAX_AGE: Duration = Duration::days(400);
/// Device clocks that reset to their epoch (2000, 2010…) show years this old.
pub const EARLIEST_PLAUSIBLE_YEAR: u16 = 2020;

/// When a reading was measured, and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// The instant used downstream: the device time read as Tokyo local time when plausible,
    /// otherwise the receive time.
    pub measured_at: DateTime<Utc>,
    /// The device's own time as it reported it, kept even when implausible.
    pub device_time: Option<DeviceDateTime>,
    /// When the gateway received the bytes.
    pub received_at: DateTime<Utc>,
    /// Why the device time was not used (empty when it was).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<TimeFlag>,
}

impl Timing {
    /// See [`DeviceDateTime::interpret`]; `None` means the device sent no time at all.
    pub fn from_device(device_time: Option<DeviceDateTime>, received_at: DateTime<Utc>) -> Self {
        let mut flags = Vec::new();
        let mut measured_at = received_at;
        match device_time {
            None => flags.push(TimeFlag::DeviceTimeUnknown),
            Some(dt) if dt.year == 0 || dt.month == 0 || dt.day == 0 => {
                flags.push(TimeFlag::DeviceTimeUnknown)
            }
            Some(dt) => match dt
                .to_naive()
                .and_then(|n| tokyo().from_local_datetime(&n).single())
            {
                None => flags.push(TimeFlag::DeviceTimeInvalid),
                Some(local) => {
                    let at = local.with_timezone(&Utc);
                    if at > received_at + FUTURE_TOLERANCE {
                        flags.push(TimeFlag::DeviceTimeInFuture);
                    } else if at < received_at - MAX_AGE || dt.year < EARLIEST_PLAUSIBLE_YEAR {
                        flags.push(TimeFlag::DeviceTimeTooOld);
                    } else {
                        measured_at = at;
                    }
                }
            },
        }
        Self {
            measured_at,
            device_time,
            received_at,
            flags,
        }
    }

    /// Adds a flag the device reported about its own clock; the device time is then not trusted.
    pub fn distrust(mut self, flag: TimeFlag) -> Self {
        self.measured_at = self.received_at;
        self.flags.push(flag);
        self
    }

    /// True when the device time was used as the measurement time.
    pub fn device_time_used(&self) -> bool {
        self.flags.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn dt(hex: &str) -> DeviceDateTime {
        DeviceDateTime::decode(&parse_hex(hex).unwrap()).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn date_time_vectors_from_protocol_notes() {
        assert_eq!(
            dt("E8 07 03 05 0E 07 09").to_string(),
            "2024-03-05T14:07:09"
        );
        assert_eq!(
            dt("DD 07 08 1A 09 0A 14").to_string(),
            "2013-08-26T09:10:20"
        );
        assert_eq!(
            dt("00 00 04 11 14 29 3B").to_string(),
            "????-04-17T20:41:59"
        );
        assert_eq!(
            dt("E8 07 03 05 0E 07 09").encode(),
            *parse_hex("E8 07 03 05 0E 07 09").unwrap()
        );
    }

    #[test]
    fn truncated_date_time_is_rejected_with_offset() {
        let err = DeviceDateTime::decode(&[0xE8, 0x07, 0x03]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "date_time",
                offset: 0,
                needed: 7,
                available: 3
            }
        );
    }

    #[test]
    fn device_time_is_read_as_tokyo_local_time() {
        let t = dt("E8 07 03 05 0E 07 09").interpret(utc("2024-03-05T05:10:00Z"));
        assert_eq!(t.measured_at, utc("2024-03-05T05:07:09Z"));
        assert!(t.device_time_used());
    }

    #[test]
    fn implausible_device_times_are_kept_and_flagged_never_dropped() {
        let received = utc("2024-03-05T05:10:00Z");
        let cases = [
            ("00 00 04 11 14 29 3B", TimeFlag::DeviceTimeUnknown),
            ("E8 07 02 1E 0E 07 09", TimeFlag::DeviceTimeInvalid), // 30 February
            ("E8 07 03 05 19 00 00", TimeFlag::DeviceTimeInvalid), // hour 25
            ("E8 07 03 05 0F 00 00", TimeFlag::DeviceTimeInFuture), // 15:00 JST = 06:00Z, 50 min ahead
            ("DD 07 08 1A 09 0A 14", TimeFlag::DeviceTimeTooOld),   // 2013
            ("D0 07 01 01 00 00 00", TimeFlag::DeviceTimeTooOld),   // reset clock, year 2000
        ];
        for (hex, flag) in cases {
            let t = dt(hex).interpret(received);
            assert_eq!(t.flags, vec![flag], "{hex}");
            assert_eq!(t.measured_at, received, "{hex}");
            assert_eq!(
                t.device_time,
                Some(dt(hex)),
                "{hex}: the device's own time is kept"
            );
        }
    }

    #[test]
    fn a_clock_within_tolerance_ahead_is_trusted() {
        // 14:09 JST = 05:09Z, received at 05:06Z: 3 minutes ahead.
        let t = dt("E8 07 03 05 0E 09 00").interpret(utc("2024-03-05T05:06:00Z"));
        assert!(t.device_time_used());
    }
}
