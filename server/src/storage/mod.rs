//! What the server stores and reads back, independent of the database.
//!
//! [`Storage`] is implemented by [`crate::sinks::timescale::TimescaleStore`] (PostgreSQL +
//! TimescaleDB) and [`crate::sinks::sqlite::SqliteStore`] (the embedded default);
//! `tests/storage_conformance.rs`
//! is the one suite both must pass. Callers are generic over the backend and pick it once, at
//! startup ([`open`]).

pub mod ecg_codec;

use std::future::Future;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mimamori_wire::{AllowedDevice, Epoch, GatewayId, VitalSign};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::alerts::engine::EcgQuality;
use crate::config::StorageConfig;
use crate::sinks::sqlite::SqliteStore;
use crate::sinks::timescale::TimescaleStore;

/// Why a storage operation failed.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
}

impl StorageError {
    /// Whether trying the same operation again may succeed (the connection or pool failed), as
    /// opposed to a permanent failure (a constraint, bad data) that must be reported, not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Database(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
            ),
            Self::Migrate(_) | Self::Corrupt { .. } | Self::NotFound { .. } => false,
        }
    }
}

/// A stored reading's owner, from the registry (`patients.id`).
pub type PatientId = String;

/// One vital-sign value, attached to the patient whose loan covered its measurement time.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationRecord {
    pub patient_id: PatientId,
    pub device_id: String,
    pub vital: VitalSign,
    pub value: f64,
    pub measured_at: DateTime<Utc>,
    pub device_time: Option<NaiveDateTime>,
    pub received_at: DateTime<Utc>,
    /// Time flags from the gateway and the server, as their wire labels.
    pub time_flags: Vec<String>,
}

/// One ECG chunk as received (one row; samples packed by [`ecg_codec`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EcgRecord {
    pub patient_id: PatientId,
    pub device_id: String,
    pub lead: String,
    pub stream_id: u64,
    pub first_sample_index: u64,
    pub first_sample_at: DateTime<Utc>,
    pub sample_rate_hz: f64,
    pub uv_per_count: f64,
    pub lead_off: bool,
    pub samples: Vec<i16>,
    pub received_at: DateTime<Utc>,
}

/// A device's reported state.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusRecord {
    pub device_id: String,
    pub at: DateTime<Utc>,
    pub connected: bool,
    pub battery_percent: Option<u8>,
    pub lead_off: Option<bool>,
    pub signal_quality: Option<u8>,
    pub firmware: Option<String>,
}

/// A gateway's presence (state, not deduplicated).
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceRecord {
    pub online: bool,
    pub software_version: String,
    pub outbox_depth: Option<u64>,
}

/// A refused message, kept with its raw bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// A short stable label ([`mimamori_wire::WireError::reason`] or an ownership reason).
    pub reason: &'static str,
    pub detail: String,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// What one message carried, after decoding and validation.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Observations(Vec<ObservationRecord>),
    Ecg(EcgRecord),
    Status(StatusRecord),
    Presence(PresenceRecord),
    DeadLetter(DeadLetter),
}

/// One received message, ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestMessage {
    /// From the topic.
    pub gateway: GatewayId,
    /// `(epoch, seq)` when the payload had a readable one; presence and unreadable payloads have none.
    pub key: Option<(Epoch, u64)>,
    /// Already covered by the gateway's ack watermark: counted as a duplicate, not written.
    pub known_duplicate: bool,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// The gateway's `sent_at`, for its clock offset.
    pub sent_at: Option<DateTime<Utc>>,
    pub content: Content,
}

/// The new ack watermark of one `(gateway, epoch)`, written in the batch's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    pub gateway: GatewayId,
    pub epoch: Epoch,
    pub stored_through: u64,
}

/// Messages committed in one transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestBatch {
    pub messages: Vec<IngestMessage>,
    pub watermarks: Vec<Watermark>,
}

/// What a commit did with each message of the batch, in order: `true` when written now,
/// `false` when it was a duplicate of one stored before.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    pub fresh: Vec<bool>,
}

