//! [`ClinicalData`] over what the server really holds: the registry and storage (what ingest
//! committed), the live feed the committer and the hot path publish to, and the alert service.
//!
//! Alerts are read from an in-memory mirror of the alert service: loaded from the alert store at
//! start, then kept current from the service's broadcast. Every access decision reads the open
//! alerts (an on-call doctor's access comes from them), so they must not cost a query each time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Duration, Utc};
use mimamori_wire::VitalSign;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::access::Role;
use super::data::{
    Alert, AlertAction, AlertId, AlertPriority, AlertState, AlertTransition, AlertWording,
    AlertWordings, BeatMark, CareTeamId, ClinicalData, DataError, DeviceStatus, EcgFrame,
    Observation, PatientDetail, PatientEvent, PatientId, PatientRuleLimits, PatientSummary,
    RuleOverrideRequest, TrendPoint, UserAccount, UserId, VitalKind, limits_of_rule,
};
use crate::alerts::lifecycle::{self, Actor, LifecycleError, Transition};
use crate::alerts::rules::Priority;
use crate::alerts::service::{AlertEvent, AlertHandle, ServiceError, StaffAction};
use crate::alerts::store::AlertStore;
use crate::language::Language;
use crate::oncall::handover::{self as handover, HandoverInput};
use crate::oncall::rota::PhoneNumber;
use crate::registry::Directory;
use crate::sinks::live_feed::{LiveEvent, LiveFeed, PATIENT_FEED_CAPACITY};
use crate::storage::{self, Series, Storage, StorageError};

/// How far back "latest" looks for a value.
const LATEST_WITHIN: Duration = Duration::days(30);
/// A gateway without a presence message is taken as online while heard from within this.
const GATEWAY_SILENT: Duration = Duration::minutes(2);
/// The handover page's ECG strip.
const STRIP: Duration = Duration::seconds(10);
/// The handover page shows this much history.
const HANDOVER_WINDOW: Duration = Duration::hours(72);

/// One alert as the mirror holds it: the service's snapshot and its history.
#[derive(Clone, Debug)]
struct Mirrored {
    alert: lifecycle::Alert,
    transitions: Vec<Transition>,
}

type Mirror = Arc<RwLock<BTreeMap<Uuid, Mirrored>>>;

/// How long a read of the registry's patients and teams serves access decisions: a change in the
/// registry (a new patient, a nurse moved to another team) takes effect within this.
const REGISTRY_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The registry as access decisions and lists read it.
#[derive(Debug)]
struct RegistryView {
    patients: Vec<storage::Patient>,
    teams: BTreeMap<String, std::collections::BTreeSet<String>>,
    read_at: std::time::Instant,
}

/// The port over storage, registry, live feed and alert service.
pub struct StoredData<S, A> {
    store: S,
    directory: Directory,
    feed: LiveFeed,
    alert_store: A,
    alerts: AlertHandle,
    mirror: Mirror,
    alerts_tx: broadcast::Sender<Alert>,
    patient_channels: Mutex<HashMap<PatientId, broadcast::Sender<PatientEvent>>>,
    registry: tokio::sync::Mutex<Option<Arc<RegistryView>>>,
}

impl<S, A> std::fmt::Debug for StoredData<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredData").finish_non_exhaustive()
    }
}

