//! The per-patient hot path: sharded workers, each the only owner of its patients' streaming
//! state, so each patient's samples are analysed in order without locks.
//!
//! The committer hands every stored ECG chunk to the worker `hash(patient) % workers` through a
//! bounded queue and waits when it is full (backpressure to the broker: raw data is never shed).
//! Workers write what they derive in small batches and publish it to the live feed.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::alerts::feed::AlertFeed;
use crate::config::HotPathConfig;
use crate::sinks::live_feed::LiveFeed;
use crate::storage::{Checkpoint, DerivedBatch, EcgRecord, Storage};
use crate::telemetry::Telemetry;
use crate::transforms::detect_beats::{Analysed, StreamAnalyzer};

/// How often a worker writes what it derived.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// A stream silent this long (in receive time) is forgotten; a later chunk resumes from its
/// checkpoint.
const IDLE_STREAM: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Stored chunks are read from this long before a snapshot's sample time (chunk start times are
/// the device's, not exact).
const STORED_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// How far back a new stream with no checkpoint looks for chunks stored before its first live
/// one (committed just before a crash, never analysed).
const LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Handle to the workers.
#[derive(Debug)]
pub struct HotPath {
    senders: Vec<mpsc::Sender<EcgRecord>>,
    workers: Vec<JoinHandle<()>>,
}

