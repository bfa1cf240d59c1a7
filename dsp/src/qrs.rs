//! Streaming QRS detection: one ECG sample in, beats out as soon as they are certain.
//!
//! The detector follows Pan & Tompkins (IEEE TBME 32(3), 1985) in outline:
//!
//! 1. **Band-pass** 5–15 Hz (two Butterworth biquads designed for the stream's rate), where QRS
//!    energy dominates P and T waves and baseline wander.
//! 2. **Derivative** over ~8 ms, **squared**, then a **moving-window integral** over 150 ms: the
//!    QRS becomes one energy bump whatever its polarity or width.
//! 3. **Peak picking** on the integral: a local maximum counts once the integral has fallen to half
//!    of it or 120 ms have passed.
//! 4. **Adaptive thresholds**: running signal and noise peak levels; a peak above
//!    `noise + 0.25·(signal − noise)` is a beat. A 200 ms refractory period; within 360 ms of the
//!    last beat a peak whose steepest slope is under half the last beat's is taken for a T wave.
//! 5. **Search-back**: when no beat came for 1.66 mean RR, the largest remembered peak above half
//!    the threshold becomes a beat, flagged [`Beat::late`].
//! 6. **P-wave check**: a beat that passes the threshold but is weak (under 0.7 of the signal
//!    level) is held back until it is clear that no stronger, steeper QRS follows within
//!    0.4 mean RR (at most 360 ms); if one does, the weak peak was a tall P wave (MIT-BIH 108)
//!    or an artefact. Held-back beats are reported late.
//!
//! Where it departs from the paper:
//! - The **R peak** is located in the raw signal: the steepest slope of the band-passed signal,
//!   moved back by the filters' group delay, centres a search for the largest deflection from the
//!   local mean. The integral's peak, ~100 ms after the R wave, is never reported.
//! - The first 2 s **learn** the levels; the peaks seen then are replayed through the thresholds
//!   once learnt, so the first beats of a stream are reported (late) rather than lost.
//! - One peak that towers over the signal level (an artefact) raises it by at most a bounded
//!   step, and the signal level decays (down to 4× the noise level) while no beat is found, so
//!   the detector recovers from noise bursts and amplitude drops within seconds.
//! - Pauses: search-back only takes peaks at least 0.15× as steep as the last beat, beats are
//!   judged weak against the level before the decay, and the first beat after a pause restores
//!   the level, so a decayed threshold does not turn noise, P or T waves into beats.
//!
//! All buffers are allocated by [`QrsDetector::new`]; [`QrsDetector::push`] never allocates.

pub(crate) mod filters;
pub mod scoring;
mod snapshot;

pub use snapshot::SnapshotError;

use crate::{Beat, SampleRate};
use filters::{Biquad, History, MovingAverage};

