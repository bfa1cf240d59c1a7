//! Where readings go: the two storage backends and the live feed; and what goes back down to the
//! gateways from the registry (their device allow-lists).

pub mod gateway_config;
pub mod live_feed;
pub mod sqlite;
pub mod timescale;
