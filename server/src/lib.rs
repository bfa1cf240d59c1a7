//! mimamori server.

pub mod oncall;
