//! Account administration.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::scope::CurrentUser;
use crate::http::access::Role;
use crate::http::audit::{AuditEntry, AuditOutcome};
use crate::http::data::UserId;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;

/// Removes a user's authenticator (a lost or replaced phone), administrators only, audited. The
/// user then enrols a new one from a clinic network.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/totp", tag = "session",
    params(("user_id" = String, Path, description = "The user whose authenticator is reset")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_totp(
    State(state): State<AppState>,
    admin: CurrentUser,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !admin.user.principal.has(Role::Administrator) {
        return Err(ApiError::RoleForbidden);
    }
    state
        .data
        .set_totp_secret(&UserId(user_id.clone()), None)
        .await
        .map_err(|_| ApiError::NotFound("user"))?;
    state
        .audit
        .append(&[AuditEntry {
            user_id: admin.user.principal.user_id.clone(),
            patient_id: None,
            action: format!("totp_reset {user_id}"),
            outcome: AuditOutcome::Allowed,
            basis: None,
            remote_addr: admin.remote.to_string(),
            break_glass_reason: None,
        }])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
