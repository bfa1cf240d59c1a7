//! The one state machine behind every rule: raise after a condition held long enough, clear after
//! the clearing condition held long enough, with the two conditions apart (hysteresis).
//!
//! "Long enough" is measured in seconds on continuous data. Spot readings (an oximeter read every
//! few minutes) are too far apart for that: every gap would break the run, and a patient at 84 %
//! would never raise an alarm. A reading that comes after a gap is a spot reading; two
//! consecutive spot readings meeting the condition, within [`SPOT_CONFIRM_WITHIN`], confirm it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// How long each condition must hold, and what breaks a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The raising condition must hold on every sample for this long (0: the first sample raises).
    pub raise_after_s: u32,
    /// The clearing condition must hold on every sample for this long (0: the first sample clears).
    pub clear_after_s: u32,
    /// A longer gap between samples breaks a run in progress (0: never): missing data is not evidence.
    pub max_gap_s: u32,
}

/// Two spot readings further apart than this are not one episode.
pub const SPOT_CONFIRM_WITHIN: TimeDelta = TimeDelta::minutes(30);
/// Consecutive spot readings that confirm a condition.
pub const SPOT_CONFIRMATIONS: u32 = 2;

/// An edge of the condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The condition has held long enough: raise.
    Raise,
    /// The clearing condition has held long enough: clear.
    Clear,
}

/// One rule's state for one patient.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Debounce {
    /// The condition is active (raised and not cleared).
    pub active: bool,
    /// The raise was emitted (false when absorbed by another alert of its group).
    pub emitted: bool,
    run_start: Option<DateTime<Utc>>,
    last_sample: Option<DateTime<Utc>>,
    /// Consecutive spot readings (each after a gap) that met the condition being tested.
    #[serde(default)]
    spot_run: u32,
}

impl Debounce {
    /// Feeds one sample: whether it meets the raising and the clearing condition.
    pub fn step(
        &mut self,
        at: DateTime<Utc>,
        raises: bool,
        clears: bool,
        timing: Timing,
    ) -> Option<Edge> {
        let gap = self.last_sample.map(|last| at - last);
        let gap_breaks = |gap: TimeDelta| {
            timing.max_gap_s > 0 && gap > TimeDelta::seconds(timing.max_gap_s.into())
        };
        if gap.is_some_and(gap_breaks) {
            self.run_start = None;
        }
        // A spot reading: the first one, or one after a gap too long for a run.
        let spot = timing.max_gap_s > 0 && gap.is_none_or(gap_breaks);
        let previous_spot_counts = gap.is_some_and(|g| g <= SPOT_CONFIRM_WITHIN);
        self.last_sample = Some(at);
        let (holds, needed, edge) = if self.active {
            (clears, timing.clear_after_s, Edge::Clear)
        } else {
            (raises, timing.raise_after_s, Edge::Raise)
        };
        if !holds {
            self.run_start = None;
            self.spot_run = 0;
            return None;
        }
        self.spot_run = match (spot, previous_spot_counts) {
            (true, true) => self.spot_run + 1,
            (true, false) => 1,
            (false, _) => 0,
        };
        let start = *self.run_start.get_or_insert(at);
        let held = at - start >= TimeDelta::seconds(needed.into());
        if !held && self.spot_run < SPOT_CONFIRMATIONS {
            return None;
        }
        self.run_start = None;
        self.spot_run = 0;
        self.active = edge == Edge::Raise;
        Some(edge)
    }

    /// A sample that cannot be trusted (artefact): it neither continues nor starts a run.
    pub fn break_run(&mut self) {
        self.run_start = None;
        self.spot_run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn s(sec: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + sec, 0).unwrap()
    }

    const SPO2: Timing = Timing {
        raise_after_s: 60,
        clear_after_s: 0,
        max_gap_s: 10,
    };

