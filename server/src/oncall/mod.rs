//! On-call routing: who is called for a patient's alert at a given instant, and what that doctor
//! is handed.
//!
//! Layout:
//! - [`holidays`]: Japanese public holidays computed from the law.
//! - [`coverage`]: the program's hours; primary clinic or on call at a given local time.
//! - [`rota`]: doctors, clinics, patients' primary clinics, and the on-call shifts.
//! - [`route`]: the resolver the alert engine calls ([`route::OnCallResolver::who_to_call`]).
//! - [`cli`]: the `calendar` and `oncall` subcommands.

pub mod cli;
pub mod coverage;
pub mod holidays;
pub mod rota;
pub mod route;
