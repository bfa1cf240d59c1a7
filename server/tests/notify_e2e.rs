//! Paging on the real server: with `[notify]` naming the on-call rota and a webhook, an alert
//! raised from a gateway's readings is posted, signed, to the receiver; the receiver's
//! confirmation moves the alert to *notified* and records whom the rota routed it to.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, extract::State, routing::post};
use chrono::Utc;
use common::{Stack, TestGateway, oximetry};
use mimamori_server::alerts::webhook::signature;
use mimamori_testkit::{Mosquitto, Postgres};
use mimamori_wire::Epoch;
use serde_json::{Value, json};

const SECRET: &str = "notify-e2e-secret";

type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let id = headers["idempotency-key"].to_str().unwrap().to_owned();
    received.lock().unwrap().push((headers, body.to_vec()));
    (StatusCode::OK, Json(json!({ "id": id })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_paged_signed_and_confirmed() {
    let received: Received = Arc::default();
    let app = Router::new()
        .route("/page", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/page", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rota = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/oncall/setagaya-network.toml"
    );
    let db_url = Postgres::shared().unwrap().create_database().unwrap();
    let stack = Stack::start_with(
        Mosquitto::start().unwrap(),
        &db_url,
        4,
        &format!(
            "[ingest]\nbatch_max_delay_ms = 20\n\n[notify]\nrota_file = \"{rota}\"\n\n\
             [notify.webhook]\nendpoint = \"{endpoint}\"\nsecret = \"{SECRET}\"\nfirst_backoff_ms = 50\n"
        ),
    )
    .await;
    let mut server = stack.spawn_server_ready().await;

    let mut gateway = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([61; 16])).await;
    let start = Utc::now() - chrono::Duration::seconds(90);
    for i in 0..17 {
        gateway.push(oximetry(86.0, start + chrono::Duration::seconds(5 * i)));
    }
    gateway.drain(Duration::from_secs(30)).await;

    let state: String = {
        let mut state = String::new();
        for _ in 0..100 {
            state = sqlx::query_scalar(
                "SELECT state FROM alert WHERE patient_id = 'p-0002' AND rule_key LIKE '%spo2_low%'",
            )
            .fetch_optional(stack.store.pool())
            .await
            .unwrap()
            .unwrap_or_default();
            if state == "notified" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        state
    };
    assert_eq!(state, "notified", "server log:\n{}", stack.server_log());

    let requests = received.lock().unwrap().clone();
    let (headers, body) = requests
        .iter()
        .find(|(_, body)| String::from_utf8_lossy(body).contains("spo2_low"))
        .expect("the alert was posted");
    let timestamp: i64 = headers["x-mimamori-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-mimamori-signature"].to_str().unwrap(),
        signature(SECRET.as_bytes(), timestamp, body),
        "signed over timestamp and body"
    );
    let posted: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(posted["alert"]["patient"], "p-0002");

    // Whom the rota reached is recorded; it is one of the network's doctors (who depends on the
    // hour the test runs: the clinic by day, the on-call doctor at night).
    let snapshot: String = sqlx::query_scalar(
        "SELECT snapshot FROM alert WHERE patient_id = 'p-0002' AND rule_key LIKE '%spo2_low%'",
    )
    .fetch_one(stack.store.pool())
    .await
    .unwrap();
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
    if let Some(doctor) = snapshot["routed_to"].as_str() {
        assert!(
            std::fs::read_to_string(rota)
                .unwrap()
                .contains(&format!("id = \"{doctor}\""))
        );
    }
    server.kill().unwrap();
    let _ = server.wait();
}
