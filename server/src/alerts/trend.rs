//! Per-patient baselines learned from the patient's own recent readings.
//!
//! Each tracker takes one reading and answers the question its rule asks; the engine debounces the
//! answer like any other condition. Histories are bounded by their windows.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::rules::TrendRules;

/// Body weight: the 3-day rule of thumb and a moving-average (MACD) detector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightTrend {
    history: VecDeque<(DateTime<Utc>, f64)>,
    ewma_short_kg: Option<f64>,
    ewma_long_kg: Option<f64>,
    readings: u32,
}

/// What one weight reading shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightSignals {
    /// Gain over the lowest weight in the window before this reading, kg.
    pub gain_in_window_kg: Option<f64>,
    /// Short minus long exponential moving average, kg (once the long average has enough readings).
    pub macd_kg: Option<f64>,
}

impl WeightTrend {
    /// Adds a reading (one per day expected) and returns the two measures.
    pub fn add(&mut self, at: DateTime<Utc>, kg: f64, rules: &TrendRules) -> WeightSignals {
        let window = TimeDelta::days(rules.weight_gain_window_days.into());
        // Readings 0.5 day older than the window are kept so a reading taken a little later in the
        // morning still compares against the one three days before.
        while self
            .history
            .front()
            .is_some_and(|&(t, _)| at - t > window + TimeDelta::hours(12))
        {
            self.history.pop_front();
        }
        let gain_in_window_kg = self
            .history
            .iter()
            .filter(|&&(t, _)| t < at)
            .map(|&(_, w)| w)
            .reduce(f64::min)
            .map(|lowest| kg - lowest);
        self.history.push_back((at, kg));

        let alpha = |days: u32| 2.0 / (f64::from(days) + 1.0);
        let ema = |prev: Option<f64>, a: f64| Some(prev.map_or(kg, |p| p + a * (kg - p)));
        self.ewma_short_kg = ema(self.ewma_short_kg, alpha(rules.weight_macd_short_days));
        self.ewma_long_kg = ema(self.ewma_long_kg, alpha(rules.weight_macd_long_days));
        self.readings += 1;
        // The long average needs a week of readings before it is a baseline at all.
        let macd_kg = (self.readings >= 7)
            .then(|| {
                self.ewma_short_kg
                    .zip(self.ewma_long_kg)
                    .map(|(s, l)| s - l)
            })
            .flatten();
        WeightSignals {
            gain_in_window_kg,
            macd_kg,
        }
    }
}

/// Body temperature against the median of the patient's recent readings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TemperatureTrend {
    history: VecDeque<(DateTime<Utc>, f64)>,
}

impl TemperatureTrend {
    /// Adds a reading and returns how far it lies above the baseline median, Cel, once a baseline
    /// exists. The baseline is taken before the reading joins it.
    pub fn add(&mut self, at: DateTime<Utc>, cel: f64, rules: &TrendRules) -> Option<f64> {
        let window = TimeDelta::days(rules.temperature_baseline_days.into());
        while self.history.front().is_some_and(|&(t, _)| at - t > window) {
            self.history.pop_front();
        }
        let rise = (self.history.len() >= rules.temperature_min_baseline_readings as usize)
            .then(|| cel - median(self.history.iter().map(|&(_, c)| c).collect()));
        self.history.push_back((at, cel));
        rise
    }
}

/// SpO2: today's mean against the mean of the previous days' means.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spo2Baseline {
    days: BTreeMap<NaiveDate, (f64, u32)>,
}

impl Spo2Baseline {
    /// Adds a usable sample; returns today's mean minus the baseline, %, once both are known.
    pub fn add(&mut self, at: DateTime<Utc>, percent: f64, rules: &TrendRules) -> Option<f64> {
        let today = at.date_naive();
        let first_kept = today - TimeDelta::days(rules.spo2_baseline_days.into());
        self.days.retain(|d, _| *d >= first_kept);
        let entry = self.days.entry(today).or_insert((0.0, 0));
        entry.0 += percent;
        entry.1 += 1;
        let (sum, n) = *entry;
        if n < rules.spo2_min_samples_today {
            return None;
        }
        let earlier: Vec<f64> = self
            .days
            .range(..today)
            .filter(|(_, (_, n))| *n >= rules.spo2_min_samples_today)
            .map(|(_, (s, n))| s / f64::from(*n))
            .collect();
        (earlier.len() >= rules.spo2_min_baseline_days as usize)
            .then(|| sum / f64::from(n) - earlier.iter().sum::<f64>() / earlier.len() as f64)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::RuleSet;
    use chrono::TimeZone;

    fn day(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 10, 1, 22, 0, 0).unwrap() + TimeDelta::days(d)
    }

    #[test]
    fn weight_gain_over_three_days_is_measured_against_the_lowest() {
        let rules = RuleSet::builtin().trend;
        let mut w = WeightTrend::default();
        for (d, kg) in [(0, 60.0), (1, 59.5), (2, 60.4), (3, 61.0)] {
            w.add(day(d), kg, &rules);
        }
        let s = w.add(day(4), 61.6, &rules);
        // Day 0 has left the window; the lowest of days 1–3 is 59.5.
        assert!((s.gain_in_window_kg.unwrap() - 2.1).abs() < 1e-9);
    }

    #[test]
    fn slow_steady_gain_is_seen_by_the_moving_average_before_the_rule_of_thumb() {
        let rules = RuleSet::builtin().trend;
        let mut w = WeightTrend::default();
        for d in 0..30 {
            w.add(day(d), 60.0 + if d % 2 == 0 { 0.2 } else { -0.2 }, &rules);
        }
        let mut first_macd = None;
        let mut first_rule = None;
        for d in 30..45 {
            let s = w.add(day(d), 60.0 + 0.3 * (d - 29) as f64, &rules);
            if first_macd.is_none() && s.macd_kg.unwrap() >= rules.weight_macd_threshold_kg {
                first_macd = Some(d);
            }
            if first_rule.is_none() && s.gain_in_window_kg.unwrap() >= rules.weight_gain_kg {
                first_rule = Some(d);
            }
        }
        // 0.3 kg a day never adds 2 kg within 3 days, yet it is a decompensation to catch.
        assert_eq!(first_rule, None);
        assert!(first_macd.is_some_and(|d| d <= 36), "{first_macd:?}");
    }

    #[test]
    fn temperature_rise_is_judged_against_the_patients_median() {
        let rules = RuleSet::builtin().trend;
        let mut t = TemperatureTrend::default();
        for (d, c) in [(0, 36.2), (1, 36.4), (2, 36.3), (3, 36.1)] {
            assert_eq!(t.add(day(d), c, &rules), None);
        }
        t.add(day(4), 36.5, &rules);
        let rise = t.add(day(5), 37.4, &rules).unwrap();
        assert!((rise - 1.1).abs() < 1e-9);
    }

    #[test]
    fn spo2_baseline_needs_enough_days_and_samples() {
        let rules = RuleSet::builtin().trend;
        let mut b = Spo2Baseline::default();
        let n = rules.spo2_min_samples_today;
        for d in 0..3 {
            for i in 0..n {
                assert_eq!(
                    b.add(day(d) + TimeDelta::seconds(i.into()), 89.0, &rules),
                    None
                );
            }
        }
        let mut last = None;
        for i in 0..n {
            last = b.add(day(3) + TimeDelta::seconds(i.into()), 85.0, &rules);
        }
        assert_eq!(last, Some(-4.0));
    }
}
