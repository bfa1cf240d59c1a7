//! mimamori server.
