//! mimamori server.

pub mod alerts;
