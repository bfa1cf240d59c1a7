//! Streaming ECG signal processing for mimamori.
//!
//! The library does no I/O: callers feed samples and get beats and derived measures back.
//! Every streaming stage sets up its memory when a stream starts and never allocates per sample.
//!
//! - [`beat`]: the sampling rate and beat types every stage shares.
//! - [`qrs`]: the streaming QRS detector and the scoring of detections against annotations.
//! - [`wfdb`]: reading PhysioNet WFDB records (headers, signals, annotations) from bytes.
//! - [`synth`]: synthetic ECG with ground truth (tests, the gateway simulator, load benchmarks).
//! - Rhythm, from beats to what clinicians use: [`rr`] (ordering, Malik's rule),
//!   [`heart_rate`], [`hrv`], [`events`] (brady/tachy, pauses, asystole), [`af`], [`quality`]
//!   (per-second signal quality), and [`analysis`], the whole chain for one stream.
//! - [`snapshot`]: the byte codec of the checkpoints a server resumes a stream from.

pub mod beat;
pub mod qrs;
pub mod wfdb;

pub use beat::{Beat, SampleRate};

// Rhythm analysis: beats to RR, heart rate, HRV, events, AF and signal quality.
pub mod af;
pub mod analysis;
pub mod events;
pub mod heart_rate;
pub mod hrv;
pub mod quality;
pub mod rr;
pub mod snapshot;
pub mod synth;
pub mod vf;
