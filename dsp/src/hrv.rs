//! Time-domain heart rate variability over a rolling window: SDNN, RMSSD and pNN50.
//!
//! Definitions follow the Task Force of the ESC/NASPE (Circulation 93:1043–1065, 1996): only
//! normal-to-normal (NN) intervals count (here: [`RrClass::Normal`] by Malik's rule, in usable
//! signal); successive differences are taken only between NN intervals that share a beat.
//!
//! The window (default the Task Force's 5 minutes) rolls in blocks of 30 s. Each block keeps a
//! few running sums (count, mean and squared deviations by Welford, successive-difference sums);
//! a window is the blocks combined with Chan et al.'s pairwise update, so memory is a handful of
//! numbers per block whatever the heart rate. Every summary states its coverage: the fraction of
//! the window spanned by the NN intervals it was computed from.

use crate::SampleRate;
use crate::rr::{RrClass, RrInterval};
use crate::snapshot::{Reader, SnapshotError, put_f32, put_f64, put_flag, put_u32, put_u64};

/// Blocks the window is made of (window / block).
const BLOCKS: usize = 10;
/// Length of one block.
const BLOCK_MS: f64 = 30_000.0;
/// Successive NN differences above this count towards pNN50.
const NN50_MS: f32 = 50.0;

/// HRV of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HrvSummary {
    /// First sample of the window.
    pub start: u64,
    /// First sample after the window.
    pub end: u64,
    /// NN intervals ending in the window.
    pub nn_count: u32,
    /// Standard deviation of the NN intervals, in ms (`None` under two intervals).
    pub sdnn_ms: Option<f32>,
    /// Root mean square of successive NN differences, in ms (`None` without a difference).
    pub rmssd_ms: Option<f32>,
    /// Share of successive NN differences above 50 ms, in percent (`None` without a difference).
    pub pnn50_pct: Option<f32>,
    /// Fraction (0–1) of the window's duration spanned by its NN intervals.
    pub coverage: f32,
}

/// Running sums of one block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Block {
    n: u32,
    mean_ms: f64,
    m2: f64,
    diff_sq_sum: f64,
    diff_n: u32,
    nn50_n: u32,
    nn_total_ms: f64,
}

impl Block {
    /// Chan, Golub & LeVeque's combination of two sets' means and squared deviations.
    fn merge(&mut self, other: &Self) {
        let n = self.n + other.n;
        if n == 0 {
            return;
        }
        let delta = other.mean_ms - self.mean_ms;
        let (na, nb) = (f64::from(self.n), f64::from(other.n));
        self.mean_ms += delta * nb / f64::from(n);
        self.m2 += other.m2 + delta * delta * na * nb / f64::from(n);
        self.n = n;
        self.diff_sq_sum += other.diff_sq_sum;
        self.diff_n += other.diff_n;
        self.nn50_n += other.nn50_n;
        self.nn_total_ms += other.nn_total_ms;
    }
}

/// Streaming NN intervals → rolling HRV. Fixed memory.
#[derive(Clone, Debug)]
pub struct HrvWindow {
    block_samples: u64,
    blocks: [Block; BLOCKS],
    /// Index (from stream start) of the block being filled.
    current: u64,
    /// The previous NN interval, if it ended at the beat where the next one could start.
    previous_nn: Option<(u64, f32)>,
}

impl HrvWindow {
    /// A 5-minute window rolling every 30 s, for a stream sampled at `rate`.
    pub fn new(rate: SampleRate) -> Self {
        Self {
            block_samples: u64::from(rate.samples_in_ms(BLOCK_MS)).max(1),
            blocks: [Block::default(); BLOCKS],
            current: 0,
            previous_nn: None,
        }
    }

    /// Adds a committed interval; intervals must come in order, with
    /// [`HrvWindow::advance`] called up to each interval's end first.
    pub fn push(&mut self, rr: &RrInterval) {
        if rr.class != RrClass::Normal || !rr.usable {
            self.previous_nn = None;
            return;
        }
        let block = &mut self.blocks[(self.current % BLOCKS as u64) as usize];
        let x = f64::from(rr.rr_ms);
        block.n += 1;
        let delta = x - block.mean_ms;
        block.mean_ms += delta / f64::from(block.n);
        block.m2 += delta * (x - block.mean_ms);
        block.nn_total_ms += x;
        if let Some((end, previous_ms)) = self.previous_nn
            && end == rr.start
        {
            let diff = rr.rr_ms - previous_ms;
            block.diff_sq_sum += f64::from(diff * diff);
            block.diff_n += 1;
            block.nn50_n += u32::from(diff.abs() > NN50_MS);
        }
        self.previous_nn = Some((rr.end, rr.rr_ms));
    }

    /// Closes every block that ends at or before `horizon` (a sample index up to which all
    /// intervals have been pushed), calling `on_summary` with the window ending at each.
    pub fn advance(&mut self, horizon: u64, mut on_summary: impl FnMut(HrvSummary)) {
        while (self.current + 1) * self.block_samples <= horizon {
            on_summary(self.summary());
            self.current += 1;
            self.blocks[(self.current % BLOCKS as u64) as usize] = Block::default();
        }
    }

