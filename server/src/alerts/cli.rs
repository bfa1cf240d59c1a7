//! Command-line entry points of the alerts subsystem, hooked into `main.rs` one variant each.

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::news2::{
    self, Breathing, Consciousness, DeciCelsius, News2Input, Parameter, Spo2Scale, to_whole_units,
};

/// `mimamori-server news2`: score one set of observations and print the result as JSON.
#[derive(Debug, Args)]
pub struct News2Args {
    /// Oxygen saturation, % (rounded to a whole percent before banding).
    #[arg(long, value_name = "%", value_parser = finite)]
    pub spo2: Option<f64>,
    /// The SpO2 scale from the patient record.
    #[arg(long, value_enum, default_value = "1")]
    pub scale: ScaleArg,
    /// The patient is on supplemental oxygen (without this flag: room air).
    #[arg(long)]
    pub oxygen: bool,
    /// Pulse rate, /min.
    #[arg(long, value_name = "/min", value_parser = finite)]
    pub pulse: Option<f64>,
    /// Systolic blood pressure, mm[Hg].
    #[arg(long, value_name = "mm[Hg]", value_parser = finite)]
    pub sbp: Option<f64>,
    /// Temperature, Cel (rounded to 0.1 before banding).
    #[arg(long, value_name = "Cel", allow_negative_numbers = true, value_parser = finite)]
    pub temp: Option<f64>,
    /// Respiration rate, /min (usually unknown at home).
    #[arg(long, value_name = "/min", value_parser = finite)]
    pub resp: Option<f64>,
    /// Level of consciousness, ACVPU (usually unknown at home).
    #[arg(long, value_enum)]
    pub consciousness: Option<ConsciousnessArg>,
}

/// `--scale` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScaleArg {
    /// Scale 1.
    #[value(name = "1")]
    One,
    /// Scale 2.
    #[value(name = "2")]
    Two,
}

/// `--consciousness` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[allow(clippy::upper_case_acronyms)]
pub enum ConsciousnessArg {
    /// Alert.
    #[value(name = "A", alias = "a")]
    A,
    /// New confusion.
    #[value(name = "C", alias = "c")]
    C,
    /// Voice.
    #[value(name = "V", alias = "v")]
    V,
    /// Pain.
    #[value(name = "P", alias = "p")]
    P,
    /// Unresponsive.
    #[value(name = "U", alias = "u")]
    U,
}

impl News2Args {
    /// The scoring input, every value rounded to the chart's resolution.
    pub fn input(&self) -> News2Input {
        News2Input {
            respiration_per_min: self.resp.map(to_whole_units),
            spo2_percent: self.spo2.map(to_whole_units),
            scale: match self.scale {
                ScaleArg::One => Spo2Scale::One,
                ScaleArg::Two => Spo2Scale::Two,
            },
            breathing: if self.oxygen {
                Breathing::Oxygen
            } else {
                Breathing::Air
            },
            systolic_mm_hg: self.sbp.map(to_whole_units),
            pulse_per_min: self.pulse.map(to_whole_units),
            consciousness: self.consciousness.map(|c| match c {
                ConsciousnessArg::A => Consciousness::A,
                ConsciousnessArg::C => Consciousness::C,
                ConsciousnessArg::V => Consciousness::V,
                ConsciousnessArg::P => Consciousness::P,
                ConsciousnessArg::U => Consciousness::U,
            }),
            temperature: self.temp.map(DeciCelsius::from_celsius),
        }
    }
}

/// The JSON report `news2` prints: the score, whether it is partial, and each parameter's charted
/// value (after rounding), unit (UCUM) and points.
pub fn news2_report(args: &News2Args) -> Value {
    let input = args.input();
    let scored = news2::score(&input);
    let mut parameters = serde_json::Map::new();
    for p in &scored.parameters {
        let (name, value, unit) = match p.parameter {
            Parameter::RespirationRate => {
                ("respiration_rate", json!(input.respiration_per_min), "/min")
            }
            Parameter::Spo2 => ("spo2", json!(input.spo2_percent), "%"),
            Parameter::AirOrOxygen => ("air_or_oxygen", json!(input.breathing), ""),
            Parameter::SystolicBp => ("systolic_bp", json!(input.systolic_mm_hg), "mm[Hg]"),
            Parameter::Pulse => ("pulse", json!(input.pulse_per_min), "/min"),
            Parameter::Consciousness => ("consciousness", json!(input.consciousness), ""),
            Parameter::Temperature => (
                "temperature",
                json!(input.temperature.map(DeciCelsius::as_celsius)),
                "Cel",
            ),
        };
        parameters.insert(
            name.to_owned(),
            json!({ "value": value, "unit": unit, "points": p.points, "max_points": p.max_points }),
        );
    }
    json!({
        "score": scored.score,
        "partial": scored.partial,
        "max_missing": scored.max_missing,
        "any_parameter_3": scored.any_parameter_3,
        "risk_at_least": scored.risk_at_least,
        "risk_at_most": scored.risk_at_most,
        "scale": input.scale.number(),
        "oxygen": input.breathing == Breathing::Oxygen,
        "used": scored.used,
        "parameters": parameters,
    })
}

/// Parses a finite number: NaN or infinity is no measurement.
fn finite(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("value must be a finite number".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}
