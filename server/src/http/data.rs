//! What the HTTP layer reads and changes, as a port ([`ClinicalData`]) with the
//! shapes the API serves. The server core (registry, storage, alert engine)
//! implements the port; [`super::simulated`] implements it in memory for the
//! demo and the browser tests.
//!
//! Every value carries its unit (UCUM code) and two instants: when the device
//! measured it and when the server received it.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::alerts::rules::{Condition, Op, Override, RulesError, ThresholdRule};
use crate::language::Language;
use crate::oncall::handover::HandoverInput;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A patient's registry id.
    PatientId
);
string_id!(
    /// A user's id.
    UserId
);
string_id!(
    /// A care team's id.
    CareTeamId
);
string_id!(
    /// An alert's id.
    AlertId
);

/// A patient as shown in lists: enough to never confuse two patients.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatientSummary {
    /// Registry id.
    pub id: PatientId,
    /// Name in kanji (family name first).
    pub name: String,
    /// Furigana reading of the name (katakana).
    pub name_kana: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Care teams responsible for the patient.
    pub care_teams: BTreeSet<CareTeamId>,
}

/// A patient's record as the detail view needs it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatientDetail {
    /// Name, furigana, date of birth, teams.
    #[serde(flatten)]
    pub summary: PatientSummary,
    /// Main diseases.
    pub diseases: Vec<String>,
    /// Known allergies.
    pub allergies: Vec<String>,
    /// Do-not-attempt-resuscitation order on file.
    pub dnar: bool,
    /// On home oxygen (NEWS2 scores SpO2 on oxygen differently).
    pub home_oxygen: bool,
    /// NEWS2 SpO2 scale from the record (1, or 2 for hypercapnic respiratory failure).
    pub news2_spo2_scale: u8,
}

/// Kinds of vital sign the dashboard shows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VitalKind {
    /// Heart rate, `/min`.
    HeartRate,
    /// Oxygen saturation, `%`.
    Spo2,
    /// Systolic blood pressure, `mm[Hg]`.
    SystolicBp,
    /// Diastolic blood pressure, `mm[Hg]`.
    DiastolicBp,
    /// Body temperature, `Cel`.
    Temperature,
    /// Body weight, `kg`.
    Weight,
}

impl VitalKind {
    /// All kinds, in display order.
    pub const ALL: [VitalKind; 6] = [
        VitalKind::HeartRate,
        VitalKind::Spo2,
        VitalKind::SystolicBp,
        VitalKind::DiastolicBp,
        VitalKind::Temperature,
        VitalKind::Weight,
    ];

    /// UCUM unit code.
    pub fn ucum(self) -> &'static str {
        match self {
            VitalKind::HeartRate => "/min",
            VitalKind::Spo2 => "%",
            VitalKind::SystolicBp | VitalKind::DiastolicBp => "mm[Hg]",
            VitalKind::Temperature => "Cel",
            VitalKind::Weight => "kg",
        }
    }

    /// Beyond this age a value of this kind is stale: spot measurements (BP,
    /// temperature, weight) are taken a few times a day, streams every second.
    pub fn stale_after_seconds(self) -> i64 {
        match self {
            VitalKind::HeartRate | VitalKind::Spo2 => 5 * 60,
            VitalKind::SystolicBp | VitalKind::DiastolicBp | VitalKind::Temperature => 12 * 3600,
            VitalKind::Weight => 36 * 3600,
        }
    }
}

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Observation {
    /// What was measured.
    pub kind: VitalKind,
    /// The value, in `unit`.
    pub value: f64,
    /// UCUM unit code.
    pub unit: String,
    /// When the device measured it (device clock, converted to UTC).
    pub measured_at: DateTime<Utc>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
}

/// One point of a trend: the bucket's start and its min / mean / max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendPoint {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    /// Smallest value in the bucket.
    pub min: f64,
    /// Mean of the bucket.
    pub mean: f64,
    /// Largest value in the bucket.
    pub max: f64,
}

/// Alert priority (IEC 60601-1-8 spirit).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertPriority {
    /// Informational / adherence.
    Low,
    /// Prompt response.
    Medium,
    /// Immediate response.
    High,
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, nobody told yet.
    Raised,
    /// Delivered to someone.
    Notified,
    /// Someone took it.
    Acknowledged,
    /// Passed to the next tier.
    Escalated,
    /// Done.
    Resolved,
}

