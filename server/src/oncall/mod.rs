//! On-call routing: who is called for a patient's alert at a given instant, and what that doctor
//! is handed.
//!
//! Layout:
//! - [`holidays`]: Japanese public holidays computed from the law.
//! - [`coverage`]: the program's hours; primary clinic or on call at a given local time.
//! - [`rota`]: doctors, clinics, patients' primary clinics, and the on-call shifts.
//! - [`network`]: that network built from the registry, and the rota file checked against it.
//! - [`live`]: the routing `serve` runs, rebuilt as the registry changes.
//! - [`route`]: the resolver the alert engine calls ([`route::OnCallResolver::who_to_call`]).
//! - [`escalation`]: the plan the alert engine stores with an alert ([`escalation::AlertRouting`]).
//! - [`store`]: rota persistence, the same code for PostgreSQL and SQLite.
//! - [`cli`]: the `calendar` and `oncall` subcommands.
//! - [`handover`]: the one-page summary handed to a doctor who does not know the patient.

pub mod cli;
pub mod coverage;
pub mod escalation;
pub mod handover;
pub mod holidays;
pub mod live;
pub mod network;
pub mod rota;
pub mod route;
pub mod store;
