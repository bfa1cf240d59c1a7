//! Signal-quality index: one verdict per second of ECG, so that a technical problem (electrode
//! off, clipping, muscle noise) is not read as a clinical one (asystole, AF).
//!
//! Per second, from the samples in millivolts:
//! - **flat line**: peak-to-peak under 20 µV (no ECG has a silent second: even asystole shows
//!   noise and baseline movement through a connected electrode);
//! - **lead-off**: a flat line at the converter's rail, when the rail is known;
//! - **saturation**: the second's maximum or minimum held for 40 ms or more (a clipped amplifier;
//!   an R wave never stays at its peak that long);
//! - **high-frequency noise**: the robust noise level σ̂ = median |x(n) − 2x(n−1) + x(n−2)| / 1.65
//!   (the median of the second difference of white noise of σ is 1.65 σ; QRS complexes fill too
//!   little of a second to move the median) above 80 µV;
//! - **baseline drift**: the mean moving by more than 0.7 mV from the previous second, or a
//!   peak-to-peak above 6 mV (electrode motion).
//!
//! The median is taken from a 64-bin logarithmic histogram, so the state is a few hundred bytes
//! whatever the sampling rate.

use crate::SampleRate;
use crate::snapshot::{Reader, SnapshotError, put_f32, put_f64, put_flag, put_u32, put_u64};

/// Peak-to-peak below which a second is a flat line, in mV.
const FLAT_MV: f32 = 0.02;
/// A flat line within this fraction of the rail is an electrode off.
const RAIL_FRACTION: f32 = 0.98;
/// Holding an extreme this long is saturation.
const SATURATION_MS: f64 = 40.0;
/// Noise level above which a second is unusable, in mV.
const NOISE_MV: f32 = 0.08;
/// Median |second difference| of white noise per unit σ: √6 · 0.6745.
const SECOND_DIFFERENCE_MEDIAN_PER_SIGMA: f32 = 1.652;
/// Mean shift between consecutive seconds above which the baseline drifts, in mV.
const DRIFT_MV: f32 = 0.7;
/// Peak-to-peak above which a second is motion artefact, in mV.
const EXCURSION_MV: f32 = 6.0;
/// Histogram of |second difference|: quarter-octave bins from the lowest edge up (64 bins reach
/// 16 octaves, 0.5 µV to 33 mV). A bin is read straight off the float's exponent and top two
/// mantissa bits, so binning costs no logarithm per sample.
const BINS: usize = 64;
const HIST_LOW_MV: f32 = 0.0005;
/// Bits of an f32 below the exponent and two mantissa bits.
const QUARTER_OCTAVE_SHIFT: u32 = 21;

/// What is wrong with a second of signal (a set of flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QualityFlags(u8);

impl QualityFlags {
    /// Peak-to-peak under 20 µV.
    pub const FLAT: Self = Self(1);
    /// A flat line at the converter's rail: electrode off.
    pub const LEAD_OFF: Self = Self(1 << 1);
    /// The amplifier clipped.
    pub const SATURATED: Self = Self(1 << 2);
    /// High-frequency (muscle, electrical) noise above 80 µV.
    pub const HF_NOISE: Self = Self(1 << 3);
    /// Baseline moving too fast or too far (motion).
    pub const BASELINE_DRIFT: Self = Self(1 << 4);

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
}

/// The verdict on one second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecondQuality {
    /// First sample of the second.
    pub start: u64,
    /// First sample after it.
    pub end: u64,
    /// What is wrong with it.
    pub flags: QualityFlags,
    /// Estimated high-frequency noise level σ̂, in mV.
    pub noise_mv: f32,
    /// Peak-to-peak amplitude, in mV.
    pub peak_to_peak_mv: f32,
}

impl SecondQuality {
    /// Whether beats and rhythm may be trusted in this second (no flag set).
    pub fn usable(&self) -> bool {
        self.flags.is_empty()
    }
}

