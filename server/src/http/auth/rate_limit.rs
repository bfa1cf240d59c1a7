//! Login throttling: failed attempts are counted per login name and per client
//! address over a sliding window; past the limit, logins are refused (without
//! checking the password) until the oldest failure leaves the window.
//!
//! Two keys because each alone is weak: per-name stops guessing one account from
//! many addresses, per-address stops one client spraying many names.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits for [`LoginRateLimiter`].
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failed attempts allowed per login name within `window`.
    pub failures_per_login: usize,
    /// Failed attempts allowed per client address within `window`.
    pub failures_per_address: usize,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            failures_per_login: 5,
            failures_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Counts failed logins; the caller supplies the time so tests need no clock.
#[derive(Debug, Default)]
pub struct LoginRateLimiter {
    limits: LoginLimits,
    by_login: HashMap<String, VecDeque<Instant>>,
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
}

impl LoginRateLimiter {
    /// A limiter with the given limits.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// `Err(retry_after)` when this login name or address has used up its failures.
    pub fn check(&mut self, login: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let window = self.limits.window;
        let login_wait = self
            .by_login
            .get_mut(&normalise(login))
            .and_then(|q| wait(q, self.limits.failures_per_login, window, now));
        let address_wait = self
            .by_address
            .get_mut(&address)
            .and_then(|q| wait(q, self.limits.failures_per_address, window, now));
        match login_wait.into_iter().chain(address_wait).max() {
            Some(retry_after) => Err(retry_after),
            None => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn record_failure(&mut self, login: &str, address: IpAddr, now: Instant) {
        self.by_login
            .entry(normalise(login))
            .or_default()
            .push_back(now);
        self.by_address.entry(address).or_default().push_back(now);
        // Bound memory under a spray of distinct names: forget empty or expired keys.
        if self.by_login.len() > 10_000 {
            let window = self.limits.window;
            self.by_login
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }

    /// A successful login forgives that name's failures (not the address's).
    pub fn record_success(&mut self, login: &str) {
        self.by_login.remove(&normalise(login));
    }
}

fn normalise(login: &str) -> String {
    login.trim().to_lowercase()
}

/// Drops failures older than `window`; if `limit` remain, how long until the oldest expires.
fn wait(
    failures: &mut VecDeque<Instant>,
    limit: usize,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        failures.pop_front();
    }
    if failures.len() < limit {
        return None;
    }
    failures
        .front()
        .map(|oldest| window.saturating_sub(now.duration_since(*oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginRateLimiter {
        LoginRateLimiter::new(LoginLimits {
            failures_per_login: 3,
            failures_per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn login_is_refused_after_limit_until_oldest_failure_expires() {
        let mut l = limiter();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check("Sato", A, t0 + Duration::from_secs(i)).is_ok());
            l.record_failure("Sato", A, t0 + Duration::from_secs(i));
        }
        // Same name from another address, differently cased: still refused.
        assert_eq!(
            l.check("sato ", B, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(l.check("sato", B, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn one_address_spraying_many_names_is_refused() {
        let mut l = limiter();
        let t0 = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            l.record_failure(name, A, t0);
        }
        assert!(l.check("f", A, t0).is_err());
        assert!(l.check("f", B, t0).is_ok());
    }

    #[test]
    fn success_forgives_the_name() {
        let mut l = limiter();
        let t0 = Instant::now();
        l.record_failure("sato", A, t0);
        l.record_failure("sato", A, t0);
        l.record_success("sato");
        l.record_failure("sato", A, t0);
        assert!(l.check("sato", A, t0).is_ok());
    }
}
