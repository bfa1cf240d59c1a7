//! The publisher: drains the outbox to the broker over MQTT (rumqttc) and applies the server's
//! end-to-end acknowledgements.
//!
//! Who acknowledges what:
//! - A broker PUBACK only frees rumqttc's in-flight slot. Under MQTT 3.1.1 a broker PUBACKs a
//!   publish its ACL refuses and then drops it, and rumqttc forgets unacknowledged publishes when
//!   it reconnects into a fresh session: neither may remove anything from the outbox.
//! - The server's retained `StoredAck { epoch, stored_through }` on `…/down/ack` is the only thing
//!   that removes entries ([`crate::outbox::Outbox::ack`]).
//!
//! Sending: at most `window_messages` messages beyond the acknowledged watermark are in flight.
//! After every (re)connection, and whenever the server's watermark has not moved for
//! `ack_timeout_ms` while messages are in flight, sending rewinds to the first unacknowledged
//! message; the server deduplicates by `(gateway, epoch, seq)`.
//!
//! Each connection publishes a retained `Presence { online: true }`; the Last Will is the same
//! topic with `online: false`, so the server knows when a home drops off.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mimamori_wire::{
    Body, Channel, Envelope, GatewayConfig, GatewayId, Presence, StoredAck, Topic,
};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::outbox::SharedOutbox;

/// MQTT settings of the gateway (the `[mqtt]` table of the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address to connect to.
    pub endpoint_host: String,
    /// Broker port (8883 for TLS by convention).
    pub endpoint_port: u16,
    /// This gateway's id; also its MQTT user name and client id.
    pub gateway_id: GatewayId,
    /// MQTT password. Env override: `MIMAMORI_MQTT_PASSWORD`.
    #[serde(default)]
    pub password: String,
    /// PEM file of the deployment CA. When set, the connection uses TLS and trusts only this CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Keep-alive interval, seconds.
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// Messages sent beyond the server's acknowledged watermark at most.
    #[serde(default = "default_window_messages")]
    pub window_messages: u64,
    /// Resend from the watermark when it has not moved for this long with messages in flight, ms.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// First reconnect delay, ms; doubles per failure.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Presence (with the outbox's depth and quota use) is republished this often, s, and at once
    /// when the outbox's quota level changes: that is the disk-quota alarm the server sees.
    #[serde(default = "default_presence_interval_s")]
    pub presence_interval_s: u64,
}

const fn default_keep_alive_s() -> u64 {
    30
}
const fn default_window_messages() -> u64 {
    128
}
const fn default_ack_timeout_ms() -> u64 {
    30_000
}
const fn default_reconnect_min_ms() -> u64 {
    500
}
const fn default_reconnect_max_ms() -> u64 {
    30_000
}
const fn default_presence_interval_s() -> u64 {
    300
}

impl MqttConfig {
    /// Settings with the defaults, for a gateway id, a password and an endpoint.
    pub fn new(
        gateway_id: GatewayId,
        password: impl Into<String>,
        host: impl Into<String>,
        port: u16,
    ) -> Self {
        Self {
            endpoint_host: host.into(),
            endpoint_port: port,
            gateway_id,
            password: password.into(),
            ca_file: None,
            keep_alive_s: default_keep_alive_s(),
            window_messages: default_window_messages(),
            ack_timeout_ms: default_ack_timeout_ms(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            presence_interval_s: default_presence_interval_s(),
        }
    }
}

/// Publisher failures at start-up (running never fails: it reconnects).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot use CA file {path}: {detail}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

fn tls_transport(ca_file: &PathBuf) -> Result<rumqttc::Transport, PublishError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let err = |detail: String| PublishError::Ca {
        path: ca_file.clone(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(Arc::new(config)),
    ))
}

/// What the publisher reports to the rest of the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherState {
    /// Connected to the broker now.
    pub connected: bool,
    /// Connections made so far.
    pub connections: u64,
    /// Times sending rewound to the watermark (reconnects and ack timeouts).
    pub rewinds: u64,
    /// Messages handed to the broker (including resends).
    pub sent: u64,
    /// PUBACKs received from the broker (which prove nothing about storage).
    pub pubacks: u64,
}

