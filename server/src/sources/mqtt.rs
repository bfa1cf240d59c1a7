//! The MQTT source: a persistent QoS 1 subscription to every gateway's uplink, read by rumqttc
//! with manual acknowledgements.
//!
//! The broker forgets a message only when we PUBACK it, and we PUBACK only after the message is
//! committed ([`crate::ingest`]), in arrival order as MQTT requires. A PUBACK belongs to one
//! connection: after a reconnect the broker redelivers what was not acknowledged, so acks for
//! deliveries of an earlier connection are dropped rather than sent on the new one, where their
//! packet ids may name other messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use mimamori_wire::{Channel, GatewayConfig, GatewayId, StoredAck, Topic, topic::UPLINK_FILTER};
use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, Incoming, MqttOptions, Publish, QoS,
    TlsConfiguration, Transport,
};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::config::MqttConfig;
use crate::transforms::decode::RawMessage;

/// Requests queued between our tasks and the event loop (acks and ack publishes of a batch).
const CLIENT_QUEUE: usize = 16 * 1024;
/// Largest packet accepted from the broker: above the wire's payload limit, so an oversized
/// payload reaches the decoder and is dead-lettered instead of breaking the connection forever.
const MAX_INCOMING_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// Why the MQTT source failed.
#[derive(Debug, Error)]
pub enum MqttError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("mqtt client request failed: {0}")]
    Client(#[from] ClientError),
}

/// A received message with what is needed to acknowledge it.
#[derive(Debug)]
pub struct Delivery {
    pub raw: RawMessage,
    publish: Publish,
    connection: u64,
}

/// Acknowledges deliveries and publishes end-to-end acks. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Acker {
    client: AsyncClient,
    connection: Arc<AtomicU64>,
}

impl Acker {
    /// PUBACKs a delivery, unless it came on an earlier connection (the broker will redeliver it).
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), MqttError> {
        if delivery.connection == self.connection.load(Ordering::Acquire) {
            self.client.ack(&delivery.publish).await?;
        }
        Ok(())
    }

    /// Publishes a gateway's end-to-end ack, retained, so a reconnecting gateway learns it at once.
    pub async fn publish_stored(
        &self,
        gateway: &GatewayId,
        ack: &StoredAck,
    ) -> Result<(), MqttError> {
        self.publish_down(gateway, Channel::Ack, ack.encode()).await
    }

    /// Publishes a gateway's device allow-list, retained, so the gateway has it whenever it
    /// connects.
    pub async fn publish_config(
        &self,
        gateway: &GatewayId,
        config: &GatewayConfig,
    ) -> Result<(), MqttError> {
        self.publish_down(gateway, Channel::Config, config.encode())
            .await
    }

    /// Hands a retained QoS 1 publish to a gateway's downlink channel to the event loop.
    async fn publish_down(
        &self,
        gateway: &GatewayId,
        channel: Channel,
        payload: Vec<u8>,
    ) -> Result<(), MqttError> {
        let topic = Topic::new(gateway.clone(), channel).to_string();
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await?;
        Ok(())
    }

    /// Which broker connection is current: 0 before the first, then one more per reconnect.
    /// Whoever publishes state retained can republish it when this changes.
    pub fn connection(&self) -> u64 {
        self.connection.load(Ordering::Acquire)
    }
}

/// MQTT options for the backend's persistent session.
pub fn options(config: &MqttConfig) -> Result<MqttOptions, MqttError> {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(config.keep_alive_s))
        .set_max_packet_size(MAX_INCOMING_PACKET_BYTES, MAX_INCOMING_PACKET_BYTES)
        .set_inflight(1000);
    let password = std::env::var("MIMAMORI_MQTT_PASSWORD")
        .ok()
        .or_else(|| config.password.clone())
        .unwrap_or_default();
    options.set_credentials(&config.username, password);
    if let Some(path) = &config.ca_file {
        let ca = std::fs::read(path).map_err(|source| MqttError::CaFile {
            path: path.clone(),
            source,
        })?;
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        }));
    }
    Ok(options)
}

/// Connects (lazily: the event loop connects when polled) and returns the acker and the loop.
pub fn connect(options: MqttOptions) -> (Acker, MqttSource) {
    let (client, event_loop) = AsyncClient::new(options, CLIENT_QUEUE);
    let connection = Arc::new(AtomicU64::new(0));
    (
        Acker {
            client: client.clone(),
            connection: Arc::clone(&connection),
        },
        MqttSource {
            client,
            event_loop,
            connection,
            last_event: BrokerLiveness::default(),
        },
    )
}

/// When the broker was last heard from (any packet, keep-alive pings included), for the
/// watchdog's `broker_subscription` heartbeat.
#[derive(Clone, Debug, Default)]
pub struct BrokerLiveness(Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl BrokerLiveness {
    fn heard(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Time since the broker last answered; `None` if it never did.
    pub fn silent_for(&self) -> Option<Duration> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|at| at.elapsed())
    }
}

/// The event loop task's state.
pub struct MqttSource {
    client: AsyncClient,
    event_loop: EventLoop,
    connection: Arc<AtomicU64>,
    last_event: BrokerLiveness,
}

impl std::fmt::Debug for MqttSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSource").finish_non_exhaustive()
    }
}

impl MqttSource {
    /// Where the source records hearing from the broker.
    pub fn liveness(&self) -> BrokerLiveness {
        self.last_event.clone()
    }

    /// Polls the broker until `out` closes.
    ///
    /// The loop never waits on the committer: it must keep polling, or no keep-alive goes out and
    /// the broker drops the session (seen at 1,000 homes with a slow build). `out` is unbounded,
    /// yet bounded in fact: every delivery stays unacknowledged until its commit, and the broker
    /// sends no more than its in-flight window (Mosquitto's `max_inflight_messages`) of
    /// unacknowledged messages. Backpressure is the broker holding the rest.
    pub async fn run(mut self, out: mpsc::UnboundedSender<Delivery>) {
        loop {
            let polled = self.event_loop.poll().await;
            if matches!(polled, Ok(Event::Incoming(_))) {
                self.last_event.heard();
            }
            match polled {
                Ok(Event::Incoming(Incoming::ConnAck(connack))) => {
                    let connection = self.connection.fetch_add(1, Ordering::AcqRel) + 1;
                    tracing::info!(
                        connection,
                        session_present = connack.session_present,
                        "Connected to the MQTT broker."
                    );
                    // Harmless when the session already has it; needed on a fresh session.
                    if let Err(error) = self.client.subscribe(UPLINK_FILTER, QoS::AtLeastOnce).await
                    {
                        tracing::error!(error = %error, "Subscribing failed.");
                    }
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    tracing::info!(filter = UPLINK_FILTER, "Subscribed to gateway uplinks.");
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    let delivery = Delivery {
                        raw: RawMessage {
                            topic: publish.topic.clone(),
                            payload: publish.payload.clone(),
                            received_at: Utc::now(),
                        },
                        connection: self.connection.load(Ordering::Acquire),
                        publish,
                    };
                    if out.send(delivery).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "MQTT connection lost; reconnecting.");
                    if out.is_closed() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
