//! mimamori home gateway: reads vital-sign devices over BLE, keeps every reading in a durable
//! outbox, publishes it over MQTT and deletes it only when the server says it is stored.
//!
//! Layout:
//! - [`devices`]: pure decoders, one module per device family, registered in [`devices::Profile`].
//! - [`ble`]: the BLE transport (the only module using btleplug); [`session`]: per-family device
//!   sessions and the allow-listed scan loop; [`config`]: the `run` configuration file.
//! - [`readings`]: decoded notifications → wire observations, ECG chunks, device status.
//! - [`outbox`]: the durable, acknowledged queue every reading passes through.
//! - [`publish`]: drains the outbox to MQTT, applies the server's end-to-end acks.
//! - [`simulate`]: simulated homes publishing through the same outbox and publisher.
//! - [`clock`]: whether the gateway clock is NTP-synchronised.
pub mod ble;
pub mod clock;
pub mod config;
pub mod devices;
pub mod outbox;
pub mod publish;
pub mod readings;
pub mod session;
pub mod simulate;
