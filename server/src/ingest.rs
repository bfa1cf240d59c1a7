//! The committer: batches deliveries (≤ `batch_max_messages`, ≤ `batch_max_delay_ms`), stores
//! each batch in one transaction, then acknowledges the broker (in arrival order) and publishes the
//! gateways' end-to-end acks, then hands stored readings to the hot path, the live feed and the
//! alert feed.
//!
//! Nothing is acknowledged before its commit. If the process dies between the commit and the
//! PUBACKs, the broker redelivers and the dedup table turns the redelivery into a counted duplicate.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::Utc;
use mimamori_wire::{GatewayId, StoredAck};
use tokio::sync::mpsc;
use tokio::time::sleep_until;
use tracing::Instrument as _;

use crate::alerts::feed::AlertFeed;
use crate::config::IngestConfig;
use crate::hot_path::HotPath;
use crate::registry::LoanBook;
use crate::sinks::live_feed::{LiveEvent, LiveFeed};
use crate::sources::mqtt::{Acker, Delivery};
use crate::storage::{
    CommitOutcome, Content, DeadLetter, IngestBatch, IngestMessage, Storage, StorageError,
};
use crate::telemetry::{IngestBatchCommitted, Telemetry};
use crate::transforms::acknowledge::Watermarks;
use crate::transforms::decode::{self, TimeLimits};

/// The loan book is reloaded at most this often when a reading names an unknown loan…
const LOAN_REFRESH: Duration = Duration::from_secs(1);
/// …except for a gateway's first miss in this long: a device lent a moment ago must not have its
/// first readings dead-lettered, while a gateway whose device has no loan cannot make every batch
/// reload the book.
const LOAN_MISS_MEMORY: Duration = Duration::from_secs(60);
/// Longest wait between attempts of a commit that failed for a retryable reason.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// The committer's state.
#[derive(Debug)]
pub struct Committer<S> {
    store: S,
    config: IngestConfig,
    loans: LoanBook,
    loans_loaded: Instant,
    /// Gateways whose miss made the book reload, and when.
    reloaded_for: HashMap<GatewayId, Instant>,
    marks: Watermarks,
    telemetry: Telemetry,
    feed: LiveFeed,
    alerts: AlertFeed,
    hot_path: HotPath,
    acker: Acker,
}

impl<S: Storage> Committer<S> {
    /// Loads the loan book and the persisted watermarks.
    pub async fn new(
        store: S,
        config: IngestConfig,
        telemetry: Telemetry,
        feed: LiveFeed,
        alerts: AlertFeed,
        hot_path: HotPath,
        acker: Acker,
    ) -> Result<Self, StorageError> {
        let loans = LoanBook::new(store.loans().await?);
        let marks = Watermarks::from_stored(store.load_watermarks().await?);
        Ok(Self {
            store,
            config,
            loans,
            loans_loaded: Instant::now(),
            reloaded_for: HashMap::new(),
            marks,
            telemetry,
            feed,
            alerts,
            hot_path,
            acker,
        })
    }

