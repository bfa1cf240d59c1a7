//! The HTTP edge: REST `/api/v1`, WebSocket `/ws`, health and metrics, and the
//! embedded dashboard.
//!
//! Layout:
//! - [`auth`]: passwords, TOTP, sessions, login throttling, clinic networks.
//! - [`access`]: care-team scoping, the one access policy.
//! - [`audit`]: the append-only audit trail.
//! - [`data`]: the port to the rest of the server and the shapes served.
//! - [`api`]: REST handlers, the extractors that scope them, the OpenAPI document.
//! - [`ws`]: the live feed with its backpressure.
//! - [`assets`]: the embedded dashboard.
//! - [`stored`]: [`data::ClinicalData`] over registry, storage, live feed and alert service.
//! - [`simulated`]: an in-memory [`data::ClinicalData`] with simulated patients (tests).

pub mod access;
pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod data;
pub mod demo;
pub mod error;
pub mod simulated;
pub mod state;
pub mod stored;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use state::{AppState, HttpConfig};

/// The whole HTTP surface and its OpenAPI document.
pub fn router_with_openapi(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (api, openapi) = api::documented_routes().split_for_parts();
    let doc = openapi.clone();
    let router = api
        .route(
            "/api/openapi.json",
            get(move || std::future::ready(axum::Json(doc.clone()))),
        )
        .route("/ws", get(ws::upgrade))
        .route("/", get(assets::index))
        .route("/ui/{*path}", get(assets::file))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::origin::check_origin,
        ))
        .with_state(state);
    (router, openapi)
}

/// Serves on an already bound listener until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = router_with_openapi(state);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
