//! Ventricular flutter / fibrillation (VF/VFL): detected beside the QRS detector, on the same
//! samples, so that flutter waves are not reported as beats and the episode raises an alarm.
//!
//! # Method
//! Two published time-domain measures, computed every 0.5 s over the last 2 s of the ECG
//! band-limited to 1–30 Hz (the preprocessing of Amann, Tratnig & Unterkofler, "Reliability of old
//! and new ventricular fibrillation detection algorithms for automated external defibrillators",
//! BioMed Eng OnLine 4:60, 2005) and decimated to ~100–125 Hz:
//!
//! - **VF filter leakage** (Kuo & Dillman, "Computer detection of ventricular fibrillation",
//!   Computers in Cardiology 1978, 347–349; as specified by Amann et al. 2005): the mean period
//!   `T` is estimated from `Σ|x| / Σ|Δx|`, and the leakage `Σ|x[i] + x[i−T/2]| / Σ(|x[i]| +
//!   |x[i−T/2]|)` measures how far the signal is from a sinusoid of that period (0 for a pure
//!   sine, near 1 for a train of narrow QRS complexes with flat baseline between them).
//! - **Threshold-crossing sample count** (Arafat, Chowdhury & Hasan, "A simple time domain
//!   algorithm for the detection of ventricular fibrillation in electrocardiogram", Signal, Image
//!   and Video Processing 5:1–10, 2011 — TCSC, a refinement of Thakor's threshold-crossing
//!   intervals, IEEE TBME 37(9), 1990): the fraction of samples whose magnitude exceeds 20 % of
//!   the window's peak. Flutter has no isoelectric line, so most samples are far from zero; beats,
//!   even wide ventricular ones, leave baseline between them.
//!
//! Why these: both are cheap, causal and need only the window (no FFT, ~1 KiB), and Amann et
//! al. found the VF filter among the most *specific* of the classic detectors — here specificity
//! matters most, because a false VF verdict deletes real beats (ventricular tachycardia must keep
//! its beats). A window is **VF-like** when leakage < 0.45 and more than half of its samples cross
//! the threshold (both must hold: a noisy or a fast wide-complex rhythm can pass one test alone),
//! and **VF-compatible** (hysteresis) when leakage < 0.55 and 40 % cross. An episode starts after
//! [`CONFIRM_WINDOWS`] VF-like windows in a row (so ≥ 2.5 s of flutter, which short runs of VT do
//! not sustain); its onset is dated back to the start of the run of VF-compatible windows that led
//! to it. It ends after [`END_WINDOWS`] windows in a row that are not VF-compatible, dated at the
//! end of the last VF-compatible window.
//!
//! # Beats during an episode
//! [`GuardedQrsDetector`] runs the [`QrsDetector`] and the [`VfDetector`] side by side. Because a
//! VF verdict comes seconds after the flutter began, beats that *could* be flutter waves are held
//! back for [`HOLD_MS`] before they are reported: beats faster than 150 bpm, beats while the
//! latest window is VF-compatible. Beats in a confirmed episode are
//! dropped; the others are reported as the QRS detector found them: [`Beat::delay`] and
//! [`Beat::late`] stay the QRS detector's (a held beat is no less certain), and the hold comes on
//! top, at most [`MAX_HOLD_MS`] after the R peak. Beats at ordinary rates in ordinary windows pass
//! at once.
//!
//! Everything is allocated by `new`; `push` never allocates.

use crate::qrs::QrsDetector;
use crate::qrs::filters::Biquad;
use crate::snapshot::{
    Reader, SnapshotError, put_f32, put_f64, put_flag, put_opt_u64, put_u32, put_u64,
};
use crate::{Beat, SampleRate};