/// A `(gateway, epoch)`'s persisted dedup state, to rebuild the in-memory watermarks on start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWatermark {
    pub gateway: GatewayId,
    pub epoch: Epoch,
    pub stored_through: Option<u64>,
    /// Stored sequences above `stored_through` (they wait for a gap below them to fill).
    pub stored_above: Vec<u64>,
}

/// Reads every committed watermark: `(gateway_id, epoch, stored_through)` rows.
pub(crate) const WATERMARKS_SQL: &str =
    "SELECT gateway_id, epoch, stored_through FROM ingest_watermarks";

/// Reads the stored sequences above each watermark (or of epochs without one), in order:
/// `(gateway_id, epoch, seq)` rows.
pub(crate) const SEQUENCES_ABOVE_WATERMARKS_SQL: &str =
    "SELECT d.gateway_id, d.epoch, d.seq FROM ingest_dedup d
     LEFT JOIN ingest_watermarks w ON w.gateway_id = d.gateway_id AND w.epoch = d.epoch
     WHERE w.stored_through IS NULL OR d.seq > w.stored_through
     ORDER BY d.seq";

/// Builds the watermarks from the rows of [`WATERMARKS_SQL`] and
/// [`SEQUENCES_ABOVE_WATERMARKS_SQL`]; both backends read the same two queries.
pub(crate) fn assemble_watermarks(
    watermarks: Vec<(String, String, i64)>,
    sequences_above: Vec<(String, String, i64)>,
) -> Result<Vec<StoredWatermark>, StorageError> {
    use crate::sinks::sql::{parse_epoch, parse_gateway, to_u64};

    let mut map: std::collections::BTreeMap<(String, String), (Option<u64>, Vec<u64>)> =
        std::collections::BTreeMap::new();
    for (gateway, epoch, through) in watermarks {
        map.insert(
            (gateway, epoch),
            (Some(to_u64(through, "stored_through")?), vec![]),
        );
    }
    for (gateway, epoch, seq) in sequences_above {
        map.entry((gateway, epoch))
            .or_default()
            .1
            .push(to_u64(seq, "sequence")?);
    }
    map.into_iter()
        .map(|((gateway, epoch), (through, above))| {
            Ok(StoredWatermark {
                gateway: parse_gateway(&gateway)?,
                epoch: parse_epoch(&epoch)?,
                stored_through: through,
                stored_above: above,
            })
        })
        .collect()
}

/// A device loan with the consent facts ingest needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanRecord {
    pub device_id: String,
    pub patient_id: PatientId,
    pub device_user: Option<u8>,
    pub lent_from: DateTime<Utc>,
    pub lent_until: Option<DateTime<Utc>>,
    pub consent_monitoring_at: Option<DateTime<Utc>>,
    pub consent_monitoring_withdrawn_at: Option<DateTime<Utc>>,
}

/// The devices one gateway may read: those under a loan active at the time asked, to the patient
/// the gateway serves, while that patient's monitoring consent is in force (the same rule as
/// [`crate::registry::LoanBook::owner`]). Published to the gateway as its `down/config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayAllowList {
    /// `gateways.id` as stored (the publisher checks it is a valid MQTT gateway id).
    pub gateway_id: String,
    pub patient_id: Option<PatientId>,
    /// Ordered by model, serial and BLE address.
    pub devices: Vec<AllowedDevice>,
}

/// Every registered gateway with its allowed devices at `$1` (the backend's time type), one row
/// per device, or one row with NULL device columns for a gateway that has none:
/// `(gateway_id, patient_id, model, serial, ble_address, device_user)`.
pub(crate) const GATEWAY_ALLOW_LISTS_SQL: &str =
    "SELECT g.id, g.patient_id, d.model, d.serial, d.ble_address,
            CAST(l.device_user AS BIGINT)
     FROM gateways g
     LEFT JOIN patients p ON p.id = g.patient_id
         AND p.consent_monitoring_at <= $1
         AND (p.consent_monitoring_withdrawn_at IS NULL OR p.consent_monitoring_withdrawn_at > $1)
     LEFT JOIN loans l ON l.patient_id = p.id
         AND l.lent_from <= $1 AND (l.lent_until IS NULL OR l.lent_until > $1)
     LEFT JOIN devices d ON d.id = l.device_id
     ORDER BY g.id, d.id";

