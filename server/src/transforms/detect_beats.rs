//! Per-stream ECG analysis: chunks put back in order, then the dsp rhythm chain (QRS detection,
//! RR with Malik's rule, smoothed heart rate, brady/tachy/pause/asystole events, AF over 30-s
//! windows, per-second signal quality), summarised into one [`EcgSecond`] per second of ECG.
//!
//! One [`StreamAnalyzer`] per `(patient, stream_id)`, owned by one hot-path worker. Chunks that
//! arrive out of order wait in a bounded window; when the window is full the missing stretch is
//! recorded as a gap and the chain restarts after it, so no beat or RR interval spans a gap.
//!
//! A second is reported once every beat that can fall in it has been committed by the chain's
//! RR stage (3 s of hold-back), so its longest RR and rate are final; its rhythm is the state of
//! the AF windows and asystole detection at that point (AF is decided per 30-s window, so AF
//! labels seconds from the end of the first AF window on).
//!
//! The whole state (the chain's included) can be snapshotted ([`StreamAnalyzer::snapshot`]) and
//! restored, so a restart replays the stored chunks since the snapshot and resumes exactly where
//! the analysis was, without re-learning (no burst of false beats) and without writing twice what
//! was already written.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mimamori_dsp::SampleRate;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};
use mimamori_dsp::events::{EventKind, EventThresholds};
use mimamori_dsp::quality::QualityFlags;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::alerts::engine::{EcgQuality, EcgSecond, Rhythm};
use crate::sinks::live_feed::LiveEvent;
use crate::storage::{
    AnalysisState, BeatRecord, Checkpoint, DerivedBatch, EcgRecord, EpisodeKind, EpisodeRecord,
    GapRecord, HeartRateRecord, QualityRunRecord,
};

/// A heart rate older than this (in ECG time) is no longer reported.
const HR_MAX_AGE_S: u64 = 10;
/// ECG time between two snapshots of a stream's state (and so the most a restart replays).
pub const SNAPSHOT_EVERY_S: u64 = 30;
/// Seconds judged but not yet reported: the RR hold-back (3 s) plus the second in progress.
const PENDING_SECONDS: usize = 8;
/// Version of the server part of a snapshot.
const STATE_VERSION: u8 = 1;

/// What one chunk produced, beside the rows in a [`DerivedBatch`].
#[derive(Debug, Default)]
pub struct Analysed {
    pub beats: u64,
    pub gaps: u64,
    pub events: Vec<LiveEvent>,
    /// Seconds of ECG now final, in order, for the alert engine.
    pub seconds: Vec<(DateTime<Utc>, EcgSecond)>,
}

/// Why a stored analysis state cannot be resumed.
#[derive(Debug, Error)]
pub enum RestoreError {
    #[error("analysis state header: {0}")]
    Header(String),
    #[error("analysis chain state: {0}")]
    Chain(#[from] mimamori_dsp::snapshot::SnapshotError),
}

/// A second judged by the quality index, waiting for its beats to be committed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct PendingSecond {
    /// Chain index of its first sample.
    start: u64,
    quality: EcgQuality,
    /// Smoothed rate at the last usable beat in it.
    bpm: Option<f32>,
    /// Longest RR ending in it.
    longest_rr_ms: Option<f32>,
}

/// The server's part of the state: everything but the chain and the reorder window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Summary {
    /// Stream index of the chain's sample 0 (the chain restarts after a gap).
    base: u64,
    /// Stream index of the next sample the chain expects.
    next_index: u64,
    last_beat: Option<u64>,
    /// Samples of the second in progress came from a chunk flagged lead-off.
    lead_off_now: bool,
    pending: VecDeque<PendingSecond>,
    /// (chain index of the second, bpm) of the last rate seen.
    last_rate: Option<(u64, f32)>,
    /// The last asystole: (start, end once over), chain indices.
    asystole: Option<(u64, Option<u64>)>,
    /// The last ventricular flutter/fibrillation episode: (start, end once over), chain indices.
    #[serde(default)]
    vf: Option<(u64, Option<u64>)>,
    /// Verdict of the last AF window (`None`: none decided or not assessable).
    af: Option<bool>,
    /// The AF episode in progress: (first window start, last AF window end, usable so far).
    af_episode: Option<(u64, u64)>,
    /// The quality run in progress: (start, end, quality), chain indices.
    run: Option<(u64, u64, EcgQuality)>,
}