/// Band of the VF analysis (Amann et al. 2005 preprocessing: drift removed, above 30 Hz cut).
const BAND_LOW_HZ: f64 = 1.0;
const BAND_HIGH_HZ: f64 = 30.0;
/// The analysis runs at the stream's rate divided down to at least this rate.
const ANALYSIS_MIN_HZ: f64 = 100.0;
/// Longest window in analysis samples: 2 s below 200 Hz (the analysis rate is under twice
/// [`ANALYSIS_MIN_HZ`]).
const MAX_WINDOW: usize = 400;
/// Length of the analysed window.
const WINDOW_MS: f64 = 2000.0;
/// A window is analysed this often.
const HOP_MS: f64 = 500.0;
/// VF-like: leakage below this ...
const LEAKAGE_VF: f32 = 0.45;
/// ... and more than this fraction of samples above [`CROSSING_LEVEL`] of the peak.
const CROSSING_VF: f32 = 0.5;
/// VF-compatible (keeps an episode going, dates its onset): leakage below this ...
const LEAKAGE_COMPATIBLE: f32 = 0.55;
/// ... and more than this fraction of samples above the level.
const CROSSING_COMPATIBLE: f32 = 0.4;
/// Threshold of the sample count, relative to the window's largest magnitude (Arafat et al.).
const CROSSING_LEVEL: f32 = 0.2;
/// VF-like windows in a row that start an episode.
pub const CONFIRM_WINDOWS: u32 = 2;
/// Windows in a row that are not VF-compatible that end an episode.
pub const END_WINDOWS: u32 = 6;
/// How long [`GuardedQrsDetector`] holds a beat that may be a flutter wave: the time from the
/// start of the VF-like run to its confirmation (window + hops), with one hop to spare.
pub const HOLD_MS: f64 = WINDOW_MS + CONFIRM_WINDOWS as f64 * HOP_MS;
/// Longest a beat is held while the windows look like flutter but no episode is confirmed
/// (then it is reported: a run of fast ventricular beats keeps its beats). Episodes in
/// progress hold their beats until they end.
pub const MAX_HOLD_MS: f64 = 6000.0;
/// Beats closer than this to the previous one (above 150 bpm) are held for the VF verdict.
const FAST_RR_MS: f64 = 400.0;
/// Samples the QRS detector is given at a time by [`GuardedQrsDetector`].
const SLICE: usize = 1024;
/// Beats the QRS detector can report over one slice: its learning replay (16 peaks) and a
/// search-back, with room to spare.
const SLICE_BEATS: usize = 64;
/// Beats held at once; 3 s at the detector's maximum rate (refractory 200 ms) is 15.
const HELD_CAPACITY: usize = 32;

/// What the VF detector made of the window just analysed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VfWindow {
    /// First sample of the window.
    pub start: u64,
    /// One past the last sample of the window.
    pub end: u64,
    /// Kuo & Dillman's leakage (0 for a sinusoid).
    pub leakage: f32,
    /// Fraction of samples above 20 % of the window's peak magnitude.
    pub crossing: f32,
}

impl VfWindow {
    fn vf_like(&self) -> bool {
        self.leakage < LEAKAGE_VF && self.crossing > CROSSING_VF
    }

    fn compatible(&self) -> bool {
        self.leakage < LEAKAGE_COMPATIBLE && self.crossing > CROSSING_COMPATIBLE
    }
}

/// A change of the VF/VFL state, in stream sample indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfChange {
    /// An episode was confirmed; it began at `start` (dated back to the first flutter window).
    Onset {
        /// First sample of the episode.
        start: u64,
    },
    /// The episode that began at `start` ended at `end` (exclusive).
    Offset {
        /// First sample of the episode.
        start: u64,
        /// One past the last sample of the episode.
        end: u64,
    },
}

/// Streaming VF/VFL detector for one ECG stream (any gain). Fixed memory.
#[derive(Clone, Debug)]
pub struct VfDetector {
    high_pass: Biquad,
    low_pass: Biquad,
    /// Input samples per analysis sample.
    decimation: u32,
    /// Input samples until the next analysis sample.
    countdown: u32,
    /// Sum of the input samples since the last analysis sample.
    sum: f32,
    /// The last window of analysis samples (a ring).
    window: Vec<f32>,
    head: usize,
    /// Analysis samples until the next hop.
    hop: usize,
    hop_left: usize,
    /// Analysis samples seen (saturates at the window length).
    filled: usize,
    /// Index of the next input sample.
    next_index: u64,
    last_finite: f32,
    /// VF-like windows in a row.
    vf_run: u32,
    /// Start of the run of VF-compatible windows in progress, if any.
    compatible_since: Option<u64>,
    /// The open episode's start.
    open: Option<u64>,
    /// End of the last VF-compatible window of the open episode.
    last_compatible_end: u64,
    /// Windows in a row, in an episode, that were not VF-compatible.
    misses: u32,
    /// The latest window analysed.
    latest: Option<VfWindow>,
}

