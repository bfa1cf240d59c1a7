//! Where readings go: the two storage backends and the live feed.

pub mod live_feed;
pub mod sqlite;
pub mod timescale;
