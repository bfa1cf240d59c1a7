//! Patient routes. Lists are filtered by the access policy and audited per
//! patient returned; every `{patient_id}` route goes through [`ScopedPatient`].

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{Page, PageParams};
use super::scope::{CurrentUser, ScopedPatient};
use crate::http::access::{BreakGlassGrant, MIN_BREAK_GLASS_REASON_CHARS};
use crate::http::audit::{AuditEntry, AuditOutcome};
use crate::http::data::{
    Alert, AlertPriority, DeviceStatus, Observation, PatientDetail, PatientId, PatientSummary,
    TrendPoint, VitalKind,
};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;

/// A value with how old it is, computed when served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgedObservation {
    /// The observation.
    #[serde(flatten)]
    pub observation: Observation,
    /// Seconds since it was measured.
    pub age_s: i64,
    /// Older than its kind's freshness limit: show as stale, never as current.
    pub stale: bool,
}

impl AgedObservation {
    fn new(observation: Observation, now: DateTime<Utc>) -> Self {
        let age_s = (now - observation.measured_at).num_seconds().max(0);
        let stale = age_s > observation.kind.stale_after_seconds();
        Self {
            observation,
            age_s,
            stale,
        }
    }
}

/// Direction of a vital over the last hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrendArrow {
    /// Rising.
    Up,
    /// Steady.
    Flat,
    /// Falling.
    Down,
}

/// A vital's direction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KindTrend {
    /// Which vital.
    pub kind: VitalKind,
    /// Its direction.
    pub arrow: TrendArrow,
}

/// One ward-overview tile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatientTile {
    /// Name, furigana, date of birth, teams.
    pub patient: PatientSummary,
    /// Newest value of each vital, with its age.
    pub latest: Vec<AgedObservation>,
    /// Direction of each vital over the last 6 h.
    pub trends: Vec<KindTrend>,
    /// Devices and gateways.
    pub devices: Vec<DeviceStatus>,
    /// Highest priority among open alerts (colours the tile).
    pub alert_priority: Option<AlertPriority>,
    /// Number of open alerts.
    pub open_alerts: usize,
}

/// Change over the window that counts as a trend, per kind (below it: flat).
fn trend_threshold(kind: VitalKind) -> f64 {
    match kind {
        VitalKind::HeartRate => 8.0,
        VitalKind::Spo2 => 2.0,
        VitalKind::SystolicBp | VitalKind::DiastolicBp => 10.0,
        VitalKind::Temperature => 0.4,
        VitalKind::Weight => 0.8,
    }
}

fn arrow(points: &[TrendPoint], kind: VitalKind) -> Option<TrendArrow> {
    let (first, last) = (points.first()?, points.last()?);
    let delta = last.mean - first.mean;
    let t = trend_threshold(kind);
    Some(if delta >= t {
        TrendArrow::Up
    } else if delta <= -t {
        TrendArrow::Down
    } else {
        TrendArrow::Flat
    })
}

async fn tile(
    state: &AppState,
    patient: PatientSummary,
    alerts: &[Alert],
    now: DateTime<Utc>,
) -> Result<PatientTile, ApiError> {
    let latest = state.data.latest(&patient.id).await?;
    let mut trends = Vec::new();
    for o in &latest {
        let points = state
            .data
            .trend(&patient.id, o.kind, now - Duration::hours(6), now, 6)
            .await?;
        if let Some(arrow) = arrow(&points, o.kind) {
            trends.push(KindTrend {
                kind: o.kind,
                arrow,
            });
        }
    }
    let open: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.patient_id == patient.id && a.state.is_open())
        .collect();
    Ok(PatientTile {
        latest: latest
            .into_iter()
            .map(|o| AgedObservation::new(o, now))
            .collect(),
        trends,
        devices: state.data.devices(&patient.id).await?,
        alert_priority: open.iter().map(|a| a.priority).max(),
        open_alerts: open.len(),
        patient,
    })
}

