//! The rules engine: pure, deterministic, explicit time.
//!
//! Input: timestamped observations per patient ([`Input`]) and clock ticks. Output: alert
//! [`Signal`]s, each the raising or clearing of one alert key for one patient. No I/O, no wall
//! clock; the whole state serialises ([`Engine::checkpoint`]) so a restart resumes exactly.
//!
//! Technical conditions qualify or suppress the clinical alarms they would cause: artefact samples
//! and unusable ECG never feed clinical rules; a reading that did not arrive because the gateway is
//! offline or the device reported a fault or a low battery is a technical alarm, not missed adherence.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::debounce::{Debounce, Edge, Timing};
use super::finding::Finding;
use super::rules::{DeviceKind, Measure, Overrides, Priority, RuleSet};
use super::trend::{Spo2Baseline, TemperatureTrend, WeightTrend};

/// ECG signal quality as the dsp quality index reports it, per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcgQuality {
    /// Fit for rhythm analysis.
    Usable,
    /// Noisy (motion, muscle): nothing clinical is concluded from it.
    Poor,
    /// Electrodes detached.
    LeadOff,
}

/// The rhythm the dsp assigns to one second of ECG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rhythm {
    /// Sinus or otherwise regular.
    Regular,
    /// Atrial fibrillation.
    Af,
    /// No beats.
    Asystole,
    /// Ventricular flutter or fibrillation (the dsp's VF detector).
    VentricularFibrillation,
    /// Not classified.
    Unknown,
}

/// One second of dsp output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EcgSecond {
    /// Signal quality.
    pub quality: EcgQuality,
    /// Heart rate, /min, when beats were found.
    pub heart_rate_per_min: Option<f64>,
    /// Longest RR interval ending in this second, ms.
    pub longest_rr_ms: Option<u32>,
    /// Rhythm label.
    pub rhythm: Rhythm,
}

/// What happened, as the engine sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// A measured value in the measure's UCUM unit; `artefact` when the device flagged it
    /// (motion, low perfusion): kept, but never used by clinical rules.
    Vital {
        /// What was measured.
        measure: Measure,
        /// The value.
        value: f64,
        /// Flagged by the device.
        artefact: bool,
    },
    /// One second of ECG analysis.
    Ecg(EcgSecond),
    /// The device reported an error (e.g. a cuff error) instead of a reading.
    DeviceError {
        /// Which device.
        device: DeviceKind,
        /// The device's error code.
        code: String,
    },
    /// Battery level, %.
    Battery {
        /// Which device.
        device: DeviceKind,
        /// Level, %.
        percent: f64,
    },
    /// Gateway connection state (offline comes from its MQTT Last Will).
    Gateway {
        /// Connected.
        online: bool,
    },
    /// The outcome of delivering an alert's notification: an alert that reaches nobody is itself
    /// an alarm (high priority, to the coordinator and the operator).
    Notification {
        /// The key of the alert that was being delivered.
        alert_key: String,
        /// Confirmed by a receiver (clears the alarm) or failed after every retry (raises it).
        delivered: bool,
    },
    /// Gateway health report.
    GatewayHealth {
        /// Readings waiting in its outbox.
        outbox_backlog: u32,
        /// Its clock minus the server's, s.
        clock_offset_s: f64,
    },
}

/// One timestamped observation for one patient (measurement time, UTC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// When it was measured.
    pub at: DateTime<Utc>,
    /// Whose.
    pub patient: String,
    /// What.
    pub observation: Observation,
}

/// Who an alert is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A physiological alarm: care team and on-call doctor.
    Clinical,
    /// A technical alarm: operator and coordinator.
    Technical,
    /// A missed scheduled reading: care team.
    Adherence,
}

impl Category {
    /// The text stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Clinical => "clinical",
            Self::Technical => "technical",
            Self::Adherence => "adherence",
        }
    }
}

/// A change of one alert condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The condition started.
    Raise {
        /// Priority.
        priority: Priority,
        /// Category.
        category: Category,
        /// What was found (no identifying data).
        finding: Finding,
        /// Technical alarms active on the same device when raised.
        qualified_by: Vec<String>,
    },
    /// The condition ended.
    Clear,
}

/// An engine output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// When (the time of the observation or tick that caused it).
    pub at: DateTime<Utc>,
    /// Whose.
    pub patient: String,
    /// The alert key: one alert per key at a time (de-duplication).
    pub key: String,
    /// What changed.
    pub change: Change,
}

/// A reading the patient is expected to take every day, at a time of day (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledReading {
    /// What.
    pub measure: Measure,
    /// When, UTC time of day.
    pub at: NaiveTime,
}