impl VfDetector {
    /// A detector for a stream sampled at `rate`. Allocates all its memory here.
    pub fn new(rate: SampleRate) -> Self {
        let hz = rate.as_hz();
        let decimation = ((hz / ANALYSIS_MIN_HZ).floor() as u32).max(1);
        let analysis_hz = hz / f64::from(decimation);
        let per_ms = |ms: f64| ((ms * analysis_hz / 1000.0).round() as usize).max(2);
        let hop = per_ms(HOP_MS);
        Self {
            high_pass: Biquad::high_pass(BAND_LOW_HZ, analysis_hz),
            low_pass: Biquad::low_pass(BAND_HIGH_HZ, analysis_hz),
            sum: 0.0,
            decimation,
            countdown: decimation,
            window: vec![0.0; per_ms(WINDOW_MS).min(MAX_WINDOW)],
            head: 0,
            hop,
            hop_left: hop,
            filled: 0,
            next_index: 0,
            last_finite: 0.0,
            vf_run: 0,
            compatible_since: None,
            open: None,
            last_compatible_end: 0,
            misses: 0,
            latest: None,
        }
    }

    /// Bytes of memory this detector holds.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.window.capacity() * std::mem::size_of::<f32>()
    }

    /// Forgets the stream, as if newly built; keeps the buffer.
    pub fn reset(&mut self) {
        self.high_pass.clear();
        self.low_pass.clear();
        self.countdown = self.decimation;
        self.sum = 0.0;
        self.window.fill(0.0);
        self.head = 0;
        self.hop_left = self.hop;
        self.filled = 0;
        self.next_index = 0;
        self.last_finite = 0.0;
        self.vf_run = 0;
        self.compatible_since = None;
        self.open = None;
        self.last_compatible_end = 0;
        self.misses = 0;
        self.latest = None;
    }

    /// The start of the episode in progress, if one is.
    pub fn episode_start(&self) -> Option<u64> {
        self.open
    }

    /// Whether the latest window looked like VF/VFL (VF-compatible), episode or not.
    pub fn suspect(&self) -> bool {
        self.suspect_since().is_some()
    }

    /// Start of the episode in progress, or of the run of VF-compatible windows that may
    /// become one.
    pub fn suspect_since(&self) -> Option<u64> {
        self.open.or(self.compatible_since)
    }

    /// The latest window analysed.
    pub fn latest_window(&self) -> Option<VfWindow> {
        self.latest
    }

    /// Index of the next sample.
    pub fn position(&self) -> u64 {
        self.next_index
    }

    /// Feeds one sample; calls `on_change` when an episode is confirmed or ends.
    #[inline]
    pub fn step(&mut self, sample: f32, on_change: &mut impl FnMut(VfChange)) {
        let sample = if sample.is_finite() {
            sample
        } else {
            self.last_finite
        };
        self.last_finite = sample;
        // Decimate first (mean of `decimation` samples, a boxcar anti-alias filter), then band-pass
        // at the analysis rate: the per-sample cost is one addition.
        if self.next_index == 0 {
            self.high_pass.settle(f64::from(sample));
        }
        self.next_index += 1;
        self.sum += sample;
        self.countdown -= 1;
        if self.countdown > 0 {
            return;
        }
        self.countdown = self.decimation;
        let mean = f64::from(self.sum) / f64::from(self.decimation);
        self.sum = 0.0;
        let x = self.low_pass.step(self.high_pass.step(mean));
        self.window[self.head] = x as f32;
        self.head = (self.head + 1) % self.window.len();
        self.filled = (self.filled + 1).min(self.window.len());
        self.hop_left -= 1;
        if self.hop_left > 0 {
            return;
        }
        self.hop_left = self.hop;
        if self.filled == self.window.len() {
            let window = self.analyse();
            self.latest = Some(window);
            self.decide(window, on_change);
        }
    }

    /// Feeds samples until the state changes; returns how many were taken and the change.
    fn push_until_change(&mut self, samples: &[f32]) -> (usize, Option<VfChange>) {
        let mut change = None;
        for (i, &sample) in samples.iter().enumerate() {
            self.step(sample, &mut |c| change = Some(c));
            if change.is_some() {
                return (i + 1, change);
            }
        }
        (samples.len(), None)
    }

    /// Feeds samples; calls `on_change` for every change of state.
    pub fn push(&mut self, samples: &[f32], mut on_change: impl FnMut(VfChange)) {
        for &sample in samples {
            self.step(sample, &mut on_change);
        }
    }

    /// Ends the stream: closes an open episode at the current position.
    pub fn finish(&mut self, mut on_change: impl FnMut(VfChange)) {
        if let Some(start) = self.open.take() {
            on_change(VfChange::Offset {
                start,
                end: self.next_index,
            });
        }
    }

    /// Leakage and threshold-crossing fraction of the window (oldest sample at `head`).
    fn analyse(&self) -> VfWindow {
        let n = self.window.len();
        // The ring copied out oldest first, so the loops below run over plain slices.
        let mut copy = [0.0f32; MAX_WINDOW];
        let (newer, older) = self.window.split_at(self.head);
        copy[..older.len()].copy_from_slice(older);
        copy[older.len()..n].copy_from_slice(newer);
        let x = &copy[..n];
        let sum_abs = lanes_sum(x.iter().map(|v| v.abs()));
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let sum_diff = lanes_sum(x[1..].iter().zip(x).map(|(a, b)| (a - b).abs()));
        let end = self.next_index;
        let start = end.saturating_sub(n as u64 * u64::from(self.decimation));
        if peak <= 0.0 || sum_diff <= 0.0 {
            // A flat line: asystole or a lead off, not VF.
            return VfWindow {
                start,
                end,
                leakage: 1.0,
                crossing: 0.0,
            };
        }
        // Kuo & Dillman: half the mean period, in samples.
        let half_period =
            ((std::f32::consts::PI * sum_abs / sum_diff + 0.5).floor() as usize).clamp(1, n / 2);
        let leak = lanes_sum(x[half_period..].iter().zip(x).map(|(a, b)| (a + b).abs()));
        let total = lanes_sum(
            x[half_period..]
                .iter()
                .zip(x)
                .map(|(a, b)| a.abs() + b.abs()),
        );
        let level = CROSSING_LEVEL * peak;
        let above = x.iter().filter(|v| v.abs() > level).count();
        VfWindow {
            start,
            end,
            leakage: leak / total.max(f32::MIN_POSITIVE),
            crossing: above as f32 / n as f32,
        }
    }

    fn decide(&mut self, window: VfWindow, on_change: &mut impl FnMut(VfChange)) {
        if window.compatible() {
            self.compatible_since.get_or_insert(window.start);
        } else {
            self.compatible_since = None;
        }
        self.vf_run = if window.vf_like() { self.vf_run + 1 } else { 0 };
        match self.open {
            None => {
                if self.vf_run >= CONFIRM_WINDOWS {
                    let start = self.compatible_since.unwrap_or(window.start);
                    self.open = Some(start);
                    self.last_compatible_end = window.end;
                    self.misses = 0;
                    on_change(VfChange::Onset { start });
                }
            }
            Some(start) => {
                if window.compatible() {
                    self.last_compatible_end = window.end;
                    self.misses = 0;
                } else {
                    self.misses += 1;
                    if self.misses >= END_WINDOWS {
                        self.open = None;
                        self.vf_run = 0;
                        on_change(VfChange::Offset {
                            start,
                            end: self.last_compatible_end,
                        });
                    }
                }
            }
        }
    }
}

