//! Loading WFDB records from a folder: the only place the tools touch the file system.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mimamori_dsp::vf::{Detection, GuardedQrsDetector, VfChange};
use mimamori_dsp::wfdb::{Annotation, Header, decode_signal_file, parse_annotations};
use mimamori_dsp::{Beat, SampleRate};

/// The lead the tools analyse unless told otherwise.
pub(crate) const DEFAULT_LEAD: &str = "MLII";

/// One lead of one record, with its reference annotations when the folder has them.
#[derive(Debug)]
pub(crate) struct Record {
    /// Sampling rate of the lead.
    pub(crate) sample_rate: SampleRate,
    /// The lead's samples in ADC units.
    pub(crate) samples_adu: Vec<i32>,
    /// ADC units per millivolt (the header's gain).
    pub(crate) adu_per_mv: f64,
    /// Annotations from `<name>.atr`, when that file exists.
    pub(crate) annotations: Option<Vec<Annotation>>,
}

/// Names of the records in `dir` (every `*.hea`), sorted.
pub(crate) fn record_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("while listing {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("while listing {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "hea")
            && let Some(stem) = path.file_stem().and_then(|stem| stem.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    if names.is_empty() {
        bail!("no WFDB header (*.hea) in {}", dir.display());
    }
    names.sort();
    Ok(names)
}

/// Loads lead `lead` of record `name` from `dir`, falling back to the first signal when the
/// record has no signal of that name.
pub(crate) fn load(dir: &Path, name: &str, lead: &str) -> anyhow::Result<Record> {
    let header_path = dir.join(format!("{name}.hea"));
    let text = std::fs::read_to_string(&header_path)
        .with_context(|| format!("while reading {}", header_path.display()))?;
    let header =
        Header::parse(&text).with_context(|| format!("while parsing {}", header_path.display()))?;
    let index = header.signal_named(lead).unwrap_or_else(|| {
        eprintln!("record {name}: no signal named {lead}, using signal 0");
        0
    });
    let Some(spec) = header.signals.get(index) else {
        bail!("record {name} has no signals");
    };
    let data_path: PathBuf = dir.join(&spec.file_name);
    let bytes = std::fs::read(&data_path)
        .with_context(|| format!("while reading {}", data_path.display()))?;
    let signals = decode_signal_file(&header, &spec.file_name, &bytes)
        .with_context(|| format!("while decoding {}", data_path.display()))?;
    let samples_adu = signals
        .into_iter()
        .find(|decoded| decoded.signal == index)
        .map(|decoded| decoded.samples_adu)
        .with_context(|| format!("signal {index} missing from {}", data_path.display()))?;

    let annotation_path = dir.join(format!("{name}.atr"));
    let annotations = match std::fs::read(&annotation_path) {
        Ok(bytes) => Some(
            parse_annotations(&bytes)
                .with_context(|| format!("while parsing {}", annotation_path.display()))?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error)
                .with_context(|| format!("while reading {}", annotation_path.display()));
        }
    };
    Ok(Record {
        sample_rate: header.sample_rate,
        samples_adu,
        adu_per_mv: spec.adc_gain_per_unit,
        annotations,
    })
}

/// Samples handed to the detector per call, as a live stream would deliver them (about 1 s).
const CHUNK_SAMPLES: usize = 360;

impl Record {
    /// The lead's samples in millivolts.
    pub(crate) fn samples_mv(&self) -> Vec<f32> {
        self.samples_adu
            .iter()
            .map(|&adu| (f64::from(adu) / self.adu_per_mv) as f32)
            .collect()
    }

    /// Sample indices of the reference beats (beat annotations only).
    pub(crate) fn reference_beats(&self) -> Option<Vec<u64>> {
        let annotations = self.annotations.as_ref()?;
        Some(
            annotations
                .iter()
                .filter(|a| a.code.is_beat())
                .map(|a| a.sample)
                .collect(),
        )
    }
}

/// Runs a fresh streaming detector (QRS with the VF/VFL guard) over `samples` in live-sized
/// chunks; beats sorted by R peak.
pub(crate) fn detect_beats(sample_rate: SampleRate, samples: &[f32]) -> Vec<Beat> {
    detect(sample_rate, samples).0
}

/// Like [`detect_beats`], with the VF/VFL episodes found (`start..end` sample ranges).
pub(crate) fn detect(sample_rate: SampleRate, samples: &[f32]) -> (Vec<Beat>, Vec<Range<u64>>) {
    let mut detector = GuardedQrsDetector::new(sample_rate);
    let mut beats = Vec::new();
    let mut episodes = Vec::new();
    let mut on_output = |detection| match detection {
        Detection::Beat(beat) => beats.push(beat),
        Detection::Vf(VfChange::Offset { start, end }) => episodes.push(start..end),
        Detection::Vf(VfChange::Onset { .. }) => {}
    };
    for chunk in samples.chunks(CHUNK_SAMPLES) {
        detector.push(chunk, &mut on_output);
    }
    detector.finish(&mut on_output);
    // Search-back beats arrive after later ones.
    beats.sort_by_key(|beat| beat.r_peak);
    (beats, episodes)
}

/// Arguments of the subcommands that write one output file per record (`detect`, `rhythm`).
/// Their interface is used to score the project on records it does not have: keep it stable.
#[derive(Debug, clap::Args)]
pub(crate) struct PerRecordArgs {
    /// Folder holding WFDB records (`*.hea`, `*.dat`).
    records_dir: PathBuf,
    /// Folder to write `<record>.txt` into.
    #[arg(long)]
    out: PathBuf,
    /// Signal to analyse, by its name in the header.
    #[arg(long, default_value = DEFAULT_LEAD)]
    lead: String,
}

/// Loads every record of `args.records_dir` and writes `<out>/<record>.txt` with `write`, which
/// returns a one-line summary printed beside the file name.
pub(crate) fn write_per_record(
    args: &PerRecordArgs,
    mut write: impl FnMut(&Record, &mut dyn std::io::Write) -> std::io::Result<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("while creating {}", args.out.display()))?;
    for name in record_names(&args.records_dir)? {
        let record = load(&args.records_dir, &name, &args.lead)?;
        let path = args.out.join(format!("{name}.txt"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("while creating {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let summary = write(&record, &mut out)
            .and_then(|summary| std::io::Write::flush(&mut out).map(|()| summary))
            .with_context(|| format!("while writing {}", path.display()))?;
        println!("{name}: {summary} -> {}", path.display());
    }
    Ok(())
}
