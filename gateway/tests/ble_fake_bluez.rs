//! End to end without a radio: a fake `org.bluez` (tests/fake_bluez/fake_bluez.py, dbus-fast) on a
//! private D-Bus system bus advertises a BP monitor, a pulse oximeter and a neighbour's BP monitor.
//! The real `mimamori-gateway run` (btleplug → BlueZ D-Bus API) scans, connects to the two allowed
//! devices only, subscribes, sets the BP monitor's clock, decodes, stores in its outbox and
//! publishes to a real Mosquitto, where the acking test peer stores and acknowledges.
//!
//! The gateway runs as a child process with `DBUS_SYSTEM_BUS_ADDRESS` pointing at the private bus:
//! libdbus reads that address once per process, and the child gets a bus of its own.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mimamori_testkit::{Mosquitto, wait_until};
use mimamori_wire::{Body, VitalSign};
use support::acking_test_server::AckingTestServer;

/// Kills a child process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Collects a child's stdout lines.
fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn private_system_bus(dir: &std::path::Path) -> (Proc, String) {
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_type="method_call"/><allow send_type="signal"/><allow send_type="method_return"/><allow send_type="error"/>
    <allow receive_type="method_call"/><allow receive_type="signal"/><allow receive_type="method_return"/><allow receive_type="error"/>
  </policy>
</busconfig>"#,
            dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon runs (scripts/install-test-deps installs it)");
    let mut address = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    (Proc(child), address.trim().to_owned())
}

fn venv_python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (step 45-gateway-python)",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_connect_subscribe_decode_outbox_mqtt_for_allowed_devices_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_bus, bus_address) = private_system_bus(dir.path());

    let mut fake = Command::new(venv_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fake_bluez/fake_bluez.py"
        ))
        .arg(&bus_address)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fake_lines = collect_lines(&mut fake);
    let _fake = Proc(fake);
    wait_until(Duration::from_secs(10), || async {
        fake_lines.lock().unwrap().iter().any(|l| l == "READY")
    })
    .await
    .expect("fake BlueZ ready");

    let broker = Mosquitto::start().unwrap();
    let creds = broker.add_gateway("gw-ble").unwrap();
    let server = AckingTestServer::start(&broker);
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "outbox_dir = \"{}\"\n\n[mqtt]\nendpoint_host = \"127.0.0.1\"\nendpoint_port = {}\ngateway_id = \"gw-ble\"\nreconnect_min_ms = 100\n\n[ble]\nreconnect_min_ms = 200\n\n[[devices]]\naddress = \"AA:BB:CC:DD:EE:01\"\n\n[[devices]]\naddress = \"aa:bb:cc:dd:ee:02\"\n",
            dir.path().join("outbox").display(),
            broker.plain_port()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let gateway = Command::new(env!("CARGO_BIN_EXE_mimamori-gateway"))
        .args(["run", "--config"])
        .arg(&config)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_address)
        .env("MIMAMORI_MQTT_PASSWORD", &creds.password)
        .env("RUST_LOG", "info,mimamori_gateway=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _gateway = Proc(gateway);

    let values = |model: &str, vital: VitalSign| -> Vec<f64> {
        server
            .bodies("gw-ble")
            .iter()
            .filter_map(|b| match b {
                Body::Observations(batch) if batch.device.model == model => Some(
                    batch
                        .observations
                        .iter()
                        .filter(|o| o.vital == vital)
                        .map(|o| o.value)
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let done = wait_until(Duration::from_secs(60), || async {
        values("ble-blood-pressure", VitalSign::SystolicBp).len() == 2
            && !values("ble-pulse-oximeter", VitalSign::Spo2).is_empty()
    })
    .await;
    let gateway_log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    assert!(
        done.is_ok(),
        "readings did not arrive.\nfake: {:?}\ngateway log:\n{gateway_log}",
        fake_lines.lock().unwrap()
    );

    assert_eq!(
        values("ble-blood-pressure", VitalSign::SystolicBp),
        vec![138.0, 128.0]
    );
    assert_eq!(
        values("ble-blood-pressure", VitalSign::HeartRate),
        vec![72.0, 58.0]
    );
    assert_eq!(values("ble-pulse-oximeter", VitalSign::Spo2), vec![96.0]);
    assert_eq!(
        values("ble-pulse-oximeter", VitalSign::PulseRateOximetry),
        vec![61.0]
    );
    let batteries: Vec<(String, Option<u8>)> = server
        .bodies("gw-ble")
        .iter()
        .filter_map(|b| {
            if let Body::DeviceStatus(s) = b {
                s.battery_percent.map(|p| (s.device.model.clone(), Some(p)))
            } else {
                None
            }
        })
        .collect();
    assert!(
        batteries.contains(&("ble-blood-pressure".into(), Some(85))),
        "{batteries:?}"
    );
    assert!(
        batteries.contains(&("ble-pulse-oximeter".into(), Some(64))),
        "{batteries:?}"
    );

    let fake = fake_lines.lock().unwrap().clone();
    assert!(
        fake.contains(&"CONNECT AA:BB:CC:DD:EE:01".to_owned()),
        "{fake:?}"
    );
    assert!(
        fake.contains(&"CONNECT AA:BB:CC:DD:EE:02".to_owned()),
        "{fake:?}"
    );
    assert!(
        !fake
            .iter()
            .any(|l| l.starts_with("CONNECT AA:BB:CC:DD:EE:09")),
        "the neighbour's device must never be connected: {fake:?}"
    );
    assert!(
        fake.iter()
            .any(|l| l.starts_with("WRITE AA:BB:CC:DD:EE:01 00002a08-")),
        "the BP monitor's clock is set: {fake:?}"
    );
    assert!(
        gateway_log.contains("not on this gateway's allow-list"),
        "{gateway_log}"
    );
    assert!(gateway_log.contains("AA:BB:CC:DD:EE:09"), "{gateway_log}");
}
