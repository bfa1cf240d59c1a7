//! `mimamori-dsp bench`: single-core throughput of the streaming detector.

use std::path::PathBuf;
use std::time::Instant;

use mimamori_dsp::SampleRate;
use mimamori_dsp::qrs::QrsDetector;

use super::record::{self, DEFAULT_LEAD};

/// Arguments of `mimamori-dsp bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder holding WFDB records.
    records_dir: PathBuf,
    /// Signal to analyse, by its name in the header.
    #[arg(long, default_value = DEFAULT_LEAD)]
    lead: String,
    /// Passes over all records; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    passes: u32,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for name in record::record_names(&args.records_dir)? {
        let record = record::load(&args.records_dir, &name, &args.lead)?;
        records.push((record.sample_rate, record.samples_mv()));
    }
    let samples: usize = records.iter().map(|(_, samples)| samples.len()).sum();
    let seconds_of_ecg: f64 = records
        .iter()
        .map(|(rate, s)| s.len() as f64 / rate.as_hz())
        .sum();
    let mut best = f64::INFINITY;
    let mut beats = 0usize;
    for _ in 0..args.passes.max(1) {
        beats = 0;
        let started = Instant::now();
        for (rate, samples) in &records {
            beats += record::detect_beats(*rate, samples).len();
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "records: {}, samples: {samples}, beats: {beats}",
        records.len()
    );
    println!(
        "detector: {:.3} s, {:.2} M samples/s, {:.0}x real time (one core, fastest of {} passes)",
        best,
        samples as f64 / best / 1e6,
        seconds_of_ecg / best,
        args.passes.max(1)
    );
    for hz in [125.0, 250.0, 360.0, 500.0] {
        let detector = QrsDetector::new(SampleRate::hz(hz));
        println!("state at {hz:>3} Hz: {} bytes", detector.state_bytes());
    }
    super::rhythm::print_chain_bench(&records, args.passes);
    Ok(())
}
