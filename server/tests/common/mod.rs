//! Shared parts of the ingest tests: a real broker and database with the demo registry, the
//! server binary as a child process, and a test gateway that keeps an outbox and republishes
//! until the server's end-to-end ack covers it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mimamori_server::oncall::rota::RotaFile;
use mimamori_server::registry::RegistryFile;
use mimamori_server::registry::directory::RoutingRecords;
use mimamori_server::sinks::timescale::TimescaleStore;
use mimamori_server::storage::Storage as _;
use mimamori_testkit::{Mosquitto, Postgres, ScratchDir, Transport};
use mimamori_wire::{
    Body, Channel, DeviceRef, EcgChunk, Envelope, Epoch, GatewayId, Observation, ObservationBatch,
    StoredAck, Topic, VitalSign,
};
use rumqttc::{AsyncClient, Event, Incoming, QoS};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

/// A server the test started: killed when dropped, so neither a test that ends without killing it
/// nor a failing one leaves a server running.
#[derive(Debug)]
pub struct ServerProcess(Child);

impl std::ops::Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Already gone when the test killed it itself.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's log line once its subscription is in place.
const SUBSCRIBED: &str = "Subscribed to gateway uplinks.";

pub const DEMO_REGISTRY: &str = include_str!("../../../fixtures/registry/demo.toml");
/// A patient added after the demo registry, with a gateway and a lent oximeter.
pub const NEW_PATIENT: &str = include_str!("../../../fixtures/registry/new-patient.toml");
/// The oximeter lent to [`NEW_PATIENT`].
pub const NEW_PATIENTS_OXIMETER: &str = "pc60fw:AA:BB:CC:00:01:00";
/// The on-call rota over the demo registry.
pub const ROTA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/oncall/setagaya-rota.toml"
);

/// The demo registry as on-call routing reads it, and the fixture rota.
pub fn demo_routing_records_and_rota() -> (RoutingRecords, RotaFile) {
    let records = RegistryFile::parse(DEMO_REGISTRY)
        .unwrap()
        .routing_records();
    (records, RotaFile::load(ROTA.as_ref()).unwrap())
}

/// Broker + database + config file for one test.
pub struct Stack {
    pub mosquitto: Mosquitto,
    pub db_url: String,
    pub store: TimescaleStore,
    pub dir: ScratchDir,
    pub config_path: PathBuf,
    /// Where the server's HTTP edge listens.
    pub http: std::net::SocketAddr,
}

impl Stack {
    pub async fn start() -> Self {
        let db_url = Postgres::shared()
            .expect("postgres")
            .create_database()
            .unwrap();
        Self::start_with(
            Mosquitto::start().expect("mosquitto"),
            &db_url,
            4,
            "[ingest]\nbatch_max_delay_ms = 20\n",
        )
        .await
    }

    /// A stack on a given broker and database: migrates it, seeds the demo registry, and writes
    /// the server's config (`[mqtt]` and `[storage]` with `pool` connections, then `extra` TOML).
    pub async fn start_with(mosquitto: Mosquitto, db_url: &str, pool: u32, extra: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = TimescaleStore::connect(db_url, 4).await.unwrap();
        store.migrate().await.unwrap();
        RegistryFile::parse(DEMO_REGISTRY)
            .unwrap()
            .apply(&store, &mimamori_server::registry::Directory::from(&store))
            .await
            .unwrap();
        let dir = ScratchDir::new("mmk-ingest-").unwrap();
        let config_path = dir.path().join("server.toml");
        let backend = mosquitto.backend();
        // A free port now; should another process take it first, the server picks another and
        // the tests that use HTTP would fail loudly, never silently.
        let http = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let config = format!(
            r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "mimamori-server-test"
username = "{user}"
password = "{password}"
ca_file = "{ca}"
keep_alive_s = 5

[storage]
backend = "postgres"
url = "{db_url}"
max_connections = {pool}

[http]
listen = "{http}"

{extra}"#,
            port = mosquitto.tls_port(),
            user = backend.username,
            password = backend.password,
            ca = mosquitto.ca_file().display(),
        );
        std::fs::write(&config_path, config).unwrap();
        Self {
            mosquitto,
            db_url: db_url.to_owned(),
            store,
            dir,
            config_path,
            http,
        }
    }