    /// The window ending with the block being filled.
    fn summary(&self) -> HrvSummary {
        let blocks = (self.current + 1).min(BLOCKS as u64);
        let mut all = Block::default();
        for k in 0..blocks {
            all.merge(&self.blocks[((self.current - k) % BLOCKS as u64) as usize]);
        }
        let end = (self.current + 1) * self.block_samples;
        let start = end - blocks * self.block_samples;
        let window_ms = BLOCK_MS * blocks as f64;
        HrvSummary {
            start,
            end,
            nn_count: all.n,
            sdnn_ms: (all.n >= 2).then(|| (all.m2 / f64::from(all.n - 1)).sqrt() as f32),
            rmssd_ms: (all.diff_n > 0)
                .then(|| (all.diff_sq_sum / f64::from(all.diff_n)).sqrt() as f32),
            pnn50_pct: (all.diff_n > 0)
                .then(|| (100.0 * f64::from(all.nn50_n) / f64::from(all.diff_n)) as f32),
            coverage: (all.nn_total_ms / window_ms).min(1.0) as f32,
        }
    }
}

/// Checkpoint support (see [`crate::analysis::Analysis::snapshot`]).
impl HrvWindow {
    pub(crate) fn save(&self, out: &mut Vec<u8>) {
        for b in &self.blocks {
            put_u32(out, b.n);
            put_f64(out, b.mean_ms);
            put_f64(out, b.m2);
            put_f64(out, b.diff_sq_sum);
            put_u32(out, b.diff_n);
            put_u32(out, b.nn50_n);
            put_f64(out, b.nn_total_ms);
        }
        put_u64(out, self.current);
        put_flag(out, self.previous_nn.is_some());
        let (end, ms) = self.previous_nn.unwrap_or_default();
        put_u64(out, end);
        put_f32(out, ms);
    }

    pub(crate) fn load(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        for b in &mut self.blocks {
            *b = Block {
                n: r.u32()?,
                mean_ms: r.f64()?,
                m2: r.f64()?,
                diff_sq_sum: r.f64()?,
                diff_n: r.u32()?,
                nn50_n: r.u32()?,
                nn_total_ms: r.f64()?,
            };
        }
        self.current = r.u64()?;
        let present = r.flag("previous NN")?;
        let previous = (r.u64()?, r.f32()?);
        self.previous_nn = present.then_some(previous);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definitions over a plain list, to check the streaming sums against.
    fn reference(rr: &[f32]) -> (f32, f32, f32) {
        let n = rr.len() as f64;
        let mean = rr.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let sdnn = (rr
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0))
            .sqrt();
        let diffs: Vec<f64> = rr.windows(2).map(|w| f64::from(w[1] - w[0])).collect();
        let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
        let pnn50 =
            100.0 * diffs.iter().filter(|d| d.abs() > 50.0).count() as f64 / diffs.len() as f64;
        (sdnn as f32, rmssd as f32, pnn50 as f32)
    }

    #[test]
    fn rolling_sums_equal_the_definitions_over_the_last_five_minutes() {
        let rate = SampleRate::hz(1000.0);
        let mut hrv = HrvWindow::new(rate);
        let mut t = 0_u64;
        let mut series = Vec::new();
        let mut summaries = Vec::new();
        for i in 0..900 {
            // 600 s of alternating-ish RR around 800 ms.
            let rr_ms =
                800.0 + 60.0 * ((i as f32) * 0.7).sin() + if i % 7 == 0 { 40.0 } else { 0.0 };
            let end = t + rr_ms as u64;
            hrv.advance(end, |s| summaries.push(s));
            hrv.push(&RrInterval {
                start: t,
                end,
                rr_ms: rr_ms.trunc(),
                class: RrClass::Normal,
                usable: true,
            });
            series.push((end, rr_ms.trunc()));
            t = end;
        }
        hrv.advance(t + 1, |s| summaries.push(s));
        let last = summaries.last().copied().unwrap();
        assert_eq!(last.end - last.start, 300_000);
        let in_window: Vec<f32> = series
            .iter()
            .filter(|(e, _)| (last.start..last.end).contains(e))
            .map(|&(_, x)| x)
            .collect();
        // The first interval of the window has no predecessor inside it; its difference was
        // counted in the block it ended in, so compare differences over the window's intervals
        // plus the one before.
        let first = series.iter().position(|(e, _)| *e >= last.start).unwrap();
        let with_previous: Vec<f32> = series[first - 1..first + in_window.len()]
            .iter()
            .map(|&(_, x)| x)
            .collect();
        let (sdnn, _, _) = reference(&in_window);
        let (_, rmssd, pnn50) = reference(&with_previous);
        assert_eq!(last.nn_count as usize, in_window.len());
        approx_eq(last.sdnn_ms.unwrap(), sdnn, 1e-3);
        approx_eq(last.rmssd_ms.unwrap(), rmssd, 1e-3);
        approx_eq(last.pnn50_pct.unwrap(), pnn50, 1e-3);
        assert!(last.coverage > 0.99, "coverage {}", last.coverage);
    }

    fn approx_eq(a: f32, b: f32, rel: f32) {
        assert!((a - b).abs() <= rel * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn deviant_intervals_break_successive_differences_and_lower_coverage() {
        let rate = SampleRate::hz(1000.0);
        let mut hrv = HrvWindow::new(rate);
        let mut t = 0;
        for i in 0..40 {
            let class = if i % 2 == 0 {
                RrClass::Normal
            } else {
                RrClass::Deviant
            };
            hrv.push(&RrInterval {
                start: t,
                end: t + 700,
                rr_ms: 700.0,
                class,
                usable: true,
            });
            t += 700;
        }
        let mut summary = None;
        hrv.advance(30_000, |s| summary = Some(s));
        let summary = summary.unwrap();
        assert_eq!(summary.nn_count, 20);
        assert_eq!(summary.rmssd_ms, None, "no two NN intervals share a beat");
        assert!((summary.coverage - 20.0 * 700.0 / 30_000.0).abs() < 1e-4);
    }
}
