//! NEWS2, the National Early Warning Score 2, computed honestly from what home devices measure.
//!
//! Source: Royal College of Physicians, *National Early Warning Score (NEWS) 2: Standardising the
//! assessment of acute-illness severity in the NHS*, updated report of a working party, London,
//! RCP 2017 (chart 1, "The NEWS2 scoring system").
//!
//! At home we measure SpO2, pulse, systolic blood pressure and temperature; the patient record says
//! whether the patient is on home oxygen and which SpO2 scale applies. Respiration rate and level of
//! consciousness are usually unknown. A score without them is **partial**: we report the points of
//! the parameters we have, which parameters those are, the most the missing ones could add, and
//! whether any single parameter scored 3 (the chart's own trigger for an urgent response).
//!
//! # Resolution and rounding
//! The chart bands whole numbers for SpO2 (%), pulse (/min), systolic BP (mm[Hg]) and respiration
//! (/min), and tenths of a degree for temperature (Cel). A measured value is first rounded to that
//! resolution, half away from zero (`f64::round`), then banded: 95.5 % is charted as 96 % (0 points
//! on scale 1), 38.04 Cel as 38.0 Cel (0 points), 38.05 Cel as 38.1 Cel (1 point). Values the
//! caller already holds at the chart's resolution (integers, tenths) are unaffected.

use serde::Serialize;

/// Which SpO2 scale the patient's record prescribes.
///
/// Scale 2 is for patients with confirmed hypercapnic respiratory failure whose prescribed target
/// saturation is 88–92 %, chosen by a clinician; every other patient is on scale 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spo2Scale {
    /// The default scale.
    One,
    /// The hypercapnic-respiratory-failure scale (target 88–92 %).
    Two,
}

impl Spo2Scale {
    /// The scale's number on the chart (1 or 2).
    pub const fn number(self) -> u8 {
        match self {
            Self::One => 1,
            Self::Two => 2,
        }
    }
}

/// Whether the patient breathes room air or supplemental oxygen (home oxygen is common here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Breathing {
    /// Room air.
    Air,
    /// Any supplemental oxygen.
    Oxygen,
}

/// The ACVPU level of consciousness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Consciousness {
    /// Alert.
    A,
    /// New confusion.
    C,
    /// Responds to voice.
    V,
    /// Responds to pain.
    P,
    /// Unresponsive.
    U,
}

/// A temperature held at the chart's resolution, in tenths of a degree Celsius.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DeciCelsius(pub i32);

impl DeciCelsius {
    /// Rounds a temperature in degrees Celsius to the nearest tenth, half away from zero.
    pub fn from_celsius(celsius: f64) -> Self {
        Self((celsius * 10.0).round() as i32)
    }

    /// Degrees Celsius.
    pub fn as_celsius(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

/// Rounds a measured value charted in whole units (SpO2 %, /min, mm[Hg]), half away from zero.
pub fn to_whole_units(value: f64) -> i32 {
    value.round() as i32
}

/// What is known about the patient at one moment, already at the chart's resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct News2Input {
    /// Respiration rate, breaths per minute (`/min`); usually unknown at home.
    pub respiration_per_min: Option<i32>,
    /// Oxygen saturation, percent (`%`).
    pub spo2_percent: Option<i32>,
    /// The SpO2 scale from the patient record.
    pub scale: Spo2Scale,
    /// Air or oxygen, from the patient record.
    pub breathing: Breathing,
    /// Systolic blood pressure, `mm[Hg]`.
    pub systolic_mm_hg: Option<i32>,
    /// Pulse rate, beats per minute (`/min`).
    pub pulse_per_min: Option<i32>,
    /// Level of consciousness; usually unknown at home.
    pub consciousness: Option<Consciousness>,
    /// Temperature, tenths of a degree Celsius.
    pub temperature: Option<DeciCelsius>,
}

/// One of the seven NEWS2 parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Respiration rate.
    RespirationRate,
    /// SpO2 on the patient's scale.
    Spo2,
    /// Air or oxygen.
    AirOrOxygen,
    /// Systolic blood pressure.
    SystolicBp,
    /// Pulse.
    Pulse,
    /// Level of consciousness.
    Consciousness,
    /// Temperature.
    Temperature,
}

impl Parameter {
    /// The most points this parameter can score on the chart.
    pub const fn max_points(self) -> u8 {
        match self {
            Self::AirOrOxygen | Self::Temperature => 2,
            _ => 3,
        }
    }
}

