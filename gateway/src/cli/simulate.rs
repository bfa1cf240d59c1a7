//! `simulate --broker URL --patients N [--scenario FILE] [--speed X]`: simulated homes, each with
//! its own gateway identity, outbox and MQTT connection.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use mimamori_gateway::outbox::{Outbox, OutboxConfig, SharedOutbox};
use mimamori_gateway::publish::{MqttConfig, Publisher};
use mimamori_gateway::simulate::HomeSim;
use mimamori_gateway::simulate::scenario::Scenario;
use mimamori_wire::GatewayId;
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Broker endpoint: `mqtt://HOST:PORT` or `mqtts://HOST:PORT` (TLS, needs --ca-file).
    #[arg(long)]
    broker: String,
    /// Number of simulated homes, one patient and one gateway each.
    #[arg(long, default_value_t = 1)]
    patients: usize,
    /// Scenario file (see fixtures/scenarios/).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stop after this many simulated hours (default: run until interrupted).
    #[arg(long)]
    duration_h: Option<f64>,
    /// Gateway ids are this prefix plus a 4-digit home number; each is also its MQTT user name.
    #[arg(long, default_value = "sim-home-")]
    gateway_prefix: String,
    /// MQTT password shared by every simulated gateway.
    #[arg(long, env = "MIMAMORI_SIM_PASSWORD", conflicts_with = "password_file")]
    password: Option<String>,
    /// File with either one password for all gateways, or lines `GATEWAY_ID PASSWORD`.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Deployment CA (PEM) for `mqtts://`.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Where the homes' outboxes live (default: a fresh temporary directory).
    #[arg(long)]
    outbox_dir: Option<PathBuf>,
    /// Do not stream ECG (vitals and status only).
    #[arg(long)]
    no_ecg: bool,
}

fn parse_broker(url: &str) -> anyhow::Result<(bool, String, u16)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        bail!("broker URL {url:?} must start with mqtt:// or mqtts://");
    };
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .with_context(|| format!("broker URL {url:?} has no port"))?;
    Ok((
        tls,
        host.to_owned(),
        port.parse()
            .with_context(|| format!("bad port in {url:?}"))?,
    ))
}

/// Looks up a gateway's password.
type PasswordOf = Box<dyn Fn(&str) -> Option<String>>;

fn passwords(args: &SimulateArgs) -> anyhow::Result<PasswordOf> {
    if let Some(p) = &args.password {
        let p = p.clone();
        return Ok(Box::new(move |_| Some(p.clone())));
    }
    let Some(path) = &args.password_file else {
        bail!("give --password or --password-file")
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if let [single] = lines.as_slice()
        && !single.contains(char::is_whitespace)
    {
        let p = (*single).to_owned();
        return Ok(Box::new(move |_| Some(p.clone())));
    }
    let map: std::collections::HashMap<String, String> = lines
        .iter()
        .filter_map(|l| {
            l.split_once(char::is_whitespace)
                .map(|(id, pw)| (id.to_owned(), pw.trim().to_owned()))
        })
        .collect();
    Ok(Box::new(move |id| map.get(id).cloned()))
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.speed > 0.0 && args.speed.is_finite(),
        "--speed must be positive"
    );
    anyhow::ensure!(args.patients > 0, "--patients must be at least 1");
    let (tls, host, port) = parse_broker(&args.broker)?;
    anyhow::ensure!(!tls || args.ca_file.is_some(), "mqtts:// needs --ca-file");
    let scenario = match &args.scenario {
        Some(path) => Scenario::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("while reading {}", path.display()))?,
        )
        .with_context(|| format!("while parsing scenario {}", path.display()))?,
        None => Scenario::default(),
    };
    let password_of = passwords(&args)?;
    let (_tmp, base) = match &args.outbox_dir {
        Some(d) => (None, d.clone()),
        None => {
            let t = tempfile::Builder::new()
                .prefix("mimamori-sim-")
                .tempdir()
                .context("while creating the outbox directory")?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let start = Utc::now();
        let mut homes = Vec::new();
        for i in 0..args.patients {
            let id = format!("{}{i:04}", args.gateway_prefix);
            let gateway = GatewayId::new(&id).with_context(|| format!("gateway id {id:?}"))?;
            let password = password_of(&id).with_context(|| format!("no password for {id}"))?;
            let outbox = Outbox::open(base.join(&id), OutboxConfig::default()).with_context(|| format!("while opening the outbox of {id}"))?;
            let outbox = SharedOutbox::new(outbox);
            let mut mqtt = MqttConfig::new(gateway, password, host.clone(), port);
            mqtt.ca_file = args.ca_file.clone();
            let publisher = Publisher::new(mqtt, outbox.clone()).with_context(|| format!("while setting up MQTT for {id}"))?;
            let mut stop = stop_rx.clone();
            let publisher_task = tokio::spawn(publisher.run(async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
            let home = HomeSim::new(i, scenario.events_for(i), start, !args.no_ecg, args.speed.ceil() as u64);
            homes.push((id, outbox, home, publisher_task));
        }
        tracing::info!(homes = homes.len(), scenario = %scenario.name, speed = args.speed, "Simulation started.");
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let end = args.duration_h.map(|h| start + chrono::Duration::milliseconds((h * 3_600_000.0) as i64));
        let mut stored = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let elapsed = started.elapsed().as_secs_f64() * args.speed;
            let mut now = start + chrono::Duration::milliseconds((elapsed * 1000.0) as i64);
            if let Some(end) = end {
                now = now.min(end);
            }
            for (id, outbox, home, _) in &mut homes {
                let bodies = home.advance(now);
                for chunk in bodies.chunks(64) {
                    match outbox.store(chunk) {
                        Ok(range) => stored += range.end - range.start,
                        Err(error) => tracing::error!(gateway_id = %id, error = %error, "Outbox refused simulated readings."),
                    }
                }
            }
            if end.is_some_and(|e| now >= e) {
                break;
            }
        }
        // Give the publishers time to deliver what is queued and see it acknowledged.
        let drained = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if homes.iter().all(|(_, o, _, _)| o.with(|o| o.status().unacknowledged) == 0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .is_ok();
        let _ = stop_tx.send(true);
        let mut unacknowledged = 0;
        for (_, outbox, _, task) in homes {
            let _ = task.await;
            unacknowledged += outbox.with(|o| o.status().unacknowledged);
        }
        println!("{}", serde_json::json!({ "messages_stored": stored, "unacknowledged": unacknowledged, "drained": drained }));
        Ok(if drained { ExitCode::SUCCESS } else { ExitCode::from(3) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtt://127.0.0.1:1883").unwrap(),
            (false, "127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_broker("mqtts://broker.example:8883/").unwrap(),
            (true, "broker.example".into(), 8883)
        );
        assert!(parse_broker("http://x:1").is_err());
        assert!(parse_broker("mqtt://nohost").is_err());
    }
}
