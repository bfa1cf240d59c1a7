//! A TEST PEER standing in for the mimamori server (which is a separate crate and issue): it
//! subscribes to every gateway's uplink as the backend user, "stores" each envelope in memory
//! keyed by `(gateway, epoch, seq)`, and publishes the retained end-to-end `StoredAck` with the
//! highest contiguous stored seq, exactly as the wire contract says the server does.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use mimamori_testkit::{Mosquitto, Transport};
use mimamori_wire::{Body, Channel, Envelope, Epoch, StoredAck, Topic};
use rumqttc::{AsyncClient, Event, Packet, QoS};

#[derive(Debug, Default)]
struct Stored {
    /// Stored bodies by gateway (duplicates dropped), for tests that look at content.
    bodies: HashMap<String, Vec<Body>>,
    /// (gateway, epoch) → stored seqs.
    seqs: HashMap<(String, Epoch), BTreeSet<u64>>,
    /// Deliveries, duplicates included.
    deliveries: u64,
    /// Last presence per gateway.
    presence: HashMap<String, bool>,
}

/// See the module docs.
#[derive(Debug)]
pub struct AckingTestServer {
    stored: Arc<Mutex<Stored>>,
    task: tokio::task::JoinHandle<()>,
}

// Each test binary uses part of the peer's API.
#[allow(dead_code)]
impl AckingTestServer {
    /// Connects to `broker` as the backend user with a persistent session.
    pub fn start(broker: &Mosquitto) -> Self {
        let mut options = broker
            .mqtt_options("acking-test-server", broker.backend(), Transport::Plain)
            .unwrap();
        options.set_clean_session(false);
        options.set_keep_alive(Duration::from_secs(5));
        let max = mimamori_wire::limits::MAX_PAYLOAD_BYTES + 1024;
        options.set_max_packet_size(max, max);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let stored = Arc::new(Mutex::new(Stored::default()));
        let state = stored.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client
                            .try_subscribe(mimamori_wire::topic::UPLINK_FILTER, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let Ok(topic) = Topic::parse(&p.topic) else {
                            continue;
                        };
                        let Ok(envelope) =
                            Envelope::decode_from(&p.payload, &topic.gateway, topic.channel)
                        else {
                            continue;
                        };
                        let gw = topic.gateway.to_string();
                        let ack = {
                            let mut s = state.lock().unwrap();
                            s.deliveries += 1;
                            if let Body::Presence(presence) = &envelope.body {
                                s.presence.insert(gw, presence.online);
                                continue;
                            }
                            let fresh = s
                                .seqs
                                .entry((gw.clone(), envelope.epoch))
                                .or_default()
                                .insert(envelope.seq);
                            if fresh {
                                s.bodies
                                    .entry(gw.clone())
                                    .or_default()
                                    .push(envelope.body.clone());
                            }
                            let seqs = &s.seqs[&(gw, envelope.epoch)];
                            // Highest contiguous seq from 0.
                            let mut through = None;
                            for (i, seq) in seqs.iter().enumerate() {
                                if *seq != i as u64 {
                                    break;
                                }
                                through = Some(*seq);
                            }
                            through.map(|t| StoredAck::new(envelope.epoch, t, Utc::now()))
                        };
                        if let Some(ack) = ack {
                            let topic = Topic::new(topic.gateway, Channel::Ack).to_string();
                            let _ = client
                                .publish(topic, QoS::AtLeastOnce, true, ack.encode())
                                .await;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self { stored, task }
    }

    /// The seqs stored for a gateway under an epoch, ascending.
    pub fn stored(&self, gateway: &str, epoch: Epoch) -> Vec<u64> {
        let s = self.stored.lock().unwrap();
        s.seqs
            .get(&(gateway.to_owned(), epoch))
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every body stored for a gateway, once each, in arrival order.
    pub fn bodies(&self, gateway: &str) -> Vec<Body> {
        self.stored
            .lock()
            .unwrap()
            .bodies
            .get(gateway)
            .cloned()
            .unwrap_or_default()
    }

    /// Deliveries received, duplicates included.
    pub fn deliveries(&self) -> u64 {
        self.stored.lock().unwrap().deliveries
    }

    /// The last presence a gateway published.
    pub fn presence(&self, gateway: &str) -> Option<bool> {
        self.stored.lock().unwrap().presence.get(gateway).copied()
    }
}

impl Drop for AckingTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
