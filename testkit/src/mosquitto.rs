//! Per-test Mosquitto brokers with passwords, a per-gateway ACL, persistence and TLS.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{HarnessError, Result};
use crate::ports::accepts_connections;
use crate::process::{CleanUpWhen, ServiceUser, Watchdog, describe, file_tail, run};
use crate::scratch::ScratchDir;
use crate::tls::TestCa;
use crate::wait::poll_blocking;

/// The topic prefix of the wire contract v1; a gateway `gw-1` owns `mimamori/v1/gw/gw-1/#`.
pub const DEFAULT_TOPIC_PREFIX: &str = "mimamori/v1/gw";
/// The user the server logs in as; it may read and write every topic.
pub const BACKEND_USER: &str = "backend";

/// Ports tried before giving up when another process takes ours between choosing and binding.
const START_ATTEMPTS: usize = 3;
/// Start-up takes ~30 ms; the margin is for a loaded 2-core CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Graceful stop takes 0.3–1 s (it saves the database); after this we kill.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A SIGHUP reload is handled on the broker's next loop turn.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Mosquitto logs this once its signal handlers are in place, after binding its listeners: a
/// SIGHUP before that would kill it, so connections alone do not mean ready.
const RUNNING_LOG_SUFFIX: &str = " running";
/// Mosquitto logs this before it re-reads passwords and ACL, in the same loop turn, so a client
/// connecting after the line appears is checked against the new files.
const RELOAD_LOG_LINE: &str = "Reloading config.";

/// Broker settings a test may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MosquittoConfig {
    /// ACL prefix: each user other than [`BACKEND_USER`] may read and write
    /// `<topic_prefix>/<its user name>/#` and nothing else.
    pub topic_prefix: String,
    /// Messages queued per offline persistent session before the broker drops more
    /// (Mosquitto's default is 1000: a gateway back from a long outage sends more).
    pub max_queued_messages: u32,
    /// QoS 1/2 messages in flight per client (Mosquitto's default is 20).
    pub max_inflight_messages: u32,
    /// Extra `mosquitto.conf` lines, appended to the global section.
    pub extra_config: Vec<String>,
}

impl Default for MosquittoConfig {
    fn default() -> Self {
        Self {
            topic_prefix: DEFAULT_TOPIC_PREFIX.to_owned(),
            max_queued_messages: 100_000,
            max_inflight_messages: 100,
            extra_config: Vec::new(),
        }
    }
}

/// A user name and password the broker accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// MQTT user name; for gateways also the topic namespace the ACL gives them.
    pub username: String,
    /// MQTT password.
    pub password: String,
}

/// A Mosquitto broker of its own for one test.
///
/// It listens on 127.0.0.1 on two free ports, one plain, one TLS with a server certificate from
/// the process's [`TestCa`]. Anonymous clients are refused. User [`BACKEND_USER`] may use every
/// topic; every other user only `<topic_prefix>/<user>/#` (ACL `pattern readwrite
/// <topic_prefix>/%u/#`). Sessions and queued messages persist in the broker's directory, saved
/// every second, so [`restart`](Self::restart) after [`kill9`](Self::kill9) keeps what was saved.
///
/// Dropping the broker kills it and removes its directory; if the test process dies first, a
/// watchdog does the same.
#[derive(Debug)]
pub struct Mosquitto {
    dir: PathBuf,
    config: MosquittoConfig,
    plain_port: u16,
    tls_port: u16,
    user: ServiceUser,
    backend: Credentials,
    ca: &'static TestCa,
    child: Option<Child>,
    /// Serialises [`add_user`](Self::add_user): `mosquitto_passwd` rewrites the whole file, and
    /// each call counts reloads in the log.
    users_lock: Mutex<()>,
    watchdog: Watchdog,
}

impl Mosquitto {
    /// Starts a broker with the default [`MosquittoConfig`].
    pub fn start() -> Result<Self> {
        Self::start_with(MosquittoConfig::default())
    }

