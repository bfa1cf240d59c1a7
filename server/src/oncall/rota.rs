//! The care network (doctors, clinics, each patient's primary clinic) and the on-call rota: for
//! each period, the on-call clinic and doctor, the backups in order, and the partner clinic that
//! triages.
//!
//! Both are validated when built, so a lookup never meets a dangling reference: an unknown doctor
//! in a shift, or two shifts claiming the same minute, is an error at load time rather than an
//! unanswered alert at 3 a.m. The network comes from the registry ([`super::network`]); the rota
//! file ([`RotaFile`]) only says who is on call when, by registry ids.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::coverage::{OpeningHours, PROGRAM_TIME_ZONE};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_id!(
    /// A doctor's identifier in the registry.
    DoctorId
);
string_id!(
    /// A clinic's identifier in the registry.
    ClinicId
);
string_id!(
    /// A patient's identifier in the registry.
    PatientId
);

/// A telephone number as dialled in Japan (digits, with optional `+`, hyphens and spaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// A telephone number that cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid phone number {0:?}")]
pub struct InvalidPhoneNumber(String);

impl PhoneNumber {
    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number for a `tel:` link (hyphens and spaces removed).
    pub fn dial_string(&self) -> String {
        self.0
            .chars()
            .filter(|c| *c == '+' || c.is_ascii_digit())
            .collect()
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhoneNumber;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let allowed = s
            .char_indices()
            .all(|(i, c)| c.is_ascii_digit() || c == '-' || c == ' ' || (c == '+' && i == 0));
        // Japanese numbers have 10 or 11 digits; short codes such as 119 or #7119 are not
        // personal contacts and do not belong in a rota.
        if allowed && (10..=15).contains(&digits) {
            Ok(Self(s))
        } else {
            Err(InvalidPhoneNumber(s))
        }
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A doctor who can be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    /// Registry id.
    pub id: DoctorId,
    /// Full name as shown to staff.
    pub name: String,
    /// Direct number (mobile) for alerts.
    pub phone: PhoneNumber,
    /// The clinic the doctor works for.
    pub clinic: ClinicId,
}

/// A clinic taking part in the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clinic {
    /// Registry id.
    pub id: ClinicId,
    /// Name as shown to staff.
    pub name: String,
    /// The director's (院長) name, as the registry states it.
    pub director_name: String,
    /// The director as a doctor who can be called, who answers for the clinic's patients in
    /// opening hours; without one, the clinic's emergency line is called first.
    pub director: Option<DoctorId>,
    /// The clinic's 24-hour emergency number (a 在宅療養支援診療所 must keep one).
    pub emergency_phone: PhoneNumber,
    /// Weekly opening hours.
    pub opening_hours: OpeningHours,
}

/// A patient's place in the care network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientAssignment {
    /// Registry id.
    pub id: PatientId,
    /// The clinic that looks after the patient (主治医のいる診療所).
    pub primary_clinic: ClinicId,
}

/// One on-call period, `starts_at` inclusive, `ends_at` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Start (RFC 3339 in files; any offset).
    pub starts_at: DateTime<Utc>,
    /// End, exclusive.
    pub ends_at: DateTime<Utc>,
    /// The on-call clinic.
    pub clinic: ClinicId,
    /// The on-call doctor, called first.
    pub doctor: DoctorId,
    /// Backups, called in this order when the doctor does not acknowledge.
    #[serde(default)]
    pub backups: Vec<DoctorId>,
    /// The partner clinic whose reception triages calls in this period.
    pub triage_clinic: ClinicId,
}

