//! The people side of the registry: dashboard accounts, care teams (their members and patients)
//! and clinics, read by the HTTP edge and written by `admin seed`; and what on-call routing reads
//! ([`RoutingRecords`]).
//!
//! One SQL body serves both backends (these tables hold no timestamps, so the SQL is portable);
//! migrations: `server/migrations/*/0301_accounts_and_care_teams.sql`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _, SqlitePool};

use crate::sinks::sqlite::SqliteStore;
use crate::sinks::timescale::TimescaleStore;
use crate::storage::{Clinic, Opened, StorageError, on_pool};

/// A registry user, with their dashboard account when they have one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub name: String,
    /// Profession: `doctor`, `nurse`, `operator` or `admin`.
    pub role: String,
    #[serde(default)]
    pub clinic_id: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub account: Option<AccountSeed>,
}

/// How a user signs in, as a seed file states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSeed {
    pub login: String,
    /// Access roles: `nurse`, `doctor`, `on_call_doctor`, `coordinator`, `administrator`.
    pub roles: Vec<String>,
    /// An argon2id PHC string; the seed loader hashes `demo_password` into it when absent.
    #[serde(default)]
    pub password_phc: Option<String>,
    /// A clear-text password, for invented demo accounts only.
    #[serde(default)]
    pub demo_password: Option<String>,
    /// Base32 TOTP secret.
    #[serde(default)]
    pub totp_secret: Option<String>,
}

/// A clinic's visiting team and the patients it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareTeam {
    pub id: String,
    pub name: String,
    pub clinic_id: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub patients: Vec<String>,
}

/// A dashboard account as sign-in and the access policy need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub login: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub care_teams: BTreeSet<String>,
    pub password_phc: String,
    pub totp_secret: Option<String>,
}

/// A registry user as on-call routing sees them: who may be called, at which clinic and number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    /// Profession (`users.role`).
    pub role: String,
    pub clinic_id: Option<String>,
    pub phone: Option<String>,
    /// Dashboard access roles; empty without an account.
    pub access_roles: Vec<String>,
}

/// A patient's primary clinic, if the registry names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientClinic {
    pub patient_id: String,
    pub primary_clinic_id: Option<String>,
}

/// What on-call routing reads from the registry, in id order (so two reads compare equal when
/// nothing changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingRecords {
    pub clinics: Vec<Clinic>,
    /// Every user, not only doctors: a rota naming a nurse is told so, not "unknown user".
    pub staff: Vec<StaffMember>,
    pub patients: Vec<PatientClinic>,
}

/// The clinic columns, in the order [`clinic_of_row`] reads them.
const CLINIC_COLUMNS: &str = "id, name, director, emergency_phone, opening_hours, area";

type ClinicRow = (String, String, String, String, String, String);

fn clinic_of_row((id, name, director, emergency_phone, opening_hours, area): ClinicRow) -> Clinic {
    Clinic {
        id,
        name,
        director,
        emergency_phone,
        opening_hours,
        area,
    }
}

