//! mimamori server.

pub mod alerts;
pub mod oncall;