impl AlertState {
    /// Still needs someone.
    pub fn is_open(self) -> bool {
        !matches!(self, AlertState::Resolved)
    }
}

/// A lifecycle action a user takes on an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// "I have it."
    Acknowledge,
    /// "The next tier must look."
    Escalate,
    /// "Done."
    Resolve,
}

/// An alert's title and summary in one language.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertWording {
    /// Short title, e.g. "SpO₂ 低値".
    pub title: String,
    /// What was found, with values and units.
    pub message: String,
}

/// An alert's wording in each dashboard language.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertWordings {
    /// Japanese.
    pub ja: AlertWording,
    /// English.
    pub en: AlertWording,
}

impl AlertWordings {
    /// The wording in `language`.
    pub fn in_language(&self, language: Language) -> &AlertWording {
        match language {
            Language::Ja => &self.ja,
            Language::En => &self.en,
        }
    }

    /// The wording in every language, from one function of the language.
    pub fn in_each_language(word: impl Fn(Language) -> AlertWording) -> Self {
        Self {
            ja: word(Language::Ja),
            en: word(Language::En),
        }
    }
}

/// One transition in an alert's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertTransition {
    /// State entered.
    pub state: AlertState,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (absent for the engine's own transitions).
    pub by: Option<UserId>,
    /// Their note.
    pub note: Option<String>,
}

/// An alert.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Id.
    pub id: AlertId,
    /// Patient it is about.
    pub patient_id: PatientId,
    /// Priority.
    pub priority: AlertPriority,
    /// Current state.
    pub state: AlertState,
    /// Rule that raised it (stable code, e.g. `spo2_low`).
    pub rule: String,
    /// Human summary in English, e.g. "SpO₂ 86 % (limit < 90)".
    pub message: String,
    /// Title and summary in each dashboard language.
    pub wording: AlertWordings,
    /// Whether the condition still holds (an alert stays open after its condition cleared until
    /// someone resolves it).
    pub condition_active: bool,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// User it is routed to, if routed.
    pub routed_to: Option<UserId>,
    /// History, oldest first.
    pub transitions: Vec<AlertTransition>,
}

/// A device's and its gateway's last known state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceStatus {
    /// Device id.
    pub device_id: String,
    /// Model name.
    pub model: String,
    /// Battery level, percent.
    pub battery_percent: Option<u8>,
    /// Last reading from the device.
    pub last_seen: Option<DateTime<Utc>>,
    /// Gateway that relays it.
    pub gateway_id: String,
    /// Gateway online (from its MQTT Last Will).
    pub gateway_online: bool,
    /// Last message from the gateway.
    pub gateway_last_seen: Option<DateTime<Utc>>,
}

/// A chunk of ECG for the live strip.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EcgFrame {
    /// Instant of the first sample.
    pub start: DateTime<Utc>,
    /// Samples per second.
    pub sample_rate_hz: u32,
    /// Samples in microvolts.
    pub samples_uv: Vec<i32>,
    /// R peaks in this chunk: sample indices into `samples_uv`.
    pub r_peaks: Vec<u32>,
    /// RR interval ending at each R peak, milliseconds (absent for the first beat seen).
    pub rr_ms: Vec<Option<u32>>,
}

/// A detected beat for the live strip.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BeatMark {
    /// Instant of the R peak.
    pub at: DateTime<Utc>,
    /// RR interval ending at this beat, milliseconds (absent for the first beat of a stream).
    pub rr_ms: Option<u32>,
}

/// Something that happened to one patient, pushed live.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PatientEvent {
    /// ECG chunk (may be dropped for slow clients).
    Ecg(EcgFrame),
    /// A beat found in the ECG after its chunk was sent (the rhythm analysis holds beats back a
    /// few seconds to judge them); the strip marks it where it was drawn. May be dropped.
    Beat(BeatMark),
    /// A new observation (never dropped).
    Observation(Observation),
    /// Device / gateway status change (never dropped).
    Device(DeviceStatus),
}

impl PatientEvent {
    /// Live ECG and its beat marks may be shed under backpressure; state changes may not.
    pub fn is_droppable(&self) -> bool {
        matches!(self, PatientEvent::Ecg(_) | PatientEvent::Beat(_))
    }
}

