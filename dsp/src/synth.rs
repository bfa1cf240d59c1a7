//! Synthetic ECG with ground truth, for tests, the gateway simulator and load benchmarks.
//!
//! # Model
//! The waveform follows the Gaussian-event description of ECGSYN (McSharry, Clifford, Tarassenko &
//! Smith, "A dynamical model for generating synthetic electrocardiogram signals", IEEE TBME
//! 50(3):289–294, 2003): every beat is one turn of a point around a limit cycle whose angular speed
//! is 2π/RR, and the P, Q, R, S and T waves are Gaussian events placed along the turn. Two
//! departures, both so that a stream can be generated chunk by chunk at any rate:
//! - the z-equation is used in its closed form (the sum of the Gaussian events, which is what the
//!   ODE integrates to without its baseline-return term); baseline wander is added separately.
//!   The amplitudes are then in millivolts directly and do not depend on an integration step.
//! - events are placed in time around the R peak rather than as fixed phase angles, with P and T
//!   offsets scaled by √RR as ECGSYN scales its angles with heart rate, so a QRS stays ~100 ms wide
//!   at any rate.
//!
//! The RR tachogram follows ECGSYN's spectral idea (Mayer-wave LF component near 0.1 Hz and
//! respiratory HF component near 0.25 Hz, LF/HF power ratio 0.5, plus a little white jitter),
//! scaled to the requested SDNN. Atrial fibrillation draws RR intervals independently from a
//! log-normal distribution and replaces P waves with 4–9 Hz fibrillatory waves; atrial flutter is a
//! 300/min saw-tooth with fixed AV conduction, hence a regular ventricular rhythm.
//!
//! # Use
//! ```
//! use mimamori_dsp::SampleRate;
//! use mimamori_dsp::synth::{Rhythm, SynthConfig};
//!
//! let mut ecg = SynthConfig::new(SampleRate::hz(250.0), 7)
//!     .heart_rate_bpm(72.0)
//!     .rhythm_episode(Rhythm::AtrialFibrillation, 60.0, 120.0)
//!     .build()
//!     .expect("valid configuration");
//! let mut chunk = [0_i16; 250];
//! ecg.fill_counts(&mut chunk); // one second, streamed
//! let truth = ecg.truth(); // beats whose R peak has been output so far, rhythm and artefact segments
//! assert!(!truth.beats.is_empty());
//! ```
//!
//! Generation is deterministic from the seed (SplitMix64, no OS randomness). Beat timing uses its
//! own random stream, so adding noise or lead-off to a configuration leaves the beats unchanged.

use std::f64::consts::TAU;

use crate::SampleRate;

/// Heart rate bounds accepted by [`SynthConfig::heart_rate_bpm`], in beats per minute.
const HEART_RATE_RANGE_BPM: (f64, f64) = (20.0, 250.0);
/// Shortest RR the generator produces, in seconds: keeps at most a handful of beats overlapping.
const MIN_RR_S: f64 = 0.24;
/// Span of one beat's waveform around its R peak, in seconds (P wave before, T wave after).
const BEAT_SPAN_S: (f64, f64) = (-0.40, 0.75);
/// Beats whose waveform can overlap one sample: BEAT_SPAN / MIN_RR rounded up, with margin.
const MAX_ACTIVE_BEATS: usize = 8;
/// Atrial flutter wave period, in seconds (300 atrial cycles per minute).
const FLUTTER_PERIOD_S: f64 = 0.2;

/// An invalid synthetic-ECG configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// A parameter is out of its range.
    #[error("synthetic ecg parameter {parameter} out of range: {value}")]
    OutOfRange {
        /// The parameter's name, as in the builder method.
        parameter: &'static str,
        /// The rejected value.
        value: f64,
    },
}

/// The ventricular rhythm during an episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rhythm {
    /// Sinus rhythm with the configured heart rate variability (the default).
    Sinus,
    /// Atrial fibrillation: irregularly irregular RR, no P waves, fibrillatory baseline.
    AtrialFibrillation,
    /// Atrial flutter at 300/min with fixed `conduction`:1 AV block: a regular ventricular rhythm.
    AtrialFlutter {
        /// Atrial waves per conducted beat (2 gives 150 bpm, 4 gives 75 bpm).
        conduction: u8,
    },
    /// Monomorphic ventricular tachycardia: regular wide-complex (ventricular) beats at `bpm`,
    /// no P waves.
    VentricularTachycardia {
        /// Ventricular rate.
        bpm: u16,
    },
    /// Ventricular flutter: no QRS complexes, a sine-like wave of 3.5–5 Hz (210–300/min) whose
    /// frequency and amplitude wander; no beats are produced (or labelled) during it.
    VentricularFlutter,
}

/// What kind of beat the ventricles made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeatKind {
    /// Conducted beat with a narrow QRS (sinus, or conducted AF/flutter).
    Normal,
    /// Premature atrial contraction: early, abnormal P, narrow QRS, no compensatory pause.
    Supraventricular,
    /// Premature ventricular contraction: early, wide QRS, no P, discordant T, compensatory pause.
    Ventricular,
}

/// Kind of noise in a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseKind {
    /// Muscle (EMG) noise: broadband, weighted to high frequencies.
    Muscle,
    /// White Gaussian noise.
    White,
    /// Electrode motion: large low-frequency excursions (below ~2 Hz).
    Motion,
}

/// What a disconnected electrode looks like on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadOffKind {
    /// The front end outputs a constant 0 mV.
    Flat,
    /// The amplifier saturates at the positive end of the converter's range.
    Rail,
}

/// A stretch of signal disturbed by something other than the heart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artefact {
    /// Added noise of this kind.
    Noise(NoiseKind),
    /// Electrode off: no ECG at all.
    LeadOff(LeadOffKind),
}

/// One beat in the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruthBeat {
    /// 0-based sample index of the R peak (the extremum of the QRS before noise and gain).
    pub r_peak: u64,
    /// What kind of beat it was.
    pub kind: BeatKind,
}

