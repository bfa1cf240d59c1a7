//! The dashboard in a real headless Chromium (dashboards/e2e/dashboard.test.mjs,
//! playwright-core driving Debian's /usr/bin/chromium) against this server over
//! simulated patients. Screenshots land in `artifacts/e2e/` (git-ignored).
//! Needs `scripts/install-test-deps` (steps 50 and 55) to have run.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mimamori_server::http::demo::simulated_state;
use mimamori_server::http::{HttpConfig, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_headless_chromium() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let e2e = repo.join("dashboards/e2e");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "browser test dependencies missing: run scripts/install-test-deps"
    );
    let (state, sim) = simulated_state(HttpConfig::default(), 11).await.unwrap();
    // A deterioration every few seconds, so the test sees one quickly.
    let simulation = tokio::spawn(sim.run(Some(Duration::from_secs(5))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    let output = tokio::process::Command::new("node")
        .arg("dashboard.test.mjs")
        .current_dir(&e2e)
        .env("BASE_URL", &base)
        .env("ARTEFACTS", repo.join("artifacts/e2e"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("browser test timed out")
        .unwrap();
    let _ = stop.send(());
    simulation.abort();
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("dashboard e2e: all steps passed"),
        "{stdout}"
    );
}