/// Sum in eight interleaved lanes, which the compiler can vectorise (a plain float sum must
/// keep its order).
fn lanes_sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0.0f32; 8];
    for (i, v) in values.enumerate() {
        lanes[i % 8] += v;
    }
    lanes.iter().sum()
}

/// What [`GuardedQrsDetector`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// A beat (never one inside a VF/VFL episode).
    Beat(Beat),
    /// A VF/VFL episode was confirmed (or ended): the most urgent alarm there is.
    Vf(VfChange),
}

/// The QRS detector with a VF/VFL detector beside it: beats out, except during ventricular
/// flutter/fibrillation, which is reported as an episode instead. See the [module](self) docs.
#[derive(Clone, Debug)]
pub struct GuardedQrsDetector {
    qrs: QrsDetector,
    vf: VfDetector,
    hold: u64,
    max_hold: u64,
    fast_rr: u64,
    /// Beats waiting for the VF verdict, in the order found.
    held: [Beat; HELD_CAPACITY],
    held_len: usize,
    /// R peak of the latest beat the QRS detector found.
    last_found: Option<u64>,
    /// R peak of the latest beat reported.
    last_reported: Option<u64>,
    /// The episode in progress: beats from here on are held.
    episode_start: Option<u64>,
}

impl GuardedQrsDetector {
    /// Both detectors for a stream sampled at `rate`. Allocates all their memory here.
    pub fn new(rate: SampleRate) -> Self {
        let samples = |ms: f64| (ms * rate.as_hz() / 1000.0).round() as u64;
        Self {
            qrs: QrsDetector::new(rate),
            vf: VfDetector::new(rate),
            hold: samples(HOLD_MS),
            max_hold: samples(MAX_HOLD_MS),
            fast_rr: samples(FAST_RR_MS),
            held: [Beat {
                r_peak: 0,
                delay: 0,
                late: false,
            }; HELD_CAPACITY],
            held_len: 0,
            last_found: None,
            last_reported: None,
            episode_start: None,
        }
    }

