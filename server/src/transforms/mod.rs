//! Transforms: each takes what the previous stage produced and hands on typed results.

pub mod acknowledge;
pub mod decode;
pub mod detect_beats;