/// Where the analysis of one stream stands.
#[derive(Debug)]
pub struct StreamAnalyzer {
    patient_id: String,
    stream_id: u64,
    rate: f64,
    second: u64,
    asystole_samples: u64,
    analysis: Analysis,
    summary: Summary,
    /// A chunk's (first index, first sample time): maps stream indices to instants.
    anchor: (u64, DateTime<Utc>),
    pending_chunks: BTreeMap<u64, EcgRecord>,
    window: usize,
    /// Outputs of chunks ending at or before this index were written before (a replay).
    replay_until: u64,
    /// Stream index of the last snapshot.
    snapshot_index: Option<u64>,
    out: AnalysisOutput,
    scratch: Vec<f32>,
    last_mv: f32,
    last_update: DateTime<Utc>,
}

fn config() -> AnalysisConfig {
    AnalysisConfig::default()
}

impl StreamAnalyzer {
    /// A fresh analysis starting at `start_index` (a stream's first chunk, or a checkpoint without
    /// state).
    pub fn new(first: &EcgRecord, start_index: u64, window: usize) -> Self {
        let rate = first.sample_rate_hz;
        let analysis = Analysis::new(SampleRate::hz(rate), config());
        Self::with_chain(first, analysis, fresh_summary(start_index), window)
    }

