//! Where readings go: the two storage backends (one SQL implementation, two dialects) and the
//! live feed; and what goes back down to the gateways from the registry (their device
//! allow-lists).

pub mod gateway_config;
pub mod live_feed;
pub(crate) mod sql;
pub mod sqlite;
pub mod timescale;
