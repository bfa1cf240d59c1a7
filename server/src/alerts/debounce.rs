//! The one state machine behind every rule: raise after a condition held long enough, clear after
//! the clearing condition held long enough, with the two conditions apart (hysteresis).

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
        if timing.max_gap_s > 0
            && self
                .last_sample
                .is_some_and(|last| at - last > TimeDelta::seconds(timing.max_gap_s.into()))
        {
            self.run_start = None;
        }
        self.last_sample = Some(at);
        let (holds, needed, edge) = if self.active {
            (clears, timing.clear_after_s, Edge::Clear)
        } else {
            (raises, timing.raise_after_s, Edge::Raise)
        };
        if !holds {
            self.run_start = None;
            return None;
        }
        let start = *self.run_start.get_or_insert(at);
        if at - start < TimeDelta::seconds(needed.into()) {
            return None;
        }
        self.run_start = None;
        self.active = edge == Edge::Raise;
        Some(edge)
    }

    /// A sample that cannot be trusted (artefact): it neither continues nor starts a run.
    pub fn break_run(&mut self) {
        self.run_start = None;
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
