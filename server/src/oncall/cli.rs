//! The `calendar` and `oncall` subcommands: the calendar and the routing, checkable from a shell.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::coverage::{Coverage, CoverageConfig, PROGRAM_TIME_ZONE, Reason};
use super::holidays::HolidayCalendar;
use super::network;
use super::rota::{PatientId, RotaFile};
use super::route::OnCallResolver;
use crate::registry::RegistryFile;

/// `calendar`: Japanese public holidays in a range.
#[derive(Debug, clap::Args)]
pub struct CalendarArgs {
    /// First day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub to: NaiveDate,
}

/// `oncall`: who covers, and whom to call, at an instant.
#[derive(Debug, clap::Args)]
pub struct OncallArgs {
    /// The instant (RFC 3339, any offset).
    #[arg(long)]
    pub at: DateTime<chrono::FixedOffset>,
    /// A patient id; needs `--rota`. Without it, a clinic open weekdays 09:00–18:00 is assumed.
    #[arg(long, requires = "rota")]
    pub patient: Option<String>,
    /// The rota: who is on call when, by registry ids (TOML; see
    /// `fixtures/oncall/setagaya-rota.toml`); needs `--registry`.
    #[arg(long, env = "MIMAMORI_ONCALL_ROTA", requires = "registry")]
    pub rota: Option<PathBuf>,
    /// The registry the rota refers to, as a seed file (`fixtures/registry/demo.toml`): clinics,
    /// doctors and patients' primary clinics come from it, as `serve` takes them from the database.
    #[arg(long, env = "MIMAMORI_ONCALL_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Coverage rules (TOML); the program's defaults when absent.
    #[arg(long, env = "MIMAMORI_ONCALL_COVERAGE")]
    pub coverage: Option<PathBuf>,
}

/// Prints `YYYY-MM-DD<TAB>name` for each holiday in the range.
///
/// # Errors
/// When the range leaves the supported years, or writing fails.
pub fn calendar(args: &CalendarArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let calendar = HolidayCalendar::new();
    for h in calendar
        .between(args.from, args.to)
        .context("while listing holidays")?
    {
        writeln!(out, "{}\t{}", h.date.format("%Y-%m-%d"), h.name_ja)?;
    }
    Ok(())
}

/// Coverage when no patient is given.
#[derive(Debug, Serialize)]
struct CoverageOnly {
    at: DateTime<Utc>,
    local_time: DateTime<chrono_tz::Tz>,
    coverage: Coverage,
    reason: Reason,
    holiday: Option<&'static str>,
    house_call_dispatch: bool,
    partner_triage: bool,
    /// Whom the rota puts on call now, when a rota was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_call_doctor: Option<String>,
}

/// Prints the coverage (and, with a patient, the route) as one JSON object.
///
/// # Errors
/// Unreadable or invalid files, an unknown patient, a gap in the rota, or a date outside the
/// calendar.
pub fn oncall(args: &OncallArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = match &args.coverage {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading {}", path.display()))?;
            toml::from_str::<CoverageConfig>(&text)
                .with_context(|| format!("while parsing {}", path.display()))?
        }
        None => CoverageConfig::default(),
    };
    let (network, rota) = match (&args.rota, &args.registry) {
        (Some(rota_path), Some(registry_path)) => {
            let text = std::fs::read_to_string(registry_path)
                .with_context(|| format!("while reading {}", registry_path.display()))?;
            let registry = RegistryFile::parse(&text)
                .with_context(|| format!("while parsing {}", registry_path.display()))?;
            let shifts = RotaFile::load(rota_path)?.all_shifts()?;
            network::build(&registry.routing_records(), shifts).with_context(|| {
                format!(
                    "while checking {} against {}",
                    rota_path.display(),
                    registry_path.display()
                )
            })?
        }
        _ => Default::default(),
    };
    let resolver = OnCallResolver::new(config, network, rota);
    let at = args.at.with_timezone(&Utc);
    let json = match &args.patient {
        Some(id) => {
            let route = resolver
                .who_to_call(at, &PatientId(id.clone()))
                .context("while routing")?;
            serde_json::to_string_pretty(&route)?
        }
        None => {
            let d = resolver
                .coverage_without_patient(at)
                .context("while deciding coverage")?;
            serde_json::to_string_pretty(&CoverageOnly {
                at,
                local_time: at.with_timezone(&PROGRAM_TIME_ZONE),
                coverage: d.coverage,
                reason: d.reason,
                holiday: d.holiday.map(|h| h.name_ja),
                house_call_dispatch: d.house_call_dispatch,
                partner_triage: d.partner_triage,
                on_call_doctor: resolver
                    .shift_at(at)
                    .filter(|_| d.coverage == Coverage::OnCall)
                    .map(|s| s.doctor.0.clone()),
            })?
        }
    };
    writeln!(out, "{json}")?;
    Ok(())
}