impl<S: Storage, A: AlertStore + Clone + 'static> StoredData<S, A> {
    /// Loads the alert mirror and starts following the alert service.
    pub async fn start(
        store: S,
        directory: Directory,
        feed: LiveFeed,
        alert_store: A,
        alerts: AlertHandle,
    ) -> Result<Arc<Self>, DataError> {
        // Subscribe before loading so nothing published in between is missed (applying an event
        // twice is harmless: transitions are keyed by their sequence number).
        let events = alerts.subscribe();
        let mirror = Arc::new(RwLock::new(load_mirror(&alert_store).await?));
        let (alerts_tx, _) = broadcast::channel(1024);
        let data = Arc::new(Self {
            store,
            directory,
            feed,
            alert_store,
            alerts,
            mirror,
            alerts_tx,
            patient_channels: Mutex::default(),
            registry: tokio::sync::Mutex::default(),
        });
        tokio::spawn(follow_alerts(Arc::downgrade(&data), events));
        Ok(data)
    }

    async fn limits_of_rule(
        &self,
        id: &PatientId,
        rule: &str,
    ) -> Result<PatientRuleLimits, DataError> {
        let t = self.alerts.thresholds(&id.0).await.map_err(service_error)?;
        let mut limits = limits_of_rule(&t.rules, &t.overrides, rule)?;
        self.name_setters(std::slice::from_mut(&mut limits)).await?;
        Ok(limits)
    }

    /// Fills in the names of the doctors who set the overrides in force.
    async fn name_setters(&self, limits: &mut [PatientRuleLimits]) -> Result<(), DataError> {
        for o in limits
            .iter_mut()
            .filter_map(|l| l.override_in_force.as_mut())
        {
            o.set_by_name = self
                .directory
                .user_name(&o.set_by.0)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }

    fn mirrored(&self, id: &AlertId) -> Result<Mirrored, DataError> {
        let uuid = parse_alert_id(id)?;
        self.mirror
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&uuid)
            .cloned()
            .ok_or_else(|| DataError::AlertNotFound(id.clone()))
    }

    /// The registry's patients and their care teams, read at most every [`REGISTRY_TTL`]: every
    /// access decision needs them, and a ward list makes one per patient.
    async fn registry(&self) -> Result<Arc<RegistryView>, DataError> {
        let mut cached = self.registry.lock().await;
        if let Some(view) = cached
            .as_ref()
            .filter(|v| v.read_at.elapsed() < REGISTRY_TTL)
        {
            return Ok(view.clone());
        }
        let view = Arc::new(RegistryView {
            patients: self.store.patients().await.map_err(storage_error)?,
            teams: self
                .directory
                .care_teams_by_patient()
                .await
                .map_err(storage_error)?,
            read_at: std::time::Instant::now(),
        });
        *cached = Some(view.clone());
        Ok(view)
    }

    async fn registry_patient(&self, id: &PatientId) -> Result<storage::Patient, DataError> {
        self.registry()
            .await?
            .patients
            .iter()
            .find(|p| p.id == id.0)
            .cloned()
            .ok_or_else(|| DataError::PatientNotFound(id.clone()))
    }

    async fn latest_of(
        &self,
        patient: &PatientId,
        kind: VitalKind,
        now: DateTime<Utc>,
    ) -> Result<Option<Observation>, DataError> {
        if kind == VitalKind::HeartRate {
            // Heart rate from the ECG, per second, when the patient wears one.
            let recent = self
                .store
                .trend(
                    &patient.0,
                    Series::HeartRate,
                    now - Duration::minutes(5),
                    now,
                    300,
                )
                .await
                .map_err(storage_error)?;
            if let Some(last) = recent.last() {
                return Ok(Some(Observation {
                    kind,
                    value: last.mean,
                    unit: kind.ucum().to_owned(),
                    measured_at: last.at,
                    received_at: last.at,
                }));
            }
        }
        for vital in vitals_of(kind) {
            let found = self
                .store
                .recent_observations(&patient.0, *vital, now - LATEST_WITHIN, now, 1)
                .await
                .map_err(storage_error)?;
            if let Some(record) = found.first() {
                return Ok(Some(observation(kind, record)));
            }
        }
        Ok(None)
    }

    /// The stored ECG of the [`STRIP`] before `until`: one stream's contiguous chunks, in mV,
    /// with the beats the hot path found in it.
    async fn ecg_strip(
        &self,
        patient: &PatientId,
        until: DateTime<Utc>,
    ) -> Result<Option<handover::EcgStrip>, DataError> {
        let chunks = self
            .store
            .ecg_chunks(&patient.0, until - STRIP - Duration::seconds(2), until)
            .await
            .map_err(storage_error)?;
        let Some(last) = chunks.last() else {
            return Ok(None);
        };
        // Walk back from the newest chunk while the stream stays contiguous.
        let mut strip: Vec<&storage::EcgRecord> = vec![last];
        for chunk in chunks.iter().rev().skip(1) {
            let next = strip[strip.len() - 1];
            if chunk.stream_id != next.stream_id
                || chunk.first_sample_index + chunk.samples.len() as u64 != next.first_sample_index
            {
                break;
            }
            strip.push(chunk);
        }
        strip.reverse();
        let first = strip[0];
        let samples_mv: Vec<f32> = strip
            .iter()
            .flat_map(|c| {
                c.samples
                    .iter()
                    .map(move |&s| (f64::from(s) * c.uv_per_count / 1000.0) as f32)
            })
            .collect();
        let duration = Duration::milliseconds(
            (samples_mv.len() as f64 * 1000.0 / first.sample_rate_hz).round() as i64,
        );
        let beats = self
            .store
            .beats(
                &patient.0,
                first.first_sample_at,
                first.first_sample_at + duration,
            )
            .await
            .map_err(storage_error)?;
        let r_peaks = beats
            .iter()
            .filter(|b| b.stream_id == first.stream_id)
            .filter_map(|b| b.sample_index.checked_sub(first.first_sample_index))
            .filter(|&i| i < samples_mv.len() as u64)
            .collect();
        Ok(Some(handover::EcgStrip {
            recorded_at: first.first_sample_at,
            lead: first.lead.clone(),
            sample_rate_hz: first.sample_rate_hz,
            samples_mv,
            r_peaks,
        }))
    }

    fn publish_alert(&self, mirrored: &Mirrored) {
        // Nobody listening is fine.
        let _ = self.alerts_tx.send(to_api_alert(mirrored));
    }

    fn apply_event(&self, event: AlertEvent) {
        let mirrored = {
            let mut mirror = self.mirror.write().unwrap_or_else(PoisonError::into_inner);
            let entry = mirror.entry(event.alert.id).or_insert_with(|| Mirrored {
                alert: event.alert.clone(),
                transitions: Vec::new(),
            });
            if entry.alert.transitions <= event.alert.transitions {
                entry.alert = event.alert;
            }
            if !entry
                .transitions
                .iter()
                .any(|t| t.seq == event.transition.seq)
            {
                entry.transitions.push(event.transition);
                entry.transitions.sort_by_key(|t| t.seq);
            }
            entry.clone()
        };
        self.publish_alert(&mirrored);
    }

    async fn reload_mirror(&self) {
        match load_mirror(&self.alert_store).await {
            Ok(fresh) => *self.mirror.write().unwrap_or_else(PoisonError::into_inner) = fresh,
            Err(error) => tracing::error!(%error, "Reloading the alert mirror failed."),
        }
    }
}

