//! Reading PhysioNet WFDB records from bytes already in memory.
//!
//! Enough of the WFDB formats for MIT-BIH and PhysioNet-style data: the header (`.hea`), signal
//! files in formats 212 and 16 with their checksums, and MIT-format annotation files (`.atr`),
//! rhythm notes included. The library does no I/O; the caller reads files and hands over their
//! contents. Reference: the WFDB Programmer's Guide, `header(5)`, `signal(5)` and `annot(5)`.
//!
//! - [`header`]: the record line and signal specification lines.
//! - [`signal`]: decoding a signal file into per-signal sample vectors (ADC units).
//! - [`annotation`]: decoding an annotation file into beats, rhythm changes and notes.

pub mod annotation;
pub mod header;
pub mod signal;

pub use annotation::{
    Annotation, AnnotationCode, AnnotationError, parse_annotations, ventricular_flutter_episodes,
};
pub use header::{Header, HeaderError, SignalFormat, SignalSpec};
pub use signal::{SignalError, decode_signal_file};