    /// Starts `mimamori-server serve` as a child process (killed when the handle is dropped).
    pub fn spawn_server(&self) -> ServerProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(ServerProcess)
            .expect("server binary starts")
    }

    /// Starts the server and waits until it has subscribed (as many times as it has started).
    pub async fn spawn_server_ready(&self) -> ServerProcess {
        let subscribed_before = self.server_log().matches(SUBSCRIBED).count();
        let child = self.spawn_server();
        mimamori_testkit::wait_until(Duration::from_secs(30), || async {
            self.server_log().matches(SUBSCRIBED).count() > subscribed_before
        })
        .await
        .unwrap_or_else(|_| panic!("server did not subscribe:\n{}", self.server_log()));
        child
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `mimamori-server` with `args` and the stack's config; returns stdout.
    pub fn run_cli(&self, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

/// A gateway as the server sees one: an outbox of encoded messages, published until acked.
pub struct TestGateway {
    pub id: GatewayId,
    pub epoch: Epoch,
    client: AsyncClient,
    acked: watch::Receiver<Option<StoredAck>>,
    /// (channel, payload) by sequence.
    pub outbox: Vec<(Channel, Vec<u8>)>,
    published_through: usize,
}

impl TestGateway {
    pub async fn connect(stack: &Stack, id: &str, epoch: Epoch) -> Self {
        let credentials = stack.mosquitto.add_gateway(id).unwrap();
        let mut options = stack
            .mosquitto
            .mqtt_options(&format!("{id}-{epoch}"), &credentials, Transport::Tls)
            .unwrap();
        options
            .set_keep_alive(Duration::from_secs(5))
            // Room for the oversized payload of the bad-input test (the server must refuse it).
            .set_max_packet_size(1024 * 1024, 1024 * 1024);
        let (client, mut event_loop) = AsyncClient::new(options, 100_000);
        let gateway = GatewayId::new(id).unwrap();
        let ack_topic = Topic::new(gateway.clone(), Channel::Ack).to_string();
        let (tx, rx) = watch::channel(None);
        let subscriber = client.clone();
        let topic = ack_topic.clone();
        tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = subscriber.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == topic => {
                        if let Ok(ack) = StoredAck::decode(&p.payload)
                            && ack.epoch == epoch
                        {
                            tx.send_modify(|current: &mut Option<StoredAck>| {
                                if current.as_ref().is_none_or(|c: &StoredAck| {
                                    c.stored_through < ack.stored_through
                                }) {
                                    *current = Some(ack);
                                }
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Self {
            id: gateway,
            epoch,
            client,
            acked: rx,
            outbox: Vec::new(),
            published_through: 0,
        }
    }

    /// Appends a message to the outbox; returns its sequence.
    pub fn push(&mut self, body: Body) -> u64 {
        let seq = self.outbox.len() as u64;
        let channel = body.channel();
        let envelope = Envelope::new(self.epoch, seq, Utc::now(), body);
        self.outbox
            .push((channel, envelope.encode().expect("valid message")));
        seq
    }

    /// Appends a raw payload (possibly invalid) under the next sequence.
    pub fn push_raw(&mut self, channel: Channel, payload: Vec<u8>) -> u64 {
        self.outbox.push((channel, payload));
        self.outbox.len() as u64 - 1
    }

    /// Publishes outbox entries `from..to` (again).
    pub async fn publish_range(&self, from: usize, to: usize) {
        for (channel, payload) in &self.outbox[from..to] {
            let topic = Topic::new(self.id.clone(), *channel).to_string();
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
    }

    /// Publishes what was not published yet from a background task, one message every `gap`,
    /// so that a crash can come while the stream is still flowing.
    pub fn publish_paced(&mut self, gap: Duration) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        let messages: Vec<(String, Vec<u8>)> = self.outbox[self.published_through..]
            .iter()
            .map(|(channel, payload)| {
                (
                    Topic::new(self.id.clone(), *channel).to_string(),
                    payload.clone(),
                )
            })
            .collect();
        self.published_through = self.outbox.len();
        tokio::spawn(async move {
            for (topic, payload) in messages {
                let _ = client
                    .publish(topic, QoS::AtLeastOnce, false, payload)
                    .await;
                tokio::time::sleep(gap).await;
            }
        })
    }

    /// Publishes what was not published yet.
    pub async fn publish_new(&mut self) {
        self.publish_range(self.published_through, self.outbox.len())
            .await;
        self.published_through = self.outbox.len();
    }

    /// The server's latest ack for this epoch.
    pub fn acked_through(&self) -> Option<u64> {
        self.acked.borrow().as_ref().map(|a| a.stored_through)
    }

    /// Publishes new messages, then waits until the ack covers the whole outbox.
    pub async fn drain(&mut self, timeout: Duration) {
        self.publish_new().await;
        let last = self.outbox.len() as u64 - 1;
        self.wait_acked(last, timeout).await;
    }

    /// Waits until the ack reaches `seq`, republishing everything above the ack whenever it
    /// stops advancing for a while (as the real gateway's outbox does: a broker may have dropped
    /// what it PUBACKed, or had no subscriber yet).
    pub async fn wait_acked(&self, seq: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut acked = self.acked.clone();
        loop {
            let through = self.acked_through();
            if through.is_some_and(|t| t >= seq) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway {} acked through {through:?}, waiting for {seq}",
                self.id
            );
            let progressed = tokio::time::timeout(Duration::from_secs(3), async {
                loop {
                    if acked.changed().await.is_err() {
                        return;
                    }
                    if acked.borrow().as_ref().map(|a| a.stored_through) != through {
                        return;
                    }
                }
            })
            .await
            .is_ok();
            if !progressed {
                let from = self.acked_through().map_or(0, |t| t as usize + 1);
                self.publish_range(from, self.published_through).await;
            }
        }
    }
}

pub fn device(id: &str, model: &str) -> DeviceRef {
    DeviceRef {
        id: id.to_owned(),
        model: model.to_owned(),
        ble_address: None,
    }
}

pub fn observation(vital: VitalSign, value: f64, at: DateTime<Utc>) -> Observation {
    Observation {
        vital,
        unit: vital.unit(),
        value,
        measured_at: at,
        device_time: None,
        received_at: at,
        time_flags: vec![],
        device_user: None,
    }
}

/// SpO2 and pulse from the oximeter lent to p-0002.
pub fn oximetry(spo2: f64, at: DateTime<Utc>) -> Body {
    oximetry_of("pc60fw:AA:BB:CC:00:00:03", spo2, at)
}

/// SpO2 and pulse from the PC-60FW oximeter `device_id`.
pub fn oximetry_of(device_id: &str, spo2: f64, at: DateTime<Utc>) -> Body {
    Body::Observations(ObservationBatch {
        device: device(device_id, "pc60fw"),
        clock_synced: true,
        observations: vec![
            observation(VitalSign::Spo2, spo2, at),
            observation(VitalSign::PulseRateOximetry, 70.0, at),
        ],
    })
}

pub fn blood_pressure(systolic: f64, user: Option<u8>, at: DateTime<Utc>) -> Body {
    let mut obs = vec![
        observation(VitalSign::SystolicBp, systolic, at),
        observation(VitalSign::DiastolicBp, 80.0, at),
    ];
    for o in &mut obs {
        o.device_user = user;
    }
    Body::Observations(ObservationBatch {
        device: device("ble-blood-pressure:UA0001", "ble-blood-pressure"),
        clock_synced: true,
        observations: obs,
    })
}

pub fn ecg_chunk(
    device_id: &str,
    stream_id: u64,
    first_sample_index: u64,
    start: DateTime<Utc>,
    samples: &[i16],
) -> Body {
    let at = start + chrono::Duration::milliseconds((first_sample_index * 4) as i64);
    Body::Ecg(EcgChunk {
        device: device(device_id, "checkme-pro"),
        lead: "I".into(),
        sample_rate_hz: 250.0,
        uv_per_count: 5.0,
        stream_id,
        first_sample_index,
        first_sample_at: at,
        device_time: None,
        received_at: at,
        clock_synced: true,
        lead_off: false,
        samples: samples.to_vec(),
    })
}

/// One HTTP/1.1 request over a fresh connection; returns status, headers and body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n{cookie}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// Logs in with the demo password; returns the session cookie.
pub async fn log_in(addr: std::net::SocketAddr, login: &str) -> String {
    let (status, head, _) = http(
        addr,
        "POST",
        "/api/v1/session",
        None,
        Some(&json!({"login": login, "password": format!("mimamori-{login}")})),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
