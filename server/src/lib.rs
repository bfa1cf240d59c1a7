//! mimamori server.

pub mod oncall;
pub mod alerts;
