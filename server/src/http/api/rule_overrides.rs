//! A patient's alert limits: the threshold rules a doctor may override for this patient (a COPD
//! patient living at SpO₂ 89 % should not raise "SpO₂ low" every morning), and the overrides
//! themselves. The care team reads them; only a doctor (attending or on call) sets or revokes one.
//! Every route goes through [`ScopedPatient`], which decides and audits the access.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::scope::ScopedPatient;
use crate::http::access::Role;
use crate::http::data::{PatientId, PatientRuleLimits, RuleOverrideRequest};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;

/// Path of one rule of one patient.
#[derive(Debug, Clone, Deserialize)]
pub struct RulePath {
    /// Patient (checked by [`ScopedPatient`]).
    pub patient_id: PatientId,
    /// Threshold rule id, e.g. `spo2_low`.
    pub rule_id: String,
}

/// Why an override is revoked.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// Why (required; audited).
    pub reason: String,
}

/// Doctors change a patient's limits; nurses and coordinators read them.
fn require_doctor(scope: &ScopedPatient) -> Result<(), ApiError> {
    let principal = &scope.user.user.principal;
    if principal.has(Role::Doctor) || principal.has(Role::OnCallDoctor) {
        Ok(())
    } else {
        Err(ApiError::RoleForbidden)
    }
}

/// The threshold rules that can be overridden for the patient: each default with its unit
/// (UCUM), the range an override must stay within, and the override in force, if any.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/rule-overrides", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id")),
    responses((status = 200, body = Vec<PatientRuleLimits>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    scope: ScopedPatient,
) -> Result<Json<Vec<PatientRuleLimits>>, ApiError> {
    Ok(Json(state.data.rule_limits(&scope.patient_id).await?))
}

/// A doctor sets (or replaces) the patient's override of a rule, until `expires_at`. It applies
/// from the next reading. Refusals: `unknown_rule` (404), `outside_safety_range`,
/// `no_hysteresis`, `expiry_not_in_future`, `reason_required` (422), `role_forbidden` (403).
#[utoipa::path(put, path = "/api/v1/patients/{patient_id}/rule-overrides/{rule_id}", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id"), ("rule_id" = String, Path, description = "Threshold rule id, e.g. spo2_low")),
    request_body = RuleOverrideRequest,
    responses((status = 200, body = PatientRuleLimits), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    scope: ScopedPatient,
    Path(RulePath { rule_id, .. }): Path<RulePath>,
    Json(request): Json<RuleOverrideRequest>,
) -> Result<Json<PatientRuleLimits>, ApiError> {
    require_doctor(&scope)?;
    let by = &scope.user.user.principal.user_id;
    let limits = state
        .data
        .set_rule_override(&scope.patient_id, &rule_id, request, by)
        .await?;
    Ok(Json(limits))
}

/// A doctor revokes the patient's override of a rule, with a reason: the default applies again
/// from the next reading. `no_override_in_force` (404) when there is none.
#[utoipa::path(delete, path = "/api/v1/patients/{patient_id}/rule-overrides/{rule_id}", tag = "patients",
    params(("patient_id" = String, Path, description = "Patient id"), ("rule_id" = String, Path, description = "Threshold rule id, e.g. spo2_low")),
    request_body = RevokeRequest,
    responses((status = 200, body = PatientRuleLimits), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    scope: ScopedPatient,
    Path(RulePath { rule_id, .. }): Path<RulePath>,
    Json(request): Json<RevokeRequest>,
) -> Result<Json<PatientRuleLimits>, ApiError> {
    require_doctor(&scope)?;
    let by = &scope.user.user.principal.user_id;
    let limits = state
        .data
        .revoke_rule_override(&scope.patient_id, &rule_id, by, &request.reason)
        .await?;
    Ok(Json(limits))
}
