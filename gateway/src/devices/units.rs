//! Unit conversions to the natural units the gateway reports (mmHg, Cel, kg, m), and the checks
//! that reject values no device can have measured.
//!
//! "Impossible" here means physically impossible for the field (a negative weight, SpO2 above
//! 100 %), not clinically unusual: judging a value is the server's job.

use super::error::DecodeError;
use super::ieee11073::Value;

/// mmHg per kPa (760 / 101.325).
pub const MMHG_PER_KPA: f64 = 760.0 / 101.325;
/// kg per pound, exact by definition.
pub const KG_PER_LB: f64 = 0.453_592_37;
/// Metres per inch, exact by definition.
pub const M_PER_INCH: f64 = 0.0254;

/// Rounds a converted value to 0.01 of its unit: far below any device's resolution, and it keeps
/// `120.00986…` from showing up where the device meant 16.0 kPa.
pub fn round_centi(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Rounds a converted value to 0.001 of its unit (kg, m): finer than any scale's step.
pub fn round_milli(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Degrees Fahrenheit to Celsius.
pub fn fahrenheit_to_celsius(f: f64) -> f64 {
    round_centi((f - 32.0) * 5.0 / 9.0)
}

/// Rejects negative numbers (pressures, rates, weights); specials pass.
pub fn non_negative(field: &'static str, v: Value) -> Result<Value, DecodeError> {
    match v.number() {
        Some(n) if n < 0.0 => Err(DecodeError::ImpossibleValue { field, value: n }),
        _ => Ok(v),
    }
}

/// Rejects a percentage outside 0–100; specials pass.
pub fn percent(field: &'static str, v: Value) -> Result<Value, DecodeError> {
    match v.number() {
        Some(n) if !(0.0..=100.0).contains(&n) => {
            Err(DecodeError::ImpossibleValue { field, value: n })
        }
        _ => Ok(v),
    }
}

/// Rejects a byte percentage above 100.
pub fn percent_u8(field: &'static str, v: u8) -> Result<u8, DecodeError> {
    if v > 100 {
        return Err(DecodeError::ImpossibleValue {
            field,
            value: f64::from(v),
        });
    }
    Ok(v)
}
