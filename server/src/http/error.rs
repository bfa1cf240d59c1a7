//! The one error type of the HTTP edge. Each variant has a stable `code` that
//! clients may branch on and a human message; internal details are logged in
//! the request span, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::audit::AuditError;
use super::data::DataError;
use crate::alerts::rules::RulesError;

/// Error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Stable code and human message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; clients branch on this.
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
}

/// Everything that can go wrong at the HTTP edge.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid session.
    #[error("log in first")]
    Unauthenticated,
    /// Wrong login name or password (deliberately not saying which).
    #[error("login name or password is wrong")]
    InvalidCredentials,
    /// Outside the clinic networks the TOTP code is required.
    #[error("a one-time code from your authenticator is required from outside the clinic network")]
    SecondFactorRequired,
    /// The TOTP code was wrong.
    #[error("the one-time code is wrong")]
    InvalidSecondFactor,
    /// Second factor required but the user has none enrolled.
    #[error("no authenticator is enrolled for this account; log in from a clinic network")]
    SecondFactorNotEnrolled,
    /// Too many failed logins.
    #[error("too many failed logins; try again in {retry_after_s} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_s: u64,
    },
    /// The user's role does not allow this.
    #[error("your role does not allow this")]
    RoleForbidden,
    /// The patient is outside the user's care teams (and no on-call or break-glass basis).
    #[error("this patient is not in your care teams; use break-glass with a reason if you must")]
    PatientOutOfScope,
    /// The request's Origin is not this server.
    #[error("cross-origin request refused")]
    BadOrigin,
    /// No such thing.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Not possible in the current state.
    #[error("{0}")]
    Conflict(String),
    /// A rule override was refused; the code says why.
    #[error("{0}")]
    RuleOverrideRefused(RulesError),
    /// There is no override in force to revoke.
    #[error("no override of this rule is in force for this patient")]
    NoOverrideInForce,
    /// Something failed inside; details are in the log.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::SecondFactorRequired => "second_factor_required",
            ApiError::InvalidSecondFactor => "invalid_second_factor",
            ApiError::SecondFactorNotEnrolled => "second_factor_not_enrolled",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RoleForbidden => "role_forbidden",
            ApiError::PatientOutOfScope => "patient_out_of_scope",
            ApiError::BadOrigin => "bad_origin",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::RuleOverrideRefused(e) => match e {
                RulesError::UnknownRule(_) => "unknown_rule",
                RulesError::OutsideSafetyRange { .. } => "outside_safety_range",
                RulesError::NoHysteresis(_) => "no_hysteresis",
                RulesError::ExpiresBeforeSet(_) => "expiry_not_in_future",
                RulesError::NoReason(_) => "reason_required",
                // Faults of the rules file itself, refused at start; never an override's.
                RulesError::Parse(_)
                | RulesError::WrongUnit { .. }
                | RulesError::DuplicateId(_)
                | RulesError::NoSource(_) => "invalid_override",
            },
            ApiError::NoOverrideInForce => "no_override_in_force",
            ApiError::Internal(_) => "internal",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::SecondFactorRequired
            | ApiError::InvalidSecondFactor
            | ApiError::SecondFactorNotEnrolled => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RoleForbidden | ApiError::PatientOutOfScope | ApiError::BadOrigin => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_)
            | ApiError::NoOverrideInForce
            | ApiError::RuleOverrideRefused(RulesError::UnknownRule(_)) => StatusCode::NOT_FOUND,
            ApiError::RuleOverrideRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::PatientNotFound(_) => ApiError::NotFound("patient"),
            DataError::AlertNotFound(_) => ApiError::NotFound("alert"),
            DataError::InvalidTransition { .. } => ApiError::Conflict(e.to_string()),
            DataError::OverrideRefused(refused) => ApiError::RuleOverrideRefused(refused),
            DataError::NoOverrideInForce { .. } => ApiError::NoOverrideInForce,
            DataError::Storage(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "Request failed inside the server.");
        }
        let status = self.status();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_s } => {
                HeaderValue::from_str(&retry_after_s.to_string()).ok()
            }
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
