//! `mimamori-dsp eval`: the detector scored against the reference beat annotations.

use std::path::PathBuf;

use anyhow::bail;
use mimamori_dsp::qrs::scoring::{MATCH_WINDOW_MS, Score};
use mimamori_dsp::wfdb::ventricular_flutter_episodes;

use super::record::{self, DEFAULT_LEAD};

/// Primary (not late) beats should be reported within this time of their R peak.
const PRIMARY_DELAY_LIMIT_MS: f64 = 250.0;

/// Arguments of `mimamori-dsp eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder holding WFDB records with their `atr` annotations.
    records_dir: PathBuf,
    /// Signal to analyse, by its name in the header.
    #[arg(long, default_value = DEFAULT_LEAD)]
    lead: String,
    /// Also list the sample indices of missed beats and false detections of each record.
    #[arg(long)]
    list_errors: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    println!(
        "{:>7} {:>6} {:>6} {:>4} {:>4} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>5}",
        "record",
        "beats",
        "TP",
        "FN",
        "FP",
        "Se%",
        "+P%",
        "F1%",
        "med ms",
        "p95 ms",
        "maxdel",
        "late"
    );
    let mut gross = Score::default();
    let mut worst: Option<(f64, String)> = None;
    let (mut gross_ec57, mut worst_ec57) = (Score::default(), None::<(f64, String)>);
    let (mut max_primary_delay_ms, mut late_beats, mut slow_beats) = (0.0f64, 0usize, 0usize);
    for name in record::record_names(&args.records_dir)? {
        let record = record::load(&args.records_dir, &name, &args.lead)?;
        let Some(reference) = record.reference_beats() else {
            eprintln!("record {name}: no atr annotations, skipped");
            continue;
        };
        let rate = record.sample_rate;
        let (beats, vf_episodes) = record::detect(rate, &record.samples_mv());
        let detected: Vec<u64> = beats.iter().map(|beat| beat.r_peak).collect();
        let score = Score::compare(
            &reference,
            &detected,
            u64::from(rate.samples_in_ms(MATCH_WINDOW_MS)),
        );
        // AAMI EC57 variant: ventricular flutter/fibrillation episodes left out.
        let episodes = record
            .annotations
            .as_deref()
            .map(ventricular_flutter_episodes)
            .unwrap_or_default();
        let ec57 = Score::compare_excluding(
            &reference,
            &detected,
            u64::from(rate.samples_in_ms(MATCH_WINDOW_MS)),
            &episodes,
        );
        if worst_ec57
            .as_ref()
            .is_none_or(|(f1, _)| ec57.f1_pct() < *f1)
        {
            worst_ec57 = Some((ec57.f1_pct(), name.clone()));
        }
        gross_ec57.add(&Score {
            placement_errors: Vec::new(),
            ..ec57
        });
        let primary_delay_ms = beats
            .iter()
            .filter(|beat| !beat.late)
            .map(|beat| rate.ms_of_samples(f64::from(beat.delay)))
            .fold(0.0, f64::max);
        let late = beats.iter().filter(|beat| beat.late).count();
        let slow = beats
            .iter()
            .filter(|beat| {
                !beat.late && rate.ms_of_samples(f64::from(beat.delay)) > PRIMARY_DELAY_LIMIT_MS
            })
            .count();
        slow_beats += slow;
        max_primary_delay_ms = max_primary_delay_ms.max(primary_delay_ms);
        late_beats += late;
        let ms = |q| {
            score
                .abs_placement_quantile(q)
                .map_or(f64::NAN, |s| rate.ms_of_samples(s))
        };
        println!(
            "{:>7} {:>6} {:>6} {:>4} {:>4} {:>7.2} {:>7.2} {:>7.2} {:>7.1} {:>7.1} {:>8.0} {:>5}",
            name,
            reference.len(),
            score.true_positives,
            score.false_negatives,
            score.false_positives,
            score.sensitivity_pct(),
            score.positive_predictivity_pct(),
            score.f1_pct(),
            ms(0.5),
            ms(0.95),
            primary_delay_ms,
            late
        );
        if args.list_errors {
            println!("    VF/VFL episodes found: {vf_episodes:?}");
            println!("    missed: {:?}", score.missed);
            println!("    false:  {:?}", score.false_detections);
        }
        if worst.as_ref().is_none_or(|(f1, _)| score.f1_pct() < *f1) {
            worst = Some((score.f1_pct(), name.clone()));
        }
        // Placement errors are pooled in ms so records at different rates can be summed.
        let in_ms = Score {
            placement_errors: score
                .placement_errors
                .iter()
                .map(|&e| rate.ms_of_samples(e as f64).round() as i64)
                .collect(),
            ..score
        };
        gross.add(&in_ms);
    }
    let Some((worst_f1, worst_name)) = worst else {
        bail!("no annotated record in {}", args.records_dir.display());
    };
    println!(
        "{:>7} {:>6} {:>6} {:>4} {:>4} {:>7.2} {:>7.2} {:>7.2} {:>7.1} {:>7.1} {:>8.0} {:>5}",
        "gross",
        gross.true_positives + gross.false_negatives,
        gross.true_positives,
        gross.false_negatives,
        gross.false_positives,
        gross.sensitivity_pct(),
        gross.positive_predictivity_pct(),
        gross.f1_pct(),
        gross.abs_placement_quantile(0.5).unwrap_or(f64::NAN),
        gross.abs_placement_quantile(0.95).unwrap_or(f64::NAN),
        max_primary_delay_ms,
        late_beats
    );
    println!("worst record: {worst_name} (F1 {worst_f1:.2} %); match window ±{MATCH_WINDOW_MS} ms");
    if let Some((f1, name)) = worst_ec57 {
        println!(
            "with VF/VFL episodes ([ to ]) excluded as in AAMI EC57: Se {:.2} %, +P {:.2} %, F1 {:.2} % \
             (TP {} FN {} FP {}); worst record {name} (F1 {f1:.2} %)",
            gross_ec57.sensitivity_pct(),
            gross_ec57.positive_predictivity_pct(),
            gross_ec57.f1_pct(),
            gross_ec57.true_positives,
            gross_ec57.false_negatives,
            gross_ec57.false_positives,
        );
    }
    println!(
        "maxdel: largest detection delay of a primary (not late) beat, ms; \
         {slow_beats} primary beats took over {PRIMARY_DELAY_LIMIT_MS} ms"
    );
    super::rhythm::print_af_scores(&args.records_dir, &args.lead)
}