    /// Starts a broker with `config`.
    pub fn start_with(config: MosquittoConfig) -> Result<Self> {
        let started = Instant::now();
        let ca = TestCa::shared()?;
        let user = ServiceUser::named("mosquitto")?;
        let dir = ScratchDir::new("mmk-mq-")?.keep();
        // From here on the watchdog owns the directory: whatever fails below, it is removed.
        let watchdog = Watchdog::spawn(CleanUpWhen::OwnerGone, WATCHDOG_CLEANUP, [&dir])?;
        let mut broker = Self {
            backend: Credentials {
                username: BACKEND_USER.to_owned(),
                password: random_token(),
            },
            dir,
            config,
            plain_port: 0,
            tls_port: 0,
            user,
            ca,
            child: None,
            users_lock: Mutex::new(()),
            watchdog,
        };
        broker.write_static_files()?;
        let backend = broker.backend.clone();
        broker.write_user(&backend, true)?;

        let mut attempt = 1;
        loop {
            [broker.plain_port, broker.tls_port] = free_ports()?;
            broker.write_config()?;
            match broker.launch() {
                Ok(()) => break,
                Err(error)
                    if attempt < START_ATTEMPTS
                        && broker.log().contains("Address already in use") =>
                {
                    tracing::debug!(%error, "Mosquitto port taken; retrying on others.");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
        tracing::debug!(
            plain_port = broker.plain_port,
            tls_port = broker.tls_port,
            elapsed_ms = started.elapsed().as_millis(),
            "Mosquitto broker up."
        );
        Ok(broker)
    }

    /// Adds (or re-passwords) a user. Once this returns, the running broker accepts the login.
    pub fn add_user(&self, username: &str, password: &str) -> Result<Credentials> {
        let credentials = Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        self.add_users(std::slice::from_ref(&credentials))?;
        Ok(credentials)
    }

    /// Adds a user with a random password.
    pub fn add_gateway(&self, username: &str) -> Result<Credentials> {
        self.add_user(username, &random_token())
    }

    /// Adds many users with random passwords and reloads the broker once: one reload per user
    /// re-reads a growing password file each time, which for hundreds of users takes longer than
    /// a reload is given.
    pub fn add_gateways<S: AsRef<str>>(&self, usernames: &[S]) -> Result<Vec<Credentials>> {
        let users: Vec<Credentials> = usernames
            .iter()
            .map(|u| Credentials {
                username: u.as_ref().to_owned(),
                password: random_token(),
            })
            .collect();
        self.add_users(&users)?;
        Ok(users)
    }

    /// Writes `users` to the password file, then reloads the running broker once and waits until
    /// it has.
    fn add_users(&self, users: &[Credentials]) -> Result<()> {
        // A poisoned lock only means another add_user panicked; the file is still whole.
        let _serialised = self
            .users_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for credentials in users {
            self.write_user(credentials, false)?;
        }
        let added = match users {
            [one] => format!("user {}", one.username),
            _ => format!("{} users", users.len()),
        };
        if let Some(pid) = self.pid() {
            let reloads_before = self.log().matches(RELOAD_LOG_LINE).count();
            self.signal(pid, Signal::SIGHUP)?;
            let reloaded = poll_blocking(RELOAD_TIMEOUT, || {
                Ok((self.log().matches(RELOAD_LOG_LINE).count() > reloads_before).then_some(()))
            })?;
            if reloaded.is_none() {
                return Err(HarnessError::TimedOut {
                    what: format!("mosquitto to reload its password file ({added})"),
                    timeout: RELOAD_TIMEOUT,
                });
            }
        }
        Ok(())
    }

    /// The all-topics user the server logs in as.
    pub fn backend(&self) -> &Credentials {
        &self.backend
    }

    /// The plain MQTT port on 127.0.0.1.
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// The MQTT-over-TLS port on 127.0.0.1.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The CA certificate (PEM) clients must trust for the TLS port.
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// A file holding [`ca_pem`](Self::ca_pem), for clients configured with a path. It lives in
    /// the broker's directory, so as long as the broker does.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA behind the TLS port.
    pub fn ca(&self) -> &'static TestCa {
        self.ca
    }

    /// The ACL topic prefix.
    pub fn topic_prefix(&self) -> &str {
        &self.config.topic_prefix
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the broker with SIGKILL, as a crash would: whatever it had not yet saved is lost.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: the point is that it is not running afterwards.
            let _ = child.kill();
            child.wait().map_err(HarnessError::io(&self.dir))?;
            self.forget_pid();
        }
        Ok(())
    }

    /// Stops the broker with SIGTERM, which saves its database, and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(pid) = self.pid() else { return Ok(()) };
        self.signal(pid, Signal::SIGTERM)?;
        let exited = poll_blocking(STOP_TIMEOUT, || {
            let child = self.child.as_mut().map(Child::try_wait);
            match child {
                Some(Ok(Some(_))) | None => Ok(Some(())),
                Some(Ok(None)) => Ok(None),
                Some(Err(error)) => Err(HarnessError::io(&self.dir)(error)),
            }
        })?;
        if exited.is_none() {
            tracing::warn!(pid, "Mosquitto ignored SIGTERM; killing it.");
        }
        self.kill9()
    }

