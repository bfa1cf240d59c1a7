//! Per-stream ECG analysis: chunks put back in order, QRS detection, RR and heart rate per second.
//!
//! One [`StreamAnalyzer`] per `(patient, stream_id)`, owned by one hot-path worker. Chunks that
//! arrive out of order wait in a bounded window; when the window is full the missing stretch is
//! recorded as a gap and the detector restarts after it, so no beat or RR interval spans a gap.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mimamori_dsp::SampleRate;
use mimamori_dsp::qrs::QrsDetector;

use crate::sinks::live_feed::LiveEvent;
use crate::storage::{BeatRecord, Checkpoint, DerivedBatch, EcgRecord, GapRecord, HeartRateRecord};

/// RR intervals averaged for the heart rate.
const HR_BEATS: usize = 8;
/// RR intervals older than this (in ECG time) no longer count for the heart rate.
const HR_MAX_AGE_S: f64 = 10.0;

/// What one chunk produced, beside the rows in a [`DerivedBatch`].
#[derive(Debug, Default)]
pub struct Analysed {
    pub beats: u64,
    pub gaps: u64,
    pub events: Vec<LiveEvent>,
}

/// Where the analysis of one stream stands.
#[derive(Debug)]
pub struct StreamAnalyzer {
    patient_id: String,
    stream_id: u64,
    rate: f64,
    detector: QrsDetector,
    /// Stream index of the detector's sample 0 (it restarts after a gap).
    detector_base: u64,
    /// Index of the next sample the detector expects.
    next_index: u64,
    /// A chunk's (first index, first sample time): maps stream indices to instants.
    anchor: (u64, DateTime<Utc>),
    last_beat: Option<u64>,
    recent_rr: VecDeque<(u64, f64)>,
    /// Stream index of the next whole second at which heart rate is reported.
    next_hr_index: u64,
    pending: BTreeMap<u64, EcgRecord>,
    window: usize,
    scratch: Vec<f32>,
    last_update: DateTime<Utc>,
}

impl StreamAnalyzer {
    /// A fresh analysis starting at `start_index` (0, or a checkpoint's `next_index`).
    pub fn new(first: &EcgRecord, start_index: u64, window: usize) -> Self {
        let rate = first.sample_rate_hz;
        Self {
            patient_id: first.patient_id.clone(),
            stream_id: first.stream_id,
            rate,
            detector: QrsDetector::new(SampleRate::hz(rate)),
            detector_base: start_index,
            next_index: start_index,
            anchor: (first.first_sample_index, first.first_sample_at),
            last_beat: None,
            recent_rr: VecDeque::with_capacity(HR_BEATS),
            next_hr_index: start_index.div_ceil(rate as u64) * rate as u64,
            pending: BTreeMap::new(),
            window,
            scratch: Vec::new(),
            last_update: first.received_at,
        }
    }

    /// When this stream last received a chunk.
    pub fn last_update(&self) -> DateTime<Utc> {
        self.last_update
    }

    /// Takes one chunk; analyses whatever is now contiguous.
    pub fn push(&mut self, chunk: EcgRecord, out: &mut DerivedBatch) -> Analysed {
        let mut analysed = Analysed::default();
        self.last_update = self.last_update.max(chunk.received_at);
        if chunk.first_sample_index < self.next_index {
            // Already analysed (a duplicate, or overlapping what came before).
            return analysed;
        }
        self.pending.insert(chunk.first_sample_index, chunk);
        loop {
            if let Some(chunk) = self.pending.remove(&self.next_index) {
                self.analyse(&chunk, out, &mut analysed);
                continue;
            }
            if self.pending.len() <= self.window {
                break;
            }
            // The window is full and the next chunk is still missing: record the gap.
            let Some((&resume, _)) = self.pending.iter().next() else {
                break;
            };
            out.gaps.push(GapRecord {
                patient_id: self.patient_id.clone(),
                stream_id: self.stream_id,
                from_index: self.next_index,
                to_index: resume,
                detected_at: Utc::now(),
            });
            analysed.events.push(LiveEvent::EcgGap {
                stream_id: self.stream_id,
                from_index: self.next_index,
                to_index: resume,
            });
            analysed.gaps += 1;
            self.restart_at(resume);
        }
        out.checkpoints
            .retain(|c| !(c.patient_id == self.patient_id && c.stream_id == self.stream_id));
        out.checkpoints.push(Checkpoint {
            patient_id: self.patient_id.clone(),
            stream_id: self.stream_id,
            next_index: self.next_index,
            last_beat_index: self.last_beat,
            updated_at: self.last_update,
        });
        analysed
    }

    fn restart_at(&mut self, index: u64) {
        self.detector.reset();
        self.detector_base = index;
        self.next_index = index;
        self.last_beat = None;
        self.recent_rr.clear();
        let rate = self.rate as u64;
        self.next_hr_index = index.div_ceil(rate.max(1)) * rate.max(1);
    }

    fn time_of(&self, index: u64) -> DateTime<Utc> {
        let (anchor_index, anchor_at) = self.anchor;
        let offset_s = (index as f64 - anchor_index as f64) / self.rate;
        anchor_at + Duration::microseconds((offset_s * 1e6).round() as i64)
    }

