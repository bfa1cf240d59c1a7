//! The alert lifecycle persisted: restart resumes exactly, escalation runs on tokio's paused clock.
//! Each test body runs on SQLite (temp file) and on PostgreSQL + TimescaleDB from the testkit.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mimamori_server::alerts::engine::{Input, Observation};
use mimamori_server::alerts::lifecycle::{Alert, AlertState, Transition};
use mimamori_server::alerts::rules::{Measure, Override, Overrides, RuleSet};
use mimamori_server::alerts::service::{AlertCore, AlertHandle, Clock, ServiceConfig};
use mimamori_server::alerts::store::{
    AlertStore, EngineCheckpoint, PgAlertStore, SqliteAlertStore, StoreError,
};
use sqlx::sqlite::SqliteConnectOptions;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 17, 0, 0).unwrap()
}

fn vital(s: i64, patient: &str, measure: Measure, value: f64) -> Input {
    Input {
        at: t0() + TimeDelta::seconds(s),
        patient: patient.into(),
        observation: Observation::Vital {
            measure,
            value,
            artefact: false,
        },
    }
}

async fn sqlite(path: std::path::PathBuf) -> SqliteAlertStore {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    SqliteAlertStore::migrate(pool).await.unwrap()
}

async fn postgres(url: String) -> PgAlertStore {
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    PgAlertStore::migrate(pool).await.unwrap()
}

fn pg_url() -> String {
    mimamori_testkit::Postgres::shared()
        .unwrap()
        .create_database()
        .unwrap()
}

/// A store whose queries run on a runtime of their own with a real clock.
///
/// A paused tokio clock jumps to the next timer whenever its runtime waits on I/O, so the pool's
/// acquire timeout would fire at once and escalation timers would race ahead. Running the database
/// work on a real-time runtime keeps the database real while the alert service's timers run on the
/// paused clock.
#[derive(Clone)]
struct OnRealClock<S> {
    store: S,
    runtime: tokio::runtime::Handle,
}

impl<S: AlertStore + Clone + Send + 'static> OnRealClock<S> {
    /// Builds the store on a new real-time runtime thread.
    fn new<F: Future<Output = S> + Send + 'static>(
        make: impl FnOnce() -> F + Send + 'static,
    ) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let store = rt.block_on(make());
            tx.send((store, rt.handle().clone())).unwrap();
            rt.block_on(std::future::pending::<()>());
        });
        let (store, runtime) = rx.recv().unwrap();
        Self { store, runtime }
    }

    /// Runs `f` on the real-time runtime and blocks this thread until it is done. Blocking (not
    /// awaiting) is the point: a runtime that is blocked is not idle, so its paused clock does
    /// not jump ahead while the database works.
    async fn run<T, F>(&self, f: impl FnOnce(S) -> F) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let work = f(self.store.clone());
        self.runtime
            .spawn(async move { tx.send(work.await).unwrap() });
        rx.recv().unwrap()
    }
}

impl<S: AlertStore + Clone + Send + 'static> AlertStore for OnRealClock<S> {
    async fn save(
        &self,
        alerts: &[Alert],
        transitions: &[Transition],
        checkpoint: Option<&EngineCheckpoint>,
    ) -> Result<(), StoreError> {
        let (a, t, c) = (alerts.to_vec(), transitions.to_vec(), checkpoint.cloned());
        self.run(move |s| async move { s.save(&a, &t, c.as_ref()).await })
            .await
    }
    async fn load(&self) -> Result<(Vec<Alert>, Option<EngineCheckpoint>), StoreError> {
        self.run(|s| async move { s.load().await }).await
    }
    async fn transitions(&self, id: uuid::Uuid) -> Result<Vec<Transition>, StoreError> {
        self.run(move |s| async move { s.transitions(id).await })
            .await
    }
    async fn audit_override(&self, o: &Override) -> Result<(), StoreError> {
        let o = o.clone();
        self.run(move |s| async move { s.audit_override(&o).await })
            .await
    }
    async fn latest_overrides(&self) -> Result<Vec<Override>, StoreError> {
        self.run(|s| async move { s.latest_overrides().await })
            .await
    }
    async fn heartbeat(&self, component: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let c = component.to_owned();
        self.run(move |s| async move { s.heartbeat(&c, at).await })
            .await
    }
    async fn heartbeats(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.run(|s| async move { s.heartbeats().await }).await
    }
}

/// A night of two patients: a desaturation that clears, a hypotensive reading, a fever.
fn scenario() -> Vec<Input> {
    let mut inputs = Vec::new();
    for s in 0..600 {
        let spo2 = if (100..300).contains(&s) { 86.0 } else { 95.0 };
        inputs.push(vital(s, "p1", Measure::Spo2, spo2));
        if s == 200 {
            inputs.push(vital(s, "p2", Measure::SystolicBp, 85.0));
        }
        if s == 400 {
            inputs.push(vital(s, "p2", Measure::BodyTemperature, 38.4));
        }
        if s == 500 {
            inputs.push(vital(s, "p2", Measure::BodyTemperature, 37.0));
        }
    }
    inputs
}

async fn run_all<S: AlertStore>(core: &mut AlertCore<S>, inputs: &[Input]) -> Vec<Transition> {
    let mut out = Vec::new();
    for i in inputs {
        out.extend(core.observe(i).await.unwrap());
    }
    out
}

/// Every stored alert with its full history, in a comparable form.
async fn stored<S: AlertStore>(store: &S) -> Vec<(String, String, AlertState, Vec<Transition>)> {
    let (alerts, _) = store.load().await.unwrap();
    let mut out = Vec::new();
    for a in alerts {
        let ts = store.transitions(a.id).await.unwrap();
        out.push((a.patient, a.key, a.state, ts));
    }
    out
}

