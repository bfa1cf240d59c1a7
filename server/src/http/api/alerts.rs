//! The alert queue: alerts of patients in the user's scope, and lifecycle actions.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{Page, PageParams};
use super::scope::{CurrentUser, ScopedAlert};
use crate::http::access::Role;
use crate::http::data::{Alert, AlertAction, AlertId};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::oncall::handover::{Language, render_html};
use axum::response::Html;

/// Alert list filter.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// Only open (not resolved) alerts; default true.
    pub open: Option<bool>,
}

/// Queue order: open before resolved, highest priority first, then newest.
pub fn queue_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    b.state
        .is_open()
        .cmp(&a.state.is_open())
        .then_with(|| b.priority.cmp(&a.priority))
        .then_with(|| b.raised_at.cmp(&a.raised_at))
}

/// Alerts of patients the user may see: the alert queue.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertFilter, PageParams),
    responses((status = 200, body = Page<Alert>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(filter): Query<AlertFilter>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Alert>>, ApiError> {
    page.limit()?;
    let mut visible = Vec::new();
    for alert in state.data.alerts(filter.open.unwrap_or(true)).await? {
        if state
            .authorize(
                &user.user.principal,
                &alert.patient_id,
                "GET /api/v1/alerts",
                user.remote,
            )
            .await
            .is_ok()
        {
            visible.push(alert);
        }
    }
    visible.sort_by(queue_order);
    Ok(Json(page.apply(visible)?))
}

/// A lifecycle action's note.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AlertNote {
    /// What was done or why (required; recorded in the alert's history).
    pub note: String,
}

/// Result of a lifecycle action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertActed {
    /// The alert after the action.
    pub alert: Alert,
}

/// Path of an alert action.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertPath {
    /// Alert (checked by [`ScopedAlert`]).
    pub alert_id: AlertId,
    /// What to do.
    pub action: AlertAction,
}

/// Acknowledge, escalate or resolve an alert, with a note.
#[utoipa::path(post, path = "/api/v1/alerts/{alert_id}/{action}", tag = "alerts",
    params(("alert_id" = String, Path, description = "Alert id"), ("action" = AlertAction, Path, description = "acknowledge, escalate or resolve")),
    request_body = AlertNote,
    responses((status = 200, body = AlertActed), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    scope: ScopedAlert,
    Path(AlertPath { alert_id, action }): Path<AlertPath>,
    Json(body): Json<AlertNote>,
) -> Result<Json<AlertActed>, ApiError> {
    let principal = &scope.user.user.principal;
    if principal.roles.iter().all(|r| *r == Role::Administrator) {
        return Err(ApiError::RoleForbidden);
    }
    let note = body.note.trim();
    if note.is_empty() {
        return Err(ApiError::BadRequest("a note is required".into()));
    }
    let alert = state
        .data
        .act_on_alert(&alert_id, action, &principal.user_id, note)
        .await?;
    Ok(Json(AlertActed { alert }))
}

/// Handover language.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HandoverParams {
    /// `ja` (default) or `en`.
    pub lang: Option<String>,
}

/// The one-page handover summary of an alert's patient for the doctor called
/// (HTML, printable, no script).
#[utoipa::path(get, path = "/api/v1/alerts/{alert_id}/handover", tag = "alerts",
    params(("alert_id" = String, Path, description = "Alert id"), HandoverParams),
    responses((status = 200, content_type = "text/html", body = String), (status = 403, body = ErrorBody)))]
pub async fn handover(
    State(state): State<AppState>,
    scope: ScopedAlert,
    Query(params): Query<HandoverParams>,
) -> Result<Html<String>, ApiError> {
    let language = match params.lang.as_deref() {
        Some("en") => Language::En,
        _ => Language::Ja,
    };
    let input = state.data.handover(&scope.alert.id, language).await?;
    Ok(Html(render_html(&input)))
}
