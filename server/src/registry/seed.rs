//! The registry seed file: clinics, patients, users with their accounts, care teams, devices,
//! gateways and loans in one TOML file (`fixtures/registry/demo.toml`), loaded by
//! `mimamori-server admin seed`.

use serde::Deserialize;

use super::directory::{CareTeam, Directory, PatientClinic, RoutingRecords, StaffMember, User};
use crate::storage::{Clinic, Device, Gateway, Loan, Patient, Storage, StorageError};

/// Why a seed could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("user {user}: {detail}")]
    Account { user: String, detail: String },
}

/// A whole registry to load.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    #[serde(default)]
    pub clinics: Vec<Clinic>,
    #[serde(default)]
    pub patients: Vec<Patient>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub care_teams: Vec<CareTeam>,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub gateways: Vec<Gateway>,
    #[serde(default)]
    pub loans: Vec<Loan>,
}

impl RegistryFile {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// What on-call routing would read from a registry holding exactly this file (the `oncall`
    /// command reads a seed file instead of a database).
    pub fn routing_records(&self) -> RoutingRecords {
        let mut records = RoutingRecords {
            clinics: self.clinics.clone(),
            staff: self
                .users
                .iter()
                .map(|u| StaffMember {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    role: u.role.clone(),
                    clinic_id: u.clinic_id.clone(),
                    phone: u.phone.clone(),
                    access_roles: u
                        .account
                        .as_ref()
                        .map(|a| a.roles.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            patients: self
                .patients
                .iter()
                .map(|p| PatientClinic {
                    patient_id: p.id.clone(),
                    primary_clinic_id: p.primary_clinic_id.clone(),
                })
                .collect(),
        };
        records.clinics.sort_by(|a, b| a.id.cmp(&b.id));
        records.staff.sort_by(|a, b| a.id.cmp(&b.id));
        records
            .patients
            .sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        records
    }

    /// Upserts everything; loans are added only when an identical one is not there yet, so
    /// seeding twice is harmless.
    pub async fn apply<S: Storage>(
        &self,
        store: &S,
        directory: &Directory,
    ) -> Result<SeedReport, SeedError> {
        for clinic in &self.clinics {
            store.upsert_clinic(clinic).await?;
        }
        for patient in &self.patients {
            store.upsert_patient(patient).await?;
        }
        for user in &self.users {
            let phc = user
                .account
                .as_ref()
                .map(password_of)
                .transpose()
                .map_err(|detail| SeedError::Account {
                    user: user.id.clone(),
                    detail,
                })?;
            directory.upsert_user(user, phc.as_deref()).await?;
        }
        for team in &self.care_teams {
            directory.upsert_care_team(team).await?;
        }
        for device in &self.devices {
            store.upsert_device(device).await?;
        }
        for gateway in &self.gateways {
            store.upsert_gateway(gateway).await?;
        }
        let existing = store.loans().await?;
        let mut loans_added = 0;
        for loan in &self.loans {
            let present = existing.iter().any(|l| {
                l.device_id == loan.device_id
                    && l.patient_id == loan.patient_id
                    && l.lent_from == loan.lent_from
            });
            if !present {
                store.add_loan(loan).await?;
                loans_added += 1;
            }
        }
        Ok(SeedReport {
            clinics: self.clinics.len(),
            patients: self.patients.len(),
            users: self.users.len(),
            care_teams: self.care_teams.len(),
            devices: self.devices.len(),
            gateways: self.gateways.len(),
            loans_added,
        })
    }
}

/// What a seed run wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    pub clinics: usize,
    pub patients: usize,
    pub users: usize,
    pub care_teams: usize,
    pub devices: usize,
    pub gateways: usize,
    pub loans_added: usize,
}

/// The account's stored password: its PHC string, or its demo password hashed now.
fn password_of(account: &super::directory::AccountSeed) -> Result<String, String> {
    match (&account.password_phc, &account.demo_password) {
        (Some(phc), _) => Ok(phc.clone()),
        (None, Some(clear)) => {
            crate::http::auth::password::hash_password(clear).map_err(|e| e.to_string())
        }
        (None, None) => Err("an account needs password_phc or demo_password".to_owned()),
    }
}
