//! Liveness, readiness and Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::http::state::AppState;

/// Counters of the HTTP edge (the core's counters are appended by its own renderer).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Failed logins.
    pub logins_failed: AtomicU64,
    /// Live ECG frames shed for slow WebSocket clients.
    pub ws_ecg_frames_dropped: AtomicU64,
    /// WebSocket clients disconnected for falling behind on state changes.
    pub ws_clients_too_slow: AtomicU64,
}

/// Is the process up?
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Can it serve (storage reachable)?
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.data.ready().await {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "http_logins_failed_total",
            "Failed login attempts.",
            &m.logins_failed,
        ),
        (
            "ws_ecg_frames_dropped_total",
            "Live ECG frames shed for slow WebSocket clients.",
            &m.ws_ecg_frames_dropped,
        ),
        (
            "ws_clients_too_slow_total",
            "WebSocket clients disconnected for falling behind on state changes.",
            &m.ws_clients_too_slow,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    if let Some(render) = &state.extra_metrics {
        out.push_str(&render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
