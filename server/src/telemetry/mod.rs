//! Counters of what the server did, and their Prometheus text rendering for `/metrics`.
//!
//! Each event is recorded once per batch, never per sample. The dashboards' HTTP layer mounts
//! [`Telemetry::render_prometheus`] at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters of one gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayCounters {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Dead-lettered messages by reason label.
    pub dead_lettered: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct Inner {
    gateways: BTreeMap<String, GatewayCounters>,
    batches: u64,
    commit_seconds_sum: f64,
    commit_failures: u64,
    beats: u64,
    gaps: u64,
    hot_path_dropped_chunks: u64,
    /// When the batch being committed now started (`None` between batches).
    committing_since: Option<std::time::Instant>,
}

/// Shared counters. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    // A std mutex: updated once per batch, never held across an await.
    inner: Arc<Mutex<Inner>>,
}

/// What one committed batch did for one gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestBatchCommitted {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub dead_lettered: Vec<&'static str>,
}

impl Telemetry {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Records that a batch's commit starts.
    pub fn commit_started(&self) {
        self.with(|inner| inner.committing_since = Some(std::time::Instant::now()));
    }

    /// How long the batch being committed has been at it; `None` between batches. Ingest that is
    /// idle is healthy; ingest stuck in a commit (database hung) is not.
    pub fn committing_for(&self) -> Option<Duration> {
        self.with(|inner| inner.committing_since.map(|since| since.elapsed()))
    }

    /// Records a committed batch.
    pub fn batch_committed(
        &self,
        elapsed: Duration,
        per_gateway: &BTreeMap<String, IngestBatchCommitted>,
    ) {
        self.with(|inner| {
            inner.committing_since = None;
            inner.batches += 1;
            inner.commit_seconds_sum += elapsed.as_secs_f64();
            for (gateway, event) in per_gateway {
                let c = inner.gateways.entry(gateway.clone()).or_default();
                c.received += event.received;
                c.stored += event.stored;
                c.duplicates += event.duplicates;
                for reason in &event.dead_lettered {
                    *c.dead_lettered.entry(reason).or_default() += 1;
                }
            }
        });
        for (gateway, event) in per_gateway {
            for reason in &event.dead_lettered {
                tracing::warn!(gateway = %gateway, reason, "Message dead-lettered.");
            }
        }
    }

    /// Records a commit that failed (the batch will be retried).
    pub fn commit_failed(&self) {
        self.with(|inner| inner.commit_failures += 1);
    }

    /// Records beats and gaps found by the hot path.
    pub fn analysed(&self, beats: u64, gaps: u64) {
        self.with(|inner| {
            inner.beats += beats;
            inner.gaps += gaps;
        });
    }

    /// Records an ECG chunk the hot path did not analyse (stored, but its worker was gone).
    pub fn hot_path_dropped(&self) {
        self.with(|inner| inner.hot_path_dropped_chunks += 1);
    }

    /// A copy of one gateway's counters.
    pub fn gateway(&self, gateway: &str) -> GatewayCounters {
        self.with(|inner| inner.gateways.get(gateway).cloned().unwrap_or_default())
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        self.with(|inner| {
            let mut out = String::new();
            let mut family = |name: &str, help: &str, kind: &str| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            };
            family(
                "ingest_received_messages_total",
                "Messages received from gateways.",
                "counter",
            );
            family(
                "ingest_stored_messages_total",
                "Messages stored for the first time.",
                "counter",
            );
            family(
                "ingest_duplicate_messages_total",
                "Redelivered messages dropped as duplicates.",
                "counter",
            );
            family(
                "ingest_dead_lettered_messages_total",
                "Messages refused and kept as dead letters, by reason.",
                "counter",
            );
            for (gateway, c) in &inner.gateways {
                let g = escape(gateway);
                let _ = writeln!(out, "ingest_received_messages_total{{gateway=\"{g}\"}} {}", c.received);
                let _ = writeln!(out, "ingest_stored_messages_total{{gateway=\"{g}\"}} {}", c.stored);
                let _ = writeln!(out, "ingest_duplicate_messages_total{{gateway=\"{g}\"}} {}", c.duplicates);
                for (reason, n) in &c.dead_lettered {
                    let _ = writeln!(
                        out,
                        "ingest_dead_lettered_messages_total{{gateway=\"{g}\",reason=\"{reason}\"}} {n}"
                    );
                }
            }
            let _ = writeln!(
                out,
                "# HELP ingest_batches_total Batches committed.\n# TYPE ingest_batches_total counter\ningest_batches_total {}",
                inner.batches
            );
            let _ = writeln!(
                out,
                "# HELP ingest_commit_seconds_total Time spent committing batches.\n# TYPE ingest_commit_seconds_total counter\ningest_commit_seconds_total {}",
                inner.commit_seconds_sum
            );
            let _ = writeln!(
                out,
                "# HELP ingest_commit_failures_total Failed batch commits (retried).\n# TYPE ingest_commit_failures_total counter\ningest_commit_failures_total {}",
                inner.commit_failures
            );
            let _ = writeln!(
                out,
                "# HELP analysis_beats_total Beats detected in ECG.\n# TYPE analysis_beats_total counter\nanalysis_beats_total {}",
                inner.beats
            );
            let _ = writeln!(
                out,
                "# HELP analysis_ecg_gaps_total Gaps recorded in ECG streams.\n# TYPE analysis_ecg_gaps_total counter\nanalysis_ecg_gaps_total {}",
                inner.gaps
            );
            let _ = writeln!(
                out,
                "# HELP analysis_dropped_chunks_total ECG chunks stored but not analysed.\n# TYPE analysis_dropped_chunks_total counter\nanalysis_dropped_chunks_total {}",
                inner.hot_path_dropped_chunks
            );
            out
        })
    }
}

/// Escapes a label value (gateway ids are restricted by the wire, but be safe).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_counted_per_gateway_and_reason() {
        let t = Telemetry::new();
        let mut batch = BTreeMap::new();
        batch.insert(
            "gw-1".to_owned(),
            IngestBatchCommitted {
                received: 3,
                stored: 1,
                duplicates: 0,
                dead_lettered: vec!["schema", "schema"],
            },
        );
        t.batch_committed(Duration::from_millis(5), &batch);
        let text = t.render_prometheus();
        assert!(
            text.contains(
                "ingest_dead_lettered_messages_total{gateway=\"gw-1\",reason=\"schema\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("ingest_received_messages_total{gateway=\"gw-1\"} 3"),
            "{text}"
        );
        assert_eq!(t.gateway("gw-1").stored, 1);
    }
}
