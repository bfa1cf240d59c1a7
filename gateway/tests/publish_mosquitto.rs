//! The publisher against a real Mosquitto (testkit): TLS, the ACL, a broker crash, and fresh
//! sessions. In every case the outbox keeps a message until the server's end-to-end ack, so
//! nothing is lost. The "server" is the test peer in `support/acking_test_server.rs`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mimamori_gateway::outbox::{Outbox, OutboxConfig, SharedOutbox};
use mimamori_gateway::publish::{MqttConfig, Publisher, PublisherState};
use mimamori_testkit::{Mosquitto, MosquittoConfig, wait_until};
use mimamori_wire::{Body, DeviceRef, GatewayId, Observation, ObservationBatch, Ucum, VitalSign};
use support::acking_test_server::AckingTestServer;
use tokio::sync::{oneshot, watch};

const PATIENCE: Duration = Duration::from_secs(30);

fn reading(i: u64) -> Body {
    let now = Utc::now();
    Body::Observations(ObservationBatch {
        device: DeviceRef {
            id: "ble-blood-pressure:AA:BB:CC:DD:EE:01".into(),
            model: "ble-blood-pressure".into(),
            ble_address: None,
        },
        clock_synced: true,
        observations: vec![Observation {
            vital: VitalSign::HeartRate,
            unit: Ucum::PerMinute,
            value: 60.0 + (i % 40) as f64,
            measured_at: now,
            device_time: None,
            received_at: now,
            time_flags: vec![],
            device_user: None,
        }],
    })
}

fn store(outbox: &SharedOutbox, range: std::ops::Range<u64>) {
    let bodies: Vec<Body> = range.map(reading).collect();
    outbox.store(&bodies).unwrap();
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    state: watch::Receiver<PublisherState>,
}

