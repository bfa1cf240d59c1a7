//! `mimamori-server serve`: wires source → committer → hot path → alert service → storage, live
//! feed and HTTP edge, and runs until stopped.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::alerts::engine::PatientContext;
use crate::alerts::feed::{self, AlertFeed};
use crate::alerts::notify::{Notifier, OnCallRecipients};
use crate::alerts::rules::{Overrides, RuleSet};
use crate::alerts::schedule;
use crate::alerts::service::{AlertCore, AlertHandle, Clock, ServiceConfig};
use crate::alerts::store::{AlertStore, PgAlertStore, SqliteAlertStore};
use crate::alerts::webhook::Webhook;
use crate::config::{Config, HttpListenConfig, MqttConfig, NotifyConfig, RetentionConfig};
use crate::hot_path::HotPath;
use crate::http::audit::AuditLog;
use crate::http::auth::session_journal::SessionJournal;
use crate::http::stored::StoredData;
use crate::http::{AppState, HttpConfig};
use crate::ingest::Committer;
use crate::oncall::coverage::CoverageConfig;
use crate::oncall::live::LiveRouting;
use crate::oncall::rota::RotaFile;
use crate::registry::Directory;
use crate::sinks::gateway_config;
use crate::sinks::live_feed::LiveFeed;
use crate::sources::mqtt::BrokerLiveness;
use crate::sources::{embedded_broker, mqtt};
use crate::storage::{self, Opened, Storage};
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
    let (audit, sessions) = match &opened {
        Opened::Timescale(s) => (
            AuditLog::Postgres(s.pool().clone()),
            SessionJournal::Postgres(s.pool().clone()),
        ),
        Opened::Sqlite(s) => (
            AuditLog::Sqlite(s.pool().clone()),
            SessionJournal::Sqlite(s.pool().clone()),
        ),
    };
    let backend = Backend {
        directory: Directory::of(&opened),
        audit,
        sessions,
        config,
        mqtt_config,
        embedded,
    };
    match opened {
        Opened::Timescale(store) => {
            let alerts = PgAlertStore::new(store.pool().clone());
            serve_with(store, alerts, backend).await
        }
        Opened::Sqlite(store) => {
            let alerts = SqliteAlertStore::new(store.pool().clone());
            serve_with(store, alerts, backend).await
        }
    }
}

/// What `serve_with` needs besides the two stores.
struct Backend {
    directory: Directory,
    audit: AuditLog,
    sessions: SessionJournal,
    config: Config,
    mqtt_config: MqttConfig,
    embedded: bool,
}

async fn serve_with<S: Storage, A: AlertStore + Clone + 'static>(
    store: S,
    alert_store: A,
    backend: Backend,
) -> anyhow::Result<()> {
    let Backend {
        directory,
        audit,
        sessions,
        config,
        mqtt_config,
        embedded,
    } = backend;
    let feed = LiveFeed::new();
    let telemetry = Telemetry::new();

    // Rules stage: the alert service and the feed ingest and the hot path write into.
    let alert_config = ServiceConfig::default();
    let rules = RuleSet::builtin();
    let stored_overrides = alert_store
        .latest_overrides()
        .await
        .context("while reading rule overrides")?;
    let overrides = Overrides::restore(&rules, stored_overrides, Utc::now());
    let mut core = AlertCore::resume(alert_store.clone(), rules, overrides, &alert_config)
        .await
        .context("while resuming the alert service")?;
    let patients = store.patients().await.context("while reading patients")?;
    for patient in &patients {
        core.engine_mut()
            .set_patient(&patient.id, patient_context(patient));
    }
    let ids: Vec<String> = patients.into_iter().map(|p| p.id).collect();
    let replayed = feed::replay(&mut core, &store, &ids, Utc::now())
        .await
        .context("while replaying observations into the alert engine")?;
    tracing::info!(replayed, "Alert engine caught up with stored observations.");
    let alerts = AlertHandle::spawn(core, Clock::system(), &alert_config);
    let notifier_task = match &config.notify {
        Some(notify) => Some(start_notifier(notify, &directory, alerts.clone()).await?),
        None => {
            tracing::warn!("No [notify] section: alerts reach the dashboards only.");
            None
        }
    };
    let (alert_feed, alert_inputs) = AlertFeed::channel(feed::DEFAULT_CAPACITY);
    let alert_feed_task = tokio::spawn(feed::run(alert_inputs, alerts.clone(), directory.clone()));

    let checkpoints = store
        .checkpoints()
        .await
        .context("while loading checkpoints")?;
    let hot_path = HotPath::start(
        &config.hot_path,
        store.clone(),
        feed.clone(),
        alert_feed.clone(),
        telemetry.clone(),
        checkpoints,
    );
    let (acker, source) =
        mqtt::connect(mqtt::options(&mqtt_config).context("while configuring MQTT")?);
    let gateway_config_task =
        gateway_config::spawn(store.clone(), acker.clone(), &config.gateway_config);
    let committer = Committer::new(
        store.clone(),
        config.ingest.clone(),
        telemetry.clone(),
        feed.clone(),
        alert_feed,
        hot_path,
        acker,
    )
    .await
    .context("while loading loans and watermarks")?;
    let (tx, rx) = mpsc::unbounded_channel();
    let broker = source.liveness();
    let source_task = tokio::spawn(source.run(tx));
    let committer_task = tokio::spawn(committer.run(rx));
    let retention_task = tokio::spawn(run_retention(store.clone(), config.retention.clone()));
    let heartbeat_task = tokio::spawn(write_heartbeats(
        alert_store.clone(),
        telemetry.clone(),
        broker,
        notifier_task.clone(),
    ));

    let data = StoredData::start(
        store.clone(),
        directory.clone(),
        feed.clone(),
        alert_store,
        alerts,
    )
    .await
    .context("while loading alerts for the HTTP edge")?;
    let metrics = telemetry.clone();
    let state = AppState::new(HttpConfig::default(), data, audit)
        .with_session_journal(sessions)
        .with_extra_metrics(move || metrics.render_prometheus());
    let restored = state.restore_sessions().await;
    tracing::info!(restored, "Dashboard sessions restored.");
    let http_task = start_http(&config.http, state).await?;
    if embedded {
        announce_demo_accounts(&directory).await;
    }
    tracing::info!(broker = %format!("{}:{}", mqtt_config.host, mqtt_config.port), "Server started.");

    shutdown_signal().await;
    tracing::info!("Stopping: finishing the current batch.");
    source_task.abort();
    let _ = source_task.await;
    let _ = committer_task.await;
    retention_task.abort();
    heartbeat_task.abort();
    gateway_config_task.abort();
    alert_feed_task.abort();
    http_task.abort();
    if let Some(task) = notifier_task {
        task.abort();
    }
    Ok(())
}

