//! mimamori server.
pub mod http;