/// Lower corner of the QRS band-pass.
const BAND_LOW_HZ: f64 = 5.0;
/// Upper corner of the QRS band-pass.
const BAND_HIGH_HZ: f64 = 15.0;
/// Frequency at which the band-pass group delay is compensated (the centre of QRS energy).
const QRS_CENTRE_HZ: f64 = 10.0;
/// Span of the derivative.
const DERIVATIVE_MS: f64 = 8.0;
/// Length of the moving-window integrator: about the widest QRS.
const INTEGRATION_MS: f64 = 150.0;
/// A maximum of the integral counts as a peak once it has not been exceeded for this long.
const PEAK_HOLD_MS: f64 = 80.0;
/// Time to learn the signal and noise levels before thresholds apply.
const LEARNING_MS: f64 = 2000.0;
/// No second beat within this time of a beat.
const REFRACTORY_MS: f64 = 200.0;
/// A peak this soon after a beat must be steep to count (else it is a T wave).
const T_WAVE_WINDOW_MS: f64 = 360.0;
/// Half-width of the raw-signal search for the R peak around the steepest slope.
const R_SEARCH_MS: f64 = 80.0;
/// Half-width of the raw-signal window whose mean is the local baseline.
const BASELINE_MS: f64 = 120.0;
/// How long the detector remembers raw and slope samples; covers every search above.
const HISTORY_MS: f64 = 650.0;
/// Search back when no beat came for this many mean RR intervals.
const SEARCH_BACK_RR: f64 = 1.66;
/// Mean RR assumed before any beat has been found.
const INITIAL_RR_MS: f64 = 1000.0;
/// While no beat is found past the search-back time, the signal level halves this often.
const SIGNAL_DECAY_HALF_LIFE_MS: f64 = 500.0;
/// A beat whose integral peak is under this fraction of the signal level is held back until
/// the T-wave window has passed, in case a much stronger QRS follows.
const WEAK: f64 = 0.7;
/// A held-back weak beat is dropped when a peak this many times stronger follows within the
/// T-wave window.
const DOMINANCE: f64 = 1.0;
/// ... and when it comes sooner than this fraction of the mean RR before that peak (a P wave
/// sits ~200 ms before its QRS; a real beat that early would be a couplet at a rate far above
/// the current one).
const PRE_QRS_RR: f64 = 0.4;
/// Beats reported later than this after their R peak are flagged late.
const PRIMARY_DEADLINE_MS: f64 = 250.0;
/// Weight of a beat recovered by search-back in the signal level (0.125 for primary beats):
/// such a beat says the level is too high.
const SEARCH_BACK_WEIGHT: f64 = 0.25;
/// A peak under this fraction of the threshold only updates the noise level.
const NEGLIGIBLE: f64 = 0.1;
/// Search-back only takes a peak at least this steep relative to the last beat: in a pause the
/// threshold decays towards the noise, and noise is far less steep than any QRS.
const MIN_SLOPE: f32 = 0.15;
/// The signal level decays no lower than this multiple of the noise level.
const SIGNAL_FLOOR: f64 = 4.0;
/// Peaks remembered for search-back (and during learning).
const CANDIDATES: usize = 16;
/// RR intervals averaged.
const RR_HISTORY: usize = 8;

/// A maximum of the integrated energy, with what the detector learnt about it when it was found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Peak {
    /// Sample index of the integral's maximum.
    energy_index: u64,
    /// Height of the integral's maximum.
    energy: f64,
    /// Sample index of the R peak in the raw signal.
    r_peak: u64,
    /// Steepest band-passed slope in the QRS.
    slope: f32,
}

/// Sample counts derived from the stream's rate once, at construction.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Timing {
    derivative: u64,
    peak_hold: u64,
    learning: u64,
    refractory: u64,
    t_wave_window: u64,
    integration: u64,
    r_search: u64,
    baseline: u64,
    /// Band-pass plus derivative group delay, in samples.
    filter_delay: u64,
    primary_deadline: u64,
    initial_rr: f64,
    /// Per-sample factor of the signal-level decay.
    signal_decay: f64,
}

impl Timing {
    fn new(rate: SampleRate, filter_delay: f64) -> Self {
        let samples = |ms| u64::from(rate.samples_in_ms(ms).max(1));
        Self {
            derivative: samples(DERIVATIVE_MS),
            peak_hold: samples(PEAK_HOLD_MS),
            learning: samples(LEARNING_MS),
            refractory: samples(REFRACTORY_MS),
            t_wave_window: samples(T_WAVE_WINDOW_MS),
            integration: samples(INTEGRATION_MS),
            r_search: samples(R_SEARCH_MS),
            baseline: samples(BASELINE_MS),
            filter_delay: filter_delay.round().max(0.0) as u64,
            // Rounded down: a beat flagged on time must really be within the deadline.
            primary_deadline: (PRIMARY_DEADLINE_MS * rate.as_hz() / 1000.0).floor() as u64,
            initial_rr: INITIAL_RR_MS * rate.as_hz() / 1000.0,
            signal_decay: 0.5f64.powf(1000.0 / (SIGNAL_DECAY_HALF_LIFE_MS * rate.as_hz())),
        }
    }
}

/// A fixed-capacity list of peaks, oldest first; when full, the oldest is dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Peaks {
    items: [Peak; CANDIDATES],
    len: usize,
}

impl Peaks {
    fn push(&mut self, peak: Peak) {
        if self.len == CANDIDATES {
            self.items.copy_within(1.., 0);
            self.len -= 1;
        }
        self.items[self.len] = peak;
        self.len += 1;
    }

