//! Simulated patients in memory: the [`ClinicalData`] behind the one-command
//! demo and the browser tests until the server core's registry, storage and
//! alert engine are wired in. Everything here is synthetic (no real person).
//!
//! It keeps a week of history per patient, streams ECG at 250 Hz in 0.25 s
//! frames with R peaks and RR marked, publishes HR and SpO2 every 5 s, and
//! runs a scripted deterioration (SpO2 and HR worsen, a high alert is raised
//! and routed to the on-call doctor) on demand or on a timer.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::broadcast;

use super::access::Role;
use super::auth::password::hash_password;
use super::data::{
    Alert, AlertAction, AlertId, AlertPriority, AlertState, AlertTransition, AlertWording,
    AlertWordings, CareTeamId, ClinicalData, DataError, DeviceStatus, EcgFrame, Observation,
    PatientDetail, PatientEvent, PatientId, PatientRuleLimits, PatientSummary, RuleOverrideRequest,
    TrendPoint, UserAccount, UserId, VitalKind, limits_of_rule,
};
use crate::alerts::finding::Finding;
use crate::alerts::rules::{DeviceKind, Measure, Op, Override, Overrides, RuleSet, ThresholdRule};
use crate::language::Language;
use crate::oncall::handover::demo as handover_demo;
use crate::oncall::handover::{
    AlertDetails, EarlierAlert, HandoverInput, ResuscitationStatus, Severity,
    VitalKind as HandoverVital, VitalPoint, VitalSeries,
};

/// ECG sampling rate of the simulated monitors (Checkme Pro X: 250 Hz).
pub const ECG_RATE_HZ: u32 = 250;
/// Samples per live frame (0.25 s at 250 Hz, rounded up).
const FRAME_SAMPLES: usize = 63;

/// A demo account, printed at start-up.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Login name.
    pub login: &'static str,
    /// Password.
    pub password: &'static str,
    /// Role.
    pub role: Role,
    /// Care teams.
    pub teams: &'static [&'static str],
    /// Name shown.
    pub display_name: &'static str,
}

/// The demo accounts. Passwords are public: demo only.
pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        login: "nurse",
        password: "mimamori-nurse",
        role: Role::Nurse,
        teams: &["setagaya"],
        display_name: "佐藤 花子 (看護師)",
    },
    DemoAccount {
        login: "doctor",
        password: "mimamori-doctor",
        role: Role::Doctor,
        teams: &["setagaya", "tamagawa"],
        display_name: "鈴木 一郎 (医師)",
    },
    DemoAccount {
        login: "oncall",
        password: "mimamori-oncall",
        role: Role::OnCallDoctor,
        teams: &[],
        display_name: "高橋 健 (当直医)",
    },
    DemoAccount {
        login: "night",
        password: "mimamori-night",
        role: Role::Coordinator,
        teams: &["setagaya"],
        display_name: "田中 美咲 (夜間受付)",
    },
    DemoAccount {
        login: "tamagawa",
        password: "mimamori-tamagawa",
        role: Role::Nurse,
        teams: &["tamagawa"],
        display_name: "伊藤 直子 (看護師)",
    },
    DemoAccount {
        login: "admin",
        password: "mimamori-admin",
        role: Role::Administrator,
        teams: &[],
        display_name: "管理者",
    },
];

/// Fixed TOTP secret of every demo account (so a demo phone can be enrolled once).
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

struct SimPatient {
    detail: PatientDetail,
    /// Resting heart rate, /min.
    base_hr: f64,
    /// Usual SpO2, %.
    base_spo2: f64,
    observations: Vec<Observation>,
    devices: Vec<DeviceStatus>,
    live: broadcast::Sender<PatientEvent>,
    /// Seconds into the current deterioration, if deteriorating.
    deteriorating_since: Option<DateTime<Utc>>,
    ecg_phase_s: f64,
    last_r_at: Option<DateTime<Utc>>,
}

struct World {
    patients: Vec<SimPatient>,
    alerts: Vec<Alert>,
    next_alert: u64,
    rng: StdRng,
    /// The shipped rules and the doctors' overrides (kept in memory only).
    rules: RuleSet,
    overrides: Overrides,
}

