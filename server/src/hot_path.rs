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

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::HotPathConfig;
use crate::sinks::live_feed::LiveFeed;
use crate::storage::{Checkpoint, DerivedBatch, EcgRecord, Storage};
use crate::telemetry::Telemetry;
use crate::transforms::detect_beats::StreamAnalyzer;

/// How often a worker writes what it derived.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// A stream silent this long (in receive time) is forgotten; a later chunk resumes from its
/// checkpoint.
const IDLE_STREAM: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Handle to the workers.
#[derive(Debug)]
pub struct HotPath {
    senders: Vec<mpsc::Sender<EcgRecord>>,
    workers: Vec<JoinHandle<()>>,
}

impl HotPath {
    /// Starts the workers, resuming streams from `checkpoints`.
    pub fn start<S: Storage>(
        config: &HotPathConfig,
        store: S,
        feed: LiveFeed,
        telemetry: Telemetry,
        checkpoints: Vec<Checkpoint>,
    ) -> Self {
        let mut by_worker: Vec<HashMap<(String, u64), u64>> = vec![HashMap::new(); config.workers];
        for cp in checkpoints {
            by_worker[shard(&cp.patient_id, config.workers)]
                .insert((cp.patient_id, cp.stream_id), cp.next_index);
        }
        let mut senders = Vec::with_capacity(config.workers);
        let mut workers = Vec::with_capacity(config.workers);
        for (index, resume) in by_worker.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(config.worker_queue_capacity);
            senders.push(tx);
            let worker = Worker {
                store: store.clone(),
                feed: feed.clone(),
                telemetry: telemetry.clone(),
                window: config.reorder_window_chunks,
                resume,
                streams: HashMap::new(),
                pending: DerivedBatch::default(),
            };
            workers.push(tokio::spawn(
                worker
                    .run(rx)
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
    telemetry: Telemetry,
    window: usize,
    /// Checkpoints of streams not yet seen since start: where to resume them.
    resume: HashMap<(String, u64), u64>,
    streams: HashMap<(String, u64), StreamAnalyzer>,
    pending: DerivedBatch,
}

impl<S: Storage> Worker<S> {
    async fn run(mut self, mut rx: mpsc::Receiver<EcgRecord>) {
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => self.take(chunk),
                    None => break,
                },
                _ = flush.tick() => self.flush().await,
            }
        }
        self.flush().await;
    }

    fn take(&mut self, chunk: EcgRecord) {
        let key = (chunk.patient_id.clone(), chunk.stream_id);
        let window = self.window;
        let resume = &mut self.resume;
        let analyzer = self.streams.entry(key.clone()).or_insert_with(|| {
            let start = resume.remove(&key).unwrap_or(chunk.first_sample_index);
            StreamAnalyzer::new(&chunk, start, window)
        });
        let patient = chunk.patient_id.clone();
        let analysed = analyzer.push(chunk, &mut self.pending);
        self.telemetry.analysed(analysed.beats, analysed.gaps);
        for event in analysed.events {
            self.feed.publish(&patient, event);
        }
    }

    async fn flush(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            if let Err(error) = self.store.store_derived(&batch).await {
                // Derived series can be recomputed from the raw ECG; losing a batch is logged, not fatal.
                tracing::error!(error = %error, beats = batch.beats.len(), "Storing derived series failed.");
            }
        }
        let now = Utc::now();
        self.streams
            .retain(|_, analyzer| now - analyzer.last_update() < IDLE_STREAM);
    }
}
