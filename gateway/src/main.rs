//! `mimamori-gateway`: the home gateway's command line.
//!
//! ```text
//! mimamori-gateway run --config FILE              the gateway service
//! mimamori-gateway scan [--seconds N]             health devices advertising nearby
//! mimamori-gateway decode --profile KIND HEX     decode one notification or frame, print JSON
//! mimamori-gateway outbox status --dir DIR       what the outbox holds
//! mimamori-gateway simulate --broker URL --patients N [--scenario FILE] [--speed X]
//! ```

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    cli::init_tracing();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
