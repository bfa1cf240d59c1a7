//! Throwaway PostgreSQL clusters with TimescaleDB preloaded.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{HarnessError, Result};
use crate::ports::{accepts_connections, free_port};
use crate::process::{CleanUpWhen, ServiceUser, Watchdog, file_tail, run};
use crate::scratch::{ScratchDir, short_temp_base};
use crate::shared::get_or_start;

/// Where Debian installs each major version's server binaries.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";
/// Overrides the directory holding `initdb`, `pg_ctl` and `psql`.
const BINDIR_ENV: &str = "MIMAMORI_PG_BINDIR";
/// Ports tried before giving up when another process takes ours between choosing and binding.
const START_ATTEMPTS: usize = 3;
/// Set by nextest in every test process of one run.
const NEXTEST_RUN_ID_ENV: &str = "NEXTEST_RUN_ID";

/// Settings for a cluster that only ever holds test data.
///
/// Durability is off (`fsync`, `full_page_writes`, `synchronous_commit`): a crash loses the
/// cluster anyway. TimescaleDB's telemetry and background workers are off: the workers only run
/// policies the Apache edition refuses (and log a licence error each time).
const TEST_SETTINGS: &str = "
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'timescaledb'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 0
";

/// A PostgreSQL cluster with TimescaleDB, in a temporary directory, on a free port of 127.0.0.1.
///
/// `initdb` runs in a short temporary directory (as the `postgres` user when the tests run as
/// root; PostgreSQL refuses root). The server listens on 127.0.0.1 only, with its Unix socket in
/// that directory, and accepts the `postgres` role without a password. The `timescaledb`
/// extension is created in `template1`, so every database made afterwards has it.
///
/// Most tests want [`Postgres::shared`] and a fresh database from
/// [`create_database`](Postgres::create_database). A cluster from [`Postgres::start`] is stopped
/// (`pg_ctl -m immediate`) and its directory removed when it is dropped, or by its watchdog when
/// the test process ends, however it ends.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    /// `server_version_num`, e.g. 150020.
    server_version: u32,
    databases_created: AtomicU64,
    /// `None` when another process of the test run started the cluster.
    watchdog: Option<Watchdog>,
}

