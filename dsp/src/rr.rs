//! Beats to RR intervals: ordering, de-duplication and ectopic/artefact classification.
//!
//! The detector reports most beats within 250 ms of the R peak, but beats recovered by search-back
//! ([`Beat::late`]) arrive after later beats. [`RrTracker`] holds beats for a fixed *hold-back*
//! before committing them in R-peak order, so a late beat lands between its neighbours and each RR
//! interval is produced exactly once (never a long RR that a late beat later splits). A beat that
//! arrives after its place was committed is dropped and counted, never double counted. A
//! search-back beat is the less certain kind (after a long pause it can be a P wave), so it yields
//! to a primary detection closer than the shortest plausible RR, whichever came first. Search-back
//! exists to recover a beat missed inside an interval about twice the usual RR (Pan & Tompkins
//! search when 1.66 mean RR pass without a beat); a search-back beat that would leave a gap of
//! more than 2.5 reference RRs on either side is not such a beat but a peak found inside a real
//! pause, and is dropped so that a pause or asystole is not split by it.
//!
//! Each interval is classified by the **20 % rule** of Malik et al. (Malik, Farrell, Cripps &
//! Camm, "Heart rate variability in relation to prognosis after myocardial infarction: selection
//! of optimal processing techniques", Eur Heart J 10:1060–1074, 1989; recommended by the Task
//! Force of the ESC/NASPE, Circulation 93:1043–1065, 1996): an RR differing by more than 20 % from
//! the reference is not normal-to-normal. As reference we take the median of the previous five
//! plausible intervals rather than the single previous one, so the long interval after a premature
//! beat is rejected too and a sustained change of rate is accepted after three beats.

use crate::snapshot::{Reader, SnapshotError, put_f32, put_flag, put_opt_u64, put_u64};
use crate::{Beat, SampleRate};

/// How long a beat waits before it is committed: covers the detector's search-back
/// (1.66 mean RR, up to ~2.5 s at 40 bpm) plus its reporting delay.
pub const HOLD_BACK_MS: f64 = 3000.0;
/// Two beats closer than this are one beat reported twice (the detector's refractory period).
const DUPLICATE_MS: f64 = 200.0;
/// Shortest RR a ventricle can produce (250 bpm); anything shorter is an artefact.
pub const MIN_PLAUSIBLE_RR_MS: f32 = 240.0;
/// Malik's tolerance: relative deviation from the reference beyond which an RR is not NN.
const MALIK_TOLERANCE: f32 = 0.20;
/// Plausible RRs whose median is the reference of the 20 % rule.
const REFERENCE_LEN: usize = 5;
/// Beats held at once; at 250 bpm 3 s holds 12.5 beats, and the VF/VFL guard can hold fast
/// beats up to 6 s more (`crate::vf::MAX_HOLD_MS`), during which this stage waits for them.
const PENDING_CAPACITY: usize = 48;
/// A search-back beat leaving a gap longer than this many reference RRs is not a missed beat.
const MISSED_BEAT_MAX_GAP: f32 = 2.5;

/// What an RR interval can be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RrClass {
    /// Normal-to-normal by the 20 % rule: used for HRV.
    Normal,
    /// Deviates more than 20 % from the reference (ectopy, its compensatory pause, a missed or
    /// extra beat, a pause): counted for rate and events, excluded from HRV.
    Deviant,
    /// Shorter than any ventricle can produce: a detection artefact, used for nothing.
    Implausible,
}

/// One RR interval between two committed beats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RrInterval {
    /// R peak of the earlier beat (sample index).
    pub start: u64,
    /// R peak of the later beat (sample index).
    pub end: u64,
    /// The interval, in milliseconds.
    pub rr_ms: f32,
    /// The 20 % rule's verdict.
    pub class: RrClass,
    /// Both beats lie in usable signal (set by the analysis chain from the signal quality; `true`
    /// when no quality is known).
    pub usable: bool,
}