/// One row of [`GATEWAY_ALLOW_LISTS_SQL`].
pub(crate) type AllowListRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Groups the rows of [`GATEWAY_ALLOW_LISTS_SQL`] per gateway; both backends read that query.
/// Devices are sorted here, so both backends give the same order whatever their collation.
pub(crate) fn assemble_allow_lists(rows: Vec<AllowListRow>) -> Vec<GatewayAllowList> {
    let mut lists: std::collections::BTreeMap<String, GatewayAllowList> =
        std::collections::BTreeMap::new();
    for (gateway_id, patient_id, model, serial, ble_address, device_user) in rows {
        let list = lists
            .entry(gateway_id.clone())
            .or_insert_with(|| GatewayAllowList {
                gateway_id,
                patient_id,
                devices: Vec::new(),
            });
        // `devices.model` is NOT NULL: no model means the gateway has no device.
        if let Some(model) = model {
            list.devices.push(AllowedDevice {
                model,
                serial,
                ble_address,
                device_user: device_user.and_then(|u| u8::try_from(u).ok()),
            });
        }
    }
    lists
        .into_values()
        .map(|mut list| {
            list.devices.sort_by(|a, b| {
                (&a.model, &a.serial, &a.ble_address).cmp(&(&b.model, &b.serial, &b.ble_address))
            });
            list
        })
        .collect()
}

/// A detected beat.
#[derive(Clone, Debug, PartialEq)]
pub struct BeatRecord {
    pub patient_id: PatientId,
    pub at: DateTime<Utc>,
    pub stream_id: u64,
    pub sample_index: u64,
    pub rr_ms: Option<f64>,
    pub late: bool,
}

/// Heart rate at one second of ECG.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartRateRecord {
    pub patient_id: PatientId,
    pub at: DateTime<Utc>,
    pub bpm: f64,
}

/// A missing stretch `[from_index, to_index)` of an ECG stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapRecord {
    pub patient_id: PatientId,
    pub stream_id: u64,
    pub from_index: u64,
    pub to_index: u64,
    pub detected_at: DateTime<Utc>,
}

/// Where a stream's analysis got to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub patient_id: PatientId,
    pub stream_id: u64,
    /// Every chunk below this index was analysed and what it gave stored.
    pub next_index: u64,
    pub last_beat_index: Option<u64>,
    pub updated_at: DateTime<Utc>,
    /// The analysis state at or before `next_index`, when one was taken with this checkpoint
    /// (`None` keeps the stored one).
    pub state: Option<AnalysisState>,
}

/// A snapshot of a stream's whole analysis, to resume it exactly: replaying the stored chunks
/// from `index` to the checkpoint's `next_index` rebuilds the state at the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisState {
    /// Stream index the state stands at.
    pub index: u64,
    /// When the sample at `index` was taken (where to start reading the stored chunks).
    pub at: DateTime<Utc>,
    /// [`crate::transforms::detect_beats::StreamAnalyzer::snapshot`]'s bytes.
    pub bytes: Vec<u8>,
}

/// What a rhythm episode was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EpisodeKind {
    /// Atrial fibrillation over consecutive 30-s windows.
    Af,
    /// An RR interval over 2 s.
    Pause2s,
    /// An RR interval over 3 s.
    Pause3s,
    /// No beat for 4 s or more.
    Asystole,
    Bradycardia,
    Tachycardia,
    /// Ventricular flutter or fibrillation: no QRS complexes to count.
    VentricularFibrillation,
}

impl EpisodeKind {
    const ALL: [Self; 7] = [
        Self::Af,
        Self::Pause2s,
        Self::Pause3s,
        Self::Asystole,
        Self::Bradycardia,
        Self::Tachycardia,
        Self::VentricularFibrillation,
    ];

    /// The stored label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Af => "af",
            Self::Pause2s => "pause_2s",
            Self::Pause3s => "pause_3s",
            Self::Asystole => "asystole",
            Self::Bradycardia => "bradycardia",
            Self::Tachycardia => "tachycardia",
            Self::VentricularFibrillation => "vf",
        }
    }

    pub(crate) fn parse(label: &str) -> Result<Self, StorageError> {
        Self::ALL
            .into_iter()
            .find(|k| k.label() == label)
            .ok_or_else(|| StorageError::Corrupt {
                what: "rhythm episode kind",
                detail: label.to_owned(),
            })
    }
}

