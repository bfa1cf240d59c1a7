//! The dashboard in a real headless Chromium (dashboards/e2e/dashboard.test.mjs, playwright-core
//! driving Debian's /usr/bin/chromium) against the real server: `mimamori-server serve` on the
//! harness's Mosquitto (TLS, ACL) and TimescaleDB with the demo registry, fed by gateways that
//! stream a synthetic ECG and oximetry and then send a blood pressure of 82 mm[Hg] (a scripted
//! deterioration the alert engine must raise as a high-priority alert).
//! Screenshots land in `artifacts/e2e/` (git-ignored). Needs `scripts/install-test-deps`
//! (steps 50 and 55) to have run.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use common::{Stack, TestGateway, blood_pressure, device, ecg_chunk, observation};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::SynthConfig;
use mimamori_wire::{Body, Epoch, ObservationBatch, VitalSign};

/// Samples per ECG chunk (0.2 s at 250 Hz), the rate the Checkme streams at.
const CHUNK: usize = 50;
/// The deterioration comes this far into the stream.
const DETERIORATE_AFTER: Duration = Duration::from_secs(8);

/// Streams p-0001's home in real time until aborted: ECG every 0.2 s, SpO2 every second, and once,
/// after [`DETERIORATE_AFTER`], a low blood pressure.
async fn stream_home(mut gateway: TestGateway) {
    let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 21)
        .heart_rate_bpm(72.0)
        .generate_counts(600.0)
        .unwrap();
    let start = Utc::now();
    let began = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut deteriorated = false;
    for (i, chunk) in samples.chunks(CHUNK).enumerate() {
        tick.tick().await;
        gateway.push(ecg_chunk(
            "checkme-pro:CP0001",
            1,
            (i * CHUNK) as u64,
            start,
            chunk,
        ));
        if i % 5 == 0 {
            gateway.push(Body::Observations(ObservationBatch {
                device: device("checkme-pro:CP0001", "checkme-pro"),
                clock_synced: true,
                observations: vec![observation(VitalSign::Spo2, 96.0, Utc::now())],
            }));
        }
        if !deteriorated && began.elapsed() >= DETERIORATE_AFTER {
            deteriorated = true;
            gateway.push(blood_pressure(82.0, Some(1), Utc::now()));
        }
        gateway.publish_new().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_headless_chromium() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let e2e = repo.join("dashboards/e2e");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "browser test dependencies missing: run scripts/install-test-deps"
    );
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let gateway = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([77; 16])).await;
    let home = tokio::spawn(stream_home(gateway));

    let output = tokio::process::Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(&e2e)
        .env("BASE_URL", format!("http://{}", stack.http))
        .env("ARTEFACTS", repo.join("artifacts/e2e"))
        .env("OWN_PATIENT", "p-0001")
        .env("FOREIGN_PATIENT", "p-0004")
        .env("MIN_TILES", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("browser test timed out")
        .unwrap();
    home.abort();
    server.kill().unwrap();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
        stack.server_log()
    );
    assert!(
        stdout.contains("dashboard e2e: all steps passed"),
        "{stdout}"
    );
}
