//! The harness's Mosquitto: TLS with the test CA, passwords, per-gateway ACL, persistence
//! across a crash. Every check of refusal asserts that nothing was delivered, not just a code.

use std::time::Duration;

use mimamori_testkit::{HarnessError, Mosquitto, MosquittoConfig, Transport};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Publish, QoS,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Generous for a loaded 2-core machine; only reached when a test is failing.
const EXPECTED_WITHIN: Duration = Duration::from_secs(10);
/// How long after the ordering marker we keep listening for a message that must not come.
const SILENCE_WINDOW: Duration = Duration::from_millis(300);

/// A connected client whose event loop runs in a task and reports incoming packets.
struct Client {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Packet>,
}

impl Client {
    /// Connects and waits for a successful CONNACK.
    async fn connect(options: MqttOptions) -> Result<Self, ConnectionError> {
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let connack = timeout(EXPECTED_WITHIN, async {
            loop {
                match event_loop.poll().await? {
                    Event::Incoming(Packet::ConnAck(_)) => return Ok::<(), ConnectionError>(()),
                    _ => continue,
                }
            }
        });
        connack.await.expect("CONNACK within the deadline")?;
        let (sender, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = event_loop.poll().await {
                if let Event::Incoming(packet) = event
                    && sender.send(packet).is_err()
                {
                    break;
                }
            }
        });
        Ok(Self { client, incoming })
    }

    /// The next incoming packet `pick` accepts, skipping others, or `None` after `within`.
    async fn next<T>(&mut self, within: Duration, pick: impl Fn(Packet) -> Option<T>) -> Option<T> {
        timeout(within, async {
            while let Some(packet) = self.incoming.recv().await {
                if let Some(wanted) = pick(packet) {
                    return Some(wanted);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue SUBSCRIBE");
        self.next(EXPECTED_WITHIN, |packet| {
            matches!(packet, Packet::SubAck(_)).then_some(())
        })
        .await
        .expect("SUBACK");
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    async fn publish_acked(&mut self, topic: &str, payload: &'static [u8]) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("queue PUBLISH");
        self.next(EXPECTED_WITHIN, |packet| {
            matches!(packet, Packet::PubAck(_)).then_some(())
        })
        .await
        .expect("PUBACK");
    }

    async fn next_publish(&mut self, within: Duration) -> Option<Publish> {
        self.next(within, |packet| match packet {
            Packet::Publish(publish) => Some(publish),
            _ => None,
        })
        .await
    }
}

fn start_broker() -> Mosquitto {
    Mosquitto::start().expect("mosquitto starts")
}

async fn connect_backend(broker: &Mosquitto, client_id: &str) -> Client {
    let options = broker
        .mqtt_options(client_id, broker.backend(), Transport::Plain)
        .expect("options");
    Client::connect(options).await.expect("backend connects")
}

/// Adds gateway user `name` and connects it with client id `name`.
async fn connect_gateway(broker: &Mosquitto, name: &str, transport: Transport) -> Client {
    let credentials = broker.add_gateway(name).expect("add gateway user");
    let options = broker
        .mqtt_options(name, &credentials, transport)
        .expect("options");
    Client::connect(options).await.expect("gateway connects")
}

#[track_caller]
fn assert_message(publish: &Publish, topic: &str, payload: &[u8]) {
    assert_eq!(
        (publish.topic.as_str(), &publish.payload[..]),
        (topic, payload)
    );
}

/// Asserts that the next message `client` receives is `marker` on `topic`, and that nothing
/// follows within the silence window: a message the ACL let through would have come before the
/// marker (see each caller for why), or at the latest right after it.
async fn assert_only_marker_arrives(client: &mut Client, topic: &str) {
    let first = client
        .next_publish(EXPECTED_WITHIN)
        .await
        .expect("marker arrives");
    assert_message(&first, topic, b"marker");
    let straggler = client.next_publish(SILENCE_WINDOW).await;
    assert!(
        straggler.is_none(),
        "delivered outside the ACL: {straggler:?}"
    );
}

#[tokio::test]
async fn gateway_over_tls_reaches_backend() {
    let broker = start_broker();
    let mut backend = connect_backend(&broker, "server").await;
    backend.subscribe("mimamori/v1/gw/+/#").await;
    let mut gateway = connect_gateway(&broker, "gw-1", Transport::Tls).await;

    gateway
        .publish_acked("mimamori/v1/gw/gw-1/obs", b"spo2=97")
        .await;

    let received = backend
        .next_publish(EXPECTED_WITHIN)
        .await
        .expect("backend receives");
    assert_message(&received, "mimamori/v1/gw/gw-1/obs", b"spo2=97");
    let ca_file = std::fs::read_to_string(broker.ca_file()).expect("CA file for other clients");
    assert_eq!(ca_file, broker.ca_pem());
}

#[tokio::test]
async fn wrong_password_and_anonymous_logins_are_refused_as_not_authorised() {
    let broker = start_broker();
    let gateway = broker.add_gateway("gw-1").expect("add gateway user");
    let wrong = mimamori_testkit::Credentials {
        password: format!("{}x", gateway.password),
        ..gateway.clone()
    };
    let mut attempts = vec![(
        "anonymous",
        MqttOptions::new("anon", "127.0.0.1", broker.plain_port()),
    )];
    for transport in [Transport::Plain, Transport::Tls] {
        let options = broker
            .mqtt_options("gw-1", &wrong, transport)
            .expect("options");
        attempts.push(("wrong password", options));
    }
    for (what, options) in attempts {
        let refusal = Client::connect(options).await.err();
        assert!(
            matches!(
                refusal,
                Some(ConnectionError::ConnectionRefused(
                    ConnectReturnCode::NotAuthorized
                ))
            ),
            "{what}: got {refusal:?}"
        );
    }
}

#[tokio::test]
async fn publish_outside_own_namespace_is_acked_but_never_delivered() {
    let broker = start_broker();
    let mut backend = connect_backend(&broker, "server").await;
    backend.subscribe("mimamori/v1/gw/#").await;
    let mut gateway = connect_gateway(&broker, "gw-1", Transport::Tls).await;

    // MQTT 3.1.1 has no way to refuse a PUBLISH: the broker acks it, then drops it.
    gateway
        .publish_acked("mimamori/v1/gw/gw-2/obs", b"forged")
        .await;
    // Mosquitto forwards one client's messages in order: had the forged one been forwarded, it
    // would arrive before this marker.
    gateway
        .publish_acked("mimamori/v1/gw/gw-1/obs", b"marker")
        .await;

    assert_only_marker_arrives(&mut backend, "mimamori/v1/gw/gw-1/obs").await;
}

#[tokio::test]
async fn gateway_never_receives_another_gateways_messages() {
    let broker = start_broker();
    let mut backend = connect_backend(&broker, "server").await;
    let mut snoop = connect_gateway(&broker, "gw-1", Transport::Tls).await;
    // Under 3.1.1 the broker grants this SUBSCRIBE; its ACL filters each delivery instead.
    snoop.subscribe("mimamori/v1/gw/gw-2/#").await;
    snoop.subscribe("mimamori/v1/gw/gw-1/#").await;
    let mut other = connect_gateway(&broker, "gw-2", Transport::Tls).await;

    other
        .publish_acked("mimamori/v1/gw/gw-2/obs", b"private")
        .await;
    // The broker routed gw-2's message before acking it, so anything deliverable to gw-1 is
    // queued ahead of this marker.
    backend
        .publish_acked("mimamori/v1/gw/gw-1/ack", b"marker")
        .await;

    assert_only_marker_arrives(&mut snoop, "mimamori/v1/gw/gw-1/ack").await;
}

#[tokio::test]
async fn queued_message_for_offline_session_survives_kill9_and_restart() {
    let mut broker = start_broker();
    let durable_backend = |broker: &Mosquitto| {
        let mut options = broker
            .mqtt_options("server-durable", broker.backend(), Transport::Plain)
            .expect("options");
        options.set_clean_session(false);
        options
    };
    let mut backend = Client::connect(durable_backend(&broker))
        .await
        .expect("backend connects");
    backend.subscribe("mimamori/v1/gw/+/obs").await;
    backend.client.disconnect().await.expect("queue DISCONNECT");
    drop(backend);

    let mut gateway = connect_gateway(&broker, "gw-1", Transport::Plain).await;
    gateway
        .publish_acked("mimamori/v1/gw/gw-1/obs", b"queued")
        .await;
    broker
        .wait_for_persistence(EXPECTED_WITHIN)
        .expect("broker saves its state");

    broker.kill9().expect("kill -9");
    broker
        .restart()
        .expect("restart on the same ports and directory");

    let mut backend = Client::connect(durable_backend(&broker))
        .await
        .expect("backend reconnects");
    let received = backend
        .next_publish(EXPECTED_WITHIN)
        .await
        .expect("queued message delivered");
    assert_message(&received, "mimamori/v1/gw/gw-1/obs", b"queued");
}

#[test]
fn dropping_a_broker_kills_it_and_removes_its_directory() {
    let broker = start_broker();
    let (dir, port) = (broker.dir().to_owned(), broker.plain_port());

    drop(broker);

    assert!(!dir.exists(), "{} left behind", dir.display());
    let connected = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(connected.is_err(), "broker still listening on {port}");
}

#[test]
fn start_failure_reports_what_the_broker_said() {
    let config = MosquittoConfig {
        extra_config: vec!["no_such_option 1".to_owned()],
        ..MosquittoConfig::default()
    };
    let error = Mosquitto::start_with(config).expect_err("mosquitto rejects its config");
    let HarnessError::ExitedEarly { log_tail, .. } = &error else {
        panic!("expected ExitedEarly, got {error:?}");
    };
    assert!(
        log_tail.contains("no_such_option"),
        "log tail lacks the cause: {log_tail}"
    );
}

#[tokio::test]
async fn gateways_added_in_one_batch_each_log_in_to_their_own_namespace() {
    let broker = start_broker();
    let names: Vec<String> = (0..40).map(|i| format!("gw-batch-{i}")).collect();
    let accounts = broker.add_gateways(&names).expect("one reload for all");
    assert_eq!(accounts.len(), names.len());
    let mut backend = connect_backend(&broker, "server").await;
    backend.subscribe("mimamori/v1/gw/+/#").await;
    for account in [&accounts[0], &accounts[39]] {
        let options = broker
            .mqtt_options(&account.username, account, Transport::Plain)
            .expect("options");
        let mut gateway = Client::connect(options).await.expect("gateway connects");
        let topic = format!("mimamori/v1/gw/{}/obs", account.username);
        gateway.publish_acked(&topic, b"hello").await;
        let received = backend
            .next_publish(EXPECTED_WITHIN)
            .await
            .expect("backend receives");
        assert_message(&received, &topic, b"hello");
    }
}
