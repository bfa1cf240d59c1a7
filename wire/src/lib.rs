//! The MQTT wire contract, version 1, between a home gateway and the server.
//!
//! # Layout
//! - [`topic`]: the topic tree, one namespace per gateway, so a broker ACL confines each gateway.
//! - [`envelope`]: what every gateway → server message carries: version, `(epoch, seq)`, body.
//! - [`observation`]: vital-sign observation batches with LOINC codes and UCUM units.
//! - [`ecg`]: ECG chunks with int16 samples in a compact binary encoding.
//! - [`status`]: device status and gateway presence.
//! - [`ack`]: the server's end-to-end acknowledgement, and the device allow-list it sends down.
//! - [`error`]: [`WireError`], the typed decode errors.
//!
//! The contract outlives any one process: fields are added as optional with a default, never
//! renamed without an alias, and a version number is never reused. `tests/frozen/` holds payloads
//! of every released version that the current decoder must keep reading.

pub mod ack;
pub mod ecg;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod limits;
pub mod observation;
pub mod status;
pub mod topic;

pub use ack::{AllowedDevice, GatewayConfig, StoredAck};
pub use ecg::EcgChunk;
pub use envelope::{Body, Envelope};
pub use error::WireError;
pub use ids::{DeviceRef, Epoch, GatewayId};
pub use observation::{Observation, ObservationBatch, TimeFlag, Ucum, VitalSign};
pub use status::{DeviceStatus, Presence};
pub use topic::{Channel, Topic};

/// The wire version this crate writes and the newest it reads.
pub const WIRE_VERSION: u16 = 1;