    fn as_slice(&self) -> &[Peak] {
        &self.items[..self.len]
    }

    /// Drops the first `count` peaks.
    fn drop_front(&mut self, count: usize) {
        self.items.copy_within(count..self.len, 0);
        self.len -= count;
    }
}

/// Streaming QRS detector for one ECG stream.
///
/// Feed samples in order with [`push`](Self::push) in chunks of any length; each beat is handed
/// to a callback once. The gain and units of the samples do not matter: every threshold adapts.
/// Cloning the detector snapshots its whole state in memory; [`snapshot`](Self::snapshot) and
/// [`restore`](Self::restore) do the same through bytes, for checkpoints.
///
/// ```
/// use mimamori_dsp::{SampleRate, qrs::QrsDetector};
///
/// let mut detector = QrsDetector::new(SampleRate::hz(250.0));
/// let mut beats = Vec::new();
/// detector.push(&[0.0; 500], |beat| beats.push(beat));
/// assert!(beats.is_empty()); // a flat line has no beats
/// ```
#[derive(Clone, Debug)]
pub struct QrsDetector {
    rate: SampleRate,
    timing: Timing,
    high_pass: Biquad,
    low_pass: Biquad,
    /// Band-passed samples, for the derivative.
    band: History,
    /// Raw samples, for locating the R peak.
    raw: History,
    /// |derivative| of the band-passed signal, for the slope test and the R-peak search.
    slope: History,
    integrator: MovingAverage,
    /// Index of the next sample.
    next_index: u64,
    /// Last finite sample, which replaces non-finite ones.
    last_finite: f32,
    /// Peak picking: the running maximum, or `None` while the integral is still falling.
    rising: Option<(u64, f64)>,
    previous_energy: f64,
    /// Learning phase: largest peak and energy sum.
    learning_max: f64,
    learning_sum: f64,
    signal_level: f64,
    noise_level: f64,
    last_beat: Option<Peak>,
    rr: [f64; RR_HISTORY],
    rr_len: usize,
    /// Mean of `rr`, or the initial guess before the first interval, in samples.
    mean_rr: f64,
    /// The signal level before the current decay began; 0 while not decaying.
    undecayed_level: f64,
    /// A beat above threshold but weak, held back until it is clear no stronger QRS follows
    /// (which would make it a P wave or an artefact).
    pending: Option<Peak>,
    /// Peaks since the last beat that may be recovered by search-back (or, while learning, every peak).
    candidates: Peaks,
}

impl QrsDetector {
    /// A detector for a stream sampled at `rate`. Allocates all its memory here.
    pub fn new(rate: SampleRate) -> Self {
        let hz = rate.as_hz();
        let high_pass = Biquad::high_pass(BAND_LOW_HZ, hz);
        let low_pass = Biquad::low_pass(BAND_HIGH_HZ, hz);
        let derivative = u64::from(rate.samples_in_ms(DERIVATIVE_MS).max(1));
        let filter_delay = Biquad::group_delay(&[high_pass, low_pass], QRS_CENTRE_HZ, hz)
            + derivative as f64 / 2.0;
        let timing = Timing::new(rate, filter_delay);
        let history = rate.samples_in_ms(HISTORY_MS) as usize + 1;
        Self {
            rate,
            timing,
            high_pass,
            low_pass,
            band: History::new(timing.derivative as usize + 1),
            raw: History::new(history),
            slope: History::new(history),
            integrator: MovingAverage::new(timing.integration as usize),
            next_index: 0,
            last_finite: 0.0,
            rising: Some((0, 0.0)),
            previous_energy: 0.0,
            learning_max: 0.0,
            learning_sum: 0.0,
            signal_level: 0.0,
            noise_level: 0.0,
            last_beat: None,
            rr: [0.0; RR_HISTORY],
            rr_len: 0,
            mean_rr: timing.initial_rr,
            undecayed_level: 0.0,
            candidates: Peaks::default(),
            pending: None,
        }
    }

    /// The stream's sampling rate.
    pub fn sample_rate(&self) -> SampleRate {
        self.rate
    }