/// A half-open interval of samples `[start, end)` carrying a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<T> {
    /// First sample inside.
    pub start: u64,
    /// First sample after.
    pub end: u64,
    /// What holds inside.
    pub label: T,
}

impl<T> Segment<T> {
    /// Samples inside the segment.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the segment is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples of `[start, end)` that lie inside this segment.
    pub fn overlap(&self, start: u64, end: u64) -> u64 {
        self.end.min(end).saturating_sub(self.start.max(start))
    }
}

/// A configured pause as it happened: the beats either side and the gap between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TruthPause {
    /// R peak of the last beat before the pause.
    pub before: u64,
    /// R peak of the first beat after the pause.
    pub after: u64,
}

/// What the generator put in the signal: the reference the analysis is checked against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroundTruth {
    /// Every beat whose R peak has been output, in order.
    pub beats: Vec<TruthBeat>,
    /// Episodes of a rhythm other than sinus, in order; sinus fills the gaps.
    pub rhythms: Vec<Segment<Rhythm>>,
    /// Noise bursts and lead-off episodes, as configured.
    pub artefacts: Vec<Segment<Artefact>>,
    /// Configured pauses whose closing beat has been output.
    pub pauses: Vec<TruthPause>,
}

impl GroundTruth {
    /// The rhythm at `sample`.
    pub fn rhythm_at(&self, sample: u64) -> Rhythm {
        self.rhythms
            .iter()
            .find(|s| (s.start..s.end).contains(&sample))
            .map_or(Rhythm::Sinus, |s| s.label)
    }

    /// Samples of `[start, end)` inside atrial-fibrillation episodes.
    pub fn af_samples_in(&self, start: u64, end: u64) -> u64 {
        self.rhythms
            .iter()
            .filter(|s| s.label == Rhythm::AtrialFibrillation)
            .map(|s| s.overlap(start, end))
            .sum()
    }

    /// Samples of `[start, end)` inside any artefact segment (overlaps counted once per segment).
    pub fn artefact_samples_in(&self, start: u64, end: u64) -> u64 {
        self.artefacts.iter().map(|s| s.overlap(start, end)).sum()
    }
}

/// A configured episode in seconds from the start of the stream.
#[derive(Clone, Copy, Debug)]
struct Episode<T> {
    start_s: f64,
    duration_s: f64,
    label: T,
}

#[derive(Clone, Copy, Debug)]
struct NoiseBurst {
    kind: NoiseKind,
    rms_mv: f64,
}

/// Settings of a synthetic ECG stream; [`SynthConfig::build`] turns them into an [`EcgSynth`].
#[derive(Clone, Debug)]
pub struct SynthConfig {
    rate: SampleRate,
    seed: u64,
    heart_rate_bpm: f64,
    sdnn_ms: f64,
    pvc_probability: f64,
    pac_probability: f64,
    af_rr_cv: f64,
    r_amplitude_mv: f64,
    inverted: bool,
    white_noise_mv: f64,
    baseline_wander_mv: f64,
    powerline_mv: f64,
    uv_per_count: f64,
    rhythms: Vec<Episode<Rhythm>>,
    pauses: Vec<Episode<()>>,
    noise: Vec<Episode<NoiseBurst>>,
    lead_off: Vec<Episode<LeadOffKind>>,
}

impl SynthConfig {
    /// Sinus rhythm at 60 bpm with 40 ms SDNN, 1 mV R waves, 10 µV white noise, 5 µV per count.
    pub fn new(rate: SampleRate, seed: u64) -> Self {
        Self {
            rate,
            seed,
            heart_rate_bpm: 60.0,
            sdnn_ms: 40.0,
            pvc_probability: 0.0,
            pac_probability: 0.0,
            af_rr_cv: 0.22,
            r_amplitude_mv: 1.0,
            inverted: false,
            white_noise_mv: 0.01,
            baseline_wander_mv: 0.0,
            powerline_mv: 0.0,
            uv_per_count: 5.0,
            rhythms: Vec::new(),
            pauses: Vec::new(),
            noise: Vec::new(),
            lead_off: Vec::new(),
        }
    }

    /// Mean ventricular rate in sinus rhythm and AF, in beats per minute (20–250).
    pub fn heart_rate_bpm(mut self, bpm: f64) -> Self {
        self.heart_rate_bpm = bpm;
        self
    }

    /// Standard deviation of sinus RR intervals, in milliseconds (0 gives a metronome).
    pub fn sdnn_ms(mut self, sdnn_ms: f64) -> Self {
        self.sdnn_ms = sdnn_ms;
        self
    }

    /// Probability that a beat is a premature ventricular contraction (0–1).
    pub fn pvc_probability(mut self, p: f64) -> Self {
        self.pvc_probability = p;
        self
    }

    /// Probability that a beat is a premature atrial contraction (0–1, sinus rhythm only).
    pub fn pac_probability(mut self, p: f64) -> Self {
        self.pac_probability = p;
        self
    }

    /// Coefficient of variation of RR intervals in atrial fibrillation (default 0.22).
    pub fn af_rr_cv(mut self, cv: f64) -> Self {
        self.af_rr_cv = cv;
        self
    }

    /// Height of a normal R wave, in millivolts.
    pub fn r_amplitude_mv(mut self, mv: f64) -> Self {
        self.r_amplitude_mv = mv;
        self
    }

    /// Flip the polarity of the whole ECG (a lead with a negative QRS).
    pub fn inverted(mut self, inverted: bool) -> Self {
        self.inverted = inverted;
        self
    }

    /// Background white noise, RMS in millivolts.
    pub fn white_noise_mv(mut self, mv: f64) -> Self {
        self.white_noise_mv = mv;
        self
    }

    /// Baseline wander (respiration at 0.25 Hz plus a 0.05 Hz drift), peak in millivolts.
    pub fn baseline_wander_mv(mut self, mv: f64) -> Self {
        self.baseline_wander_mv = mv;
        self
    }