/// Patients in the user's scope, as ward-overview tiles (highest alert first, then name).
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", params(PageParams),
    responses((status = 200, body = Page<PatientTile>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<PatientTile>>, ApiError> {
    page.limit()?;
    let now = Utc::now();
    let mut visible = Vec::new();
    for p in state.data.patients().await? {
        if let Some(basis) = state.decide(&user.user.principal, &p.id).await? {
            visible.push((p, basis));
        }
    }
    let alerts = state.data.alerts(true).await?;
    let mut tiles = Vec::with_capacity(visible.len());
    for (p, _) in &visible {
        tiles.push(tile(&state, p.clone(), &alerts, now).await?);
    }
    tiles.sort_by(|a, b| {
        b.alert_priority
            .cmp(&a.alert_priority)
            .then_with(|| a.patient.name_kana.cmp(&b.patient.name_kana))
    });
    let page = page.apply(tiles)?;
    let entries: Vec<AuditEntry> = page
        .items
        .iter()
        .filter_map(|t| visible.iter().find(|(p, _)| p.id == t.patient.id))
        .map(|(p, basis)| AuditEntry {
            user_id: user.user.principal.user_id.clone(),
            patient_id: Some(p.id.clone()),
            action: "GET /api/v1/patients".into(),
            outcome: AuditOutcome::Allowed,
            basis: Some(basis.as_str()),
            remote_addr: user.remote.to_string(),
            break_glass_reason: basis.break_glass_reason().map(str::to_owned),
        })
        .collect();
    state.audit.append(&entries).await?;
    Ok(Json(page))
}

/// One patient's record.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id")),
    responses((status = 200, body = PatientDetail), (status = 403, body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    scope: ScopedPatient,
) -> Result<Json<PatientDetail>, ApiError> {
    Ok(Json(state.data.patient(&scope.patient_id).await?))
}

/// The patient's ward tile (latest vitals with age, trends, devices, alert state).
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/tile", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id")),
    responses((status = 200, body = PatientTile), (status = 403, body = ErrorBody)))]
pub async fn patient_tile(
    State(state): State<AppState>,
    scope: ScopedPatient,
) -> Result<Json<PatientTile>, ApiError> {
    let detail = state.data.patient(&scope.patient_id).await?;
    let alerts = state.data.alerts(true).await?;
    Ok(Json(
        tile(&state, detail.summary, &alerts, Utc::now()).await?,
    ))
}

/// Newest value of each vital, with its age.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/vitals/latest", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id")),
    responses((status = 200, body = Vec<AgedObservation>), (status = 403, body = ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    scope: ScopedPatient,
) -> Result<Json<Vec<AgedObservation>>, ApiError> {
    let now = Utc::now();
    let latest = state.data.latest(&scope.patient_id).await?;
    Ok(Json(
        latest
            .into_iter()
            .map(|o| AgedObservation::new(o, now))
            .collect(),
    ))
}

/// Time range, default the last 24 h.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Start (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
}

impl RangeParams {
    fn resolve(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let to = self.to.unwrap_or_else(Utc::now);
        let from = self.from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(ApiError::BadRequest("from must be before to".into()));
        }
        Ok((from, to))
    }
}

/// Readings filter.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsParams {
    /// Only this vital.
    pub kind: Option<VitalKind>,
}

/// The patient's readings, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/readings", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id"), ReadingsParams, RangeParams, PageParams),
    responses((status = 200, body = Page<Observation>), (status = 403, body = ErrorBody)))]
pub async fn readings(
    State(state): State<AppState>,
    scope: ScopedPatient,
    Query(filter): Query<ReadingsParams>,
    Query(range): Query<RangeParams>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Observation>>, ApiError> {
    let (from, to) = range.resolve()?;
    // Fetch one window past the page so the cursor knows if more follows.
    let offset: usize = page
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let wanted = offset + page.limit()? + 1;
    let rows = state
        .data
        .readings(&scope.patient_id, filter.kind, from, to, wanted)
        .await?;
    Ok(Json(page.apply(rows)?))
}

/// Trend query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendParams {
    /// At most this many points (1–2000, default 500).
    pub max_points: Option<usize>,
}

