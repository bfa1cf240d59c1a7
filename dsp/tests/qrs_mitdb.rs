//! The detector scored on MIT-BIH Arrhythmia DS1 (`../shared/data/mitdb-ds1`, lead MLII), with
//! the rules of `mimamori-dsp eval`: beat annotations only, ±150 ms, one-to-one matching.
//! The floors sit a little under the figures `mimamori-dsp eval` prints, so a regression fails.

use std::path::{Path, PathBuf};

use mimamori_dsp::qrs::QrsDetector;
use mimamori_dsp::qrs::scoring::{MATCH_WINDOW_MS, Score};
use mimamori_dsp::wfdb::{Header, decode_signal_file, parse_annotations};

/// `$MIMAMORI_MITDB_DS1`, else `shared/` beside the repository (`../shared` from the repo root),
/// else one level further up (a git worktree kept in a subfolder beside the repository).
fn ds1_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIMAMORI_MITDB_DS1") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside_repo = manifest.join("../../shared/data/mitdb-ds1");
    let beside_worktree = manifest.join("../../../shared/data/mitdb-ds1");
    if beside_repo.is_dir() || !beside_worktree.is_dir() {
        beside_repo
    } else {
        beside_worktree
    }
}

/// Scores one record; returns the score with placement errors in ms.
fn score_record(dir: &Path, name: &str) -> Score {
    let read = |ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap();
    let header = Header::parse(std::str::from_utf8(&read("hea")).unwrap()).unwrap();
    let lead = header.signal_named("MLII").unwrap();
    let spec = &header.signals[lead];
    let data = std::fs::read(dir.join(&spec.file_name)).unwrap();
    let signals = decode_signal_file(&header, &spec.file_name, &data).unwrap();
    let samples: Vec<f32> = signals
        .iter()
        .find(|s| s.signal == lead)
        .unwrap()
        .samples_adu
        .iter()
        .map(|&a| a as f32)
        .collect();
    let reference: Vec<u64> = parse_annotations(&read("atr"))
        .unwrap()
        .iter()
        .filter(|a| a.code.is_beat())
        .map(|a| a.sample)
        .collect();

    let rate = header.sample_rate;
    let mut detector = QrsDetector::new(rate);
    let mut detected = Vec::new();
    for chunk in samples.chunks(360) {
        detector.push(chunk, |beat| detected.push(beat.r_peak));
    }
    detected.sort_unstable();
    let mut score = Score::compare(
        &reference,
        &detected,
        u64::from(rate.samples_in_ms(MATCH_WINDOW_MS)),
    );
    for error in &mut score.placement_errors {
        *error = rate.ms_of_samples(*error as f64).round() as i64;
    }
    score
}

#[test]
fn ds1_sensitivity_predictivity_and_placement_stay_above_floors() {
    let dir = ds1_dir();
    if !dir.is_dir() {
        eprintln!(
            "!!! SKIPPED: MIT-BIH DS1 not found at {} — the QRS accuracy floors were NOT checked",
            dir.display()
        );
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            (path.extension()? == "hea").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 22, "DS1 has 22 records");

    let mut gross = Score::default();
    for name in &names {
        let score = score_record(&dir, name);
        eprintln!(
            "{name}: Se {:.2} +P {:.2} F1 {:.2}",
            score.sensitivity_pct(),
            score.positive_predictivity_pct(),
            score.f1_pct()
        );
        // 207's ventricular flutter episodes carry no beat labels; its flutter waves count as
        // false positives under these rules (AAMI EC57 would exclude them).
        let record_floor = if name == "207" { 89.0 } else { 98.0 };
        assert!(
            score.f1_pct() >= record_floor,
            "{name}: F1 {:.2} % under {record_floor} %",
            score.f1_pct()
        );
        gross.add(&score);
    }
    let (se, ppv, f1) = (
        gross.sensitivity_pct(),
        gross.positive_predictivity_pct(),
        gross.f1_pct(),
    );
    eprintln!("gross: Se {se:.2} +P {ppv:.2} F1 {f1:.2}");
    assert!(se >= 99.7, "gross Se {se:.2} %");
    assert!(ppv >= 98.9, "gross +P {ppv:.2} %");
    assert!(f1 >= 99.3, "gross F1 {f1:.2} %");
    let median = gross.abs_placement_quantile(0.5).unwrap();
    let p95 = gross.abs_placement_quantile(0.95).unwrap();
    assert!(median <= 3.0, "median |R-peak error| {median} ms");
    assert!(p95 <= 20.0, "p95 |R-peak error| {p95} ms");
}
