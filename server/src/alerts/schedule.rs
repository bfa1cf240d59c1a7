//! The registry's reading schedule, as the alert engine needs it.
//!
//! The registry keeps what the doctor prescribed in a short text a coordinator can type and read:
//! entries separated by `;`, each a measure and its times of day in Japan time
//! (`"BP 07:00,19:00; 体重 07:30; ECG continuous"`). Continuous measures carry no time: their
//! silence is a technical alarm (no data), not a missed reading. Japan has no daylight saving,
//! so a time of day in Tokyo is a fixed time of day in UTC.

use chrono::{NaiveTime, TimeDelta};

use super::engine::ScheduledReading;
use super::rules::Measure;

/// Tokyo is UTC+9 all year.
const TOKYO_OFFSET: TimeDelta = TimeDelta::hours(9);

/// Why a schedule text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The measure is not one the engine knows.
    #[error("unknown measure {0:?} (expected BP, SpO2, pulse, temperature, weight or ECG)")]
    UnknownMeasure(String),
    /// A time is not `HH:MM`.
    #[error("time {time:?} of {measure:?} is not HH:MM")]
    BadTime {
        /// The measure it belongs to.
        measure: String,
        /// The text.
        time: String,
    },
    /// A measure with neither times nor `continuous`.
    #[error("{0:?} has no times (HH:MM,…) and is not continuous")]
    NoTimes(String),
}

/// The scheduled spot readings of a schedule text, in UTC time of day.
pub fn parse(text: &str) -> Result<Vec<ScheduledReading>, ScheduleError> {
    let mut out = Vec::new();
    for entry in text
        .split([';', '；'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, rest) = entry.split_once(char::is_whitespace).unwrap_or((entry, ""));
        let measure = measure(name).ok_or_else(|| ScheduleError::UnknownMeasure(name.into()))?;
        let rest = rest.trim();
        if rest.to_lowercase().starts_with("continuous") || rest.starts_with("連続") {
            continue;
        }
        if rest.is_empty() {
            return Err(ScheduleError::NoTimes(name.into()));
        }
        for time in rest.split([',', '、']).map(str::trim) {
            let local =
                NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| ScheduleError::BadTime {
                    measure: name.into(),
                    time: time.into(),
                })?;
            let (at, _) = local.overflowing_sub_signed(TOKYO_OFFSET);
            out.push(ScheduledReading { measure, at });
        }
    }
    Ok(out)
}

fn measure(name: &str) -> Option<Measure> {
    Some(match name.to_lowercase().as_str() {
        "bp" | "血圧" => Measure::SystolicBp,
        "spo2" | "酸素飽和度" => Measure::Spo2,
        "pulse" | "脈拍" => Measure::PulseRate,
        "temp" | "temperature" | "体温" => Measure::BodyTemperature,
        "weight" | "体重" => Measure::BodyWeight,
        "ecg" | "心電図" => Measure::EcgHeartRate,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn spot_readings_become_utc_times_and_continuous_ones_are_skipped() {
        let readings = parse("BP 07:00,19:00; ECG continuous; 体重 07:30").unwrap();
        assert_eq!(
            readings,
            vec![
                ScheduledReading {
                    measure: Measure::SystolicBp,
                    at: at(22, 0)
                },
                ScheduledReading {
                    measure: Measure::SystolicBp,
                    at: at(10, 0)
                },
                ScheduledReading {
                    measure: Measure::BodyWeight,
                    at: at(22, 30)
                },
            ]
        );
        assert_eq!(parse("SpO2 continuous overnight").unwrap(), vec![]);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn unreadable_schedules_say_what_is_wrong() {
        assert_eq!(
            parse("Glucose 08:00"),
            Err(ScheduleError::UnknownMeasure("Glucose".into()))
        );
        assert_eq!(
            parse("BP 7時"),
            Err(ScheduleError::BadTime {
                measure: "BP".into(),
                time: "7時".into()
            })
        );
        assert_eq!(parse("BP"), Err(ScheduleError::NoTimes("BP".into())));
    }
}
