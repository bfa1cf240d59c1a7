//! Publishes each gateway's device allow-list on its `down/config`, retained, from the loan
//! registry: the devices lent to the patient the gateway serves, under a loan active now, while
//! that patient's monitoring consent is in force.
//!
//! The registry is re-read every `refresh_s`; only gateways whose list changed are published, so an
//! ended loan or a withdrawn consent reaches the home within one refresh. A gateway that leaves the
//! registry gets an empty list (it must read nothing rather than keep an old one). Everything is
//! published again after the server reconnects to the broker: a publish queued while the
//! connection dropped may be lost, and a broker without persistence forgets retained messages.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use mimamori_wire::{AllowedDevice, GatewayConfig, GatewayId, WIRE_VERSION};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::GatewayConfigPublishing;
use crate::sources::mqtt::{Acker, MqttError};
use crate::storage::{GatewayAllowList, Storage};

/// How often the broker connection is checked for a reconnect (and for the first connect).
const CONNECTION_POLL: Duration = Duration::from_secs(1);

/// Starts the publisher task; it runs until aborted.
pub fn spawn<S: Storage>(
    store: S,
    acker: Acker,
    settings: &GatewayConfigPublishing,
) -> JoinHandle<()> {
    tokio::spawn(run(store, acker, settings.refresh()))
}

/// Publishes at the first broker connection, then whenever a list changes or the server
/// reconnects. Never returns.
pub async fn run<S: Storage>(store: S, acker: Acker, refresh: Duration) {
    let mut publisher = Publisher::default();
    let mut last_read: Option<Instant> = None;
    // The broker connection everything was last published on.
    let mut published_on = 0;
    loop {
        let connection = acker.connection();
        let reconnected = connection != published_on;
        let due = last_read.is_none_or(|at| at.elapsed() >= refresh);
        if connection != 0 && (reconnected || due) {
            last_read = Some(Instant::now());
            match store.gateway_allow_lists(Utc::now()).await {
                Ok(lists) => match publisher.publish(&acker, lists, reconnected).await {
                    Ok(()) => published_on = connection,
                    Err(error) => {
                        tracing::error!(%error, "Publishing gateway configs failed; retrying.");
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "Reading the gateways' allow-lists failed; retrying.");
                }
            }
        }
        tokio::time::sleep(CONNECTION_POLL.min(refresh)).await;
    }
}

/// What was last published, per gateway.
#[derive(Debug, Default)]
struct Publisher {
    published: HashMap<GatewayId, GatewayConfig>,
    /// Registry ids that are not valid MQTT gateway ids, reported once each.
    reported_invalid: HashSet<String>,
}

impl Publisher {
    /// Publishes the lists that changed (all of them when `everything`), and an empty list to
    /// gateways that left the registry.
    async fn publish(
        &mut self,
        acker: &Acker,
        lists: Vec<GatewayAllowList>,
        everything: bool,
    ) -> Result<(), MqttError> {
        let now = Utc::now();
        let mut registered = HashSet::with_capacity(lists.len());
        let mut pending = Vec::new();
        for list in lists {
            let gateway = match GatewayId::new(&list.gateway_id) {
                Ok(gateway) => gateway,
                Err(error) => {
                    if self.reported_invalid.insert(list.gateway_id.clone()) {
                        tracing::warn!(gateway = %list.gateway_id, %error, "Registered gateway id is not a valid MQTT gateway id; no config published.");
                    }
                    continue;
                }
            };
            registered.insert(gateway.clone());
            pending.push((gateway, list.patient_id, list.devices));
        }
        let departed: Vec<GatewayId> = self
            .published
            .keys()
            .filter(|g| !registered.contains(*g))
            .cloned()
            .collect();
        pending.extend(departed.into_iter().map(|g| (g, None, Vec::new())));

        for (gateway, patient_id, devices) in pending {
            let previous = self.published.get(&gateway);
            let config = match previous {
                Some(p) if p.allowed_devices == devices && !everything => continue,
                // Unchanged, published again after a reconnect: keep its `updated_at`.
                Some(p) if p.allowed_devices == devices => p.clone(),
                _ => GatewayConfig {
                    v: WIRE_VERSION,
                    updated_at: now,
                    allowed_devices: devices,
                },
            };
            let span = tracing::info_span!(
                "gateway_config",
                gateway = %gateway,
                patient_id = patient_id.as_deref().unwrap_or(""),
            );
            acker
                .publish_config(&gateway, &config)
                .instrument(span.clone())
                .await?;
            span.in_scope(|| {
                tracing::info!(
                    devices = %device_names(&config.allowed_devices),
                    "Published the gateway's device allow-list."
                );
            });
            if registered.contains(&gateway) {
                self.published.insert(gateway, config);
            } else {
                self.published.remove(&gateway);
            }
        }
        Ok(())
    }
}

/// `model:serial-or-address` of each device, for the log.
fn device_names(devices: &[AllowedDevice]) -> String {
    let names: Vec<String> = devices
        .iter()
        .map(|d| {
            let id = d
                .serial
                .as_deref()
                .or(d.ble_address.as_deref())
                .unwrap_or("?");
            format!("{}:{id}", d.model)
        })
        .collect();
    names.join(",")
}
