//! The small causal filters the detector is built from, each with its state inline.

use std::f64::consts::PI;

/// A second-order IIR section (RBJ audio-EQ cookbook), direct form I.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    /// Butterworth (Q = 1/√2) low-pass with corner `corner_hz` at `rate_hz`.
    pub(crate) fn low_pass(corner_hz: f64, rate_hz: f64) -> Self {
        let (cos, alpha) = Self::angles(corner_hz, rate_hz);
        Self::normalised(
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        )
    }

    /// Butterworth (Q = 1/√2) high-pass with corner `corner_hz` at `rate_hz`.
    pub(crate) fn high_pass(corner_hz: f64, rate_hz: f64) -> Self {
        let (cos, alpha) = Self::angles(corner_hz, rate_hz);
        Self::normalised(
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        )
    }

    fn angles(corner_hz: f64, rate_hz: f64) -> (f64, f64) {
        // Keep the corner below Nyquist so a low sampling rate still gives a stable filter.
        let w0 = 2.0 * PI * corner_hz.min(0.45 * rate_hz) / rate_hz;
        (w0.cos(), w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2))
    }

    fn normalised(b: [f64; 3], a: [f64; 3]) -> Self {
        Self {
            b: b.map(|c| c / a[0]),
            a: [a[1] / a[0], a[2] / a[0]],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    /// Filters one sample.
    #[inline]
    pub(crate) fn step(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }

    /// Sets the state as if `x` had been the input forever (no start-up transient).
    pub(crate) fn settle(&mut self, x: f64) {
        let dc_gain = (self.b[0] + self.b[1] + self.b[2]) / (1.0 + self.a[0] + self.a[1]);
        self.x = [x; 2];
        self.y = [x * dc_gain; 2];
    }

    /// Clears the state.
    pub(crate) fn clear(&mut self) {
        self.x = [0.0; 2];
        self.y = [0.0; 2];
    }

    /// The state (last two inputs, last two outputs), for snapshots.
    pub(crate) fn state(&self) -> [f64; 4] {
        [self.x[0], self.x[1], self.y[0], self.y[1]]
    }

    /// Restores a state taken with [`Self::state`].
    pub(crate) fn set_state(&mut self, state: [f64; 4]) {
        self.x = [state[0], state[1]];
        self.y = [state[2], state[3]];
    }

    /// Complex frequency response at `hz`, as (re, im).
    fn response(&self, hz: f64, rate_hz: f64) -> (f64, f64) {
        let w = 2.0 * PI * hz / rate_hz;
        let z1 = (w.cos(), -w.sin());
        let z2 = ((2.0 * w).cos(), -(2.0 * w).sin());
        let num = (
            self.b[0] + self.b[1] * z1.0 + self.b[2] * z2.0,
            self.b[1] * z1.1 + self.b[2] * z2.1,
        );
        let den = (
            1.0 + self.a[0] * z1.0 + self.a[1] * z2.0,
            self.a[0] * z1.1 + self.a[1] * z2.1,
        );
        let norm = den.0 * den.0 + den.1 * den.1;
        (
            (num.0 * den.0 + num.1 * den.1) / norm,
            (num.1 * den.0 - num.0 * den.1) / norm,
        )
    }

    /// Group delay of a cascade of sections at `hz`, in samples.
    pub(super) fn group_delay(sections: &[Self], hz: f64, rate_hz: f64) -> f64 {
        let phase = |f: f64| -> f64 {
            sections
                .iter()
                .map(|section| {
                    let (re, im) = section.response(f, rate_hz);
                    im.atan2(re)
                })
                .sum()
        };
        let step_hz = 0.05;
        let mut delta = phase(hz + step_hz) - phase(hz - step_hz);
        // Unwrap: the phase difference over a small step is small.
        while delta > PI {
            delta -= 2.0 * PI;
        }
        while delta < -PI {
            delta += 2.0 * PI;
        }
        -delta / (2.0 * PI * 2.0 * step_hz / rate_hz)
    }
}

/// A fixed-length history of `f32` values, newest last, indexed by absolute sample number.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct History {
    values: Box<[f32]>,
    /// Absolute sample number of the next value to be pushed.
    next: u64,
    /// Slot the next value goes to (kept beside `next` so pushing needs no division).
    head: usize,
}

impl History {
    /// A history remembering the last `len` values (at least one).
    pub(super) fn new(len: usize) -> Self {
        Self {
            values: vec![0.0; len.max(1)].into_boxed_slice(),
            next: 0,
            head: 0,
        }
    }

    pub(super) fn push(&mut self, value: f32) {
        self.values[self.head] = value;
        self.head += 1;
        if self.head == self.values.len() {
            self.head = 0;
        }
        self.next += 1;
    }

