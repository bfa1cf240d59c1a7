//! Alerts: clinical and technical rules, the alert lifecycle, notification and the watchdog.
//!
//! # Layout
//! - [`news2`]: the NEWS2 score from home measurements (pure).
//! - [`cli`]: the subcommands `main.rs` hooks in.

pub mod cli;
pub mod news2;
