//! Extractors that put authentication and care-team scoping in front of every
//! handler: [`CurrentUser`] (a valid session from an allowed network) and
//! [`ScopedPatient`] (that, plus the access policy and an audit row for the
//! patient in the path). A handler that takes patient data from anywhere but a
//! `ScopedPatient` is caught by the route-enumeration test.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path};
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use chrono::Utc;

use crate::http::access::AccessBasis;
use crate::http::auth::session::{COOKIE_NAME, SessionUser};
use crate::http::data::{Alert, AlertId, PatientId};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The client's address as the socket saw it.
pub fn remote_addr(parts: &Parts) -> IpAddr {
    // `MockConnectInfo` is how in-process router tests say where a request comes from.
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .or_else(|| {
            parts
                .extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|MockConnectInfo(a)| a.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A logged-in user, on a network their session allows.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who.
    pub user: SessionUser,
    /// From where.
    pub remote: IpAddr,
    /// The session cookie value (for logout).
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(COOKIE_NAME)
            .map(|c| c.value().to_owned())
            .ok_or(ApiError::Unauthenticated)?;
        let session = state
            .sessions
            .touch(&token, Utc::now())
            .map_err(|_| ApiError::Unauthenticated)?;
        let remote = remote_addr(parts);
        // A session opened inside the clinic without TOTP does not work from outside.
        if !session.second_factor && state.config.clinic_networks.requires_second_factor(remote) {
            return Err(ApiError::SecondFactorRequired);
        }
        Ok(CurrentUser {
            user: session.user,
            remote,
            token,
        })
    }
}

/// Access to the patient named by the `{patient_id}` path segment, decided and audited.
#[derive(Debug, Clone)]
pub struct ScopedPatient {
    /// The user.
    pub user: CurrentUser,
    /// The patient.
    pub patient_id: PatientId,
    /// Why access was allowed.
    pub basis: AccessBasis,
}

impl FromRequestParts<AppState> for ScopedPatient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let patient_id =
            PatientId(path_segment(parts, state, "patient_id", "ScopedPatient").await?);
        let action = format!("{} {}", parts.method, route_template(parts));
        let basis = state
            .authorize(&user.user.principal, &patient_id, &action, user.remote)
            .await?;
        Ok(ScopedPatient {
            user,
            patient_id,
            basis,
        })
    }
}

/// The path segment `name` of the matched route. A scoped extractor on a route without that
/// segment is a wiring mistake, reported as an internal error.
async fn path_segment(
    parts: &mut Parts,
    state: &AppState,
    name: &str,
    extractor: &str,
) -> Result<String, ApiError> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    params
        .remove(name)
        .ok_or_else(|| ApiError::Internal(format!("{extractor} on a route without {{{name}}}")))
}

/// The route template (`/api/v1/patients/{patient_id}`) rather than the concrete
/// path, so audit rows group by what was done.
pub fn route_template(parts: &Parts) -> String {
    parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(|| parts.uri.path().to_owned(), |m| m.as_str().to_owned())
}

/// Access to the alert named by the `{alert_id}` path segment: the access
/// policy of the alert's patient, decided and audited like [`ScopedPatient`].
#[derive(Debug, Clone)]
pub struct ScopedAlert {
    /// The user.
    pub user: CurrentUser,
    /// The alert as it was when access was decided.
    pub alert: Alert,
    /// Why access was allowed.
    pub basis: AccessBasis,
}

impl FromRequestParts<AppState> for ScopedAlert {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let alert_id = AlertId(path_segment(parts, state, "alert_id", "ScopedAlert").await?);
        // Unknown and foreign alerts answer alike, so alert ids cannot be probed.
        let alert = state
            .data
            .alert(&alert_id)
            .await
            .map_err(|_| ApiError::PatientOutOfScope)?;
        let action = format!(
            "{} {}",
            parts.method,
            parts.uri.path().replace(&alert_id.0, "{alert_id}")
        );
        let basis = state
            .authorize(
                &user.user.principal,
                &alert.patient_id,
                &action,
                user.remote,
            )
            .await?;
        Ok(ScopedAlert { user, alert, basis })
    }
}
