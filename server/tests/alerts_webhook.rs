//! Signed webhooks against a local axum receiver, and the alarm raised when delivery keeps failing.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, extract::State, routing::post};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hmac::{Hmac, Mac};
use mimamori_server::alerts::engine::{Category, Change, Input, Observation, Signal};
use mimamori_server::alerts::finding::Finding;
use mimamori_server::alerts::lifecycle::{Alert, AlertState, EscalationDelays, Lifecycle};
use mimamori_server::alerts::notify::{Notifier, Recipient, WhoToNotify};
use mimamori_server::alerts::rules::{Measure, Op, Overrides, Priority, RuleSet};
use mimamori_server::alerts::service::{AlertCore, AlertEvent, AlertHandle, Clock, ServiceConfig};
use mimamori_server::alerts::store::SqliteAlertStore;
use mimamori_server::alerts::webhook::{Webhook, WebhookConfig};
use serde_json::{Value, json};

const SECRET: &str = "test-secret";

/// What the receiver saw, and how it should answer the next requests.
#[derive(Default)]
struct Receiver {
    requests: Vec<(HeaderMap, Vec<u8>)>,
    /// Answer 503 to this many requests first.
    fail_first: usize,
    /// Answer 200 but without echoing the id.
    never_echo: bool,
}

type Shared = Arc<Mutex<Receiver>>;

async fn hook(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let mut r = state.lock().unwrap();
    r.requests.push((headers.clone(), body.to_vec()));
    if r.requests.len() <= r.fail_first {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
    }
    if r.never_echo {
        return (StatusCode::OK, Json(json!({ "ok": true })));
    }
    let id = headers["idempotency-key"].to_str().unwrap().to_owned();
    (StatusCode::OK, Json(json!({ "id": id })))
}

async fn start_receiver(receiver: Receiver) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(receiver));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn webhook(endpoint: String) -> Webhook {
    Webhook::new(WebhookConfig {
        endpoint,
        secret: SECRET.into(),
        max_attempts: 4,
        first_backoff_ms: 10,
        timeout_ms: 5_000,
    })
    .unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 17, 0, 0).unwrap()
}

fn raised_event() -> AlertEvent {
    let mut l = Lifecycle::new(EscalationDelays::default());
    let signal = Signal {
        at: t0(),
        patient: "p1".into(),
        key: "spo2_low".into(),
        change: Change::Raise {
            priority: Priority::High,
            category: Category::Clinical,
            finding: Finding::Threshold {
                measure: Measure::Spo2,
                value: 86.0,
                unit: "%".into(),
                op: Op::Lt,
                limit: 90.0,
            },
            qualified_by: vec![],
        },
    };
    let id = uuid::Uuid::from_u128(7);
    let transition = l.apply(&signal, "v1", id).remove(0);
    AlertEvent {
        alert: l.alert(id).unwrap().clone(),
        transition,
    }
}

/// Checks the signature the way a receiver would, from the documented formula.
fn signature_is_valid(headers: &HeaderMap, body: &[u8]) -> bool {
    let ts = headers["x-mimamori-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    headers["x-mimamori-signature"].to_str().unwrap() == expected
}

#[tokio::test]
async fn webhook_is_signed_retried_with_one_idempotency_key_and_confirmed() {
    let (url, state) = start_receiver(Receiver {
        fail_first: 2,
        ..Receiver::default()
    })
    .await;
    let event = raised_event();
    assert_eq!(webhook(url).deliver(&event).await.unwrap(), 3);
    let r = state.lock().unwrap();
    assert_eq!(r.requests.len(), 3);
    let key = format!("{}:0", event.alert.id);
    for (headers, body) in &r.requests {
        assert_eq!(headers["idempotency-key"], key.as_str());
        assert!(signature_is_valid(headers, body));
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["id"], key.as_str());
        assert_eq!(body["alert"]["key"], "spo2_low");
    }
    // A tampered body fails the same check.
    let (headers, body) = &r.requests[0];
    let mut tampered = body.clone();
    tampered[0] = b' ';
    assert!(!signature_is_valid(headers, &tampered));
}

#[tokio::test]
async fn a_2xx_without_the_echoed_id_is_not_a_delivery() {
    let (url, state) = start_receiver(Receiver {
        never_echo: true,
        ..Receiver::default()
    })
    .await;
    let err = webhook(url).deliver(&raised_event()).await.unwrap_err();
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
    assert_eq!(state.lock().unwrap().requests.len(), 4);
}

struct CareTeam;

impl WhoToNotify for CareTeam {
    fn recipients(&self, _alert: &Alert) -> Vec<Recipient> {
        vec![Recipient {
            role: "on_call_doctor".into(),
            name: "dr-sato".into(),
            user_id: Some("d-sato".into()),
        }]
    }
}

async fn pipeline(receiver: Receiver) -> (AlertHandle, Shared, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("a.db"))
        .create_if_missing(true);
    let store = SqliteAlertStore::migrate(sqlx::SqlitePool::connect_with(options).await.unwrap())
        .await
        .unwrap();
    let config = ServiceConfig::default();
    let core = AlertCore::resume(store, RuleSet::builtin(), Overrides::default(), &config)
        .await
        .unwrap();
    let handle = AlertHandle::spawn(core, Clock::starting_at(t0()), &config);
    let (url, state) = start_receiver(receiver).await;
    tokio::spawn(Notifier::new(CareTeam, webhook(url), handle.clone()).run());
    (handle, state, dir)
}

fn hypotension() -> Input {
    Input {
        at: t0() + TimeDelta::seconds(1),
        patient: "p1".into(),
        observation: Observation::Vital {
            measure: Measure::SystolicBp,
            value: 82.0,
            artefact: false,
        },
    }
}

#[tokio::test]
async fn a_confirmed_delivery_moves_the_alert_to_notified() {
    let (handle, _state, _dir) = pipeline(Receiver::default()).await;
    let mut events = handle.subscribe();
    handle.observe(hypotension()).await.unwrap();
    assert_eq!(
        events.recv().await.unwrap().transition.to,
        AlertState::Raised
    );
    let notified = events.recv().await.unwrap();
    assert_eq!(notified.transition.to, AlertState::Notified);
    assert_eq!(notified.alert.key, "systolic_low");
    assert_eq!(
        notified.alert.routed_to.as_deref(),
        Some("d-sato"),
        "the doctor reached may open the patient"
    );
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_raises_a_high_priority_technical_alarm() {
    let (handle, state, _dir) = pipeline(Receiver {
        fail_first: usize::MAX,
        ..Receiver::default()
    })
    .await;
    let mut events = handle.subscribe();
    handle.observe(hypotension()).await.unwrap();
    assert_eq!(events.recv().await.unwrap().alert.key, "systolic_low");
    let alarm = events.recv().await.unwrap();
    assert_eq!(alarm.alert.key, "notification_failed/systolic_low");
    assert_eq!(
        (alarm.alert.priority, alarm.alert.category),
        (Priority::High, Category::Technical)
    );
    assert_eq!(alarm.transition.to, AlertState::Raised);
    // Four attempts for the clinical alert before the alarm (its own delivery may follow).
    assert!(state.lock().unwrap().requests.len() >= 4);
}
