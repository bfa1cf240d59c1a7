//! Alerts: clinical and technical rules, the alert lifecycle, notification and the watchdog.
//!
//! # Layout
//! - [`news2`]: the NEWS2 score from home measurements (pure).
//! - [`rules`]: the versioned rules file with cited defaults, and doctors' per-patient overrides.
//! - [`schedule`]: the registry's reading schedule text → scheduled readings.
//! - [`debounce`]: hysteresis and minimum duration, the state machine behind every rule.
//! - [`trend`]: per-patient baselines (weight, temperature, SpO2).
//! - [`engine`]: the pure rules engine: observations and ticks in, alert signals out.
//! - [`finding`]: what an alert found, as data, phrased in Japanese or English by each reader.
//! - [`lifecycle`]: raised → notified → acknowledged → resolved, escalation, latching, snooze (pure).
//! - [`store`]: persistence (PostgreSQL and SQLite from one body).
//! - [`feed`]: the rules stage's entrance: stored readings and hot-path seconds → engine inputs.
//! - [`service`]: the task owning engine, lifecycle and store; the alert broadcast.
//! - [`webhook`]: signed outgoing webhooks with retries and confirmed receipt.
//! - [`notify`]: the notifier task and the "who should be notified now" hook for on-call routing.
//! - [`watchdog`]: the separate process that pages the operator when a part goes silent.
//! - [`cli`]: the subcommands `main.rs` hooks in.

pub mod cli;
pub mod debounce;
pub mod engine;
pub mod feed;
pub mod finding;
pub mod lifecycle;
pub mod news2;
pub mod notify;
pub mod rules;
pub mod schedule;
pub mod service;
pub mod store;
pub mod trend;
pub mod watchdog;
pub mod webhook;
