//! The whole per-stream chain: samples → QRS detection → RR → heart rate → HRV → events → AF,
//! with the signal-quality index marking what cannot be trusted.
//!
//! ```text
//! samples ─┬─ GuardedQrsDetector ── beats ── RrTracker (hold-back 3 s, ordering, Malik's rule)
//!          │       └── VF/VFL episodes ──────┐ (events, no beats inside)
//!          │                              │ committed beats + RR intervals
//!          └─ QualityMonitor ── seconds ──┤ (usable?)
//!                                         ├─ HeartRateTracker ── EventDetector (brady/tachy)
//!                                         ├─ EventDetector (pauses, asystole)
//!                                         ├─ HrvWindow (5 min, every 30 s)
//!                                         └─ AfDetector (30-s windows)
//! ```
//!
//! [`Analysis::push`] takes a chunk of any length and appends what it found to an
//! [`AnalysisOutput`] the caller reuses; all state is set up in [`Analysis::new`] and nothing
//! allocates per sample (the output vectors only grow past their initial capacity on a chunk
//! holding more results than that).

use crate::SampleRate;
use crate::af::{AfDetector, AfWindow};
use crate::events::{EventDetector, EventKind, EventThresholds, Evidence, RhythmEvent};
use crate::heart_rate::{HeartRate, HeartRateTracker};
use crate::hrv::{HrvSummary, HrvWindow};
use crate::quality::{QualityMonitor, SecondQuality};
use crate::rr::{RrCounters, RrInterval, RrTracker};
use crate::snapshot::{Reader, SnapshotError, put_f32, put_f64, put_flag, put_u64};

/// Magic and format version of [`Analysis::snapshot`].
const SNAPSHOT_MAGIC: &[u8; 4] = b"MANA";
const SNAPSHOT_VERSION: u8 = 2;
use crate::vf::{Detection, GuardedQrsDetector, VfChange};

/// Seconds of signal quality remembered, to judge beats and gaps after the RR hold-back.
const QUALITY_MEMORY_S: usize = 64;

/// Settings of one stream's analysis.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AnalysisConfig {
    /// Event thresholds (bradycardia, tachycardia, pauses, asystole).
    pub events: EventThresholds,
    /// The converter's full scale in mV, when known: a flat line there is an electrode off.
    pub rail_mv: Option<f32>,
}

/// A committed beat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalysedBeat {
    /// Sample index of the R peak.
    pub r_peak: u64,
    /// The second holding it was usable signal.
    pub usable: bool,
    /// The interval from the previous beat (`None` for the first beat).
    pub rr: Option<RrInterval>,
}

/// An event, with whether the signal over it could be trusted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalysedEvent {
    /// The event.
    pub event: RhythmEvent,
    /// Every second the event spans was usable; `false` means it may be technical (lead-off,
    /// noise) rather than clinical.
    pub signal_usable: bool,
}

/// What one [`Analysis::push`] found; cleared by the caller (or [`AnalysisOutput::clear`]).
#[derive(Clone, Debug, Default)]
pub struct AnalysisOutput {
    /// Beats committed, in R-peak order.
    pub beats: Vec<AnalysedBeat>,
    /// Heart rate at each usable beat.
    pub heart_rates: Vec<HeartRate>,
    /// HRV windows closed.
    pub hrv: Vec<HrvSummary>,
    /// Events started or finished.
    pub events: Vec<AnalysedEvent>,
    /// AF decisions of the 30-s windows closed.
    pub af_windows: Vec<AfWindow>,
    /// Seconds of signal judged.
    pub quality: Vec<SecondQuality>,
}

impl AnalysisOutput {
    /// Empty buffers with room for a few seconds of results, so pushes do not allocate.
    pub fn with_capacity() -> Self {
        Self {
            beats: Vec::with_capacity(64),
            heart_rates: Vec::with_capacity(64),
            hrv: Vec::with_capacity(4),
            events: Vec::with_capacity(16),
            af_windows: Vec::with_capacity(4),
            quality: Vec::with_capacity(16),
        }
    }