/// Counters of beats the tracker refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrCounters {
    /// Beats within 200 ms of another beat (reported twice).
    pub duplicates: u64,
    /// Beats that arrived after their place in the series was committed.
    pub late_dropped: u64,
    /// Search-back beats dropped because they sat inside a pause rather than filling a missed beat.
    pub late_in_pause: u64,
    /// Beats dropped because more than the pending capacity were waiting.
    pub overflowed: u64,
}

/// Streaming beats → RR intervals, in R-peak order. Fixed memory, no allocation.
#[derive(Clone, Debug)]
pub struct RrTracker {
    hold_back: u64,
    duplicate: u64,
    /// A search-back beat closer than this to a primary one is dropped.
    min_plausible: u64,
    fs: f64,
    /// Beats waiting for commitment (R peak, found by search-back), sorted by R peak.
    pending: [(u64, bool); PENDING_CAPACITY],
    pending_len: usize,
    last_committed: Option<u64>,
    /// Last plausible RRs (ring), for the 20 % rule's reference.
    reference: [f32; REFERENCE_LEN],
    reference_len: usize,
    reference_next: usize,
    counters: RrCounters,
}

impl RrTracker {
    /// A tracker for a stream sampled at `rate`.
    pub fn new(rate: SampleRate) -> Self {
        Self {
            hold_back: u64::from(rate.samples_in_ms(HOLD_BACK_MS)),
            duplicate: u64::from(rate.samples_in_ms(DUPLICATE_MS)),
            min_plausible: u64::from(rate.samples_in_ms(f64::from(MIN_PLAUSIBLE_RR_MS))),
            fs: rate.as_hz(),
            pending: [(0, false); PENDING_CAPACITY],
            pending_len: 0,
            last_committed: None,
            reference: [0.0; REFERENCE_LEN],
            reference_len: 0,
            reference_next: 0,
            counters: RrCounters::default(),
        }
    }

    /// Beats refused so far.
    pub fn counters(&self) -> RrCounters {
        self.counters
    }

    /// Samples a beat is held before it is committed.
    pub fn hold_back_samples(&self) -> u64 {
        self.hold_back
    }

    /// The newest R peak seen, committed or not.
    pub fn latest_beat(&self) -> Option<u64> {
        if self.pending_len > 0 {
            Some(self.pending[self.pending_len - 1].0)
        } else {
            self.last_committed
        }
    }

    /// Takes a beat from the detector, in whatever order it was found.
    pub fn push_beat(&mut self, beat: Beat) {
        let r = beat.r_peak;
        let guard = if beat.late {
            self.min_plausible
        } else {
            self.duplicate
        };
        if let Some(last) = self.last_committed
            && r <= last + guard
        {
            if r + guard > last {
                self.counters.duplicates += 1;
            } else {
                self.counters.late_dropped += 1;
            }
            return;
        }
        let at = self.pending[..self.pending_len].partition_point(|&(p, _)| p < r);
        for i in [at.wrapping_sub(1), at] {
            let Some(&(p, pending_late)) = self.pending[..self.pending_len].get(i) else {
                continue;
            };
            let distance = p.abs_diff(r);
            if distance < self.duplicate || (beat.late && distance < self.min_plausible) {
                self.counters.duplicates += 1;
                return;
            }
            if pending_late && !beat.late && distance < self.min_plausible {
                // The primary detection replaces the search-back one.
                self.counters.duplicates += 1;
                self.pending[i] = (r, false);
                return;
            }
            if distance < self.min_plausible {
                // Two primary detections too close for two ventricular beats: one is a P wave
                // (120–220 ms before its R) or a late part of the QRS. After a long gap the
                // first is the P wave, seen through thresholds that decayed in the pause.
                self.counters.duplicates += 1;
                if p < r && self.follows_long_gap(i) {
                    self.pending[i] = (r, false);
                }
                return;
            }
        }
        if self.pending_len == PENDING_CAPACITY {
            // Only a detector gone wild reports this many beats; keep the series moving.
            self.counters.overflowed += 1;
            return;
        }
        self.pending.copy_within(at..self.pending_len, at + 1);
        self.pending[at] = (r, beat.late);
        self.pending_len += 1;
    }

