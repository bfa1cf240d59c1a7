//! Rules as data: the versioned rules file (`server/rules/default.toml`) and per-patient overrides.
//!
//! The file holds every default with its unit and clinical source. A patient's doctor may override
//! a threshold's `raise`/`clear` values, within the rule's `override_range` (the safety floor nobody
//! can override), for a limited time; each override records who set it, why and until when, and the
//! store keeps every change (see [`super::store`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The rules file shipped with the server.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../rules/default.toml");

/// Why a rules file or an override was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file is not valid TOML for [`RuleSet`].
    #[error("rules file does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// A rule's unit is not the unit of its measure.
    #[error("rule {rule}: unit {unit} is not {expected}, the unit of {measure:?}")]
    WrongUnit {
        /// The rule id.
        rule: String,
        /// The unit written.
        unit: String,
        /// The measure's UCUM unit.
        expected: &'static str,
        /// The measure.
        measure: Measure,
    },
    /// Raising and clearing conditions overlap, so there is no hysteresis band.
    #[error("rule {0}: a value can both raise and clear")]
    NoHysteresis(String),
    /// Two rules share an id.
    #[error("rule id {0} is used twice")]
    DuplicateId(String),
    /// A rule has no clinical source.
    #[error("rule {0} cites no source")]
    NoSource(String),
    /// An override names no rule in the file.
    #[error("no threshold rule {0}")]
    UnknownRule(String),
    /// An override goes beyond the rule's safety range.
    #[error("rule {rule}: {value} is outside the allowed range {min}..={max}")]
    OutsideSafetyRange {
        /// The rule id.
        rule: String,
        /// The value asked for.
        value: f64,
        /// Lowest allowed.
        min: f64,
        /// Highest allowed.
        max: f64,
    },
    /// An override expires before it starts.
    #[error("override of {0} expires before it is set")]
    ExpiresBeforeSet(String),
    /// An override gives no reason.
    #[error("override of {0} gives no reason")]
    NoReason(String),
}

/// What a threshold rule watches, with its UCUM unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Oxygen saturation, `%`.
    Spo2,
    /// Pulse rate from the oximeter, `/min`.
    PulseRate,
    /// Heart rate from usable ECG, `/min`.
    EcgHeartRate,
    /// Systolic blood pressure, `mm[Hg]`.
    SystolicBp,
    /// Body temperature, `Cel`.
    BodyTemperature,
    /// Body weight, `kg`.
    BodyWeight,
}

impl Measure {
    /// The name the rules file, alert keys and the API use (`spo2`, `pulse_rate` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spo2 => "spo2",
            Self::PulseRate => "pulse_rate",
            Self::EcgHeartRate => "ecg_heart_rate",
            Self::SystolicBp => "systolic_bp",
            Self::BodyTemperature => "body_temperature",
            Self::BodyWeight => "body_weight",
        }
    }

    /// The UCUM code of the measure's unit.
    pub const fn ucum(self) -> &'static str {
        match self {
            Self::Spo2 => "%",
            Self::PulseRate | Self::EcgHeartRate => "/min",
            Self::SystolicBp => "mm[Hg]",
            Self::BodyTemperature => "Cel",
            Self::BodyWeight => "kg",
        }
    }

    /// The device that measures it.
    pub const fn device(self) -> DeviceKind {
        match self {
            Self::Spo2 | Self::PulseRate => DeviceKind::Oximeter,
            Self::EcgHeartRate => DeviceKind::Ecg,
            Self::SystolicBp => DeviceKind::BpCuff,
            Self::BodyTemperature => DeviceKind::Thermometer,
            Self::BodyWeight => DeviceKind::Scale,
        }
    }
}

/// A kind of home device, as far as alarms care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// ECG recorder.
    Ecg,
    /// Pulse oximeter.
    Oximeter,
    /// Blood-pressure cuff.
    BpCuff,
    /// Thermometer.
    Thermometer,
    /// Scale.
    Scale,
    /// The home gateway itself.
    Gateway,
}