/// What the engine needs from the patient record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientContext {
    /// AF already diagnosed: AF is then not "new-onset".
    pub known_af: bool,
    /// Expected readings.
    pub schedule: Vec<ScheduledReading>,
    /// Monitoring start: no reading is expected before it.
    pub monitored_since: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct PatientState {
    context: PatientContext,
    latest: Option<DateTime<Utc>>,
    /// Observations processed with time `latest` (several can share a second).
    seen_at_latest: u32,
    rules: BTreeMap<String, Debounce>,
    active: BTreeMap<String, (Priority, Option<String>)>,
    last_reading: BTreeMap<Measure, DateTime<Utc>>,
    missed_slot: BTreeMap<Measure, DateTime<Utc>>,
    gateway_offline_since: Option<DateTime<Utc>>,
    weight: WeightTrend,
    temperature: TemperatureTrend,
    spo2: Spo2Baseline,
}

/// The engine: rules, overrides and every patient's state.
#[derive(Debug)]
pub struct Engine {
    rules: RuleSet,
    overrides: Overrides,
    patients: BTreeMap<String, PatientState>,
}

/// Why a checkpoint could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Not a checkpoint of this engine version.
    #[error("engine checkpoint does not parse: {0}")]
    Parse(#[from] serde_json::Error),
}

/// What a rule evaluation decided, before group de-duplication.
struct Outcome {
    key: String,
    edge: Edge,
    priority: Priority,
    category: Category,
    group: Option<String>,
    /// What a raise reports; a clear carries the finding it ends, unread.
    finding: Finding,
    device: Option<DeviceKind>,
}

impl Engine {
    /// An engine with no patients.
    pub fn new(rules: RuleSet, overrides: Overrides) -> Self {
        Self {
            rules,
            overrides,
            patients: BTreeMap::new(),
        }
    }

    /// The rules in use.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The doctors' overrides in use.
    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// Replaces the overrides (after a doctor changed one).
    pub fn set_overrides(&mut self, overrides: Overrides) {
        self.overrides = overrides;
    }

    /// Sets what the engine knows of a patient's record.
    pub fn set_patient(&mut self, patient: &str, context: PatientContext) {
        self.patients.entry(patient.to_owned()).or_default().context = context;
    }

    /// The engine's state, to resume from after a restart.
    ///
    /// # Panics
    /// Never: the state holds only maps of plain data with string keys.
    pub fn checkpoint(&self) -> String {
        serde_json::to_string(&self.patients).expect("engine state serialises")
    }

    /// An engine resumed from [`Engine::checkpoint`].
    pub fn restore(
        rules: RuleSet,
        overrides: Overrides,
        checkpoint: &str,
    ) -> Result<Self, CheckpointError> {
        Ok(Self {
            rules,
            overrides,
            patients: serde_json::from_str(checkpoint)?,
        })
    }

    /// Per patient, the latest observation time processed and how many observations had that
    /// time: after a restore, replayed observations up to there are the ones already processed.
    pub fn processed(&self) -> BTreeMap<String, (DateTime<Utc>, u32)> {
        self.patients
            .iter()
            .filter_map(|(p, s)| s.latest.map(|l| (p.clone(), (l, s.seen_at_latest))))
            .collect()
    }