/// `value op limit`, as a threshold rule writes it (`op` is `<`, `<=`, `>` or `>=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleCondition {
    /// The comparison.
    pub op: String,
    /// The limit, in the rule's unit.
    pub value: f64,
}

impl From<Condition> for RuleCondition {
    fn from(c: Condition) -> Self {
        let op = match c.op {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        Self {
            op: op.to_owned(),
            value: c.value,
        }
    }
}

/// A doctor's override of one threshold rule for one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleOverride {
    /// Raising limit, in the rule's unit.
    pub raise_value: f64,
    /// Clearing limit, in the rule's unit.
    pub clear_value: f64,
    /// The doctor who set it.
    pub set_by: UserId,
    /// Their name, as the registry has it (absent if the account is gone).
    pub set_by_name: Option<String>,
    /// Why.
    pub reason: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// When it stops applying (the default applies again).
    pub expires_at: DateTime<Utc>,
}

/// A threshold rule as it applies to one patient: the rules file's default, the range a doctor
/// may move it within, and the doctor's override in force, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatientRuleLimits {
    /// Rule id (as alerts name it, e.g. `spo2_low`).
    pub rule_id: String,
    /// What it watches (`spo2`, `pulse_rate`, `systolic_bp` …).
    pub measure: String,
    /// UCUM unit of every limit.
    pub unit: String,
    /// Default raising condition.
    pub raise: RuleCondition,
    /// Default clearing condition.
    pub clear: RuleCondition,
    /// Lowest limit an override may set.
    pub override_min: f64,
    /// Highest limit an override may set.
    pub override_max: f64,
    /// The override in force, if any.
    pub override_in_force: Option<RuleOverride>,
}

impl PatientRuleLimits {
    /// Each rule with the override of it among `overrides` (one patient's, in force).
    pub fn of_rules(rules: &[ThresholdRule], overrides: &[Override]) -> Vec<Self> {
        rules
            .iter()
            .map(|rule| Self {
                rule_id: rule.id.clone(),
                measure: rule.measure.as_str().to_owned(),
                unit: rule.unit.clone(),
                raise: rule.raise.into(),
                clear: rule.clear.into(),
                override_min: rule.override_range.min,
                override_max: rule.override_range.max,
                override_in_force: overrides.iter().find(|o| o.rule == rule.id).map(|o| {
                    RuleOverride {
                        raise_value: o.raise_value,
                        clear_value: o.clear_value,
                        set_by: UserId(o.set_by.clone()),
                        set_by_name: None,
                        reason: o.reason.clone(),
                        set_at: o.set_at,
                        expires_at: o.expires_at,
                    }
                }),
            })
            .collect()
    }
}

/// The limits of `rule` among [`PatientRuleLimits::of_rules`].
pub fn limits_of_rule(
    rules: &[ThresholdRule],
    overrides: &[Override],
    rule: &str,
) -> Result<PatientRuleLimits, DataError> {
    PatientRuleLimits::of_rules(rules, overrides)
        .into_iter()
        .find(|l| l.rule_id == rule)
        .ok_or_else(|| RulesError::UnknownRule(rule.to_owned()).into())
}

/// A doctor's new limits for one rule and one patient.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuleOverrideRequest {
    /// Raising limit, in the rule's unit, within the rule's override range.
    pub raise_value: f64,
    /// Clearing limit, in the rule's unit, within the range and leaving a hysteresis band.
    pub clear_value: f64,
    /// Why (required; shown with the limits and audited).
    pub reason: String,
    /// Until when (must be in the future).
    pub expires_at: DateTime<Utc>,
}

impl RuleOverrideRequest {
    /// The override this request asks for, set by `by` at `at`.
    pub fn into_override(
        self,
        patient: &PatientId,
        rule: &str,
        by: &UserId,
        at: DateTime<Utc>,
    ) -> Override {
        Override {
            patient: patient.0.clone(),
            rule: rule.to_owned(),
            raise_value: self.raise_value,
            clear_value: self.clear_value,
            set_by: by.0.clone(),
            reason: self.reason,
            set_at: at,
            expires_at: self.expires_at,
        }
    }
}

/// A user account as the registry holds it.
#[derive(Debug, Clone)]
pub struct UserAccount {
    /// Id.
    pub id: UserId,
    /// Login name.
    pub login: String,
    /// Name to show.
    pub display_name: String,
    /// Roles.
    pub roles: BTreeSet<crate::http::access::Role>,
    /// Care teams.
    pub care_teams: BTreeSet<CareTeamId>,
    /// Argon2 PHC string.
    pub password_phc: String,
    /// Base32 TOTP secret, if enrolled.
    pub totp_secret: Option<String>,
}