/// The points of one parameter, or `None` when its value is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParameterScore {
    /// Which parameter.
    pub parameter: Parameter,
    /// Points scored, when the value is known.
    pub points: Option<u8>,
    /// The most the parameter could score (what it adds to `max_missing` when unknown).
    pub max_points: u8,
}

/// Clinical risk as the chart groups aggregate scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClinicalRisk {
    /// Aggregate 0–4 with no single parameter at 3.
    Low,
    /// A single parameter scoring 3 with an aggregate 0–4 ("low–medium": urgent ward-based response).
    LowMedium,
    /// Aggregate 5–6.
    Medium,
    /// Aggregate 7 or more.
    High,
}

impl ClinicalRisk {
    fn of(aggregate: u8, any_parameter_3: bool) -> Self {
        match aggregate {
            7.. => Self::High,
            5..=6 => Self::Medium,
            _ if any_parameter_3 => Self::LowMedium,
            _ => Self::Low,
        }
    }
}

/// A NEWS2 score, possibly partial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct News2Score {
    /// Sum of the points of the known parameters.
    pub score: u8,
    /// True when at least one parameter is unknown.
    pub partial: bool,
    /// The most the unknown parameters could add.
    pub max_missing: u8,
    /// True when any known parameter scored 3.
    pub any_parameter_3: bool,
    /// The risk implied by the known points alone (a lower bound when partial).
    pub risk_at_least: ClinicalRisk,
    /// The risk if every unknown parameter scored its maximum (an upper bound).
    pub risk_at_most: ClinicalRisk,
    /// The parameters whose values were known.
    pub used: Vec<Parameter>,
    /// Every parameter with its points.
    pub parameters: Vec<ParameterScore>,
}

