//! The resolver: for a patient and an instant, who is called first and who after.
//!
//! This is the hook the alert engine calls: [`OnCallResolver::who_to_call`] gives a [`Route`], and
//! [`Route::chain`] its escalation order (first contact, then each backup). During the clinic's
//! hours the chain is the director, then the clinic's emergency line, then whoever holds the rota
//! at that time (a clinic whose director the registry does not list as a callable doctor starts at
//! its line); on call it is the on-call doctor, the backups in order, then the primary clinic's
//! 24-hour emergency line. The on-call team serves every patient, whichever clinic it comes from,
//! so a patient whose clinic has no team in the rotation is still covered.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::coverage::{
    Coverage, CoverageConfig, CoverageDecision, CoveragePolicy, OpeningHours, PROGRAM_TIME_ZONE,
    Reason,
};
use super::holidays::HolidayError;
use super::rota::{CareNetwork, Clinic, ClinicId, DoctorId, PatientId, PhoneNumber, Rota, Shift};

/// Errors while resolving a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The patient is not in the care network.
    #[error("unknown patient {0}")]
    UnknownPatient(PatientId),
    /// Coverage is on call and no shift holds that instant: the rota has a gap.
    #[error("no on-call shift at {0}")]
    NoShift(DateTime<Utc>),
    /// The instant's date is outside the holiday calendar.
    #[error(transparent)]
    Calendar(#[from] HolidayError),
}

/// The part a contact plays in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactRole {
    /// The director of the patient's clinic.
    PrimaryDoctor,
    /// A clinic's emergency line.
    ClinicEmergencyLine,
    /// The rota's on-call doctor.
    OnCallDoctor,
    /// A backup doctor from the rota.
    BackupDoctor,
}

/// Someone to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact<'a> {
    /// Role in the chain.
    pub role: ContactRole,
    /// The doctor, when the contact is a person rather than a clinic line.
    pub doctor_id: Option<&'a DoctorId>,
    /// Who answers (the doctor's or the clinic's name).
    pub name: &'a str,
    /// The clinic behind the contact.
    pub clinic_id: &'a ClinicId,
    /// The clinic's name.
    pub clinic: &'a str,
    /// The number to call.
    pub phone: &'a PhoneNumber,
}

/// A clinic as the called doctor needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClinicContact<'a> {
    /// Registry id.
    pub id: &'a ClinicId,
    /// Name.
    pub name: &'a str,
    /// The director's name.
    pub director: &'a str,
    /// The clinic's emergency number.
    pub emergency_phone: &'a PhoneNumber,
}

/// Who is called for a patient at one instant, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route<'a> {
    /// The instant, UTC.
    pub at: DateTime<Utc>,
    /// The same instant in Asia/Tokyo.
    pub local_time: DateTime<Tz>,
    /// Primary clinic or on call.
    pub coverage: Coverage,
    /// Why.
    pub reason: Reason,
    /// The holiday's Japanese name, when the day is one.
    pub holiday: Option<&'static str>,
    /// Whether house calls are dispatched now.
    pub house_call_dispatch: bool,
    /// The partner clinic triaging calls now, if any.
    pub triage: Option<ClinicContact<'a>>,
    /// Called first.
    pub notify: Contact<'a>,
    /// Called in order when the previous contact does not acknowledge.
    pub escalation: Vec<Contact<'a>>,
    /// The patient's own clinic, so the on-call doctor can reach it.
    pub primary_clinic: ClinicContact<'a>,
}

impl Route<'_> {
    /// The whole escalation order: [`Route::notify`] then [`Route::escalation`].
    pub fn chain(&self) -> impl Iterator<Item = &Contact<'_>> {
        std::iter::once(&self.notify).chain(&self.escalation)
    }
}

/// Resolves coverage and contacts from the policy, the network and the rota.
#[derive(Debug, Clone)]
pub struct OnCallResolver {
    policy: CoveragePolicy,
    network: CareNetwork,
    rota: Rota,
    default_hours: OpeningHours,
}

impl OnCallResolver {
    /// A resolver over the given rules, network and rota.
    pub fn new(config: CoverageConfig, network: CareNetwork, rota: Rota) -> Self {
        Self {
            policy: CoveragePolicy::new(config),
            network,
            rota,
            default_hours: OpeningHours::weekdays_nine_to_six(),
        }
    }

    /// The coverage policy in use.
    pub fn policy(&self) -> &CoveragePolicy {
        &self.policy
    }

    /// Coverage alone, for a clinic open weekdays 09:00–18:00 except holidays (no patient known).
    ///
    /// # Errors
    /// [`HolidayError`] outside the calendar's years.
    pub fn coverage_without_patient(
        &self,
        at: DateTime<Utc>,
    ) -> Result<CoverageDecision, HolidayError> {
        self.policy.decide(at, &self.default_hours)
    }

