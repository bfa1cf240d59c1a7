//! Alerts: clinical and technical rules, the alert lifecycle, notification and the watchdog.
//!
//! # Layout
//! - [`news2`]: the NEWS2 score from home measurements (pure).
//! - [`rules`]: the versioned rules file with cited defaults, and doctors' per-patient overrides.
//! - [`debounce`]: hysteresis and minimum duration, the state machine behind every rule.
//! - [`trend`]: per-patient baselines (weight, temperature, SpO2).
//! - [`engine`]: the pure rules engine: observations and ticks in, alert signals out.
//! - [`cli`]: the subcommands `main.rs` hooks in.

pub mod cli;
pub mod debounce;
pub mod engine;
pub mod news2;
pub mod rules;
pub mod trend;
