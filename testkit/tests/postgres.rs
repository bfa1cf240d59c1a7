//! The harness's PostgreSQL: TimescaleDB Apache edition preloaded, a database per test, and no
//! cluster left behind however its owner ends.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mimamori_testkit::{Postgres, wait_until};
use sqlx::{Connection, PgConnection, Row};

/// Set in the child process of `cluster_is_stopped_when_its_owner_process_is_killed`: where it
/// reports its cluster.
const OWNER_REPORT_ENV: &str = "MIMAMORI_TESTKIT_OWNER_REPORT";
/// Set in the child processes of `one_nextest_run_shares_a_cluster_until_the_runner_exits`: the
/// directory they report their cluster in.
const MEMBER_REPORTS_ENV: &str = "MIMAMORI_TESTKIT_MEMBER_REPORTS";

async fn connect_fresh_database() -> PgConnection {
    let url = Postgres::shared()
        .expect("shared cluster starts")
        .create_database()
        .expect("createdb");
    PgConnection::connect(&url)
        .await
        .expect("connect to the test database")
}

#[tokio::test]
async fn timescaledb_apache_edition_is_in_every_new_database() {
    let mut db = connect_fresh_database().await;

    let license: String = sqlx::query_scalar("SHOW timescaledb.license")
        .fetch_one(&mut db)
        .await
        .expect("timescaledb.license is a setting");
    assert_eq!(license, "apache");

    let version: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            .fetch_one(&mut db)
            .await
            .expect("extension installed in the new database");
    assert!(
        version.starts_with("2."),
        "unexpected timescaledb version {version}"
    );
}

#[tokio::test]
async fn hypertable_splits_rows_into_daily_chunks_and_buckets_them() {
    let mut db = connect_fresh_database().await;
    sqlx::query(
        "CREATE TABLE spo2 (time timestamptz NOT NULL, patient int NOT NULL, percent real)",
    )
    .execute(&mut db)
    .await
    .expect("create table");
    sqlx::query("SELECT create_hypertable('spo2', by_range('time', INTERVAL '1 day'))")
        .execute(&mut db)
        .await
        .expect("create_hypertable works under the apache licence");
    // Two days, one reading a minute, SpO2 dropping by 0.001 % per minute.
    sqlx::query(
        "INSERT INTO spo2 SELECT t, 1, 98 - 0.001 * extract(epoch FROM t - '2026-01-01')::real / 60
         FROM generate_series('2026-01-01'::timestamptz, '2026-01-02 23:59', '1 minute') AS t",
    )
    .execute(&mut db)
    .await
    .expect("insert");

    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM show_chunks('spo2')")
        .fetch_one(&mut db)
        .await
        .expect("show_chunks");
    assert_eq!(chunks, 2, "one chunk per day");

    let buckets = sqlx::query(
        "SELECT time_bucket('1 day', time) AS day, count(*) AS n, first(percent, time) AS opening
         FROM spo2 GROUP BY day ORDER BY day",
    )
    .fetch_all(&mut db)
    .await
    .expect("time_bucket and first");
    let counts: Vec<i64> = buckets.iter().map(|row| row.get("n")).collect();
    assert_eq!(counts, [1440, 1440]);
    let second_day_opening: f32 = buckets[1].get("opening");
    assert!(
        (second_day_opening - (98.0 - 1.44)).abs() < 1e-3,
        "got {second_day_opening}"
    );
}

#[tokio::test]
async fn each_test_database_starts_empty() {
    let cluster = Postgres::shared().expect("shared cluster starts");
    let first_url = cluster.create_database().expect("createdb");
    let second_url = cluster.create_database().expect("createdb");
    assert_ne!(first_url, second_url);

    let mut first = PgConnection::connect(&first_url).await.expect("connect");
    sqlx::query("CREATE TABLE only_here (x int)")
        .execute(&mut first)
        .await
        .expect("create");
    let mut second = PgConnection::connect(&second_url).await.expect("connect");
    let visible: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_tables WHERE tablename = 'only_here')")
            .fetch_one(&mut second)
            .await
            .expect("query");
    assert!(!visible);
}

