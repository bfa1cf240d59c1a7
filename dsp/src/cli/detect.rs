//! `mimamori-dsp detect`: beats of every record in a folder, one file per record.

use super::record;
use std::io::Write;

/// Arguments of `mimamori-dsp detect`: `<out>/<record>.txt` holds one 0-based R-peak sample index a line.
pub(crate) type Args = record::PerRecordArgs;

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    record::write_per_record(args, |record, out| {
        let beats = record::detect_beats(record.sample_rate, &record.samples_mv());
        for beat in &beats {
            writeln!(out, "{}", beat.r_peak)?;
        }
        Ok(format!("{} beats", beats.len()))
    })
}