    fn run(samples: &[(i64, f64)]) -> Vec<(i64, Edge)> {
        let mut d = Debounce::default();
        samples
            .iter()
            .filter_map(|&(t, v)| d.step(s(t), v < 90.0, v >= 92.0, SPO2).map(|e| (t, e)))
            .collect()
    }

    #[test]
    fn raises_only_after_the_minimum_duration() {
        let below: Vec<_> = (0..=60).map(|t| (t, 88.0)).collect();
        assert_eq!(run(&below), vec![(60, Edge::Raise)]);
        assert_eq!(run(&below[..60]), vec![]);
    }

    #[test]
    fn a_value_dancing_around_the_limit_raises_once() {
        let mut samples: Vec<_> = (0..=60).map(|t| (t, 88.0)).collect();
        // 89 ↔ 91 for ten minutes: inside the hysteresis band, never clears, never re-raises.
        samples.extend((61..660).map(|t| (t, if t % 2 == 0 { 89.0 } else { 91.0 })));
        samples.push((660, 92.0));
        samples.extend((661..760).map(|t| (t, 91.0)));
        assert_eq!(run(&samples), vec![(60, Edge::Raise), (660, Edge::Clear)]);
    }

    #[test]
    fn a_normal_sample_restarts_the_count() {
        let mut samples: Vec<_> = (0..50).map(|t| (t, 88.0)).collect();
        samples.push((50, 95.0));
        samples.extend((51..=111).map(|t| (t, 88.0)));
        assert_eq!(run(&samples), vec![(111, Edge::Raise)]);
    }

    #[test]
    fn a_gap_in_the_data_restarts_the_count() {
        let mut samples: Vec<_> = (0..30).map(|t| (t, 88.0)).collect();
        samples.extend((45..=90).map(|t| (t, 88.0)));
        assert_eq!(run(&samples), vec![]);
        samples.extend((91..=105).map(|t| (t, 88.0)));
        assert_eq!(run(&samples), vec![(105, Edge::Raise)]);
    }

    #[test]
    fn spot_readings_confirm_each_other_instead_of_never_raising() {
        // An oximeter read every five minutes: each reading is a spot reading.
        let every_5_min = |values: &[f64]| -> Vec<(i64, f64)> {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| (300 * i as i64, v))
                .collect()
        };
        assert_eq!(
            run(&every_5_min(&[95.0, 84.0, 84.0])),
            vec![(600, Edge::Raise)],
            "the second low spot reading confirms"
        );
        assert_eq!(
            run(&every_5_min(&[95.0, 84.0, 95.0, 84.0])),
            vec![],
            "one low reading between normal ones is not confirmed"
        );
        assert_eq!(
            run(&[(0, 84.0), (3600, 84.0)]),
            vec![],
            "an hour apart is not one episode"
        );
        assert_eq!(
            run(&every_5_min(&[84.0, 84.0, 96.0])),
            vec![(300, Edge::Raise), (600, Edge::Clear)]
        );
    }

    #[test]
    fn a_dropout_in_continuous_data_does_not_shorten_the_duration() {
        // 30 s low, 15 s without data, then low again: 60 s are counted from after the gap.
        let mut samples: Vec<_> = (0..30).map(|t| (t, 88.0)).collect();
        samples.extend((45..=104).map(|t| (t, 88.0)));
        assert_eq!(run(&samples), vec![]);
        samples.push((105, 88.0));
        assert_eq!(run(&samples), vec![(105, Edge::Raise)]);
    }

    #[test]
    fn clearing_can_require_a_duration_too() {
        let mut d = Debounce::default();
        let t = Timing {
            raise_after_s: 0,
            clear_after_s: 300,
            max_gap_s: 0,
        };
        assert_eq!(d.step(s(0), true, false, t), Some(Edge::Raise));
        assert_eq!(d.step(s(100), false, true, t), None);
        assert_eq!(d.step(s(399), false, true, t), None);
        assert_eq!(d.step(s(400), false, true, t), Some(Edge::Clear));
    }
}
