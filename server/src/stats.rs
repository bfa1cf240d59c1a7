//! `mimamori-server stats [--since RFC3339]`: ingest figures per gateway, as JSON — the first
//! thing an operator asks when a home seems silent.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};

use crate::config::Config;
use crate::storage::{self, Storage};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Configuration file (TOML); its `[storage]` says which database.
    #[arg(long, env = "MIMAMORI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Count only from this instant on (RFC 3339; whole minutes).
    #[arg(long)]
    pub since: Option<DateTime<FixedOffset>>,
}

/// Prints one JSON array: per gateway received, stored, duplicates, dead-lettered (by reason),
/// last seen and clock offset.
pub async fn run(args: StatsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref()).context("while loading the configuration")?;
    let opened = storage::open(&config.storage)
        .await
        .context("while opening storage")?;
    let since = args.since.map(|s| s.with_timezone(&Utc));
    let stats = crate::with_storage!(opened, |store| store.gateway_stats(since).await)?;
    serde_json::to_writer_pretty(&mut *out, &stats)?;
    writeln!(out)?;
    Ok(())
}