/// Streaming samples → one [`SecondQuality`] per second. Fixed memory.
#[derive(Clone, Debug)]
pub struct QualityMonitor {
    second: u64,
    saturation_run: u32,
    rail_mv: Option<f32>,
    position: u64,
    block_start: u64,
    count: u32,
    sum: f64,
    min: f32,
    max: f32,
    /// Longest run of identical samples at the running minimum / maximum.
    run_value: f32,
    run_len: u32,
    max_run_at_min: u32,
    max_run_at_max: u32,
    previous: [f32; 2],
    histogram: [u16; BINS],
    diffs: u32,
    previous_mean: Option<f32>,
}

impl QualityMonitor {
    /// A monitor for a stream sampled at `rate`; `rail_mv` is the converter's full scale in mV
    /// (e.g. 32 767 counts × 5 µV), when known.
    pub fn new(rate: SampleRate, rail_mv: Option<f32>) -> Self {
        Self {
            second: u64::from(rate.samples_in_ms(1000.0)).max(1),
            saturation_run: rate.samples_in_ms(SATURATION_MS).max(2),
            rail_mv,
            position: 0,
            block_start: 0,
            count: 0,
            sum: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            run_value: f32::NAN,
            run_len: 0,
            max_run_at_min: 0,
            max_run_at_max: 0,
            previous: [0.0; 2],
            histogram: [0; BINS],
            diffs: 0,
            previous_mean: None,
        }
    }

    /// Feeds samples in millivolts; calls `on_second` each time a second is complete.
    pub fn push(&mut self, samples_mv: &[f32], mut on_second: impl FnMut(SecondQuality)) {
        for &x in samples_mv {
            let x = if x.is_finite() { x } else { self.previous[0] };
            self.step(x);
            if self.count as u64 == self.second {
                on_second(self.close());
            }
        }
    }

    /// Closes the last, partial second at the end of the stream.
    pub fn finish(&mut self, mut on_second: impl FnMut(SecondQuality)) {
        if self.count > 0 {
            on_second(self.close());
        }
    }

    fn step(&mut self, x: f32) {
        if x == self.run_value {
            self.run_len += 1;
        } else {
            self.run_value = x;
            self.run_len = 1;
        }
        if x < self.min {
            self.min = x;
            self.max_run_at_min = 0;
        }
        if x > self.max {
            self.max = x;
            self.max_run_at_max = 0;
        }
        if x == self.min {
            self.max_run_at_min = self.max_run_at_min.max(self.run_len);
        }
        if x == self.max {
            self.max_run_at_max = self.max_run_at_max.max(self.run_len);
        }
        if self.position >= 2 {
            let d2 = (x - 2.0 * self.previous[0] + self.previous[1]).abs();
            self.histogram[bin(d2)] = self.histogram[bin(d2)].saturating_add(1);
            self.diffs += 1;
        }
        self.previous = [x, self.previous[0]];
        self.sum += f64::from(x);
        self.count += 1;
        self.position += 1;
    }

    fn close(&mut self) -> SecondQuality {
        let peak_to_peak_mv = self.max - self.min;
        let mean = (self.sum / f64::from(self.count)) as f32;
        let noise_mv = self.histogram_median() / SECOND_DIFFERENCE_MEDIAN_PER_SIGMA;
        let mut flags = QualityFlags::default();
        if peak_to_peak_mv < FLAT_MV {
            let at_rail = self
                .rail_mv
                .is_some_and(|rail| mean.abs() >= RAIL_FRACTION * rail);
            flags.insert(if at_rail {
                QualityFlags::LEAD_OFF
            } else {
                QualityFlags::FLAT
            });
        } else {
            if self.max_run_at_max >= self.saturation_run
                || self.max_run_at_min >= self.saturation_run
            {
                flags.insert(QualityFlags::SATURATED);
            }
            if noise_mv > NOISE_MV {
                flags.insert(QualityFlags::HF_NOISE);
            }
            let drift = self
                .previous_mean
                .is_some_and(|m| (mean - m).abs() > DRIFT_MV);
            if drift || peak_to_peak_mv > EXCURSION_MV {
                flags.insert(QualityFlags::BASELINE_DRIFT);
            }
        }
        let quality = SecondQuality {
            start: self.block_start,
            end: self.position,
            flags,
            noise_mv,
            peak_to_peak_mv,
        };
        // Drift is judged against ECG: coming back from a lead-off or clipping is not drift.
        let off = QualityFlags(
            QualityFlags::FLAT.0 | QualityFlags::LEAD_OFF.0 | QualityFlags::SATURATED.0,
        );
        self.previous_mean = (flags.0 & off.0 == 0).then_some(mean);
        self.block_start = self.position;
        self.count = 0;
        self.sum = 0.0;
        self.min = f32::INFINITY;
        self.max = f32::NEG_INFINITY;
        self.max_run_at_min = 0;
        self.max_run_at_max = 0;
        self.histogram = [0; BINS];
        self.diffs = 0;
        quality
    }