    /// Evaluates one observation. Observations older than the patient's latest count for
    /// adherence and trends only: a cuff uploading readings stored days ago is not a live alarm.
    pub fn observe(&mut self, input: &Input) -> Vec<Signal> {
        let rules = &self.rules;
        let overrides = &self.overrides;
        let state = self.patients.entry(input.patient.clone()).or_default();
        let at = input.at;
        let live = state.latest.is_none_or(|l| at >= l);
        if state.latest == Some(at) {
            state.seen_at_latest += 1;
        } else if live {
            state.latest = Some(at);
            state.seen_at_latest = 1;
        }
        let mut outcomes = Vec::new();
        match &input.observation {
            Observation::Vital {
                measure,
                value,
                artefact,
            } => {
                state.last_reading.insert(
                    *measure,
                    at.max(state.last_reading.get(measure).copied().unwrap_or(at)),
                );
                outcomes.extend(clear_missed(state, *measure));
                if !*artefact {
                    outcomes.extend(clear_device_error(state, measure.device()));
                }
                if live {
                    thresholds(
                        rules,
                        overrides,
                        &input.patient,
                        state,
                        at,
                        *measure,
                        *value,
                        *artefact,
                        &mut outcomes,
                    );
                }
                if !*artefact {
                    trends(rules, state, at, *measure, *value, live, &mut outcomes);
                }
            }
            Observation::Ecg(second) if live => ecg(
                rules,
                overrides,
                &input.patient,
                state,
                at,
                second,
                &mut outcomes,
            ),
            Observation::Ecg(_) => {}
            Observation::DeviceError { device, code } => {
                let key = format!("device_error/{}", device.as_str());
                if !state.rules.get(&key).is_some_and(|d| d.active) {
                    let d = state.rules.entry(key.clone()).or_default();
                    d.active = true;
                    outcomes.push(Outcome {
                        key,
                        edge: Edge::Raise,
                        priority: rules.technical.device_error_priority,
                        category: Category::Technical,
                        group: None,
                        finding: Finding::DeviceError {
                            device: *device,
                            code: code.clone(),
                        },
                        device: Some(*device),
                    });
                }
            }
            Observation::Battery { device, percent } => {
                let t = &rules.technical;
                let key = format!("battery_low/{}", device.as_str());
                let edge = state.rules.entry(key.clone()).or_default().step(
                    at,
                    *percent <= t.battery_low_percent,
                    *percent >= t.battery_clear_percent,
                    Timing {
                        raise_after_s: 0,
                        clear_after_s: 0,
                        max_gap_s: 0,
                    },
                );
                outcomes.extend(edge.map(|edge| Outcome {
                    key,
                    edge,
                    priority: t.battery_priority,
                    category: Category::Technical,
                    group: None,
                    finding: Finding::BatteryLow {
                        device: *device,
                        percent: *percent,
                    },
                    device: Some(*device),
                }));
            }
            Observation::Gateway { online } => {
                if *online {
                    state.gateway_offline_since = None;
                    outcomes.extend(force_clear(
                        state,
                        "gateway_offline",
                        Category::Technical,
                        Finding::GatewayOffline,
                    ));
                } else {
                    state.gateway_offline_since.get_or_insert(at);
                }
            }
            Observation::Notification {
                alert_key,
                delivered,
            } => {
                let key = format!("notification_failed/{alert_key}");
                let edge = state.rules.entry(key.clone()).or_default().step(
                    at,
                    !*delivered,
                    *delivered,
                    Timing {
                        raise_after_s: 0,
                        clear_after_s: 0,
                        max_gap_s: 0,
                    },
                );
                outcomes.extend(edge.map(|edge| Outcome {
                    key,
                    edge,
                    priority: Priority::High,
                    category: Category::Technical,
                    group: None,
                    finding: Finding::NotificationFailed {
                        alert_key: alert_key.clone(),
                    },
                    device: None,
                }));
            }
            Observation::GatewayHealth {
                outbox_backlog,
                clock_offset_s,
            } => {
                let t = &rules.technical;
                let now = Timing {
                    raise_after_s: 0,
                    clear_after_s: 0,
                    max_gap_s: 0,
                };
                for (key, raises, priority, finding) in [
                    (
                        "outbox_backlog",
                        *outbox_backlog >= t.outbox_backlog_readings,
                        t.outbox_priority,
                        Finding::OutboxBacklog {
                            readings: *outbox_backlog,
                        },
                    ),
                    (
                        "clock_off",
                        clock_offset_s.abs() > t.clock_offset_max_s,
                        t.clock_priority,
                        Finding::ClockOff {
                            seconds: *clock_offset_s,
                        },
                    ),
                ] {
                    let edge = state
                        .rules
                        .entry(key.to_owned())
                        .or_default()
                        .step(at, raises, !raises, now);
                    outcomes.extend(edge.map(|edge| Outcome {
                        key: key.to_owned(),
                        edge,
                        priority,
                        category: Category::Technical,
                        group: None,
                        finding,
                        device: Some(DeviceKind::Gateway),
                    }));
                }
            }
        }
        emit(state, at, &input.patient, outcomes)
    }

    /// Lets time pass for every patient: gateway-offline and missed-reading checks.
    pub fn tick(&mut self, at: DateTime<Utc>) -> Vec<Signal> {
        let mut signals = Vec::new();
        for (patient, state) in &mut self.patients {
            let mut outcomes = Vec::new();
            let t = &self.rules.technical;
            if state
                .gateway_offline_since
                .is_some_and(|s| at - s >= secs(t.gateway_offline_after_s))
                && !state.active.contains_key("gateway_offline")
            {
                state
                    .rules
                    .entry("gateway_offline".into())
                    .or_default()
                    .active = true;
                outcomes.push(Outcome {
                    key: "gateway_offline".into(),
                    edge: Edge::Raise,
                    priority: t.gateway_offline_priority,
                    category: Category::Technical,
                    group: None,
                    finding: Finding::GatewayOffline,
                    device: Some(DeviceKind::Gateway),
                });
            }
            outcomes.extend(missed_readings(&self.rules, state, at));
            signals.extend(emit(state, at, patient, outcomes));
        }
        signals
    }
}