/// A rhythm episode, written when it starts and again when it ends (same key).
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeRecord {
    pub patient_id: PatientId,
    pub stream_id: u64,
    pub kind: EpisodeKind,
    /// Stream index where it started (the R peak before a pause; a window start for AF).
    pub start_index: u64,
    pub started_at: DateTime<Utc>,
    /// `None` while it lasts.
    pub ended_at: Option<DateTime<Utc>>,
    /// Every second it spans was usable signal (`false`: possibly technical, not clinical).
    pub signal_usable: bool,
    /// Longest RR inside it, ms (the gap itself for a pause or asystole).
    pub max_rr_ms: Option<f64>,
    /// Lowest (bradycardia) or highest (tachycardia) smoothed rate, /min.
    pub extreme_per_min: Option<f64>,
}

/// A run of seconds of equal signal quality `[started_at, ended_at)`, rewritten as it grows.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityRunRecord {
    pub patient_id: PatientId,
    pub stream_id: u64,
    pub quality: EcgQuality,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

/// The stored label of a signal quality.
pub fn quality_label(quality: EcgQuality) -> &'static str {
    match quality {
        EcgQuality::Usable => "usable",
        EcgQuality::Poor => "poor",
        EcgQuality::LeadOff => "lead_off",
    }
}

pub(crate) fn parse_quality(label: &str) -> Result<EcgQuality, StorageError> {
    [EcgQuality::Usable, EcgQuality::Poor, EcgQuality::LeadOff]
        .into_iter()
        .find(|q| quality_label(*q) == label)
        .ok_or_else(|| StorageError::Corrupt {
            what: "signal quality",
            detail: label.to_owned(),
        })
}

/// Output of the hot path, written together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DerivedBatch {
    pub beats: Vec<BeatRecord>,
    pub heart_rate: Vec<HeartRateRecord>,
    pub gaps: Vec<GapRecord>,
    pub episodes: Vec<EpisodeRecord>,
    pub quality: Vec<QualityRunRecord>,
    pub checkpoints: Vec<Checkpoint>,
}

impl DerivedBatch {
    pub fn is_empty(&self) -> bool {
        self.beats.is_empty()
            && self.heart_rate.is_empty()
            && self.gaps.is_empty()
            && self.episodes.is_empty()
            && self.quality.is_empty()
            && self.checkpoints.is_empty()
    }
}

/// A lent device's last known state and that of the gateway relaying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub device_id: String,
    pub model: String,
    pub battery_percent: Option<u8>,
    /// When the device last reported its status.
    pub status_at: Option<DateTime<Utc>>,
    /// The gateway that relayed that status, or else the one registered for the patient.
    pub gateway_id: Option<String>,
    /// From the gateway's presence (its Last Will says offline).
    pub gateway_online: Option<bool>,
    pub gateway_last_seen: Option<DateTime<Utc>>,
}

/// Upserts a rhythm episode; the key is `(patient_id, stream_id, kind, start_index,
/// started_at)`. Binds: patient, stream, kind, start index, started_at, ended_at,
/// signal_usable, max_rr_ms, extreme_per_min.
pub(crate) const UPSERT_EPISODE_SQL: &str = "INSERT INTO rhythm_episodes
     (patient_id, stream_id, kind, start_index, started_at, ended_at, signal_usable, max_rr_ms,
      extreme_per_min)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (patient_id, stream_id, kind, start_index, started_at) DO UPDATE SET
       ended_at = excluded.ended_at, signal_usable = excluded.signal_usable,
       max_rr_ms = excluded.max_rr_ms, extreme_per_min = excluded.extreme_per_min";