    /// Starts the broker again on the same ports with the same directory, so persisted sessions,
    /// queued and retained messages come back. Stops it gracefully first if it runs.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    /// Waits until the broker has saved its state to disk after this call began; everything it
    /// acknowledged before the call is then on disk and survives [`kill9`](Self::kill9).
    pub fn wait_for_persistence(&self, timeout: Duration) -> Result<()> {
        let since = SystemTime::now();
        let db = self.dir.join("data").join("mosquitto.db");
        let saved = poll_blocking(timeout, || {
            let modified = fs::metadata(&db).and_then(|meta| meta.modified());
            Ok(modified
                .is_ok_and(|modified| modified > since)
                .then_some(()))
        })?;
        saved.ok_or_else(|| HarnessError::TimedOut {
            what: format!("mosquitto to save {}", db.display()),
            timeout,
        })
    }

    /// The broker's log so far, followed by anything it wrote to stderr.
    pub fn log(&self) -> String {
        let mut log = read_lossy(&self.dir.join("mosquitto.log"));
        let stderr = read_lossy(&self.dir.join("stderr.log"));
        if !stderr.is_empty() {
            let _ = write!(log, "\n--- stderr ---\n{stderr}");
        }
        log
    }

    /// The broker's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, pid: u32, signal: Signal) -> Result<()> {
        let raw = i32::try_from(pid).map_err(|_| HarnessError::Signal {
            service: "mosquitto",
            pid,
            source: nix::Error::ESRCH,
        })?;
        kill(Pid::from_raw(raw), signal).map_err(|source| HarnessError::Signal {
            service: "mosquitto",
            pid,
            source,
        })
    }

    /// Spawns the broker on the configured ports and waits until both listeners accept.
    fn launch(&mut self) -> Result<()> {
        self.user.take_ownership(&self.dir)?;
        let runs_before = running_lines(&self.log());
        let stderr_path = self.dir.join("stderr.log");
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(HarnessError::io(&stderr_path))?;
        let stdout = stderr.try_clone().map_err(HarnessError::io(&stderr_path))?;
        let mut command = Command::new(program("mosquitto"));
        command
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
            command: describe(&command),
            source,
        })?;
        let pid_path = self.dir.join("broker.pid");
        fs::write(&pid_path, child.id().to_string()).map_err(HarnessError::io(&pid_path))?;

        let (plain_port, tls_port) = (self.plain_port, self.tls_port);
        let ready = poll_blocking(READY_TIMEOUT, || {
            if let Some(status) = child.try_wait().map_err(HarnessError::io(&self.dir))? {
                return Err(HarnessError::ExitedEarly {
                    service: "mosquitto",
                    status,
                    log_tail: log_tail(&self.dir),
                });
            }
            let ready = running_lines(&read_lossy(&self.dir.join("mosquitto.log"))) > runs_before
                && accepts_connections(plain_port)
                && accepts_connections(tls_port);
            Ok(ready.then_some(()))
        });
        let failure = match ready {
            Ok(Some(())) => {
                self.child = Some(child);
                return Ok(());
            }
            Ok(None) => HarnessError::NotReady {
                service: "mosquitto",
                port: plain_port,
                timeout: READY_TIMEOUT,
                log_tail: log_tail(&self.dir),
            },
            Err(error) => error,
        };
        self.child = Some(child);
        self.kill9()?;
        Err(failure)
    }

    fn forget_pid(&self) {
        // The watchdog kills what this file names; a stale pid could name an unrelated process.
        let _ = fs::remove_file(self.dir.join("broker.pid"));
    }

    fn write_static_files(&self) -> Result<()> {
        write_file(&self.dir.join("ca.pem"), self.ca.ca_pem())?;
        write_file(&self.dir.join("server.pem"), self.ca.server_cert_pem())?;
        write_file(&self.dir.join("server.key"), self.ca.server_key_pem())?;
        let acl = format!(
            "# Gateways: only their own namespace.\npattern readwrite {}/%u/#\n\n\
             # The server: everything.\nuser {BACKEND_USER}\ntopic readwrite #\n",
            self.config.topic_prefix
        );
        write_file(&self.dir.join("acl"), &acl)?;
        let data = self.dir.join("data");
        fs::create_dir_all(&data).map_err(HarnessError::io(&data))
    }

    fn write_config(&self) -> Result<()> {
        let dir = self.dir.display();
        let config = &self.config;
        let mut text = format!(
            "per_listener_settings false\n\
             allow_anonymous false\n\
             password_file {dir}/passwd\n\
             acl_file {dir}/acl\n\
             persistence true\n\
             persistence_location {dir}/data/\n\
             autosave_interval 1\n\
             log_dest file {dir}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             connection_messages true\n\
             log_timestamp_format %Y-%m-%dT%H:%M:%S\n\
             max_queued_messages {}\n\
             max_inflight_messages {}\n",
            config.max_queued_messages, config.max_inflight_messages
        );
        for line in &config.extra_config {
            let _ = writeln!(text, "{line}");
        }
        let _ = write!(
            text,
            "\nlistener {} 127.0.0.1\n\
             \nlistener {} 127.0.0.1\n\
             cafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n",
            self.plain_port, self.tls_port
        );
        write_file(&self.dir.join("mosquitto.conf"), &text)
    }

    fn write_user(&self, credentials: &Credentials, create: bool) -> Result<()> {
        validate_username(&credentials.username)?;
        let passwd = self.dir.join("passwd");
        let mut command = Command::new(program("mosquitto_passwd"));
        if create {
            command.arg("-c");
        }
        command
            .arg("-b")
            .arg(&passwd)
            .arg(&credentials.username)
            .arg(&credentials.password);
        run(&mut command, None)?;
        self.user.take_ownership(&passwd)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Err(error) = self.kill9() {
            tracing::warn!(%error, "Mosquitto could not be killed.");
        }
        self.watchdog.finish();
    }
}

