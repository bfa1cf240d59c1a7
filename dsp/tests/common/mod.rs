//! MIT-BIH DS1 records for integration tests, read in place from the shared data folder.

use std::path::{Path, PathBuf};

use mimamori_dsp::SampleRate;
use mimamori_dsp::wfdb::{Annotation, Header, decode_signal_file, parse_annotations};

/// `$MIMAMORI_MITDB_DS1`, else `shared/data/mitdb-ds1` beside the repository, else one level
/// further up (a git worktree kept in a subfolder beside the repository).
pub fn ds1_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIMAMORI_MITDB_DS1") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "../../shared/data/mitdb-ds1",
        "../../../shared/data/mitdb-ds1",
    ]
    .iter()
    .map(|relative| manifest.join(relative))
    .find(|dir| dir.is_dir())
    .unwrap_or_else(|| manifest.join("../../shared/data/mitdb-ds1"))
}

/// Lead MLII of one record, in millivolts, with its annotations.
pub struct MitdbRecord {
    pub rate: SampleRate,
    pub samples_mv: Vec<f32>,
    pub annotations: Vec<Annotation>,
}

/// Reads record `name` from `dir`.
///
/// # Panics
/// When the record is missing or malformed: the test data is a fixed input.
pub fn load(dir: &Path, name: &str) -> MitdbRecord {
    let read = |file: &str| {
        std::fs::read(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
    };
    let header_bytes = read(&format!("{name}.hea"));
    let header = Header::parse(std::str::from_utf8(&header_bytes).expect("ascii header"))
        .expect("valid header");
    let lead = header.signal_named("MLII").expect("an MLII lead");
    let spec = &header.signals[lead];
    let signals = decode_signal_file(&header, &spec.file_name, &read(&spec.file_name))
        .expect("valid signal file");
    let samples = &signals
        .iter()
        .find(|s| s.signal == lead)
        .expect("the MLII signal")
        .samples_adu;
    let samples_mv = samples
        .iter()
        .map(|&adu| (f64::from(adu) / spec.adc_gain_per_unit) as f32)
        .collect();
    let annotations = parse_annotations(&read(&format!("{name}.atr"))).expect("valid annotations");
    MitdbRecord {
        rate: header.sample_rate,
        samples_mv,
        annotations,
    }
}
