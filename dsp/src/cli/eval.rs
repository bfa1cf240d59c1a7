//! `mimamori-dsp eval`.

use std::path::PathBuf;

/// Arguments of `mimamori-dsp eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder holding WFDB records (`*.hea`, `*.dat`, `*.atr`).
    records_dir: PathBuf,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    // Wired to the streaming detector in the next commit.
    anyhow::bail!(
        "eval is not implemented yet ({})",
        args.records_dir.display()
    )
}