    /// The median of the second differences, at the geometric centre of its bin.
    fn histogram_median(&self) -> f32 {
        let half = self.diffs.div_ceil(2);
        let mut seen = 0_u32;
        for (i, &n) in self.histogram.iter().enumerate() {
            seen += u32::from(n);
            if seen >= half && n > 0 {
                return bin_centre(i);
            }
        }
        0.0
    }
}

/// Checkpoint support (see [`crate::analysis::Analysis::snapshot`]).
impl QualityMonitor {
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        put_u64(out, self.position);
        put_u64(out, self.block_start);
        put_u32(out, self.count);
        put_f64(out, self.sum);
        for v in [self.min, self.max, self.run_value] {
            put_f32(out, v);
        }
        for n in [self.run_len, self.max_run_at_min, self.max_run_at_max] {
            put_u32(out, n);
        }
        self.previous.iter().for_each(|&v| put_f32(out, v));
        self.histogram
            .iter()
            .for_each(|&n| out.extend_from_slice(&n.to_le_bytes()));
        put_u32(out, self.diffs);
        put_flag(out, self.previous_mean.is_some());
        put_f32(out, self.previous_mean.unwrap_or_default());
    }

    pub(crate) fn load(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.position = r.u64()?;
        self.block_start = r.u64()?;
        if self.block_start > self.position {
            return Err(SnapshotError::OutOfRange("quality block start"));
        }
        self.count = r.u32()?;
        self.sum = r.f64()?;
        self.min = r.f32()?;
        self.max = r.f32()?;
        self.run_value = r.f32()?;
        self.run_len = r.u32()?;
        self.max_run_at_min = r.u32()?;
        self.max_run_at_max = r.u32()?;
        for slot in &mut self.previous {
            *slot = r.f32()?;
        }
        for slot in &mut self.histogram {
            *slot = u16::from_le_bytes(r.array()?);
        }
        self.diffs = r.u32()?;
        let present = r.flag("previous mean")?;
        let mean = r.f32()?;
        self.previous_mean = present.then_some(mean);
        Ok(())
    }
}

fn bin(d_mv: f32) -> usize {
    let lowest = HIST_LOW_MV.to_bits() >> QUARTER_OCTAVE_SHIFT;
    // NaN and negatives cannot occur (an absolute value of finite samples); they land in bin 0.
    let code = d_mv.max(0.0).to_bits() >> QUARTER_OCTAVE_SHIFT;
    (code.saturating_sub(lowest) as usize).min(BINS - 1)
}