    /// 50 Hz mains interference (eastern Japan), peak in millivolts.
    pub fn powerline_mv(mut self, mv: f64) -> Self {
        self.powerline_mv = mv;
        self
    }

    /// Converter gain for [`EcgSynth::fill_counts`], in microvolts per count (default 5, i.e. 200
    /// counts/mV as in MIT-BIH). The i16 range also bounds the millivolt output (saturation).
    pub fn uv_per_count(mut self, uv: f64) -> Self {
        self.uv_per_count = uv;
        self
    }

    /// `rhythm` from `start_s` for `duration_s` seconds; later episodes win where they overlap.
    pub fn rhythm_episode(mut self, rhythm: Rhythm, start_s: f64, duration_s: f64) -> Self {
        self.rhythms.push(Episode {
            start_s,
            duration_s,
            label: rhythm,
        });
        self
    }

    /// No beat for `duration_s` seconds after the first beat at or after `start_s`
    /// (sinus arrest; a long one is asystole).
    pub fn pause(mut self, start_s: f64, duration_s: f64) -> Self {
        self.pauses.push(Episode {
            start_s,
            duration_s,
            label: (),
        });
        self
    }

    /// A burst of `kind` noise with `rms_mv` millivolts RMS.
    pub fn noise_burst(
        mut self,
        kind: NoiseKind,
        rms_mv: f64,
        start_s: f64,
        duration_s: f64,
    ) -> Self {
        self.noise.push(Episode {
            start_s,
            duration_s,
            label: NoiseBurst { kind, rms_mv },
        });
        self
    }

    /// An electrode off from `start_s` for `duration_s` seconds.
    pub fn lead_off(mut self, kind: LeadOffKind, start_s: f64, duration_s: f64) -> Self {
        self.lead_off.push(Episode {
            start_s,
            duration_s,
            label: kind,
        });
        self
    }

    /// Check the settings and set up the generator.
    ///
    /// # Errors
    /// [`SynthError::OutOfRange`] naming the first parameter outside its range.
    pub fn build(self) -> Result<EcgSynth, SynthError> {
        self.validate()?;
        Ok(EcgSynth::new(self))
    }

    /// Build and generate `duration_s` seconds at once, in millivolts, with the ground truth.
    ///
    /// # Errors
    /// As [`SynthConfig::build`].
    pub fn generate_mv(self, duration_s: f64) -> Result<(Vec<f32>, GroundTruth), SynthError> {
        let n = (duration_s.max(0.0) * self.rate.as_hz()).round() as usize;
        let mut ecg = self.build()?;
        let mut out = vec![0.0; n];
        ecg.fill_mv(&mut out);
        Ok((out, ecg.take_truth()))
    }

    /// Build and generate `duration_s` seconds at once, in converter counts, with the ground truth.
    ///
    /// # Errors
    /// As [`SynthConfig::build`].
    pub fn generate_counts(self, duration_s: f64) -> Result<(Vec<i16>, GroundTruth), SynthError> {
        let n = (duration_s.max(0.0) * self.rate.as_hz()).round() as usize;
        let mut ecg = self.build()?;
        let mut out = vec![0; n];
        ecg.fill_counts(&mut out);
        Ok((out, ecg.take_truth()))
    }

    fn validate(&self) -> Result<(), SynthError> {
        let check = |parameter: &'static str, value: f64, lo: f64, hi: f64| {
            if value.is_finite() && (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(SynthError::OutOfRange { parameter, value })
            }
        };
        check(
            "heart_rate_bpm",
            self.heart_rate_bpm,
            HEART_RATE_RANGE_BPM.0,
            HEART_RATE_RANGE_BPM.1,
        )?;
        check("sdnn_ms", self.sdnn_ms, 0.0, 300.0)?;
        check("pvc_probability", self.pvc_probability, 0.0, 1.0)?;
        check("pac_probability", self.pac_probability, 0.0, 1.0)?;
        check("af_rr_cv", self.af_rr_cv, 0.0, 0.6)?;
        check("r_amplitude_mv", self.r_amplitude_mv, 0.0, 10.0)?;
        check("white_noise_mv", self.white_noise_mv, 0.0, 10.0)?;
        check("baseline_wander_mv", self.baseline_wander_mv, 0.0, 10.0)?;
        check("powerline_mv", self.powerline_mv, 0.0, 10.0)?;
        check("uv_per_count", self.uv_per_count, 0.01, 1000.0)?;
        for e in &self.rhythms {
            check("rhythm_episode start_s", e.start_s, 0.0, f64::MAX)?;
            check("rhythm_episode duration_s", e.duration_s, 0.0, f64::MAX)?;
            if let Rhythm::AtrialFlutter { conduction } = e.label {
                check("rhythm_episode conduction", f64::from(conduction), 2.0, 8.0)?;
            }
        }
        for e in &self.pauses {
            check("pause start_s", e.start_s, 0.0, f64::MAX)?;
            check("pause duration_s", e.duration_s, MIN_RR_S, 60.0)?;
        }
        for e in &self.noise {
            check("noise_burst start_s", e.start_s, 0.0, f64::MAX)?;
            check("noise_burst duration_s", e.duration_s, 0.0, f64::MAX)?;
            check("noise_burst rms_mv", e.label.rms_mv, 0.0, 10.0)?;
        }
        for e in &self.lead_off {
            check("lead_off start_s", e.start_s, 0.0, f64::MAX)?;
            check("lead_off duration_s", e.duration_s, 0.0, f64::MAX)?;
        }
        Ok(())
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast, and good enough for test signals.
#[derive(Clone, Debug)]
struct SplitMix64 {
    state: u64,
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare_normal: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, keeping the second value).
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln stays finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        self.spare_normal = Some(r * (TAU * u2).sin());
        r * (TAU * u2).cos()
    }
}