    /// The stream's sampling rate.
    pub fn sample_rate(&self) -> SampleRate {
        self.qrs.sample_rate()
    }

    /// Samples a beat that may be a flutter wave is held before it is reported.
    pub fn hold_samples(&self) -> u64 {
        self.hold
    }

    /// The longest a beat can be held: consumers that order beats (the RR stage) wait this long
    /// on top of their own hold-back.
    pub fn max_hold_samples(&self) -> u64 {
        self.max_hold
    }

    /// Bytes of memory both detectors and the held beats take.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() - std::mem::size_of::<QrsDetector>() + self.qrs.state_bytes()
            - std::mem::size_of::<VfDetector>()
            + self.vf.state_bytes()
    }

    /// The newest R peak found and not dropped (reported or still held).
    pub fn latest_beat(&self) -> Option<u64> {
        let held = self.held[..self.held_len].iter().map(|b| b.r_peak).max();
        held.max(self.last_reported)
    }

    /// R peak of the earliest beat still held, if any: a consumer that orders beats must not
    /// commit past it.
    pub fn earliest_held(&self) -> Option<u64> {
        self.held[..self.held_len].iter().map(|b| b.r_peak).min()
    }

    /// Whether a VF/VFL episode is in progress.
    pub fn in_episode(&self) -> bool {
        self.episode_start.is_some()
    }

    /// Forgets the stream, as if newly built; keeps the buffers.
    pub fn reset(&mut self) {
        self.qrs.reset();
        self.vf.reset();
        self.held_len = 0;
        self.last_found = None;
        self.last_reported = None;
        self.episode_start = None;
    }

    /// Feeds the next samples (any gain, any chunk length); calls `on_output` for every beat
    /// reported and every change of the VF/VFL state, in order.
    pub fn push(&mut self, samples: &[f32], mut on_output: impl FnMut(Detection)) {
        // The QRS detector runs over a slice at a time (its fast path); its beats are then
        // interleaved with the VF detector's samples at the index each was reported.
        for slice in samples.chunks(SLICE) {
            let mut found = [None::<Beat>; SLICE_BEATS];
            let mut n = 0;
            self.qrs.push(slice, |beat| {
                if n < found.len() {
                    found[n] = Some(beat);
                    n += 1;
                }
            });
            let (mut next, mut done) = (0, 0);
            while done < slice.len() {
                let position = self.vf.position();
                // The VF detector runs up to the sample at which the next beat was reported.
                let until = match found.get(next).copied().flatten() {
                    Some(beat) => {
                        let reported = beat.r_peak + u64::from(beat.delay);
                        if reported <= position {
                            self.take(beat, &mut on_output);
                            next += 1;
                            continue;
                        }
                        slice.len().min(done + (reported - position) as usize)
                    }
                    None => slice.len(),
                };
                let (used, change) = self.vf.push_until_change(&slice[done..until]);
                done += used;
                if let Some(change) = change {
                    self.on_change(change, &mut on_output);
                }
                if self.held_len > 0 {
                    self.release(&mut on_output);
                }
            }
            for beat in found[next..].iter().flatten() {
                self.take(*beat, &mut on_output);
            }
        }
    }

    /// Ends the stream: closes an open episode and reports the beats still held.
    pub fn finish(&mut self, mut on_output: impl FnMut(Detection)) {
        let mut change = None;
        self.vf.finish(|c| change = Some(c));
        if let Some(change) = change {
            self.on_change(change, &mut on_output);
        }
        for i in 0..self.held_len {
            let beat = self.held[i];
            self.report(beat, &mut on_output);
        }
        self.held_len = 0;
    }

    fn take(&mut self, beat: Beat, on_output: &mut impl FnMut(Detection)) {
        let fast = self
            .last_found
            .is_some_and(|last| beat.r_peak < last + self.fast_rr);
        self.last_found = Some(self.last_found.map_or(beat.r_peak, |l| l.max(beat.r_peak)));
        if self.episode_start.is_some_and(|start| beat.r_peak >= start) {
            // Inside the episode: a flutter wave, unless the episode's end is dated before it.
            self.hold_beat(beat, on_output);
        } else if fast || self.vf.suspect() {
            self.hold_beat(beat, on_output);
        } else {
            self.report(beat, on_output);
        }
    }

    fn hold_beat(&mut self, beat: Beat, on_output: &mut impl FnMut(Detection)) {
        if self.held_len == HELD_CAPACITY {
            // Cannot happen at the detector's maximum rate; if it does, keep the stream moving.
            let oldest = self.held[0];
            self.held.copy_within(1.., 0);
            self.held_len -= 1;
            if self.episode_start.is_none_or(|start| oldest.r_peak < start) {
                self.report(oldest, on_output);
            }
        }
        self.held[self.held_len] = beat;
        self.held_len += 1;
    }

    fn on_change(&mut self, change: VfChange, on_output: &mut impl FnMut(Detection)) {
        let change = match change {
            VfChange::Onset { start } => {
                // Never date an episode before a beat already reported.
                let start = self.last_reported.map_or(start, |r| start.max(r + 1));
                self.episode_start = Some(start);
                VfChange::Onset { start }
            }
            VfChange::Offset { end, .. } => {
                let start = self.episode_start.take().unwrap_or(end);
                let end = end.max(start);
                // The flutter waves go; beats after the episode wait for their hold to pass.
                let mut kept = 0;
                for i in 0..self.held_len {
                    let beat = self.held[i];
                    if !(start..end).contains(&beat.r_peak) {
                        self.held[kept] = beat;
                        kept += 1;
                    }
                }
                self.held_len = kept;
                VfChange::Offset { start, end }
            }
        };
        on_output(Detection::Vf(change));
    }

    /// Reports the held beats whose hold has passed, oldest first, stopping at the first that
    /// must wait (or that is inside the episode in progress).
    fn release(&mut self, on_output: &mut impl FnMut(Detection)) {
        let position = self.vf.position();
        let mut done = 0;
        while done < self.held_len {
            let beat = self.held[done];
            let in_episode = self.episode_start.is_some_and(|start| beat.r_peak >= start);
            // While the windows still look like flutter, the verdict may yet come.
            let suspect = self
                .vf
                .suspect_since()
                .is_some_and(|since| beat.r_peak >= since)
                && beat.r_peak + self.max_hold > position;
            if in_episode || suspect || beat.r_peak + self.hold > position {
                break;
            }
            self.report(beat, on_output);
            done += 1;
        }
        if done > 0 {
            self.held.copy_within(done..self.held_len, 0);
            self.held_len -= done;
        }
    }

    fn report(&mut self, beat: Beat, on_output: &mut impl FnMut(Detection)) {
        self.last_reported = Some(
            self.last_reported
                .map_or(beat.r_peak, |r| r.max(beat.r_peak)),
        );
        on_output(Detection::Beat(beat));
    }
}