    /// Runs until `rx` closes, then lets the hot path write what it holds.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Delivery>) {
        let mut deliveries = Vec::with_capacity(self.config.batch_max_messages);
        while let Some(first) = rx.recv().await {
            // The broker's in-flight window bounds this queue; past the configured depth it is
            // not doing so (or its window is set too large), which an operator must hear of.
            let waiting = rx.len();
            if waiting > self.config.queue_capacity {
                tracing::warn!(
                    waiting,
                    limit = self.config.queue_capacity,
                    "Deliveries pile up before the committer: check the broker's in-flight limit."
                );
            }
            let deadline = tokio::time::Instant::now() + self.config.batch_max_delay();
            deliveries.push(first);
            while deliveries.len() < self.config.batch_max_messages {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(delivery) => deliveries.push(delivery),
                        None => break,
                    },
                    () = sleep_until(deadline) => break,
                }
            }
            let span = tracing::debug_span!("ingest_batch", messages = deliveries.len());
            self.commit(&mut deliveries).instrument(span).await;
            deliveries.clear();
        }
        self.hot_path.shutdown().await;
    }

    async fn commit(&mut self, deliveries: &mut [Delivery]) {
        let limits = TimeLimits::from(&self.config);
        let mut messages: Vec<IngestMessage> = deliveries
            .iter()
            .map(|d| decode::decode(&d.raw, &self.loans, limits))
            .collect();
        if self.loan_book_may_be_stale(&messages) {
            match self.store.loans().await {
                Ok(loans) => {
                    self.loans = LoanBook::new(loans);
                    self.loans_loaded = Instant::now();
                    for (message, delivery) in messages.iter_mut().zip(deliveries.iter()) {
                        if is_loan_miss(message) {
                            *message = decode::decode(&delivery.raw, &self.loans, limits);
                        }
                    }
                }
                Err(error) => tracing::warn!(error = %error, "Reloading loans failed."),
            }
        }
        for message in &mut messages {
            if let Some((epoch, seq)) = message.key {
                message.known_duplicate = self.marks.covers(&message.gateway, epoch, seq);
            }
        }
        let (next_marks, watermarks) = self.marks.after(
            messages
                .iter()
                .filter_map(|m| m.key.map(|(epoch, seq)| (&m.gateway, epoch, seq))),
        );
        let mut batch = IngestBatch {
            messages,
            watermarks,
        };

        let started = Instant::now();
        self.telemetry.commit_started();
        let outcome = self.commit_with_retry(&mut batch).await;
        self.marks = next_marks;
        self.telemetry
            .batch_committed(started.elapsed(), &per_gateway(&batch, &outcome));

        // The broker may forget these now, in arrival order.
        for delivery in deliveries.iter() {
            if let Err(error) = self.acker.ack(delivery).await {
                tracing::error!(error = %error, "Acknowledging a delivery failed.");
            }
        }
        let now = Utc::now();
        for mark in &batch.watermarks {
            let ack = StoredAck::new(mark.epoch, mark.stored_through, now);
            if let Err(error) = self.acker.publish_stored(&mark.gateway, &ack).await {
                tracing::error!(gateway = %mark.gateway, error = %error, "Publishing the end-to-end ack failed.");
            }
        }

        for (message, fresh) in batch.messages.into_iter().zip(outcome.fresh) {
            if !fresh {
                continue;
            }
            match message.content {
                Content::Observations(records) => {
                    for r in records {
                        self.alerts.observation(&r).await;
                        self.feed.publish(
                            &r.patient_id,
                            LiveEvent::Observation {
                                vital: r.vital,
                                value: r.value,
                                unit: r.vital.unit().code(),
                                measured_at: r.measured_at,
                                device_id: r.device_id,
                            },
                        );
                    }
                }
                Content::Ecg(record) => self.hot_path.dispatch(record, &self.telemetry).await,
                Content::Status(status) => {
                    // A status of a device without an active, consented loan concerns nobody's care.
                    if let Ok(patient) = self.loans.owner(&status.device_id, status.at, None) {
                        self.alerts.device_status(patient, &status).await;
                    }
                }
                Content::Presence(presence) => {
                    self.alerts
                        .gateway_presence(
                            message.gateway.as_str(),
                            presence.online,
                            message.received_at,
                        )
                        .await;
                }
                Content::DeadLetter(_) => {}
            }
        }
    }

    /// Commits, retrying while the database is unreachable. A batch the database refuses for a
    /// permanent reason is committed message by message, and a message still refused is kept as
    /// a dead letter, so one bad row cannot block the stream.
    async fn commit_with_retry(&self, batch: &mut IngestBatch) -> CommitOutcome {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.store.commit_ingest(batch).await {
                Ok(outcome) => return outcome,
                Err(error) if error.is_retryable() => {
                    self.telemetry.commit_failed();
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "Commit failed; retrying.");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
                Err(error) => {
                    self.telemetry.commit_failed();
                    tracing::error!(error = %error, "Batch refused by the database; committing message by message.");
                    return self.commit_one_by_one(batch).await;
                }
            }
        }
    }

    async fn commit_one_by_one(&self, batch: &mut IngestBatch) -> CommitOutcome {
        let mut fresh = Vec::with_capacity(batch.messages.len());
        let last = batch.messages.len().saturating_sub(1);
        for i in 0..batch.messages.len() {
            let mut single = IngestBatch {
                messages: vec![batch.messages[i].clone()],
                // The watermarks go with the last message; until then, restart rebuilds them
                // from the dedup table.
                watermarks: if i == last {
                    batch.watermarks.clone()
                } else {
                    vec![]
                },
            };
            let outcome = match self.store.commit_ingest(&single).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    let message = &mut single.messages[0];
                    message.content = Content::DeadLetter(DeadLetter {
                        reason: "storage_refused",
                        detail: error.to_string(),
                        topic: String::new(),
                        payload: Vec::new(),
                    });
                    batch.messages[i].content = message.content.clone();
                    Box::pin(self.commit_with_retry(&mut single)).await
                }
            };
            fresh.extend(outcome.fresh);
        }
        CommitOutcome { fresh }
    }
}

impl<S> Committer<S> {
    /// Whether a loan miss in `messages` is worth reloading the book for.
    fn loan_book_may_be_stale(&mut self, messages: &[IngestMessage]) -> bool {
        let (mut any_miss, mut first_miss) = (false, false);
        for message in messages.iter().filter(|m| is_loan_miss(m)) {
            any_miss = true;
            let remembered = self
                .reloaded_for
                .get(&message.gateway)
                .is_some_and(|at| at.elapsed() < LOAN_MISS_MEMORY);
            if !remembered {
                self.reloaded_for
                    .insert(message.gateway.clone(), Instant::now());
                first_miss = true;
            }
        }
        if self.reloaded_for.len() > 4096 {
            self.reloaded_for
                .retain(|_, at| at.elapsed() < LOAN_MISS_MEMORY);
        }
        first_miss || (any_miss && self.loans_loaded.elapsed() >= LOAN_REFRESH)
    }
}

fn is_loan_miss(message: &IngestMessage) -> bool {
    matches!(&message.content, Content::DeadLetter(d) if d.reason == "no_active_loan" || d.reason == "no_consent")
}

fn per_gateway(
    batch: &IngestBatch,
    outcome: &CommitOutcome,
) -> BTreeMap<String, IngestBatchCommitted> {
    let mut out: BTreeMap<String, IngestBatchCommitted> = BTreeMap::new();
    for (message, &fresh) in batch.messages.iter().zip(&outcome.fresh) {
        let event = out.entry(message.gateway.to_string()).or_default();
        event.received += 1;
        match (&message.content, fresh) {
            (_, false) => event.duplicates += 1,
            (Content::DeadLetter(d), true) => event.dead_lettered.push(d.reason),
            (_, true) => event.stored += 1,
        }
    }
    out
}
