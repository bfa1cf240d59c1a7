//! Heart Rate Service 0x180D: Heart Rate Measurement 0x2A37 with RR intervals (protocol notes §2.7).

use serde::Serialize;

use super::cursor::Cursor;
use super::error::DecodeError;

/// Skin contact as reported by flag bits 1–2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorContact {
    /// Bits 0b00 / 0b01: the sensor cannot tell.
    NotSupported,
    /// 0b10: supported, no contact.
    NotDetected,
    /// 0b11: supported and in contact.
    Detected,
}

/// One heart rate notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartRate {
    /// Heart rate, beats per minute.
    pub heart_rate_per_min: u16,
    /// Skin contact.
    pub sensor_contact: SensorContact,
    /// Energy expended since the last reset, kJ, if sent.
    pub energy_expended_kj: Option<u16>,
    /// RR intervals, ms (raw unit 1/1024 s), oldest first.
    pub rr_intervals_ms: Vec<f64>,
}

/// Decodes a Heart Rate Measurement (0x2A37).
pub fn decode(bytes: &[u8]) -> Result<HeartRate, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let heart_rate_per_min = if flags & 0x01 != 0 {
        c.u16("heart_rate")?
    } else {
        u16::from(c.u8("heart_rate")?)
    };
    let sensor_contact = match (flags >> 1) & 0x03 {
        2 => SensorContact::NotDetected,
        3 => SensorContact::Detected,
        _ => SensorContact::NotSupported,
    };
    let energy_expended_kj = (flags & 0x08 != 0)
        .then(|| c.u16("energy_expended"))
        .transpose()?;
    let mut rr_intervals_ms = Vec::new();
    if flags & 0x10 != 0 {
        let rest = c.rest();
        if !rest.len().is_multiple_of(2) {
            return Err(DecodeError::BadLength {
                declared: rest.len() - 1,
                actual: rest.len(),
            });
        }
        rr_intervals_ms.extend(
            rest.chunks_exact(2)
                .map(|p| f64::from(u16::from_le_bytes([p[0], p[1]])) * 1000.0 / 1024.0),
        );
    }
    Ok(HeartRate {
        heart_rate_per_min,
        sensor_contact,
        energy_expended_kj,
        rr_intervals_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn hr(hex: &str) -> HeartRate {
        decode(&parse_hex(hex).unwrap()).unwrap()
    }

    #[test]
    fn protocol_note_vectors() {
        let r = hr("00 48");
        assert_eq!(
            (r.heart_rate_per_min, r.sensor_contact, r.energy_expended_kj),
            (72, SensorContact::NotSupported, None)
        );
        assert!(r.rr_intervals_ms.is_empty());

        let r = hr("16 4B 20 03");
        assert_eq!(
            (r.heart_rate_per_min, r.sensor_contact),
            (75, SensorContact::Detected)
        );
        assert_eq!(r.rr_intervals_ms, vec![781.25]);

        let r = hr("10 3C 00 04 D7 03");
        assert_eq!(r.heart_rate_per_min, 60);
        assert_eq!(r.rr_intervals_ms.len(), 2);
        assert_eq!(r.rr_intervals_ms[0], 1000.0);
        assert!((r.rr_intervals_ms[1] - 959.96).abs() < 0.005);

        let r = hr("19 2C 01 D2 04 CD 00");
        assert_eq!(
            (r.heart_rate_per_min, r.energy_expended_kj),
            (300, Some(1234))
        );
        assert!((r.rr_intervals_ms[0] - 200.20).abs() < 0.005);

        let r = hr("04 FF");
        assert_eq!(
            (r.heart_rate_per_min, r.sensor_contact),
            (255, SensorContact::NotDetected)
        );

        let r = hr("1F 01 01 32 01 01 00 02 01 FF FF");
        assert_eq!(
            (r.heart_rate_per_min, r.sensor_contact, r.energy_expended_kj),
            (257, SensorContact::Detected, Some(306))
        );
        let raw: Vec<f64> = [1.0, 258.0, 65535.0]
            .iter()
            .map(|r| r * 1000.0 / 1024.0)
            .collect();
        assert_eq!(r.rr_intervals_ms, raw);
    }

    #[test]
    fn odd_rr_byte_is_rejected() {
        assert_eq!(
            decode(&parse_hex("10 3C 00 04 D7").unwrap())
                .unwrap_err()
                .reason(),
            "bad_length"
        );
        assert_eq!(
            decode(&parse_hex("01 3C").unwrap()).unwrap_err().reason(),
            "truncated"
        );
    }
}
