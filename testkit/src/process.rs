//! Running service programs: as their system user when we are root, with output captured for
//! errors, and with a watchdog that cleans up after them even when the test process dies.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use nix::unistd::{Uid, User, chown};

use crate::error::{HarnessError, Result};

/// How many bytes of a log file errors quote.
const LOG_TAIL_BYTES: u64 = 4096;

/// A system account a service runs as. PostgreSQL refuses to run as root, and Mosquitto started
/// as root drops to its own user, so when the tests run as root every file these services touch
/// must belong to that account. When the tests run as an ordinary user, everything runs as that
/// user and nothing changes hands.
#[derive(Debug, Clone)]
pub(crate) struct ServiceUser {
    /// `Some` when we are root and must switch to (or hand files to) this account.
    account: Option<User>,
}

impl ServiceUser {
    pub(crate) fn named(name: &str) -> Result<Self> {
        if !Uid::effective().is_root() {
            return Ok(Self { account: None });
        }
        match User::from_name(name) {
            Ok(Some(user)) => Ok(Self {
                account: Some(user),
            }),
            Ok(None) | Err(_) => Err(HarnessError::NoSuchUser(name.to_owned())),
        }
    }

    /// A command running `program` as this account.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.account {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.arg("-u").arg(&user.name).arg("--").arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Gives `path` and everything below it to this account.
    pub(crate) fn take_ownership(&self, path: &Path) -> Result<()> {
        let Some(user) = &self.account else {
            return Ok(());
        };
        chown(path, Some(user.uid), Some(user.gid))
            .map_err(|errno| HarnessError::io(path)(errno.into()))?;
        if path.is_dir() {
            for entry in fs::read_dir(path).map_err(HarnessError::io(path))? {
                let entry = entry.map_err(HarnessError::io(path))?;
                self.take_ownership(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// The command line, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `command` to completion. On failure the error holds its output and, if given, the tail
/// of the service log it was writing to.
pub(crate) fn run(command: &mut Command, service_log: Option<&Path>) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            command: describe(command),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        return Ok(text);
    }
    let mut log_tail = tail_of(&text);
    if let Some(log) = service_log {
        log_tail.push_str(&format!("\n--- {} ---\n{}", log.display(), file_tail(log)));
    }
    Err(HarnessError::CommandFailed {
        command: describe(command),
        status: output.status,
        log_tail,
    })
}

/// The last few KiB of a file, or a note saying why there is none.
pub(crate) fn file_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|error| format!("(no log at {}: {error})", path.display()))
}

fn tail_of(text: &str) -> String {
    let start = text.len().saturating_sub(LOG_TAIL_BYTES as usize);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// When a [`Watchdog`] runs its cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CleanUpWhen {
    /// When our end of its stdin closes: the guard is dropped or this process ends.
    OwnerGone,
    /// When process `pid` has exited (checked every second); for a service that outlives this
    /// process and is shared with its siblings, such as a test runner's children.
    ProcessExits(u32),
}

/// A sentinel process that runs a cleanup script.
///
/// Services that outlive their starter (PostgreSQL detaches from `pg_ctl`; an orphaned Mosquitto
/// keeps running) would otherwise leak whenever a test process ends without running destructors:
/// a shared `static` instance (statics are never dropped), a panic with `panic = "abort"`, a
/// nextest timeout, Ctrl-C, SIGKILL. With [`CleanUpWhen::OwnerGone`] the watchdog reads a pipe
/// from this process; the kernel closes it in every one of those cases, so the watchdog sees
/// end-of-file and cleans up. Dropping the guard closes the pipe too and waits for the cleanup to
/// finish, so there is one cleanup path, not two.
///
/// The watchdog is put in its own process group so that a signal sent to the test's group
/// (Ctrl-C, a test runner killing a timed-out test) does not kill it before it has cleaned up.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
    when: CleanUpWhen,
}

impl Watchdog {
    /// Starts `sh -c "<wait>; <cleanup>" watchdog ARGS…`; the script sees ARGS as `$1`….
    pub(crate) fn spawn<I, S>(when: CleanUpWhen, cleanup: &str, args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let wait = match when {
            CleanUpWhen::OwnerGone => "cat >/dev/null".to_owned(),
            CleanUpWhen::ProcessExits(pid) => {
                format!("while kill -0 {pid} 2>/dev/null; do sleep 1; done")
            }
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{wait}; {cleanup}"))
            .arg("watchdog")
            .args(args)
            // The test's directory may be closed to the service user the cleanup switches to.
            .current_dir("/")
            .stdin(match when {
                CleanUpWhen::OwnerGone => Stdio::piped(),
                CleanUpWhen::ProcessExits(_) => Stdio::null(),
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
            command: describe(&command),
            source,
        })?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, when })
    }

    /// With [`CleanUpWhen::OwnerGone`], runs the cleanup now and waits for it. Otherwise does
    /// nothing: the cleanup belongs to the watched process's lifetime, not to ours.
    pub(crate) fn finish(&mut self) {
        if self.when != CleanUpWhen::OwnerGone {
            return;
        }
        drop(self.stdin.take());
        if let Err(error) = self.child.wait() {
            tracing::warn!(%error, "Watchdog could not be awaited.");
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}
