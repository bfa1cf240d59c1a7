//! The registry seed file: clinics, patients, devices, gateways and loans in one TOML file
//! (`fixtures/registry/demo.toml`), loaded by `mimamori-server admin seed`.

use serde::Deserialize;

use crate::storage::{Clinic, Device, Gateway, Loan, Patient, Storage, StorageError};

/// A whole registry to load.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    #[serde(default)]
    pub clinics: Vec<Clinic>,
    #[serde(default)]
    pub patients: Vec<Patient>,
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

    /// Upserts everything; loans are added only when an identical one is not there yet, so
    /// seeding twice is harmless.
    pub async fn apply<S: Storage>(&self, store: &S) -> Result<SeedReport, StorageError> {
        for clinic in &self.clinics {
            store.upsert_clinic(clinic).await?;
        }
        for patient in &self.patients {
            store.upsert_patient(patient).await?;
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
    pub devices: usize,
    pub gateways: usize,
    pub loans_added: usize,
}
