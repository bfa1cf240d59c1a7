//! `outbox status`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use mimamori_gateway::outbox::{Outbox, OutboxConfig};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Print the outbox's epoch, sequence, acknowledgement watermark, backlog and quota as JSON.
    Status {
        /// The outbox directory.
        #[arg(long, env = "MIMAMORI_OUTBOX_DIR")]
        dir: PathBuf,
    },
}

pub fn run(cmd: OutboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCommand::Status { dir } => {
            anyhow::ensure!(dir.join("epoch").exists(), "no outbox at {}", dir.display());
            let outbox = Outbox::open(&dir, OutboxConfig::default())
                .with_context(|| format!("while opening the outbox at {}", dir.display()))?;
            let report =
                serde_json::json!({ "status": outbox.status(), "recovery": outbox.recovery() });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