/// Snapshot format of [`GuardedQrsDetector`]: magic `MVFG`, version, the QRS detector's own
/// snapshot (length-prefixed), then the VF detector's and the guard's fields in declaration order
/// (little-endian; options as a 0/1 byte before their value). Buffer lengths follow from the rate.
const SNAPSHOT_MAGIC: &[u8; 4] = b"MVFG";
const SNAPSHOT_VERSION: u8 = 1;

impl GuardedQrsDetector {
    /// Appends the whole state (both detectors and the held beats) to `out`, so a stream can be
    /// resumed elsewhere with exactly the output an uninterrupted guard would give.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        let length_at = out.len();
        put_u64(out, 0);
        self.qrs.snapshot(out);
        let qrs_len = (out.len() - length_at - 8) as u64;
        out[length_at..length_at + 8].copy_from_slice(&qrs_len.to_le_bytes());
        let vf = &self.vf;
        for filter in [&vf.high_pass, &vf.low_pass] {
            filter.state().iter().for_each(|&v| put_f64(out, v));
        }
        put_u32(out, vf.countdown);
        put_f32(out, vf.sum);
        vf.window.iter().for_each(|&v| put_f32(out, v));
        for n in [vf.head, vf.hop_left, vf.filled] {
            put_u64(out, n as u64);
        }
        put_u64(out, vf.next_index);
        put_f32(out, vf.last_finite);
        put_u32(out, vf.vf_run);
        put_opt_u64(out, vf.compatible_since);
        put_opt_u64(out, vf.open);
        put_u64(out, vf.last_compatible_end);
        put_u32(out, vf.misses);
        put_flag(out, vf.latest.is_some());
        let latest = vf.latest.unwrap_or(VfWindow {
            start: 0,
            end: 0,
            leakage: 0.0,
            crossing: 0.0,
        });
        put_u64(out, latest.start);
        put_u64(out, latest.end);
        put_f32(out, latest.leakage);
        put_f32(out, latest.crossing);
        put_u64(out, self.held_len as u64);
        for beat in &self.held[..self.held_len] {
            put_u64(out, beat.r_peak);
            put_u32(out, beat.delay);
            put_flag(out, beat.late);
        }
        put_opt_u64(out, self.last_found);
        put_opt_u64(out, self.last_reported);
        put_opt_u64(out, self.episode_start);
    }

    /// Rebuilds a guard from [`snapshot`](Self::snapshot); refuses bytes that are not one.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.take(1)?[0];
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let qrs_len = r.len_at_most(bytes.len(), "QRS snapshot length")?;
        let qrs = QrsDetector::restore(r.take(qrs_len)?)?;
        let mut guard = Self::new(qrs.sample_rate());
        guard.qrs = qrs;
        let vf = &mut guard.vf;
        for filter in [&mut vf.high_pass, &mut vf.low_pass] {
            filter.set_state([r.f64()?, r.f64()?, r.f64()?, r.f64()?]);
        }
        vf.countdown = r.u32()?;
        vf.sum = r.f32()?;
        for slot in vf.window.iter_mut() {
            *slot = r.f32()?;
        }
        let len = vf.window.len();
        vf.head = r.len_at_most(len, "VF window head")?;
        vf.hop_left = r.len_at_most(vf.hop, "VF hop")?;
        vf.filled = r.len_at_most(len, "VF window fill")?;
        vf.next_index = r.u64()?;
        vf.last_finite = r.f32()?;
        vf.vf_run = r.u32()?;
        vf.compatible_since = r.opt_u64("VF compatible run")?;
        vf.open = r.opt_u64("VF episode")?;
        vf.last_compatible_end = r.u64()?;
        vf.misses = r.u32()?;
        let has_latest = r.flag("VF latest window")?;
        let latest = VfWindow {
            start: r.u64()?,
            end: r.u64()?,
            leakage: r.f32()?,
            crossing: r.f32()?,
        };
        vf.latest = has_latest.then_some(latest);
        guard.held_len = r.len_at_most(HELD_CAPACITY, "held beats")?;
        for beat in &mut guard.held[..guard.held_len] {
            beat.r_peak = r.u64()?;
            beat.delay = r.u32()?;
            beat.late = r.flag("held beat late")?;
        }
        guard.last_found = r.opt_u64("last beat found")?;
        guard.last_reported = r.opt_u64("last beat reported")?;
        guard.episode_start = r.opt_u64("episode start")?;
        r.finish()?;
        Ok(guard)
    }
}