/// On exit: kill the broker if the pid file still names a mosquitto, remove the directory.
const WATCHDOG_CLEANUP: &str = r#"dir="$1"
if [ -f "$dir/broker.pid" ]; then
    pid=$(cat "$dir/broker.pid")
    if grep -q mosquitto "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid"; fi
fi
rm -rf "$dir""#;

/// Two distinct free ports, held open together so the kernel cannot hand out the same one twice.
fn free_ports() -> Result<[u16; 2]> {
    let bind =
        || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::io("127.0.0.1:0"));
    let listeners = [bind()?, bind()?];
    let port = |listener: &TcpListener| {
        listener
            .local_addr()
            .map(|addr| addr.port())
            .map_err(HarnessError::io("127.0.0.1:0"))
    };
    Ok([port(&listeners[0])?, port(&listeners[1])?])
}

/// Mosquitto lives in /usr/sbin, which an ordinary user's PATH may lack.
fn program(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The password file is `user:hash` lines, and the ACL substitutes the name into a topic.
fn validate_username(username: &str) -> Result<()> {
    let bad = |c: char| c == ':' || c == '/' || c == '+' || c == '#' || c.is_whitespace();
    if username.is_empty() || username.contains(bad) {
        return Err(HarnessError::InvalidUserName(username.to_owned()));
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(HarnessError::io(path))
}

/// How many times the log says the broker entered its main loop.
fn running_lines(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("mosquitto version") && line.ends_with(RUNNING_LOG_SUFFIX))
        .count()
}

/// A whole (small) log file; empty when there is none yet.
fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The ends of the broker's log and stderr, for errors.
fn log_tail(dir: &Path) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        file_tail(&dir.join("mosquitto.log")),
        file_tail(&dir.join("stderr.log"))
    )
}

/// 128 random bits as hex, from the standard library's per-process random hasher keys.
fn random_token() -> String {
    let half = || RandomState::new().hash_one(Instant::now());
    format!("{:016x}{:016x}", half(), half())
}
