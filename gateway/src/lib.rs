//! mimamori gateway.