impl DeviceKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Ecg,
        Self::Oximeter,
        Self::BpCuff,
        Self::Thermometer,
        Self::Scale,
        Self::Gateway,
    ];

    /// The name alert keys use (`battery_low/oximeter` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ecg => "ecg",
            Self::Oximeter => "oximeter",
            Self::BpCuff => "bp_cuff",
            Self::Thermometer => "thermometer",
            Self::Scale => "scale",
            Self::Gateway => "gateway",
        }
    }
}

/// Alarm priority in the spirit of IEC 60601-1-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Awareness; care-team task.
    Low,
    /// Prompt response.
    Medium,
    /// Immediate response; latched until acknowledged.
    High,
}

impl Priority {
    /// The text stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A comparison operator written in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Strictly below.
    #[serde(rename = "<")]
    Lt,
    /// Below or equal.
    #[serde(rename = "<=")]
    Le,
    /// Strictly above.
    #[serde(rename = ">")]
    Gt,
    /// Above or equal.
    #[serde(rename = ">=")]
    Ge,
}

/// `value op limit`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The operator.
    pub op: Op,
    /// The limit, in the rule's unit.
    pub value: f64,
}

impl Condition {
    /// Whether `x` meets the condition.
    pub fn holds(self, x: f64) -> bool {
        match self.op {
            Op::Lt => x < self.value,
            Op::Le => x <= self.value,
            Op::Gt => x > self.value,
            Op::Ge => x >= self.value,
        }
    }
}

/// The bounds a doctor's override must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest allowed limit.
    pub min: f64,
    /// Highest allowed limit.
    pub max: f64,
}

/// A threshold with hysteresis and minimum duration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// Stable id, used as the alert's rule key.
    pub id: String,
    /// What is watched.
    pub measure: Measure,
    /// UCUM unit of `raise`/`clear`; must be the measure's.
    pub unit: String,
    /// Condition that raises once it has held for `raise_after_s`.
    pub raise: Condition,
    /// Condition that clears an active alert.
    pub clear: Condition,
    /// Seconds the raising condition must hold on every sample.
    pub raise_after_s: u32,
    /// Seconds between samples beyond which a run is broken (the data are missing, not normal).
    pub max_gap_s: u32,
    /// Priority of the alert raised.
    pub priority: Priority,
    /// Rules of one group raise one alert: the second is absorbed while the first is active.
    #[serde(default)]
    pub group: Option<String>,
    /// The safety range for a doctor's override.
    pub override_range: Range,
    /// The clinical source of the default.
    pub source: String,
}

/// ECG rules, evaluated only on usable signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcgRules {
    /// An RR interval longer than this is a pause, ms.
    pub pause_rr_ms: u32,
    /// Priority of a pause.
    pub pause_priority: Priority,
    /// A pause alert clears after this many seconds without another, s.
    pub pause_clear_after_s: u32,
    /// Priority of asystole.
    pub asystole_priority: Priority,
    /// Seconds of AF before new-onset AF is raised.
    pub af_raise_after_s: u32,
    /// Seconds without AF before it clears.
    pub af_clear_after_s: u32,
    /// Priority of new-onset AF.
    pub af_priority: Priority,
    /// Clinical sources.
    pub source: String,
}

/// Trend rules against the patient's own baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendRules {
    /// Gain over the window that raises, kg.
    pub weight_gain_kg: f64,
    /// The window, days.
    pub weight_gain_window_days: u32,
    /// Short exponential average span, days.
    pub weight_macd_short_days: u32,
    /// Long exponential average span, days.
    pub weight_macd_long_days: u32,
    /// Short minus long average that raises, kg.
    pub weight_macd_threshold_kg: f64,
    /// Priority of weight alerts.
    pub weight_priority: Priority,
    /// Rise above the baseline median that raises, Cel.
    pub temperature_rise_cel: f64,
    /// Days of readings forming the baseline.
    pub temperature_baseline_days: u32,
    /// Readings needed before a baseline exists.
    pub temperature_min_baseline_readings: u32,
    /// Priority of a rising temperature.
    pub temperature_priority: Priority,
    /// Drop of today's mean SpO2 below the baseline that raises, %.
    pub spo2_drop_percent: f64,
    /// Days of daily means forming the baseline.
    pub spo2_baseline_days: u32,
    /// Days needed before a baseline exists.
    pub spo2_min_baseline_days: u32,
    /// Usable samples today before today's mean is judged.
    pub spo2_min_samples_today: u32,
    /// Priority of a falling SpO2 baseline.
    pub spo2_priority: Priority,
    /// Sources.
    pub source: String,
}