    /// Commits the beats older than the hold-back at stream position `position` (the index of
    /// the next sample), calling `on_beat(r_peak, rr)` for each; `rr` is `None` for the first beat.
    pub fn advance(&mut self, position: u64, mut on_beat: impl FnMut(u64, Option<RrInterval>)) {
        let horizon = position.saturating_sub(self.hold_back);
        let ready = self.pending[..self.pending_len].partition_point(|&(p, _)| p < horizon);
        self.commit(ready, horizon, &mut on_beat);
    }

    /// Commits every waiting beat (end of stream).
    pub fn flush(&mut self, mut on_beat: impl FnMut(u64, Option<RrInterval>)) {
        let end = self.latest_beat().unwrap_or(0);
        self.commit(self.pending_len, end, &mut on_beat);
    }

    /// Commits the first `count` waiting beats; no beat is pending before `horizon` but them.
    fn commit(
        &mut self,
        count: usize,
        horizon: u64,
        on_beat: &mut impl FnMut(u64, Option<RrInterval>),
    ) {
        for i in 0..count {
            let (r, late) = self.pending[i];
            if late && self.inside_pause(r, i, horizon) {
                self.counters.late_in_pause += 1;
                continue;
            }
            let rr = self.last_committed.map(|start| self.classify(start, r));
            self.last_committed = Some(r);
            on_beat(r, rr);
        }
        self.pending.copy_within(count..self.pending_len, 0);
        self.pending_len -= count;
    }

    /// Whether the beat pending at `index` comes more than 1.5 reference RRs after the primary
    /// beat before it (search-back beats, which may sit inside the pause, are passed over).
    fn follows_long_gap(&self, index: usize) -> bool {
        let previous = self.pending[..index]
            .iter()
            .rev()
            .find(|(_, late)| !late)
            .map(|&(p, _)| p)
            .or(self.last_committed);
        let (Some(previous), Some(reference_ms)) = (previous, self.reference_ms()) else {
            return false;
        };
        let gap = self.pending[index].0.saturating_sub(previous);
        (gap as f64 * 1000.0 / self.fs) as f32 > 1.5 * reference_ms
    }

    /// Whether search-back beat `r` (pending at `index`) leaves a gap on either side longer than
    /// [`MISSED_BEAT_MAX_GAP`] reference RRs; the gap after it runs to the next waiting beat, or
    /// at least to `horizon` when none is waiting.
    fn inside_pause(&self, r: u64, index: usize, horizon: u64) -> bool {
        let (Some(previous), Some(reference_ms)) = (self.last_committed, self.reference_ms())
        else {
            return false;
        };
        let next = self.pending[..self.pending_len]
            .get(index + 1)
            .map_or(horizon, |&(p, _)| p);
        let longest = (r.saturating_sub(previous)).max(next.saturating_sub(r));
        (longest as f64 * 1000.0 / self.fs) as f32 > MISSED_BEAT_MAX_GAP * reference_ms
    }

    fn classify(&mut self, start: u64, end: u64) -> RrInterval {
        let rr_ms = ((end - start) as f64 * 1000.0 / self.fs) as f32;
        let class = if rr_ms < MIN_PLAUSIBLE_RR_MS {
            RrClass::Implausible
        } else {
            let class = match self.reference_ms() {
                Some(reference) if (rr_ms - reference).abs() > MALIK_TOLERANCE * reference => {
                    RrClass::Deviant
                }
                _ => RrClass::Normal,
            };
            self.reference[self.reference_next] = rr_ms;
            self.reference_next = (self.reference_next + 1) % REFERENCE_LEN;
            self.reference_len = (self.reference_len + 1).min(REFERENCE_LEN);
            class
        };
        RrInterval {
            start,
            end,
            rr_ms,
            class,
            usable: true,
        }
    }

    /// Median of the last plausible RRs, once three are known.
    fn reference_ms(&self) -> Option<f32> {
        if self.reference_len < 3 {
            return None;
        }
        let mut sorted = self.reference;
        let recent = &mut sorted[..self.reference_len];
        recent.sort_unstable_by(f32::total_cmp);
        Some(recent[self.reference_len / 2])
    }
}

