//! `run --config FILE` (the gateway service) and `scan` (list what is around).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use mimamori_gateway::ble::Radio;
use mimamori_gateway::config::Config;
use mimamori_gateway::devices::model;
use mimamori_gateway::outbox::{Outbox, OutboxConfig, SharedOutbox};
use mimamori_gateway::publish::Publisher;
use mimamori_gateway::session;
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "MIMAMORI_GATEWAY_CONFIG")]
    config: PathBuf,
    /// Only check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// How long to scan, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Two workers: the gateway is a small box and the work is I/O.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("while starting the runtime")
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)
        .with_context(|| format!("while loading {}", args.config.display()))?;
    if args.check_config {
        println!(
            "configuration OK: gateway {}, {} allowed devices",
            config.mqtt.gateway_id,
            config.devices.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let outbox = Outbox::open(
        &config.outbox_dir,
        OutboxConfig {
            quota_bytes: config.outbox_quota_bytes,
            ..OutboxConfig::default()
        },
    )
    .with_context(|| {
        format!(
            "while opening the outbox at {}",
            config.outbox_dir.display()
        )
    })?;
    let recovery = outbox.recovery().clone();
    tracing::info!(gateway_id = %config.mqtt.gateway_id, epoch = %outbox.epoch(), records = recovery.records, truncated_bytes = recovery.truncated_bytes, "Outbox opened.");
    let outbox = SharedOutbox::new(outbox);
    runtime()?.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let publisher =
            Publisher::new(config.mqtt.clone(), outbox.clone()).context("while setting up MQTT")?;
        let allow_list = publisher.allow_list();
        let mut stop = stop_rx.clone();
        let publisher_task = tokio::spawn(publisher.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        let ble_task = tokio::spawn(async move {
            let result = session::run_gateway(config, outbox, allow_list, stop_rx).await;
            if let Err(error) = &result {
                // Readings stop here; the outbox and publisher keep draining what is stored.
                tracing::error!(error = %error, "BLE stopped.");
            }
            result
        });
        let mut signals = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("while installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = signals.recv() => {}
        }
        tracing::info!("Shutting down.");
        let _ = stop_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(10), ble_task).await {
            Ok(_) => {}
            Err(_) => tracing::warn!("BLE sessions did not stop in time."),
        }
        let _ = publisher_task.await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let radio = Radio::first_adapter()
            .await
            .context("while opening the Bluetooth adapter")?;
        let mut ads = radio
            .scan(&session::scan_services())
            .await
            .context("while starting the scan")?;
        let mut seen = std::collections::HashSet::new();
        let deadline = tokio::time::sleep(Duration::from_secs(args.seconds));
        tokio::pin!(deadline);
        loop {
            let adv = tokio::select! {
                () = &mut deadline => break,
                a = ads.next() => match a { Some(a) => a, None => break },
            };
            if !seen.insert(adv.address.clone()) {
                continue;
            }
            let family = model::identify(adv.name.as_deref(), &adv.services);
            let line = serde_json::json!({
                "address": adv.address,
                "name": adv.name,
                "rssi": adv.rssi,
                "services": adv.services.iter().map(|s| model::uuid_string(*s)).collect::<Vec<_>>(),
                "family": family.as_ref().ok(),
                "unknown": family.as_ref().err().map(ToString::to_string),
            });
            println!("{line}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