/// The value in the middle of bin `i` (its lower edge plus half a quarter-octave step).
fn bin_centre(i: usize) -> f32 {
    let lowest = HIST_LOW_MV.to_bits() >> QUARTER_OCTAVE_SHIFT;
    f32::from_bits(
        ((lowest + i as u32) << QUARTER_OCTAVE_SHIFT) | (1 << (QUARTER_OCTAVE_SHIFT - 1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Artefact, GroundTruth, LeadOffKind, NoiseKind, SynthConfig};

    fn seconds(rate: SampleRate, rail_mv: Option<f32>, samples: &[f32]) -> Vec<SecondQuality> {
        let mut q = QualityMonitor::new(rate, rail_mv);
        let mut out = Vec::new();
        for chunk in samples.chunks(97) {
            q.push(chunk, |s| out.push(s));
        }
        q.finish(|s| out.push(s));
        out
    }

    fn truth_artefact_at(truth: &GroundTruth, s: &SecondQuality) -> Option<Artefact> {
        truth
            .artefacts
            .iter()
            .find(|a| a.overlap(s.start, s.end) == s.end - s.start)
            .map(|a| a.label)
    }

    #[test]
    fn every_synthetic_artefact_is_flagged_and_clean_seconds_are_not() {
        for hz in [125.0, 250.0, 500.0] {
            let rate = SampleRate::hz(hz);
            let config = SynthConfig::new(rate, 12)
                .baseline_wander_mv(0.3)
                .lead_off(LeadOffKind::Flat, 20.0, 10.0)
                .lead_off(LeadOffKind::Rail, 40.0, 10.0)
                .noise_burst(NoiseKind::Muscle, 0.3, 60.0, 10.0)
                .noise_burst(NoiseKind::White, 0.3, 80.0, 10.0)
                .noise_burst(NoiseKind::Motion, 2.0, 100.0, 10.0);
            let rail_mv = f32::from(i16::MAX) * 5.0 / 1000.0;
            let (ecg, truth) = config.generate_mv(120.0).unwrap();
            let quality = seconds(rate, Some(rail_mv), &ecg);
            assert_eq!(quality.len(), 120);
            let mut motion_flagged = 0;
            for s in &quality {
                let expected = truth_artefact_at(&truth, s);
                // The second after an artefact may see the baseline come back: judged leniently.
                let second = s.end - s.start;
                let partly = truth.artefact_samples_in(s.start.saturating_sub(second), s.end) > 0;
                match expected {
                    Some(Artefact::LeadOff(LeadOffKind::Flat)) => {
                        assert_eq!(s.flags, QualityFlags::FLAT, "{hz} {s:?}")
                    }
                    Some(Artefact::LeadOff(LeadOffKind::Rail)) => {
                        assert_eq!(s.flags, QualityFlags::LEAD_OFF, "{hz} {s:?}")
                    }
                    Some(Artefact::Noise(NoiseKind::Motion)) => {
                        motion_flagged += usize::from(!s.usable())
                    }
                    Some(Artefact::Noise(_)) => {
                        assert!(s.flags.contains(QualityFlags::HF_NOISE), "{hz} {s:?}")
                    }
                    None if !partly => assert!(s.usable(), "{hz} Hz clean second flagged: {s:?}"),
                    None => {}
                }
            }
            assert!(
                motion_flagged >= 5,
                "{hz} Hz: {motion_flagged} of 10 motion seconds flagged"
            );
        }
    }

    #[test]
    fn histogram_bins_are_quarter_octaves() {
        for x in [0.001_f32, 0.0123, 0.08, 0.5, 3.7, 25.0] {
            let centre = bin_centre(bin(x));
            assert!(centre / x < 1.2 && x / centre < 1.2, "{x} -> {centre}");
        }
        assert_eq!(bin(0.0), 0);
        assert_eq!(bin(f32::INFINITY), BINS - 1);
        assert_eq!(bin(f32::NAN), 0);
    }

    #[test]
    fn clipped_signal_is_saturated() {
        let rate = SampleRate::hz(250.0);
        let (mut ecg, _) = SynthConfig::new(rate, 3)
            .r_amplitude_mv(3.0)
            .generate_mv(10.0)
            .unwrap();
        // R and T waves both rise above the clip level.
        for x in &mut ecg {
            *x = x.min(0.5);
        }
        let quality = seconds(rate, None, &ecg);
        let saturated = quality
            .iter()
            .filter(|s| s.flags.contains(QualityFlags::SATURATED))
            .count();
        assert!(saturated >= 8, "{saturated} of 10 seconds");
    }
}