/// One Gaussian event of the ECGSYN model, placed in time around the R peak.
#[derive(Clone, Copy, Debug)]
struct Wave {
    /// Centre relative to the R peak at RR = 1 s, in seconds.
    offset_s: f64,
    amplitude_mv: f64,
    width_s: f64,
    /// Whether the offset scales with √RR (P and T do; the QRS does not).
    rate_scaled: bool,
}

const fn wave(offset_s: f64, amplitude_mv: f64, width_s: f64, rate_scaled: bool) -> Wave {
    Wave {
        offset_s,
        amplitude_mv,
        width_s,
        rate_scaled,
    }
}

/// Waves of a normal beat, for a 1 mV R wave (amplitudes after ECGSYN's lead II defaults).
const NORMAL_WAVES: [Wave; 5] = [
    wave(-0.17, 0.15, 0.025, true),
    wave(-0.028, -0.12, 0.009, false),
    wave(0.0, 1.0, 0.011, false),
    wave(0.030, -0.25, 0.010, false),
    wave(0.27, 0.30, 0.050, true),
];
/// A premature atrial beat: early, small, biphasic P; normal QRS and T.
const PAC_WAVES: [Wave; 5] = [
    wave(-0.14, -0.08, 0.020, true),
    wave(-0.028, -0.12, 0.009, false),
    wave(0.0, 1.0, 0.011, false),
    wave(0.030, -0.25, 0.010, false),
    wave(0.27, 0.30, 0.050, true),
];
/// A premature ventricular beat: no P, wide tall QRS, deep S, discordant T.
const PVC_WAVES: [Wave; 5] = [
    wave(0.0, 0.0, 0.02, false),
    wave(-0.045, -0.10, 0.020, false),
    wave(0.0, 1.35, 0.032, false),
    wave(0.075, -0.45, 0.030, false),
    wave(0.32, -0.40, 0.070, true),
];

/// A beat whose waveform is being drawn.
#[derive(Clone, Copy, Debug)]
struct ScheduledBeat {
    r_sample: u64,
    rr_s: f64,
    kind: BeatKind,
    with_p: bool,
    gain: f64,
    ends_pause: Option<u64>,
}

/// The generator: fills buffers of any length with the next samples of the stream.
///
/// Memory is fixed after [`SynthConfig::build`] except for the ground truth, which grows by one
/// entry per beat; a long-running simulator empties it with [`EcgSynth::take_truth`].
#[derive(Debug)]
pub struct EcgSynth {
    config: SynthConfig,
    fs: f64,
    /// Next sample index to output.
    position: u64,
    beat_rng: SplitMix64,
    noise_rng: SplitMix64,
    /// Beats whose waveform may reach the current sample, ordered by R peak (a tiny ring).
    active: [Option<ScheduledBeat>; MAX_ACTIVE_BEATS],
    /// R peak time of the last scheduled beat, in seconds.
    last_r_s: f64,
    last_r_sample: u64,
    /// RR owed after a premature ventricular beat (compensatory pause), in seconds.
    compensatory_rr_s: Option<f64>,
    pauses_used: Vec<bool>,
    hrv_phase: [f64; 2],
    wander_phase: [f64; 2],
    fib_phase: f64,
    fib_freq_hz: f64,
    /// Ventricular flutter wave: phase, frequency and amplitude modulation phase.
    vfl_phase: f64,
    vfl_freq_hz: f64,
    muscle_prev: f64,
    motion_state: f64,
    /// The converter's range in millivolts: the output saturates there.
    clip_mv: (f64, f64),
    truth: GroundTruth,
}

impl EcgSynth {
    fn new(config: SynthConfig) -> Self {
        let fs = config.rate.as_hz();
        let to_segment = |start_s: f64, duration_s: f64| {
            let start = (start_s * fs).round() as u64;
            (start, start + (duration_s * fs).round() as u64)
        };
        let mut truth = GroundTruth::default();
        for e in &config.rhythms {
            let (start, end) = to_segment(e.start_s, e.duration_s);
            if e.label != Rhythm::Sinus && end > start {
                truth.rhythms.push(Segment {
                    start,
                    end,
                    label: e.label,
                });
            }
        }
        truth.rhythms.sort_by_key(|s| s.start);
        for e in &config.noise {
            let (start, end) = to_segment(e.start_s, e.duration_s);
            truth.artefacts.push(Segment {
                start,
                end,
                label: Artefact::Noise(e.label.kind),
            });
        }
        for e in &config.lead_off {
            let (start, end) = to_segment(e.start_s, e.duration_s);
            truth.artefacts.push(Segment {
                start,
                end,
                label: Artefact::LeadOff(e.label),
            });
        }
        truth.artefacts.sort_by_key(|s| s.start);

        let mut beat_rng = SplitMix64::new(config.seed ^ 0x6265_6174_7300_0000);
        let mut noise_rng = SplitMix64::new(config.seed ^ 0x6e6f_6973_6500_0000);
        let hrv_phase = [beat_rng.uniform() * TAU, beat_rng.uniform() * TAU];
        let wander_phase = [noise_rng.uniform() * TAU, noise_rng.uniform() * TAU];
        // The first beat lands somewhere in the first RR so streams do not all start on a beat.
        let first_r_s = 0.2 + beat_rng.uniform() * 60.0 / config.heart_rate_bpm;
        let mv_per_count = config.uv_per_count / 1000.0;
        let clip_mv = (
            f64::from(i16::MIN) * mv_per_count,
            f64::from(i16::MAX) * mv_per_count,
        );
        let pauses_used = vec![false; config.pauses.len()];
        let mut synth = Self {
            fs,
            position: 0,
            beat_rng,
            noise_rng,
            active: [None; MAX_ACTIVE_BEATS],
            last_r_s: first_r_s,
            last_r_sample: 0,
            compensatory_rr_s: None,
            pauses_used,
            hrv_phase,
            wander_phase,
            fib_phase: 0.0,
            fib_freq_hz: 6.0,
            vfl_phase: 0.0,
            vfl_freq_hz: 4.2,
            muscle_prev: 0.0,
            motion_state: 0.0,
            clip_mv,
            truth,
            config,
        };
        let first = synth.make_beat(
            first_r_s,
            60.0 / synth.config.heart_rate_bpm,
            BeatKind::Normal,
            None,
        );
        synth.active[0] = Some(first);
        synth.last_r_sample = first.r_sample;
        synth
    }

