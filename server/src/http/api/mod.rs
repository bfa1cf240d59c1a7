//! REST routes under `/api/v1`, described by the OpenAPI document built from
//! the same router (utoipa-axum), so the document cannot list a route the
//! server lacks or miss one it has.

pub mod alerts;
pub mod audit;
pub mod health;
pub mod origin;
pub mod page;
pub mod patients;
pub mod rule_overrides;
pub mod scope;
pub mod session;
pub mod users;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "mimamori", description = "Home-care vital-sign monitoring: patients, vitals, alerts, audit."),
    tags(
        (name = "session", description = "Login and logout"),
        (name = "patients", description = "Patient data; every route is care-team scoped and audited"),
        (name = "alerts", description = "The alert queue"),
        (name = "audit", description = "Audit trail (administrators)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Every documented route, and the document describing them.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login, session::me, session::logout))
        .routes(routes!(session::totp_setup, session::totp_confirm))
        .routes(routes!(users::reset_totp))
        .routes(routes!(patients::list))
        .routes(routes!(patients::detail))
        .routes(routes!(patients::patient_tile))
        .routes(routes!(patients::latest))
        .routes(routes!(patients::readings))
        .routes(routes!(patients::trend))
        .routes(routes!(patients::alerts))
        .routes(routes!(patients::break_glass))
        .routes(routes!(rule_overrides::list))
        .routes(routes!(rule_overrides::set, rule_overrides::revoke))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::act))
        .routes(routes!(alerts::handover))
        .routes(routes!(audit::query))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}