/// Checkpoint support (see [`crate::analysis::Analysis::snapshot`]).
impl RrTracker {
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        put_u64(out, self.pending_len as u64);
        for &(r, late) in &self.pending[..self.pending_len] {
            put_u64(out, r);
            put_flag(out, late);
        }
        put_opt_u64(out, self.last_committed);
        self.reference.iter().for_each(|&v| put_f32(out, v));
        put_u64(out, self.reference_len as u64);
        put_u64(out, self.reference_next as u64);
        let c = self.counters;
        for n in [c.duplicates, c.late_dropped, c.late_in_pause, c.overflowed] {
            put_u64(out, n);
        }
    }

    pub(crate) fn load(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.pending_len = r.len_at_most(PENDING_CAPACITY, "pending beats")?;
        for slot in &mut self.pending[..self.pending_len] {
            *slot = (r.u64()?, r.flag("late")?);
        }
        self.last_committed = r.opt_u64("last committed")?;
        for slot in &mut self.reference {
            *slot = r.f32()?;
        }
        self.reference_len = r.len_at_most(REFERENCE_LEN, "reference length")?;
        self.reference_next = r.len_at_most(REFERENCE_LEN - 1, "reference slot")?;
        self.counters = RrCounters {
            duplicates: r.u64()?,
            late_dropped: r.u64()?,
            late_in_pause: r.u64()?,
            overflowed: r.u64()?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(r_peak: u64, late: bool) -> Beat {
        Beat {
            r_peak,
            delay: 0,
            late,
        }
    }

    fn run(tracker: &mut RrTracker, beats: &[Beat]) -> Vec<RrInterval> {
        let mut out = Vec::new();
        for b in beats {
            tracker.push_beat(*b);
            tracker.advance(b.r_peak + 1, |_, rr| out.extend(rr));
        }
        tracker.flush(|_, rr| out.extend(rr));
        out
    }

    #[test]
    fn late_beat_splits_the_gap_once_and_is_not_double_counted() {
        let rate = SampleRate::hz(250.0);
        let mut tracker = RrTracker::new(rate);
        // Beats every 250 samples; the one at 1000 is found by search-back after 1250 was reported.
        let beats = [
            beat(0, false),
            beat(250, false),
            beat(500, false),
            beat(750, false),
            beat(1250, false),
            beat(1000, true),
            beat(1500, false),
        ];
        let rr = run(&mut tracker, &beats);
        let ends: Vec<u64> = rr.iter().map(|r| r.end).collect();
        assert_eq!(ends, [250, 500, 750, 1000, 1250, 1500]);
        assert!(
            rr.iter()
                .all(|r| r.rr_ms == 1000.0 && r.class == RrClass::Normal)
        );
    }

    #[test]
    fn duplicate_and_too_late_beats_are_counted_not_used() {
        let rate = SampleRate::hz(250.0);
        let mut tracker = RrTracker::new(rate);
        let mut out = Vec::new();
        for r in [0, 250, 260, 500] {
            tracker.push_beat(beat(r, false));
        }
        tracker.advance(500 + 750 + 1, |_, rr| out.extend(rr));
        tracker.push_beat(beat(375, true)); // its place (between 250 and 500) is committed
        tracker.push_beat(beat(510, false)); // a second report of the committed beat at 500
        assert_eq!(out.len(), 2);
        let counters = tracker.counters();
        assert_eq!((counters.duplicates, counters.late_dropped), (2, 1));
    }

    /// Classes of the intervals of a series starting at sample 0, at 1 kHz.
    fn classes(rr_ms: &[u64]) -> Vec<RrClass> {
        let mut tracker = RrTracker::new(SampleRate::hz(1000.0));
        let beats: Vec<Beat> = std::iter::once(0)
            .chain(rr_ms.iter().scan(0, |t, rr| {
                *t += rr;
                Some(*t)
            }))
            .map(|t| beat(t, false))
            .collect();
        run(&mut tracker, &beats).iter().map(|r| r.class).collect()
    }

    #[test]
    fn malik_rule_rejects_premature_beat_and_its_compensatory_pause() {
        // 800 ms rhythm, a PVC at 500 ms coupling and 1100 ms compensatory pause, then 800 ms.
        use RrClass::{Deviant as D, Normal as N};
        assert_eq!(
            classes(&[800, 800, 800, 800, 500, 1100, 800, 800, 800]),
            [N, N, N, N, D, D, N, N, N]
        );
    }

    #[test]
    fn sustained_rate_change_is_accepted_after_three_beats() {
        use RrClass::{Deviant as D, Normal as N};
        assert_eq!(
            classes(&[1000, 1000, 1000, 1000, 600, 600, 600, 600, 600]),
            [N, N, N, N, D, D, D, N, N]
        );
    }

    #[test]
    fn search_back_beat_yields_to_a_nearby_primary_beat() {
        let rate = SampleRate::hz(1000.0);
        let mut tracker = RrTracker::new(rate);
        // After a 6-s pause, search-back picks the P wave 216 ms before the R wave.
        let beats = [
            beat(0, false),
            beat(6000, false),
            beat(11_784, true),
            beat(12_000, false),
            beat(12_800, false),
        ];
        let ends: Vec<u64> = run(&mut tracker, &beats).iter().map(|r| r.end).collect();
        assert_eq!(ends, [6000, 12_000, 12_800]);
        assert_eq!(tracker.counters().duplicates, 1);
    }

    #[test]
    fn search_back_beat_inside_a_pause_does_not_split_it() {
        let rate = SampleRate::hz(1000.0);
        let mut tracker = RrTracker::new(rate);
        let mut beats: Vec<Beat> = (0..6).map(|i| beat(i * 850, false)).collect();
        // A 6-s pause after 4250; search-back finds a peak 1 s before the next beat.
        beats.extend([beat(9250, true), beat(10_250, false), beat(11_100, false)]);
        let ends: Vec<u64> = run(&mut tracker, &beats).iter().map(|r| r.end).collect();
        assert_eq!(ends, [850, 1700, 2550, 3400, 4250, 10_250, 11_100]);
        assert_eq!(tracker.counters().late_in_pause, 1);
    }

    #[test]
    fn p_wave_detected_after_a_pause_yields_to_its_r_wave() {
        let rate = SampleRate::hz(1000.0);
        let mut tracker = RrTracker::new(rate);
        let mut beats: Vec<Beat> = (0..6).map(|i| beat(i * 850, false)).collect();
        // After a 4-s pause the P wave (216 ms before the R wave) is reported as a beat.
        beats.extend([beat(8034, false), beat(8250, false), beat(9100, false)]);
        let ends: Vec<u64> = run(&mut tracker, &beats).iter().map(|r| r.end).collect();
        assert_eq!(ends, [850, 1700, 2550, 3400, 4250, 8250, 9100]);
    }

    #[test]
    fn intervals_shorter_than_a_ventricle_can_beat_are_implausible() {
        let rate = SampleRate::hz(1000.0);
        let mut tracker = RrTracker::new(rate);
        let mut out = Vec::new();
        tracker.push_beat(beat(0, false));
        tracker.advance(3001, |_, rr| out.extend(rr));
        // Its neighbour came after it was committed: too close, yet not a duplicate.
        for b in [beat(230, false), beat(1000, false)] {
            tracker.push_beat(b);
        }
        tracker.flush(|_, rr| out.extend(rr));
        assert_eq!(out[0].class, RrClass::Implausible);
        assert_eq!(out[1].class, RrClass::Normal);
    }

    #[test]
    fn two_close_primary_beats_in_a_steady_rhythm_keep_the_first() {
        let rate = SampleRate::hz(1000.0);
        let mut tracker = RrTracker::new(rate);
        let beats = [0, 800, 1600, 2400, 3200, 3420, 4000].map(|r| beat(r, false));
        let ends: Vec<u64> = run(&mut tracker, &beats).iter().map(|r| r.end).collect();
        assert_eq!(ends, [800, 1600, 2400, 3200, 4000]);
    }
}