    /// Bytes of memory this detector holds: the struct and its buffers.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.band.heap_bytes()
            + self.raw.heap_bytes()
            + self.slope.heap_bytes()
            + self.integrator.heap_bytes()
    }

    /// Forgets the stream, as if newly built; keeps the buffers.
    pub fn reset(&mut self) {
        self.high_pass.clear();
        self.low_pass.clear();
        self.band.clear();
        self.raw.clear();
        self.slope.clear();
        self.integrator.clear();
        self.next_index = 0;
        self.last_finite = 0.0;
        self.rising = Some((0, 0.0));
        self.previous_energy = 0.0;
        self.learning_max = 0.0;
        self.learning_sum = 0.0;
        self.signal_level = 0.0;
        self.noise_level = 0.0;
        self.last_beat = None;
        self.rr = [0.0; RR_HISTORY];
        self.rr_len = 0;
        self.mean_rr = self.timing.initial_rr;
        self.undecayed_level = 0.0;
        self.candidates = Peaks::default();
        self.pending = None;
    }

    /// Feeds the next samples of the stream (any gain, any chunk length) and calls `on_beat` for
    /// every beat found, in the order found. Non-finite samples are replaced by the last finite one.
    pub fn push(&mut self, samples: &[f32], mut on_beat: impl FnMut(Beat)) {
        // The band-pass state lives in locals for the chunk so it stays in registers.
        let (mut high_pass, mut low_pass) = (self.high_pass, self.low_pass);
        for &sample in samples {
            let sample = if sample.is_finite() {
                sample
            } else {
                self.last_finite
            };
            self.last_finite = sample;
            if self.next_index == 0 {
                // Start as if the first value had always been there: no step response.
                high_pass.settle(f64::from(sample));
            }
            let band = low_pass.step(high_pass.step(f64::from(sample)));
            self.step(sample, band, &mut on_beat);
        }
        (self.high_pass, self.low_pass) = (high_pass, low_pass);
    }

    /// One sample: `sample` as received (finite), `band` after the band-pass.
    fn step(&mut self, sample: f32, band: f64, on_beat: &mut impl FnMut(Beat)) {
        let index = self.next_index;
        self.raw.push(sample);
        let earlier = self
            .band
            .get(index.wrapping_sub(self.timing.derivative))
            .map_or(band, f64::from);
        self.band.push(band as f32);
        let derivative = band - earlier;
        self.slope.push(derivative.abs() as f32);
        let energy = self.integrator.step(derivative * derivative);

        if index < self.timing.learning {
            self.learning_max = self.learning_max.max(energy);
            self.learning_sum += energy;
        }
        if let Some(peak) = self.pick_peak(index, energy) {
            if index < self.timing.learning {
                self.learning_max = self.learning_max.max(peak.energy);
                self.candidates.push(peak);
            } else {
                self.classify(peak, index, false, on_beat);
            }
        }
        if index + 1 == self.timing.learning {
            self.finish_learning(index, on_beat);
        } else if index >= self.timing.learning {
            self.flush_pending(index, on_beat);
            self.search_back(index, on_beat);
        }
        self.next_index += 1;
    }

    /// Tracks local maxima of the integral; returns one once it is confirmed.
    fn pick_peak(&mut self, index: u64, energy: f64) -> Option<Peak> {
        let previous = std::mem::replace(&mut self.previous_energy, energy);
        match self.rising {
            None => {
                if energy > previous {
                    self.rising = Some((index, energy));
                }
                None
            }
            Some((_, top)) if energy > top => {
                self.rising = Some((index, energy));
                None
            }
            Some((top_index, top)) => {
                if index.saturating_sub(top_index) >= self.timing.peak_hold || energy < 0.5 * top {
                    self.rising = None;
                    if top <= 0.0 {
                        None
                    } else if index >= self.timing.learning && top < NEGLIGIBLE * self.threshold() {
                        // Far too small to be a beat, even after search-back halves the threshold:
                        // count it as noise without the cost of locating it.
                        self.noise_level = 0.125 * top + 0.875 * self.noise_level;
                        None
                    } else {
                        Some(self.locate(top_index, top))
                    }
                } else {
                    None
                }
            }
        }
    }

    /// Finds the steepest slope and the R peak of the QRS whose energy peaked at `energy_index`.
    fn locate(&self, energy_index: u64, energy: f64) -> Peak {
        let from = energy_index.saturating_sub(self.timing.integration);
        let (mut steepest, mut slope) = (energy_index, 0.0f32);
        if let Some((from, to)) = self.slope.clamp(from, energy_index) {
            for i in from..=to {
                let value = self.slope.get(i).unwrap_or(0.0);
                if value > slope {
                    (steepest, slope) = (i, value);
                }
            }
        }
        let centre = steepest.saturating_sub(self.timing.filter_delay);
        let r_peak = self.largest_deflection(centre).unwrap_or(centre);
        Peak {
            energy_index,
            energy,
            r_peak,
            slope,
        }
    }

    /// The raw sample near `centre` that deviates most from the local mean.
    fn largest_deflection(&self, centre: u64) -> Option<u64> {
        let (from, to) = self.raw.clamp(
            centre.saturating_sub(self.timing.baseline),
            centre + self.timing.baseline,
        )?;
        let mean = (from..=to)
            .map(|i| f64::from(self.raw.get(i).unwrap_or(0.0)))
            .sum::<f64>()
            / (to - from + 1) as f64;
        let (from, to) = self.raw.clamp(
            centre.saturating_sub(self.timing.r_search),
            centre + self.timing.r_search,
        )?;
        // The first of equal extremes wins.
        let (mut best, mut best_deviation) = (from, -1.0);
        for i in from..=to {
            let deviation = (f64::from(self.raw.get(i).unwrap_or(0.0)) - mean).abs();
            if deviation > best_deviation {
                (best, best_deviation) = (i, deviation);
            }
        }
        Some(best)
    }

    fn threshold(&self) -> f64 {
        self.noise_level + 0.25 * (self.signal_level - self.noise_level)
    }

    fn mean_rr(&self) -> f64 {
        self.mean_rr
    }

    /// How soon after a weak beat a stronger peak must come to reveal the weak one as a P wave.
    fn p_wave_window(&self) -> u64 {
        (PRE_QRS_RR * self.mean_rr()).min(self.timing.t_wave_window as f64) as u64
    }

    fn finish_learning(&mut self, index: u64, on_beat: &mut impl FnMut(Beat)) {
        self.signal_level = 0.5 * self.learning_max;
        self.noise_level = 0.5 * self.learning_sum / self.timing.learning as f64;
        let learnt = std::mem::take(&mut self.candidates);
        for &peak in learnt.as_slice() {
            self.classify(peak, index, true, on_beat);
        }
    }

    /// Decides whether a confirmed peak is a beat, a T wave or noise.
    /// `replay` marks peaks from the learning phase, reported late.
    fn classify(&mut self, peak: Peak, index: u64, replay: bool, on_beat: &mut impl FnMut(Beat)) {
        if let Some(pending) = self.pending {
            let gap = peak.r_peak.saturating_sub(pending.r_peak);
            if peak.r_peak <= pending.r_peak || gap < self.timing.refractory {
                // Two peaks of one complex: keep the stronger.
                if peak.energy > pending.energy {
                    self.pending = Some(peak);
                }
                return;
            }
            self.pending = None;
            let dominated = gap < self.p_wave_window()
                && peak.energy > DOMINANCE * pending.energy
                && peak.slope > pending.slope;
            if dominated {
                // The weak peak was a P wave or an artefact before this QRS.
                self.noise_level = 0.125 * pending.energy + 0.875 * self.noise_level;
            } else {
                self.accept(pending, index, 0.125, replay, on_beat);
            }
        }
        if let Some(last) = self.last_beat {
            let gap = peak.r_peak.saturating_sub(last.r_peak);
            if peak.r_peak <= last.r_peak || gap < self.timing.refractory {
                return;
            }
            if gap < self.timing.t_wave_window && peak.slope < 0.5 * last.slope {
                self.noise_level = 0.125 * peak.energy + 0.875 * self.noise_level;
                return;
            }
        }
        if peak.energy > self.threshold() {
            // Weak compared with the beats before any decay: after a pause the threshold has
            // sunk, and the P wave before the first QRS must not pass for a beat.
            if peak.energy < WEAK * self.signal_level.max(self.undecayed_level) {
                self.pending = Some(peak);
            } else {
                self.accept(peak, index, 0.125, replay, on_beat);
            }
        } else {
            self.noise_level = 0.125 * peak.energy + 0.875 * self.noise_level;
            // Judged against the half threshold of the moment search-back happens, not of now:
            // after an amplitude drop the threshold decays until these peaks qualify.
            self.candidates.push(peak);
        }
    }

    /// Reports the held-back weak beat once no stronger QRS can follow it any more.
    fn flush_pending(&mut self, index: u64, on_beat: &mut impl FnMut(Beat)) {
        if let Some(pending) = self.pending
            // A QRS that could dominate it is confirmed at most the primary deadline after its R peak.
            && index
                >= pending.r_peak.saturating_add(self.p_wave_window() + self.timing.primary_deadline)
        {
            self.pending = None;
            self.accept(pending, index, 0.125, false, on_beat);
        }
    }

    fn accept(
        &mut self,
        peak: Peak,
        index: u64,
        weight: f64,
        late: bool,
        on_beat: &mut impl FnMut(Beat),
    ) {
        // Bound the step one towering peak (an artefact) can give the signal level.
        let energy = if self.signal_level > 0.0 {
            peak.energy.min(4.0 * self.signal_level)
        } else {
            peak.energy
        };
        self.signal_level = weight * energy + (1.0 - weight) * self.signal_level;
        // A beat ends the decay: the level returns as far as this beat's energy supports, so
        // the T wave after the first beat of a pause meets the usual threshold.
        if self.undecayed_level > 0.0 {
            self.signal_level = self.signal_level.max(self.undecayed_level.min(peak.energy));
            self.undecayed_level = 0.0;
        }
        if let Some(last) = self.last_beat {
            let rr = peak.r_peak.saturating_sub(last.r_peak) as f64;
            if self.rr_len == RR_HISTORY {
                self.rr.copy_within(1.., 0);
                self.rr_len -= 1;
            }
            self.rr[self.rr_len] = rr;
            self.rr_len += 1;
            self.mean_rr = self.rr[..self.rr_len].iter().sum::<f64>() / self.rr_len as f64;
        }
        self.last_beat = Some(peak);
        self.candidates = Peaks::default();
        let delay = index.saturating_sub(peak.r_peak);
        on_beat(Beat {
            r_peak: peak.r_peak,
            delay: u32::try_from(delay).unwrap_or(u32::MAX),
            late: late || delay > self.timing.primary_deadline,
        });
    }

    /// Recovers beats missed by the primary threshold once the gap since the last beat is too long.
    fn search_back(&mut self, index: u64, on_beat: &mut impl FnMut(Beat)) {
        let Some(last) = self.last_beat else {
            return;
        };
        if self.pending.is_some() {
            return;
        }
        let limit = SEARCH_BACK_RR * self.mean_rr();
        if (index.saturating_sub(last.energy_index) as f64) < limit {
            return;
        }
        self.undecayed_level = self.undecayed_level.max(self.signal_level);
        self.signal_level =
            (self.signal_level * self.timing.signal_decay).max(SIGNAL_FLOOR * self.noise_level);
        let half_threshold = 0.5 * self.threshold();
        let best = self
            .candidates
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, peak)| {
                peak.energy > half_threshold && peak.slope >= MIN_SLOPE * last.slope
            })
            .max_by(|(_, a), (_, b)| a.energy.total_cmp(&b.energy));
        if let Some((position, &peak)) = best {
            let mut rest = self.candidates;
            rest.drop_front(position + 1);
            self.accept(peak, index, SEARCH_BACK_WEIGHT, true, on_beat);
            // Keep the later peaks that are not part of the recovered beat's QRS.
            for &later in rest.as_slice() {
                if later.r_peak >= peak.r_peak.saturating_add(self.timing.refractory) {
                    self.candidates.push(later);
                }
            }
        }
    }
}
