//! The hook the alert engine calls: for a patient's alert raised at an instant, whom to notify
//! and, level by level, whom next when nobody acknowledges.
//!
//! The plan is owned data, taken once when the alert is raised and stored with it: if the rota
//! changes while the alert is open, the people already woken stay the ones responsible. The
//! engine owns timing (how long to wait for an acknowledgement); this module owns who.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::coverage::{Coverage, Reason};
use super::rota::{ClinicId, DoctorId, PatientId, PhoneNumber};
use super::route::{Contact, ContactRole, OnCallResolver, RouteError};

/// One person or line to notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Role in the chain.
    pub role: ContactRole,
    /// The doctor, when the recipient is a person.
    pub doctor_id: Option<DoctorId>,
    /// Name as shown to staff.
    pub name: String,
    /// Clinic behind the recipient.
    pub clinic_id: ClinicId,
    /// Number to call.
    pub phone: PhoneNumber,
}

impl From<&Contact<'_>> for Recipient {
    fn from(c: &Contact<'_>) -> Self {
        Self {
            role: c.role,
            doctor_id: c.doctor_id.cloned(),
            name: c.name.to_owned(),
            clinic_id: c.clinic_id.clone(),
            phone: c.phone.clone(),
        }
    }
}

/// Who is notified for one alert, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPlan {
    /// The patient.
    pub patient_id: PatientId,
    /// When the alert was raised.
    pub raised_at: DateTime<Utc>,
    /// Primary clinic or on call at that instant.
    pub coverage: Coverage,
    /// Why.
    pub reason: Reason,
    /// Level 0 is notified first; level n after levels 0..n failed to acknowledge.
    pub levels: Vec<Recipient>,
    /// Whether a house call can be dispatched at that instant.
    pub house_call_dispatch: bool,
}

impl EscalationPlan {
    /// The recipient at `level`, or `None` once the chain is exhausted (the engine then keeps
    /// repeating the last level and raises the alert to the operator: an alert is never dropped).
    pub fn recipient(&self, level: usize) -> Option<&Recipient> {
        self.levels.get(level)
    }
}

/// What the alert engine depends on, so that it can be tested with a fixed plan and run with the
/// rota.
pub trait AlertRouting: Send + Sync {
    /// The plan for an alert of `patient` raised at `raised_at`.
    ///
    /// # Errors
    /// [`RouteError`] when nobody can be found (unknown patient, a gap in the rota, a date
    /// outside the calendar); the engine must then alert the operator rather than drop it.
    fn escalation_plan(
        &self,
        patient: &PatientId,
        raised_at: DateTime<Utc>,
    ) -> Result<EscalationPlan, RouteError>;
}

impl AlertRouting for OnCallResolver {
    fn escalation_plan(
        &self,
        patient: &PatientId,
        raised_at: DateTime<Utc>,
    ) -> Result<EscalationPlan, RouteError> {
        let route = self.who_to_call(raised_at, patient)?;
        Ok(EscalationPlan {
            patient_id: patient.clone(),
            raised_at,
            coverage: route.coverage,
            reason: route.reason,
            levels: route.chain().map(Recipient::from).collect(),
            house_call_dispatch: route.house_call_dispatch,
        })
    }
}
