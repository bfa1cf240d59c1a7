//! The harness's Mosquitto: TLS with the test CA, passwords, per-gateway ACL, persistence
//! across a crash. Every check of refusal asserts that nothing was delivered, not just a code.

use std::time::Duration;

use mimamori_testkit::{Mosquitto, Transport};
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

#[tokio::test]
async fn gateway_over_tls_reaches_backend() {
    let broker = start_broker();
    let gateway = broker.add_gateway("gw-1").expect("add gateway user");
    let mut backend = connect_backend(&broker, "server").await;
    backend.subscribe("mimamori/v1/gw/+/#").await;

    let options = broker
        .mqtt_options("gw-1", &gateway, Transport::Tls)
        .expect("options");
    let mut gateway = Client::connect(options)
        .await
        .expect("gateway connects over TLS");
    gateway
        .publish_acked("mimamori/v1/gw/gw-1/obs", b"spo2=97")
        .await;

    let received = backend
        .next_publish(EXPECTED_WITHIN)
        .await
        .expect("backend receives");
    assert_eq!(received.topic, "mimamori/v1/gw/gw-1/obs");
    assert_eq!(&received.payload[..], b"spo2=97");
}

#[tokio::test]
async fn wrong_password_and_anonymous_logins_are_refused_as_not_authorised() {
    let broker = start_broker();
    let gateway = broker.add_gateway("gw-1").expect("add gateway user");
    let wrong = mimamori_testkit::Credentials {
        password: format!("{}x", gateway.password),
        ..gateway.clone()
    };
    for transport in [Transport::Plain, Transport::Tls] {
        let options = broker
            .mqtt_options("gw-1", &wrong, transport)
            .expect("options");
        let refusal = Client::connect(options).await.err();
        assert!(
            matches!(
                refusal,
                Some(ConnectionError::ConnectionRefused(
                    ConnectReturnCode::NotAuthorized
                ))
            ),
            "{transport:?}: wrong password gave {refusal:?}"
        );
    }
    let anonymous = MqttOptions::new("anon", "127.0.0.1", broker.plain_port());
    let refusal = Client::connect(anonymous).await.err();
    assert!(
        matches!(
            refusal,
            Some(ConnectionError::ConnectionRefused(
                ConnectReturnCode::NotAuthorized
            ))
        ),
        "anonymous login gave {refusal:?}"
    );
}

#[tokio::test]
async fn publish_outside_own_namespace_is_acked_but_never_delivered() {
    let broker = start_broker();
    let gateway = broker.add_gateway("gw-1").expect("add gateway user");
    let mut backend = connect_backend(&broker, "server").await;
    backend.subscribe("mimamori/v1/gw/#").await;
    let options = broker
        .mqtt_options("gw-1", &gateway, Transport::Tls)
        .expect("options");
    let mut gateway = Client::connect(options).await.expect("gateway connects");

    // MQTT 3.1.1 has no way to refuse a PUBLISH: the broker acks it, then drops it.
    gateway
        .publish_acked("mimamori/v1/gw/gw-2/obs", b"forged")
        .await;
    // Mosquitto delivers one client's messages in order: had the forged one been forwarded, it
    // would arrive before this marker.
    gateway
        .publish_acked("mimamori/v1/gw/gw-1/obs", b"marker")
        .await;

    let first = backend
        .next_publish(EXPECTED_WITHIN)
        .await
        .expect("marker arrives");
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("mimamori/v1/gw/gw-1/obs", &b"marker"[..])
    );
    let straggler = backend.next_publish(SILENCE_WINDOW).await;
    assert!(
        straggler.is_none(),
        "delivered outside the ACL: {straggler:?}"
    );
}

#[tokio::test]
async fn queued_message_for_offline_session_survives_kill9_and_restart() {
    let mut broker = start_broker();
    let gateway = broker.add_gateway("gw-1").expect("add gateway user");
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

    let options = broker
        .mqtt_options("gw-1", &gateway, Transport::Plain)
        .expect("options");
    let mut gateway = Client::connect(options).await.expect("gateway connects");
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
    assert_eq!(
        (received.topic.as_str(), &received.payload[..]),
        ("mimamori/v1/gw/gw-1/obs", &b"queued"[..])
    );
}
