//! mimamori server: MQTT ingest, per-patient real-time ECG analysis, storage, alerts, API.
//!
//! # Layout
//! A reading flows one way: source → transforms → hot path → sinks.
//! - [`config`]: the typed configuration (`--config FILE`, embedded defaults without one).
//! - [`registry`]: patients, clinics, users, devices, loans, gateways; who a reading belongs to.
//! - [`sources`]: where messages come from: [`sources::mqtt`] (rumqttc, manual acks after commit)
//!   and [`sources::embedded_broker`] (rumqttd on loopback, demo only).
//! - [`transforms`]: [`transforms::decode`] (wire payload → typed, validated, owned reading or
//!   dead letter), [`transforms::acknowledge`] (contiguous end-to-end ack watermarks),
//!   [`transforms::detect_beats`] (per-stream QRS detection, reordering, gaps, heart rate).
//! - [`ingest`]: the committer that batches, stores, acks the broker and the gateway.
//! - [`hot_path`]: one owner per patient (sharded workers) holding the streaming DSP state.
//! - [`storage`]: the [`storage::Storage`] trait, its record types, the ECG sample codec and the
//!   conformance suite both backends pass.
//! - [`sinks`]: [`sinks::timescale`] and [`sinks::sqlite`] (the two storage backends) and
//!   [`sinks::live_feed`] (one broadcast per patient for the WebSocket layer and the alert engine).
//! - [`telemetry`]: counters and their Prometheus rendering for `/metrics`.
//! - [`serve`], [`admin`], [`stats`]: the subcommands.

pub mod admin;
pub mod alerts;
pub mod config;
pub mod hot_path;
pub mod http;
pub mod ingest;
pub mod language;
pub mod oncall;
pub mod registry;
pub mod serve;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod storage;
pub mod telemetry;
pub mod transforms;