/// Failure of the data port.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No such patient.
    #[error("patient not found: {0}")]
    PatientNotFound(PatientId),
    /// No such alert.
    #[error("alert not found: {0}")]
    AlertNotFound(AlertId),
    /// The alert cannot take this action in its current state.
    #[error("alert {alert} is {state:?} and cannot be {action:?}d")]
    InvalidTransition {
        /// Alert.
        alert: AlertId,
        /// Its state.
        state: AlertState,
        /// Refused action.
        action: AlertAction,
    },
    /// A rule override was refused (unknown rule, out of range …).
    #[error(transparent)]
    OverrideRefused(#[from] RulesError),
    /// There is no override of the rule in force to revoke.
    #[error("no override of {rule} in force for patient {patient}")]
    NoOverrideInForce {
        /// Patient.
        patient: PatientId,
        /// Rule id.
        rule: String,
    },
    /// The store failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

/// What the HTTP layer needs from the rest of the server.
#[async_trait::async_trait]
pub trait ClinicalData: Send + Sync + 'static {
    /// The account with this login name.
    async fn user_by_login(&self, login: &str) -> Result<Option<UserAccount>, DataError>;
    /// Records the user's TOTP secret once they proved their authenticator holds it, or removes
    /// it (an administrator's reset after a lost phone).
    async fn set_totp_secret(&self, user: &UserId, secret: Option<&str>) -> Result<(), DataError>;
    /// Every patient (the HTTP layer filters by scope).
    async fn patients(&self) -> Result<Vec<PatientSummary>, DataError>;
    /// One patient's record.
    async fn patient(&self, id: &PatientId) -> Result<PatientDetail, DataError>;
    /// The newest observation of each kind.
    async fn latest(&self, id: &PatientId) -> Result<Vec<Observation>, DataError>;
    /// Observations of one kind in `[from, to)`, newest first, at most `limit`.
    async fn readings(
        &self,
        id: &PatientId,
        kind: Option<VitalKind>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Observation>, DataError>;
    /// A trend of one kind over `[from, to)` in at most `max_points` buckets.
    async fn trend(
        &self,
        id: &PatientId,
        kind: VitalKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<TrendPoint>, DataError>;
    /// The patient's devices and gateways.
    async fn devices(&self, id: &PatientId) -> Result<Vec<DeviceStatus>, DataError>;
    /// All alerts, newest first (the HTTP layer filters by scope).
    async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, DataError>;
    /// One alert.
    async fn alert(&self, id: &AlertId) -> Result<Alert, DataError>;
    /// Applies a lifecycle action; returns the alert after it.
    async fn act_on_alert(
        &self,
        id: &AlertId,
        action: AlertAction,
        by: &UserId,
        note: &str,
    ) -> Result<Alert, DataError>;
    /// The threshold rules a doctor may override for the patient, each with the override in force.
    async fn rule_limits(&self, id: &PatientId) -> Result<Vec<PatientRuleLimits>, DataError>;
    /// Sets the patient's override of `rule` (validated, audited, then applied to the next
    /// reading); returns the rule's limits after it.
    async fn set_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        request: RuleOverrideRequest,
        by: &UserId,
    ) -> Result<PatientRuleLimits, DataError>;
    /// Revokes the patient's override of `rule` (audited, with the reason); returns the rule's
    /// limits after it.
    async fn revoke_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        by: &UserId,
        reason: &str,
    ) -> Result<PatientRuleLimits, DataError>;
    /// What the on-call handover page of an alert is rendered from.
    async fn handover(
        &self,
        alert: &AlertId,
        language: Language,
    ) -> Result<HandoverInput, DataError>;
    /// Live events of one patient.
    fn subscribe_patient(
        &self,
        id: &PatientId,
    ) -> Result<broadcast::Receiver<PatientEvent>, DataError>;
    /// Every alert change (the HTTP layer filters by scope per subscriber).
    fn subscribe_alerts(&self) -> broadcast::Receiver<Alert>;
    /// Is the storage reachable (for `/readyz`)?
    async fn ready(&self) -> Result<(), DataError>;
}