    /// The value pushed as sample `index`, if it is still remembered.
    pub(super) fn get(&self, index: u64) -> Option<f32> {
        let len = self.values.len();
        let back = usize::try_from(self.next.checked_sub(index)?).ok()?;
        if back == 0 || back > len {
            return None;
        }
        let slot = if self.head >= back {
            self.head - back
        } else {
            self.head + len - back
        };
        Some(self.values[slot])
    }

    /// The remembered part of `[from, to]`, clamped, as an inclusive range.
    pub(super) fn clamp(&self, from: u64, to: u64) -> Option<(u64, u64)> {
        let oldest = self.next.saturating_sub(self.values.len() as u64);
        let newest = self.next.checked_sub(1)?;
        let (from, to) = (from.max(oldest), to.min(newest));
        (from <= to).then_some((from, to))
    }

    pub(crate) fn clear(&mut self) {
        self.values.fill(0.0);
        self.next = 0;
        self.head = 0;
    }

    /// The stored values in slot order, the next sample number and the next slot, for snapshots.
    pub(super) fn state(&self) -> (&[f32], u64, usize) {
        (&self.values, self.next, self.head)
    }

    /// Restores a state taken with [`Self::state`]; `None` when it does not fit this history.
    pub(super) fn set_state(&mut self, values: &[f32], next: u64, head: usize) -> Option<()> {
        if values.len() != self.values.len() || head >= self.values.len() {
            return None;
        }
        self.values.copy_from_slice(values);
        (self.next, self.head) = (next, head);
        Some(())
    }

    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.values)
    }
}

/// Moving average over a fixed number of samples.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct MovingAverage {
    window: Box<[f64]>,
    /// 1 / window length: a multiply per sample instead of a divide.
    scale: f64,
    pos: usize,
    sum: f64,
}

impl MovingAverage {
    pub(super) fn new(len: usize) -> Self {
        Self {
            window: vec![0.0; len.max(1)].into_boxed_slice(),
            scale: 1.0 / len.max(1) as f64,
            pos: 0,
            sum: 0.0,
        }
    }

    #[inline]
    pub(crate) fn step(&mut self, x: f64) -> f64 {
        self.sum += x - self.window[self.pos];
        self.window[self.pos] = x;
        self.pos += 1;
        if self.pos == self.window.len() {
            self.pos = 0;
            // Re-add from scratch once per window so rounding from huge past values cannot linger.
            self.sum = self.window.iter().sum();
        }
        self.sum * self.scale
    }

    pub(crate) fn clear(&mut self) {
        self.window.fill(0.0);
        self.pos = 0;
        self.sum = 0.0;
    }

    /// The window in slot order, the next slot and the running sum, for snapshots.
    pub(super) fn state(&self) -> (&[f64], usize, f64) {
        (&self.window, self.pos, self.sum)
    }

    /// Restores a state taken with [`Self::state`]; `None` when it does not fit this window.
    pub(super) fn set_state(&mut self, window: &[f64], pos: usize, sum: f64) -> Option<()> {
        if window.len() != self.window.len() || pos >= self.window.len() {
            return None;
        }
        self.window.copy_from_slice(window);
        (self.pos, self.sum) = (pos, sum);
        Some(())
    }

    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_pass_passes_dc_and_high_pass_blocks_it() {
        let (mut low, mut high) = (Biquad::low_pass(15.0, 360.0), Biquad::high_pass(5.0, 360.0));
        let (mut l, mut h) = (0.0, 0.0);
        for _ in 0..2000 {
            l = low.step(1.0);
            h = high.step(1.0);
        }
        assert!((l - 1.0).abs() < 1e-9, "{l}");
        assert!(h.abs() < 1e-9, "{h}");
    }

    #[test]
    fn settled_high_pass_starts_without_transient() {
        let mut high = Biquad::high_pass(5.0, 250.0);
        high.settle(1000.0);
        assert!(high.step(1000.0).abs() < 1e-9);
    }

    #[test]
    fn history_forgets_beyond_its_length() {
        let mut history = History::new(3);
        for v in 0..5 {
            history.push(v as f32);
        }
        assert_eq!(history.get(1), None);
        assert_eq!(history.get(2), Some(2.0));
        assert_eq!(history.get(4), Some(4.0));
        assert_eq!(history.get(5), None);
        assert_eq!(history.clamp(0, 10), Some((2, 4)));
    }

    #[test]
    fn moving_average_is_the_mean_of_the_window() {
        let mut average = MovingAverage::new(4);
        let out: Vec<f64> = [4.0, 4.0, 4.0, 4.0, 8.0]
            .into_iter()
            .map(|x| average.step(x))
            .collect();
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