    /// Empties every buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.beats.clear();
        self.heart_rates.clear();
        self.hrv.clear();
        self.events.clear();
        self.af_windows.clear();
        self.quality.clear();
    }
}

/// The stages after the RR tracker, with the quality memory they consult.
#[derive(Clone, Debug)]
struct Stages {
    second_samples: u64,
    heart_rate: HeartRateTracker,
    hrv: HrvWindow,
    events: EventDetector,
    af: AfDetector,
    /// Usability of the last seconds, by second index modulo the length.
    usable: [bool; QUALITY_MEMORY_S],
    /// Seconds judged so far.
    seconds_judged: u64,
    /// The latest VF/VFL episode: start, and end once it ended. No RR spans it, and the
    /// asystole clock does not run through it.
    vf: Option<(u64, Option<u64>)>,
}

impl Stages {
    fn record(&mut self, second: &SecondQuality) {
        self.usable[(self.seconds_judged % QUALITY_MEMORY_S as u64) as usize] = second.usable();
        self.seconds_judged += 1;
    }

    /// Whether the second holding `sample` was usable (usable when not judged yet or forgotten).
    fn usable_at(&self, sample: u64) -> bool {
        let second = sample / self.second_samples;
        let remembered =
            second < self.seconds_judged && self.seconds_judged - second <= QUALITY_MEMORY_S as u64;
        !remembered || self.usable[(second % QUALITY_MEMORY_S as u64) as usize]
    }

    /// Whether every remembered second over `[start, end]` was usable.
    fn usable_over(&self, start: u64, end: u64) -> bool {
        let (first, last) = (start / self.second_samples, end / self.second_samples);
        (first..=last).all(|s| self.usable_at(s * self.second_samples))
    }

    fn on_beat(&mut self, r_peak: u64, rr: Option<RrInterval>, out: &mut AnalysisOutput) {
        // The interval across a VF/VFL episode is not an RR (no pause, no rate).
        let rr = rr.filter(|rr| {
            self.vf.is_none_or(|(start, end)| {
                rr.end <= start || end.is_some_and(|end| rr.start >= end)
            })
        });
        let usable = self.usable_at(r_peak);
        let rr = rr.map(|mut rr| {
            rr.usable = usable && self.usable_at(rr.start);
            rr
        });
        out.beats.push(AnalysedBeat { r_peak, usable, rr });
        let Some(rr) = rr else { return };
        self.hrv.advance(rr.end, |s| out.hrv.push(s));
        self.af.advance(rr.end, |w| out.af_windows.push(w));
        let rate = self.heart_rate.update(&rr);
        if let Some(rate) = rate {
            out.heart_rates.push(rate);
        }
        let mut events = [None; 4];
        let mut n = 0;
        self.events.push(&rr, rate.as_ref(), |e| {
            if n < events.len() {
                events[n] = Some(e);
                n += 1;
            }
        });
        for event in events.into_iter().flatten() {
            self.emit(event, out);
        }
        self.hrv.push(&rr);
        self.af.push(&rr);
    }

    fn on_vf(&mut self, change: VfChange, out: &mut AnalysisOutput) {
        let (start, end) = match change {
            VfChange::Onset { start } => (start, None),
            VfChange::Offset { start, end } => (start, Some(end)),
        };
        self.vf = Some((start, end));
        let evidence = Evidence {
            beats: 0,
            min_rr_ms: 0.0,
            max_rr_ms: 0.0,
            extreme_bpm: 0.0,
        };
        self.emit(
            RhythmEvent {
                kind: EventKind::VentricularFibrillation,
                start,
                end,
                evidence,
            },
            out,
        );
    }

