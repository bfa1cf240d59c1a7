//! Streaming ECG signal processing for mimamori.
//!
//! The library does no I/O: callers feed samples and get beats and derived measures back.
//! Every streaming stage sets up its memory when a stream starts and never allocates per sample.

pub mod beat;

pub use beat::{Beat, SampleRate};