/// Upserts a quality run keyed by `(patient_id, stream_id, started_at)`. Binds: patient,
/// stream, quality label, started_at, ended_at.
pub(crate) const UPSERT_QUALITY_RUN_SQL: &str = "INSERT INTO ecg_quality_runs
     (patient_id, stream_id, quality, started_at, ended_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (patient_id, stream_id, started_at) DO UPDATE SET
       quality = excluded.quality, ended_at = excluded.ended_at";

/// Upserts a checkpoint, keeping the stored analysis state when the new one carries none.
/// Binds: patient, stream, next_index, last_beat_index, updated_at, state_index, state_at,
/// state.
pub(crate) const UPSERT_CHECKPOINT_SQL: &str = "INSERT INTO dsp_checkpoints
     (patient_id, stream_id, next_index, last_beat_index, updated_at, state_index, state_at, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (patient_id, stream_id) DO UPDATE SET
       next_index = excluded.next_index, last_beat_index = excluded.last_beat_index,
       updated_at = excluded.updated_at,
       state_index = COALESCE(excluded.state_index, dsp_checkpoints.state_index),
       state_at = COALESCE(excluded.state_at, dsp_checkpoints.state_at),
       state = COALESCE(excluded.state, dsp_checkpoints.state)";

/// Reads every checkpoint: `(patient, stream, next_index, last_beat_index, updated_at,
/// state_index, state_at, state)` rows.
pub(crate) const CHECKPOINTS_SQL: &str = "SELECT patient_id, stream_id, next_index,
     last_beat_index, updated_at, state_index, state_at, state FROM dsp_checkpoints";

/// Builds a checkpoint from the columns of [`CHECKPOINTS_SQL`] (times already decoded); both
/// backends read the same query.
pub(crate) fn checkpoint_from_row(
    patient_id: String,
    stream_id: i64,
    next_index: i64,
    last_beat_index: Option<i64>,
    updated_at: DateTime<Utc>,
    (state_index, state_at, state): (Option<i64>, Option<DateTime<Utc>>, Option<Vec<u8>>),
) -> Result<Checkpoint, StorageError> {
    use crate::sinks::sql::to_u64;
    let state = match (state_index, state_at, state) {
        (Some(index), Some(at), Some(bytes)) => Some(AnalysisState {
            index: to_u64(index, "sample index")?,
            at,
            bytes,
        }),
        _ => None,
    };
    Ok(Checkpoint {
        patient_id,
        stream_id: stream_id as u64,
        next_index: to_u64(next_index, "sample index")?,
        last_beat_index: last_beat_index
            .map(|i| to_u64(i, "sample index"))
            .transpose()?,
        updated_at,
        state,
    })
}

/// Columns of [`EPISODES_SQL`], times already decoded by the backend.
pub(crate) type EpisodeColumns = (
    String,
    i64,
    String,
    i64,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    bool,
    Option<f64>,
    Option<f64>,
);

pub(crate) fn episode_from_columns(c: EpisodeColumns) -> Result<EpisodeRecord, StorageError> {
    use crate::sinks::sql::to_u64;
    let (patient_id, stream, kind, start_index, started_at, ended_at, usable, max_rr, extreme) = c;
    Ok(EpisodeRecord {
        patient_id,
        stream_id: stream as u64,
        kind: EpisodeKind::parse(&kind)?,
        start_index: to_u64(start_index, "sample index")?,
        started_at,
        ended_at,
        signal_usable: usable,
        max_rr_ms: max_rr,
        extreme_per_min: extreme,
    })
}

/// Columns of [`QUALITY_RUNS_SQL`], times already decoded by the backend.
pub(crate) fn quality_run_from_columns(
    (patient_id, stream, quality, started_at, ended_at): (
        String,
        i64,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
    ),
) -> Result<QualityRunRecord, StorageError> {
    Ok(QualityRunRecord {
        patient_id,
        stream_id: stream as u64,
        quality: parse_quality(&quality)?,
        started_at,
        ended_at,
    })
}

/// A patient's episodes overlapping `[$2, $3)`, oldest first.
pub(crate) const EPISODES_SQL: &str = "SELECT patient_id, stream_id, kind, start_index,
     started_at, ended_at, signal_usable, max_rr_ms, extreme_per_min FROM rhythm_episodes
     WHERE patient_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)
     ORDER BY started_at, kind";

/// A patient's quality runs overlapping `[$2, $3)`, oldest first.
pub(crate) const QUALITY_RUNS_SQL: &str = "SELECT patient_id, stream_id, quality, started_at,
     ended_at FROM ecg_quality_runs
     WHERE patient_id = $1 AND started_at < $3 AND ended_at > $2 ORDER BY started_at";

/// A series a trend can be drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    Vital(VitalSign),
    /// Heart rate derived from ECG, per second.
    HeartRate,
}