/// `new_db` makes an empty database and returns where it is; `open` connects to one (as a
/// restarted server would) and migrates it.
async fn restart_in_the_middle_changes_nothing<S: AlertStore, F: Future<Output = S>>(
    mut new_db: impl FnMut() -> String,
    open: impl Fn(String) -> F,
) {
    let config = ServiceConfig::default();
    let inputs = scenario();
    let rules = RuleSet::builtin();
    let resume = |store| AlertCore::resume(store, rules.clone(), Overrides::default(), &config);

    let reference = new_db();
    let mut whole = resume(open(reference.clone()).await).await.unwrap();
    run_all(&mut whole, &inputs).await;
    let expected = stored(&open(reference).await).await;
    assert_eq!(
        expected
            .iter()
            .map(|(p, k, s, _)| (p.as_str(), k.as_str(), *s))
            .collect::<Vec<_>>(),
        vec![
            // High priority latches: open until acknowledged.
            ("p1", "spo2_low", AlertState::ClearedUnacknowledged),
            // No reading has cleared it.
            ("p2", "systolic_low", AlertState::Raised),
            // Medium priority: closed when the fever went.
            ("p2", "temperature_high", AlertState::ClearedUnacknowledged),
        ]
    );

    for cut in [150, 250, 401, 520] {
        let db = new_db();
        let mut first = resume(open(db.clone()).await).await.unwrap();
        run_all(&mut first, &inputs[..cut]).await;
        drop(first);
        // The restarted server is fed everything again, as a re-subscribing ingest would replay.
        let mut second = resume(open(db.clone()).await).await.unwrap();
        run_all(&mut second, &inputs).await;
        assert_eq!(
            stored(&open(db).await).await,
            expected,
            "restart after {cut} inputs"
        );
    }
}

#[tokio::test]
async fn restart_in_the_middle_changes_nothing_on_sqlite() {
    let dirs = std::cell::RefCell::new(Vec::new());
    let new_db = || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db").to_string_lossy().into_owned();
        dirs.borrow_mut().push(dir);
        path
    };
    restart_in_the_middle_changes_nothing(new_db, |path| sqlite(path.into())).await;
}

#[tokio::test]
async fn restart_in_the_middle_changes_nothing_on_postgres() {
    restart_in_the_middle_changes_nothing(pg_url, postgres).await;
}

async fn unacknowledged_alert_escalates_after_its_delay<S: AlertStore + Clone + 'static>(store: S) {
    let config = ServiceConfig::default();
    let clock = Clock::starting_at(t0());
    let core = AlertCore::resume(
        store.clone(),
        RuleSet::builtin(),
        Overrides::default(),
        &config,
    )
    .await
    .unwrap();
    let handle = AlertHandle::spawn(core, clock, &config);
    let mut events = handle.subscribe();

    // p1: hypotension (high), acknowledged after 100 s: never escalates.
    // p2: hypotension (high), never acknowledged: escalates after 300 s, then every 300 s.
    handle
        .observe(vital(0, "p1", Measure::SystolicBp, 82.0))
        .await
        .unwrap();
    handle
        .observe(vital(0, "p2", Measure::SystolicBp, 84.0))
        .await
        .unwrap();
    let p1 = events.recv().await.unwrap().alert.id;
    let p2 = events.recv().await.unwrap().alert.id;
    handle.notified(p2, "webhook:pager").await.unwrap();
    assert_eq!(
        events.recv().await.unwrap().transition.to,
        AlertState::Notified
    );
    tokio::time::sleep(std::time::Duration::from_secs(100)).await;
    handle.acknowledge(p1, "dr-sato").await.unwrap();
    assert_eq!(
        events.recv().await.unwrap().transition.to,
        AlertState::Acknowledged
    );

    // Waiting for the next event lets the paused clock run to the next timer that does something.
    // The tick runs every 5 s.
    let escalated = events.recv().await.unwrap();
    let after = escalated.transition.at - t0();
    assert_eq!(
        (escalated.alert.id, escalated.transition.to),
        (p2, AlertState::Escalated)
    );
    assert_eq!(escalated.alert.level, 1);
    assert!(
        after >= TimeDelta::seconds(300) && after < TimeDelta::seconds(305),
        "{after}"
    );
    let again = events.recv().await.unwrap();
    assert_eq!((again.alert.id, again.alert.level), (p2, 2));
    let after = again.transition.at - escalated.transition.at;
    assert!(
        after >= TimeDelta::seconds(300) && after < TimeDelta::seconds(305),
        "{after}"
    );

    let p2_history: Vec<_> = store
        .transitions(p2)
        .await
        .unwrap()
        .iter()
        .map(|t| t.to)
        .collect();
    assert_eq!(
        p2_history,
        vec![
            AlertState::Raised,
            AlertState::Notified,
            AlertState::Escalated,
            AlertState::Escalated
        ]
    );
    let p1_history = store.transitions(p1).await.unwrap();
    assert_eq!(p1_history.last().unwrap().to, AlertState::Acknowledged);
    assert_eq!(p1_history.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn unacknowledged_alert_escalates_after_its_delay_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    unacknowledged_alert_escalates_after_its_delay(OnRealClock::new(move || sqlite(path))).await;
}

#[tokio::test(start_paused = true)]
async fn unacknowledged_alert_escalates_after_its_delay_on_postgres() {
    let url = pg_url();
    unacknowledged_alert_escalates_after_its_delay(OnRealClock::new(move || postgres(url))).await;
}