#[test]
fn dropping_a_cluster_stops_it_and_removes_its_directory() {
    let cluster = Postgres::start().expect("cluster starts");
    let (dir, port) = (cluster.dir().to_owned(), cluster.port());
    assert!(accepts_connections(port));

    drop(cluster);

    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !accepts_connections(port),
        "server still listening on {port}"
    );
}

#[tokio::test]
async fn cluster_is_stopped_when_its_owner_process_is_killed() {
    let report = mimamori_testkit::ScratchDir::new("mmk-test-").expect("scratch dir");
    let report_path = report.path().join("owner");
    let mut owner = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--ignored", "--exact", "cluster_owner", "--nocapture"])
        .env(OWNER_REPORT_ENV, &report_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn owner process");
    wait_until(Duration::from_secs(30), || async { report_path.exists() })
        .await
        .expect("owner reports its cluster");
    let (dir, port) = read_report(&report_path);
    assert!(accepts_connections(port));

    owner.kill().expect("SIGKILL the owner: no destructor runs");
    owner.wait().expect("reap owner");

    wait_until(Duration::from_secs(10), || async {
        !dir.exists() && !accepts_connections(port)
    })
    .await
    .expect("watchdog stops the orphaned cluster and removes its directory");
}

/// Not a test: the process `cluster_is_stopped_when_its_owner_process_is_killed` kills.
#[test]
#[ignore = "helper process for cluster_is_stopped_when_its_owner_process_is_killed"]
fn cluster_owner() {
    let Some(report_path) = std::env::var_os(OWNER_REPORT_ENV) else {
        return;
    };
    let cluster = Postgres::start().expect("cluster starts");
    write_report(Path::new(&report_path), &cluster);
    // Wait to be killed; if the parent test fails first, our stdin closes and we end normally.
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()).expect("read stdin");
}

#[tokio::test]
async fn one_nextest_run_shares_a_cluster_until_the_runner_exits() {
    let reports = mimamori_testkit::ScratchDir::new("mmk-test-").expect("scratch dir");
    // A stand-in for the nextest runner: a shell whose two children are test processes of one
    // run, starting at the same moment.
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"for i in 1 2; do "$0" --ignored --exact run_member & done; wait"#)
        .arg(std::env::current_exe().expect("test binary path"))
        .env("NEXTEST_RUN_ID", format!("testkit-{}", std::process::id()))
        .env(MEMBER_REPORTS_ENV, reports.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run the stand-in runner");
    assert!(status.success());

    let mut clusters: Vec<(PathBuf, u16)> = std::fs::read_dir(reports.path())
        .expect("list reports")
        .map(|entry| read_report(&entry.expect("report entry").path()))
        .collect();
    assert_eq!(clusters.len(), 2, "each member reports");
    clusters.dedup();
    assert_eq!(clusters.len(), 1, "both members used one cluster");
    let (dir, port) = clusters.remove(0);
    wait_until(Duration::from_secs(10), || async {
        !dir.exists() && !accepts_connections(port)
    })
    .await
    .expect("watchdog stops the run's cluster once the runner has exited");
}

/// Not a test: a test process of the run `one_nextest_run_shares_a_cluster_until_the_runner_exits`
/// simulates.
#[test]
#[ignore = "helper process for one_nextest_run_shares_a_cluster_until_the_runner_exits"]
fn run_member() {
    let Some(reports) = std::env::var_os(MEMBER_REPORTS_ENV) else {
        return;
    };
    let cluster = Postgres::shared().expect("run's cluster");
    cluster
        .create_database()
        .expect("createdb on the run's cluster");
    write_report(
        &Path::new(&reports).join(std::process::id().to_string()),
        cluster,
    );
}

/// Writes `DIR PORT` whole, then renames it into place, so a reader never sees half of it.
fn write_report(path: &Path, cluster: &Postgres) {
    let partial = path.with_extension("partial");
    std::fs::write(
        &partial,
        format!("{} {}", cluster.dir().display(), cluster.port()),
    )
    .expect("write report");
    std::fs::rename(&partial, path).expect("publish report");
}

fn read_report(path: &Path) -> (PathBuf, u16) {
    let text = std::fs::read_to_string(path).expect("read report");
    let (dir, port) = text.split_once(' ').expect("`dir port`");
    (PathBuf::from(dir), port.parse().expect("port"))
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}