    /// The sampling rate of the stream.
    pub fn rate(&self) -> SampleRate {
        self.config.rate
    }

    /// Converter gain of [`EcgSynth::fill_counts`], in microvolts per count.
    pub fn uv_per_count(&self) -> f64 {
        self.config.uv_per_count
    }

    /// Index of the next sample to be generated (= samples generated so far).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The ground truth gathered so far.
    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Hand over the ground truth gathered so far and start gathering afresh
    /// (configured segments are handed over once, with the first call).
    pub fn take_truth(&mut self) -> GroundTruth {
        std::mem::take(&mut self.truth)
    }

    /// The next `out.len()` samples, in millivolts.
    pub fn fill_mv(&mut self, out: &mut [f32]) {
        for y in out {
            *y = self.next_mv() as f32;
        }
    }

    /// The next `out.len()` samples, in converter counts of [`EcgSynth::uv_per_count`] µV.
    pub fn fill_counts(&mut self, out: &mut [i16]) {
        let counts_per_mv = 1000.0 / self.config.uv_per_count;
        for y in out {
            // next_mv is already clipped to the converter's range, so the cast cannot wrap.
            *y = (self.next_mv() * counts_per_mv).round() as i16;
        }
    }

    fn next_mv(&mut self) -> f64 {
        let n = self.position;
        let t = n as f64 / self.fs;
        self.schedule_beats_until(t);
        let mut mv = self.heart_mv(n, t);
        mv += self.background_mv(t);
        mv += self.bursts_mv(n);
        if let Some(kind) = self.lead_off_at(n) {
            mv = match kind {
                LeadOffKind::Flat => 0.0,
                LeadOffKind::Rail => self.clip_mv.1,
            };
        }
        self.position += 1;
        mv.clamp(self.clip_mv.0, self.clip_mv.1)
    }

    /// Schedule beats until the next one starts after `t`, and record those whose R peak is now.
    fn schedule_beats_until(&mut self, t: f64) {
        while self.last_r_s + BEAT_SPAN_S.0 <= t + 1.0 / self.fs {
            let (rr_s, kind, ends_pause) = self.next_rr();
            let r_s = self.last_r_s + rr_s;
            let beat = self.make_beat(r_s, rr_s, kind, ends_pause);
            // Keep the unrounded time: rounding each beat to the grid would bias the rate.
            self.last_r_s = r_s;
            self.last_r_sample = beat.r_sample;
            self.push_active(beat);
        }
        let now = self.position;
        for beat in self.active.iter().flatten() {
            if beat.r_sample == now {
                self.truth.beats.push(TruthBeat {
                    r_peak: beat.r_sample,
                    kind: beat.kind,
                });
                if let Some(before) = beat.ends_pause {
                    self.truth.pauses.push(TruthPause {
                        before,
                        after: beat.r_sample,
                    });
                }
            }
        }
    }

