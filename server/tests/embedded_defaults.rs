//! `serve` on embedded defaults (rumqttd on loopback + SQLite), as the one-command demo runs it:
//! a gateway publishes, the reading is stored once in SQLite and the end-to-end ack comes back.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use mimamori_server::registry::RegistryFile;
use mimamori_server::sinks::sqlite::SqliteStore;
use mimamori_server::storage::Storage as _;
use mimamori_wire::{
    Body, Channel, DeviceRef, Envelope, Epoch, GatewayId, Observation, ObservationBatch, StoredAck,
    Topic, VitalSign,
};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_and_sqlite_store_and_acknowledge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite3");
    let store = SqliteStore::open(&db).await.unwrap();
    store.migrate().await.unwrap();
    RegistryFile::parse(include_str!("../../fixtures/registry/demo.toml"))
        .unwrap()
        .apply(&store, &mimamori_server::registry::Directory::from(&store))
        .await
        .unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[embedded_broker]\nlisten = \"127.0.0.1:0\"\n\n[storage]\nbackend = \"sqlite\"\npath = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first line names the broker's address.
    let mut line = String::new();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep reading what the server prints after that line (the dashboard address, the demo
    // accounts): a closed pipe would make its next print fail.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let address = line.trim().rsplit("mqtt://").next().unwrap().to_owned();
    let (host, port) = address.rsplit_once(':').unwrap();

    let gateway = GatewayId::new("gw-p0002").unwrap();
    let epoch = Epoch::from_bytes([11; 16]);
    let mut options = MqttOptions::new("gw-p0002", host, port.parse().unwrap());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(options, 100);
    let now = Utc::now();
    let body = Body::Observations(ObservationBatch {
        device: DeviceRef {
            id: "pc60fw:AA:BB:CC:00:00:03".into(),
            model: "pc60fw".into(),
            ble_address: None,
        },
        clock_synced: true,
        observations: vec![Observation {
            vital: VitalSign::Spo2,
            unit: VitalSign::Spo2.unit(),
            value: 95.0,
            measured_at: now,
            device_time: None,
            received_at: now,
            time_flags: vec![],
            device_user: None,
        }],
    });
    let payload = Envelope::new(epoch, 0, now, body).encode().unwrap();
    let ack_topic = Topic::new(gateway.clone(), Channel::Ack).to_string();
    let obs_topic = Topic::new(gateway, Channel::Observations).to_string();
    client
        .subscribe(&ack_topic, QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut republish = tokio::time::interval(Duration::from_millis(500));
    let ack = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            tokio::select! {
                // Publish until acked: the server may subscribe after our first publish.
                _ = republish.tick() => {
                    client
                        .publish(&obs_topic, QoS::AtLeastOnce, false, payload.clone())
                        .await
                        .unwrap();
                }
                event = event_loop.poll() => match event {
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == ack_topic => {
                        return StoredAck::decode(&p.payload).unwrap();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
            }
        }
    })
    .await
    .expect("an end-to-end ack from the embedded stack");
    assert_eq!((ack.epoch, ack.stored_through), (epoch, 0));
    let stored = store
        .observations(
            "p-0002",
            VitalSign::Spo2,
            now - chrono::Duration::seconds(1),
            now + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    server.kill().unwrap();
    let _ = server.wait();
}