    fn analyse(&mut self, chunk: &EcgRecord, out: &mut DerivedBatch, analysed: &mut Analysed) {
        self.anchor = (chunk.first_sample_index, chunk.first_sample_at);
        let mv_per_count = (chunk.uv_per_count / 1000.0) as f32;
        self.scratch.clear();
        self.scratch
            .extend(chunk.samples.iter().map(|&s| f32::from(s) * mv_per_count));
        let mut found = Vec::new();
        let base = self.detector_base;
        self.detector.push(&self.scratch, |beat| found.push(beat));
        self.next_index = chunk.first_sample_index + chunk.samples.len() as u64;
        found.sort_by_key(|b| b.r_peak);
        for beat in found {
            let index = base + beat.r_peak;
            let rr_ms = match self.last_beat {
                Some(last) if index > last => Some((index - last) as f64 * 1000.0 / self.rate),
                Some(_) => None,
                None => None,
            };
            if self.last_beat.is_none_or(|last| index > last) {
                self.last_beat = Some(index);
                if let Some(rr) = rr_ms {
                    if self.recent_rr.len() == HR_BEATS {
                        self.recent_rr.pop_front();
                    }
                    self.recent_rr.push_back((index, rr));
                }
            }
            let at = self.time_of(index);
            out.beats.push(BeatRecord {
                patient_id: self.patient_id.clone(),
                at,
                stream_id: self.stream_id,
                sample_index: index,
                rr_ms,
                late: beat.late,
            });
            analysed.events.push(LiveEvent::Beat { at, rr_ms });
            analysed.beats += 1;
        }
        // Heart rate at each whole second of ECG now behind us.
        let rate = self.rate as u64;
        while rate > 0 && self.next_hr_index < self.next_index {
            let index = self.next_hr_index;
            self.next_hr_index += rate;
            let max_age = (HR_MAX_AGE_S * self.rate) as u64;
            let rrs: Vec<f64> = self
                .recent_rr
                .iter()
                .filter(|(at, _)| *at <= index && index - *at <= max_age)
                .map(|(_, rr)| *rr)
                .collect();
            if rrs.len() < 2 {
                continue;
            }
            let mean_rr = rrs.iter().sum::<f64>() / rrs.len() as f64;
            let bpm = 60_000.0 / mean_rr;
            let at = self.time_of(index);
            out.heart_rate.push(HeartRateRecord {
                patient_id: self.patient_id.clone(),
                at,
                bpm,
            });
            analysed.events.push(LiveEvent::HeartRate { at, bpm });
        }
        analysed.events.push(LiveEvent::Ecg {
            stream_id: chunk.stream_id,
            lead: chunk.lead.clone(),
            first_sample_index: chunk.first_sample_index,
            first_sample_at: chunk.first_sample_at,
            sample_rate_hz: chunk.sample_rate_hz,
            uv_per_count: chunk.uv_per_count,
            samples: Arc::from(chunk.samples.as_slice()),
        });
    }
}

#[cfg(test)]
mod tests {
    use mimamori_dsp::synth::SynthConfig;

    use super::*;

    const CHUNK: usize = 250;

    fn chunks(seconds: f64) -> Vec<EcgRecord> {
        let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 3)
            .heart_rate_bpm(60.0)
            .sdnn_ms(0.0)
            .generate_counts(seconds)
            .unwrap();
        let start = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        samples
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, s)| EcgRecord {
                patient_id: "p".into(),
                device_id: "d".into(),
                lead: "I".into(),
                stream_id: 1,
                first_sample_index: (i * CHUNK) as u64,
                first_sample_at: start + Duration::seconds(i as i64),
                sample_rate_hz: 250.0,
                uv_per_count: 5.0,
                lead_off: false,
                samples: s.to_vec(),
                received_at: start,
            })
            .collect()
    }

    fn run(order: &[usize], all: &[EcgRecord], window: usize) -> DerivedBatch {
        let mut analyzer = StreamAnalyzer::new(&all[0], 0, window);
        let mut out = DerivedBatch::default();
        for &i in order {
            analyzer.push(all[i].clone(), &mut out);
        }
        out
    }

    #[test]
    fn out_of_order_chunks_within_the_window_give_the_in_order_result() {
        let all = chunks(20.0);
        let in_order: Vec<usize> = (0..20).collect();
        let mut shuffled = in_order.clone();
        shuffled.swap(3, 5);
        shuffled.swap(10, 11);
        let expected = run(&in_order, &all, 4);
        let got = run(&shuffled, &all, 4);
        assert_eq!(got.beats, expected.beats);
        assert!(got.gaps.is_empty());
        assert!(
            (18..=20).contains(&expected.beats.len()),
            "{}",
            expected.beats.len()
        );
        let hr = &expected.heart_rate;
        assert!(
            hr.len() >= 10 && hr.iter().all(|h| (h.bpm - 60.0).abs() < 1.0),
            "{hr:?}"
        );
    }

    #[test]
    fn duplicates_are_ignored() {
        let all = chunks(10.0);
        let expected = run(&(0..10).collect::<Vec<_>>(), &all, 4);
        let got = run(&[0, 1, 1, 2, 0, 3, 4, 5, 6, 6, 7, 8, 9], &all, 4);
        assert_eq!(got.beats, expected.beats);
    }

    #[test]
    fn a_missing_chunk_is_recorded_as_a_gap_and_not_bridged() {
        let all = chunks(20.0);
        let order: Vec<usize> = (0..20).filter(|&i| i != 8).collect();
        let got = run(&order, &all, 2);
        assert_eq!(got.gaps.len(), 1);
        assert_eq!((got.gaps[0].from_index, got.gaps[0].to_index), (2000, 2250));
        // No RR interval spans the gap: the first beat after it has none.
        let after: Vec<&BeatRecord> = got
            .beats
            .iter()
            .filter(|b| b.sample_index >= 2250)
            .collect();
        assert!(after[0].rr_ms.is_none());
        assert!(
            got.beats
                .iter()
                .all(|b| b.rr_ms.is_none_or(|rr| (rr - 1000.0).abs() < 20.0))
        );
        assert_eq!(got.checkpoints.last().unwrap().next_index, 5000);
    }
}
