//! Short-named temporary directories.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// Unix socket paths are limited to about 107 bytes, and PostgreSQL puts its socket in the
/// directory we give it, so scratch directories live directly under a short base.
const MAX_BASE_LEN: usize = 40;

/// A temporary directory removed (with everything in it) when dropped.
///
/// Created under `$TMPDIR` when that path is short, else under `/tmp`, with a name starting
/// with `prefix`, so stray directories tell which harness part made them.
#[derive(Debug)]
pub struct ScratchDir {
    dir: tempfile::TempDir,
}

impl ScratchDir {
    /// Creates a fresh directory named `<prefix><random>`.
    pub fn new(prefix: &str) -> Result<Self> {
        let base = short_temp_base();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&base)
            .map_err(HarnessError::io(base))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops removing the directory on drop and returns its path; used when another owner (a
    /// watchdog) takes over the cleanup.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// `$TMPDIR` if short enough for socket paths below it, else `/tmp`.
pub(crate) fn short_temp_base() -> PathBuf {
    let base = std::env::temp_dir();
    if base.as_os_str().len() <= MAX_BASE_LEN {
        base
    } else {
        PathBuf::from("/tmp")
    }
}
