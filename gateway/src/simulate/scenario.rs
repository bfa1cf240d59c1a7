//! Scenario files (`fixtures/scenarios/*.toml`): scripted events per simulated home.

use serde::Deserialize;

/// A simulated device in a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimDevice {
    /// The Checkme-like ECG monitor (also reports temperature).
    Ecg,
    /// The worn pulse oximeter.
    Oximeter,
    /// The BP cuff.
    BloodPressure,
    /// The scale.
    Scale,
    /// The thermometer.
    Thermometer,
}

/// One scripted event. Times are hours from the start of the simulation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// Linear ramp of fever, tachycardia and falling SpO2.
    Deterioration {
        /// Start, h.
        at_h: f64,
        /// Ramp length, h.
        over_h: f64,
        /// Temperature rise at the end of the ramp, °C.
        temperature_rise_cel: f64,
        /// Heart rate rise, /min.
        heart_rate_rise_per_min: f64,
        /// SpO2 drop, percentage points.
        spo2_drop_percent: f64,
    },
    /// Linear weight gain.
    WeightGain {
        /// Start, h.
        at_h: f64,
        /// Ramp length, h.
        over_h: f64,
        /// Gain at the end of the ramp, kg.
        kg: f64,
    },
    /// Atrial fibrillation episode.
    AfOnset {
        /// Start, h.
        at_h: f64,
        /// Length, h.
        duration_h: f64,
    },
    /// Sinus pause.
    Pause {
        /// Start, h.
        at_h: f64,
        /// Length, s.
        duration_s: f64,
    },
    /// A device sends nothing.
    DeviceSilent {
        /// Start, h.
        at_h: f64,
        /// Length, h.
        duration_h: f64,
        /// Which device.
        device: SimDevice,
    },
    /// A device's battery runs low.
    LowBattery {
        /// From, h.
        at_h: f64,
        /// Which device.
        device: SimDevice,
        /// Battery level reported from then on, %.
        percent: u8,
    },
}

/// Events for one home.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientScript {
    /// Home index, from 0.
    pub index: usize,
    /// Its events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name, for logs.
    #[serde(default)]
    pub name: String,
    /// Scripts by home.
    #[serde(default)]
    pub patients: Vec<PatientScript>,
}

impl Scenario {
    /// Parses a scenario from TOML text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The events of home `index` (empty for a quiet home).
    pub fn events_for(&self, index: usize) -> Vec<Event> {
        self.patients
            .iter()
            .filter(|p| p.index == index)
            .flat_map(|p| p.events.clone())
            .collect()
    }
}

/// 0 before `at`, rising linearly to 1 at `at + over`.
pub(crate) fn ramp(h: f64, at: f64, over: f64) -> f64 {
    if over <= 0.0 {
        return if h >= at { 1.0 } else { 0.0 };
    }
    ((h - at) / over).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_scenario_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::parse(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!s.patients.is_empty(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 3);
    }

    #[test]
    fn unknown_fields_fail() {
        assert!(Scenario::parse("[[patients]]\nindex = 0\nevents = [{ kind = \"pause\", at_h = 1.0, duration_s = 3.0, typo = 1 }]").is_err());
    }
}