/// One bucket of a trend.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendPoint {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub count: i64,
}

/// Ingest figures of one gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GatewayStats {
    pub gateway_id: String,
    pub received: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub dead_lettered: i64,
    pub dead_lettered_by_reason: std::collections::BTreeMap<String, i64>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Server receive time minus the gateway's send time of its latest message, in milliseconds.
    pub clock_offset_ms: Option<i64>,
}

/// Rows `(gateway_id, received, stored, duplicates, dead_lettered)` of the ingest counters.
pub(crate) type CountRow = (String, i64, i64, i64, i64);
/// Rows `(gateway_id, reason, count)` of the dead letters.
pub(crate) type DeadLetterRow = (String, String, i64);
/// Rows `(gateway_id, last_seen, clock_offset_ms)` of the gateways' state.
pub(crate) type GatewayStateRow = (String, Option<DateTime<Utc>>, Option<i64>);

/// Merges the three per-gateway queries both backends run into one [`GatewayStats`] per gateway
/// seen in any of them, ordered by gateway id.
pub(crate) fn assemble_gateway_stats(
    counts: Vec<CountRow>,
    dead_letters: Vec<DeadLetterRow>,
    states: Vec<GatewayStateRow>,
) -> Vec<GatewayStats> {
    use std::collections::BTreeMap;

    fn entry(stats: &mut BTreeMap<String, GatewayStats>, gateway_id: String) -> &mut GatewayStats {
        stats
            .entry(gateway_id.clone())
            .or_insert_with(|| GatewayStats {
                gateway_id,
                ..GatewayStats::default()
            })
    }

    let mut stats = BTreeMap::new();
    for (gateway_id, received, stored, duplicates, dead_lettered) in counts {
        let e = entry(&mut stats, gateway_id);
        e.received = received;
        e.stored = stored;
        e.duplicates = duplicates;
        e.dead_lettered = dead_lettered;
    }
    for (gateway_id, reason, count) in dead_letters {
        entry(&mut stats, gateway_id)
            .dead_lettered_by_reason
            .insert(reason, count);
    }
    for (gateway_id, last_seen, clock_offset_ms) in states {
        let e = entry(&mut stats, gateway_id);
        e.last_seen = last_seen;
        e.clock_offset_ms = clock_offset_ms;
    }
    stats.into_values().collect()
}

/// Rows removed by one retention run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Chunks (TimescaleDB) or rows (SQLite) dropped, per table.
    pub dropped: Vec<(String, u64)>,
}

/// A clinic in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    pub id: String,
    pub name: String,
    pub director: String,
    pub emergency_phone: String,
    pub opening_hours: String,
    /// `setagaya` or `tamagawa`.
    pub area: String,
}

/// A patient in the registry. Never logged: it identifies a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub id: PatientId,
    pub name: String,
    pub name_furigana: String,
    pub date_of_birth: NaiveDate,
    /// `female`, `male`, `other` or `unknown`.
    pub sex: String,
    pub address: String,
    #[serde(default)]
    pub map_url: Option<String>,
    #[serde(default)]
    pub key_person_name: Option<String>,
    #[serde(default)]
    pub key_person_phone: Option<String>,
    #[serde(default)]
    pub main_diseases: Vec<String>,
    #[serde(default)]
    pub medications: Vec<String>,
    #[serde(default)]
    pub allergies: Vec<String>,
    #[serde(default)]
    pub advance_directive: Option<String>,
    #[serde(default)]
    pub dnar: bool,
    /// Prescribed home oxygen flow, L/min.
    #[serde(default)]
    pub home_oxygen_l_per_min: Option<f64>,
    /// NEWS2 SpO2 scale, 1 or 2.
    #[serde(default = "default_news2_scale")]
    pub news2_spo2_scale: i16,
    #[serde(default)]
    pub reading_schedule: Option<String>,
    #[serde(default)]
    pub primary_clinic_id: Option<String>,
    #[serde(default)]
    pub consent_monitoring_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consent_monitoring_withdrawn_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consent_night_sharing_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consent_night_sharing_withdrawn_at: Option<DateTime<Utc>>,
}

