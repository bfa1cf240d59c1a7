//! Health Thermometer Service 0x1809: Temperature Measurement 0x2A1C and Intermediate
//! Temperature 0x2A1E, which share one layout (protocol notes §2.4). Reported in °C.

use serde::Serialize;

use super::cursor::Cursor;
use super::date_time::DeviceDateTime;
use super::error::DecodeError;
use super::ieee11073::{Value, float};
use super::units::fahrenheit_to_celsius;

/// The unit a device used on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TemperatureUnit {
    /// Degrees Celsius.
    #[serde(rename = "Cel")]
    Celsius,
    /// Degrees Fahrenheit.
    #[serde(rename = "[degF]")]
    Fahrenheit,
}

/// Where on the body the temperature was taken (Temperature Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemperatureSite {
    /// 1.
    Armpit,
    /// 2: body, general.
    Body,
    /// 3: ear, usually earlobe.
    Ear,
    /// 4.
    Finger,
    /// 5.
    GastrointestinalTract,
    /// 6.
    Mouth,
    /// 7.
    Rectum,
    /// 8.
    Toe,
    /// 9: ear drum.
    Tympanum,
    /// A code the spec reserves.
    Reserved(u8),
}

impl TemperatureSite {
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Armpit,
            2 => Self::Body,
            3 => Self::Ear,
            4 => Self::Finger,
            5 => Self::GastrointestinalTract,
            6 => Self::Mouth,
            7 => Self::Rectum,
            8 => Self::Toe,
            9 => Self::Tympanum,
            other => Self::Reserved(other),
        }
    }
}

/// A body temperature reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Temperature {
    /// The unit the thermometer used on the air; the value below is in °C either way.
    pub reported_unit: TemperatureUnit,
    /// Temperature, degrees Celsius (NaN when the device has no valid reading).
    pub temperature_cel: Value,
    /// The device's clock at measurement, if sent.
    pub time_stamp: Option<DeviceDateTime>,
    /// Measurement site, if sent.
    pub site: Option<TemperatureSite>,
}

/// Decodes a Temperature Measurement (0x2A1C) or Intermediate Temperature (0x2A1E).
pub fn decode(bytes: &[u8]) -> Result<Temperature, DecodeError> {
    let mut c = Cursor::new(bytes);
    let flags = c.u8("flags")?;
    let unit = if flags & 0x01 != 0 {
        TemperatureUnit::Fahrenheit
    } else {
        TemperatureUnit::Celsius
    };
    let raw = float(c.u32("temperature")?);
    let temperature_cel = match unit {
        TemperatureUnit::Celsius => raw,
        TemperatureUnit::Fahrenheit => raw.map(fahrenheit_to_celsius),
    };
    // Below absolute zero is not a temperature; anything else is left to the server's rules.
    if let Some(t) = temperature_cel.number().filter(|&t| t < -273.15) {
        return Err(DecodeError::ImpossibleValue {
            field: "temperature",
            value: t,
        });
    }
    let time_stamp = (flags & 0x02 != 0)
        .then(|| DeviceDateTime::read(&mut c, "time_stamp"))
        .transpose()?;
    let site = (flags & 0x04 != 0)
        .then(|| c.u8("temperature_type"))
        .transpose()?
        .map(TemperatureSite::from_code);
    Ok(Temperature {
        reported_unit: unit,
        temperature_cel,
        time_stamp,
        site,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::error::parse_hex;
    use crate::devices::ieee11073::Special;

    fn t(hex: &str) -> Temperature {
        decode(&parse_hex(hex).unwrap()).unwrap()
    }

    #[test]
    fn protocol_note_vectors() {
        let r = t("00 6E 01 00 FF");
        assert_eq!(
            (r.temperature_cel, r.reported_unit, r.time_stamp, r.site),
            (Value::Number(36.6), TemperatureUnit::Celsius, None, None)
        );

        let r = t("06 65 0E 00 FE E8 07 03 05 0E 07 09 02");
        assert_eq!(r.temperature_cel, Value::Number(36.85));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2024-03-05T14:07:09");
        assert_eq!(r.site, Some(TemperatureSite::Body));

        let r = t("03 DA 03 00 FF E7 07 0C 1F 17 00 00");
        assert_eq!(r.reported_unit, TemperatureUnit::Fahrenheit);
        assert_eq!(r.temperature_cel, Value::Number(37.0)); // 98.6 °F
        assert_eq!(r.time_stamp.unwrap().to_string(), "2023-12-31T23:00:00");

        let r = t("04 FF FF 7F 00 03");
        assert_eq!(
            (r.temperature_cel, r.site),
            (Value::Special(Special::NaN), Some(TemperatureSite::Ear))
        );

        let r = t("06 B0 0E 00 FE DC 07 0C 05 0B 32 1B 04");
        assert_eq!(r.temperature_cel, Value::Number(37.6));
        assert_eq!(r.time_stamp.unwrap().to_string(), "2012-12-05T11:50:27");
        assert_eq!(r.site, Some(TemperatureSite::Finger));
    }

    #[test]
    fn truncated_and_impossible() {
        assert_eq!(
            decode(&parse_hex("00 6E 01").unwrap())
                .unwrap_err()
                .reason(),
            "truncated"
        );
        assert_eq!(
            decode(&parse_hex("04 6E 01 00 FF").unwrap())
                .unwrap_err()
                .reason(),
            "truncated"
        );
        // -300 °C
        let err = decode(&parse_hex("00 D4 FE FF 00").unwrap()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::ImpossibleValue {
                field: "temperature",
                value: -300.0
            }
        );
    }
}