/// Adherence to the reading schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdherenceRules {
    /// Minutes after a scheduled time before a reading counts as missed.
    pub grace_min: u32,
    /// Priority (low: a care-team task).
    pub priority: Priority,
    /// Source.
    pub source: String,
}

/// Technical alarm limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechnicalRules {
    /// Seconds of lead-off before the alarm, s.
    pub lead_off_after_s: u32,
    /// Seconds of leads on before it clears, s.
    pub lead_off_clear_after_s: u32,
    /// Priority of lead-off.
    pub lead_off_priority: Priority,
    /// Seconds of unusable ECG before "poor signal", s.
    pub poor_signal_after_s: u32,
    /// Priority of poor signal.
    pub poor_signal_priority: Priority,
    /// Battery at or below this raises, %.
    pub battery_low_percent: f64,
    /// Battery at or above this clears, %.
    pub battery_clear_percent: f64,
    /// Priority of low battery.
    pub battery_priority: Priority,
    /// Seconds offline (Last Will) before the alarm, s.
    pub gateway_offline_after_s: u32,
    /// Priority of gateway offline.
    pub gateway_offline_priority: Priority,
    /// Readings waiting in the gateway's outbox that raise.
    pub outbox_backlog_readings: u32,
    /// Priority of outbox backlog.
    pub outbox_priority: Priority,
    /// Gateway clock offset that raises, s.
    pub clock_offset_max_s: f64,
    /// Priority of clock off.
    pub clock_priority: Priority,
    /// Priority of a device-reported error (cuff error …).
    pub device_error_priority: Priority,
    /// Source.
    pub source: String,
}

/// The whole rules file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Version of the file; recorded with every alert it raises.
    pub version: String,
    /// Threshold rules.
    pub threshold: Vec<ThresholdRule>,
    /// ECG rules.
    pub ecg: EcgRules,
    /// Trend rules.
    pub trend: TrendRules,
    /// Adherence.
    pub adherence: AdherenceRules,
    /// Technical alarms.
    pub technical: TechnicalRules,
}

impl RuleSet {
    /// Parses and checks a rules file.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let rules: Self = toml::from_str(text)?;
        rules.validate()?;
        Ok(rules)
    }

    /// The rules shipped with the server.
    ///
    /// # Panics
    /// When the shipped file is invalid, which a unit test rules out.
    pub fn builtin() -> Self {
        Self::from_toml(DEFAULT_RULES_TOML).expect("shipped rules file is valid")
    }

    fn validate(&self) -> Result<(), RulesError> {
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.threshold {
            if !seen.insert(rule.id.as_str()) {
                return Err(RulesError::DuplicateId(rule.id.clone()));
            }
            if rule.unit != rule.measure.ucum() {
                return Err(RulesError::WrongUnit {
                    rule: rule.id.clone(),
                    unit: rule.unit.clone(),
                    expected: rule.measure.ucum(),
                    measure: rule.measure,
                });
            }
            if rule.source.trim().is_empty() {
                return Err(RulesError::NoSource(rule.id.clone()));
            }
            check_hysteresis(&rule.id, rule.raise, rule.clear)?;
        }
        Ok(())
    }

    /// The threshold rule with this id.
    pub fn threshold_rule(&self, id: &str) -> Option<&ThresholdRule> {
        self.threshold.iter().find(|r| r.id == id)
    }
}