    fn emit(&self, event: RhythmEvent, out: &mut AnalysisOutput) {
        let end = event
            .end
            .unwrap_or(self.seconds_judged * self.second_samples);
        let signal_usable = self.usable_over(event.start, end);
        out.events.push(AnalysedEvent {
            event,
            signal_usable,
        });
    }
}

/// One ECG stream's complete analysis. Fixed memory: see [`Analysis::state_bytes`].
#[derive(Clone, Debug)]
pub struct Analysis {
    rate: SampleRate,
    config: AnalysisConfig,
    position: u64,
    detector: GuardedQrsDetector,
    quality: QualityMonitor,
    rr: RrTracker,
    stages: Stages,
}

impl Analysis {
    /// The chain for a stream sampled at `rate`. Allocates all its memory here.
    pub fn new(rate: SampleRate, config: AnalysisConfig) -> Self {
        Self {
            rate,
            config,
            position: 0,
            detector: GuardedQrsDetector::new(rate),
            quality: QualityMonitor::new(rate, config.rail_mv),
            rr: RrTracker::new(rate),
            stages: Stages {
                second_samples: u64::from(rate.samples_in_ms(1000.0)).max(1),
                heart_rate: HeartRateTracker::new(),
                hrv: HrvWindow::new(rate),
                events: EventDetector::new(rate, config.events),
                af: AfDetector::new(rate),
                usable: [true; QUALITY_MEMORY_S],
                seconds_judged: 0,
                vf: None,
            },
        }
    }

