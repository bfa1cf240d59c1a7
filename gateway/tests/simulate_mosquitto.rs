//! `mimamori-gateway simulate` end to end against a real Mosquitto: two homes, each logging in as
//! its own gateway, publish a scenario's hour of vitals and ECG, and everything is acknowledged.

mod support;

use std::time::Duration;

use mimamori_testkit::{Mosquitto, wait_until};
use mimamori_wire::{Body, VitalSign};
use support::acking_test_server::AckingTestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simulated_homes_publish_through_their_own_gateways() {
    let broker = Mosquitto::start().unwrap();
    for id in ["sim-home-0000", "sim-home-0001"] {
        broker.add_user(id, "sim-secret").unwrap();
    }
    let server = AckingTestServer::start(&broker);
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/scenarios/fever-sepsis.toml"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mimamori-gateway"))
        .args([
            "simulate",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", broker.plain_port()),
        ])
        .args([
            "--patients",
            "2",
            "--speed",
            "1800",
            "--duration-h",
            "1",
            "--password",
            "sim-secret",
        ])
        .args(["--scenario", scenario])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["unacknowledged"], 0, "{summary}");

    for gw in ["sim-home-0000", "sim-home-0001"] {
        wait_until(Duration::from_secs(10), || async {
            !server.bodies(gw).is_empty()
        })
        .await
        .unwrap();
        let bodies = server.bodies(gw);
        let ecg_samples: usize = bodies
            .iter()
            .map(|b| {
                if let Body::Ecg(c) = b {
                    c.samples.len()
                } else {
                    0
                }
            })
            .sum();
        assert_eq!(ecg_samples, 3600 * 125, "{gw}: one hour of ECG at 125 Hz");
        let spo2 = bodies
            .iter()
            .filter(|b| matches!(b, Body::Observations(batch) if batch.observations.iter().any(|o| o.vital == VitalSign::Spo2)))
            .count();
        assert_eq!(spo2, 12, "{gw}: SpO2 every 5 minutes");
        assert!(
            bodies.iter().any(|b| matches!(b, Body::DeviceStatus(_))),
            "{gw}"
        );
    }
    // The goodbye is published as the simulator exits: give the broker time to deliver it.
    let _ = wait_until(Duration::from_secs(10), || async {
        server.presence("sim-home-0000") == Some(false)
    })
    .await;
    assert_eq!(
        server.presence("sim-home-0000"),
        Some(false),
        "goodbye presence after the run"
    );
}
