//! mimamori home gateway: reads vital-sign devices over BLE, keeps every reading in a durable
//! outbox, publishes it over MQTT and deletes it only when the server says it is stored.
//!
//! Layout:
//! - [`devices`]: pure decoders, one module per device family, registered in [`devices::Profile`].
pub mod devices;
pub mod outbox;
