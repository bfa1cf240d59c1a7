//! The device allow-list end to end: the `mimamori-server` binary publishes each gateway's
//! `down/config` retained through a real Mosquitto with the per-gateway ACL; a gateway that
//! connects later receives it; ending a loan with the admin CLI republishes a list without the
//! device; another gateway never sees it.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::Stack;
use mimamori_testkit::{Credentials, Transport};
use mimamori_wire::{Channel, GatewayConfig, GatewayId, Topic};
use rumqttc::{AsyncClient, Event, Incoming, QoS};
use tokio::sync::mpsc;

const PUBLISHED: &str = "Published the gateway's device allow-list.";
const WAIT: Duration = Duration::from_secs(30);

/// A config as a gateway received it.
#[derive(Debug)]
struct Received {
    topic: String,
    retained: bool,
    config: GatewayConfig,
}

/// Logs in as a gateway under `client_id` and subscribes to `filters`; what arrives is sent on
/// the channel.
fn listen(
    stack: &Stack,
    credentials: &Credentials,
    client_id: &str,
    filters: Vec<String>,
) -> mpsc::UnboundedReceiver<Received> {
    let options = stack
        .mosquitto
        .mqtt_options(client_id, credentials, Transport::Tls)
        .unwrap();
    let (client, mut event_loop) = AsyncClient::new(options, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    for filter in &filters {
                        let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let config = GatewayConfig::decode(&p.payload).expect("a valid config");
                    let received = Received {
                        topic: p.topic.clone(),
                        retained: p.retain,
                        config,
                    };
                    if tx.send(received).is_err() {
                        return;
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
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a config within the wait")
        .expect("listener running")
}

fn config_topic(gateway: &str) -> String {
    Topic::new(GatewayId::new(gateway).unwrap(), Channel::Config).to_string()
}

fn models(config: &GatewayConfig) -> Vec<&str> {
    config
        .allowed_devices
        .iter()
        .map(|d| d.model.as_str())
        .collect()
}

/// Ends the loan of `device` now through `mimamori-server admin end-loan`.
async fn end_loan(stack: &Stack, device: &str) {
    let id: i64 = sqlx::query_scalar("SELECT id FROM loans WHERE device_id = $1")
        .bind(device)
        .fetch_one(stack.store.pool())
        .await
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
        .args(["admin", "--config"])
        .arg(&stack.config_path)
        .args(["end-loan", "--id", &id.to_string(), "--at"])
        .arg(chrono::Utc::now().to_rfc3339())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_receive_their_own_allow_list_and_its_changes_only() {
    let stack = Stack::start().await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&stack.config_path)
        .unwrap();
    writeln!(file, "\n[gateway_config]\nrefresh_s = 1").unwrap();
    let mut server = stack.spawn_server_ready().await;
    // The three demo gateways' lists are on the broker before any gateway connects.
    mimamori_testkit::wait_until(WAIT, || async {
        stack.server_log().matches(PUBLISHED).count() >= 3
    })
    .await
    .unwrap_or_else(|_| panic!("no configs published:\n{}", stack.server_log()));

    let [gw1, gw2, gw3] =
        ["gw-p0001", "gw-p0002", "gw-p0003"].map(|id| stack.mosquitto.add_gateway(id).unwrap());
    let mut home1 = listen(&stack, &gw1, "gw-p0001", vec![config_topic("gw-p0001")]);
    // gw-p0002 asks for every gateway's config and for gw-p0001's by name; the ACL lets only its
    // own through.
    let mut home2 = listen(
        &stack,
        &gw2,
        "gw-p0002",
        vec![
            "mimamori/v1/gw/+/down/config".to_owned(),
            config_topic("gw-p0001"),
            config_topic("gw-p0002"),
        ],
    );
    let mut home3 = listen(&stack, &gw3, "gw-p0003", vec![config_topic("gw-p0003")]);

    let first = next(&mut home1).await;
    assert!(first.retained, "delivered from the broker's retained store");
    assert_eq!(first.topic, config_topic("gw-p0001"));
    assert_eq!(models(&first.config), ["ble-blood-pressure", "checkme-pro"]);
    let cuff = &first.config.allowed_devices[0];
    assert_eq!(
        (cuff.serial.as_deref(), cuff.device_user),
        (Some("UA0001"), Some(1))
    );
    let unconsented = next(&mut home3).await;
    assert!(
        unconsented.config.allowed_devices.is_empty(),
        "p-0003 has a device on loan but no consent: her gateway reads nothing"
    );
    let own = next(&mut home2).await;
    assert_eq!(own.topic, config_topic("gw-p0002"), "{own:?}");
    assert_eq!(models(&own.config), ["pc60fw"]);

    // The ECG monitor goes back to the clinic: the next list lacks it, within a refresh or two.
    end_loan(&stack, "checkme-pro:CP0001").await;
    let after = next(&mut home1).await;
    assert!(!after.retained, "a live update, not the retained copy");
    assert_eq!(models(&after.config), ["ble-blood-pressure"]);
    assert!(after.config.updated_at > first.config.updated_at);
    let mut retained_now = listen(
        &stack,
        &gw1,
        "gw-p0001-restarted",
        vec![config_topic("gw-p0001")],
    );
    let late = next(&mut retained_now).await;
    assert!(late.retained);
    assert_eq!(
        late.config, after.config,
        "the broker retains the new list for a gateway connecting later"
    );

    // Then gw-p0002's own list changes. Its update was published after gw-p0001's, so once it
    // arrives, gw-p0001's would have arrived before it had the ACL let it through.
    end_loan(&stack, "pc60fw:AA:BB:CC:00:00:03").await;
    // Overlapping subscriptions may deliver its own configs twice; it must only ever see its own.
    loop {
        let received = next(&mut home2).await;
        assert_eq!(received.topic, config_topic("gw-p0002"), "{received:?}");
        if received.config.allowed_devices.is_empty() {
            break;
        }
    }
    while let Ok(received) = home2.try_recv() {
        assert_eq!(received.topic, config_topic("gw-p0002"), "{received:?}");
    }
    assert!(
        home1.try_recv().is_err(),
        "unchanged lists are not published again"
    );

    server.kill().unwrap();
    let _ = server.wait();
}