impl Postgres {
    /// The cluster shared by the tests of this test run, started on first use. Give each test
    /// its own database with [`create_database`](Self::create_database) so tests can run in
    /// parallel.
    ///
    /// Under nextest, which runs each test in its own process, one cluster serves every process
    /// of the run (the first starts it, under a file lock; the others find its port), and a
    /// watchdog stops it once the nextest runner has exited. Under `cargo test` each test binary
    /// has one, stopped when the binary exits.
    pub fn shared() -> Result<&'static Postgres> {
        static SHARED: OnceLock<std::result::Result<Postgres, String>> = OnceLock::new();
        get_or_start(&SHARED, "postgres", || match NextestRun::current() {
            Some(run) => Self::join_run(&run),
            None => Self::start(),
        })
    }

    /// Starts a cluster of its own, for tests that stop, crash or reconfigure it.
    pub fn start() -> Result<Self> {
        let dir = ScratchDir::new("mmk-pg-")?.keep();
        Self::start_in(dir, CleanUpWhen::OwnerGone)
    }

    /// Starts a cluster in `dir`, which the watchdog removes at the end.
    fn start_in(dir: PathBuf, when: CleanUpWhen) -> Result<Self> {
        let started = Instant::now();
        let bin_dir = find_bin_dir()?;
        check_timescaledb_installed(&bin_dir)?;
        let user = ServiceUser::named("postgres")?;
        // From here on the watchdog owns the directory: whatever fails below, it is removed.
        let watchdog = spawn_watchdog(&dir, &bin_dir, &user, when)?;
        user.take_ownership(&dir)?;

        let data = dir.join("data");
        let mut initdb = user.command(bin_dir.join("initdb"));
        initdb
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .args(["--no-sync", "--no-instructions"]);
        run(&mut initdb, None)?;
        let conf = data.join("postgresql.conf");
        let mut conf_file = OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(HarnessError::io(&conf))?;
        writeln!(
            conf_file,
            "{TEST_SETTINGS}unix_socket_directories = '{}'",
            dir.display()
        )
        .map_err(HarnessError::io(&conf))?;

        let port = start_server(&dir, &bin_dir, &user)?;
        let mut cluster = Self {
            dir,
            bin_dir,
            port,
            server_version: 0,
            databases_created: AtomicU64::new(0),
            watchdog: Some(watchdog),
        };
        cluster.psql("template1", "CREATE EXTENSION IF NOT EXISTS timescaledb")?;
        let version = cluster.psql("template1", "SHOW server_version_num")?;
        cluster.server_version = version.trim().parse().unwrap_or(0);
        tracing::debug!(
            port,
            elapsed_ms = started.elapsed().as_millis(),
            "PostgreSQL cluster up."
        );
        Ok(cluster)
    }

    /// The run's cluster: started by the first process of the run to get the lock, found by the
    /// others in the run's directory.
    fn join_run(run: &NextestRun) -> Result<Self> {
        let dir = short_temp_base().join(format!("mmk-pg-run-{}-{}", run.id, run.runner_pid));
        fs::create_dir_all(&dir).map_err(HarnessError::io(&dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(HarnessError::io(&lock_path))?;
        // Held until this function returns (the file is closed): one process starts the cluster.
        lock.lock().map_err(HarnessError::io(&lock_path))?;
        let info_path = dir.join("cluster");
        if let Ok(info) = fs::read_to_string(&info_path) {
            return Self::attach(dir, &info);
        }
        let started = Self::start_in(dir, CleanUpWhen::ProcessExits(run.runner_pid));
        // Later processes report the first failure instead of each retrying in a dirty directory.
        let info = match &started {
            Ok(cluster) => format!("{} {}", cluster.port, cluster.server_version),
            Err(error) => format!("failed {error}"),
        };
        fs::write(&info_path, info).map_err(HarnessError::io(&info_path))?;
        started
    }

    /// A handle on a cluster another process of the run started; `info` is `PORT VERSION`.
    fn attach(dir: PathBuf, info: &str) -> Result<Self> {
        let failed = |message: String| HarnessError::SharedStartFailed {
            service: "postgres",
            message,
        };
        if let Some(message) = info.strip_prefix("failed ") {
            return Err(failed(message.to_owned()));
        }
        let mut fields = info.split_whitespace().map(str::parse::<u32>);
        let (Some(Ok(port)), Some(Ok(server_version))) = (fields.next(), fields.next()) else {
            return Err(failed(format!(
                "unreadable cluster record {info:?} in {}",
                dir.display()
            )));
        };
        let port = u16::try_from(port).map_err(|_| failed(format!("bad port {port}")))?;
        if !accepts_connections(port) {
            return Err(failed(format!(
                "the run's cluster on port {port} stopped accepting connections"
            )));
        }
        Ok(Self {
            dir,
            bin_dir: find_bin_dir()?,
            port,
            server_version,
            databases_created: AtomicU64::new(0),
            watchdog: None,
        })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the `postgres` maintenance database. Tests should use their own database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// URL of `database` on this cluster, as role `postgres` without password.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database (with TimescaleDB) and returns its URL.
    pub fn create_database(&self) -> Result<String> {
        let number = self.databases_created.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{}_{number}", std::process::id());
        // FILE_COPY (PostgreSQL 15+) copies template1's files instead of WAL-logging every
        // block: 0.4 s instead of 1.1 s here, and its checkpoint is cheap with fsync off.
        let strategy = if self.server_version >= 150_000 {
            " STRATEGY FILE_COPY"
        } else {
            ""
        };
        self.psql("postgres", &format!("CREATE DATABASE {name}{strategy}"))?;
        Ok(self.url_for(&name))
    }

    /// The cluster's directory (data directory, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last few KiB of the server log.
    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path())
    }

    /// Runs one SQL statement with `psql` as role `postgres`; returns its output, unaligned and
    /// without headers (`SELECT 1` gives `"1\n"`).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut psql = Command::new(self.bin_dir.join("psql"));
        psql.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .args(["-d", database, "-c", sql]);
        run(&mut psql, Some(&self.log_path()))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.finish();
        }
    }
}

