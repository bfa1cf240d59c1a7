//! `mimamori-dsp detect`: beats of every record in a folder, one file per record.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::record::{self, DEFAULT_LEAD};

/// Arguments of `mimamori-dsp detect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder holding WFDB records (`*.hea`, `*.dat`).
    records_dir: PathBuf,
    /// Folder to write `<record>.txt` into: one 0-based R-peak sample index per line.
    #[arg(long)]
    out: PathBuf,
    /// Signal to analyse, by its name in the header.
    #[arg(long, default_value = DEFAULT_LEAD)]
    lead: String,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("while creating {}", args.out.display()))?;
    for name in record::record_names(&args.records_dir)? {
        let record = record::load(&args.records_dir, &name, &args.lead)?;
        let beats = record::detect_beats(record.sample_rate, &record.samples_mv());
        let path = args.out.join(format!("{name}.txt"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("while creating {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for beat in &beats {
            writeln!(out, "{}", beat.r_peak)
                .with_context(|| format!("while writing {}", path.display()))?;
        }
        out.flush()
            .with_context(|| format!("while writing {}", path.display()))?;
        println!("{name}: {} beats -> {}", beats.len(), path.display());
    }
    Ok(())
}