async fn load_mirror<A: AlertStore>(store: &A) -> Result<BTreeMap<Uuid, Mirrored>, DataError> {
    let (alerts, _) = store.load().await.map_err(alert_store_error)?;
    let mut mirror = BTreeMap::new();
    for alert in alerts {
        let transitions = store
            .transitions(alert.id)
            .await
            .map_err(alert_store_error)?;
        mirror.insert(alert.id, Mirrored { alert, transitions });
    }
    Ok(mirror)
}

/// Keeps the mirror current; after a lag (events lost to this subscriber) it reloads from the
/// store, which has every transition.
async fn follow_alerts<S: Storage, A: AlertStore + Clone + 'static>(
    data: std::sync::Weak<StoredData<S, A>>,
    mut events: broadcast::Receiver<AlertEvent>,
) {
    loop {
        let received = events.recv().await;
        let Some(data) = data.upgrade() else { return };
        match received {
            Ok(event) => data.apply_event(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "Alert mirror fell behind; reloading it.");
                data.reload_mirror().await;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[async_trait::async_trait]
impl<S: Storage, A: AlertStore + Clone + 'static> ClinicalData for StoredData<S, A> {
    async fn user_by_login(&self, login: &str) -> Result<Option<UserAccount>, DataError> {
        let Some(account) = self
            .directory
            .account_by_login(login)
            .await
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        let roles = account
            .roles
            .iter()
            .filter_map(|r| match serde_json::from_value::<Role>(r.as_str().into()) {
                Ok(role) => Some(role),
                Err(_) => {
                    tracing::warn!(user_id = %account.user_id, role = %r, "Unknown access role ignored.");
                    None
                }
            })
            .collect();
        Ok(Some(UserAccount {
            id: UserId(account.user_id),
            login: account.login,
            display_name: account.display_name,
            roles,
            care_teams: account.care_teams.into_iter().map(CareTeamId).collect(),
            password_phc: account.password_phc,
            totp_secret: account.totp_secret,
        }))
    }

    async fn set_totp_secret(&self, user: &UserId, secret: Option<&str>) -> Result<(), DataError> {
        self.directory
            .set_totp_secret(&user.0, secret)
            .await
            .map_err(storage_error)
    }

    async fn patients(&self) -> Result<Vec<PatientSummary>, DataError> {
        let registry = self.registry().await?;
        Ok(registry
            .patients
            .iter()
            .map(|p| summary(p, &registry.teams))
            .collect())
    }

    async fn patient(&self, id: &PatientId) -> Result<PatientDetail, DataError> {
        let registry = self.registry().await?;
        let patient = registry
            .patients
            .iter()
            .find(|p| p.id == id.0)
            .ok_or_else(|| DataError::PatientNotFound(id.clone()))?;
        Ok(PatientDetail {
            summary: summary(patient, &registry.teams),
            diseases: patient.main_diseases.clone(),
            allergies: patient.allergies.clone(),
            dnar: patient.dnar,
            home_oxygen: patient.home_oxygen_l_per_min.is_some(),
            news2_spo2_scale: u8::try_from(patient.news2_spo2_scale).unwrap_or(1),
        })
    }

    async fn latest(&self, id: &PatientId) -> Result<Vec<Observation>, DataError> {
        let now = Utc::now();
        let mut out = Vec::new();
        for kind in VitalKind::ALL {
            out.extend(self.latest_of(id, kind, now).await?);
        }
        Ok(out)
    }

    async fn readings(
        &self,
        id: &PatientId,
        kind: Option<VitalKind>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Observation>, DataError> {
        let kinds: Vec<VitalKind> = kind.map_or_else(|| VitalKind::ALL.to_vec(), |k| vec![k]);
        let limit_u32 = u32::try_from(limit).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        for kind in kinds {
            for vital in vitals_of(kind) {
                let records = self
                    .store
                    .recent_observations(&id.0, *vital, from, to, limit_u32)
                    .await
                    .map_err(storage_error)?;
                out.extend(records.iter().map(|r| observation(kind, r)));
            }
        }
        out.sort_by_key(|o| std::cmp::Reverse(o.measured_at));
        out.truncate(limit);
        Ok(out)
    }

    async fn trend(
        &self,
        id: &PatientId,
        kind: VitalKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_points: usize,
    ) -> Result<Vec<TrendPoint>, DataError> {
        let max_points = u32::try_from(max_points).unwrap_or(u32::MAX);
        let mut series: Vec<Series> = Vec::new();
        if kind == VitalKind::HeartRate {
            series.push(Series::HeartRate);
        }
        series.extend(vitals_of(kind).iter().map(|v| Series::Vital(*v)));
        for s in series {
            let points = self
                .store
                .trend(&id.0, s, from, to, max_points)
                .await
                .map_err(storage_error)?;
            if !points.is_empty() {
                return Ok(points
                    .into_iter()
                    .map(|p| TrendPoint {
                        t: p.at,
                        min: p.min,
                        mean: p.mean,
                        max: p.max,
                    })
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    async fn devices(&self, id: &PatientId) -> Result<Vec<DeviceStatus>, DataError> {
        let now = Utc::now();
        Ok(self
            .store
            .device_states(&id.0, now)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(|d| DeviceStatus {
                device_id: d.device_id,
                model: d.model,
                battery_percent: d.battery_percent,
                last_seen: d.status_at,
                gateway_id: d.gateway_id.unwrap_or_default(),
                // Presence is retained and set by the Last Will; until one arrived, a gateway
                // heard from recently counts as online.
                gateway_online: d.gateway_online.unwrap_or_else(|| {
                    d.gateway_last_seen
                        .is_some_and(|seen| now - seen < GATEWAY_SILENT)
                }),
                gateway_last_seen: d.gateway_last_seen,
            })
            .collect())
    }

    async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, DataError> {
        let mirror = self.mirror.read().unwrap_or_else(PoisonError::into_inner);
        let mut alerts: Vec<Alert> = mirror
            .values()
            .filter(|m| !open_only || m.alert.is_open())
            .map(to_api_alert)
            .collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
        Ok(alerts)
    }

    async fn alert(&self, id: &AlertId) -> Result<Alert, DataError> {
        Ok(to_api_alert(&self.mirrored(id)?))
    }

    async fn act_on_alert(
        &self,
        id: &AlertId,
        action: AlertAction,
        by: &UserId,
        note: &str,
    ) -> Result<Alert, DataError> {
        let uuid = parse_alert_id(id)?;
        let staff_action = match action {
            AlertAction::Acknowledge => StaffAction::Acknowledge,
            AlertAction::Escalate => StaffAction::Escalate,
            AlertAction::Resolve => StaffAction::Resolve,
        };
        let transitions = self
            .alerts
            .act(uuid, staff_action, &by.0, note)
            .await
            .map_err(|error| match error {
                ServiceError::Lifecycle(LifecycleError::UnknownAlert(_)) => {
                    DataError::AlertNotFound(id.clone())
                }
                ServiceError::Lifecycle(LifecycleError::WrongState { state, .. }) => {
                    DataError::InvalidTransition {
                        alert: id.clone(),
                        state: api_state(state),
                        action,
                    }
                }
                other => DataError::Storage(other.to_string()),
            })?;
        // The service persisted and published before replying; the mirror follows the broadcast
        // asynchronously, so bring this alert up to date here for the caller's answer.
        let mut mirrored = self.mirrored(id)?;
        for t in transitions {
            if !mirrored.transitions.iter().any(|m| m.seq == t.seq) {
                mirrored.alert.state = t.to;
                mirrored.transitions.push(t);
            }
        }
        Ok(to_api_alert(&mirrored))
    }

    async fn rule_limits(&self, id: &PatientId) -> Result<Vec<PatientRuleLimits>, DataError> {
        let t = self.alerts.thresholds(&id.0).await.map_err(service_error)?;
        let mut limits = PatientRuleLimits::of_rules(&t.rules, &t.overrides);
        self.name_setters(&mut limits).await?;
        Ok(limits)
    }

    async fn set_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        request: RuleOverrideRequest,
        by: &UserId,
    ) -> Result<PatientRuleLimits, DataError> {
        let o = request.into_override(id, rule, by, Utc::now());
        self.alerts.set_override(o).await.map_err(service_error)?;
        self.limits_of_rule(id, rule).await
    }

    async fn revoke_rule_override(
        &self,
        id: &PatientId,
        rule: &str,
        by: &UserId,
        reason: &str,
    ) -> Result<PatientRuleLimits, DataError> {
        self.alerts
            .revoke_override(&id.0, rule, &by.0, reason)
            .await
            .map_err(service_error)?
            .ok_or_else(|| DataError::NoOverrideInForce {
                patient: id.clone(),
                rule: rule.to_owned(),
            })?;
        self.limits_of_rule(id, rule).await
    }

    async fn handover(
        &self,
        alert_id: &AlertId,
        language: Language,
    ) -> Result<HandoverInput, DataError> {
        let mirrored = self.mirrored(alert_id)?;
        let patient_id = PatientId(mirrored.alert.patient.clone());
        let patient = self.registry_patient(&patient_id).await?;
        let clinic = match &patient.primary_clinic_id {
            Some(id) => self.directory.clinic(id).await.map_err(storage_error)?,
            None => None,
        };
        let now = Utc::now();
        let mut vitals = Vec::new();
        for (ours, theirs) in HANDOVER_VITALS {
            let points = self
                .trend(&patient_id, ours, now - HANDOVER_WINDOW, now, 288)
                .await?
                .into_iter()
                .map(|p| handover::VitalPoint {
                    at: p.t,
                    value: p.mean,
                })
                .collect();
            vitals.push(handover::VitalSeries {
                kind: theirs,
                points,
                target_range: None,
            });
        }
        let earlier_alerts = {
            let mirror = self.mirror.read().unwrap_or_else(PoisonError::into_inner);
            let mut earlier: Vec<&Mirrored> = mirror
                .values()
                .filter(|m| m.alert.patient == patient.id && m.alert.id != mirrored.alert.id)
                .collect();
            earlier.sort_by_key(|m| std::cmp::Reverse(m.alert.raised_at));
            earlier
                .into_iter()
                .map(|m| handover::EarlierAlert {
                    raised_at: m.alert.raised_at,
                    severity: severity(m.alert.priority),
                    title: m.alert.title(language),
                    outcome: m.alert.state.label(language).to_owned(),
                })
                .collect()
        };
        Ok(HandoverInput {
            language,
            generated_at: now,
            patient: patient_details(&patient),
            primary_clinic: primary_clinic(clinic.as_ref()),
            alert: handover::AlertDetails {
                id: mirrored.alert.id.to_string(),
                raised_at: mirrored.alert.raised_at,
                severity: severity(mirrored.alert.priority),
                title: mirrored.alert.title(language),
                reason: mirrored.alert.summary(language),
            },
            vitals,
            ecg: self
                .ecg_strip(&patient_id, mirrored.alert.raised_at.min(now))
                .await?,
            earlier_alerts,
        })
    }

    fn subscribe_patient(
        &self,
        id: &PatientId,
    ) -> Result<broadcast::Receiver<PatientEvent>, DataError> {
        let mut channels = self
            .patient_channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let sender = channels.entry(id.clone()).or_insert_with(|| {
            let (tx, _) = broadcast::channel(PATIENT_FEED_CAPACITY);
            tokio::spawn(forward_patient(self.feed.subscribe(&id.0), tx.clone()));
            tx
        });
        Ok(sender.subscribe())
    }

    fn subscribe_alerts(&self) -> broadcast::Receiver<Alert> {
        self.alerts_tx.subscribe()
    }

    async fn ready(&self) -> Result<(), DataError> {
        self.directory.ping().await.map_err(storage_error)
    }
}

const HANDOVER_VITALS: [(VitalKind, handover::VitalKind); 5] = [
    (VitalKind::HeartRate, handover::VitalKind::HeartRate),
    (VitalKind::Spo2, handover::VitalKind::Spo2),
    (VitalKind::Temperature, handover::VitalKind::BodyTemperature),
    (
        VitalKind::SystolicBp,
        handover::VitalKind::SystolicBloodPressure,
    ),
    (VitalKind::Weight, handover::VitalKind::BodyWeight),
];

/// The wire vital signs a dashboard kind is read from, in order of preference.
fn vitals_of(kind: VitalKind) -> &'static [VitalSign] {
    match kind {
        VitalKind::HeartRate => &[VitalSign::PulseRateOximetry, VitalSign::HeartRate],
        VitalKind::Spo2 => &[VitalSign::Spo2],
        VitalKind::SystolicBp => &[VitalSign::SystolicBp],
        VitalKind::DiastolicBp => &[VitalSign::DiastolicBp],
        VitalKind::Temperature => &[VitalSign::BodyTemperature],
        VitalKind::Weight => &[VitalSign::BodyWeight],
    }
}

/// The dashboard kind of a wire vital sign (mean arterial pressure is not shown).
fn kind_of(vital: VitalSign) -> Option<VitalKind> {
    VitalKind::ALL
        .into_iter()
        .find(|k| vitals_of(*k).contains(&vital))
}

fn observation(kind: VitalKind, record: &storage::ObservationRecord) -> Observation {
    Observation {
        kind,
        value: record.value,
        unit: record.vital.unit().code().to_owned(),
        measured_at: record.measured_at,
        received_at: record.received_at,
    }
}

fn summary(
    patient: &storage::Patient,
    teams: &BTreeMap<String, std::collections::BTreeSet<String>>,
) -> PatientSummary {
    PatientSummary {
        id: PatientId(patient.id.clone()),
        name: patient.name.clone(),
        name_kana: patient.name_furigana.clone(),
        date_of_birth: patient.date_of_birth,
        care_teams: teams
            .get(&patient.id)
            .into_iter()
            .flatten()
            .map(|t| CareTeamId(t.clone()))
            .collect(),
    }
}

/// Converts the hot path's and the committer's events into what the dashboard draws.
async fn forward_patient(
    mut live: broadcast::Receiver<LiveEvent>,
    out: broadcast::Sender<PatientEvent>,
) {
    loop {
        let event = match live.recv().await {
            Ok(event) => event,
            // A lagging forwarder loses live frames, like any slow subscriber.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(event) = patient_event(event) {
            let _ = out.send(event);
        }
    }
}

fn patient_event(event: LiveEvent) -> Option<PatientEvent> {
    match event {
        LiveEvent::Observation {
            vital,
            value,
            unit,
            measured_at,
            ..
        } => kind_of(vital).map(|kind| {
            PatientEvent::Observation(Observation {
                kind,
                value,
                unit: unit.to_owned(),
                measured_at,
                received_at: Utc::now(),
            })
        }),
        LiveEvent::HeartRate { at, bpm } => Some(PatientEvent::Observation(Observation {
            kind: VitalKind::HeartRate,
            value: bpm,
            unit: VitalKind::HeartRate.ucum().to_owned(),
            measured_at: at,
            received_at: Utc::now(),
        })),
        LiveEvent::Beat { at, rr_ms } => Some(PatientEvent::Beat(BeatMark {
            at,
            rr_ms: rr_ms.map(|rr| rr.round() as u32),
        })),
        LiveEvent::Ecg {
            first_sample_at,
            sample_rate_hz,
            uv_per_count,
            samples,
            ..
        } => Some(PatientEvent::Ecg(EcgFrame {
            start: first_sample_at,
            sample_rate_hz: sample_rate_hz.round() as u32,
            samples_uv: samples
                .iter()
                .map(|&s| (f64::from(s) * uv_per_count).round() as i32)
                .collect(),
            r_peaks: Vec::new(),
            rr_ms: Vec::new(),
        })),
        LiveEvent::EcgGap { .. } => None,
    }
}

fn to_api_alert(m: &Mirrored) -> Alert {
    let a = &m.alert;
    Alert {
        id: AlertId(a.id.to_string()),
        patient_id: PatientId(a.patient.clone()),
        priority: match a.priority {
            Priority::High => AlertPriority::High,
            Priority::Medium => AlertPriority::Medium,
            Priority::Low => AlertPriority::Low,
        },
        state: api_state(a.state),
        rule: a.key.clone(),
        message: a.detail.clone(),
        wording: AlertWordings::in_each_language(|language| AlertWording {
            title: a.title(language),
            message: a.summary(language),
        }),
        condition_active: a.condition_active,
        raised_at: a.raised_at,
        routed_to: a.routed_to.clone().map(UserId),
        transitions: m
            .transitions
            .iter()
            .map(|t| AlertTransition {
                state: api_state(t.to),
                at: t.at,
                by: match &t.actor {
                    Actor::User(id) => Some(UserId(id.clone())),
                    Actor::System | Actor::Receiver(_) => None,
                },
                note: (!t.note.is_empty()).then(|| t.note.clone()),
            })
            .collect(),
    }
}

fn api_state(state: lifecycle::AlertState) -> AlertState {
    match state {
        lifecycle::AlertState::Raised | lifecycle::AlertState::ClearedUnacknowledged => {
            AlertState::Raised
        }
        lifecycle::AlertState::Notified => AlertState::Notified,
        lifecycle::AlertState::Escalated => AlertState::Escalated,
        lifecycle::AlertState::Acknowledged => AlertState::Acknowledged,
        lifecycle::AlertState::Resolved => AlertState::Resolved,
    }
}

fn severity(priority: Priority) -> handover::Severity {
    match priority {
        Priority::High => handover::Severity::Critical,
        Priority::Medium => handover::Severity::Warning,
        Priority::Low => handover::Severity::Info,
    }
}

fn phone(number: Option<&str>) -> Option<PhoneNumber> {
    number.and_then(|n| PhoneNumber::try_from(n.to_owned()).ok())
}

/// "鈴木 恵子 (長女)" → name and relationship.
fn split_relationship(key_person: &str) -> (String, String) {
    match key_person.trim_end().strip_suffix(')') {
        Some(rest) => match rest.rsplit_once('(') {
            Some((name, relationship)) => (name.trim().to_owned(), relationship.trim().to_owned()),
            None => (key_person.to_owned(), String::new()),
        },
        None => (key_person.to_owned(), String::new()),
    }
}

fn patient_details(p: &storage::Patient) -> handover::PatientDetails {
    handover::PatientDetails {
        id: p.id.clone(),
        name: p.name.clone(),
        name_furigana: p.name_furigana.clone(),
        date_of_birth: p.date_of_birth,
        sex: match p.sex.as_str() {
            "female" => handover::Sex::Female,
            "male" => handover::Sex::Male,
            _ => handover::Sex::Other,
        },
        address: p.address.clone(),
        map_url: p.map_url.clone(),
        key_person: p.key_person_name.as_deref().and_then(|name| {
            let (name, relationship) = split_relationship(name);
            Some(handover::KeyPerson {
                name,
                relationship,
                phone: phone(p.key_person_phone.as_deref())?,
            })
        }),
        visiting_nurse_station: None,
        main_diseases: p.main_diseases.clone(),
        medications: p
            .medications
            .iter()
            .map(|m| handover::Medication {
                name: m.clone(),
                dosage: String::new(),
            })
            .collect(),
        allergies: Some(p.allergies.clone()),
        advance_directive: handover::AdvanceDirective {
            resuscitation: if p.dnar {
                handover::ResuscitationStatus::Dnar
            } else if p.advance_directive.is_some() {
                handover::ResuscitationStatus::FullCode
            } else {
                handover::ResuscitationStatus::NotDiscussed
            },
            wishes: p.advance_directive.clone().unwrap_or_default(),
            confirmed_on: None,
        },
        home_oxygen: p
            .home_oxygen_l_per_min
            .map(|flow_l_per_min| handover::HomeOxygen {
                flow_l_per_min,
                schedule: String::new(),
            }),
    }
}

fn primary_clinic(clinic: Option<&storage::Clinic>) -> handover::PrimaryClinic {
    match clinic.and_then(|c| Some((c, phone(Some(&c.emergency_phone))?))) {
        Some((c, emergency_phone)) => handover::PrimaryClinic {
            name: c.name.clone(),
            director: c.director.clone(),
            emergency_phone,
        },
        // The page must still render: an unregistered clinic is shown as such, with the
        // programme's number left for the reader to find (never an invented one).
        None => handover::PrimaryClinic {
            name: "(主治医療機関 未登録 / primary clinic not registered)".to_owned(),
            director: String::new(),
            emergency_phone: PhoneNumber::try_from("119".to_owned())
                .unwrap_or_else(|_| unreachable!("119 is a valid number")),
        },
    }
}

fn parse_alert_id(id: &AlertId) -> Result<Uuid, DataError> {
    Uuid::parse_str(&id.0).map_err(|_| DataError::AlertNotFound(id.clone()))
}

fn storage_error(error: StorageError) -> DataError {
    DataError::Storage(error.to_string())
}

fn service_error(error: ServiceError) -> DataError {
    match error {
        ServiceError::OverrideRefused(refused) => DataError::OverrideRefused(refused),
        other => DataError::Storage(other.to_string()),
    }
}

fn alert_store_error(error: crate::alerts::store::StoreError) -> DataError {
    DataError::Storage(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_person_relationship_is_split_from_the_name() {
        assert_eq!(
            split_relationship("鈴木 恵子 (長女)"),
            ("鈴木 恵子".to_owned(), "長女".to_owned())
        );
        assert_eq!(
            split_relationship("高橋 一"),
            ("高橋 一".to_owned(), String::new())
        );
    }

    #[test]
    fn live_events_become_what_the_strip_draws_in_microvolts() {
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let frame = patient_event(LiveEvent::Ecg {
            stream_id: 1,
            lead: "I".into(),
            first_sample_index: 0,
            first_sample_at: at,
            sample_rate_hz: 250.0,
            uv_per_count: 2.5,
            samples: vec![-4, 0, 400].into(),
        });
        let Some(PatientEvent::Ecg(frame)) = frame else {
            panic!("an ECG frame")
        };
        assert_eq!(frame.samples_uv, vec![-10, 0, 1000]);
        assert_eq!(frame.sample_rate_hz, 250);
        let beat = patient_event(LiveEvent::Beat {
            at,
            rr_ms: Some(812.4),
        });
        assert!(matches!(
            beat,
            Some(PatientEvent::Beat(BeatMark {
                rr_ms: Some(812),
                ..
            }))
        ));
        assert!(beat.unwrap().is_droppable());
    }

    #[test]
    fn every_shown_vital_sign_maps_back_to_its_kind() {
        for kind in VitalKind::ALL {
            for vital in vitals_of(kind) {
                assert_eq!(kind_of(*vital), Some(kind));
                assert_eq!(vital.unit().code(), kind.ucum());
            }
        }
        assert_eq!(kind_of(VitalSign::MeanArterialPressure), None);
    }
}
