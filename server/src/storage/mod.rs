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
