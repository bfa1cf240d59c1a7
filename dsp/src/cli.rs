//! The subcommands of `mimamori-dsp`, one module each, and the record loading they share.

pub(crate) mod bench;
pub(crate) mod detect;
pub(crate) mod eval;
// Used by detect/eval/bench once they are wired to the detector (next commit).
#[allow(dead_code)]
pub(crate) mod record;
