//! The care network as the registry states it: clinics (name, director, emergency number, opening
//! hours), doctors (registry users with a doctor or on-call-doctor role, at a clinic, with a
//! phone) and each patient's primary clinic; and the rota checked against it.
//!
//! The registry is the one source of these; the rota file only names registry ids. A rota naming
//! an id the registry does not have, or a user who cannot be called, is a [`NetworkError`] that
//! says which id. Registry rows routing cannot use (an undiallable number, unreadable hours) are
//! left out or made safe, with a warning, rather than stopping the routing of everyone else.

use crate::registry::directory::{RoutingRecords, StaffMember};

use super::coverage::OpeningHours;
use super::rota::{
    CareNetwork, Clinic, ClinicId, Doctor, DoctorId, PatientAssignment, PatientId, PhoneNumber,
    Rota, RotaError, Shift,
};

/// Why the network or the rota could not be built from the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The rota names a clinic id the registry does not have.
    #[error("the rota names clinic {0}, which is not in the registry")]
    UnknownClinic(ClinicId),
    /// The rota names a clinic whose emergency number cannot be dialled.
    #[error("the rota names clinic {clinic}, whose emergency number {phone:?} cannot be dialled")]
    UndiallableClinic {
        /// The clinic.
        clinic: ClinicId,
        /// Its number as the registry holds it.
        phone: String,
    },
    /// The rota names a user id the registry does not have.
    #[error("the rota names user {0}, who is not in the registry")]
    UnknownUser(DoctorId),
    /// The rota names a registry user who cannot be called.
    #[error("the rota names user {user}, who cannot be called: {reason}")]
    NotCallable {
        /// The user.
        user: DoctorId,
        /// What the registry lacks.
        reason: NotCallable,
    },
    /// The rota itself is invalid (overlapping or empty shifts), or the registry has a duplicate.
    #[error(transparent)]
    Rota(RotaError),
}

/// What keeps a registry user from being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotCallable {
    /// Neither the profession nor an access role is a doctor's.
    #[error("not a doctor")]
    NotADoctor,
    /// No clinic recorded.
    #[error("no clinic in the registry")]
    NoClinic,
    /// No phone recorded.
    #[error("no phone in the registry")]
    NoPhone,
    /// A phone that cannot be dialled.
    #[error("the registry's phone cannot be dialled")]
    UndiallablePhone,
}

/// A registry user as a doctor the routing can call, or why not.
fn callable_doctor(user: &StaffMember) -> Result<Doctor, NotCallable> {
    let is_doctor = user.role == "doctor"
        || user
            .access_roles
            .iter()
            .any(|r| r == "doctor" || r == "on_call_doctor");
    if !is_doctor {
        return Err(NotCallable::NotADoctor);
    }
    let clinic = user.clinic_id.clone().ok_or(NotCallable::NoClinic)?;
    let phone = user.phone.clone().ok_or(NotCallable::NoPhone)?;
    Ok(Doctor {
        id: DoctorId(user.id.clone()),
        name: user.name.clone(),
        phone: PhoneNumber::try_from(phone).map_err(|_| NotCallable::UndiallablePhone)?,
        clinic: ClinicId(clinic),
    })
}

/// Names compared as people write them: with or without (full-width) spaces.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|c| !c.is_whitespace())
        .eq(b.chars().filter(|c| !c.is_whitespace()))
}

/// Builds the network from the registry and checks `shifts` against it.
///
/// Left out, with a warning: users who are not callable doctors (unless the rota names them),
/// clinics whose emergency number cannot be dialled (their patients then have no route, which the
/// notifier turns into a delivery-failure alarm, never silence). A clinic whose opening hours
/// cannot be read is treated as never open, so its patients always go to the on-call doctor.
///
/// # Errors
/// [`NetworkError`] naming the first rota reference the registry cannot satisfy.
pub fn build(
    records: &RoutingRecords,
    shifts: Vec<Shift>,
) -> Result<(CareNetwork, Rota), NetworkError> {
    let doctors: Vec<Doctor> = records
        .staff
        .iter()
        .filter_map(|u| callable_doctor(u).ok())
        .collect();
    let mut clinics = Vec::with_capacity(records.clinics.len());
    for c in &records.clinics {
        let Ok(emergency_phone) = PhoneNumber::try_from(c.emergency_phone.clone()) else {
            tracing::warn!(clinic_id = %c.id, "Clinic left out of on-call routing: its emergency number cannot be dialled.");
            continue;
        };
        let opening_hours = c.opening_hours.parse().unwrap_or_else(|error| {
            tracing::warn!(clinic_id = %c.id, %error, "Opening hours unreadable: the clinic's patients go on call at all hours.");
            OpeningHours {
                sessions: Vec::new(),
                closed_on_public_holidays: true,
            }
        });
        let director = doctors
            .iter()
            .find(|d| d.clinic.0 == c.id && same_name(&d.name, &c.director))
            .map(|d| d.id.clone());
        clinics.push(Clinic {
            id: ClinicId(c.id.clone()),
            name: c.name.clone(),
            director_name: c.director.clone(),
            director,
            emergency_phone,
            opening_hours,
        });
    }
    let in_network = |clinic: &str| clinics.iter().any(|c| c.id.0 == clinic);
    // A doctor whose clinic was left out cannot be shown with it; nor can their patients.
    let doctors: Vec<Doctor> = doctors
        .into_iter()
        .filter(|d| in_network(&d.clinic.0))
        .collect();
    let patients: Vec<PatientAssignment> = records
        .patients
        .iter()
        .filter_map(|p| {
            let clinic = p.primary_clinic_id.as_deref()?;
            in_network(clinic).then(|| PatientAssignment {
                id: PatientId(p.patient_id.clone()),
                primary_clinic: ClinicId(clinic.to_owned()),
            })
        })
        .collect();
    let network = CareNetwork::new(doctors, clinics, patients).map_err(NetworkError::Rota)?;
    let rota = Rota::new(shifts, &network).map_err(|e| explain(e, records))?;
    Ok((network, rota))
}

/// Turns "not in the network" into what the registry says about that id.
fn explain(error: RotaError, records: &RoutingRecords) -> NetworkError {
    match error {
        RotaError::UnknownDoctor(id) => match records.staff.iter().find(|u| u.id == id.0) {
            None => NetworkError::UnknownUser(id),
            Some(user) => match callable_doctor(user) {
                Err(reason) => NetworkError::NotCallable { user: id, reason },
                // Callable, but at a clinic left out of the network.
                Ok(doctor) => explain(RotaError::UnknownClinic(doctor.clinic), records),
            },
        },
        RotaError::UnknownClinic(id) => match records.clinics.iter().find(|c| c.id == id.0) {
            None => NetworkError::UnknownClinic(id),
            Some(clinic) => NetworkError::UndiallableClinic {
                clinic: id,
                phone: clinic.emergency_phone.clone(),
            },
        },
        other => NetworkError::Rota(other),
    }
}