impl Running {
    fn start(config: MqttConfig, outbox: Arc<SharedOutbox>) -> Self {
        let publisher = Publisher::new(config, outbox).unwrap();
        let state = publisher.state();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(publisher.run(async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task,
            state,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = (&mut self.task).await;
    }

    /// Kills the task without a goodbye, as a crash would (the socket closes, no DISCONNECT).
    fn crash(self) {
        self.task.abort();
    }
}

fn config(broker: &Mosquitto, gateway: &str, password: &str) -> MqttConfig {
    let mut c = MqttConfig::new(
        GatewayId::new(gateway).unwrap(),
        password,
        "127.0.0.1",
        broker.plain_port(),
    );
    c.ack_timeout_ms = 2_000;
    c.reconnect_min_ms = 50;
    c.reconnect_max_ms = 500;
    c.keep_alive_s = 5;
    c
}

fn open_outbox(dir: &std::path::Path) -> Arc<SharedOutbox> {
    SharedOutbox::new(Outbox::open(dir, OutboxConfig::default()).unwrap())
}

async fn all_acked(outbox: &SharedOutbox, n: u64) {
    wait_until(PATIENCE, || async {
        outbox.with(|o| o.acked_through()) == Some(n - 1)
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "outbox not acked through {}: {:?}",
            n - 1,
            outbox.with(|o| o.status())
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_delivery_is_removed_only_on_end_to_end_ack_and_will_marks_offline() {
    let broker = Mosquitto::start().unwrap();
    let creds = broker.add_gateway("gw-tls").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, broker.ca_pem()).unwrap();
    let outbox = open_outbox(&dir.path().join("outbox"));
    let epoch = outbox.with(|o| o.epoch());
    store(&outbox, 0..300);

    let server = AckingTestServer::start(&broker);
    let mut cfg = config(&broker, "gw-tls", &creds.password);
    cfg.endpoint_port = broker.tls_port();
    cfg.ca_file = Some(ca);
    let publisher = Running::start(cfg, outbox.clone());
    all_acked(&outbox, 300).await;
    assert_eq!(server.stored("gw-tls", epoch), (0..300).collect::<Vec<_>>());
    assert_eq!(outbox.with(|o| o.status().unacknowledged), 0);
    wait_until(PATIENCE, || async {
        server.presence("gw-tls") == Some(true)
    })
    .await
    .unwrap();

    // A crash (no DISCONNECT) makes the broker publish the retained Last Will.
    publisher.crash();
    wait_until(PATIENCE, || async {
        server.presence("gw-tls") == Some(false)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_refused_by_the_acl_are_pubacked_yet_kept_until_delivered() {
    // A broker whose ACL gives gateways a different namespace: every publish is PUBACKed and
    // dropped (MQTT 3.1.1), and no ack can come back.
    let wrong = Mosquitto::start_with(MosquittoConfig {
        topic_prefix: "elsewhere".into(),
        ..MosquittoConfig::default()
    })
    .unwrap();
    let creds = wrong.add_gateway("gw-acl").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let epoch = outbox.with(|o| o.epoch());
    store(&outbox, 0..50);
    let _server_on_wrong = AckingTestServer::start(&wrong);
    let publisher = Running::start(config(&wrong, "gw-acl", &creds.password), outbox.clone());
    let mut state = publisher.state.clone();
    state.wait_for(|s| s.pubacks >= 50).await.unwrap();
    publisher.stop().await;
    assert_eq!(
        outbox.with(|o| (o.acked_through(), o.status().unacknowledged)),
        (None, 50),
        "PUBACK removed nothing"
    );

    // The same outbox against a correctly configured broker: all of it arrives.
    let right = Mosquitto::start().unwrap();
    let creds = right.add_gateway("gw-acl").unwrap();
    let server = AckingTestServer::start(&right);
    let publisher = Running::start(config(&right, "gw-acl", &creds.password), outbox.clone());
    all_acked(&outbox, 50).await;
    assert_eq!(server.stored("gw-acl", epoch), (0..50).collect::<Vec<_>>());
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_kill9_and_restart_into_a_fresh_session_loses_nothing() {
    let mut broker = Mosquitto::start().unwrap();
    let creds = broker.add_gateway("gw-crash").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let epoch = outbox.with(|o| o.epoch());
    let server = AckingTestServer::start(&broker);
    let publisher = Running::start(config(&broker, "gw-crash", &creds.password), outbox.clone());

    store(&outbox, 0..200);
    wait_until(PATIENCE, || async {
        outbox.with(|o| o.acked_through()).is_some_and(|t| t >= 20)
    })
    .await
    .unwrap();
    broker.kill9().unwrap();
    // Readings keep arriving while the broker is down.
    for i in 0..4 {
        store(&outbox, 200 + i * 50..250 + i * 50);
    }
    broker.restart().unwrap();
    all_acked(&outbox, 400).await;
    assert_eq!(
        server.stored("gw-crash", epoch),
        (0..400).collect::<Vec<_>>()
    );
    assert!(server.deliveries() >= 400);
    let state = publisher.state.borrow().clone();
    assert!(state.connections >= 2, "{state:?}");
    publisher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_resends_what_the_server_never_stored() {
    // First run: no server is listening, so nothing is acknowledged; the gateway process dies.
    let broker = Mosquitto::start().unwrap();
    let creds = broker.add_gateway("gw-restart").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = open_outbox(dir.path());
    let epoch = outbox.with(|o| o.epoch());
    store(&outbox, 0..80);
    let publisher = Running::start(
        config(&broker, "gw-restart", &creds.password),
        outbox.clone(),
    );
    let mut state = publisher.state.clone();
    state.wait_for(|s| s.pubacks >= 80).await.unwrap();
    publisher.crash();
    drop(outbox);

    // Second run: the outbox is reopened from disk, a fresh session, and the server is there.
    let outbox = open_outbox(dir.path());
    assert_eq!(
        outbox.with(|o| (o.epoch(), o.status().unacknowledged)),
        (epoch, 80)
    );
    let server = AckingTestServer::start(&broker);
    let publisher = Running::start(
        config(&broker, "gw-restart", &creds.password),
        outbox.clone(),
    );
    all_acked(&outbox, 80).await;
    assert_eq!(
        server.stored("gw-restart", epoch),
        (0..80).collect::<Vec<_>>()
    );
    publisher.stop().await;
}