/// Errors found while building the network or the rota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotaError {
    /// A reference to a doctor that is not in the network.
    #[error("unknown doctor {0}")]
    UnknownDoctor(DoctorId),
    /// A reference to a clinic that is not in the network.
    #[error("unknown clinic {0}")]
    UnknownClinic(ClinicId),
    /// The same id appears twice.
    #[error("duplicate id {0}")]
    DuplicateId(String),
    /// A shift that ends before or when it starts.
    #[error("shift starting {starts_at} ends at {ends_at}")]
    EmptyShift {
        /// Start of the shift.
        starts_at: DateTime<Utc>,
        /// Its end, not after the start.
        ends_at: DateTime<Utc>,
    },
    /// Two shifts claim the same time.
    #[error("shifts starting {first} and {second} overlap")]
    OverlappingShifts {
        /// Start of the earlier shift.
        first: DateTime<Utc>,
        /// Start of the later shift, before the earlier one ends.
        second: DateTime<Utc>,
    },
    /// A rotation without teams, or whose changeover time does not exist locally.
    #[error("invalid rotation: {0}")]
    InvalidRotation(&'static str),
}

/// Doctors, clinics and patients' primary clinics, with every reference checked and resolved to
/// a position once, so that routing an alert hashes nothing but the patient id.
#[derive(Debug, Clone, Default)]
pub struct CareNetwork {
    doctors: Vec<Doctor>,
    /// Position in `clinics` of each doctor's clinic.
    doctor_clinic: Vec<usize>,
    clinics: Vec<Clinic>,
    /// Position in `doctors` of each clinic's director, when the director can be called.
    clinic_director: Vec<Option<usize>>,
    doctor_ids: HashMap<DoctorId, usize>,
    clinic_ids: HashMap<ClinicId, usize>,
    /// Position in `clinics` of each patient's primary clinic.
    patients: HashMap<PatientId, usize>,
}

fn index_ids<K: Clone + Eq + std::hash::Hash + fmt::Display>(
    ids: impl Iterator<Item = K>,
) -> Result<HashMap<K, usize>, RotaError> {
    let mut map = HashMap::new();
    for (i, id) in ids.enumerate() {
        if map.insert(id.clone(), i).is_some() {
            return Err(RotaError::DuplicateId(id.to_string()));
        }
    }
    Ok(map)
}

