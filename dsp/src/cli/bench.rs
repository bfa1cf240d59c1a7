//! `mimamori-dsp bench`: single-core throughput of the streaming detector (QRS with the VF/VFL
//! guard, as `detect` runs it).

use std::path::PathBuf;
use std::time::Instant;

use mimamori_dsp::SampleRate;
use mimamori_dsp::qrs::QrsDetector;
use mimamori_dsp::vf::GuardedQrsDetector;

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
    let (mut best_wall, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut beats = 0usize;
    for _ in 0..args.passes.max(1) {
        beats = 0;
        let cpu_started = thread_cpu_seconds();
        let started = Instant::now();
        for (rate, samples) in &records {
            beats += record::detect_beats(*rate, samples).len();
        }
        best_wall = best_wall.min(started.elapsed().as_secs_f64());
        if let (Some(start), Some(end)) = (cpu_started, thread_cpu_seconds()) {
            best_cpu = best_cpu.min(end - start);
        }
    }
    println!(
        "records: {}, samples: {samples}, beats: {beats}",
        records.len()
    );
    let passes = args.passes.max(1);
    for (clock, seconds) in [("wall", best_wall), ("cpu", best_cpu)] {
        if seconds.is_finite() {
            println!(
                "detector ({clock} clock): {seconds:.3} s, {:.2} M samples/s, {:.0}x real time \
                 (one core, fastest of {passes} passes)",
                samples as f64 / seconds / 1e6,
                seconds_of_ecg / seconds,
            );
        }
    }
    for hz in [125.0, 250.0, 360.0, 500.0] {
        let detector = QrsDetector::new(SampleRate::hz(hz));
        let guarded = GuardedQrsDetector::new(SampleRate::hz(hz));
        println!(
            "state at {hz:>3} Hz: {} bytes ({} with the VF/VFL guard, as timed above)",
            detector.state_bytes(),
            guarded.state_bytes()
        );
    }
    super::rhythm::print_chain_bench(&records, args.passes);
    Ok(())
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat` (nanoseconds on CPU).
/// On a loaded machine it is steadier than the wall clock; `None` elsewhere.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}