/// Access roles as `user_accounts.roles` stores them (comma-separated).
fn split_roles(roles: &str) -> Vec<String> {
    roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The directory over the opened database.
#[derive(Clone, Debug)]
pub enum Directory {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Directory {
    /// The directory in the database `opened` connects to.
    pub fn of(opened: &Opened) -> Self {
        match opened {
            Opened::Timescale(store) => store.into(),
            Opened::Sqlite(store) => store.into(),
        }
    }
}

impl From<&TimescaleStore> for Directory {
    fn from(store: &TimescaleStore) -> Self {
        Self::Postgres(store.pool().clone())
    }
}

impl From<&SqliteStore> for Directory {
    fn from(store: &SqliteStore) -> Self {
        Self::Sqlite(store.pool().clone())
    }
}

impl Directory {
    /// Inserts or updates a user and, when given, their account (`password_phc` already hashed).
    pub async fn upsert_user(
        &self,
        user: &User,
        password_phc: Option<&str>,
    ) -> Result<(), StorageError> {
        on_pool!(Directory, self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, name, role, clinic_id, phone) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                     clinic_id = excluded.clinic_id, phone = excluded.phone",
            )
            .bind(&user.id)
            .bind(&user.name)
            .bind(&user.role)
            .bind(&user.clinic_id)
            .bind(&user.phone)
            .execute(&mut *tx)
            .await?;
            if let (Some(account), Some(phc)) = (&user.account, password_phc) {
                sqlx::query(
                    "INSERT INTO user_accounts (user_id, login, roles, password_phc, totp_secret)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (user_id) DO UPDATE SET login = excluded.login,
                         roles = excluded.roles, password_phc = excluded.password_phc,
                         totp_secret = excluded.totp_secret",
                )
                .bind(&user.id)
                .bind(&account.login)
                .bind(account.roles.join(","))
                .bind(phc)
                .bind(&account.totp_secret)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Inserts or updates a team; its members and patients become exactly the given ones.
    pub async fn upsert_care_team(&self, team: &CareTeam) -> Result<(), StorageError> {
        on_pool!(Directory, self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO care_teams (id, name, clinic_id) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, clinic_id = excluded.clinic_id",
            )
            .bind(&team.id)
            .bind(&team.name)
            .bind(&team.clinic_id)
            .execute(&mut *tx)
            .await?;
            for (table, column, ids) in [
                ("care_team_members", "user_id", &team.members),
                ("care_team_patients", "patient_id", &team.patients),
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE care_team_id = $1"))
                    .bind(&team.id)
                    .execute(&mut *tx)
                    .await?;
                for id in ids {
                    sqlx::query(&format!(
                        "INSERT INTO {table} (care_team_id, {column}) VALUES ($1, $2)"
                    ))
                    .bind(&team.id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A user's name, if the registry has the user.
    pub async fn user_name(&self, user_id: &str) -> Result<Option<String>, StorageError> {
        on_pool!(Directory, self, |pool| {
            Ok(sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// The account signing in with `login`, with the teams its user belongs to.
    pub async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StorageError> {
        on_pool!(Directory, self, |pool| {
            let Some(row) = sqlx::query(
                "SELECT a.user_id, a.login, u.name, a.roles, a.password_phc, a.totp_secret
                 FROM user_accounts a JOIN users u ON u.id = a.user_id WHERE a.login = $1",
            )
            .bind(login)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let user_id: String = row.try_get(0)?;
            let teams: Vec<String> = sqlx::query_scalar(
                "SELECT care_team_id FROM care_team_members WHERE user_id = $1 ORDER BY care_team_id",
            )
            .bind(&user_id)
            .fetch_all(pool)
            .await?;
            let roles: String = row.try_get(3)?;
            Ok(Some(Account {
                user_id,
                login: row.try_get(1)?,
                display_name: row.try_get(2)?,
                roles: split_roles(&roles),
                care_teams: teams.into_iter().collect(),
                password_phc: row.try_get(4)?,
                totp_secret: row.try_get(5)?,
            }))
        })
    }

    /// Every patient's care teams.
    pub async fn care_teams_by_patient(
        &self,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StorageError> {
        let rows: Vec<(String, String)> = on_pool!(Directory, self, |pool| {
            sqlx::query_as("SELECT patient_id, care_team_id FROM care_team_patients")
                .fetch_all(pool)
                .await?
        });
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (patient, team) in rows {
            map.entry(patient).or_default().insert(team);
        }
        Ok(map)
    }

    /// A clinic by id.
    pub async fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        let row: Option<ClinicRow> = on_pool!(Directory, self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {CLINIC_COLUMNS} FROM clinics WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(clinic_of_row))
    }

    /// Clinics, users and patients' primary clinics, as on-call routing builds its network.
    pub async fn routing_records(&self) -> Result<RoutingRecords, StorageError> {
        type StaffRow = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        // Three reads, not one snapshot: a patient whose clinic was added between them is left
        // out until the next read, which is all a consistent snapshot would buy.
        let clinics: Vec<ClinicRow> = on_pool!(Directory, self, |pool| {
            sqlx::query_as(&format!("SELECT {CLINIC_COLUMNS} FROM clinics ORDER BY id"))
                .fetch_all(pool)
                .await?
        });
        let staff: Vec<StaffRow> = on_pool!(Directory, self, |pool| {
            sqlx::query_as(
                "SELECT u.id, u.name, u.role, u.clinic_id, u.phone, a.roles
                 FROM users u LEFT JOIN user_accounts a ON a.user_id = u.id ORDER BY u.id",
            )
            .fetch_all(pool)
            .await?
        });
        let patients: Vec<(String, Option<String>)> = on_pool!(Directory, self, |pool| {
            sqlx::query_as("SELECT id, primary_clinic_id FROM patients ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        Ok(RoutingRecords {
            clinics: clinics.into_iter().map(clinic_of_row).collect(),
            staff: staff
                .into_iter()
                .map(|(id, name, role, clinic_id, phone, roles)| StaffMember {
                    id,
                    name,
                    role,
                    clinic_id,
                    phone,
                    access_roles: roles.as_deref().map(split_roles).unwrap_or_default(),
                })
                .collect(),
            patients: patients
                .into_iter()
                .map(|(patient_id, primary_clinic_id)| PatientClinic {
                    patient_id,
                    primary_clinic_id,
                })
                .collect(),
        })
    }

    /// Records a user's TOTP secret (enrolled from the dashboard), or removes it (reset).
    pub async fn set_totp_secret(
        &self,
        user_id: &str,
        secret: Option<&str>,
    ) -> Result<(), StorageError> {
        let updated = on_pool!(Directory, self, |pool| {
            sqlx::query("UPDATE user_accounts SET totp_secret = $1 WHERE user_id = $2")
                .bind(secret)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StorageError::NotFound {
                what: "account",
                id: user_id.to_owned(),
            });
        }
        Ok(())
    }

    /// The patients a gateway serves (the registry's `gateways.patient_id`).
    pub async fn patients_of_gateway(&self, gateway: &str) -> Result<Vec<String>, StorageError> {
        Ok(on_pool!(Directory, self, |pool| {
            sqlx::query_scalar(
                "SELECT patient_id FROM gateways WHERE id = $1 AND patient_id IS NOT NULL",
            )
            .bind(gateway)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<(), StorageError> {
        on_pool!(Directory, self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}