/// The simulation.
#[derive(Clone)]
pub struct Simulation {
    world: Arc<Mutex<World>>,
    users: Arc<Mutex<Vec<UserAccount>>>,
    alerts_tx: broadcast::Sender<Alert>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Simulation")
    }
}

/// One simulated patient: id, name, furigana, date of birth (y, m, d), care team,
/// diseases, home oxygen, NEWS2 SpO2 scale, resting HR (/min), usual SpO2 (%).
type PatientSeed = (
    &'static str,
    &'static str,
    &'static str,
    (i32, u32, u32),
    &'static str,
    &'static [&'static str],
    bool,
    u8,
    f64,
    f64,
);

const PATIENTS: &[PatientSeed] = &[
    (
        "p01",
        "山田 太郎",
        "ヤマダ タロウ",
        (1938, 4, 2),
        "setagaya",
        &["心不全", "高血圧"],
        false,
        1,
        72.0,
        96.0,
    ),
    (
        "p02",
        "山田 太朗",
        "ヤマダ タロウ",
        (1941, 11, 20),
        "setagaya",
        &["COPD"],
        true,
        2,
        84.0,
        90.0,
    ),
    (
        "p03",
        "佐々木 和子",
        "ササキ カズコ",
        (1935, 7, 14),
        "setagaya",
        &["心房細動", "糖尿病"],
        false,
        1,
        78.0,
        97.0,
    ),
    (
        "p04",
        "中村 清",
        "ナカムラ キヨシ",
        (1944, 1, 30),
        "setagaya",
        &["慢性腎臓病"],
        false,
        1,
        66.0,
        96.0,
    ),
    (
        "p05",
        "小林 ミヨ",
        "コバヤシ ミヨ",
        (1930, 3, 3),
        "setagaya",
        &["誤嚥性肺炎の既往"],
        false,
        1,
        88.0,
        95.0,
    ),
    (
        "p06",
        "加藤 正男",
        "カトウ マサオ",
        (1947, 9, 9),
        "setagaya",
        &["肺がん"],
        true,
        1,
        92.0,
        94.0,
    ),
    (
        "p07",
        "吉田 節子",
        "ヨシダ セツコ",
        (1939, 5, 25),
        "tamagawa",
        &["心不全"],
        false,
        1,
        70.0,
        97.0,
    ),
    (
        "p08",
        "山本 勇",
        "ヤマモト イサム",
        (1936, 12, 1),
        "tamagawa",
        &["パーキンソン病"],
        false,
        1,
        64.0,
        96.0,
    ),
    (
        "p09",
        "松本 トメ",
        "マツモト トメ",
        (1928, 8, 18),
        "tamagawa",
        &["認知症", "高血圧"],
        false,
        1,
        76.0,
        95.0,
    ),
    (
        "p10",
        "井上 博",
        "イノウエ ヒロシ",
        (1950, 2, 11),
        "tamagawa",
        &["ALS"],
        true,
        2,
        86.0,
        92.0,
    ),
];

fn obs(kind: VitalKind, value: f64, at: DateTime<Utc>) -> Observation {
    Observation {
        kind,
        value,
        unit: kind.ucum().to_owned(),
        measured_at: at,
        received_at: at + Duration::seconds(2),
    }
}

/// One synthetic PQRST beat value at `phase` (0..1 of the RR interval), microvolts.
/// Sum of Gaussians after McSharry et al. 2003 (IEEE TBME 50:289), simplified to time domain.
fn ecg_uv(phase: f64, rr_s: f64) -> f64 {
    // (centre in s after the R peak's position at 0.25 of RR, width s, amplitude µV)
    const WAVES: [(f64, f64, f64); 5] = [
        (-0.20, 0.025, 120.0),
        (-0.035, 0.010, -120.0),
        (0.0, 0.011, 1100.0),
        (0.035, 0.010, -250.0),
        (0.28, 0.045, 300.0),
    ];
    let t = (phase - 0.25) * rr_s;
    WAVES
        .iter()
        .map(|(c, w, a)| a * (-((t - c) * (t - c)) / (2.0 * w * w)).exp())
        .sum()
}