impl CareNetwork {
    /// Builds the network.
    ///
    /// # Errors
    /// Duplicate ids, or a reference to a doctor or clinic that is not listed.
    pub fn new(
        doctors: Vec<Doctor>,
        clinics: Vec<Clinic>,
        patients: Vec<PatientAssignment>,
    ) -> Result<Self, RotaError> {
        let doctor_ids = index_ids(doctors.iter().map(|d| d.id.clone()))?;
        let clinic_ids = index_ids(clinics.iter().map(|c| c.id.clone()))?;
        let mut network = Self {
            doctor_ids,
            clinic_ids,
            ..Self::default()
        };
        network.doctor_clinic = doctors
            .iter()
            .map(|d| network.clinic_index(&d.clinic))
            .collect::<Result<_, _>>()?;
        network.clinic_director = clinics
            .iter()
            .map(|c| {
                c.director
                    .as_ref()
                    .map(|d| network.doctor_index(d))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        for p in patients {
            let clinic = network.clinic_index(&p.primary_clinic)?;
            if network.patients.insert(p.id.clone(), clinic).is_some() {
                return Err(RotaError::DuplicateId(p.id.0));
            }
        }
        network.doctors = doctors;
        network.clinics = clinics;
        Ok(network)
    }

    pub(super) fn doctor_index(&self, id: &DoctorId) -> Result<usize, RotaError> {
        self.doctor_ids
            .get(id)
            .copied()
            .ok_or_else(|| RotaError::UnknownDoctor(id.clone()))
    }

    pub(super) fn clinic_index(&self, id: &ClinicId) -> Result<usize, RotaError> {
        self.clinic_ids
            .get(id)
            .copied()
            .ok_or_else(|| RotaError::UnknownClinic(id.clone()))
    }

    /// A doctor by id.
    ///
    /// # Errors
    /// [`RotaError::UnknownDoctor`].
    pub fn doctor(&self, id: &DoctorId) -> Result<&Doctor, RotaError> {
        self.doctor_index(id).map(|i| &self.doctors[i])
    }

    /// A clinic by id.
    ///
    /// # Errors
    /// [`RotaError::UnknownClinic`].
    pub fn clinic(&self, id: &ClinicId) -> Result<&Clinic, RotaError> {
        self.clinic_index(id).map(|i| &self.clinics[i])
    }

    /// The patient's primary clinic, if the patient is known.
    pub fn primary_clinic(&self, patient: &PatientId) -> Option<&Clinic> {
        self.primary_clinic_index(patient).map(|i| &self.clinics[i])
    }

    pub(super) fn primary_clinic_index(&self, patient: &PatientId) -> Option<usize> {
        self.patients.get(patient).copied()
    }

    /// A doctor and their clinic, by position (positions come from this network's validation).
    pub(super) fn doctor_with_clinic(&self, doctor: usize) -> (&Doctor, &Clinic) {
        (
            &self.doctors[doctor],
            &self.clinics[self.doctor_clinic[doctor]],
        )
    }

    /// A clinic by position.
    pub(super) fn clinic_at(&self, clinic: usize) -> &Clinic {
        &self.clinics[clinic]
    }

    /// Position of a clinic's director, when the director can be called.
    pub(super) fn director_of(&self, clinic: usize) -> Option<usize> {
        self.clinic_director[clinic]
    }
}

/// One team in a [`Rotation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationTeam {
    /// The on-call clinic.
    pub clinic: ClinicId,
    /// Its on-call doctor.
    pub doctor: DoctorId,
    /// Backups in order.
    #[serde(default)]
    pub backups: Vec<DoctorId>,
}

/// A repeating rota: one shift per local day from `changeover` to the next day's `changeover`,
/// the teams taking turns in order. Real rotas are agreed month by month; this is how the
/// program's default and the tests describe one without listing every day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// First day (local) whose shift starts at `changeover`.
    pub first_day: NaiveDate,
    /// Last day (local) whose shift starts at `changeover`, inclusive.
    pub last_day: NaiveDate,
    /// Local changeover time between teams (for example 09:00).
    pub changeover: NaiveTime,
    /// Teams in turn.
    pub teams: Vec<RotationTeam>,
    /// The partner clinic that triages throughout.
    pub triage_clinic: ClinicId,
}

impl Rotation {
    /// The shifts this rotation stands for.
    ///
    /// # Errors
    /// [`RotaError::InvalidRotation`] without teams or when a changeover time does not exist.
    pub fn shifts(&self) -> Result<Vec<Shift>, RotaError> {
        if self.teams.is_empty() {
            return Err(RotaError::InvalidRotation("no teams"));
        }
        let start_of = |day: NaiveDate| {
            day.and_time(self.changeover)
                .and_local_timezone(PROGRAM_TIME_ZONE)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or(RotaError::InvalidRotation(
                    "changeover does not exist locally",
                ))
        };
        let mut shifts = Vec::new();
        let mut day = self.first_day;
        for team in self.teams.iter().cycle() {
            if day > self.last_day {
                break;
            }
            let next = day + Days::new(1);
            shifts.push(Shift {
                starts_at: start_of(day)?,
                ends_at: start_of(next)?,
                clinic: team.clinic.clone(),
                doctor: team.doctor.clone(),
                backups: team.backups.clone(),
                triage_clinic: self.triage_clinic.clone(),
            });
            day = next;
        }
        Ok(shifts)
    }
}

/// A shift's references resolved to positions in the [`CareNetwork`] it was validated against.
#[derive(Debug, Clone)]
pub(super) struct ResolvedShift {
    pub(super) doctor: usize,
    pub(super) backups: Vec<usize>,
    pub(super) triage_clinic: usize,
}