    /// Resumes from a checkpoint's state; chunks ending at or before `replay_until` (the
    /// checkpoint's `next_index`) are analysed again without writing or reporting anything.
    pub fn restore(
        first: &EcgRecord,
        state: &AnalysisState,
        replay_until: u64,
        window: usize,
    ) -> Result<Self, RestoreError> {
        let bytes = &state.bytes;
        let header = |what: &str| RestoreError::Header(what.to_owned());
        let (&version, rest) = bytes.split_first().ok_or_else(|| header("empty"))?;
        if version != STATE_VERSION {
            return Err(header(&format!("version {version}")));
        }
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| header("truncated"))?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let json = rest.get(4..4 + len).ok_or_else(|| header("truncated"))?;
        let summary: Summary =
            serde_json::from_slice(json).map_err(|e| RestoreError::Header(e.to_string()))?;
        let analysis = Analysis::restore(&rest[4 + len..])?;
        if summary.next_index != state.index
            || summary.next_index < summary.base
            || summary.next_index - summary.base != analysis.position()
            || summary.pending.len() > PENDING_SECONDS
        {
            return Err(header("inconsistent positions"));
        }
        let mut analyzer = Self::with_chain(first, analysis, summary, window);
        analyzer.replay_until = replay_until;
        analyzer.snapshot_index = Some(state.index);
        Ok(analyzer)
    }

    fn with_chain(first: &EcgRecord, analysis: Analysis, summary: Summary, window: usize) -> Self {
        let rate = first.sample_rate_hz;
        let thresholds = EventThresholds::default();
        let mut pending = summary.pending.clone();
        pending.reserve(PENDING_SECONDS.saturating_sub(pending.len()));
        Self {
            patient_id: first.patient_id.clone(),
            stream_id: first.stream_id,
            rate,
            second: (rate.round() as u64).max(1),
            asystole_samples: (f64::from(thresholds.asystole_ms) * rate / 1000.0) as u64,
            analysis,
            summary: Summary { pending, ..summary },
            anchor: (first.first_sample_index, first.first_sample_at),
            pending_chunks: BTreeMap::new(),
            window,
            replay_until: 0,
            snapshot_index: None,
            out: AnalysisOutput::with_capacity(),
            scratch: Vec::with_capacity(rate.round() as usize),
            last_mv: 0.0,
            last_update: first.received_at,
        }
    }

    /// When this stream last received a chunk.
    pub fn last_update(&self) -> DateTime<Utc> {
        self.last_update
    }

    /// Index of the next sample the analysis expects.
    pub fn next_index(&self) -> u64 {
        self.summary.next_index
    }

    /// The whole state (server summary and dsp chain) as bytes, with where it stands.
    pub fn snapshot(&mut self) -> AnalysisState {
        let json = serde_json::to_vec(&self.summary).expect("the summary always serialises");
        let mut bytes = Vec::with_capacity(8 * 1024);
        bytes.push(STATE_VERSION);
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        self.analysis.snapshot(&mut bytes);
        let index = self.summary.next_index;
        self.snapshot_index = Some(index);
        AnalysisState {
            index,
            at: self.time_of(index),
            bytes,
        }
    }

    /// Takes one chunk; analyses whatever is now contiguous. `live` is false for chunks re-read
    /// from storage, which are not published to the live feed.
    pub fn push(&mut self, chunk: EcgRecord, live: bool, out: &mut DerivedBatch) -> Analysed {
        let mut analysed = Analysed::default();
        self.last_update = self.last_update.max(chunk.received_at);
        if chunk.first_sample_index < self.summary.next_index {
            // Already analysed (a duplicate, or overlapping what came before).
            return analysed;
        }
        let mut new_state = self.snapshot_index.is_none();
        self.pending_chunks.insert(chunk.first_sample_index, chunk);
        loop {
            if let Some(chunk) = self.pending_chunks.remove(&self.summary.next_index) {
                let replayed =
                    chunk.first_sample_index + chunk.samples.len() as u64 <= self.replay_until;
                if replayed {
                    // Written before the restart: rebuild the state, discard the output.
                    self.analyse(
                        &chunk,
                        &mut DerivedBatch::default(),
                        &mut Analysed::default(),
                    );
                } else {
                    self.analyse(&chunk, out, &mut analysed);
                    if live {
                        analysed.events.push(ecg_event(&chunk));
                    }
                }
                continue;
            }
            if self.pending_chunks.len() <= self.window {
                break;
            }
            // The window is full and the next chunk is still missing: record the gap.
            let Some((&resume, _)) = self.pending_chunks.iter().next() else {
                break;
            };
            let from = self.summary.next_index;
            out.gaps.push(GapRecord {
                patient_id: self.patient_id.clone(),
                stream_id: self.stream_id,
                from_index: from,
                to_index: resume,
                detected_at: Utc::now(),
            });
            analysed.events.push(LiveEvent::EcgGap {
                stream_id: self.stream_id,
                from_index: from,
                to_index: resume,
            });
            analysed.gaps += 1;
            self.restart_at(resume, out, &mut analysed);
            new_state = true;
        }
        let due = self
            .snapshot_index
            .is_none_or(|at| self.summary.next_index >= at + SNAPSHOT_EVERY_S * self.second);
        let state = (new_state || due).then(|| self.snapshot());
        self.checkpoint(state, out);
        analysed
    }

    /// Records where the analysis stands in `out` (replacing this stream's previous entry), with
    /// a fresh snapshot when `state` is given.
    pub fn checkpoint(&self, state: Option<AnalysisState>, out: &mut DerivedBatch) {
        let mut state = state;
        if let Some(at) = out
            .checkpoints
            .iter()
            .position(|c| c.patient_id == self.patient_id && c.stream_id == self.stream_id)
        {
            // A snapshot not yet written must not be lost by a later checkpoint without one.
            let previous = out.checkpoints.swap_remove(at);
            state = state.or(previous.state);
        }
        out.checkpoints.push(Checkpoint {
            patient_id: self.patient_id.clone(),
            stream_id: self.stream_id,
            next_index: self.summary.next_index,
            last_beat_index: self.summary.last_beat,
            updated_at: self.last_update,
            state,
        });
    }

    /// Ends the segment before a gap: commits what the chain holds, reports every second, and
    /// starts a fresh chain at `index`.
    fn restart_at(&mut self, index: u64, out: &mut DerivedBatch, analysed: &mut Analysed) {
        self.out.clear();
        self.analysis.finish(&mut self.out);
        self.take_output(out, analysed);
        self.emit_seconds(u64::MAX, out, analysed);
        self.close_af(out);
        self.analysis = Analysis::new(SampleRate::hz(self.rate), config());
        self.summary = Summary {
            last_beat: self.summary.last_beat,
            ..fresh_summary(index)
        };
    }

    fn time_of(&self, index: u64) -> DateTime<Utc> {
        let (anchor_index, anchor_at) = self.anchor;
        let offset_s = (index as f64 - anchor_index as f64) / self.rate;
        anchor_at + Duration::microseconds((offset_s * 1e6).round() as i64)
    }

    /// Time of a chain index.
    fn at(&self, chain_index: u64) -> DateTime<Utc> {
        self.time_of(self.summary.base + chain_index)
    }

    fn analyse(&mut self, chunk: &EcgRecord, out: &mut DerivedBatch, analysed: &mut Analysed) {
        self.anchor = (chunk.first_sample_index, chunk.first_sample_at);
        let mv_per_count = (chunk.uv_per_count / 1000.0) as f32;
        let mut rest = chunk.samples.as_slice();
        while !rest.is_empty() {
            // Never cross a second boundary in one push: each push completes at most one second,
            // so the lead-off flag of the second in progress is a single bit.
            let position = self.analysis.position();
            let room = (self.second - position % self.second) as usize;
            let (part, tail) = rest.split_at(room.min(rest.len()));
            rest = tail;
            self.scratch.clear();
            if chunk.lead_off {
                // No ECG while the electrodes are off: the chain sees a flat line at the last
                // value, so it finds no beats and judges the seconds unusable.
                self.scratch.resize(part.len(), self.last_mv);
                self.summary.lead_off_now = true;
            } else {
                self.scratch
                    .extend(part.iter().map(|&s| f32::from(s) * mv_per_count));
                self.last_mv = self.scratch.last().copied().unwrap_or(self.last_mv);
            }
            self.out.clear();
            self.analysis.push(&self.scratch, &mut self.out);
            self.take_output(out, analysed);
            let horizon = self
                .analysis
                .position()
                .saturating_sub(self.hold_back_samples());
            self.emit_seconds(horizon, out, analysed);
        }
        self.summary.next_index = chunk.first_sample_index + chunk.samples.len() as u64;
    }

    fn hold_back_samples(&self) -> u64 {
        (mimamori_dsp::rr::HOLD_BACK_MS * self.rate / 1000.0).round() as u64
    }

    /// Moves the chain's output into rows, live events and the pending seconds.
    fn take_output(&mut self, out: &mut DerivedBatch, analysed: &mut Analysed) {
        let output = std::mem::take(&mut self.out);
        for q in &output.quality {
            let lead_off = std::mem::take(&mut self.summary.lead_off_now);
            let quality = if lead_off
                || q.flags.contains(QualityFlags::LEAD_OFF)
                || q.flags.contains(QualityFlags::FLAT)
            {
                EcgQuality::LeadOff
            } else if q.usable() {
                EcgQuality::Usable
            } else {
                EcgQuality::Poor
            };
            self.summary.pending.push_back(PendingSecond {
                start: q.start,
                quality,
                bpm: None,
                longest_rr_ms: None,
            });
        }
        let mut rates = output.heart_rates.iter().peekable();
        for beat in &output.beats {
            let index = self.summary.base + beat.r_peak;
            let at = self.at(beat.r_peak);
            let rr_ms = beat.rr.map(|rr| f64::from(rr.rr_ms));
            self.summary.last_beat = Some(index);
            let second_start = beat.r_peak - beat.r_peak % self.second;
            let rate = rates.next_if(|hr| hr.at == beat.r_peak);
            if let Some(pending) = self
                .summary
                .pending
                .iter_mut()
                .find(|s| s.start == second_start)
            {
                if let Some(rr) = beat.rr {
                    pending.longest_rr_ms =
                        Some(pending.longest_rr_ms.unwrap_or(0.0).max(rr.rr_ms));
                }
                if let Some(rate) = rate {
                    pending.bpm = Some(rate.smoothed_bpm);
                }
            }
            out.beats.push(BeatRecord {
                patient_id: self.patient_id.clone(),
                at,
                stream_id: self.stream_id,
                sample_index: index,
                rr_ms,
                // The chain commits beats in R-peak order after its hold-back: none is late.
                late: false,
            });
            analysed.events.push(LiveEvent::Beat { at, rr_ms });
            analysed.beats += 1;
        }
        for event in &output.events {
            let e = event.event;
            let kind = match e.kind {
                EventKind::Bradycardia => EpisodeKind::Bradycardia,
                EventKind::Tachycardia => EpisodeKind::Tachycardia,
                EventKind::Pause2s => EpisodeKind::Pause2s,
                EventKind::Pause3s => EpisodeKind::Pause3s,
                EventKind::Asystole => {
                    self.summary.asystole = Some((e.start, e.end));
                    EpisodeKind::Asystole
                }
                EventKind::VentricularFibrillation => {
                    self.summary.vf = Some((e.start, e.end));
                    EpisodeKind::VentricularFibrillation
                }
            };
            let rate = matches!(kind, EpisodeKind::Bradycardia | EpisodeKind::Tachycardia);
            out.episodes.push(EpisodeRecord {
                patient_id: self.patient_id.clone(),
                stream_id: self.stream_id,
                kind,
                start_index: self.summary.base + e.start,
                started_at: self.at(e.start),
                ended_at: e.end.map(|end| self.at(end)),
                signal_usable: event.signal_usable,
                max_rr_ms: Some(f64::from(e.evidence.max_rr_ms)).filter(|ms| *ms > 0.0),
                extreme_per_min: rate.then_some(f64::from(e.evidence.extreme_bpm)),
            });
        }
        for window in &output.af_windows {
            let af = window.assessable && window.af;
            self.summary.af = window.assessable.then_some(window.af);
            if af {
                let start = self.summary.af_episode.map_or(window.start, |(s, _)| s);
                self.summary.af_episode = Some((start, window.end));
                self.push_af(start, None, out);
            } else {
                self.close_af(out);
            }
        }
        self.out = output;
    }

    fn push_af(&self, start: u64, end: Option<u64>, out: &mut DerivedBatch) {
        out.episodes.push(EpisodeRecord {
            patient_id: self.patient_id.clone(),
            stream_id: self.stream_id,
            kind: EpisodeKind::Af,
            start_index: self.summary.base + start,
            started_at: self.at(start),
            ended_at: end.map(|end| self.at(end)),
            // AF windows count only intervals in usable signal.
            signal_usable: true,
            max_rr_ms: None,
            extreme_per_min: None,
        });
    }

    fn close_af(&mut self, out: &mut DerivedBatch) {
        if let Some((start, end)) = self.summary.af_episode.take() {
            self.push_af(start, Some(end), out);
        }
    }

    /// Reports every pending second ending at or before `horizon` (chain index).
    fn emit_seconds(&mut self, horizon: u64, out: &mut DerivedBatch, analysed: &mut Analysed) {
        while let Some(&second) = self.summary.pending.front() {
            let end = second.start + self.second;
            if end > horizon {
                break;
            }
            self.summary.pending.pop_front();
            let asystole = self.summary.asystole.is_some_and(|(start, stop)| {
                end > start + self.asystole_samples && stop.is_none_or(|stop| end <= stop)
            });
            if let Some(bpm) = second.bpm {
                self.summary.last_rate = Some((second.start, bpm));
            }
            let bpm = self
                .summary
                .last_rate
                .filter(|(at, _)| second.start - at <= HR_MAX_AGE_S * self.second)
                .filter(|_| !asystole && second.quality == EcgQuality::Usable)
                .map(|(_, bpm)| f64::from(bpm));
            let vf = self.summary.vf.is_some_and(|(start, stop)| {
                end > start && stop.is_none_or(|stop| second.start < stop)
            });
            let rhythm = if vf {
                Rhythm::VentricularFibrillation
            } else if asystole {
                Rhythm::Asystole
            } else {
                match self.summary.af {
                    Some(true) => Rhythm::Af,
                    Some(false) => Rhythm::Regular,
                    None => Rhythm::Unknown,
                }
            };
            let at = self.at(second.start);
            let ecg_second = EcgSecond {
                quality: second.quality,
                heart_rate_per_min: bpm,
                longest_rr_ms: second.longest_rr_ms.map(|ms| ms.round() as u32),
                rhythm,
            };
            if let Some(bpm) = bpm {
                out.heart_rate.push(HeartRateRecord {
                    patient_id: self.patient_id.clone(),
                    at,
                    bpm,
                });
                analysed.events.push(LiveEvent::HeartRate { at, bpm });
            }
            self.extend_run(second.start, end, second.quality, out);
            analysed.seconds.push((at, ecg_second));
        }
    }

    fn extend_run(&mut self, start: u64, end: u64, quality: EcgQuality, out: &mut DerivedBatch) {
        let run = match self.summary.run {
            Some((run_start, run_end, q)) if q == quality && run_end == start => {
                (run_start, end, quality)
            }
            _ => (start, end, quality),
        };
        self.summary.run = Some(run);
        let record = QualityRunRecord {
            patient_id: self.patient_id.clone(),
            stream_id: self.stream_id,
            quality,
            started_at: self.at(run.0),
            ended_at: self.at(run.1),
        };
        // One row per run in a batch: the latest extent replaces the earlier one.
        match out.quality.last_mut() {
            Some(last)
                if last.patient_id == record.patient_id
                    && last.stream_id == record.stream_id
                    && last.started_at == record.started_at =>
            {
                *last = record;
            }
            _ => out.quality.push(record),
        }
    }
}

