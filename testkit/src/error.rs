//! The harness's one error type.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why the harness could not start, drive or wait for a service.
///
/// Variants about a process carry the command line and the tail of its output or log file, so a
/// failing test says what the service itself complained about.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program could not be started at all (not installed, not executable).
    #[error("failed to run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A setup command ran and failed.
    #[error("`{command}` failed with {status}; output tail:\n{log_tail}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its output and of the service's log.
        log_tail: String,
    },

    /// A service exited while we were waiting for it to accept connections.
    #[error("{service} exited during startup with {status}; log tail:\n{log_tail}")]
    ExitedEarly {
        /// `mosquitto` or `postgres`.
        service: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A service did not accept connections in time.
    #[error(
        "{service} did not accept connections on port {port} within {timeout:?}; log tail:\n{log_tail}"
    )]
    NotReady {
        /// `mosquitto` or `postgres`.
        service: &'static str,
        /// The port polled.
        port: u16,
        /// How long we waited.
        timeout: Duration,
        /// The last lines of its log.
        log_tail: String,
    },

    /// A condition polled by [`wait_until`](crate::wait_until) or the harness did not hold in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    TimedOut {
        /// What was awaited.
        what: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries under {searched} (run scripts/install-test-deps, or set MIMAMORI_PG_BINDIR)"
    )]
    PostgresNotInstalled {
        /// Where we looked.
        searched: PathBuf,
    },

    /// PostgreSQL is there but TimescaleDB was not built for it.
    #[error("timescaledb.so not found in {searched} (run scripts/install-test-deps)")]
    TimescaleNotInstalled {
        /// The PostgreSQL library directory.
        searched: PathBuf,
    },

    /// A system user the service must run as does not exist.
    #[error(
        "system user `{0}` does not exist (is its package installed? run scripts/install-test-deps)"
    )]
    NoSuchUser(String),

    /// A user name the broker's password file or ACL cannot hold.
    #[error(
        "invalid MQTT user name {0:?}: must be non-empty, without `:`, `/`, `+`, `#` or whitespace"
    )]
    InvalidUserName(String),

    /// The shared per-process instance failed to start earlier in this process.
    #[error("the shared {service} instance failed to start: {message}")]
    SharedStartFailed {
        /// `postgres`.
        service: &'static str,
        /// The first failure's message.
        message: String,
    },

    /// Reading or writing a harness file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// Sending a signal to a service failed.
    #[error("failed to signal {service} (pid {pid}): {source}")]
    Signal {
        /// `mosquitto`.
        service: &'static str,
        /// Its process id.
        pid: u32,
        /// What the operating system said.
        source: nix::Error,
    },

    /// Generating the test CA or the server certificate failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),

    /// Building the rustls client configuration failed.
    #[error("tls client configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

impl HarnessError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result of harness operations.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