/// Validated, time-ordered, non-overlapping on-call shifts.
#[derive(Debug, Clone, Default)]
pub struct Rota {
    shifts: Vec<Shift>,
    resolved: Vec<ResolvedShift>,
}

impl Rota {
    /// Orders and checks `shifts` against the network. The rota must be used with that network.
    ///
    /// # Errors
    /// Empty or overlapping shifts, or references to unknown doctors or clinics.
    pub fn new(mut shifts: Vec<Shift>, network: &CareNetwork) -> Result<Self, RotaError> {
        shifts.sort_by_key(|s| s.starts_at);
        let mut resolved = Vec::with_capacity(shifts.len());
        for s in &shifts {
            if s.ends_at <= s.starts_at {
                return Err(RotaError::EmptyShift {
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                });
            }
            network.clinic_index(&s.clinic)?;
            resolved.push(ResolvedShift {
                doctor: network.doctor_index(&s.doctor)?,
                backups: s
                    .backups
                    .iter()
                    .map(|d| network.doctor_index(d))
                    .collect::<Result<_, _>>()?,
                triage_clinic: network.clinic_index(&s.triage_clinic)?,
            });
        }
        if let Some(w) = shifts.windows(2).find(|w| w[1].starts_at < w[0].ends_at) {
            return Err(RotaError::OverlappingShifts {
                first: w[0].starts_at,
                second: w[1].starts_at,
            });
        }
        Ok(Self { shifts, resolved })
    }

    fn index_at(&self, at: DateTime<Utc>) -> Option<usize> {
        let after = self.shifts.partition_point(|s| s.starts_at <= at);
        after
            .checked_sub(1)
            .filter(|&i| at < self.shifts[i].ends_at)
    }

    /// The shift covering `at`, if any (binary search).
    pub fn shift_at(&self, at: DateTime<Utc>) -> Option<&Shift> {
        self.index_at(at).map(|i| &self.shifts[i])
    }

    pub(super) fn resolved_at(&self, at: DateTime<Utc>) -> Option<&ResolvedShift> {
        self.index_at(at).map(|i| &self.resolved[i])
    }

    /// All shifts in time order.
    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }
}

/// The rota file (TOML): who is on call when, naming registry clinic and user ids. Clinics,
/// doctors and patients are the registry's, never the file's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotaFile {
    /// Explicit shifts.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Repeating rotations, expanded into shifts.
    #[serde(default)]
    pub rotations: Vec<Rotation>,
}