const fn default_news2_scale() -> i16 {
    1
}

/// A device owned by the programme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// The wire's device id: `<model>:<serial>` or `<model>:<BLE address>`.
    pub id: String,
    pub model: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub ble_address: Option<String>,
    pub area: String,
}

/// A gateway (its credentials are the broker's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    pub id: String,
    #[serde(default)]
    pub patient_id: Option<PatientId>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A device lent to a patient from `lent_from` until `lent_until` (open-ended when `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loan {
    pub device_id: String,
    pub patient_id: PatientId,
    #[serde(default)]
    pub device_user: Option<u8>,
    pub lent_from: DateTime<Utc>,
    #[serde(default)]
    pub lent_until: Option<DateTime<Utc>>,
}

/// The operations every storage backend provides.
///
/// Methods return `Send` futures so a backend can be driven from any task.
pub trait Storage: Clone + Send + Sync + 'static {
    /// Applies pending migrations.
    fn migrate(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Commits a batch of messages in one transaction: dedup keys, contents, dead letters,
    /// watermarks and counters. A message whose key was stored before is not written again.
    fn commit_ingest(
        &self,
        batch: &IngestBatch,
    ) -> impl Future<Output = Result<CommitOutcome, StorageError>> + Send;

    /// The persisted watermarks and the stored sequences above them.
    fn load_watermarks(
        &self,
    ) -> impl Future<Output = Result<Vec<StoredWatermark>, StorageError>> + Send;

    /// Every loan, with its patient's consent.
    fn loans(&self) -> impl Future<Output = Result<Vec<LoanRecord>, StorageError>> + Send;

    /// Every registered gateway with the devices it may read at `at` (an empty list when none).
    fn gateway_allow_lists(
        &self,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<GatewayAllowList>, StorageError>> + Send;

    /// Writes the hot path's output; rewriting the same beats/HR rows is harmless.
    fn store_derived(
        &self,
        batch: &DerivedBatch,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Stream checkpoints, to resume analysis after a restart.
    fn checkpoints(&self) -> impl Future<Output = Result<Vec<Checkpoint>, StorageError>> + Send;

    /// A patient's rhythm episodes overlapping `[from, to)` (open ones included), oldest first.
    fn rhythm_episodes(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<EpisodeRecord>, StorageError>> + Send;

    /// A patient's signal-quality runs overlapping `[from, to)`, oldest first.
    fn quality_runs(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<QualityRunRecord>, StorageError>> + Send;

    /// A patient's observations of one vital sign in `[from, to)`, oldest first.
    fn observations(
        &self,
        patient: &str,
        vital: VitalSign,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ObservationRecord>, StorageError>> + Send;

    /// A patient's observations of one vital sign in `[from, to)`, newest first, at most `limit`.
    fn recent_observations(
        &self,
        patient: &str,
        vital: VitalSign,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ObservationRecord>, StorageError>> + Send;

    /// The devices lent to a patient at `at`, with their and their gateway's last known state.
    fn device_states(
        &self,
        patient: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<DeviceState>, StorageError>> + Send;

    /// A patient's ECG chunks starting in `[from, to)`, oldest first.
    fn ecg_chunks(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<EcgRecord>, StorageError>> + Send;

    /// A patient's beats in `[from, to)`, oldest first.
    fn beats(
        &self,
        patient: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<BeatRecord>, StorageError>> + Send;

    /// A series over `[from, to)` in at most `max_points` equal buckets (empty buckets omitted).
    fn trend(
        &self,
        patient: &str,
        series: Series,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: u32,
    ) -> impl Future<Output = Result<Vec<TrendPoint>, StorageError>> + Send;

    /// Dead letters received since `since`: `(gateway, reason, count)`.
    fn gateway_stats(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Vec<GatewayStats>, StorageError>> + Send;

    /// Drops medical-record data older than `medical_before` and other records older than
    /// `other_before`.
    fn apply_retention(
        &self,
        medical_before: DateTime<Utc>,
        other_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<RetentionReport, StorageError>> + Send;

    fn upsert_clinic(
        &self,
        clinic: &Clinic,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn upsert_patient(
        &self,
        patient: &Patient,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn upsert_device(
        &self,
        device: &Device,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn upsert_gateway(
        &self,
        gateway: &Gateway,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Records a loan; returns its id.
    fn add_loan(&self, loan: &Loan) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// Ends a loan at `at`.
    fn end_loan(
        &self,
        loan_id: i64,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn patients(&self) -> impl Future<Output = Result<Vec<Patient>, StorageError>> + Send;
}

/// A backend chosen from the configuration.
#[derive(Clone, Debug)]
pub enum Opened {
    Timescale(TimescaleStore),
    Sqlite(SqliteStore),
}

/// Connects to the configured backend and migrates it.
pub async fn open(config: &StorageConfig) -> Result<Opened, StorageError> {
    match config {
        StorageConfig::Postgres {
            url,
            max_connections,
        } => {
            let url = std::env::var("MIMAMORI_DATABASE_URL").unwrap_or_else(|_| url.clone());
            let store = TimescaleStore::connect(&url, *max_connections).await?;
            store.migrate().await?;
            Ok(Opened::Timescale(store))
        }
        StorageConfig::Sqlite { path } => {
            let store = SqliteStore::open(path).await?;
            store.migrate().await?;
            Ok(Opened::Sqlite(store))
        }
    }
}

/// A patient's observations of one vital sign in a time range, oldest first, both backends:
/// `$1` patient, `$2` LOINC, `$3..$4` range, `$5` limit.
pub(crate) const OBSERVATIONS_OLDEST_FIRST_SQL: &str = "SELECT patient_id, device_id, loinc, value,
     measured_at, device_time, received_at, time_flags FROM observations
     WHERE patient_id = $1 AND loinc = $2 AND measured_at >= $3 AND measured_at < $4
     ORDER BY measured_at LIMIT $5";

/// As [`OBSERVATIONS_OLDEST_FIRST_SQL`], newest first.
pub(crate) const OBSERVATIONS_NEWEST_FIRST_SQL: &str = "SELECT patient_id, device_id, loinc, value,
     measured_at, device_time, received_at, time_flags FROM observations
     WHERE patient_id = $1 AND loinc = $2 AND measured_at >= $3 AND measured_at < $4
     ORDER BY measured_at DESC LIMIT $5";

/// The device-state query both backends run (`$1` patient, `$2` instant). The latest status row of
/// each device is found by `max(at)`; the gateway is the one that relayed it, or the patient's.
pub(crate) const DEVICE_STATES_SQL: &str = "
    SELECT l.device_id, d.model, s.battery_percent, s.at, COALESCE(s.gateway_id, gw.id),
           g.online, g.last_seen
    FROM loans l
    JOIN devices d ON d.id = l.device_id
    LEFT JOIN device_status s ON s.device_id = l.device_id
        AND s.at = (SELECT max(at) FROM device_status WHERE device_id = l.device_id)
    LEFT JOIN gateways gw ON gw.patient_id = l.patient_id
    LEFT JOIN gateway_state g ON g.gateway_id = COALESCE(s.gateway_id, gw.id)
    WHERE l.patient_id = $1 AND l.lent_from <= $2 AND (l.lent_until IS NULL OR l.lent_until > $2)
    ORDER BY l.device_id";

/// Runs one body on whichever pool an enum with `Postgres(PgPool)` and `Sqlite(SqlitePool)`
/// variants holds (`on_pool!(Directory, self, |pool| …)`), for modules whose SQL is portable.
macro_rules! on_pool {
    ($kind:ident, $self:expr, |$pool:ident| $body:expr) => {
        match $self {
            $kind::Postgres($pool) => $body,
            $kind::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs a generic async function on whichever backend was opened.
#[macro_export]
macro_rules! with_storage {
    ($opened:expr, |$s:ident| $body:expr) => {
        match $opened {
            $crate::storage::Opened::Timescale($s) => $body,
            $crate::storage::Opened::Sqlite($s) => $body,
        }
    };
}
