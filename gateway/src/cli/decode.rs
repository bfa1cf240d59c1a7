//! `decode --profile KIND HEX`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mimamori_gateway::devices::error::parse_hex;
use mimamori_gateway::devices::viatom::checkme_live::CheckBytes;
use mimamori_gateway::devices::{Hex, Profile};

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// What the bytes are.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Profile::ALL.map(|(_, n)| n)))]
    profile: String,
    /// How to treat the two check bytes of `checkme-live` frames.
    #[arg(long, value_enum, default_value = "unverified")]
    check_bytes: CheckBytesArg,
    /// The bytes in hex; spaces, colons and dashes between bytes are allowed ("A5 5A 18 …").
    #[arg(required = true, num_args = 1..)]
    hex: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CheckBytesArg {
    Unverified,
    Crc16CcittFalse,
    Crc16Modbus,
    Sum16,
}

impl From<CheckBytesArg> for CheckBytes {
    fn from(a: CheckBytesArg) -> Self {
        match a {
            CheckBytesArg::Unverified => Self::Unverified,
            CheckBytesArg::Crc16CcittFalse => Self::Crc16CcittFalse,
            CheckBytesArg::Crc16Modbus => Self::Crc16Modbus,
            CheckBytesArg::Sum16 => Self::Sum16,
        }
    }
}

pub fn run(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::from_name(&args.profile).context("profile was validated by clap")?;
    let text = args.hex.join(" ");
    let bytes = parse_hex(&text).with_context(|| format!("while reading hex {text:?}"))?;
    match profile.decode(&bytes, args.check_bytes.into()) {
        Ok(decoded) => {
            println!("{}", serde_json::to_string_pretty(&decoded)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "error: cannot decode as {}: {e} [{}]\nbytes: {}",
                profile.name(),
                e.reason(),
                Hex(bytes)
            );
            Ok(ExitCode::from(2))
        }
    }
}
