//! The alert pipeline across a crash of the server: readings committed before a `kill -9` are
//! evaluated after the restart (replayed from storage past the engine's checkpoint), the alert
//! is raised exactly once, and the engine's state survives so the same alert clears when the
//! patient recovers.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Stack, TestGateway, oximetry};
use mimamori_server::storage::{
    Content, IngestBatch, IngestMessage, ObservationRecord, StatusRecord, Storage as _,
};
use mimamori_wire::{Epoch, GatewayId, VitalSign};

async fn alerts_of(stack: &Stack, rule: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id, state FROM alert WHERE patient_id = 'p-0002' AND rule_key LIKE $1")
        .bind(format!("%{rule}%"))
        .fetch_all(stack.store.pool())
        .await
        .unwrap()
}

async fn spo2_alerts(stack: &Stack) -> Vec<(String, String)> {
    alerts_of(stack, "spo2_low").await
}

/// What the dead server committed last: one message from p-0002's gateway.
async fn commit_as_crashed_server(stack: &Stack, epoch: u8, content: Content) {
    stack
        .store
        .commit_ingest(&IngestBatch {
            messages: vec![IngestMessage {
                gateway: GatewayId::new("gw-p0002").unwrap(),
                key: Some((Epoch::from_bytes([epoch; 16]), 0)),
                known_duplicate: false,
                received_at: Utc::now(),
                sent_at: None,
                content,
            }],
            watermarks: vec![],
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_neither_loses_nor_repeats_an_alert() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let mut gateway = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([51; 16])).await;

    // One reading through the whole path, then the server is killed.
    let start = Utc::now() - chrono::Duration::seconds(120);
    gateway.push(oximetry(95.0, start - chrono::Duration::seconds(5)));
    gateway.drain(Duration::from_secs(30)).await;
    server.kill().unwrap();
    let _ = server.wait();

    // The window a crash leaves: 80 s of SpO2 at 86 % committed by ingest, never seen by the
    // alert engine (written here directly, as the dead server's last batch).
    let readings = (0..17)
        .map(|i| ObservationRecord {
            patient_id: "p-0002".into(),
            device_id: "pc60fw:AA:BB:CC:00:00:03".into(),
            vital: VitalSign::Spo2,
            value: 86.0,
            measured_at: start + chrono::Duration::seconds(5 * i),
            device_time: None,
            received_at: Utc::now(),
            time_flags: vec![],
        })
        .collect();
    commit_as_crashed_server(&stack, 52, Content::Observations(readings)).await;
    assert!(spo2_alerts(&stack).await.is_empty());

    let mut server = stack.spawn_server_ready().await;
    mimamori_testkit::wait_until(Duration::from_secs(20), || async {
        !spo2_alerts(&stack).await.is_empty()
    })
    .await
    .expect("the restarted server evaluates what was committed before the crash");

    // Another restart replays nothing new: still one alert, raised once.
    server.kill().unwrap();
    let _ = server.wait();
    let mut server = stack.spawn_server_ready().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = spo2_alerts(&stack).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let raises: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_transition WHERE alert_id = $1 AND to_state = 'raised'",
    )
    .bind(&alerts[0].0)
    .fetch_one(stack.store.pool())
    .await
    .unwrap();
    assert_eq!(raises, 1);

    // The patient recovers: the restarted engine knows the condition and clears it (a high
    // alert nobody acknowledged stays latched as cleared-unacknowledged).
    let recovered = start + chrono::Duration::seconds(90);
    for i in 0..6 {
        gateway.push(oximetry(96.0, recovered + chrono::Duration::seconds(5 * i)));
    }
    gateway.drain(Duration::from_secs(30)).await;
    let cleared = mimamori_testkit::wait_until(Duration::from_secs(20), || async {
        spo2_alerts(&stack).await[0].1 == "cleared_unacknowledged"
    })
    .await;
    assert!(
        cleared.is_ok(),
        "alert not cleared: {:?}",
        spo2_alerts(&stack).await
    );
    assert_eq!(spo2_alerts(&stack).await.len(), 1);

    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_battery_reported_just_before_a_crash_is_alarmed_after_the_restart() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let mut gateway = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([61; 16])).await;
    gateway.push(oximetry(95.0, Utc::now() - chrono::Duration::seconds(30)));
    gateway.drain(Duration::from_secs(30)).await;
    server.kill().unwrap();
    let _ = server.wait();

    // The oximeter's last status before the crash: 7 %, committed, never evaluated.
    let status = StatusRecord {
        device_id: "pc60fw:AA:BB:CC:00:00:03".into(),
        at: Utc::now() - chrono::Duration::seconds(10),
        connected: true,
        battery_percent: Some(7),
        lead_off: None,
        signal_quality: None,
        firmware: None,
    };
    commit_as_crashed_server(&stack, 62, Content::Status(status)).await;
    assert!(alerts_of(&stack, "battery_low").await.is_empty());

    let mut server = stack.spawn_server_ready().await;
    let raised = mimamori_testkit::wait_until(Duration::from_secs(20), || async {
        alerts_of(&stack, "battery_low").await.len() == 1
    })
    .await;
    assert!(
        raised.is_ok(),
        "no low-battery alarm after the restart: {:?}",
        alerts_of(&stack, "battery_low").await
    );
    server.kill().unwrap();
    let _ = server.wait();
}