/// Path of a trend.
#[derive(Debug, Clone, Deserialize)]
pub struct TrendPath {
    /// Patient (checked by [`ScopedPatient`]).
    pub patient_id: PatientId,
    /// Vital.
    pub kind: VitalKind,
}

/// Largest trend.
pub const MAX_TREND_POINTS: usize = 2000;

/// A vital's trend over a range in at most `max_points` buckets (min / mean / max).
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/trends/{kind}", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id"), ("kind" = VitalKind, Path, description = "Vital"), RangeParams, TrendParams),
    responses((status = 200, body = Vec<TrendPoint>), (status = 403, body = ErrorBody)))]
pub async fn trend(
    State(state): State<AppState>,
    scope: ScopedPatient,
    Path(path): Path<TrendPath>,
    Query(range): Query<RangeParams>,
    Query(params): Query<TrendParams>,
) -> Result<Json<Vec<TrendPoint>>, ApiError> {
    let (from, to) = range.resolve()?;
    let max_points = params.max_points.unwrap_or(500);
    if !(1..=MAX_TREND_POINTS).contains(&max_points) {
        return Err(ApiError::BadRequest(format!(
            "max_points must be 1–{MAX_TREND_POINTS}"
        )));
    }
    Ok(Json(
        state
            .data
            .trend(&scope.patient_id, path.kind, from, to, max_points)
            .await?,
    ))
}

/// The patient's alerts, newest first.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/alerts", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id"), PageParams),
    responses((status = 200, body = Page<Alert>), (status = 403, body = ErrorBody)))]
pub async fn alerts(
    State(state): State<AppState>,
    scope: ScopedPatient,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Alert>>, ApiError> {
    let all = state.data.alerts(false).await?;
    Ok(Json(
        page.apply(
            all.into_iter()
                .filter(|a| a.patient_id == scope.patient_id)
                .collect(),
        )?,
    ))
}

/// Break-glass request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BreakGlassRequest {
    /// Why access is needed (at least 10 characters); recorded with every access it allows.
    pub reason: String,
}

/// A granted break-glass.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BreakGlassGranted {
    /// Patient.
    pub patient_id: PatientId,
    /// Until when.
    pub expires_at: DateTime<Utc>,
}

/// Break-glass: access to a patient outside one's care teams, for a limited
/// time, with a stated reason. The only `{patient_id}` route that does not
/// require access already (it is how access is obtained); it returns no patient data.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/break-glass", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id")), request_body = BreakGlassRequest,
    responses((status = 200, body = BreakGlassGranted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn break_glass(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(patient_id): Path<PatientId>,
    Json(req): Json<BreakGlassRequest>,
) -> Result<Json<BreakGlassGranted>, ApiError> {
    let principal = &user.user.principal;
    if !principal.roles.iter().any(|r| r.is_clinical()) {
        return Err(ApiError::RoleForbidden);
    }
    let reason = req.reason.trim().to_owned();
    if reason.chars().count() < MIN_BREAK_GLASS_REASON_CHARS {
        return Err(ApiError::BadRequest(format!(
            "state a reason of at least {MIN_BREAK_GLASS_REASON_CHARS} characters"
        )));
    }
    // Same answer for unknown and known patients would leak nothing, but a grant
    // for a patient that does not exist is useless: say so.
    state.data.patient(&patient_id).await?;
    let expires_at = Utc::now() + state.config.break_glass_duration;
    state
        .audit
        .append(&[AuditEntry {
            user_id: principal.user_id.clone(),
            patient_id: Some(patient_id.clone()),
            action: "POST /api/v1/patients/{patient_id}/break-glass".into(),
            outcome: AuditOutcome::Allowed,
            basis: Some("break_glass"),
            remote_addr: user.remote.to_string(),
            break_glass_reason: Some(reason.clone()),
        }])
        .await?;
    tracing::warn!(user_id = %principal.user_id, patient_id = %patient_id, "Break-glass access granted.");
    state
        .break_glass
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(BreakGlassGrant {
            user_id: principal.user_id.clone(),
            patient_id: patient_id.clone(),
            reason,
            expires_at,
        });
    Ok(Json(BreakGlassGranted {
        patient_id,
        expires_at,
    }))
}
