//! AF over 30-s windows on MIT-BIH Arrhythmia DS1 (lead MLII), the whole streaming chain from
//! samples, scored as `mimamori-dsp eval` scores it: a window is AF when more than half of it lies
//! inside an `(AFIB` episode. DS1's AF records are 201 and 203; the other twenty are the test of
//! specificity (ectopy-heavy 106, 119, 208, 223; flutter and VT in 203, 207).
//! The floors sit a little under the measured Se 98.6 % / Sp 96.2 %, so a regression fails.

mod common;

use mimamori_dsp::af::AfWindow;
use mimamori_dsp::af::scoring::Confusion;
use mimamori_dsp::analysis::{Analysis, AnalysisConfig, AnalysisOutput};

const DS1: [&str; 22] = [
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201",
    "203", "205", "207", "208", "209", "215", "220", "223", "230",
];

#[test]
fn af_windows_of_ds1_meet_the_sensitivity_and_specificity_floors() {
    let dir = common::ds1_dir();
    let mut gross = Confusion::default();
    for name in DS1 {
        let record = common::load(&dir, name);
        let mut analysis = Analysis::new(record.rate, AnalysisConfig::default());
        let mut out = AnalysisOutput::with_capacity();
        let mut windows: Vec<AfWindow> = Vec::new();
        for chunk in record.samples_mv.chunks(360) {
            analysis.push(chunk, &mut out);
            windows.append(&mut out.af_windows);
            out.clear();
        }
        analysis.finish(&mut out);
        windows.append(&mut out.af_windows);

        let total = record.samples_mv.len() as u64;
        assert_eq!(
            windows.len() as u64,
            total.div_ceil(30 * 360),
            "record {name}"
        );
        let score = Confusion::compare(&windows, &record.annotations, total);
        println!(
            "{name}: Se {:.1} % Sp {:.1} % {score:?}",
            score.sensitivity_pct(),
            score.specificity_pct()
        );
        gross.add(&score);
    }
    println!(
        "DS1 gross: Se {:.2} % Sp {:.2} % {gross:?}",
        gross.sensitivity_pct(),
        gross.specificity_pct()
    );
    assert!(gross.sensitivity_pct() >= 95.0, "{gross:?}");
    assert!(gross.specificity_pct() >= 95.0, "{gross:?}");
}
