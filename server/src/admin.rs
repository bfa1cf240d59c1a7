//! `mimamori-server admin …`: the registry from a shell.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};

use crate::config::Config;
use crate::registry::RegistryFile;
use crate::storage::{self, Loan, Storage};

/// Arguments of `admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Configuration file (TOML); its `[storage]` says which database.
    #[arg(long, env = "MIMAMORI_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The registry operations.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Apply pending migrations (also done by every other command).
    Migrate,
    /// Load clinics, patients, users, care teams, devices, gateways and loans from a TOML file;
    /// safe to repeat.
    Seed {
        /// e.g. fixtures/registry/demo.toml
        file: PathBuf,
    },
    /// List patients as JSON.
    Patients,
    /// List loans (with consent) as JSON.
    Loans,
    /// Lend a device to a patient.
    LendDevice {
        #[arg(long)]
        device: String,
        #[arg(long)]
        patient: String,
        /// Start of the loan (RFC 3339).
        #[arg(long)]
        from: DateTime<FixedOffset>,
        /// User slot on a shared BP cuff or scale.
        #[arg(long)]
        device_user: Option<u8>,
    },
    /// End a loan.
    EndLoan {
        #[arg(long)]
        id: i64,
        /// End of the loan (RFC 3339).
        #[arg(long)]
        at: DateTime<FixedOffset>,
    },
}

/// Runs an admin command, writing JSON results to `out`.
pub async fn run(args: AdminArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref()).context("while loading the configuration")?;
    let opened = storage::open(&config.storage)
        .await
        .context("while opening storage")?;
    let directory = crate::registry::Directory::of(&opened);
    crate::with_storage!(opened, |store| admin_with(
        &store,
        &directory,
        args.command,
        out
    )
    .await)
}

async fn admin_with<S: Storage>(
    store: &S,
    directory: &crate::registry::Directory,
    command: AdminCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::Migrate => writeln!(out, "migrated")?,
        AdminCommand::Seed { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("while reading {}", file.display()))?;
            let registry = RegistryFile::parse(&text)
                .with_context(|| format!("while parsing {}", file.display()))?;
            let report = registry
                .apply(store, directory)
                .await
                .context("while seeding")?;
            serde_json::to_writer(&mut *out, &report)?;
            writeln!(out)?;
        }
        AdminCommand::Patients => {
            serde_json::to_writer_pretty(&mut *out, &store.patients().await?)?;
            writeln!(out)?;
        }
        AdminCommand::Loans => {
            serde_json::to_writer_pretty(&mut *out, &store.loans().await?)?;
            writeln!(out)?;
        }
        AdminCommand::LendDevice {
            device,
            patient,
            from,
            device_user,
        } => {
            let id = store
                .add_loan(&Loan {
                    device_id: device,
                    patient_id: patient,
                    device_user,
                    lent_from: from.with_timezone(&Utc),
                    lent_until: None,
                })
                .await
                .context("while recording the loan")?;
            writeln!(out, "{{\"loan_id\":{id}}}")?;
        }
        AdminCommand::EndLoan { id, at } => {
            store.end_loan(id, at.with_timezone(&Utc)).await?;
            writeln!(out, "{{\"loan_id\":{id},\"ended\":true}}")?;
        }
    }
    Ok(())
}
