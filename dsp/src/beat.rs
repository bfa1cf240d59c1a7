//! The types every stage of the ECG chain shares: the sampling rate and a detected beat.

/// Sampling rate of one ECG stream, in samples per second (UCUM `Hz`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleRate(f64);

impl SampleRate {
    /// A sampling rate in hertz.
    ///
    /// # Panics
    /// When `hz` is not finite and positive: a stream with no rate is a broken invariant.
    pub fn hz(hz: f64) -> Self {
        assert!(
            hz.is_finite() && hz > 0.0,
            "sample rate must be positive, got {hz}"
        );
        Self(hz)
    }

    /// Samples per second.
    pub fn as_hz(self) -> f64 {
        self.0
    }

    /// The number of whole samples closest to `ms` milliseconds.
    pub fn samples_in_ms(self, ms: f64) -> u32 {
        (ms * self.0 / 1000.0).round().max(0.0) as u32
    }

    /// Milliseconds spanned by `samples` samples.
    pub fn ms_of_samples(self, samples: f64) -> f64 {
        samples * 1000.0 / self.0
    }
}

/// One heartbeat found in a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    /// 0-based index of the R peak (the true extremum of the QRS), counted from the start of the stream.
    pub r_peak: u64,
    /// Samples between the R peak and the sample whose arrival let the QRS detector report the
    /// beat. [`crate::vf::GuardedQrsDetector`] may hold a beat longer, for the VF/VFL verdict.
    pub delay: u32,
    /// Not a primary detection within 250 ms of the R peak: found by search-back over an interval
    /// with a missed beat (reported after later beats may already have been reported), replayed
    /// from the detector's 2 s learning phase, or a weak beat held back until a P wave was ruled
    /// out (these two arrive in order).
    pub late: bool,
}
