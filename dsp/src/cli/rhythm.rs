//! `mimamori-dsp rhythm`: the streaming rhythm analysis over every record of a folder, writing one
//! AF decision per 30-s window; and the AF scoring and chain benchmark `eval` and `bench` print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use mimamori_dsp::SampleRate;
use mimamori_dsp::af::AfWindow;
use mimamori_dsp::af::scoring::Confusion;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};

use super::record::{self, DEFAULT_LEAD};

/// Samples fed per push: one second at 360 Hz, as a live stream would arrive.
const CHUNK_SAMPLES: usize = 360;

/// Arguments of `mimamori-dsp rhythm`: `<out>/<record>.txt` holds `START_SAMPLE<TAB>AF|nonAF`,
/// one 30-s window a line.
pub(crate) type Args = record::PerRecordArgs;

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    record::write_per_record(args, |record, out| {
        let windows = af_windows(record.sample_rate, &record.samples_mv());
        for w in &windows {
            let label = if w.af { "AF" } else { "nonAF" };
            writeln!(out, "{}\t{label}", w.start)?;
        }
        let af = windows.iter().filter(|w| w.af).count();
        Ok(format!("{} windows, {af} AF", windows.len()))
    })
}

/// Streams `samples` through a fresh analysis chain; the AF decision of every 30-s window.
pub(crate) fn af_windows(rate: SampleRate, samples_mv: &[f32]) -> Vec<AfWindow> {
    let mut analysis = Analysis::new(rate, AnalysisConfig::default());
    let mut out = AnalysisOutput::with_capacity();
    let mut windows = Vec::new();
    for chunk in samples_mv.chunks(CHUNK_SAMPLES) {
        analysis.push(chunk, &mut out);
        windows.append(&mut out.af_windows);
        out.clear();
    }
    analysis.finish(&mut out);
    windows.append(&mut out.af_windows);
    windows
}

fn print_confusion(name: &str, c: &Confusion) {
    println!(
        "{name:>7} {:>5} {:>5} {:>5} {:>5} {:>7.2} {:>7.2}",
        c.true_positives,
        c.false_negatives,
        c.false_positives,
        c.true_negatives,
        c.sensitivity_pct(),
        c.specificity_pct()
    );
}

/// Scores the AF windows of every annotated record against its `(AFIB` episodes (a window is AF
/// when more than half of it lies in one) and prints sensitivity and specificity.
pub(crate) fn print_af_scores(records_dir: &Path, lead: &str) -> anyhow::Result<()> {
    println!();
    println!("AF over 30-s windows (reference: more than half inside an (AFIB episode)");
    println!(
        "{:>7} {:>5} {:>5} {:>5} {:>5} {:>7} {:>7}",
        "record", "TP", "FN", "FP", "TN", "Se%", "Sp%"
    );
    let mut gross = Confusion::default();
    for name in record::record_names(records_dir)? {
        let record = record::load(records_dir, &name, lead)?;
        let Some(annotations) = &record.annotations else {
            continue;
        };
        let total = record.samples_adu.len() as u64;
        let windows = af_windows(record.sample_rate, &record.samples_mv());
        let score = Confusion::compare(&windows, annotations, total);
        print_confusion(&name, &score);
        gross.add(&score);
    }
    print_confusion("gross", &gross);
    Ok(())
}

/// Times the whole chain (detector, quality, RR, HR, HRV, events, AF) over `records` and prints
/// its throughput and per-stream state.
pub(crate) fn print_chain_bench(records: &[(SampleRate, Vec<f32>)], passes: u32) {
    let samples: usize = records.iter().map(|(_, s)| s.len()).sum();
    let seconds_of_ecg: f64 = records
        .iter()
        .map(|(rate, s)| s.len() as f64 / rate.as_hz())
        .sum();
    let passes = passes.max(1);
    let (mut best_wall, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..passes {
        let cpu_started = super::bench::thread_cpu_seconds();
        let started = Instant::now();
        for (rate, samples) in records {
            std::hint::black_box(af_windows(*rate, samples));
        }
        best_wall = best_wall.min(started.elapsed().as_secs_f64());
        if let (Some(start), Some(end)) = (cpu_started, super::bench::thread_cpu_seconds()) {
            best_cpu = best_cpu.min(end - start);
        }
    }
    for (clock, seconds) in [("wall", best_wall), ("cpu", best_cpu)] {
        if seconds.is_finite() {
            println!(
                "whole chain ({clock} clock): {seconds:.3} s, {:.2} M samples/s, {:.0}x real time \
                 (one core, fastest of {passes} passes)",
                samples as f64 / seconds / 1e6,
                seconds_of_ecg / seconds,
            );
        }
    }
    for hz in [125.0, 250.0, 360.0, 500.0] {
        let analysis = Analysis::new(SampleRate::hz(hz), AnalysisConfig::default());
        println!(
            "chain state at {hz:>3} Hz: {} bytes (detector included)",
            analysis.state_bytes()
        );
    }
}
