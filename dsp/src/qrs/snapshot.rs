//! A byte encoding of the detector's state, so a server can checkpoint a stream and resume it
//! elsewhere with exactly the beats an uninterrupted detector would have reported.
//!
//! Layout (all little-endian): magic `MQRS`, format version (u8, currently 1), sampling rate
//! (f64, Hz), then every state field in declaration order: filter states as f64, histories as
//! their slot values (f32) with the next sample number (u64) and next slot (u32), options as a
//! 0/1 byte before their value. Buffer lengths are not stored: they follow from the rate, and a
//! snapshot whose contents do not fit them is rejected.

use super::filters::{Biquad, History, MovingAverage};
use super::{CANDIDATES, Peak, Peaks, QrsDetector, RR_HISTORY};
use crate::SampleRate;
pub use crate::snapshot::SnapshotError;
use crate::snapshot::{Reader, put_f64, put_u64};

const MAGIC: &[u8; 4] = b"MQRS";
const VERSION: u8 = 1;
/// Largest sample index a snapshot may hold: 2^53 samples is half a million years at 500 Hz.
const MAX_INDEX: u64 = 1 << 53;

impl QrsDetector {
    /// Appends the detector's whole state to `out`.
    ///
    /// Layout (little-endian): magic `MQRS`, format version (u8, currently 1), sampling rate
    /// (f64, Hz), then every state field in declaration order. Buffer lengths are not stored:
    /// they follow from the rate. [`restore`](Self::restore) reads it back.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_f64(out, self.rate.as_hz());
        for filter in [&self.high_pass, &self.low_pass] {
            filter.state().iter().for_each(|&v| put_f64(out, v));
        }
        for history in [&self.band, &self.raw, &self.slope] {
            let (values, next, head) = history.state();
            values
                .iter()
                .for_each(|&v| out.extend_from_slice(&v.to_le_bytes()));
            put_u64(out, next);
            put_u64(out, head as u64);
        }
        let (window, pos, sum) = self.integrator.state();
        window.iter().for_each(|&v| put_f64(out, v));
        put_u64(out, pos as u64);
        put_f64(out, sum);
        put_u64(out, self.next_index);
        out.extend_from_slice(&self.last_finite.to_le_bytes());
        out.push(u8::from(self.rising.is_some()));
        let (top_index, top) = self.rising.unwrap_or_default();
        put_u64(out, top_index);
        put_f64(out, top);
        for value in [
            self.previous_energy,
            self.learning_max,
            self.learning_sum,
            self.signal_level,
            self.noise_level,
        ] {
            put_f64(out, value);
        }
        put_peak_option(out, self.last_beat);
        self.rr.iter().for_each(|&v| put_f64(out, v));
        put_u64(out, self.rr_len as u64);
        put_f64(out, self.mean_rr);
        put_f64(out, self.undecayed_level);
        put_peak_option(out, self.pending);
        put_u64(out, self.candidates.len as u64);
        self.candidates
            .items
            .iter()
            .for_each(|&peak| put_peak(out, peak));
    }

    /// A detector in the state `bytes` (from [`snapshot`](Self::snapshot)) describe.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let hz = r.f64()?;
        if !(hz.is_finite() && hz > 0.0) {
            return Err(SnapshotError::BadSampleRate(hz));
        }
        let mut detector = Self::new(SampleRate::hz(hz));
        read_biquad(&mut r, &mut detector.high_pass)?;
        read_biquad(&mut r, &mut detector.low_pass)?;
        read_history(&mut r, &mut detector.band, "band history")?;
        read_history(&mut r, &mut detector.raw, "raw history")?;
        read_history(&mut r, &mut detector.slope, "slope history")?;
        read_integrator(&mut r, &mut detector.integrator)?;
        detector.next_index = r.u64()?;
        detector.last_finite = r.f32()?;
        let rising = r.flag("rising")?;
        let top = (r.u64()?, r.f64()?);
        detector.rising = rising.then_some(top);
        detector.previous_energy = r.f64()?;
        detector.learning_max = r.f64()?;
        detector.learning_sum = r.f64()?;
        detector.signal_level = r.f64()?;
        detector.noise_level = r.f64()?;
        detector.last_beat = r.peak_option("last beat")?;
        for slot in &mut detector.rr {
            *slot = r.f64()?;
        }
        detector.rr_len = r.len_at_most(RR_HISTORY, "rr length")?;
        detector.mean_rr = r.f64()?;
        detector.undecayed_level = r.f64()?;
        detector.pending = r.peak_option("pending")?;
        let len = r.len_at_most(CANDIDATES, "candidate count")?;
        let mut candidates = Peaks::default();
        for slot in &mut candidates.items {
            *slot = r.peak()?;
        }
        candidates.len = len;
        detector.candidates = candidates;
        r.finish()?;
        check_indices(&detector)?;
        Ok(detector)
    }
}

