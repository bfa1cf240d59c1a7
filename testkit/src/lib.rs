//! Real services for mimamori's integration tests.
//!
//! Tests talk to real servers that this crate starts on free ports of 127.0.0.1, in temporary
//! directories, and tears down afterwards. They never use services that happen to run on the
//! machine (which may have none, or other ones on the standard ports).
//!
//! - [`Postgres`]: a throwaway PostgreSQL cluster with TimescaleDB (Apache edition) preloaded;
//!   [`Postgres::shared`] + [`Postgres::create_database`] give each test its own database.
//! - [`Mosquitto`]: a broker per test with passwords, a per-gateway ACL, persistence and a TLS
//!   listener whose certificate comes from a [`TestCa`] made at test time;
//!   [`Mosquitto::mqtt_options`] builds rumqttc options for either listener.
//! - [`wait_until`], [`free_port`], [`ScratchDir`]: small helpers tests keep needing.
//!
//! The system packages come from `scripts/install-test-deps`. How services are cleaned up when
//! a test process dies is described on [`Postgres`] and in this crate's README.
//!
//! The API is blocking (process start-up), so it works from any test, async or not; the few
//! milliseconds it blocks a Tokio test's thread do not matter.

mod error;
mod mosquitto;
mod mqtt;
mod ports;
mod postgres;
mod process;
mod scratch;
mod shared;
mod tls;
mod wait;

pub use error::{HarnessError, Result};
pub use mosquitto::{BACKEND_USER, Credentials, DEFAULT_TOPIC_PREFIX, Mosquitto, MosquittoConfig};
pub use mqtt::Transport;
pub use ports::free_port;
pub use postgres::Postgres;
pub use scratch::ScratchDir;
pub use tls::TestCa;
pub use wait::wait_until;