/// No value may both raise and clear: checked at the two limits and just beyond them.
fn check_hysteresis(id: &str, raise: Condition, clear: Condition) -> Result<(), RulesError> {
    let probes = [
        raise.value,
        clear.value,
        raise.value - 1e-6,
        raise.value + 1e-6,
        clear.value - 1e-6,
        clear.value + 1e-6,
    ];
    if probes.iter().any(|&x| raise.holds(x) && clear.holds(x)) {
        return Err(RulesError::NoHysteresis(id.to_owned()));
    }
    Ok(())
}

/// A doctor's change to one threshold rule for one patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The patient.
    pub patient: String,
    /// The threshold rule id.
    pub rule: String,
    /// The new raising limit, in the rule's unit.
    pub raise_value: f64,
    /// The new clearing limit, in the rule's unit.
    pub clear_value: f64,
    /// The doctor who set it (user id).
    pub set_by: String,
    /// Why (shown with the alert and audited).
    pub reason: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// When it stops applying.
    pub expires_at: DateTime<Utc>,
}

impl Override {
    /// The audit record of revoking `patient`'s override of `rule`: the rule's defaults, in force
    /// again from `at`, recorded as an override that expires the moment it is set (the audit table
    /// is append-only and has no kind column, so a revocation is a row with `expires_at = set_at`).
    pub fn revocation(
        rule: &ThresholdRule,
        patient: &str,
        revoked_by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            patient: patient.to_owned(),
            rule: rule.id.clone(),
            raise_value: rule.raise.value,
            clear_value: rule.clear.value,
            set_by: revoked_by.to_owned(),
            reason: reason.to_owned(),
            set_at: at,
            expires_at: at,
        }
    }

    /// Whether this audit record is a revocation (see [`Override::revocation`]).
    pub fn is_revocation(&self) -> bool {
        self.expires_at <= self.set_at
    }

    /// Whether the override applies at `at`.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        self.set_at <= at && at < self.expires_at
    }

    /// Checks the override against the rule's safety range and hysteresis.
    pub fn validate(&self, rules: &RuleSet) -> Result<(), RulesError> {
        let rule = rules
            .threshold_rule(&self.rule)
            .ok_or_else(|| RulesError::UnknownRule(self.rule.clone()))?;
        if self.expires_at <= self.set_at {
            return Err(RulesError::ExpiresBeforeSet(self.rule.clone()));
        }
        if self.reason.trim().is_empty() {
            return Err(RulesError::NoReason(self.rule.clone()));
        }
        let Range { min, max } = rule.override_range;
        for value in [self.raise_value, self.clear_value] {
            if !(min..=max).contains(&value) {
                return Err(RulesError::OutsideSafetyRange {
                    rule: self.rule.clone(),
                    value,
                    min,
                    max,
                });
            }
        }
        check_hysteresis(
            &self.rule,
            Condition {
                value: self.raise_value,
                ..rule.raise
            },
            Condition {
                value: self.clear_value,
                ..rule.clear
            },
        )
    }
}

/// The overrides in force, by patient then rule. Expired ones are skipped when looked up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overrides {
    by_patient: BTreeMap<String, BTreeMap<String, Override>>,
}

impl Overrides {
    /// The overrides in force at `now`, from the latest audit record of each patient and rule
    /// ([`super::store::AlertStore::latest_overrides`]). Revoked and expired ones are left out; one
    /// that the rules file no longer allows (its safety range was narrowed, its rule removed) is
    /// logged as an error and left out, never applied.
    pub fn restore(rules: &RuleSet, latest: Vec<Override>, now: DateTime<Utc>) -> Self {
        let mut overrides = Self::default();
        for o in latest {
            if o.is_revocation() || o.expires_at <= now {
                continue;
            }
            let (patient, rule) = (o.patient.clone(), o.rule.clone());
            if let Err(error) = overrides.set(rules, o) {
                tracing::error!(patient_id = %patient, rule = %rule, %error, "Stored rule override no longer valid; the rule's default applies.");
            }
        }
        overrides
    }

    /// Adds or replaces an override after validating it.
    pub fn set(&mut self, rules: &RuleSet, o: Override) -> Result<(), RulesError> {
        o.validate(rules)?;
        self.by_patient
            .entry(o.patient.clone())
            .or_default()
            .insert(o.rule.clone(), o);
        Ok(())
    }

