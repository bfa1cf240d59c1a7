//! Weight Scale Service 0x181D: Weight Measurement 0x2A9D (protocol notes §2.5). Reported in kg.

use serde::Serialize;

use super::cursor::Cursor;
use super::date_time::DeviceDateTime;
use super::error::DecodeError;
use super::units::{KG_PER_LB, M_PER_INCH, round_milli};

/// The unit system a scale used on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitSystem {
    /// kg in 0.005 kg steps, m in 0.001 m steps.
    Si,
    /// lb in 0.01 lb steps, inches in 0.1 in steps.
    Imperial,
}

/// A body weight reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weight {
    /// The unit system the scale used; values below are SI either way.
    pub reported_unit: UnitSystem,
    /// Weight, kg; `None` when the scale says "measurement unsuccessful" (0xFFFF).
    pub weight_kg: Option<f64>,
    /// The device's clock at measurement, if sent.
    pub time_stamp: Option<DeviceDateTime>,
    /// The scale's user slot; `None` when absent or 0xFF (unknown user).
    pub user_id: Option<u8>,
    /// Body mass index, kg/m², if sent.
    pub bmi_kg_per_m2: Option<f64>,
    /// Height, m, if sent (always together with BMI).
    pub height_m: Option<f64>,
}

/// Decodes a Weight Measurement (0x2A9D).
pub fn decode(bytes: &[u8]) -> Result<Weight, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let unit = if flags & 0x01 != 0 {
        UnitSystem::Imperial
    } else {
        UnitSystem::Si
    };
    let raw = c.u16("weight")?;
    let weight_kg = (raw != 0xFFFF).then(|| match unit {
        // 0.005 kg steps: divide by 200 so 14000 gives exactly 70.0.
        UnitSystem::Si => f64::from(raw) / 200.0,
        UnitSystem::Imperial => round_milli(f64::from(raw) / 100.0 * KG_PER_LB),
    });
    let time_stamp = (flags & 0x02 != 0)
        .then(|| DeviceDateTime::read(&mut c, "time_stamp"))
        .transpose()?;
    let user_id = (flags & 0x04 != 0)
        .then(|| c.u8("user_id"))
        .transpose()?
        .filter(|&u| u != 0xFF);
    let (bmi_kg_per_m2, height_m) = if flags & 0x08 != 0 {
        let bmi = f64::from(c.u16("bmi")?) / 10.0;
        let height = c.u16("height")?;
        let height_m = match unit {
            UnitSystem::Si => f64::from(height) / 1000.0,
            UnitSystem::Imperial => round_milli(f64::from(height) / 10.0 * M_PER_INCH),
        };
        (Some(bmi), Some(height_m))
    } else {
        (None, None)
    };
    Ok(Weight {
        reported_unit: unit,
        weight_kg,
        time_stamp,
        user_id,
        bmi_kg_per_m2,
        height_m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;

    fn w(hex: &str) -> Weight {
        decode(&parse_hex(hex).unwrap()).unwrap()
    }

    #[test]
    fn protocol_note_vectors() {
        let r = w("00 B0 36");
        assert_eq!((r.weight_kg, r.reported_unit), (Some(70.0), UnitSystem::Si));

        let r = w("0E 16 35 E8 07 03 05 07 1E 00 02 DE 00 D6 06");
        assert_eq!(r.weight_kg, Some(67.95));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2024-03-05T07:30:00");
        assert_eq!(
            (r.user_id, r.bmi_kg_per_m2, r.height_m),
            (Some(2), Some(22.2), Some(1.75))
        );

        let r = w("01 48 3C");
        assert_eq!(r.reported_unit, UnitSystem::Imperial);
        assert_eq!(r.weight_kg, Some(69.998)); // 154.32 lb = 69.99837 kg, kept to 0.001 kg

        let r = w("08 E0 2E C4 00 A4 06");
        assert_eq!(
            (r.weight_kg, r.bmi_kg_per_m2, r.height_m),
            (Some(60.0), Some(19.6), Some(1.7))
        );

        assert_eq!(w("00 FF FF").weight_kg, None);
    }

    #[test]
    fn truncated_records_fail_cleanly() {
        let full = parse_hex("0E 16 35 E8 07 03 05 07 1E 00 02 DE 00 D6 06").unwrap();
        for n in 0..full.len() {
            assert_eq!(
                decode(&full[..n]).unwrap_err().reason(),
                "truncated",
                "prefix {n}"
            );
        }
    }
}