impl Simulation {
    /// A simulation with the demo patients and accounts, a week of history ending `now`.
    pub fn new(
        now: DateTime<Utc>,
        seed: u64,
    ) -> Result<Self, super::auth::password::PasswordError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut patients = Vec::new();
        for (i, &(id, name, kana, (y, m, d), team, diseases, oxygen, scale, hr, spo2)) in
            PATIENTS.iter().enumerate()
        {
            let detail = PatientDetail {
                summary: PatientSummary {
                    id: PatientId(id.into()),
                    name: name.into(),
                    name_kana: kana.into(),
                    date_of_birth: NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default(),
                    care_teams: BTreeSet::from([CareTeamId(team.into())]),
                },
                diseases: diseases.iter().map(|s| (*s).to_owned()).collect(),
                allergies: if i % 3 == 0 {
                    vec!["ペニシリン".into()]
                } else {
                    vec![]
                },
                dnar: i % 4 == 1,
                home_oxygen: oxygen,
                news2_spo2_scale: scale,
            };
            let mut observations = Vec::new();
            let start = now - Duration::days(7);
            let mut t = start;
            while t < now {
                let circadian =
                    ((t.timestamp() % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
                observations.push(obs(
                    VitalKind::HeartRate,
                    (hr + 6.0 * circadian + rng.gen_range(-3.0..3.0)).round(),
                    t,
                ));
                observations.push(obs(
                    VitalKind::Spo2,
                    (spo2 + rng.gen_range(-1.5..1.0)).round().min(100.0),
                    t,
                ));
                t += Duration::minutes(10);
            }
            for day in 0..7 {
                let morning = start + Duration::days(day) + Duration::hours(22); // 07:00 JST
                let sbp = 128.0 + rng.gen_range(-12.0..12.0) + (i as f64) * 2.0;
                observations.push(obs(VitalKind::SystolicBp, sbp.round(), morning));
                observations.push(obs(VitalKind::DiastolicBp, (sbp * 0.6).round(), morning));
                observations.push(obs(
                    VitalKind::Temperature,
                    36.4 + f64::from(rng.gen_range(-3..4)) / 10.0,
                    morning,
                ));
                observations.push(obs(
                    VitalKind::Weight,
                    52.0 + i as f64 * 2.5 + f64::from(day as i32) * 0.05,
                    morning,
                ));
            }
            // One home with a silent oximeter: its values go stale (shown as such).
            if i == 7 {
                observations.retain(|o| {
                    o.measured_at < now - Duration::minutes(40)
                        || !matches!(o.kind, VitalKind::Spo2)
                });
            }
            observations.sort_by_key(|o| o.measured_at);
            let gateway = format!("gw-{id}");
            let devices = vec![
                DeviceStatus {
                    device_id: format!("checkme-{id}"),
                    model: "Checkme Pro X".into(),
                    battery_percent: Some(if i == 4 { 12 } else { 60 + (i as u8 * 3) }),
                    last_seen: Some(now),
                    gateway_id: gateway.clone(),
                    gateway_online: i != 7,
                    gateway_last_seen: Some(if i == 7 {
                        now - Duration::minutes(40)
                    } else {
                        now
                    }),
                },
                DeviceStatus {
                    device_id: format!("vitalook-{id}"),
                    model: "VitaLook BP".into(),
                    battery_percent: Some(80),
                    last_seen: Some(now - Duration::hours(3)),
                    gateway_id: gateway,
                    gateway_online: i != 7,
                    gateway_last_seen: Some(now),
                },
            ];
            patients.push(SimPatient {
                detail,
                base_hr: hr,
                base_spo2: spo2,
                observations,
                devices,
                live: broadcast::channel(256).0,
                deteriorating_since: None,
                ecg_phase_s: 0.0,
                last_r_at: None,
            });
        }
        let mut users = Vec::new();
        for a in DEMO_ACCOUNTS {
            users.push(UserAccount {
                id: UserId(format!("u-{}", a.login)),
                login: a.login.into(),
                display_name: a.display_name.into(),
                roles: BTreeSet::from([a.role]),
                care_teams: a.teams.iter().map(|t| CareTeamId((*t).into())).collect(),
                password_phc: hash_password(a.password)?,
                totp_secret: Some(DEMO_TOTP_SECRET.into()),
            });
        }
        let sim = Self {
            world: Arc::new(Mutex::new(World {
                patients,
                alerts: Vec::new(),
                next_alert: 1,
                rng,
                rules: RuleSet::builtin(),
                overrides: Overrides::default(),
            })),
            users: Arc::new(Mutex::new(users)),
            alerts_tx: broadcast::channel(256).0,
        };
        // A resolved and an acknowledged alert so the queue is not empty on first look.
        sim.raise(
            &PatientId("p05".into()),
            AlertPriority::Low,
            "battery_low/ecg",
            Finding::BatteryLow {
                device: DeviceKind::Ecg,
                percent: 12.0,
            },
            None,
            now - Duration::hours(2),
        );
        sim.raise(
            &PatientId("p08".into()),
            AlertPriority::Medium,
            "gateway_offline",
            Finding::GatewayOffline,
            None,
            now - Duration::minutes(35),
        );
        Ok(sim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn raise(
        &self,
        patient: &PatientId,
        priority: AlertPriority,
        rule: &str,
        finding: Finding,
        routed_to: Option<UserId>,
        at: DateTime<Utc>,
    ) -> Alert {
        let alert = {
            let mut w = self.lock();
            let id = AlertId(format!("a{:05}", w.next_alert));
            w.next_alert += 1;
            let alert = Alert {
                id,
                patient_id: patient.clone(),
                priority,
                state: AlertState::Notified,
                rule: rule.into(),
                message: finding.to_string(),
                wording: AlertWordings::in_each_language(|language| AlertWording {
                    title: finding.title(language),
                    message: finding.phrase(language),
                }),
                condition_active: true,
                raised_at: at,
                routed_to,
                transitions: vec![
                    AlertTransition {
                        state: AlertState::Raised,
                        at,
                        by: None,
                        note: None,
                    },
                    AlertTransition {
                        state: AlertState::Notified,
                        at,
                        by: None,
                        note: None,
                    },
                ],
            };
            w.alerts.push(alert.clone());
            alert
        };
        let _ = self.alerts_tx.send(alert.clone());
        alert
    }

    /// Starts the scripted deterioration of one patient: SpO2 falls towards 85 %
    /// and HR rises; a high-priority alert is raised and routed to the on-call doctor.
    pub fn deteriorate(&self, patient: &PatientId) -> Option<Alert> {
        let now = Utc::now();
        {
            let mut w = self.lock();
            let p = w
                .patients
                .iter_mut()
                .find(|p| &p.detail.summary.id == patient)?;
            p.deteriorating_since = Some(now);
        }
        Some(self.raise(
            patient,
            AlertPriority::High,
            "spo2_low",
            Finding::Threshold {
                measure: Measure::Spo2,
                value: 86.0,
                unit: "%".into(),
                op: Op::Lt,
                limit: 90.0,
            },
            Some(UserId("u-oncall".into())),
            now,
        ))
    }

    /// Publishes a live event for a patient, as ingest does for real ones (the
    /// backpressure tests use it to outrun a client).
    pub fn publish(&self, patient: &PatientId, event: PatientEvent) -> Result<(), DataError> {
        let sender = self.with_patient(patient, |p| p.live.clone())?;
        if let PatientEvent::Observation(o) = &event {
            let mut w = self.lock();
            if let Some(p) = w
                .patients
                .iter_mut()
                .find(|p| &p.detail.summary.id == patient)
            {
                p.observations.push(o.clone());
            }
        }
        let _ = sender.send(event);
        Ok(())
    }

    /// Runs the live stream forever: ECG every 0.25 s, HR and SpO2 every 5 s, and
    /// a deterioration of the next patient every `deterioration_every` (if set).
    pub async fn run(self, deterioration_every: Option<StdDuration>) {
        let mut tick = tokio::time::interval(StdDuration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        let mut next_deterioration = deterioration_every.map(|d| tokio::time::Instant::now() + d);
        let mut victim = 0usize;
        loop {
            tick.tick().await;
            n += 1;
            self.stream_ecg(Utc::now());
            if n.is_multiple_of(20) {
                self.publish_vitals(Utc::now());
            }
            if let (Some(at), Some(every)) = (next_deterioration, deterioration_every)
                && tokio::time::Instant::now() >= at
            {
                let id = PatientId(PATIENTS[victim % PATIENTS.len()].0.into());
                victim += 1;
                self.deteriorate(&id);
                next_deterioration = Some(at + every);
            }
        }
    }

    fn current_hr_spo2(p: &SimPatient, now: DateTime<Utc>) -> (f64, f64) {
        match p.deteriorating_since {
            None => (p.base_hr, p.base_spo2),
            Some(since) => {
                let k = ((now - since).num_milliseconds() as f64 / 20_000.0).clamp(0.0, 1.0);
                (p.base_hr + k * 45.0, p.base_spo2 - k * (p.base_spo2 - 85.0))
            }
        }
    }

    fn stream_ecg(&self, now: DateTime<Utc>) {
        let mut w = self.lock();
        let World { patients, rng, .. } = &mut *w;
        for p in patients.iter_mut() {
            if p.live.receiver_count() == 0 {
                continue;
            }
            let (hr, _) = Self::current_hr_spo2(p, now);
            let rr_s = 60.0 / hr;
            let dt = 1.0 / f64::from(ECG_RATE_HZ);
            let start = now - Duration::milliseconds(250);
            let mut frame = EcgFrame {
                start,
                sample_rate_hz: ECG_RATE_HZ,
                samples_uv: Vec::with_capacity(FRAME_SAMPLES),
                r_peaks: vec![],
                rr_ms: vec![],
            };
            for i in 0..FRAME_SAMPLES {
                let before = p.ecg_phase_s;
                p.ecg_phase_s = (p.ecg_phase_s + dt) % rr_s;
                // R peak sits at 0.25 of the cycle.
                let r = 0.25 * rr_s;
                if before < r && (p.ecg_phase_s >= r || p.ecg_phase_s < before) {
                    let at = start + Duration::microseconds((i as f64 * dt * 1e6) as i64);
                    frame.r_peaks.push(i as u32);
                    frame.rr_ms.push(
                        p.last_r_at
                            .map(|l| (at - l).num_milliseconds().max(0) as u32),
                    );
                    p.last_r_at = Some(at);
                }
                let noise: f64 = rng.gen_range(-15.0..15.0);
                frame
                    .samples_uv
                    .push((ecg_uv(p.ecg_phase_s / rr_s, rr_s) + noise) as i32);
            }
            let _ = p.live.send(PatientEvent::Ecg(frame));
        }
    }

    fn publish_vitals(&self, now: DateTime<Utc>) {
        let mut w = self.lock();
        let World { patients, rng, .. } = &mut *w;
        for (i, p) in patients.iter_mut().enumerate() {
            if i == 7 {
                continue; // the silent home
            }
            let (hr, spo2) = Self::current_hr_spo2(p, now);
            let hr_o = obs(
                VitalKind::HeartRate,
                (hr + rng.gen_range(-2.0..2.0)).round(),
                now,
            );
            let spo2_o = obs(
                VitalKind::Spo2,
                (spo2 + rng.gen_range(-0.6..0.6)).round().min(100.0),
                now,
            );
            for o in [hr_o, spo2_o] {
                p.observations.push(o.clone());
                let _ = p.live.send(PatientEvent::Observation(o));
            }
            for d in &mut p.devices {
                d.last_seen = Some(now);
                d.gateway_last_seen = Some(now);
            }
        }
    }

    /// The threshold rules and `patient`'s overrides in force now.
    fn thresholds_now(&self, id: &PatientId) -> (Vec<ThresholdRule>, Vec<Override>) {
        let w = self.lock();
        let in_force = w.overrides.in_force(&id.0, Utc::now()).cloned().collect();
        (w.rules.threshold.clone(), in_force)
    }

    fn limits_now(&self, id: &PatientId, rule: &str) -> Result<PatientRuleLimits, DataError> {
        let (rules, in_force) = self.thresholds_now(id);
        limits_of_rule(&rules, &in_force, rule)
    }

    fn with_patient<T>(
        &self,
        id: &PatientId,
        f: impl FnOnce(&SimPatient) -> T,
    ) -> Result<T, DataError> {
        let w = self.lock();
        w.patients
            .iter()
            .find(|p| &p.detail.summary.id == id)
            .map(f)
            .ok_or_else(|| DataError::PatientNotFound(id.clone()))
    }
}

#[async_trait::async_trait]
impl ClinicalData for Simulation {
    async fn user_by_login(&self, login: &str) -> Result<Option<UserAccount>, DataError> {
        Ok(self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
            .cloned())
    }

    async fn set_totp_secret(&self, user: &UserId, secret: Option<&str>) -> Result<(), DataError> {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match users.iter_mut().find(|u| &u.id == user) {
            Some(account) => {
                account.totp_secret = secret.map(str::to_owned);
                Ok(())
            }
            None => Err(DataError::Storage(format!("no account {user}"))),
        }
    }

    async fn patients(&self) -> Result<Vec<PatientSummary>, DataError> {
        Ok(self
            .lock()
            .patients
            .iter()
            .map(|p| p.detail.summary.clone())
            .collect())
    }

    async fn patient(&self, id: &PatientId) -> Result<PatientDetail, DataError> {
        self.with_patient(id, |p| p.detail.clone())
    }

    async fn latest(&self, id: &PatientId) -> Result<Vec<Observation>, DataError> {
        self.with_patient(id, |p| {
            VitalKind::ALL
                .iter()
                .filter_map(|k| p.observations.iter().rev().find(|o| o.kind == *k).cloned())
                .collect()
        })
    }

    async fn readings(
        &self,
        id: &PatientId,
        kind: Option<VitalKind>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Observation>, DataError> {
        self.with_patient(id, |p| {
            p.observations
                .iter()
                .rev()
                .filter(|o| {
                    kind.is_none_or(|k| o.kind == k) && o.measured_at >= from && o.measured_at < to
                })
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn trend(
        &self,
        id: &PatientId,
        kind: VitalKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<TrendPoint>, DataError> {
        self.with_patient(id, |p| {
            bucket(
                p.observations.iter().filter(|o| o.kind == kind),
                from,
                to,
                max_points,
            )
        })
    }

    async fn devices(&self, id: &PatientId) -> Result<Vec<DeviceStatus>, DataError> {
        self.with_patient(id, |p| p.devices.clone())
    }

    async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, DataError> {
        let mut alerts: Vec<Alert> = self
            .lock()
            .alerts
            .iter()
            .filter(|a| !open_only || a.state.is_open())
            .cloned()
            .collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
        Ok(alerts)
    }

    async fn alert(&self, id: &AlertId) -> Result<Alert, DataError> {
        self.lock()
            .alerts
            .iter()
            .find(|a| &a.id == id)
            .cloned()
            .ok_or_else(|| DataError::AlertNotFound(id.clone()))
    }

    async fn act_on_alert(
        &self,
        id: &AlertId,
        action: AlertAction,
        by: &UserId,
        note: &str,
    ) -> Result<Alert, DataError> {
        let alert = {
            let mut w = self.lock();
            let alert = w
                .alerts
                .iter_mut()
                .find(|a| &a.id == id)
                .ok_or_else(|| DataError::AlertNotFound(id.clone()))?;
            let next = match (alert.state, action) {
                (AlertState::Resolved, _)
                | (AlertState::Acknowledged, AlertAction::Acknowledge)
                | (AlertState::Escalated, AlertAction::Escalate) => {
                    return Err(DataError::InvalidTransition {
                        alert: id.clone(),
                        state: alert.state,
                        action,
                    });
                }
                (_, AlertAction::Acknowledge) => AlertState::Acknowledged,
                (_, AlertAction::Escalate) => AlertState::Escalated,
                (_, AlertAction::Resolve) => AlertState::Resolved,
            };
            alert.state = next;
            alert.transitions.push(AlertTransition {
                state: next,
                at: Utc::now(),
                by: Some(by.clone()),
                note: Some(note.to_owned()),
            });
            let alert = alert.clone();
            if next == AlertState::Resolved
                && let Some(p) = w
                    .patients
                    .iter_mut()
                    .find(|p| p.detail.summary.id == alert.patient_id)
            {
                p.deteriorating_since = None;
            }
            alert
        };
        let _ = self.alerts_tx.send(alert.clone());
        Ok(alert)
    }

    async fn rule_limits(&self, id: &PatientId) -> Result<Vec<PatientRuleLimits>, DataError> {
        self.with_patient(id, |_| ())?;
        let (rules, in_force) = self.thresholds_now(id);
        Ok(PatientRuleLimits::of_rules(&rules, &in_force))
    }

    async fn set_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        request: RuleOverrideRequest,
        by: &UserId,
    ) -> Result<PatientRuleLimits, DataError> {
        self.with_patient(id, |_| ())?;
        {
            let mut w = self.lock();
            let World {
                rules, overrides, ..
            } = &mut *w;
            overrides.set(rules, request.into_override(id, rule, by, Utc::now()))?;
        }
        self.limits_now(id, rule)
    }

    async fn revoke_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        by: &UserId,
        reason: &str,
    ) -> Result<PatientRuleLimits, DataError> {
        self.with_patient(id, |_| ())?;
        {
            let mut w = self.lock();
            let revocation =
                w.overrides
                    .revocation(&w.rules, &id.0, rule, &by.0, reason, Utc::now())?;
            if revocation.is_none() {
                return Err(DataError::NoOverrideInForce {
                    patient: id.clone(),
                    rule: rule.to_owned(),
                });
            }
            w.overrides.remove(&id.0, rule);
        }
        self.limits_now(id, rule)
    }

    async fn handover(
        &self,
        alert_id: &AlertId,
        language: Language,
    ) -> Result<HandoverInput, DataError> {
        let alert = self.alert(alert_id).await?;
        let now = Utc::now();
        let w = self.lock();
        let p = w
            .patients
            .iter()
            .find(|p| p.detail.summary.id == alert.patient_id)
            .ok_or_else(|| DataError::PatientNotFound(alert.patient_id.clone()))?;
        // Address, clinic, key person and medications are the oncall demo's placeholders:
        // the simulation has no registry behind it.
        let mut input = handover_demo::demo_input(language);
        input.generated_at = now;
        let d = &p.detail;
        input.patient.id = d.summary.id.0.clone();
        input.patient.name = d.summary.name.clone();
        input.patient.name_furigana = katakana_to_hiragana(&d.summary.name_kana);
        input.patient.date_of_birth = d.summary.date_of_birth;
        input.patient.main_diseases = d.diseases.clone();
        input.patient.allergies = Some(d.allergies.clone());
        input.patient.advance_directive.resuscitation = if d.dnar {
            ResuscitationStatus::Dnar
        } else {
            ResuscitationStatus::FullCode
        };
        if !d.home_oxygen {
            input.patient.home_oxygen = None;
        }
        input.alert = AlertDetails {
            id: alert.id.0.clone(),
            raised_at: alert.raised_at,
            severity: severity(alert.priority),
            title: alert.wording.in_language(language).title.clone(),
            reason: alert.wording.in_language(language).message.clone(),
        };
        let since = now - Duration::hours(72);
        input.vitals = [
            (VitalKind::HeartRate, HandoverVital::HeartRate),
            (VitalKind::Spo2, HandoverVital::Spo2),
            (VitalKind::Temperature, HandoverVital::BodyTemperature),
            (VitalKind::SystolicBp, HandoverVital::SystolicBloodPressure),
            (VitalKind::Weight, HandoverVital::BodyWeight),
        ]
        .into_iter()
        .map(|(ours, theirs)| VitalSeries {
            kind: theirs,
            points: p
                .observations
                .iter()
                .filter(|o| o.kind == ours && o.measured_at >= since)
                .map(|o| VitalPoint {
                    at: o.measured_at,
                    value: o.value,
                })
                .collect(),
            target_range: None,
        })
        .collect();
        input.ecg = None;
        input.earlier_alerts = w
            .alerts
            .iter()
            .rev()
            .filter(|a| a.patient_id == alert.patient_id && a.id != alert.id)
            .map(|a| EarlierAlert {
                raised_at: a.raised_at,
                severity: severity(a.priority),
                title: a.rule.clone(),
                outcome: a
                    .transitions
                    .last()
                    .and_then(|t| t.note.clone())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(input)
    }

    fn subscribe_patient(
        &self,
        id: &PatientId,
    ) -> Result<broadcast::Receiver<PatientEvent>, DataError> {
        self.with_patient(id, |p| p.live.subscribe())
    }

    fn subscribe_alerts(&self) -> broadcast::Receiver<Alert> {
        self.alerts_tx.subscribe()
    }

    async fn ready(&self) -> Result<(), DataError> {
        Ok(())
    }
}

fn severity(priority: AlertPriority) -> Severity {
    match priority {
        AlertPriority::High => Severity::Critical,
        AlertPriority::Medium => Severity::Warning,
        AlertPriority::Low => Severity::Info,
    }
}

/// ヤマダ → やまだ: the registry keeps katakana, the handover page wants hiragana.
fn katakana_to_hiragana(kana: &str) -> String {
    kana.chars()
        .map(|c| match c {
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            other => other,
        })
        .collect()
}

/// Buckets observations (sorted by time) over `[from, to)` into at most `max_points` equal spans.
pub fn bucket<'a>(
    observations: impl Iterator<Item = &'a Observation>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: usize,
) -> Vec<TrendPoint> {
    let span_ms = (to - from).num_milliseconds().max(1);
    let buckets = max_points.max(1) as i64;
    let width_ms = (span_ms + buckets - 1) / buckets;
    let mut out: HashMap<i64, (f64, f64, f64, u32)> = HashMap::new();
    for o in observations.filter(|o| o.measured_at >= from && o.measured_at < to) {
        let b = (o.measured_at - from).num_milliseconds() / width_ms;
        let e = out
            .entry(b)
            .or_insert((f64::INFINITY, 0.0, f64::NEG_INFINITY, 0));
        e.0 = e.0.min(o.value);
        e.1 += o.value;
        e.2 = e.2.max(o.value);
        e.3 += 1;
    }
    let mut points: Vec<TrendPoint> = out
        .into_iter()
        .map(|(b, (min, sum, max, n))| TrendPoint {
            t: from + Duration::milliseconds(b * width_ms),
            min,
            mean: sum / f64::from(n),
            max,
        })
        .collect();
    points.sort_by_key(|p| p.t);
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_of_a_week_never_exceeds_max_points_and_keeps_extremes() {
        let now = Utc::now();
        let obs: Vec<Observation> = (0..10_080)
            .map(|m| {
                obs(
                    VitalKind::HeartRate,
                    f64::from(60 + (m % 50)),
                    now - Duration::minutes(10_080 - i64::from(m)),
                )
            })
            .collect();
        let points = bucket(
            obs.iter(),
            now - Duration::days(7),
            now + Duration::seconds(1),
            100,
        );
        assert!(
            points.len() <= 100 && points.len() >= 99,
            "{}",
            points.len()
        );
        assert_eq!(
            points.iter().map(|p| p.min).fold(f64::INFINITY, f64::min),
            60.0
        );
        assert_eq!(
            points
                .iter()
                .map(|p| p.max)
                .fold(f64::NEG_INFINITY, f64::max),
            109.0
        );
    }

    #[test]
    fn katakana_reading_becomes_hiragana() {
        assert_eq!(katakana_to_hiragana("ヤマダ タロウ"), "やまだ たろう");
        assert_eq!(katakana_to_hiragana("ヴ"), "ゔ");
    }

    #[test]
    fn synthetic_ecg_peaks_at_r_and_is_near_baseline_between_beats() {
        let rr = 0.8;
        assert!(ecg_uv(0.25, rr) > 1000.0);
        assert!(ecg_uv(0.85, rr).abs() < 50.0);
    }
}