fn fresh_summary(start_index: u64) -> Summary {
    Summary {
        base: start_index,
        next_index: start_index,
        last_beat: None,
        lead_off_now: false,
        pending: VecDeque::with_capacity(PENDING_SECONDS),
        last_rate: None,
        asystole: None,
        vf: None,
        af: None,
        af_episode: None,
        run: None,
    }
}

fn ecg_event(chunk: &EcgRecord) -> LiveEvent {
    LiveEvent::Ecg {
        stream_id: chunk.stream_id,
        lead: chunk.lead.clone(),
        first_sample_index: chunk.first_sample_index,
        first_sample_at: chunk.first_sample_at,
        sample_rate_hz: chunk.sample_rate_hz,
        uv_per_count: chunk.uv_per_count,
        samples: Arc::from(chunk.samples.as_slice()),
    }
}

#[cfg(test)]
mod tests {
    use mimamori_dsp::synth::{Rhythm as SynthRhythm, SynthConfig};

    use super::*;

    const CHUNK: usize = 250;

    fn to_records(samples: &[i16], lead_off: impl Fn(usize) -> bool) -> Vec<EcgRecord> {
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
                lead_off: lead_off(i),
                samples: s.to_vec(),
                received_at: start,
            })
            .collect()
    }

    fn chunks(seconds: f64) -> Vec<EcgRecord> {
        let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 3)
            .heart_rate_bpm(60.0)
            .sdnn_ms(0.0)
            .generate_counts(seconds)
            .unwrap();
        to_records(&samples, |_| false)
    }

    struct Run {
        out: DerivedBatch,
        seconds: Vec<(DateTime<Utc>, EcgSecond)>,
    }

    fn run(order: &[usize], all: &[EcgRecord], window: usize) -> Run {
        let mut analyzer = StreamAnalyzer::new(&all[0], 0, window);
        let mut out = DerivedBatch::default();
        let mut seconds = Vec::new();
        for &i in order {
            seconds.extend(analyzer.push(all[i].clone(), true, &mut out).seconds);
        }
        Run { out, seconds }
    }

    #[test]
    fn out_of_order_chunks_within_the_window_give_the_in_order_result() {
        let all = chunks(20.0);
        let in_order: Vec<usize> = (0..20).collect();
        let mut shuffled = in_order.clone();
        shuffled.swap(3, 5);
        shuffled.swap(10, 11);
        let expected = run(&in_order, &all, 4).out;
        let got = run(&shuffled, &all, 4).out;
        assert_eq!(got.beats, expected.beats);
        assert!(got.gaps.is_empty());
        // The last 3 s are held back by the RR stage.
        assert!(
            (15..=17).contains(&expected.beats.len()),
            "{}",
            expected.beats.len()
        );
        let hr = &expected.heart_rate;
        assert!(
            hr.len() >= 8 && hr.iter().all(|h| (h.bpm - 60.0).abs() < 1.0),
            "{hr:?}"
        );
    }

    #[test]
    fn duplicates_are_ignored() {
        let all = chunks(10.0);
        let expected = run(&(0..10).collect::<Vec<_>>(), &all, 4);
        let got = run(&[0, 1, 1, 2, 0, 3, 4, 5, 6, 6, 7, 8, 9], &all, 4);
        assert_eq!(got.out.beats, expected.out.beats);
        assert_eq!(got.seconds, expected.seconds);
    }

    #[test]
    fn a_missing_chunk_is_recorded_as_a_gap_and_not_bridged() {
        let all = chunks(20.0);
        let order: Vec<usize> = (0..20).filter(|&i| i != 8).collect();
        let got = run(&order, &all, 2).out;
        assert_eq!(got.gaps.len(), 1);
        assert_eq!((got.gaps[0].from_index, got.gaps[0].to_index), (2000, 2250));
        // The segment before the gap is finished: its last beats are committed.
        assert!(
            got.beats
                .iter()
                .any(|b| (1750..2000).contains(&b.sample_index))
        );
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

    #[test]
    fn every_second_of_a_known_rate_reports_it_within_one_bpm() {
        for bpm in [45.0, 72.0, 130.0] {
            let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 11)
                .heart_rate_bpm(bpm)
                .sdnn_ms(0.0)
                .generate_counts(60.0)
                .unwrap();
            let all = to_records(&samples, |_| false);
            let got = run(&(0..all.len()).collect::<Vec<_>>(), &all, 4);
            // Reported 3–4 s behind the signal, one per second, in order.
            assert!(
                (56..=57).contains(&got.seconds.len()),
                "{}",
                got.seconds.len()
            );
            assert!(
                got.seconds
                    .windows(2)
                    .all(|w| w[1].0 - w[0].0 == Duration::seconds(1))
            );
            // Past the first ten seconds (the rate needs beats; 45/min is slow), every second
            // is usable, regular once the first AF window closed, and at the known rate.
            for (at, s) in &got.seconds[10..] {
                assert_eq!(s.quality, EcgQuality::Usable, "{at}");
                let hr = s.heart_rate_per_min.unwrap();
                assert!((hr - bpm).abs() < 1.0, "{bpm}: {hr} at {at}");
            }
            assert!(
                got.seconds[35..]
                    .iter()
                    .all(|(_, s)| s.rhythm == Rhythm::Regular)
            );
            let rr = got.seconds.iter().filter_map(|(_, s)| s.longest_rr_ms);
            assert!(
                rr.clone()
                    .all(|rr| (f64::from(rr) - 60_000.0 / bpm).abs() < 10.0)
            );
            assert!(got.out.episodes.iter().all(|e| match e.kind {
                EpisodeKind::Bradycardia => bpm < 50.0,
                EpisodeKind::Tachycardia => bpm > 120.0,
                _ => false,
            }));
        }
    }

    /// 75 /min sinus with one episode of `rhythm` at `(start, length)` s, analysed in order.
    fn run_episode(
        rhythm: SynthRhythm,
        seed: u64,
        (start, length): (f64, f64),
        seconds: f64,
    ) -> (Run, DateTime<Utc>) {
        let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), seed)
            .heart_rate_bpm(75.0)
            .rhythm_episode(rhythm, start, length)
            .generate_counts(seconds)
            .unwrap();
        let all = to_records(&samples, |_| false);
        let got = run(&(0..all.len()).collect::<Vec<_>>(), &all, 4);
        (got, all[0].first_sample_at)
    }

    /// The rhythm reported for second `s` of the run.
    fn rhythm_at(got: &Run, t0: DateTime<Utc>, s: i64) -> Rhythm {
        got.seconds
            .iter()
            .find(|(at, _)| *at == t0 + Duration::seconds(s))
            .unwrap()
            .1
            .rhythm
    }

    #[test]
    fn ventricular_flutter_gives_vf_seconds_a_stored_episode_and_no_beats_inside() {
        let (got, t0) = run_episode(SynthRhythm::VentricularFlutter, 11, (40.0, 20.0), 90.0);
        let rhythm_at = |s: i64| rhythm_at(&got, t0, s);
        assert_ne!(rhythm_at(30), Rhythm::VentricularFibrillation);
        // Confirmed within 6 s of onset, and held until the flutter stops.
        assert!((47..58).all(|s| rhythm_at(s) == Rhythm::VentricularFibrillation));
        assert!((70..80).all(|s| rhythm_at(s) != Rhythm::VentricularFibrillation));
        let vf = got
            .out
            .episodes
            .iter()
            .find(|e| e.kind == EpisodeKind::VentricularFibrillation && e.ended_at.is_some())
            .expect("a closed VF episode");
        assert!(
            (vf.started_at - (t0 + Duration::seconds(40)))
                .num_seconds()
                .abs()
                <= 3,
            "{vf:?}"
        );
        let inside = got
            .out
            .beats
            .iter()
            .filter(|b| b.at > t0 + Duration::seconds(42) && b.at < t0 + Duration::seconds(58))
            .count();
        assert_eq!(inside, 0, "flutter waves are not beats");
    }

    #[test]
    fn an_af_episode_gives_af_seconds_and_a_stored_episode() {
        let (got, t0) = run_episode(SynthRhythm::AtrialFibrillation, 7, (60.0, 120.0), 240.0);
        let rhythm_at = |s: i64| rhythm_at(&got, t0, s);
        assert_eq!(rhythm_at(50), Rhythm::Regular);
        // AF from 60 s to 180 s; the windows are 30 s, decided after them.
        assert!((100..180).all(|s| rhythm_at(s) == Rhythm::Af));
        assert!((225..236).all(|s| rhythm_at(s) == Rhythm::Regular));
        let af: Vec<&EpisodeRecord> = got
            .out
            .episodes
            .iter()
            .filter(|e| e.kind == EpisodeKind::Af)
            .collect();
        let closed = af.iter().find(|e| e.ended_at.is_some()).expect("AF ended");
        assert!(
            (closed.started_at - (t0 + Duration::seconds(60)))
                .num_seconds()
                .abs()
                <= 30,
            "{closed:?}"
        );
        assert!(
            (closed.ended_at.unwrap() - (t0 + Duration::seconds(180)))
                .num_seconds()
                .abs()
                <= 30,
            "{closed:?}"
        );
        // Written open at its first window, then closed under the same key.
        assert!(af.iter().all(|e| e.start_index == closed.start_index));
    }

    #[test]
    fn a_lead_off_chunk_gives_lead_off_seconds_and_no_beats() {
        let all = {
            let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 3)
                .heart_rate_bpm(70.0)
                .generate_counts(40.0)
                .unwrap();
            to_records(&samples, |i| (20..25).contains(&i))
        };
        let got = run(&(0..all.len()).collect::<Vec<_>>(), &all, 4);
        let t0 = all[0].first_sample_at;
        let off = t0 + Duration::seconds(20)..t0 + Duration::seconds(25);
        for (at, s) in &got.seconds {
            if off.contains(at) {
                assert_eq!(s.quality, EcgQuality::LeadOff, "{at}");
                assert_eq!(s.heart_rate_per_min, None);
            }
        }
        assert!(got.seconds.iter().any(|(at, _)| off.contains(at)));
        assert!(got.out.beats.iter().all(|b| !off.contains(&b.at)));
        assert!(
            got.out
                .quality
                .iter()
                .any(|r| r.quality == EcgQuality::LeadOff && r.started_at == off.start)
        );
        // A lead-off is not asystole: any asystole found over it is marked as unusable signal.
        assert!(
            got.out
                .episodes
                .iter()
                .filter(|e| e.kind == EpisodeKind::Asystole)
                .all(|e| !e.signal_usable)
        );
    }

    #[test]
    fn a_restored_state_replays_silently_and_continues_exactly() {
        let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 9)
            .heart_rate_bpm(80.0)
            .rhythm_episode(SynthRhythm::AtrialFibrillation, 20.0, 60.0)
            .generate_counts(120.0)
            .unwrap();
        let all = to_records(&samples, |_| false);
        let whole = run(&(0..all.len()).collect::<Vec<_>>(), &all, 4);

        // The first life: 70 chunks analysed, snapshot taken at some point before.
        let mut first = StreamAnalyzer::new(&all[0], 0, 4);
        let mut before = DerivedBatch::default();
        let mut seconds = Vec::new();
        for chunk in &all[..70] {
            seconds.extend(first.push(chunk.clone(), true, &mut before).seconds);
        }
        let checkpoint = before.checkpoints.last().unwrap().clone();
        let state = checkpoint.state.clone().unwrap();
        assert_eq!(checkpoint.next_index, 70 * 250);
        assert!(
            state.index < checkpoint.next_index
                && checkpoint.next_index - state.index <= SNAPSHOT_EVERY_S * 250,
            "snapshots every 30 s: {}",
            state.index
        );

        // The second life replays the stored chunks since the snapshot, then goes on.
        let from = (state.index / 250) as usize;
        let mut resumed =
            StreamAnalyzer::restore(&all[from], &state, checkpoint.next_index, 4).unwrap();
        let mut after = DerivedBatch::default();
        for chunk in &all[from..] {
            seconds.extend(resumed.push(chunk.clone(), false, &mut after).seconds);
        }
        assert_eq!(seconds, whole.seconds);
        let beats: Vec<BeatRecord> = before.beats.into_iter().chain(after.beats).collect();
        assert_eq!(beats, whole.out.beats);
        let hr: Vec<HeartRateRecord> = before
            .heart_rate
            .into_iter()
            .chain(after.heart_rate)
            .collect();
        assert_eq!(hr, whole.out.heart_rate);
    }
}
