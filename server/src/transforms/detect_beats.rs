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