impl HotPath {
    /// Starts the workers, resuming streams from `checkpoints`. Each worker first re-analyses,
    /// from storage, the streams that were active when the server stopped (see
    /// [`Worker::catch_up`]), then takes live chunks. Every second of ECG analysed goes to
    /// `alerts`, in order per patient.
    pub fn start<S: Storage>(
        config: &HotPathConfig,
        store: S,
        feed: LiveFeed,
        alerts: AlertFeed,
        telemetry: Telemetry,
        checkpoints: Vec<Checkpoint>,
    ) -> Self {
        // Streams active within IDLE_STREAM of the last analysis were live at the stop.
        let recent_since = checkpoints
            .iter()
            .map(|cp| cp.updated_at)
            .max()
            .map(|newest| newest - IDLE_STREAM);
        let mut by_worker: Vec<HashMap<(String, u64), Checkpoint>> =
            vec![HashMap::new(); config.workers];
        for cp in checkpoints {
            by_worker[shard(&cp.patient_id, config.workers)]
                .insert((cp.patient_id.clone(), cp.stream_id), cp);
        }
        let mut senders = Vec::with_capacity(config.workers);
        let mut workers = Vec::with_capacity(config.workers);
        for (index, resume) in by_worker.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(config.worker_queue_capacity);
            senders.push(tx);
            let worker = Worker {
                store: store.clone(),
                feed: feed.clone(),
                alerts: alerts.clone(),
                telemetry: telemetry.clone(),
                window: config.reorder_window_chunks,
                resume,
                streams: HashMap::new(),
                pending: DerivedBatch::default(),
            };
            workers.push(tokio::spawn(
                worker
                    .run(rx, recent_since)
                    .instrument(tracing::info_span!("hot_path_worker", worker = index)),
            ));
        }
        Self { senders, workers }
    }

    /// Hands a stored chunk to its patient's worker, waiting while that worker's queue is full.
    pub async fn dispatch(&self, chunk: EcgRecord, telemetry: &Telemetry) {
        let worker = shard(&chunk.patient_id, self.senders.len());
        if self.senders[worker].send(chunk).await.is_err() {
            telemetry.hot_path_dropped();
        }
    }

    /// Closes the queues and waits for the workers to write what they hold.
    pub async fn shutdown(self) {
        drop(self.senders);
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

fn shard(patient: &str, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    patient.hash(&mut hasher);
    (hasher.finish() % workers.max(1) as u64) as usize
}

struct Worker<S> {
    store: S,
    feed: LiveFeed,
    alerts: AlertFeed,
    telemetry: Telemetry,
    window: usize,
    /// Checkpoints of streams not yet seen since start: where to resume them.
    resume: HashMap<(String, u64), Checkpoint>,
    streams: HashMap<(String, u64), StreamAnalyzer>,
    pending: DerivedBatch,
}

impl<S: Storage> Worker<S> {
    async fn run(mut self, mut rx: mpsc::Receiver<EcgRecord>, recent_since: Option<DateTime<Utc>>) {
        self.catch_up(recent_since).await;
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => self.take(chunk).await,
                    None => break,
                },
                _ = flush.tick() => self.flush(false).await,
            }
        }
        self.flush(true).await;
    }

    /// Before any live chunk: resumes every stream that was active when the server stopped,
    /// replaying the stored chunks since its last snapshot, so chunks committed but not analysed
    /// before a crash are analysed now (and their seconds reach the alert engine).
    async fn catch_up(&mut self, recent_since: Option<DateTime<Utc>>) {
        let Some(since) = recent_since else { return };
        let keys: Vec<(String, u64)> = self
            .resume
            .iter()
            .filter(|(_, cp)| cp.state.is_some() && cp.updated_at >= since)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.resume_stream(&key, None).await;
        }
        self.flush(false).await;
    }

    async fn take(&mut self, chunk: EcgRecord) {
        let key = (chunk.patient_id.clone(), chunk.stream_id);
        if !self.streams.contains_key(&key) {
            self.resume_stream(&key, Some(&chunk)).await;
        }
        let analyzer = self
            .streams
            .entry(key)
            .or_insert_with(|| StreamAnalyzer::new(&chunk, chunk.first_sample_index, self.window));
        let patient = chunk.patient_id.clone();
        let analysed = analyzer.push(chunk, true, &mut self.pending);
        self.deliver(&patient, analysed).await;
    }

    async fn deliver(&mut self, patient: &str, analysed: Analysed) {
        self.telemetry.analysed(analysed.beats, analysed.gaps);
        for event in analysed.events {
            self.feed.publish(patient, event);
        }
        for (at, second) in analysed.seconds {
            self.alerts.ecg_second(patient, at, second).await;
        }
    }

    /// Sets up the analyzer of a stream not in memory: from its checkpoint's state when there is
    /// one, then through every stored chunk since (before `live`, the chunk that woke it up).
    async fn resume_stream(&mut self, key: &(String, u64), live: Option<&EcgRecord>) {
        let checkpoint = self.resume.remove(key);
        let state = checkpoint.as_ref().and_then(|cp| cp.state.as_ref());
        let from = match (state, live) {
            (Some(state), _) => state.at - STORED_SLACK,
            (None, Some(live)) => live.first_sample_at - LOOKBACK,
            (None, None) => return,
        };
        let span = tracing::info_span!("resume_stream", patient_id = %key.0, stream = key.1);
        let stored = match self
            .store
            .ecg_chunks(&key.0, from, DateTime::<Utc>::MAX_UTC)
            .instrument(span.clone())
            .await
        {
            Ok(chunks) => chunks,
            Err(error) => {
                span.in_scope(|| tracing::error!(%error, "Reading stored ECG to resume failed."));
                Vec::new()
            }
        };
        let start = checkpoint.as_ref().map_or(0, |cp| cp.next_index);
        let mut stored: Vec<EcgRecord> = stored
            .into_iter()
            .filter(|c| c.stream_id == key.1)
            .filter(|c| live.is_none_or(|live| c.first_sample_index < live.first_sample_index))
            .filter(|c| {
                state.map_or(c.first_sample_index >= start, |s| {
                    c.first_sample_index >= s.index
                })
            })
            .collect();
        stored.sort_by_key(|c| c.first_sample_index);
        let Some(first) = stored.first().or(live) else {
            return;
        };
        let fresh_start = checkpoint
            .as_ref()
            .map_or(first.first_sample_index, |cp| cp.next_index);
        let analyzer = match (state, &checkpoint) {
            (Some(state), Some(cp)) => {
                StreamAnalyzer::restore(first, state, cp.next_index, self.window).unwrap_or_else(
                    |error| {
                        span.in_scope(
                    || tracing::warn!(%error, "Analysis state not resumable; starting afresh."),
                );
                        StreamAnalyzer::new(first, cp.next_index, self.window)
                    },
                )
            }
            _ => StreamAnalyzer::new(first, fresh_start, self.window),
        };
        let replayed = stored.len();
        let analyzer = self.streams.entry(key.clone()).or_insert(analyzer);
        let mut analysed = Analysed::default();
        for chunk in stored {
            let more = analyzer.push(chunk, false, &mut self.pending);
            analysed.beats += more.beats;
            analysed.gaps += more.gaps;
            analysed.events.extend(more.events);
            analysed.seconds.extend(more.seconds);
        }
        span.in_scope(|| tracing::info!(chunks = replayed, "Stream resumed from storage."));
        self.deliver(&key.0, analysed).await;
    }

    async fn flush(&mut self, closing: bool) {
        // A stream leaving memory is snapshotted where it stands, so it resumes without replay.
        let now = Utc::now();
        let leaving: Vec<(String, u64)> = self
            .streams
            .iter()
            .filter(|(_, analyzer)| closing || now - analyzer.last_update() >= IDLE_STREAM)
            .map(|(key, _)| key.clone())
            .collect();
        for key in leaving {
            if let Some(mut analyzer) = self.streams.remove(&key) {
                let state = analyzer.snapshot();
                analyzer.checkpoint(Some(state), &mut self.pending);
            }
        }
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            if let Err(error) = self.store.store_derived(&batch).await {
                // Derived series can be recomputed from the raw ECG; losing a batch is logged, not fatal.
                tracing::error!(error = %error, beats = batch.beats.len(), "Storing derived series failed.");
            }
        }
    }
}
