//! The subcommands of `mimamori-dsp`, one module each, and the record loading they share.

pub(crate) mod bench;
pub(crate) mod detect;
pub(crate) mod eval;
pub(crate) mod record;
pub(crate) mod rhythm;
