//! Paging on the real server: with `[notify]` naming the on-call rota and a webhook, an alert
//! raised from a gateway's readings is posted, signed, to the receiver; the receiver's
//! confirmation moves the alert to *notified* and records whom the rota routed it to. The rota's
//! care network is the registry's: a patient registered while the server runs is paged without a
//! restart, and a rota naming an id the registry does not have stops the start.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, extract::State, routing::post};
use chrono::Utc;
use common::{NEW_PATIENT, NEW_PATIENTS_OXIMETER, ROTA, Stack, TestGateway, oximetry, oximetry_of};
use mimamori_server::alerts::webhook::signature;
use mimamori_server::oncall::coverage::CoverageConfig;
use mimamori_server::oncall::escalation::AlertRouting as _;
use mimamori_server::oncall::network;
use mimamori_server::oncall::rota::{PatientId, RotaFile};
use mimamori_server::oncall::route::OnCallResolver;
use mimamori_server::registry::Directory;
use mimamori_testkit::{Mosquitto, Postgres};
use mimamori_wire::{Body, Epoch};
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

/// A webhook receiver that confirms every page, and a stack whose server pages it along `rota`.
async fn paging_stack(rota: &str) -> (Stack, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route("/page", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/page", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

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
    (stack, received)
}

/// Pushes 85 s of SpO2 at 86 % for `patient` through their gateway; returns the low-SpO2 alert's
/// snapshot once it is *notified*.
async fn low_spo2_notified(
    stack: &Stack,
    gateway: &str,
    body: impl Fn(f64, chrono::DateTime<Utc>) -> Body,
    patient: &str,
) -> Value {
    let mut gateway = TestGateway::connect(stack, gateway, Epoch::from_bytes([61; 16])).await;
    let start = Utc::now() - chrono::Duration::seconds(90);
    for i in 0..17 {
        gateway.push(body(86.0, start + chrono::Duration::seconds(5 * i)));
    }
    gateway.drain(Duration::from_secs(30)).await;

    let (mut state, mut snapshot) = (String::new(), String::new());
    for _ in 0..100 {
        (state, snapshot) = sqlx::query_as(
            "SELECT state, snapshot FROM alert WHERE patient_id = $1 AND rule_key LIKE '%spo2_low%'",
        )
        .bind(patient)
        .fetch_optional(stack.store.pool())
        .await
        .unwrap()
        .unwrap_or_default();
        if state == "notified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "notified", "server log:\n{}", stack.server_log());
    serde_json::from_str(&snapshot).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_paged_signed_and_confirmed() {
    let (stack, received) = paging_stack(ROTA).await;
    let mut server = stack.spawn_server_ready().await;
    let snapshot = low_spo2_notified(&stack, "gw-p0002", oximetry, "p-0002").await;

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

    // Whom the rota reached is recorded; it is one of the registry's doctors (who depends on the
    // hour the test runs: the clinic's director by day, the on-call doctor at night).
    let doctor = snapshot["routed_to"].as_str().expect("routed to a person");
    let doctors = ["u-sato", "u-kato", "u-suzuki", "u-yamamoto", "u-takahashi"];
    assert!(doctors.contains(&doctor), "{doctor}");
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_registered_while_serving_is_paged_to_a_registry_doctor() {
    let (stack, _received) = paging_stack(ROTA).await;
    let mut server = stack.spawn_server_ready().await;

    let seed = stack.dir.path().join("new-patient.toml");
    std::fs::write(&seed, NEW_PATIENT).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
        .args(["admin", "--config"])
        .arg(&stack.config_path)
        .arg("seed")
        .arg(&seed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server reads the registry again within a few seconds; readings sent before that would
    // raise an alert with no route yet (a delivery-failure alarm, retried only on escalation).
    mimamori_testkit::wait_until(Duration::from_secs(30), || async {
        stack
            .server_log()
            .contains("On-call routing rebuilt from the registry.")
    })
    .await
    .unwrap_or_else(|_| panic!("routing not rebuilt:\n{}", stack.server_log()));

    let snapshot = low_spo2_notified(
        &stack,
        "gw-p0100",
        |spo2, at| oximetry_of(NEW_PATIENTS_OXIMETER, spo2, at),
        "p-0100",
    )
    .await;

    // Routed as the rota over the registry routes p-0100 at the instant the alert was raised: its
    // clinic's director by day, the rota's on-call doctor otherwise, by registry user id.
    let raised_at = snapshot["raised_at"].as_str().unwrap().parse().unwrap();
    let records = Directory::from(&stack.store)
        .routing_records()
        .await
        .unwrap();
    let shifts = RotaFile::load(ROTA.as_ref()).unwrap().all_shifts().unwrap();
    let (network, rota) = network::build(&records, shifts).unwrap();
    let plan = OnCallResolver::new(CoverageConfig::default(), network, rota)
        .escalation_plan(&PatientId::from("p-0100"), raised_at)
        .unwrap();
    let expected = plan.recipient(0).unwrap().doctor_id.clone().unwrap();
    assert_eq!(snapshot["routed_to"], expected.0.as_str(), "{plan:?}");
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rota_naming_an_unknown_user_stops_the_start() {
    let (stack, _received) = paging_stack(ROTA).await;
    let rota = stack.dir.path().join("rota.toml");
    let text = std::fs::read_to_string(ROTA).unwrap();
    assert!(text.contains("\"u-yamamoto\""));
    std::fs::write(&rota, text.replace("\"u-yamamoto\"", "\"u-ghost\"")).unwrap();
    let config = std::fs::read_to_string(&stack.config_path).unwrap();
    std::fs::write(
        &stack.config_path,
        config.replace(ROTA, rota.to_str().unwrap()),
    )
    .unwrap();

    let mut server = stack.spawn_server();
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || server.wait()),
    )
    .await
    .expect("the server stops by itself")
    .unwrap()
    .unwrap();
    assert!(!status.success());
    let log = stack.server_log();
    assert!(
        log.contains("the rota names user u-ghost, who is not in the registry"),
        "{log}"
    );
}