/// What the alert engine needs from a patient's record.
fn patient_context(patient: &crate::storage::Patient) -> PatientContext {
    let known_af = patient.main_diseases.iter().any(|d| {
        let d = d.to_lowercase();
        d.contains("心房細動") || d.contains("atrial fibrillation")
    });
    let schedule = match patient.reading_schedule.as_deref().map(schedule::parse) {
        None => Vec::new(),
        Some(Ok(schedule)) => schedule,
        Some(Err(error)) => {
            // The patient is still monitored; only missed-reading alerts are off until fixed.
            tracing::error!(patient_id = %patient.id, %error, "Reading schedule unreadable; no missed-reading alerts.");
            Vec::new()
        }
    };
    PatientContext {
        known_af,
        schedule,
        monitored_since: patient.consent_monitoring_at,
    }
}

/// Starts the notifier: the rota over the registry's care network decides whom, the signed
/// webhook carries it. A rota naming a clinic or user the registry does not have stops the start.
async fn start_notifier(
    config: &NotifyConfig,
    directory: &Directory,
    alerts: AlertHandle,
) -> anyhow::Result<NotifierTask> {
    let rota_file = &config.rota_file;
    let shifts = RotaFile::load(rota_file)?
        .all_shifts()
        .with_context(|| format!("while checking {}", rota_file.display()))?;
    let routing = LiveRouting::start(directory.clone(), CoverageConfig::default(), shifts)
        .await
        .with_context(|| {
            format!(
                "while checking {} against the registry",
                rota_file.display()
            )
        })?;
    let mut webhook = config.webhook.clone();
    if webhook.secret.is_empty() {
        webhook.secret = std::env::var("MIMAMORI_WEBHOOK_SECRET").unwrap_or_default();
    }
    anyhow::ensure!(
        !webhook.secret.is_empty(),
        "notify.webhook.secret or MIMAMORI_WEBHOOK_SECRET must be set: receivers verify the signature"
    );
    let webhook = Webhook::new(webhook).context("while building the webhook client")?;
    let refresh = tokio::spawn(routing.clone().keep_current());
    let notifier =
        tokio::spawn(Notifier::new(OnCallRecipients::new(routing), webhook, alerts).run());
    Ok(NotifierTask(std::sync::Arc::new([notifier, refresh])))
}

/// The running notifier and the task keeping its routing current, shared with the heartbeat
/// writer (it beats while both live).
#[derive(Clone, Debug)]
struct NotifierTask(std::sync::Arc<[tokio::task::JoinHandle<()>; 2]>);

impl NotifierTask {
    fn alive(&self) -> bool {
        self.0.iter().all(|task| !task.is_finished())
    }

    fn abort(&self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Writes the heartbeats the watchdog reads: `ingest` unless a commit has been stuck for a
/// minute (an idle programme at night is not a silent ingest), `broker_subscription` while the
/// broker answers (keep-alive pings every 15 s), `notifier` while its task runs (none runs
/// without a `[notify]` section, and the watchdog then says so).
async fn write_heartbeats<A: AlertStore>(
    store: A,
    telemetry: Telemetry,
    broker: BrokerLiveness,
    notifier: Option<NotifierTask>,
) {
    const STUCK: Duration = Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let now = Utc::now();
        let ingest_alive = telemetry.committing_for().is_none_or(|d| d < STUCK);
        let broker_alive = broker.silent_for().is_some_and(|d| d < STUCK);
        let notifier_alive = notifier.as_ref().is_some_and(NotifierTask::alive);
        for component in [
            ingest_alive.then_some("ingest"),
            broker_alive.then_some("broker_subscription"),
            notifier_alive.then_some("notifier"),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(error) = store.heartbeat(component, now).await {
                tracing::error!(component, %error, "Writing a heartbeat failed.");
            }
        }
    }
}

/// Serves the HTTP edge on `config.listen`, or on a free port of the same address when that one
/// is taken (the one-command demo must start on a busy machine), and prints where.
async fn start_http(
    config: &HttpListenConfig,
    state: AppState,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
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
    announce(format_args!("mimamori: dashboard on http://{address}/"));
    Ok(tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(error) = crate::http::serve(listener, state, never).await {
            tracing::error!(error = %error, "HTTP edge stopped.");
        }
    }))
}

/// On the embedded demo, prints the invented demo accounts that the seeded registry holds.
async fn announce_demo_accounts(directory: &Directory) {
    use crate::http::simulated::DEMO_ACCOUNTS;
    for account in DEMO_ACCOUNTS {
        if let Ok(Some(_)) = directory.account_by_login(account.login).await {
            announce(format_args!(
                "mimamori: demo account {} / {} ({:?})",
                account.login, account.password, account.role
            ));
        }
    }
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