    /// Who to call for `patient` at `at`.
    ///
    /// # Errors
    /// [`RouteError::UnknownPatient`], [`RouteError::NoShift`] when on call and the rota has a
    /// gap, [`RouteError::Calendar`] outside the calendar's years.
    pub fn who_to_call(
        &self,
        at: DateTime<Utc>,
        patient: &PatientId,
    ) -> Result<Route<'_>, RouteError> {
        let primary = self
            .network
            .primary_clinic_index(patient)
            .ok_or_else(|| RouteError::UnknownPatient(patient.clone()))?;
        let primary_clinic = self.network.clinic_at(primary);
        let decision = self.policy.decide(at, &primary_clinic.opening_hours)?;
        let shift = self.rota.resolved_at(at);
        let primary_line = clinic_line(primary_clinic);

        let (notify, escalation, triage) = match decision.coverage {
            Coverage::PrimaryClinic => {
                // Whoever holds the rota now is the last resort during opening hours.
                let on_call =
                    shift.map(|s| self.doctor_contact(s.doctor, ContactRole::OnCallDoctor));
                let (first, escalation) = match self.network.director_of(primary) {
                    Some(director) => (
                        self.doctor_contact(director, ContactRole::PrimaryDoctor),
                        std::iter::once(primary_line).chain(on_call).collect(),
                    ),
                    None => (primary_line, on_call.into_iter().collect()),
                };
                (first, escalation, None)
            }
            Coverage::OnCall => {
                let s = shift.ok_or(RouteError::NoShift(at))?;
                let mut escalation = Vec::with_capacity(s.backups.len() + 1);
                escalation.extend(
                    s.backups
                        .iter()
                        .map(|&d| self.doctor_contact(d, ContactRole::BackupDoctor)),
                );
                escalation.push(primary_line);
                let triage = decision
                    .partner_triage
                    .then(|| self.clinic_contact(s.triage_clinic));
                let on_call = self.doctor_contact(s.doctor, ContactRole::OnCallDoctor);
                (on_call, escalation, triage)
            }
        };
        Ok(Route {
            at,
            local_time: at.with_timezone(&PROGRAM_TIME_ZONE),
            coverage: decision.coverage,
            reason: decision.reason,
            holiday: decision.holiday.map(|h| h.name_ja),
            house_call_dispatch: decision.house_call_dispatch,
            triage,
            notify,
            escalation,
            primary_clinic: self.clinic_contact(primary),
        })
    }

    /// Every span in `[from, to)`, probed at `step`, where [`Self::who_to_call`] finds nobody for
    /// `patient`: the check an operator runs on a new rota before it takes effect.
    ///
    /// Each gap is (first failing probe, the error there); consecutive failing probes with the
    /// same error count as one gap.
    pub fn unreachable_spans(
        &self,
        patient: &PatientId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Vec<(DateTime<Utc>, RouteError)> {
        let mut gaps: Vec<(DateTime<Utc>, RouteError)> = Vec::new();
        let mut previous_failed = false;
        let mut at = from;
        while at < to {
            match self.who_to_call(at, patient) {
                Ok(_) => previous_failed = false,
                Err(e) => {
                    if !previous_failed
                        || gaps.last().is_some_and(|(_, last)| {
                            std::mem::discriminant(last) != std::mem::discriminant(&e)
                        })
                    {
                        gaps.push((at, e));
                    }
                    previous_failed = true;
                }
            }
            at += step;
        }
        gaps
    }

    /// The shift covering `at`, if any.
    pub fn shift_at(&self, at: DateTime<Utc>) -> Option<&Shift> {
        self.rota.shift_at(at)
    }

    fn doctor_contact(&self, doctor: usize, role: ContactRole) -> Contact<'_> {
        let (doctor, clinic) = self.network.doctor_with_clinic(doctor);
        Contact {
            role,
            doctor_id: Some(&doctor.id),
            name: &doctor.name,
            clinic_id: &clinic.id,
            clinic: &clinic.name,
            phone: &doctor.phone,
        }
    }

    fn clinic_contact(&self, clinic: usize) -> ClinicContact<'_> {
        let clinic = self.network.clinic_at(clinic);
        ClinicContact {
            id: &clinic.id,
            name: &clinic.name,
            director: &clinic.director_name,
            emergency_phone: &clinic.emergency_phone,
        }
    }
}

fn clinic_line(clinic: &Clinic) -> Contact<'_> {
    Contact {
        role: ContactRole::ClinicEmergencyLine,
        doctor_id: None,
        name: &clinic.name,
        clinic_id: &clinic.id,
        clinic: &clinic.name,
        phone: &clinic.emergency_phone,
    }
}
