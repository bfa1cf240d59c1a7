//! Subcommands of the `mimamori-gateway` binary.

mod decode;
mod outbox;
mod run;
mod simulate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimamori home gateway: BLE vital-sign devices → durable outbox → MQTT.
#[derive(Debug, Parser)]
#[command(name = "mimamori-gateway", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode one notification (SIG profiles) or one frame (Viatom) and print it as JSON.
    Decode(decode::DecodeArgs),
    /// Run the gateway: scan, read the allowed devices, keep readings in the outbox, publish.
    Run(run::RunArgs),
    /// List the health devices advertising nearby, with the family each would be read as.
    Scan(run::ScanArgs),
    /// Simulated homes publishing vitals and ECG through the real outbox and publisher.
    Simulate(simulate::SimulateArgs),
    /// Inspect the durable outbox.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Decode(a) => decode::run(a),
        Command::Outbox(c) => outbox::run(c),
        Command::Simulate(a) => simulate::run(a),
        Command::Run(a) => run::run(a),
        Command::Scan(a) => run::scan(a),
    }
}