    /// Bytes of memory this stream's analysis holds, the detector's buffers included.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.detector.state_bytes()
            - std::mem::size_of::<GuardedQrsDetector>()
            + self.stages.af.heap_bytes()
    }

    /// Beats the RR stage refused (duplicates, too late).
    pub fn rr_counters(&self) -> RrCounters {
        self.rr.counters()
    }

    /// Index of the next sample.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Feeds the next samples (millivolts, any chunk length); appends results to `out`.
    pub fn push(&mut self, samples_mv: &[f32], out: &mut AnalysisOutput) {
        let stages = &mut self.stages;
        self.quality.push(samples_mv, |second| {
            stages.record(&second);
            out.quality.push(second);
        });
        let (rr, stages) = (&mut self.rr, &mut self.stages);
        self.detector.push(samples_mv, |detection| match detection {
            Detection::Beat(beat) => rr.push_beat(beat),
            Detection::Vf(change) => stages.on_vf(change, out),
        });
        self.position += samples_mv.len() as u64;
        // Beats the guard still holds (possible flutter waves) must not be overtaken: the RR
        // stage commits no further than the earliest of them.
        let settled = self.detector.earliest_held().map_or(self.position, |held| {
            self.position.min(held + self.rr.hold_back_samples())
        });

        let stages = &mut self.stages;
        self.rr.advance(settled, |r, rr| stages.on_beat(r, rr, out));
        let horizon = settled.saturating_sub(self.rr.hold_back_samples());
        self.stages.hrv.advance(horizon, |s| out.hrv.push(s));
        self.stages.af.advance(horizon, |w| out.af_windows.push(w));
        if self.detector.in_episode() {
            // No beats in VF/VFL is not asystole.
            return;
        }
        // Asystole counts from the latest beat found (held ones too) or the end of VF/VFL.
        let vf_end = self.stages.vf.and_then(|(_, end)| end);
        let latest = [self.rr.latest_beat(), self.detector.latest_beat(), vf_end]
            .into_iter()
            .flatten()
            .max();
        let mut open = None;
        self.stages
            .events
            .tick(self.position, latest, |e| open = Some(e));
        if let Some(event) = open {
            self.stages.emit(event, out);
        }
    }

    /// Appends the whole chain's state to `out`, so a checkpoint can resume the stream with
    /// exactly the output an uninterrupted chain would have produced ([`Self::restore`]).
    ///
    /// Layout (little-endian): magic `MANA`, format version (u8, currently 1), sampling rate
    /// (f64), the configuration, the position, the detector's own snapshot (length-prefixed),
    /// then each stage's state in chain order. 4–8 kB.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        put_f64(out, self.rate.as_hz());
        let t = &self.config.events;
        for v in [
            t.bradycardia_bpm,
            t.tachycardia_bpm,
            t.hysteresis_bpm,
            t.pause_ms,
            t.long_pause_ms,
            t.asystole_ms,
        ] {
            put_f32(out, v);
        }
        put_u64(out, u64::from(t.confirm_beats));
        put_flag(out, self.config.rail_mv.is_some());
        put_f32(out, self.config.rail_mv.unwrap_or_default());
        put_u64(out, self.position);
        let length_at = out.len();
        put_u64(out, 0);
        self.detector.snapshot(out);
        let detector_len = (out.len() - length_at - 8) as u64;
        out[length_at..length_at + 8].copy_from_slice(&detector_len.to_le_bytes());
        self.quality.save(out);
        self.rr.save(out);
        let stages = &self.stages;
        stages.heart_rate.save(out);
        stages.hrv.save(out);
        stages.events.save(out);
        stages.af.save(out);
        stages.usable.iter().for_each(|&u| put_flag(out, u));
        put_u64(out, stages.seconds_judged);
    }

    /// The chain in the state `bytes` (from [`Self::snapshot`]) describe.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.take(1)?[0];
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let hz = r.f64()?;
        if !(hz.is_finite() && hz > 0.0) {
            return Err(SnapshotError::BadSampleRate(hz));
        }
        let mut events = EventThresholds {
            bradycardia_bpm: r.f32()?,
            tachycardia_bpm: r.f32()?,
            hysteresis_bpm: r.f32()?,
            pause_ms: r.f32()?,
            long_pause_ms: r.f32()?,
            asystole_ms: r.f32()?,
            ..EventThresholds::default()
        };
        events.confirm_beats =
            u32::try_from(r.u64()?).map_err(|_| SnapshotError::OutOfRange("confirm beats"))?;
        let has_rail = r.flag("rail")?;
        let rail = r.f32()?;
        let config = AnalysisConfig {
            events,
            rail_mv: has_rail.then_some(rail),
        };
        let mut analysis = Self::new(SampleRate::hz(hz), config);
        analysis.position = r.u64()?;
        let detector_len = r.len_at_most(bytes.len(), "detector snapshot length")?;
        analysis.detector = GuardedQrsDetector::restore(r.take(detector_len)?)?;
        analysis.quality.load(&mut r)?;
        analysis.rr.load(&mut r)?;
        let stages = &mut analysis.stages;
        stages.heart_rate.load(&mut r)?;
        stages.hrv.load(&mut r)?;
        stages.events.load(&mut r)?;
        stages.af.load(&mut r)?;
        for slot in &mut stages.usable {
            *slot = r.flag("usable")?;
        }
        stages.seconds_judged = r.u64()?;
        r.finish()?;
        Ok(analysis)
    }

    /// Ends the stream: commits every waiting beat and closes the last windows and episodes.
    pub fn finish(&mut self, out: &mut AnalysisOutput) {
        let stages = &mut self.stages;
        self.quality.finish(|second| {
            stages.record(&second);
            out.quality.push(second);
        });
        let rr = &mut self.rr;
        self.detector.finish(|detection| match detection {
            Detection::Beat(beat) => rr.push_beat(beat),
            Detection::Vf(change) => stages.on_vf(change, out),
        });
        self.rr.flush(|r, rr| stages.on_beat(r, rr, out));
        stages.hrv.advance(self.position, |s| out.hrv.push(s));
        stages.af.finish(self.position, |w| out.af_windows.push(w));
        let mut closed = [None; 2];
        let mut n = 0;
        stages.events.finish(|e| {
            if n < closed.len() {
                closed[n] = Some(e);
                n += 1;
            }
        });
        for event in closed.into_iter().flatten() {
            stages.emit(event, out);
        }
    }
}
