//! Streaming ECG signal processing for mimamori.
//!
//! The library does no I/O: callers feed samples and get beats and derived measures back.
//! Every streaming stage sets up its memory when a stream starts and never allocates per sample.
//!
//! - [`beat`]: the sampling rate and beat types every stage shares.
//! - [`wfdb`]: reading PhysioNet WFDB records (headers, signals, annotations) from bytes.
//! - [`synth`]: synthetic ECG with ground truth (tests, the gateway simulator, load benchmarks).

pub mod beat;
pub mod synth;
pub mod wfdb;

pub use beat::{Beat, SampleRate};
