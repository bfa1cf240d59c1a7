//! `mimamori-dsp`: run the DSP chain over WFDB records on disk.
//!
//! ```text
//! mimamori-dsp detect RECORDS_DIR --out OUT_DIR   # OUT_DIR/NNN.txt: one 0-based R-peak index per line
//! mimamori-dsp eval RECORDS_DIR                   # Se, +P, F1, R-peak placement against the atr beats
//! mimamori-dsp bench RECORDS_DIR                  # single-core detector throughput
//! mimamori-dsp rhythm RECORDS_DIR --out OUT_DIR   # OUT_DIR/NNN.txt: START_SAMPLE<TAB>AF|nonAF per 30-s window
//! ```
//!
//! All file reading happens here; the library only sees bytes and samples.

use clap::{Parser, Subcommand};

mod cli;

/// Streaming ECG tools over WFDB records (lead MLII by default).
#[derive(Debug, Parser)]
#[command(name = "mimamori-dsp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Detect beats in every record of a folder; write OUT_DIR/<record>.txt, one R-peak sample
    /// index (0-based) per line.
    Detect(cli::detect::Args),
    /// Score the detector against the records' `atr` beat annotations.
    Eval(cli::eval::Args),
    /// Measure single-core detector throughput over the records.
    Bench(cli::bench::Args),
    /// Rhythm analysis of every record; write OUT_DIR/<record>.txt, one 30-s window a line:
    /// START_SAMPLE<TAB>AF or START_SAMPLE<TAB>nonAF.
    Rhythm(cli::rhythm::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Detect(args) => cli::detect::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
        Command::Rhythm(args) => cli::rhythm::run(&args),
    }
}