/// Errors reading a [`RotaFile`].
#[derive(Debug, thiserror::Error)]
pub enum RotaFileError {
    /// The file could not be read.
    #[error("cannot read rota file {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid rota.
    #[error("invalid rota file {path}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl RotaFile {
    /// Reads a TOML rota file.
    ///
    /// # Errors
    /// [`RotaFileError`] when it cannot be read or parsed.
    pub fn load(path: &std::path::Path) -> Result<Self, RotaFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| RotaFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| RotaFileError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Every shift: the explicit ones and each rotation's, not yet checked against a network.
    ///
    /// # Errors
    /// [`RotaError::InvalidRotation`].
    pub fn all_shifts(&self) -> Result<Vec<Shift>, RotaError> {
        let mut shifts = self.shifts.clone();
        for r in &self.rotations {
            shifts.extend(r.shifts()?);
        }
        Ok(shifts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_checked() {
        assert!(PhoneNumber::try_from("03-1234-5678".to_owned()).is_ok());
        assert!(PhoneNumber::try_from("+81 90 1234 5678".to_owned()).is_ok());
        assert!(PhoneNumber::try_from("119".to_owned()).is_err());
        assert!(PhoneNumber::try_from("03-1234-567x".to_owned()).is_err());
        let p = PhoneNumber::try_from("090-1234-5678".to_owned()).unwrap();
        assert_eq!(p.dial_string(), "09012345678");
    }

    fn network() -> CareNetwork {
        let clinic = Clinic {
            id: "c1".into(),
            name: "A".into(),
            director_name: "Dr A".into(),
            director: Some("d1".into()),
            emergency_phone: PhoneNumber::try_from("03-0000-0001".to_owned()).unwrap(),
            opening_hours: OpeningHours {
                sessions: vec![],
                closed_on_public_holidays: true,
            },
        };
        let doctor = Doctor {
            id: "d1".into(),
            name: "Dr A".into(),
            phone: PhoneNumber::try_from("090-0000-0001".to_owned()).unwrap(),
            clinic: "c1".into(),
        };
        CareNetwork::new(vec![doctor], vec![clinic], vec![]).unwrap()
    }

    fn shift(from: &str, to: &str, doctor: &str) -> Shift {
        Shift {
            starts_at: from.parse().unwrap(),
            ends_at: to.parse().unwrap(),
            clinic: "c1".into(),
            doctor: doctor.into(),
            backups: vec![],
            triage_clinic: "c1".into(),
        }
    }

    #[test]
    fn rota_rejects_overlaps_unknown_doctors_and_empty_shifts() {
        let n = network();
        let a = shift("2026-11-25T09:00:00Z", "2026-11-25T12:00:00Z", "d1");
        let b = shift("2026-11-25T11:00:00Z", "2026-11-25T13:00:00Z", "d1");
        assert!(matches!(
            Rota::new(vec![b.clone(), a.clone()], &n),
            Err(RotaError::OverlappingShifts { .. })
        ));
        let ghost = shift("2026-11-25T12:00:00Z", "2026-11-25T13:00:00Z", "d9");
        assert_eq!(
            Rota::new(vec![a.clone(), ghost], &n).unwrap_err(),
            RotaError::UnknownDoctor("d9".into())
        );
        let empty = shift("2026-11-25T12:00:00Z", "2026-11-25T12:00:00Z", "d1");
        assert!(matches!(
            Rota::new(vec![empty], &n),
            Err(RotaError::EmptyShift { .. })
        ));
    }

    #[test]
    fn shift_lookup_is_start_inclusive_end_exclusive() {
        let n = network();
        let a = shift("2026-11-25T09:00:00Z", "2026-11-25T12:00:00Z", "d1");
        let b = shift("2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z", "d1");
        let rota = Rota::new(vec![b, a], &n).unwrap();
        let at = |s: &str| {
            rota.shift_at(s.parse().unwrap())
                .map(|s| s.starts_at.to_rfc3339())
        };
        assert_eq!(at("2026-11-25T08:59:59Z"), None);
        assert_eq!(
            at("2026-11-25T09:00:00Z").as_deref(),
            Some("2026-11-25T09:00:00+00:00")
        );
        assert_eq!(at("2026-11-25T12:00:00Z"), None);
        assert_eq!(
            at("2026-11-25T13:30:00Z").as_deref(),
            Some("2026-11-25T13:00:00+00:00")
        );
        assert_eq!(at("2026-11-25T14:00:00Z"), None);
    }

    #[test]
    fn rotation_expands_to_contiguous_local_days() {
        let r = Rotation {
            first_day: "2026-11-25".parse().unwrap(),
            last_day: "2026-11-27".parse().unwrap(),
            changeover: "09:00:00".parse().unwrap(),
            teams: vec![RotationTeam {
                clinic: "c1".into(),
                doctor: "d1".into(),
                backups: vec![],
            }],
            triage_clinic: "c1".into(),
        };
        let shifts = r.shifts().unwrap();
        assert_eq!(shifts.len(), 3);
        // 09:00 JST is 00:00 UTC.
        assert_eq!(
            shifts[0].starts_at.to_rfc3339(),
            "2026-11-25T00:00:00+00:00"
        );
        assert_eq!(shifts[2].ends_at.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert!(shifts.windows(2).all(|w| w[0].ends_at == w[1].starts_at));
    }
}
