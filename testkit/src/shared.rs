//! One instance per test process, started on first use.

use std::sync::OnceLock;

use crate::error::{HarnessError, Result};

/// Returns the instance in `cell`, starting it with `start` on first use. A failed start is
/// remembered (as its message: errors are not `Clone`) and reported to every later caller, so a
/// broken installation fails each test quickly instead of retrying the start in each.
pub(crate) fn get_or_start<T>(
    cell: &'static OnceLock<std::result::Result<T, String>>,
    service: &'static str,
    start: impl FnOnce() -> Result<T>,
) -> Result<&'static T> {
    cell.get_or_init(|| start().map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|message| HarnessError::SharedStartFailed {
            service,
            message: message.clone(),
        })
}
