//! Heart rate from RR intervals: instantaneous, and smoothed so one missed or extra beat does not
//! move it.
//!
//! The smoothed rate is 60 000 / the mean of the last nine plausible RR intervals, leaving out those
//! outside 0.75–1.33 × their median. A missed beat makes one interval twice as long and an extra
//! beat splits one interval into two short ones, so either is left out; unlike a median, the mean
//! of the rest still follows the mean ventricular rate in an irregular rhythm and is not held to
//! the sampling grid (at 125 Hz and 180 bpm one sample is 4 bpm).

use crate::rr::{RrClass, RrInterval};
use crate::snapshot::{Reader, SnapshotError, put_f32, put_u64};

/// RR intervals the smoothed rate is taken over.
const SMOOTHING_LEN: usize = 9;
/// Intervals outside these multiples of the median are left out of the smoothed rate.
const KEPT_RANGE: (f32, f32) = (0.75, 1.0 / 0.75);

/// Heart rate at one beat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeartRate {
    /// R peak (sample index) of the beat this rate was computed at.
    pub at: u64,
    /// 60 000 / the last RR interval in ms, in beats per minute.
    pub instantaneous_bpm: f32,
    /// 60 000 / the mean of the last nine RR intervals without outliers, in beats per minute.
    pub smoothed_bpm: f32,
}

/// Streaming RR → heart rate. Fixed memory.
#[derive(Clone, Debug, Default)]
pub struct HeartRateTracker {
    recent_ms: [f32; SMOOTHING_LEN],
    len: usize,
    next: usize,
}

impl HeartRateTracker {
    /// A tracker with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rate after `rr`, or `None` when the interval is an artefact or in unusable signal.
    pub fn update(&mut self, rr: &RrInterval) -> Option<HeartRate> {
        if rr.class == RrClass::Implausible || !rr.usable {
            return None;
        }
        self.recent_ms[self.next] = rr.rr_ms;
        self.next = (self.next + 1) % SMOOTHING_LEN;
        self.len = (self.len + 1).min(SMOOTHING_LEN);
        let mut sorted = self.recent_ms;
        let recent = &mut sorted[..self.len];
        recent.sort_unstable_by(f32::total_cmp);
        let median = recent[self.len / 2];
        let (mut sum, mut n) = (0.0, 0);
        for &x in recent
            .iter()
            .filter(|&&x| x >= KEPT_RANGE.0 * median && x <= KEPT_RANGE.1 * median)
        {
            sum += x;
            n += 1;
        }
        // The median itself is always kept, so n ≥ 1.
        let mean_ms = sum / n.max(1) as f32;
        Some(HeartRate {
            at: rr.end,
            instantaneous_bpm: 60_000.0 / rr.rr_ms,
            smoothed_bpm: 60_000.0 / mean_ms,
        })
    }
}

/// Checkpoint support (see [`crate::analysis::Analysis::snapshot`]).
impl HeartRateTracker {
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        self.recent_ms.iter().for_each(|&v| put_f32(out, v));
        put_u64(out, self.len as u64);
        put_u64(out, self.next as u64);
    }

    pub(crate) fn load(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        for slot in &mut self.recent_ms {
            *slot = r.f32()?;
        }
        self.len = r.len_at_most(SMOOTHING_LEN, "heart rate history")?;
        self.next = r.len_at_most(SMOOTHING_LEN - 1, "heart rate slot")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(end: u64, rr_ms: f32) -> RrInterval {
        RrInterval {
            start: 0,
            end,
            rr_ms,
            class: RrClass::Normal,
            usable: true,
        }
    }

    #[test]
    fn one_missed_and_one_extra_beat_do_not_move_the_smoothed_rate() {
        let mut hr = HeartRateTracker::new();
        let series = [
            750.0, 750.0, 750.0, 750.0, 1500.0, 750.0, 375.0, 375.0, 750.0, 750.0,
        ];
        let mut last = None;
        for (i, ms) in series.into_iter().enumerate() {
            last = hr.update(&rr(i as u64, ms));
            if i >= 4 {
                let smoothed = last.map(|h| h.smoothed_bpm).unwrap_or_default();
                assert!((smoothed - 80.0).abs() < 1.0, "beat {i}: {smoothed} bpm");
            }
        }
        assert_eq!(last.map(|h| h.instantaneous_bpm), Some(80.0));
    }

    #[test]
    fn artefacts_and_unusable_intervals_give_no_rate() {
        let mut hr = HeartRateTracker::new();
        let mut bad = rr(1, 100.0);
        bad.class = RrClass::Implausible;
        assert_eq!(hr.update(&bad), None);
        let mut noisy = rr(2, 800.0);
        noisy.usable = false;
        assert_eq!(hr.update(&noisy), None);
    }
}
