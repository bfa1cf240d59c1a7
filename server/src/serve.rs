//! `mimamori-server serve`: wires source → committer → hot path → sinks and runs until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::config::{Config, HttpListenConfig, MqttConfig, RetentionConfig};
use crate::hot_path::HotPath;
use crate::ingest::Committer;
use crate::sinks::gateway_config;
use crate::sinks::live_feed::LiveFeed;
use crate::sources::{embedded_broker, mqtt};
use crate::storage::{self, Storage};
use crate::telemetry::Telemetry;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Without one: embedded broker on loopback and a SQLite file.
    #[arg(long, env = "MIMAMORI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// What the other parts of the server (HTTP, alerts) are handed when they start.
#[derive(Clone, Debug)]
pub struct Services<S> {
    pub store: S,
    pub feed: LiveFeed,
    pub telemetry: Telemetry,
}

/// Installs the tracing subscriber once (RUST_LOG; default `info`, the embedded broker `warn`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let config = Config::load(args.config.as_deref()).context("while loading the configuration")?;
    if args.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    // rumqttc is built without a default crypto provider; TLS to the broker uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let embedded = config.mqtt.is_none();
    let mqtt_config = match &config.mqtt {
        Some(mqtt) => mqtt.clone(),
        None => {
            let address = embedded_broker::start(config.embedded_broker.listen)
                .context("while starting the embedded broker")?;
            announce(format_args!(
                "mimamori: embedded MQTT broker (demo only: no ACL, no persistence) on mqtt://{address}"
            ));
            MqttConfig {
                host: address.ip().to_string(),
                port: address.port(),
                client_id: "mimamori-server".to_owned(),
                username: "mimamori-server".to_owned(),
                password: None,
                ca_file: None,
                keep_alive_s: 15,
            }
        }
    };
    let opened = storage::open(&config.storage)
        .await
        .context("while opening storage")?;
    crate::with_storage!(opened, |store| serve_with(
        store,
        config,
        mqtt_config,
        embedded
    )
    .await)
}

async fn serve_with<S: Storage>(
    store: S,
    config: Config,
    mqtt_config: MqttConfig,
    embedded: bool,
) -> anyhow::Result<()> {
    let services = Services {
        store: store.clone(),
        feed: LiveFeed::new(),
        telemetry: Telemetry::new(),
    };
    let checkpoints = store
        .checkpoints()
        .await
        .context("while loading checkpoints")?;
    let hot_path = HotPath::start(
        &config.hot_path,
        store.clone(),
        services.feed.clone(),
        services.telemetry.clone(),
        checkpoints,
    );
    let (acker, source) =
        mqtt::connect(mqtt::options(&mqtt_config).context("while configuring MQTT")?);
    let gateway_config_task =
        gateway_config::spawn(store.clone(), acker.clone(), &config.gateway_config);
    let committer = Committer::new(
        store.clone(),
        config.ingest.clone(),
        services.telemetry.clone(),
        services.feed.clone(),
        hot_path,
        acker,
    )
    .await
    .context("while loading loans and watermarks")?;
    let (tx, rx) = mpsc::channel(config.ingest.queue_capacity);
    let source_task = tokio::spawn(source.run(tx));
    let committer_task = tokio::spawn(committer.run(rx));
    let retention_task = tokio::spawn(run_retention(store.clone(), config.retention.clone()));
    let http_task = if embedded {
        Some(start_demo_http(&config.http).await?)
    } else {
        // The HTTP edge reads through `http::data::ClinicalData`; its implementation over
        // `services` (registry, storage, live feed) is not written yet.
        let _ = &services;
        tracing::warn!("HTTP edge not started: no ClinicalData over storage yet.");
        None
    };
    tracing::info!(broker = %format!("{}:{}", mqtt_config.host, mqtt_config.port), "Server started.");

    shutdown_signal().await;
    tracing::info!("Stopping: finishing the current batch.");
    source_task.abort();
    let _ = source_task.await;
    let _ = committer_task.await;
    retention_task.abort();
    gateway_config_task.abort();
    if let Some(task) = http_task {
        task.abort();
    }
    Ok(())
}

/// Serves the dashboard for the one-command demo: on `listen`, or on a free port of the same
/// address when that one is taken, printed on stdout with the demo accounts.
///
/// Its clinical data is the HTTP layer's in-memory simulation (`http::simulated`), not what ingest
/// stores: the `ClinicalData` port over storage and the live feed is still to be written.
async fn start_demo_http(config: &HttpListenConfig) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use crate::http::demo::{DEMO_DETERIORATION_EVERY, simulated_state};
    use crate::http::simulated::DEMO_ACCOUNTS;

    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!(listen = %config.listen, "HTTP port taken; picking a free one.");
            tokio::net::TcpListener::bind((config.listen.ip(), 0))
                .await
                .context("while binding the HTTP listener on a free port")?
        }
        Err(error) => {
            return Err(error).with_context(|| format!("while binding {}", config.listen));
        }
    };
    let address = listener
        .local_addr()
        .context("while reading the HTTP address")?;
    let (state, simulation) = simulated_state(crate::http::HttpConfig::default(), 1)
        .await
        .context("while setting up the demo dashboard")?;
    tokio::spawn(simulation.run(Some(DEMO_DETERIORATION_EVERY)));
    announce(format_args!(
        "mimamori: dashboard on http://{address}/ (simulated clinical data)"
    ));
    for account in DEMO_ACCOUNTS {
        announce(format_args!(
            "mimamori: demo account {} / {} ({:?})",
            account.login, account.password, account.role
        ));
    }
    Ok(tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(error) = crate::http::serve(listener, state, never).await {
            tracing::error!(error = %error, "HTTP edge stopped.");
        }
    }))
}

async fn run_retention<S: Storage>(store: S, config: RetentionConfig) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.interval_s.max(60)));
    loop {
        tick.tick().await;
        let now = Utc::now();
        let medical = now - chrono::Duration::days(i64::from(config.medical_record_days));
        let other = now - chrono::Duration::days(i64::from(config.other_record_days));
        match store.apply_retention(medical, other).await {
            Ok(report) => tracing::info!(dropped = ?report.dropped, "Retention job ran."),
            Err(error) => tracing::error!(error = %error, "Retention job failed."),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Prints a start-up line for whoever started the server (the demo script reads them). A closed
/// stdout must not stop a running server, so a failed write is only logged.
fn announce(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        tracing::warn!(%error, "Could not print a start-up line.");
    }
}