    /// The audit record that revokes `patient`'s override of `rule` at `at`, `None` if none is in
    /// force; refused for an unknown rule or without a reason. Changes nothing: the caller audits
    /// the record, then applies it with [`Overrides::remove`].
    pub fn revocation(
        &self,
        rules: &RuleSet,
        patient: &str,
        rule: &str,
        revoked_by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Override>, RulesError> {
        let threshold = rules
            .threshold_rule(rule)
            .ok_or_else(|| RulesError::UnknownRule(rule.to_owned()))?;
        if reason.trim().is_empty() {
            return Err(RulesError::NoReason(rule.to_owned()));
        }
        let in_force = self.in_force(patient, at).any(|o| o.rule == rule);
        Ok(in_force.then(|| Override::revocation(threshold, patient, revoked_by, reason, at)))
    }

    /// Removes `patient`'s override of `rule`; returns it if there was one.
    pub fn remove(&mut self, patient: &str, rule: &str) -> Option<Override> {
        let of_patient = self.by_patient.get_mut(patient)?;
        let removed = of_patient.remove(rule);
        if of_patient.is_empty() {
            self.by_patient.remove(patient);
        }
        removed
    }

    /// `patient`'s overrides in force at `at`, by rule id.
    pub fn in_force(&self, patient: &str, at: DateTime<Utc>) -> impl Iterator<Item = &Override> {
        self.by_patient
            .get(patient)
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(move |o| o.in_force_at(at))
    }

    /// The (raise, clear) conditions of `rule` for `patient` at `at`.
    pub fn conditions(
        &self,
        rule: &ThresholdRule,
        patient: &str,
        at: DateTime<Utc>,
    ) -> (Condition, Condition) {
        match self.by_patient.get(patient).and_then(|m| m.get(&rule.id)) {
            Some(o) if o.in_force_at(at) => (
                Condition {
                    value: o.raise_value,
                    ..rule.raise
                },
                Condition {
                    value: o.clear_value,
                    ..rule.clear
                },
            ),
            _ => (rule.raise, rule.clear),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn shipped_rules_parse_validate_and_cite_a_source_for_every_default() {
        let rules = RuleSet::builtin();
        assert!(rules.threshold.len() >= 8);
        assert!(rules.threshold.iter().all(|r| !r.source.is_empty()));
        for s in [
            &rules.ecg.source,
            &rules.trend.source,
            &rules.adherence.source,
            &rules.technical.source,
        ] {
            assert!(!s.is_empty());
        }
        let spo2 = rules.threshold_rule("spo2_low").unwrap();
        assert_eq!(
            (spo2.raise.value, spo2.clear.value, spo2.raise_after_s),
            (90.0, 92.0, 60)
        );
    }

    #[test]
    fn a_wrong_unit_is_refused() {
        let text = DEFAULT_RULES_TOML.replacen("unit = \"%\"", "unit = \"mm[Hg]\"", 1);
        assert!(matches!(
            RuleSet::from_toml(&text),
            Err(RulesError::WrongUnit { .. })
        ));
    }

    #[test]
    fn overlapping_raise_and_clear_is_refused() {
        let text = DEFAULT_RULES_TOML.replacen(
            "clear = { op = \">=\", value = 92 }",
            "clear = { op = \">=\", value = 89 }",
            1,
        );
        assert!(
            matches!(RuleSet::from_toml(&text), Err(RulesError::NoHysteresis(id)) if id == "spo2_low")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = DEFAULT_RULES_TOML.replacen(
            "raise_after_s = 60",
            "raise_after_s = 60\nraise_afer_s = 6",
            1,
        );
        assert!(matches!(
            RuleSet::from_toml(&text),
            Err(RulesError::Parse(_))
        ));
    }

    fn copd_override() -> Override {
        Override {
            patient: "p1".into(),
            rule: "spo2_low".into(),
            raise_value: 86.0,
            clear_value: 88.0,
            set_by: "dr-sato".into(),
            reason: "COPD, lives at 88-90 %".into(),
            set_at: t(1),
            expires_at: t(10),
        }
    }

    #[test]
    fn override_applies_only_while_in_force() {
        let rules = RuleSet::builtin();
        let mut o = Overrides::default();
        o.set(&rules, copd_override()).unwrap();
        let rule = rules.threshold_rule("spo2_low").unwrap();
        assert_eq!(o.conditions(rule, "p1", t(2)).0.value, 86.0);
        assert_eq!(o.conditions(rule, "p1", t(0)).0.value, 90.0);
        assert_eq!(o.conditions(rule, "p1", t(10)).0.value, 90.0);
        assert_eq!(o.conditions(rule, "p2", t(2)).0.value, 90.0);
    }

    #[test]
    fn restore_keeps_only_overrides_in_force_that_the_rules_still_allow() {
        let rules = RuleSet::builtin();
        let spo2 = rules.threshold_rule("spo2_low").unwrap();
        let latest = vec![
            copd_override(),
            Override::revocation(spo2, "p2", "dr-sato", "recovered", t(2)),
            Override {
                patient: "p3".into(),
                expires_at: t(3),
                ..copd_override()
            },
            // Valid when set; the file's safety floor has since been raised above it.
            Override {
                patient: "p4".into(),
                raise_value: 84.0,
                ..copd_override()
            },
        ];
        let restored = Overrides::restore(&rules, latest, t(4));
        let patients: Vec<&str> = ["p1", "p2", "p3", "p4"]
            .into_iter()
            .filter(|p| restored.in_force(p, t(5)).next().is_some())
            .collect();
        assert_eq!(patients, ["p1"]);
    }

    #[test]
    fn a_revocation_needs_a_reason_and_an_override_in_force() {
        let rules = RuleSet::builtin();
        let mut o = Overrides::default();
        o.set(&rules, copd_override()).unwrap();
        let revoke = |o: &Overrides, rule: &str, reason: &str, at| {
            o.revocation(&rules, "p1", rule, "dr-sato", reason, at)
        };
        assert!(matches!(
            revoke(&o, "spo2_lo", "x", t(2)),
            Err(RulesError::UnknownRule(_))
        ));
        assert!(matches!(
            revoke(&o, "spo2_low", " ", t(2)),
            Err(RulesError::NoReason(_))
        ));
        assert!(
            matches!(revoke(&o, "spo2_low", "x", t(11)), Ok(None)),
            "expired"
        );
        let revocation = revoke(&o, "spo2_low", "x", t(2)).unwrap().unwrap();
        assert!(revocation.is_revocation());
        assert_eq!(revocation.raise_value, 90.0, "the default again");
        assert!(o.remove("p1", "spo2_low").is_some());
        assert_eq!(o, Overrides::default());
    }

    #[test]
    fn measure_names_are_the_serialised_ones() {
        for m in [
            Measure::Spo2,
            Measure::PulseRate,
            Measure::EcgHeartRate,
            Measure::SystolicBp,
            Measure::BodyTemperature,
            Measure::BodyWeight,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }

    #[test]
    fn override_beyond_the_safety_floor_is_refused() {
        let rules = RuleSet::builtin();
        let too_low = Override {
            raise_value: 80.0,
            ..copd_override()
        };
        assert!(
            matches!(too_low.validate(&rules), Err(RulesError::OutsideSafetyRange { min, .. }) if min == 85.0)
        );
        let no_reason = Override {
            reason: " ".into(),
            ..copd_override()
        };
        assert!(matches!(
            no_reason.validate(&rules),
            Err(RulesError::NoReason(_))
        ));
        let backwards = Override {
            expires_at: t(0),
            ..copd_override()
        };
        assert!(matches!(
            backwards.validate(&rules),
            Err(RulesError::ExpiresBeforeSet(_))
        ));
        let inverted = Override {
            raise_value: 90.0,
            clear_value: 88.0,
            ..copd_override()
        };
        assert!(matches!(
            inverted.validate(&rules),
            Err(RulesError::NoHysteresis(_))
        ));
    }
}
