//! The audit trail, for administrators.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::page::{MAX_LIMIT, Page};
use super::scope::CurrentUser;
use crate::http::access::Role;
use crate::http::audit::{AuditQuery, AuditRecord};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;

/// Audit filter; pages newest first by `cursor` (the last id seen).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this patient.
    pub patient_id: Option<String>,
    /// Items per page (1–500, default 100).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Query the audit trail (administrators only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page<AuditRecord>), (status = 403, body = ErrorBody)))]
pub async fn query(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(p): Query<AuditParams>,
) -> Result<Json<Page<AuditRecord>>, ApiError> {
    if !user.user.principal.has(Role::Administrator) {
        return Err(ApiError::RoleForbidden);
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1–{MAX_LIMIT}")));
    }
    let before_id = match p.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    let items = state
        .audit
        .query(&AuditQuery {
            user_id: p.user_id,
            patient_id: p.patient_id,
            before_id,
            limit,
        })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}
