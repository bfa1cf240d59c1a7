//! Login, logout and "who am I".

use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::CurrentUser;
use crate::http::access::Role;
use crate::http::audit::{AuditEntry, AuditOutcome};
use crate::http::auth::password::{decoy_hash, verify_password};
use crate::http::auth::session::{COOKIE_NAME, SessionUser};
use crate::http::auth::totp::TotpFactor;
use crate::http::data::{CareTeamId, UserId};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login name.
    pub login: String,
    /// Password.
    pub password: String,
    /// Six-digit TOTP code; required from outside the clinic networks.
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// The logged-in user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// Id.
    pub user_id: UserId,
    /// Login name.
    pub login: String,
    /// Name to show.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Care teams.
    pub care_teams: Vec<CareTeamId>,
}

impl From<&SessionUser> for Me {
    fn from(u: &SessionUser) -> Self {
        Me {
            user_id: u.principal.user_id.clone(),
            login: u.login.clone(),
            display_name: u.display_name.clone(),
            roles: u.principal.roles.iter().copied().collect(),
            care_teams: u.principal.care_teams.iter().cloned().collect(),
        }
    }
}

/// Log in; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    jar: CookieJar,
    Json(req): Json<LoginRequest>,
) -> Result<(CookieJar, Json<Me>), ApiError> {
    let remote = peer.ip();
    let now = Instant::now();
    let check = state
        .login_limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .check(&req.login, remote, now);
    if let Err(wait) = check {
        return Err(ApiError::RateLimited {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    let fail = |e: ApiError| {
        state
            .metrics
            .logins_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state
            .login_limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record_failure(&req.login, remote, now);
        e
    };
    let account = state.data.user_by_login(req.login.trim()).await?;
    // Unknown names verify a decoy hash so that timing does not reveal which login names exist.
    let phc = account
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |a| a.password_phc.clone());
    let password_ok = password_matches(req.password.clone(), phc).await?;
    let account = match account {
        Some(a) if password_ok => a,
        _ => return Err(fail(ApiError::InvalidCredentials)),
    };
    let needs_second_factor = state.config.clinic_networks.requires_second_factor(remote);
    let mut second_factor = false;
    if let Some(code) = req.totp_code.as_deref().filter(|c| !c.trim().is_empty()) {
        let secret = account
            .totp_secret
            .as_deref()
            .ok_or(ApiError::SecondFactorNotEnrolled)?;
        let factor =
            TotpFactor::from_base32(secret).map_err(|e| ApiError::Internal(e.to_string()))?;
        let unix = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
        if !factor.check(code, unix) {
            return Err(fail(ApiError::InvalidSecondFactor));
        }
        second_factor = true;
    } else if needs_second_factor {
        return Err(if account.totp_secret.is_some() {
            ApiError::SecondFactorRequired
        } else {
            ApiError::SecondFactorNotEnrolled
        });
    }
    state
        .login_limiter
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .record_success(&req.login);
    let user = SessionUser::from(&account);
    let token = state
        .sessions
        .open(user.clone(), second_factor, remote, Utc::now());
    state
        .audit
        .append(&[AuditEntry {
            user_id: account.id.clone(),
            patient_id: None,
            action: "login".into(),
            outcome: AuditOutcome::Allowed,
            basis: None,
            remote_addr: remote.to_string(),
            break_glass_reason: None,
        }])
        .await?;
    let cookie = Cookie::build((COOKIE_NAME, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/")
        .build();
    Ok((jar.add(cookie), Json(Me::from(&user))))
}

/// Checks a password against its argon2 hash off the async workers (it takes tens of ms).
async fn password_matches(password: String, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(user: CurrentUser) -> Json<Me> {
    Json(Me::from(&user.user))
}

/// Log out; ends the session and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    jar: CookieJar,
) -> (CookieJar, StatusCode) {
    state.sessions.close(&user.token).await;
    (
        jar.remove(Cookie::build(COOKIE_NAME).path("/")),
        StatusCode::NO_CONTENT,
    )
}

/// Starting TOTP enrolment: the password again, from a clinic network.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpSetupRequest {
    /// The account's password.
    pub password: String,
}

/// A new TOTP secret for the user's authenticator app.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret, for typing in.
    pub secret: String,
    /// `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

/// Finishing enrolment: a code the authenticator now shows.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TotpConfirm {
    /// Six-digit code.
    pub code: String,
}

/// Starts enrolling an authenticator (needed to log in from outside the clinics' networks). Only
/// from a clinic network, with the password again, and only while none is enrolled: replacing a
/// lost one is an administrator's reset.
#[utoipa::path(post, path = "/api/v1/session/totp", tag = "session", request_body = TotpSetupRequest,
    responses((status = 200, body = TotpSetup), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_setup(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<TotpSetupRequest>,
) -> Result<Json<TotpSetup>, ApiError> {
    if state
        .config
        .clinic_networks
        .requires_second_factor(user.remote)
    {
        return Err(ApiError::RoleForbidden);
    }
    let account = state
        .data
        .user_by_login(&user.user.login)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    if account.totp_secret.is_some() {
        return Err(ApiError::Conflict(
            "an authenticator is already enrolled; an administrator resets it".into(),
        ));
    }
    let password_ok = password_matches(req.password, account.password_phc.clone()).await?;
    if !password_ok {
        return Err(ApiError::InvalidCredentials);
    }
    let secret = TotpFactor::generate_secret();
    state
        .pending_totp
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(user.token.clone(), secret.clone());
    let otpauth_uri = format!(
        "otpauth://totp/mimamori:{login}?secret={secret}&issuer=mimamori&algorithm=SHA1&digits=6&period=30",
        login = user.user.login
    );
    Ok(Json(TotpSetup {
        secret,
        otpauth_uri,
    }))
}

/// Finishes enrolment with a code from the authenticator; the secret is stored only then.
#[utoipa::path(put, path = "/api/v1/session/totp", tag = "session", request_body = TotpConfirm,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<TotpConfirm>,
) -> Result<StatusCode, ApiError> {
    let secret = state
        .pending_totp
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&user.token)
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("no enrolment was started in this session".into()))?;
    let factor = TotpFactor::from_base32(&secret).map_err(|e| ApiError::Internal(e.to_string()))?;
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
    if !factor.check(&req.code, unix) {
        return Err(ApiError::InvalidSecondFactor);
    }
    state
        .data
        .set_totp_secret(&user.user.principal.user_id, Some(&secret))
        .await?;
    state
        .pending_totp
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&user.token);
    state
        .audit
        .append(&[AuditEntry {
            user_id: user.user.principal.user_id.clone(),
            patient_id: None,
            action: "totp_enrolled".into(),
            outcome: AuditOutcome::Allowed,
            basis: None,
            remote_addr: user.remote.to_string(),
            break_glass_reason: None,
        }])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
