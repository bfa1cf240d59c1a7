//! The watchdog pages the operator (signed webhook to a local receiver) when a component is silent
//! for more than 2 minutes, once per silence, and again when it recovers.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::{Json, Router, extract::State, routing::post};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mimamori_server::alerts::store::{AlertStore, SqliteAlertStore};
use mimamori_server::alerts::watchdog::{DEFAULT_SILENCE_S, Watchdog};
use mimamori_server::alerts::webhook::{Webhook, WebhookConfig};
use serde_json::{Value, json};

type Pages = Arc<Mutex<Vec<Value>>>;

async fn receive(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    assert!(headers.contains_key("x-mimamori-signature"));
    pages.lock().unwrap().push(body);
    Json(json!({ "id": headers["idempotency-key"].to_str().unwrap() }))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 18, 0, 0).unwrap()
}

#[tokio::test]
async fn silent_components_page_the_operator_once_and_recovery_pages_again() {
    let pages: Pages = Arc::default();
    let app = Router::new()
        .route("/page", post(receive))
        .with_state(pages.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/page", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let operator = Webhook::new(WebhookConfig {
        endpoint,
        secret: "s".into(),
        max_attempts: 2,
        first_backoff_ms: 10,
        timeout_ms: 5_000,
    })
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("w.db"))
        .create_if_missing(true);
    let store = SqliteAlertStore::migrate(sqlx::SqlitePool::connect_with(options).await.unwrap())
        .await
        .unwrap();
    let at = |s: i64| t0() + TimeDelta::seconds(s);
    store.heartbeat("ingest", at(0)).await.unwrap();
    store.heartbeat("broker_subscription", at(0)).await.unwrap();
    store.heartbeat("notifier", at(0)).await.unwrap();

    let mut dog = Watchdog::new(DEFAULT_SILENCE_S);
    assert!(
        dog.round(&store, &operator, at(120))
            .await
            .unwrap()
            .is_empty(),
        "120 s is not > 2 min"
    );
    store.heartbeat("ingest", at(100)).await.unwrap();
    store
        .heartbeat("broker_subscription", at(110))
        .await
        .unwrap();
    let paged = dog.round(&store, &operator, at(121)).await.unwrap();
    assert_eq!(
        paged
            .iter()
            .map(|p| p.component.as_str())
            .collect::<Vec<_>>(),
        vec!["notifier"]
    );
    // Still silent a minute later: no second page.
    store.heartbeat("ingest", at(170)).await.unwrap();
    store
        .heartbeat("broker_subscription", at(170))
        .await
        .unwrap();
    assert!(
        dog.round(&store, &operator, at(180))
            .await
            .unwrap()
            .is_empty()
    );
    // It beats again: one recovery page.
    store.heartbeat("notifier", at(200)).await.unwrap();
    let recovered = dog.round(&store, &operator, at(210)).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert!(!recovered[0].silent);

    let received = pages.lock().unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(
        (
            received[0]["component"].as_str(),
            received[0]["silent"].as_bool()
        ),
        (Some("notifier"), Some(true))
    );
    assert_eq!(
        (
            received[1]["component"].as_str(),
            received[1]["silent"].as_bool()
        ),
        (Some("notifier"), Some(false))
    );
}

#[test]
fn a_component_that_never_beat_is_silent() {
    let mut dog = Watchdog::new(DEFAULT_SILENCE_S);
    let pages = dog.check(t0(), &[("ingest".into(), t0()), ("notifier".into(), t0())]);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].component, "broker_subscription");
    assert_eq!(pages[0].last_heartbeat, None);
}