/// Drains a [`SharedOutbox`] to the broker.
pub struct Publisher {
    config: MqttConfig,
    outbox: Arc<SharedOutbox>,
    client: AsyncClient,
    eventloop: EventLoop,
    state: watch::Sender<PublisherState>,
    allow_list: watch::Sender<Option<GatewayConfig>>,
    software_version: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("gateway_id", &self.config.gateway_id)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Builds the MQTT client (nothing connects until [`Publisher::run`]).
    pub fn new(config: MqttConfig, outbox: Arc<SharedOutbox>) -> Result<Self, PublishError> {
        let gw = config.gateway_id.clone();
        let mut options =
            MqttOptions::new(gw.as_str(), &config.endpoint_host, config.endpoint_port);
        options.set_credentials(gw.as_str(), &config.password);
        options.set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)));
        // Fresh session on every connect: the outbox, not the broker session, is what makes
        // delivery reliable, and a stale session would only replay what we resend anyway.
        options.set_clean_session(true);
        let window = u16::try_from(config.window_messages)
            .unwrap_or(u16::MAX)
            .max(1);
        options.set_inflight(window);
        options.set_max_packet_size(
            mimamori_wire::limits::MAX_PAYLOAD_BYTES + 1024,
            mimamori_wire::limits::MAX_PAYLOAD_BYTES + 1024,
        );
        let software_version = env!("CARGO_PKG_VERSION").to_owned();
        let will = Envelope::new(
            outbox.with(|o| o.epoch()),
            0,
            Utc::now(),
            Body::Presence(Presence {
                online: false,
                at: Utc::now(),
                software_version: software_version.clone(),
                clock_synced: None,
                outbox_depth: None,
                outbox_bytes: None,
                outbox_quota_bytes: None,
            }),
        );
        options.set_last_will(LastWill::new(
            Topic::new(gw.clone(), Channel::Presence).to_string(),
            will.encode().unwrap_or_default(),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(ca) = &config.ca_file {
            options.set_transport(tls_transport(ca)?);
        }
        // Room for a full window plus subscriptions and presence, so try_publish rarely fills it.
        let (client, eventloop) = AsyncClient::new(options, usize::from(window) + 16);
        Ok(Self {
            config,
            outbox,
            client,
            eventloop,
            state: watch::Sender::new(PublisherState::default()),
            allow_list: watch::Sender::new(None),
            software_version,
        })
    }

    /// Follows the publisher's state.
    pub fn state(&self) -> watch::Receiver<PublisherState> {
        self.state.subscribe()
    }

    /// Follows the device allow-list the server sends on `…/down/config`.
    pub fn allow_list(&self) -> watch::Receiver<Option<GatewayConfig>> {
        self.allow_list.subscribe()
    }

    fn presence(&self, online: bool) -> Vec<u8> {
        let (epoch, next_seq, status) = self.outbox.with(|o| (o.epoch(), o.next_seq(), o.status()));
        Envelope::new(
            epoch,
            next_seq,
            Utc::now(),
            Body::Presence(Presence {
                online,
                at: Utc::now(),
                software_version: self.software_version.clone(),
                clock_synced: Some(crate::clock::is_synced()),
                outbox_depth: Some(status.unacknowledged),
                outbox_bytes: Some(status.bytes),
                outbox_quota_bytes: Some(status.quota_bytes),
            }),
        )
        .encode()
        .unwrap_or_default()
    }

    /// Runs until `shutdown` resolves, then says goodbye (retained offline presence) and
    /// disconnects. Never returns an error: connection failures are retried with backoff.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        use tracing::Instrument;
        let span = tracing::info_span!("publisher", gateway_id = %self.config.gateway_id);
        self.run_inner(shutdown).instrument(span).await;
    }

    async fn run_inner(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let gw = self.config.gateway_id.clone();
        tokio::pin!(shutdown);
        let ack_timeout = Duration::from_millis(self.config.ack_timeout_ms);
        let mut backoff = Duration::from_millis(self.config.reconnect_min_ms);
        let mut connected = false;
        let mut next_to_send = self.outbox.with(|o| o.first_unacked());
        let mut last_progress = Instant::now();
        let mut watermark = self.outbox.with(|o| o.first_unacked());
        let outbox = self.outbox.clone();
        let mut presence_tick =
            tokio::time::interval(Duration::from_secs(self.config.presence_interval_s.max(1)));
        let mut quota_level = outbox.with(|o| o.quota_level());
        loop {
            let level = outbox.with(|o| o.quota_level());
            if level != quota_level {
                if level > crate::outbox::QuotaLevel::Ok {
                    tracing::warn!(level = ?level, status = ?outbox.with(|o| o.status()), "Outbox nearing its disk quota.");
                }
                quota_level = level;
                presence_tick.reset_immediately();
            }
            if connected {
                next_to_send = self.fill_window(next_to_send);
            }
            let in_flight = next_to_send > watermark;
            let timeout_at = last_progress + ack_timeout;
            tokio::select! {
                () = &mut shutdown => break,
                () = outbox.appended(), if connected => {}
                _ = presence_tick.tick(), if connected => {
                    let _ = self.client.try_publish(Topic::new(gw.clone(), Channel::Presence).to_string(), QoS::AtLeastOnce, true, self.presence(true));
                }
                () = tokio::time::sleep_until(timeout_at), if connected && in_flight => {
                    tracing::warn!(from = watermark, to = next_to_send, "No end-to-end ack in time; resending from the watermark.");
                    next_to_send = watermark;
                    last_progress = Instant::now();
                    self.state.send_modify(|s| s.rewinds += 1);
                }
                event = self.eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!("Connected to the broker.");
                        connected = true;
                        backoff = Duration::from_millis(self.config.reconnect_min_ms);
                        let _ = self.client.try_subscribe(Topic::downlink_filter(&gw), QoS::AtLeastOnce);
                        let _ = self.client.try_publish(Topic::new(gw.clone(), Channel::Presence).to_string(), QoS::AtLeastOnce, true, self.presence(true));
                        // Whatever was in flight on the old connection may be gone: start over.
                        next_to_send = self.outbox.with(|o| o.first_unacked());
                        last_progress = Instant::now();
                        self.state.send_modify(|s| { s.connected = true; s.connections += 1; s.rewinds += 1; });
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if self.handle_downlink(&p.topic, &p.payload) {
                            let w = self.outbox.with(|o| o.first_unacked());
                            if w > watermark {
                                watermark = w;
                                last_progress = Instant::now();
                            }
                            next_to_send = next_to_send.max(watermark);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => self.state.send_modify(|s| s.pubacks += 1),
                    Ok(_) => {}
                    Err(error) => {
                        if connected {
                            tracing::warn!(error = %error, "Lost the broker connection; reconnecting.");
                        } else {
                            tracing::debug!(error = %error, delay_ms = backoff.as_millis() as u64, "Broker connection failed.");
                        }
                        connected = false;
                        self.state.send_modify(|s| s.connected = false);
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_millis(self.config.reconnect_max_ms));
                    }
                }
            }
        }
        if connected {
            let _ = self.client.try_publish(
                Topic::new(gw.clone(), Channel::Presence).to_string(),
                QoS::AtLeastOnce,
                true,
                self.presence(false),
            );
            let _ = self.client.try_disconnect();
            // Let the event loop flush the goodbye; bounded so shutdown cannot hang.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(event) = self.eventloop.poll().await {
                    if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    /// Hands records to rumqttc until the window or the durable end is reached, or its request
    /// queue is full. Returns the next seq to send.
    fn fill_window(&mut self, mut next: u64) -> u64 {
        let (first_unacked, durable_end) =
            self.outbox.with(|o| (o.first_unacked(), o.durable_end()));
        next = next.max(first_unacked);
        let limit = durable_end.min(first_unacked + self.config.window_messages);
        while next < limit {
            let want = usize::try_from(limit - next).unwrap_or(usize::MAX).min(32);
            let records = match self.outbox.with(|o| o.read_from(next, want)) {
                Ok(r) => r,
                Err(error) => {
                    tracing::error!(error = %error, "Cannot read the outbox.");
                    return next;
                }
            };
            if records.is_empty() {
                return next;
            }
            for record in records {
                let epoch = self.outbox.with(|o| o.epoch());
                let payload = match serde_json::from_slice::<Body>(&record.payload) {
                    Ok(body) => Envelope::new(epoch, record.seq, Utc::now(), body).encode(),
                    Err(e) => Err(mimamori_wire::WireError::Schema(e.to_string())),
                };
                let payload = match payload {
                    Ok(p) => p,
                    Err(error) => {
                        // Only a bug can put an unencodable body in the outbox. It cannot be sent,
                        // and holding it back would block every later reading: log it loudly
                        // with its bytes and skip it (the server sees the seq gap).
                        tracing::error!(seq = record.seq, error = %error, bytes = %crate::devices::Hex(record.payload.clone()), "Outbox record cannot be encoded; skipping it.");
                        next = record.seq + 1;
                        continue;
                    }
                };
                let topic = Topic::new(self.config.gateway_id.clone(), record.channel).to_string();
                if self
                    .client
                    .try_publish(topic, QoS::AtLeastOnce, false, payload)
                    .is_err()
                {
                    return next; // request queue full: the event loop will drain it
                }
                self.state.send_modify(|s| s.sent += 1);
                next = record.seq + 1;
            }
        }
        next
    }

    /// Applies an ack or a config message. Returns true when the outbox watermark may have moved.
    fn handle_downlink(&self, topic: &str, payload: &[u8]) -> bool {
        match Topic::parse(topic).map(|t| t.channel) {
            Ok(Channel::Ack) => match StoredAck::decode(payload) {
                Ok(ack) => match self.outbox.with(|o| o.ack(ack.epoch, ack.stored_through)) {
                    Ok(true) => true,
                    Ok(false) => {
                        tracing::debug!(epoch = %ack.epoch, stored_through = ack.stored_through, "Ack for another epoch or beyond the outbox; ignored.");
                        false
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "Cannot record the server's ack.");
                        false
                    }
                },
                Err(error) => {
                    tracing::warn!(error = %error, bytes = %crate::devices::Hex(payload.to_vec()), "Malformed ack.");
                    false
                }
            },
            Ok(Channel::Config) => {
                match GatewayConfig::decode(payload) {
                    Ok(config) => {
                        tracing::info!(
                            devices = config.allowed_devices.len(),
                            "Device allow-list received."
                        );
                        self.allow_list.send_replace(Some(config));
                    }
                    Err(error) => tracing::warn!(error = %error, "Malformed config."),
                }
                false
            }
            _ => false,
        }
    }
}