/// The nextest run this process is a test of.
#[derive(Debug)]
struct NextestRun {
    /// The run id, reduced to characters safe in a file name.
    id: String,
    /// The nextest runner, our parent: the shared cluster lives as long as it does.
    runner_pid: u32,
}

impl NextestRun {
    fn current() -> Option<Self> {
        let id: String = std::env::var(NEXTEST_RUN_ID_ENV)
            .ok()?
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(36)
            .collect();
        let runner_pid = u32::try_from(nix::unistd::getppid().as_raw()).ok()?;
        (!id.is_empty()).then_some(Self { id, runner_pid })
    }
}

/// `$MIMAMORI_PG_BINDIR`, else the newest `/usr/lib/postgresql/N/bin` that has `initdb`.
fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new(DEBIAN_PG_ROOT);
    let not_installed = || HarnessError::PostgresNotInstalled {
        searched: root.to_owned(),
    };
    let entries = std::fs::read_dir(root).map_err(|_| not_installed())?;
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or_else(not_installed)
}

/// Without the library the server refuses to start with a line in its log; say what to run.
fn check_timescaledb_installed(bin_dir: &Path) -> Result<()> {
    // Debian's layout: .../N/bin beside .../N/lib. Elsewhere (MIMAMORI_PG_BINDIR) we cannot tell
    // cheaply, and the server's own error will do.
    let Some(lib_dir) = bin_dir.parent().map(|n| n.join("lib")) else {
        return Ok(());
    };
    if !lib_dir.is_dir() || lib_dir.join("timescaledb.so").is_file() {
        return Ok(());
    }
    Err(HarnessError::TimescaleNotInstalled { searched: lib_dir })
}

/// On exit: stop the server if it runs (immediate: no checkpoint, test data only), remove the dir.
fn spawn_watchdog(
    dir: &Path,
    bin_dir: &Path,
    user: &ServiceUser,
    when: CleanUpWhen,
) -> Result<Watchdog> {
    let pg_ctl = user.command(bin_dir.join("pg_ctl"));
    let mut words: Vec<_> = vec![pg_ctl.get_program().to_owned()];
    words.extend(pg_ctl.get_args().map(ToOwned::to_owned));
    // $1 = dir, $2… = the pg_ctl command (possibly through runuser).
    let cleanup = r#"dir="$1"; shift
if [ -f "$dir/data/postmaster.pid" ]; then "$@" -D "$dir/data" -m immediate -w stop; fi
rm -rf "$dir""#;
    let mut args = vec![dir.as_os_str().to_owned()];
    args.extend(words);
    Watchdog::spawn(when, cleanup, args)
}

/// Starts the server on a free port, retrying with another port when the chosen one was taken.
fn start_server(dir: &Path, bin_dir: &Path, user: &ServiceUser) -> Result<u16> {
    let log = dir.join("postgres.log");
    let mut attempt = 1;
    loop {
        let port = free_port()?;
        let mut pg_ctl = user.command(bin_dir.join("pg_ctl"));
        pg_ctl
            .current_dir(dir)
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start", "-o"])
            .arg(format!("-p {port}"));
        match run(&mut pg_ctl, Some(&log)) {
            Ok(_) => return Ok(port),
            Err(error)
                if attempt < START_ATTEMPTS && file_tail(&log).contains("could not bind") =>
            {
                tracing::debug!(port, %error, "PostgreSQL port taken; retrying on another.");
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
