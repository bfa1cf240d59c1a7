//! Streaming ECG signal processing for mimamori.
//!
//! The library does no I/O: callers feed samples and get beats and derived measures back.
//! Every streaming stage sets up its memory when a stream starts and never allocates per sample.
//!
//! # Layout
//! - [`beat`]: the sampling rate and a detected beat, shared by every stage.
//! - [`synth`]: synthetic ECG with ground truth (tests, the gateway simulator, load benchmarks).

pub mod beat;
pub mod synth;

pub use beat::{Beat, SampleRate};
