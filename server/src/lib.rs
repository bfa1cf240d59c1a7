//! mimamori server.

pub mod http;
pub mod oncall;