    fn push_active(&mut self, beat: ScheduledBeat) {
        let now = self.position;
        let expired = |b: &Option<ScheduledBeat>| match b {
            None => true,
            Some(b) => (b.r_sample as f64 + BEAT_SPAN_S.1 * self.fs) < now as f64,
        };
        // MIN_RR_S bounds how many beats overlap, so a free slot always exists; if not, drop the oldest.
        let slot = self.active.iter().position(expired).unwrap_or_else(|| {
            let (i, _) = self
                .active
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.map_or(0, |b| b.r_sample))
                .unwrap_or((0, &None));
            i
        });
        self.active[slot] = Some(beat);
    }

    fn make_beat(
        &mut self,
        r_s: f64,
        rr_s: f64,
        kind: BeatKind,
        ends_pause: Option<u64>,
    ) -> ScheduledBeat {
        let r_sample = (r_s * self.fs).round() as u64;
        let rhythm = self.rhythm_at_s(r_s);
        // Respiration modulates QRS amplitude (ECG-derived respiration); beats differ by a few %.
        let breath = 1.0 + 0.06 * (TAU * 0.25 * r_s + self.hrv_phase[1]).sin();
        let gain = breath * (1.0 + 0.03 * self.beat_rng.normal());
        ScheduledBeat {
            r_sample,
            rr_s,
            kind,
            with_p: rhythm == Rhythm::Sinus,
            gain,
            ends_pause,
        }
    }

    fn rhythm_at_s(&self, t: f64) -> Rhythm {
        self.config
            .rhythms
            .iter()
            .rev()
            .find(|e| t >= e.start_s && t < e.start_s + e.duration_s)
            .map_or(Rhythm::Sinus, |e| e.label)
    }

    /// The interval to the next beat, the beat's kind, and the R peak it closes a pause from.
    fn next_rr(&mut self) -> (f64, BeatKind, Option<u64>) {
        let t = self.last_r_s;
        for (i, p) in self.config.pauses.iter().enumerate() {
            if !self.pauses_used[i] && t >= p.start_s {
                self.pauses_used[i] = true;
                self.compensatory_rr_s = None;
                return (p.duration_s, BeatKind::Normal, Some(self.last_r_sample));
            }
        }
        let mean_rr = 60.0 / self.config.heart_rate_bpm;
        if let Some(rr) = self.compensatory_rr_s.take() {
            return (rr.max(MIN_RR_S), BeatKind::Normal, None);
        }
        let base = match self.rhythm_at_s(t) {
            Rhythm::Sinus => self.sinus_rr(t, mean_rr),
            Rhythm::AtrialFibrillation => {
                // Log-normal with the requested CV, mean kept at mean_rr.
                let cv = self.config.af_rr_cv;
                let sigma = (1.0 + cv * cv).ln().sqrt();
                mean_rr * (sigma * self.beat_rng.normal() - 0.5 * sigma * sigma).exp()
            }
            Rhythm::AtrialFlutter { conduction } => {
                f64::from(conduction) * FLUTTER_PERIOD_S + 0.004 * self.beat_rng.normal()
            }
            Rhythm::VentricularTachycardia { bpm } => {
                let rr = 60.0 / f64::from(bpm.max(1)) + 0.003 * self.beat_rng.normal();
                return (rr.max(MIN_RR_S), BeatKind::Ventricular, None);
            }
            // Beats stop at the flutter's onset (handled below); this is only reached when a
            // beat landed exactly on the episode's edge.
            Rhythm::VentricularFlutter => mean_rr,
        }
        .max(MIN_RR_S);
        if let Some(end_s) = self.flutter_end_after(t + base) {
            // No beat inside ventricular flutter: the next one comes a normal RR after it ends.
            return (end_s - t + mean_rr, BeatKind::Normal, None);
        }
        let u = self.beat_rng.uniform();
        if u < self.config.pvc_probability {
            let coupling = (0.62 * base).max(MIN_RR_S);
            self.compensatory_rr_s = Some(2.0 * base - coupling);
            (coupling, BeatKind::Ventricular, None)
        } else if u < self.config.pvc_probability + self.config.pac_probability
            && self.rhythm_at_s(t) == Rhythm::Sinus
        {
            (
                (0.72 * base).max(MIN_RR_S),
                BeatKind::Supraventricular,
                None,
            )
        } else {
            (base, BeatKind::Normal, None)
        }
    }

    /// The end (seconds) of the ventricular flutter episode holding time `t`, if any.
    fn flutter_end_after(&self, t: f64) -> Option<f64> {
        self.config
            .rhythms
            .iter()
            .rev()
            .find(|e| t >= e.start_s && t < e.start_s + e.duration_s)
            .filter(|e| e.label == Rhythm::VentricularFlutter)
            .map(|e| e.start_s + e.duration_s)
    }

    fn sinus_rr(&mut self, t: f64, mean_rr: f64) -> f64 {
        // Power split: 10 % white jitter, the rest LF:HF = 1:2 (ECGSYN's default ratio 0.5).
        let var = (self.config.sdnn_ms / 1000.0).powi(2);
        let white = (0.1 * var).sqrt();
        let lf = (2.0 * 0.9 * var / 3.0).sqrt();
        let hf = (2.0 * 0.9 * var * 2.0 / 3.0).sqrt();
        mean_rr
            + lf * (TAU * 0.1 * t + self.hrv_phase[0]).sin()
            + hf * (TAU * 0.25 * t + self.hrv_phase[1]).sin()
            + white * self.beat_rng.normal()
    }

    fn heart_mv(&mut self, n: u64, t: f64) -> f64 {
        let mut mv = 0.0;
        for beat in self.active.iter().flatten() {
            let dt = (n as f64 - beat.r_sample as f64) / self.fs;
            if dt < BEAT_SPAN_S.0 || dt > BEAT_SPAN_S.1 {
                continue;
            }
            let waves = match beat.kind {
                BeatKind::Normal => &NORMAL_WAVES,
                BeatKind::Supraventricular => &PAC_WAVES,
                BeatKind::Ventricular => &PVC_WAVES,
            };
            let scale = beat.rr_s.clamp(0.3, 1.6).sqrt();
            for (i, w) in waves.iter().enumerate() {
                // P waves (index 0) exist only when the atria are in sinus rhythm.
                if i == 0 && !beat.with_p && beat.kind == BeatKind::Normal {
                    continue;
                }
                let centre = if w.rate_scaled {
                    w.offset_s * scale
                } else {
                    w.offset_s
                };
                let z = (dt - centre) / w.width_s;
                if z.abs() < 6.0 {
                    mv += beat.gain * w.amplitude_mv * (-0.5 * z * z).exp();
                }
            }
        }
        mv += self.atrial_mv(t);
        mv += self.flutter_mv(t);
        let polarity = if self.config.inverted { -1.0 } else { 1.0 };
        polarity * self.config.r_amplitude_mv * mv
    }

    /// Ventricular flutter waves (relative to a 1 mV R wave): a sinusoid whose rate wanders over
    /// 3.5–5 Hz and whose amplitude swells and fades (0.5–0.9 mV) every few seconds.
    fn flutter_mv(&mut self, t: f64) -> f64 {
        if self.rhythm_at_s(t) != Rhythm::VentricularFlutter {
            return 0.0;
        }
        self.vfl_freq_hz = (self.vfl_freq_hz + 0.01 * self.noise_rng.normal()).clamp(3.5, 5.0);
        self.vfl_phase = (self.vfl_phase + TAU * self.vfl_freq_hz / self.fs) % TAU;
        let swell = 0.7 + 0.2 * (TAU * 0.2 * t).sin();
        swell * self.vfl_phase.sin()
    }

    /// Fibrillatory or flutter waves on the baseline (relative to a 1 mV R wave).
    fn atrial_mv(&mut self, t: f64) -> f64 {
        match self.rhythm_at_s(t) {
            Rhythm::Sinus | Rhythm::VentricularTachycardia { .. } | Rhythm::VentricularFlutter => {
                0.0
            }
            Rhythm::AtrialFibrillation => {
                // f-waves: 4–9 Hz, frequency wandering slowly.
                self.fib_freq_hz =
                    (self.fib_freq_hz + 0.02 * self.noise_rng.normal()).clamp(4.0, 9.0);
                self.fib_phase = (self.fib_phase + TAU * self.fib_freq_hz / self.fs) % TAU;
                0.05 * self.fib_phase.sin()
            }
            Rhythm::AtrialFlutter { .. } => {
                // Negative saw-tooth F waves: slow descent, fast return.
                let phase = (t / FLUTTER_PERIOD_S).fract();
                let saw = if phase < 0.8 {
                    -phase / 0.8
                } else {
                    (phase - 0.8) / 0.2 - 1.0
                };
                0.18 * (saw + 0.5)
            }
        }
    }

    fn background_mv(&mut self, t: f64) -> f64 {
        let c = &self.config;
        let mut mv = c.white_noise_mv * self.noise_rng.normal();
        if c.baseline_wander_mv > 0.0 {
            mv += c.baseline_wander_mv
                * (0.7 * (TAU * 0.25 * t + self.wander_phase[0]).sin()
                    + 0.3 * (TAU * 0.05 * t + self.wander_phase[1]).sin());
        }
        if c.powerline_mv > 0.0 {
            mv += c.powerline_mv * (TAU * 50.0 * t).sin();
        }
        mv
    }

    fn bursts_mv(&mut self, n: u64) -> f64 {
        let fs = self.fs;
        let mut mv = 0.0;
        for i in 0..self.config.noise.len() {
            let e = self.config.noise[i];
            let start = (e.start_s * fs).round() as u64;
            let end = start + (e.duration_s * fs).round() as u64;
            if !(start..end).contains(&n) {
                continue;
            }
            let white = self.noise_rng.normal();
            mv += e.label.rms_mv
                * match e.label.kind {
                    NoiseKind::White => white,
                    NoiseKind::Muscle => {
                        // First difference of white noise: power rising with frequency; /√2 keeps RMS.
                        let x = (white - self.muscle_prev) / std::f64::consts::SQRT_2;
                        self.muscle_prev = white;
                        x
                    }
                    NoiseKind::Motion => {
                        // One-pole low-pass at ~1.5 Hz, normalised to unit RMS.
                        let alpha = (TAU * 1.5 / fs).min(1.0);
                        self.motion_state += alpha * (white - self.motion_state);
                        self.motion_state / (alpha / (2.0 - alpha)).sqrt()
                    }
                };
        }
        mv
    }

    fn lead_off_at(&self, n: u64) -> Option<LeadOffKind> {
        let fs = self.fs;
        self.config.lead_off.iter().rev().find_map(|e| {
            let start = (e.start_s * fs).round() as u64;
            let end = start + (e.duration_s * fs).round() as u64;
            (start..end).contains(&n).then_some(e.label)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr_ms(truth: &GroundTruth, fs: f64) -> Vec<f64> {
        truth
            .beats
            .windows(2)
            .map(|w| (w[1].r_peak - w[0].r_peak) as f64 * 1000.0 / fs)
            .collect()
    }

    fn mean(x: &[f64]) -> f64 {
        x.iter().sum::<f64>() / x.len() as f64
    }

    fn sd(x: &[f64]) -> f64 {
        let m = mean(x);
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
    }

    #[test]
    fn same_seed_gives_identical_signal_and_other_seed_does_not() {
        let make = |seed| {
            SynthConfig::new(SampleRate::hz(250.0), seed)
                .generate_counts(20.0)
                .unwrap()
        };
        let (a, ta) = make(1);
        let (b, tb) = make(1);
        let (c, _) = make(2);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_ne!(a, c);
    }

    #[test]
    fn chunked_streaming_equals_one_shot_generation() {
        let config = SynthConfig::new(SampleRate::hz(360.0), 9)
            .pvc_probability(0.1)
            .baseline_wander_mv(0.3);
        let (whole, truth) = config.clone().generate_mv(30.0).unwrap();
        let mut ecg = config.build().unwrap();
        let mut streamed = Vec::new();
        for len in [1, 7, 100, 1000, 3000].iter().cycle() {
            let take = (*len).min(whole.len() - streamed.len());
            let mut chunk = vec![0.0; take];
            ecg.fill_mv(&mut chunk);
            streamed.extend_from_slice(&chunk);
            if streamed.len() == whole.len() {
                break;
            }
        }
        assert_eq!(streamed, whole);
        assert_eq!(ecg.truth(), &truth);
    }

    #[test]
    fn heart_rate_and_sdnn_follow_the_configuration_at_every_rate() {
        for fs in [125.0, 250.0, 360.0, 500.0] {
            for (bpm, sdnn) in [(45.0, 20.0), (72.0, 50.0), (150.0, 10.0)] {
                let config = SynthConfig::new(SampleRate::hz(fs), 3)
                    .heart_rate_bpm(bpm)
                    .sdnn_ms(sdnn);
                let (_, truth) = config.generate_mv(300.0).unwrap();
                let rr = rr_ms(&truth, fs);
                let measured_bpm = 60_000.0 / mean(&rr);
                assert!(
                    (measured_bpm - bpm).abs() < 1.0,
                    "{fs} Hz: {measured_bpm} bpm vs {bpm}"
                );
                let measured_sdnn = sd(&rr);
                // Sample-grid rounding adds up to ~1/fs/√3 of jitter.
                assert!(
                    (measured_sdnn - sdnn).abs() < 0.25 * sdnn + 1000.0 / fs,
                    "{fs} Hz {bpm} bpm: sdnn {measured_sdnn} vs {sdnn}"
                );
            }
        }
    }

    #[test]
    fn r_peak_in_truth_is_the_local_maximum_of_a_clean_signal() {
        let fs = 500.0;
        let (ecg, truth) = SynthConfig::new(SampleRate::hz(fs), 5)
            .white_noise_mv(0.0)
            .pvc_probability(0.1)
            .generate_mv(60.0)
            .unwrap();
        assert!(truth.beats.len() > 50);
        for b in &truth.beats {
            let i = b.r_peak as usize;
            let lo = i.saturating_sub(25);
            let hi = (i + 25).min(ecg.len() - 1);
            let max = ecg[lo..=hi].iter().cloned().fold(f32::MIN, f32::max);
            assert_eq!(ecg[i], max, "beat at {i} ({:?}) is not the peak", b.kind);
            assert!(ecg[i] > 0.8, "R wave at {i} is {} mV", ecg[i]);
        }
    }

    #[test]
    fn pvcs_are_premature_with_compensatory_pause() {
        let fs = 250.0;
        let (_, truth) = SynthConfig::new(SampleRate::hz(fs), 11)
            .sdnn_ms(0.0)
            .heart_rate_bpm(60.0)
            .pvc_probability(0.15)
            .generate_mv(300.0)
            .unwrap();
        let mut seen = 0;
        for w in truth.beats.windows(3) {
            if w[1].kind == BeatKind::Ventricular && w[0].kind == BeatKind::Normal {
                let coupling = (w[1].r_peak - w[0].r_peak) as f64 / fs;
                let around = (w[2].r_peak - w[0].r_peak) as f64 / fs;
                assert!(coupling < 0.7, "coupling {coupling}");
                assert!((around - 2.0).abs() < 0.05, "compensatory {around}");
                seen += 1;
            }
        }
        assert!(seen > 20, "{seen} PVCs");
    }

    #[test]
    fn af_is_irregular_and_flutter_is_regular() {
        let fs = 250.0;
        let (_, truth) = SynthConfig::new(SampleRate::hz(fs), 4)
            .heart_rate_bpm(90.0)
            .rhythm_episode(Rhythm::AtrialFibrillation, 0.0, 200.0)
            .rhythm_episode(Rhythm::AtrialFlutter { conduction: 2 }, 200.0, 100.0)
            .generate_mv(300.0)
            .unwrap();
        let in_af: Vec<f64> = truth
            .beats
            .windows(2)
            .filter(|w| w[1].r_peak < 200 * 250)
            .map(|w| (w[1].r_peak - w[0].r_peak) as f64 / fs)
            .collect();
        let in_flutter: Vec<f64> = truth
            .beats
            .windows(2)
            .filter(|w| w[0].r_peak > 201 * 250)
            .map(|w| (w[1].r_peak - w[0].r_peak) as f64 / fs)
            .collect();
        assert!(sd(&in_af) / mean(&in_af) > 0.15);
        assert!((mean(&in_flutter) - 0.4).abs() < 0.01);
        assert!(sd(&in_flutter) < 0.01);
        assert_eq!(truth.rhythm_at(100 * 250), Rhythm::AtrialFibrillation);
        assert_eq!(truth.af_samples_in(190 * 250, 210 * 250), 10 * 250);
    }

    #[test]
    fn pause_is_exactly_the_configured_gap() {
        let fs = 250.0;
        let (_, truth) = SynthConfig::new(SampleRate::hz(fs), 8)
            .pause(30.0, 3.5)
            .pause(60.0, 8.0)
            .generate_mv(90.0)
            .unwrap();
        assert_eq!(truth.pauses.len(), 2);
        for (p, secs) in truth.pauses.iter().zip([3.5, 8.0]) {
            assert_eq!(p.after - p.before, (secs * fs) as u64);
            let i = truth
                .beats
                .iter()
                .position(|b| b.r_peak == p.before)
                .unwrap();
            assert_eq!(
                truth.beats[i + 1].r_peak,
                p.after,
                "no beat inside the pause"
            );
        }
    }

    #[test]
    fn lead_off_is_flat_or_at_the_rail_and_beats_are_unchanged() {
        let fs = 250.0;
        let base = SynthConfig::new(SampleRate::hz(fs), 2).uv_per_count(2.5);
        let (_, clean_truth) = base.clone().generate_counts(40.0).unwrap();
        let (counts, truth) = base
            .lead_off(LeadOffKind::Flat, 10.0, 5.0)
            .lead_off(LeadOffKind::Rail, 20.0, 5.0)
            .noise_burst(NoiseKind::Motion, 1.0, 30.0, 5.0)
            .generate_counts(40.0)
            .unwrap();
        assert!(counts[2500..3750].iter().all(|&c| c == 0));
        assert!(counts[5000..6250].iter().all(|&c| c == i16::MAX));
        assert_eq!(truth.beats, clean_truth.beats);
        assert_eq!(truth.artefacts.len(), 3);
        assert_eq!(
            truth.artefacts[0].label,
            Artefact::LeadOff(LeadOffKind::Flat)
        );
        assert_eq!(truth.artefact_samples_in(0, 10_000), 3 * 1250);
    }

    #[test]
    fn noise_bursts_have_the_requested_rms() {
        let fs = 500.0;
        for kind in [NoiseKind::White, NoiseKind::Muscle, NoiseKind::Motion] {
            let base = SynthConfig::new(SampleRate::hz(fs), 6).white_noise_mv(0.0);
            let (clean, _) = base.clone().generate_mv(60.0).unwrap();
            let (noisy, _) = base
                .noise_burst(kind, 0.2, 0.0, 60.0)
                .generate_mv(60.0)
                .unwrap();
            let diff: Vec<f64> = clean
                .iter()
                .zip(&noisy)
                .map(|(a, b)| f64::from(b - a))
                .collect();
            let rms = (diff.iter().map(|d| d * d).sum::<f64>() / diff.len() as f64).sqrt();
            assert!((rms - 0.2).abs() < 0.04, "{kind:?}: rms {rms}");
        }
    }

    #[test]
    fn inverted_flips_polarity() {
        let base = SynthConfig::new(SampleRate::hz(250.0), 1).white_noise_mv(0.0);
        let (up, _) = base.clone().generate_mv(5.0).unwrap();
        let (down, _) = base.inverted(true).generate_mv(5.0).unwrap();
        assert!(up.iter().zip(&down).all(|(a, b)| (a + b).abs() < 1e-6));
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let err = SynthConfig::new(SampleRate::hz(250.0), 1)
            .heart_rate_bpm(f64::NAN)
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            SynthError::OutOfRange {
                parameter: "heart_rate_bpm",
                ..
            }
        ));
        let err = SynthConfig::new(SampleRate::hz(250.0), 1)
            .pvc_probability(1.5)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "synthetic ecg parameter pvc_probability out of range: 1.5"
        );
    }
}