/// Respiration rate, breaths per minute: ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3.
pub fn respiration_points(per_min: i32) -> u8 {
    match per_min {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

/// SpO2 on the patient's scale.
///
/// Scale 1: ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0. Scale 2: ≤83 → 3, 84–85 → 2, 86–87 → 1,
/// 88–92 → 0, and ≥93 → 0 on air but 93–94 → 1, 95–96 → 2, ≥97 → 3 on oxygen (over-oxygenation
/// is a risk to these patients, which is why the chart scores it only when oxygen is given).
pub fn spo2_points(percent: i32, scale: Spo2Scale, breathing: Breathing) -> u8 {
    match scale {
        Spo2Scale::One => match percent {
            ..=91 => 3,
            92..=93 => 2,
            94..=95 => 1,
            96.. => 0,
        },
        Spo2Scale::Two => match (percent, breathing) {
            (..=83, _) => 3,
            (84..=85, _) => 2,
            (86..=87, _) => 1,
            (88..=92, _) | (93.., Breathing::Air) => 0,
            (93..=94, Breathing::Oxygen) => 1,
            (95..=96, Breathing::Oxygen) => 2,
            (97.., Breathing::Oxygen) => 3,
        },
    }
}

/// Air → 0, oxygen → 2.
pub fn air_or_oxygen_points(breathing: Breathing) -> u8 {
    match breathing {
        Breathing::Air => 0,
        Breathing::Oxygen => 2,
    }
}

/// Systolic BP, mm[Hg]: ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3.
pub fn systolic_points(mm_hg: i32) -> u8 {
    match mm_hg {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

/// Pulse, /min: ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2, ≥131 → 3.
pub fn pulse_points(per_min: i32) -> u8 {
    match per_min {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

/// Alert → 0; new confusion, voice, pain or unresponsive → 3.
pub fn consciousness_points(level: Consciousness) -> u8 {
    match level {
        Consciousness::A => 0,
        Consciousness::C | Consciousness::V | Consciousness::P | Consciousness::U => 3,
    }
}

/// Temperature: ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1, ≥39.1 → 2.
pub fn temperature_points(temperature: DeciCelsius) -> u8 {
    match temperature.0 {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

/// Scores what is known; see the module documentation for what "partial" means.
pub fn score(input: &News2Input) -> News2Score {
    let parameters = vec![
        known(
            Parameter::RespirationRate,
            input.respiration_per_min.map(respiration_points),
        ),
        known(
            Parameter::Spo2,
            input
                .spo2_percent
                .map(|p| spo2_points(p, input.scale, input.breathing)),
        ),
        known(
            Parameter::AirOrOxygen,
            Some(air_or_oxygen_points(input.breathing)),
        ),
        known(
            Parameter::SystolicBp,
            input.systolic_mm_hg.map(systolic_points),
        ),
        known(Parameter::Pulse, input.pulse_per_min.map(pulse_points)),
        known(
            Parameter::Consciousness,
            input.consciousness.map(consciousness_points),
        ),
        known(
            Parameter::Temperature,
            input.temperature.map(temperature_points),
        ),
    ];
    let score = parameters.iter().filter_map(|p| p.points).sum();
    let max_missing = parameters
        .iter()
        .filter(|p| p.points.is_none())
        .map(|p| p.max_points)
        .sum();
    let any_parameter_3 = parameters.iter().any(|p| p.points == Some(3));
    let used = parameters
        .iter()
        .filter(|p| p.points.is_some())
        .map(|p| p.parameter)
        .collect();
    News2Score {
        score,
        partial: max_missing > 0,
        max_missing,
        any_parameter_3,
        risk_at_least: ClinicalRisk::of(score, any_parameter_3),
        // Any unknown 3-point parameter could score 3, so the upper bound assumes it did.
        risk_at_most: ClinicalRisk::of(
            score + max_missing,
            any_parameter_3
                || parameters
                    .iter()
                    .any(|p| p.points.is_none() && p.max_points == 3),
        ),
        used,
        parameters,
    }
}

fn known(parameter: Parameter, points: Option<u8>) -> ParameterScore {
    ParameterScore {
        parameter,
        points,
        max_points: parameter.max_points(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts the points at each side of every band edge, so an off-by-one in any arm fails.
    fn assert_bands(points: impl Fn(i32) -> u8, edges: &[(i32, u8)]) {
        for &(value, expected) in edges {
            assert_eq!(points(value), expected, "value {value}");
        }
    }

    #[test]
    fn respiration_band_edges() {
        assert_bands(
            respiration_points,
            &[
                (0, 3),
                (8, 3),
                (9, 1),
                (11, 1),
                (12, 0),
                (20, 0),
                (21, 2),
                (24, 2),
                (25, 3),
                (60, 3),
            ],
        );
    }

    #[test]
    fn spo2_scale_1_band_edges() {
        for breathing in [Breathing::Air, Breathing::Oxygen] {
            assert_bands(
                |p| spo2_points(p, Spo2Scale::One, breathing),
                &[
                    (50, 3),
                    (91, 3),
                    (92, 2),
                    (93, 2),
                    (94, 1),
                    (95, 1),
                    (96, 0),
                    (100, 0),
                ],
            );
        }
    }

    #[test]
    fn spo2_scale_2_band_edges_on_air_never_score_high_saturation() {
        assert_bands(
            |p| spo2_points(p, Spo2Scale::Two, Breathing::Air),
            &[
                (50, 3),
                (83, 3),
                (84, 2),
                (85, 2),
                (86, 1),
                (87, 1),
                (88, 0),
                (92, 0),
                (93, 0),
                (96, 0),
                (97, 0),
                (100, 0),
            ],
        );
    }

    #[test]
    fn spo2_scale_2_band_edges_on_oxygen_score_over_oxygenation() {
        assert_bands(
            |p| spo2_points(p, Spo2Scale::Two, Breathing::Oxygen),
            &[
                (83, 3),
                (84, 2),
                (85, 2),
                (86, 1),
                (87, 1),
                (88, 0),
                (92, 0),
                (93, 1),
                (94, 1),
                (95, 2),
                (96, 2),
                (97, 3),
                (100, 3),
            ],
        );
    }

    #[test]
    fn systolic_band_edges() {
        assert_bands(
            systolic_points,
            &[
                (40, 3),
                (90, 3),
                (91, 2),
                (100, 2),
                (101, 1),
                (110, 1),
                (111, 0),
                (219, 0),
                (220, 3),
                (300, 3),
            ],
        );
    }

    #[test]
    fn pulse_band_edges() {
        assert_bands(
            pulse_points,
            &[
                (20, 3),
                (40, 3),
                (41, 1),
                (50, 1),
                (51, 0),
                (90, 0),
                (91, 1),
                (110, 1),
                (111, 2),
                (130, 2),
                (131, 3),
                (250, 3),
            ],
        );
    }

    #[test]
    fn temperature_band_edges_in_tenths() {
        assert_bands(
            |t| temperature_points(DeciCelsius(t)),
            &[
                (300, 3),
                (350, 3),
                (351, 1),
                (360, 1),
                (361, 0),
                (380, 0),
                (381, 1),
                (390, 1),
                (391, 2),
                (420, 2),
            ],
        );
    }

    #[test]
    fn consciousness_scores_anything_but_alert_as_3() {
        assert_eq!(consciousness_points(Consciousness::A), 0);
        for level in [
            Consciousness::C,
            Consciousness::V,
            Consciousness::P,
            Consciousness::U,
        ] {
            assert_eq!(consciousness_points(level), 3);
        }
    }

    #[test]
    fn air_scores_0_and_oxygen_2() {
        assert_eq!(air_or_oxygen_points(Breathing::Air), 0);
        assert_eq!(air_or_oxygen_points(Breathing::Oxygen), 2);
    }

    #[test]
    fn measured_values_are_rounded_to_the_chart_resolution_before_banding() {
        assert_eq!(DeciCelsius::from_celsius(38.04), DeciCelsius(380));
        assert_eq!(DeciCelsius::from_celsius(38.06), DeciCelsius(381));
        assert_eq!(DeciCelsius::from_celsius(35.96), DeciCelsius(360));
        assert_eq!(temperature_points(DeciCelsius::from_celsius(38.04)), 0);
        assert_eq!(temperature_points(DeciCelsius::from_celsius(38.06)), 1);
        assert_eq!(to_whole_units(95.4), 95);
        assert_eq!(to_whole_units(95.5), 96);
        assert_eq!(
            spo2_points(to_whole_units(95.5), Spo2Scale::One, Breathing::Air),
            0
        );
        assert_eq!(to_whole_units(90.49), 90);
        assert_eq!(systolic_points(to_whole_units(90.49)), 3);
    }

    fn home_input() -> News2Input {
        News2Input {
            respiration_per_min: None,
            spo2_percent: Some(95),
            scale: Spo2Scale::One,
            breathing: Breathing::Air,
            systolic_mm_hg: Some(120),
            pulse_per_min: Some(95),
            consciousness: None,
            temperature: Some(DeciCelsius(372)),
        }
    }

    #[test]
    fn home_score_is_partial_with_respiration_and_consciousness_missing() {
        let s = score(&home_input());
        assert_eq!(s.score, 2); // SpO2 95 → 1, pulse 95 → 1
        assert!(s.partial);
        assert_eq!(s.max_missing, 6);
        assert!(!s.any_parameter_3);
        assert_eq!(s.risk_at_least, ClinicalRisk::Low);
        assert_eq!(s.risk_at_most, ClinicalRisk::High); // 2 + 6 = 8
        assert_eq!(
            s.used,
            vec![
                Parameter::Spo2,
                Parameter::AirOrOxygen,
                Parameter::SystolicBp,
                Parameter::Pulse,
                Parameter::Temperature
            ]
        );
    }

    #[test]
    fn complete_score_is_not_partial_and_flags_a_single_3() {
        let s = score(&News2Input {
            respiration_per_min: Some(16),
            consciousness: Some(Consciousness::A),
            systolic_mm_hg: Some(88),
            ..home_input()
        });
        assert_eq!(s.score, 5);
        assert!(!s.partial);
        assert_eq!(s.max_missing, 0);
        assert!(s.any_parameter_3);
        assert_eq!(s.risk_at_least, ClinicalRisk::Medium);
        assert_eq!(s.risk_at_least, s.risk_at_most);
    }

    #[test]
    fn missing_device_values_add_their_own_maximum() {
        let s = score(&News2Input {
            temperature: None,
            pulse_per_min: None,
            ..home_input()
        });
        // respiration 3 + consciousness 3 + temperature 2 + pulse 3
        assert_eq!(s.max_missing, 11);
        assert_eq!(s.score, 1);
    }

    #[test]
    fn single_3_with_low_aggregate_is_low_medium() {
        let s = score(&News2Input {
            respiration_per_min: Some(16),
            consciousness: Some(Consciousness::A),
            spo2_percent: Some(97),
            pulse_per_min: Some(38),
            ..home_input()
        });
        assert_eq!(s.score, 3);
        assert_eq!(s.risk_at_least, ClinicalRisk::LowMedium);
    }
}
