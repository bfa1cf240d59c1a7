//! The in-process MQTT broker (rumqttd) for the demo and single-box trials.
//!
//! It listens on loopback only: it has no topic ACL (any client could publish as any gateway)
//! and no persistence (queued messages die with the process). Production uses Mosquitto.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use thiserror::Error;

/// Why the embedded broker could not start.
#[derive(Debug, Error)]
pub enum EmbeddedBrokerError {
    #[error("embedded broker must listen on loopback, not {0}")]
    NotLoopback(SocketAddr),
    #[error("no free port on {0}: {1}")]
    NoPort(SocketAddr, std::io::Error),
    #[error("embedded broker thread failed to start: {0}")]
    Thread(std::io::Error),
}

/// Starts the broker on `listen` (or on a free loopback port when that one is taken) in its own
/// threads, and returns the address it listens on. It runs until the process exits.
pub fn start(listen: SocketAddr) -> Result<SocketAddr, EmbeddedBrokerError> {
    if !listen.ip().is_loopback() {
        return Err(EmbeddedBrokerError::NotLoopback(listen));
    }
    let address = free_address(listen)?;
    let settings = ServerSettings {
        name: "mimamori-embedded".to_owned(),
        listen: address,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            // The wire's payload limit plus room for the topic and headers.
            max_payload_size: mimamori_wire::limits::MAX_PAYLOAD_BYTES + 4096,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("v4".to_owned(), settings)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("embedded-broker".to_owned())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(error) = broker.start() {
                tracing::error!(error = %error, "Embedded broker stopped.");
            }
        })
        .map_err(EmbeddedBrokerError::Thread)?;
    Ok(address)
}

/// `listen` when it can be bound, else a free port on the same address.
fn free_address(listen: SocketAddr) -> Result<SocketAddr, EmbeddedBrokerError> {
    if listen.port() != 0 && TcpListener::bind(listen).is_ok() {
        return Ok(listen);
    }
    let probe = SocketAddr::new(listen.ip(), 0);
    let listener = TcpListener::bind(probe).map_err(|e| EmbeddedBrokerError::NoPort(probe, e))?;
    listener
        .local_addr()
        .map_err(|e| EmbeddedBrokerError::NoPort(probe, e))
}
