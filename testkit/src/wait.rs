//! Polling for a condition with a deadline, instead of sleeping a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// How often conditions are checked: short next to service start-up times (tens of ms), long
/// enough not to spin a shared 2-core machine.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Awaits `condition` until it returns `true`, checking every 10 ms, for at most `timeout`.
///
/// Runs on the real clock: under a paused Tokio clock the timeout would elapse at once, so use it
/// for real services only.
///
/// ```no_run
/// # async fn example(received: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> mimamori_testkit::Result<()> {
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// mimamori_testkit::wait_until(Duration::from_secs(5), || {
///     let received = received.clone();
///     async move { received.load(Ordering::SeqCst) == 2 }
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::TimedOut {
                what: "a condition".to_owned(),
                timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Blocking twin used by the harness's own start-up code, which has no runtime. `check` returns
/// `Ok(Some(value))` when done, `Ok(None)` to keep waiting, `Err` to give up at once.
pub(crate) fn poll_blocking<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check()? {
            return Ok(Some(value));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