fn secs(s: u32) -> TimeDelta {
    TimeDelta::seconds(s.into())
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the arguments
fn thresholds(
    rules: &RuleSet,
    overrides: &Overrides,
    patient: &str,
    state: &mut PatientState,
    at: DateTime<Utc>,
    measure: Measure,
    value: f64,
    artefact: bool,
    out: &mut Vec<Outcome>,
) {
    for rule in rules.threshold.iter().filter(|r| r.measure == measure) {
        let d = state.rules.entry(rule.id.clone()).or_default();
        if artefact {
            d.break_run();
            continue;
        }
        let (raise, clear) = overrides.conditions(rule, patient, at);
        let timing = Timing {
            raise_after_s: rule.raise_after_s,
            clear_after_s: 0,
            max_gap_s: rule.max_gap_s,
        };
        if let Some(edge) = d.step(at, raise.holds(value), clear.holds(value), timing) {
            out.push(Outcome {
                key: rule.id.clone(),
                edge,
                priority: rule.priority,
                category: Category::Clinical,
                group: rule.group.clone(),
                finding: Finding::Threshold {
                    measure,
                    value,
                    unit: rule.unit.clone(),
                    op: raise.op,
                    limit: raise.value,
                },
                device: Some(measure.device()),
            });
        }
    }
}

fn step(
    state: &mut PatientState,
    key: &str,
    at: DateTime<Utc>,
    raises: bool,
    clears: bool,
    timing: Timing,
) -> Option<Edge> {
    state
        .rules
        .entry(key.to_owned())
        .or_default()
        .step(at, raises, clears, timing)
}

fn ecg(
    rules: &RuleSet,
    overrides: &Overrides,
    patient: &str,
    state: &mut PatientState,
    at: DateTime<Utc>,
    s: &EcgSecond,
    out: &mut Vec<Outcome>,
) {
    let t = &rules.technical;
    let technical = |key: &str, edge, priority, finding| Outcome {
        key: key.to_owned(),
        edge,
        priority,
        category: Category::Technical,
        group: None,
        finding,
        device: Some(DeviceKind::Ecg),
    };
    let lead_off = Timing {
        raise_after_s: t.lead_off_after_s,
        clear_after_s: t.lead_off_clear_after_s,
        max_gap_s: 5,
    };
    if let Some(e) = step(
        state,
        "lead_off",
        at,
        s.quality == EcgQuality::LeadOff,
        s.quality != EcgQuality::LeadOff,
        lead_off,
    ) {
        out.push(technical(
            "lead_off",
            e,
            t.lead_off_priority,
            Finding::LeadOff,
        ));
    }
    let poor = Timing {
        raise_after_s: t.poor_signal_after_s,
        clear_after_s: 10,
        max_gap_s: 5,
    };
    if let Some(e) = step(
        state,
        "poor_signal",
        at,
        s.quality == EcgQuality::Poor,
        s.quality == EcgQuality::Usable,
        poor,
    ) {
        out.push(technical(
            "poor_signal",
            e,
            t.poor_signal_priority,
            Finding::PoorEcgSignal,
        ));
    }
    if s.quality != EcgQuality::Usable {
        return;
    }
    let e = &rules.ecg;
    let clinical = |key: &str, edge, priority, finding| Outcome {
        key: key.to_owned(),
        edge,
        priority,
        category: Category::Clinical,
        group: None,
        finding,
        device: Some(DeviceKind::Ecg),
    };
    let pause = s.longest_rr_ms.is_some_and(|rr| rr > e.pause_rr_ms);
    let timing = Timing {
        raise_after_s: 0,
        clear_after_s: e.pause_clear_after_s,
        max_gap_s: 0,
    };
    if let Some(edge) = step(state, "ecg_pause", at, pause, !pause, timing) {
        let longest_rr_ms = s.longest_rr_ms.unwrap_or_default();
        out.push(clinical(
            "ecg_pause",
            edge,
            e.pause_priority,
            Finding::EcgPause { longest_rr_ms },
        ));
    }
    let asystole = s.rhythm == Rhythm::Asystole;
    let timing = Timing {
        raise_after_s: 0,
        clear_after_s: 0,
        max_gap_s: 0,
    };
    if let Some(edge) = step(
        state,
        "ecg_asystole",
        at,
        asystole,
        !asystole && s.heart_rate_per_min.is_some(),
        timing,
    ) {
        out.push(clinical(
            "ecg_asystole",
            edge,
            e.asystole_priority,
            Finding::Asystole,
        ));
    }
    // Ventricular flutter/fibrillation is a cardiac arrest rhythm, as urgent as asystole; it
    // raises at once and clears when a counted rhythm returns.
    let vf = s.rhythm == Rhythm::VentricularFibrillation;
    let timing = Timing {
        raise_after_s: 0,
        clear_after_s: 0,
        max_gap_s: 0,
    };
    if let Some(edge) = step(
        state,
        "ecg_vf",
        at,
        vf,
        !vf && s.heart_rate_per_min.is_some(),
        timing,
    ) {
        out.push(clinical(
            "ecg_vf",
            edge,
            e.asystole_priority,
            Finding::VentricularFibrillation,
        ));
    }
    let af = s.rhythm == Rhythm::Af;
    let timing = Timing {
        raise_after_s: e.af_raise_after_s,
        clear_after_s: e.af_clear_after_s,
        max_gap_s: 5,
    };
    if let Some(edge) = step(
        state,
        "ecg_new_af",
        at,
        af && !state.context.known_af,
        !af,
        timing,
    ) {
        out.push(clinical(
            "ecg_new_af",
            edge,
            e.af_priority,
            Finding::NewOnsetAtrialFibrillation,
        ));
    }
    if let Some(hr) = s.heart_rate_per_min {
        thresholds(
            rules,
            overrides,
            patient,
            state,
            at,
            Measure::EcgHeartRate,
            hr,
            false,
            out,
        );
    }
}

fn trends(
    rules: &RuleSet,
    state: &mut PatientState,
    at: DateTime<Utc>,
    measure: Measure,
    value: f64,
    live: bool,
    out: &mut Vec<Outcome>,
) {
    let tr = &rules.trend;
    let once = Timing {
        raise_after_s: 0,
        clear_after_s: 0,
        max_gap_s: 0,
    };
    let mut judge = |state: &mut PatientState,
                     key: &str,
                     delta: Option<f64>,
                     limit: f64,
                     priority,
                     finding: Finding| {
        let Some(delta) = delta else { return };
        // Clears at half the limit: a baseline drifting around the limit raises once.
        let edge = state.rules.entry(key.to_owned()).or_default().step(
            at,
            delta >= limit,
            delta < limit / 2.0,
            once,
        );
        out.extend(edge.map(|edge| Outcome {
            key: key.to_owned(),
            edge,
            priority,
            category: Category::Clinical,
            group: None,
            finding,
            device: Some(measure.device()),
        }));
    };
    match measure {
        Measure::BodyWeight => {
            let w = state.weight.add(at, value, tr);
            let g = w.gain_in_window_kg;
            let finding = Finding::WeightGain {
                kg: g.unwrap_or_default(),
                days: tr.weight_gain_window_days,
            };
            judge(
                state,
                "hf_weight_gain",
                g,
                tr.weight_gain_kg,
                tr.weight_priority,
                finding,
            );
            let m = w.macd_kg;
            let finding = Finding::WeightTrend {
                kg: m.unwrap_or_default(),
            };
            judge(
                state,
                "hf_weight_trend",
                m,
                tr.weight_macd_threshold_kg,
                tr.weight_priority,
                finding,
            );
        }
        Measure::BodyTemperature if live => {
            let rise = state.temperature.add(at, value, tr);
            let finding = Finding::TemperatureAboveBaseline {
                cel: rise.unwrap_or_default(),
            };
            judge(
                state,
                "temperature_rising",
                rise,
                tr.temperature_rise_cel,
                tr.temperature_priority,
                finding,
            );
        }
        Measure::Spo2 if live => {
            let drop = state.spo2.add(at, value, tr).map(|d| -d);
            let finding = Finding::Spo2BaselineFalling {
                percent: drop.unwrap_or_default(),
            };
            judge(
                state,
                "spo2_baseline_falling",
                drop,
                tr.spo2_drop_percent,
                tr.spo2_priority,
                finding,
            );
        }
        _ => {}
    }
}

/// The most recent scheduled time whose grace period has ended by `at`.
fn last_due_slot(slot: NaiveTime, grace: TimeDelta, at: DateTime<Utc>) -> DateTime<Utc> {
    let today = at.date_naive().and_time(slot).and_utc();
    if today + grace <= at {
        today
    } else {
        today - TimeDelta::days(1)
    }
}

fn missed_readings(rules: &RuleSet, state: &mut PatientState, at: DateTime<Utc>) -> Vec<Outcome> {
    let grace = TimeDelta::minutes(rules.adherence.grace_min.into());
    let mut out = Vec::new();
    for s in state.context.schedule.clone() {
        let slot = last_due_slot(s.at, grace, at);
        let before_monitoring = state.context.monitored_since.is_none_or(|m| slot < m);
        let taken = state
            .last_reading
            .get(&s.measure)
            .is_some_and(|&r| r >= slot - grace);
        if before_monitoring || taken || state.missed_slot.get(&s.measure) == Some(&slot) {
            continue;
        }
        state.missed_slot.insert(s.measure, slot);
        let device = s.measure.device();
        let (adherence_key, technical_key) = missed_keys(s.measure);
        if state.active.contains_key(&adherence_key) || state.active.contains_key(&technical_key) {
            continue;
        }
        // A technical cause makes this a technical alarm, not the patient's missed reading.
        let cause = technical_cause(state, device);
        let (key, category, priority, finding) = match cause {
            Some(cause) => (
                technical_key,
                Category::Technical,
                rules.technical.device_error_priority,
                Finding::ReadingNotReceived {
                    measure: s.measure,
                    cause,
                },
            ),
            None => (
                adherence_key,
                Category::Adherence,
                rules.adherence.priority,
                Finding::MissedReading { measure: s.measure },
            ),
        };
        state.rules.entry(key.clone()).or_default().active = true;
        out.push(Outcome {
            key,
            edge: Edge::Raise,
            priority,
            category,
            group: None,
            finding,
            device: Some(device),
        });
    }
    out
}

fn missed_keys(m: Measure) -> (String, String) {
    (
        format!("missed_reading/{}", m.as_str()),
        format!("reading_not_received/{}", m.as_str()),
    )
}

fn technical_cause(state: &PatientState, device: DeviceKind) -> Option<String> {
    let d = device.as_str();
    [
        "gateway_offline".to_owned(),
        format!("device_error/{d}"),
        format!("battery_low/{d}"),
    ]
    .into_iter()
    .find(|k| state.active.contains_key(k))
}

fn clear_missed(state: &mut PatientState, measure: Measure) -> Vec<Outcome> {
    let (a, t) = missed_keys(measure);
    let mut out = force_clear(
        state,
        &a,
        Category::Adherence,
        Finding::MissedReading { measure },
    );
    let not_received = Finding::ReadingNotReceived {
        measure,
        cause: String::new(),
    };
    out.extend(force_clear(state, &t, Category::Technical, not_received));
    out
}

fn clear_device_error(state: &mut PatientState, device: DeviceKind) -> Vec<Outcome> {
    force_clear(
        state,
        &format!("device_error/{}", device.as_str()),
        Category::Technical,
        Finding::DeviceError {
            device,
            code: String::new(),
        },
    )
}

/// Clears a condition that ends on an event rather than on a sampled value.
fn force_clear(
    state: &mut PatientState,
    key: &str,
    category: Category,
    finding: Finding,
) -> Vec<Outcome> {
    match state.rules.get_mut(key) {
        Some(d) if d.active => {
            d.active = false;
            vec![Outcome {
                key: key.to_owned(),
                edge: Edge::Clear,
                priority: Priority::Low,
                category,
                group: None,
                finding,
                device: None,
            }]
        }
        _ => Vec::new(),
    }
}

/// Turns rule edges into signals: de-duplicates by group (a lower- or equal-priority alert of a
/// group with an active member is absorbed, not raised), and notes which technical alarms qualify
/// a clinical one.
fn emit(
    state: &mut PatientState,
    at: DateTime<Utc>,
    patient: &str,
    outcomes: Vec<Outcome>,
) -> Vec<Signal> {
    let mut signals = Vec::new();
    for o in outcomes {
        match o.edge {
            Edge::Raise => {
                let absorbed = o.group.as_ref().is_some_and(|g| {
                    state
                        .active
                        .values()
                        .any(|(p, og)| og.as_ref() == Some(g) && *p >= o.priority)
                });
                if let Some(d) = state.rules.get_mut(&o.key) {
                    d.emitted = !absorbed;
                }
                if absorbed {
                    continue;
                }
                let qualified_by = match (o.category, o.device) {
                    (Category::Clinical, Some(device)) => qualifiers(state, device),
                    _ => Vec::new(),
                };
                state
                    .active
                    .insert(o.key.clone(), (o.priority, o.group.clone()));
                signals.push(Signal {
                    at,
                    patient: patient.to_owned(),
                    key: o.key,
                    change: Change::Raise {
                        priority: o.priority,
                        category: o.category,
                        finding: o.finding,
                        qualified_by,
                    },
                });
            }
            Edge::Clear => {
                if state.active.remove(&o.key).is_some() {
                    signals.push(Signal {
                        at,
                        patient: patient.to_owned(),
                        key: o.key,
                        change: Change::Clear,
                    });
                }
            }
        }
    }
    signals
}

fn qualifiers(state: &PatientState, device: DeviceKind) -> Vec<String> {
    let d = device.as_str();
    state
        .active
        .keys()
        .filter(|k| k.ends_with(&format!("/{d}")) || k.as_str() == "gateway_offline")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 15, 0, 0).unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(s)
    }

    fn vital(s: i64, measure: Measure, value: f64) -> Input {
        Input {
            at: at(s),
            patient: "p1".into(),
            observation: Observation::Vital {
                measure,
                value,
                artefact: false,
            },
        }
    }

    fn ecg_second(
        s: i64,
        quality: EcgQuality,
        hr: Option<f64>,
        rr: Option<u32>,
        rhythm: Rhythm,
    ) -> Input {
        Input {
            at: at(s),
            patient: "p1".into(),
            observation: Observation::Ecg(EcgSecond {
                quality,
                heart_rate_per_min: hr,
                longest_rr_ms: rr,
                rhythm,
            }),
        }
    }

    fn engine() -> Engine {
        Engine::new(RuleSet::builtin(), Overrides::default())
    }

    fn raised(signals: &[Signal]) -> Vec<(i64, String)> {
        signals
            .iter()
            .filter(|s| matches!(s.change, Change::Raise { .. }))
            .map(|s| ((s.at - t0()).num_seconds(), s.key.clone()))
            .collect()
    }

    fn feed(e: &mut Engine, inputs: impl IntoIterator<Item = Input>) -> Vec<Signal> {
        inputs.into_iter().flat_map(|i| e.observe(&i)).collect()
    }

    #[test]
    fn pulse_and_ecg_tachycardia_raise_one_alert() {
        let mut e = engine();
        let mut inputs = Vec::new();
        for s in 0..=40 {
            inputs.push(vital(s, Measure::PulseRate, 140.0));
            inputs.push(ecg_second(
                s,
                EcgQuality::Usable,
                Some(141.0),
                Some(430),
                Rhythm::Regular,
            ));
        }
        assert_eq!(
            raised(&feed(&mut e, inputs)),
            vec![(30, "pulse_high".to_owned())]
        );
    }

    #[test]
    fn artefact_samples_never_raise_a_clinical_alarm() {
        let mut e = engine();
        let inputs = (0..=120).map(|s| Input {
            observation: Observation::Vital {
                measure: Measure::Spo2,
                value: 80.0,
                artefact: s % 20 == 0,
            },
            ..vital(s, Measure::Spo2, 0.0)
        });
        // A flagged sample every 20 s breaks every run short of 60 s.
        assert!(raised(&feed(&mut e, inputs)).is_empty());
    }

    #[test]
    fn ecg_on_unusable_signal_raises_only_the_technical_alarm() {
        let mut e = engine();
        let inputs = (0..=20)
            .map(|s| ecg_second(s, EcgQuality::LeadOff, None, Some(5000), Rhythm::Asystole));
        assert_eq!(
            raised(&feed(&mut e, inputs)),
            vec![(10, "lead_off".to_owned())]
        );
    }

    #[test]
    fn ventricular_fibrillation_raises_at_once_and_clears_when_beats_return() {
        let mut e = engine();
        let mut inputs: Vec<_> = (0..3)
            .map(|s| {
                ecg_second(
                    s,
                    EcgQuality::Usable,
                    Some(72.0),
                    Some(850),
                    Rhythm::Regular,
                )
            })
            .collect();
        inputs.extend((3..10).map(|s| {
            ecg_second(
                s,
                EcgQuality::Usable,
                None,
                None,
                Rhythm::VentricularFibrillation,
            )
        }));
        inputs.extend((10..14).map(|s| {
            ecg_second(
                s,
                EcgQuality::Usable,
                Some(90.0),
                Some(700),
                Rhythm::Regular,
            )
        }));
        let signals = feed(&mut e, inputs);
        assert_eq!(raised(&signals), vec![(3, "ecg_vf".to_owned())]);
        assert!(
            signals
                .iter()
                .any(|s| s.key == "ecg_vf" && matches!(s.change, Change::Clear)),
            "{signals:?}"
        );
    }

    #[test]
    fn pause_asystole_and_new_af_on_usable_signal() {
        let mut e = engine();
        let mut inputs: Vec<_> = (0..5)
            .map(|s| {
                ecg_second(
                    s,
                    EcgQuality::Usable,
                    Some(70.0),
                    Some(850),
                    Rhythm::Regular,
                )
            })
            .collect();
        inputs.push(ecg_second(
            5,
            EcgQuality::Usable,
            Some(40.0),
            Some(3400),
            Rhythm::Regular,
        ));
        inputs.push(ecg_second(
            6,
            EcgQuality::Usable,
            None,
            None,
            Rhythm::Asystole,
        ));
        inputs.extend(
            (7..60).map(|s| ecg_second(s, EcgQuality::Usable, Some(110.0), Some(700), Rhythm::Af)),
        );
        let got = raised(&feed(&mut e, inputs));
        assert_eq!(
            got,
            vec![
                (5, "ecg_pause".to_owned()),
                (6, "ecg_asystole".to_owned()),
                (37, "ecg_new_af".to_owned())
            ]
        );
    }

    #[test]
    fn known_af_is_not_new_onset() {
        let mut e = engine();
        e.set_patient(
            "p1",
            PatientContext {
                known_af: true,
                ..Default::default()
            },
        );
        let inputs =
            (0..100).map(|s| ecg_second(s, EcgQuality::Usable, Some(90.0), Some(700), Rhythm::Af));
        assert!(raised(&feed(&mut e, inputs)).is_empty());
    }

    #[test]
    fn missed_reading_is_adherence_unless_a_technical_cause_explains_it() {
        let mut e = engine();
        let schedule = vec![
            ScheduledReading {
                measure: Measure::SystolicBp,
                at: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            },
            ScheduledReading {
                measure: Measure::BodyWeight,
                at: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            },
        ];
        e.set_patient(
            "p1",
            PatientContext {
                schedule,
                monitored_since: Some(t0()),
                ..Default::default()
            },
        );
        let cuff_error = Input {
            at: at(3600),
            patient: "p1".into(),
            observation: Observation::DeviceError {
                device: DeviceKind::BpCuff,
                code: "E2".into(),
            },
        };
        let mut got = raised(&e.observe(&cuff_error));
        // 22:00 + 120 min grace = 00:00 next day = t0 + 9 h.
        got.extend(raised(&e.tick(at(9 * 3600 - 1))));
        got.extend(raised(&e.tick(at(9 * 3600))));
        got.extend(raised(&e.tick(at(9 * 3600 + 60))));
        assert_eq!(
            got,
            vec![
                (3600, "device_error/bp_cuff".to_owned()),
                (9 * 3600, "reading_not_received/systolic_bp".to_owned()),
                (9 * 3600, "missed_reading/body_weight".to_owned()),
            ]
        );
        let cleared = e.observe(&vital(9 * 3600 + 100, Measure::SystolicBp, 130.0));
        let keys: Vec<_> = cleared
            .iter()
            .filter(|s| s.change == Change::Clear)
            .map(|s| s.key.as_str())
            .collect();
        assert_eq!(
            keys,
            vec!["reading_not_received/systolic_bp", "device_error/bp_cuff"]
        );
    }

    #[test]
    fn gateway_offline_after_its_delay_and_cleared_on_reconnect() {
        let mut e = engine();
        let off = Input {
            at: at(0),
            patient: "p1".into(),
            observation: Observation::Gateway { online: false },
        };
        e.observe(&off);
        assert!(e.tick(at(299)).is_empty());
        assert_eq!(
            raised(&e.tick(at(300))),
            vec![(300, "gateway_offline".to_owned())]
        );
        assert!(e.tick(at(400)).is_empty());
        let on = Input {
            at: at(500),
            patient: "p1".into(),
            observation: Observation::Gateway { online: true },
        };
        assert_eq!(e.observe(&on)[0].change, Change::Clear);
    }

    #[test]
    fn a_doctors_override_moves_the_limit_for_that_patient_only() {
        let rules = RuleSet::builtin();
        let mut overrides = Overrides::default();
        overrides
            .set(
                &rules,
                crate::alerts::rules::Override {
                    patient: "p1".into(),
                    rule: "spo2_low".into(),
                    raise_value: 86.0,
                    clear_value: 88.0,
                    set_by: "dr".into(),
                    reason: "COPD".into(),
                    set_at: t0(),
                    expires_at: at(86_400),
                },
            )
            .unwrap();
        let mut e = Engine::new(rules, overrides);
        let p1 = (1..=70).map(|s| vital(s, Measure::Spo2, 88.0));
        let p2 = (1..=70).map(|s| Input {
            patient: "p2".into(),
            ..vital(s, Measure::Spo2, 88.0)
        });
        let got = feed(&mut e, p1.chain(p2));
        assert_eq!(
            got.iter().map(|s| s.patient.as_str()).collect::<Vec<_>>(),
            vec!["p2"]
        );
    }

    #[test]
    fn checkpoint_and_restore_resume_exactly() {
        let inputs: Vec<_> = (0..=90)
            .map(|s| vital(s, Measure::Spo2, if s < 80 { 85.0 } else { 93.0 }))
            .collect();
        let mut whole = engine();
        let expected = feed(&mut whole, inputs.clone());
        let mut first = engine();
        let mut got = feed(&mut first, inputs[..30].to_vec());
        let mut resumed = Engine::restore(
            RuleSet::builtin(),
            Overrides::default(),
            &first.checkpoint(),
        )
        .unwrap();
        got.extend(feed(&mut resumed, inputs[30..].to_vec()));
        assert_eq!(got, expected);
        assert_eq!(raised(&got), vec![(60, "spo2_low".to_owned())]);
    }

    #[test]
    fn late_upload_of_old_readings_does_not_raise_live_thresholds() {
        let mut e = engine();
        e.observe(&vital(1000, Measure::SystolicBp, 130.0));
        assert!(e.observe(&vital(10, Measure::SystolicBp, 190.0)).is_empty());
        assert_eq!(
            raised(&e.observe(&vital(1010, Measure::SystolicBp, 190.0))),
            vec![(1010, "systolic_high".to_owned())]
        );
    }
}