/// Every sample index in the state lies in the stream so far, so index arithmetic cannot overflow.
fn check_indices(detector: &QrsDetector) -> Result<(), SnapshotError> {
    let now = detector.next_index;
    if now > MAX_INDEX {
        return Err(SnapshotError::OutOfRange("sample index"));
    }
    for history in [&detector.band, &detector.raw, &detector.slope] {
        if history.state().1 != now {
            return Err(SnapshotError::OutOfRange("history position"));
        }
    }
    let peaks = detector
        .last_beat
        .iter()
        .chain(detector.pending.iter())
        .chain(detector.candidates.as_slice());
    let rising = detector.rising.map(|(index, _)| index);
    if peaks
        .flat_map(|peak| [peak.energy_index, peak.r_peak])
        .chain(rising)
        .any(|index| index > now)
    {
        return Err(SnapshotError::OutOfRange("peak index"));
    }
    Ok(())
}

fn put_peak(out: &mut Vec<u8>, peak: Peak) {
    put_u64(out, peak.energy_index);
    put_f64(out, peak.energy);
    put_u64(out, peak.r_peak);
    out.extend_from_slice(&peak.slope.to_le_bytes());
}

fn put_peak_option(out: &mut Vec<u8>, peak: Option<Peak>) {
    out.push(u8::from(peak.is_some()));
    put_peak(out, peak.unwrap_or_default());
}

fn read_biquad(r: &mut Reader<'_>, filter: &mut Biquad) -> Result<(), SnapshotError> {
    filter.set_state([r.f64()?, r.f64()?, r.f64()?, r.f64()?]);
    Ok(())
}

fn read_history(
    r: &mut Reader<'_>,
    history: &mut History,
    what: &'static str,
) -> Result<(), SnapshotError> {
    let len = history.state().0.len();
    let values = (0..len).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
    let next = r.u64()?;
    let head = usize::try_from(r.u64()?).map_err(|_| SnapshotError::OutOfRange(what))?;
    history
        .set_state(&values, next, head)
        .ok_or(SnapshotError::OutOfRange(what))
}

fn read_integrator(
    r: &mut Reader<'_>,
    integrator: &mut MovingAverage,
) -> Result<(), SnapshotError> {
    let len = integrator.state().0.len();
    let window = (0..len).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
    let pos =
        usize::try_from(r.u64()?).map_err(|_| SnapshotError::OutOfRange("integrator slot"))?;
    let sum = r.f64()?;
    integrator
        .set_state(&window, pos, sum)
        .ok_or(SnapshotError::OutOfRange("integrator slot"))
}

/// The detector's own field type.
impl Reader<'_> {
    fn peak(&mut self) -> Result<Peak, SnapshotError> {
        Ok(Peak {
            energy_index: self.u64()?,
            energy: self.f64()?,
            r_peak: self.u64()?,
            slope: self.f32()?,
        })
    }

    fn peak_option(&mut self, what: &'static str) -> Result<Option<Peak>, SnapshotError> {
        let present = self.flag(what)?;
        let peak = self.peak()?;
        Ok(present.then_some(peak))
    }
}
