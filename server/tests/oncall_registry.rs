//! The on-call care network is the registry's: the rota names registry clinic and user ids, a
//! patient registered after start is routed once the routing is refreshed (as `serve` does every
//! few seconds), and a rota naming what the registry does not have is refused with that id.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{DEMO_REGISTRY, NEW_PATIENT};
use mimamori_server::oncall::coverage::{CoverageConfig, PROGRAM_TIME_ZONE};
use mimamori_server::oncall::escalation::AlertRouting as _;
use mimamori_server::oncall::live::{LiveRouting, LiveRoutingError};
use mimamori_server::oncall::network::{self, NetworkError, NotCallable};
use mimamori_server::oncall::rota::{PatientId, RotaFile, Shift};
use mimamori_server::oncall::route::{ContactRole, RouteError};
use mimamori_server::registry::directory::User;
use mimamori_server::registry::{Directory, RegistryFile};
use mimamori_server::sinks::timescale::TimescaleStore;
use mimamori_server::storage::Storage as _;

fn rota_shifts() -> Vec<Shift> {
    RotaFile::load(common::ROTA.as_ref())
        .unwrap()
        .all_shifts()
        .unwrap()
}

fn jst(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    PROGRAM_TIME_ZONE
        .with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A fresh PostgreSQL database holding the demo registry.
async fn demo_registry() -> (TimescaleStore, Directory) {
    let url = mimamori_testkit::Postgres::shared()
        .expect("throwaway PostgreSQL")
        .create_database()
        .expect("a fresh database");
    let store = TimescaleStore::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let directory = Directory::from(&store);
    RegistryFile::parse(DEMO_REGISTRY)
        .unwrap()
        .apply(&store, &directory)
        .await
        .unwrap();
    (store, directory)
}

#[tokio::test]
async fn a_patient_registered_after_start_goes_to_the_on_call_doctor_of_their_clinics_turn() {
    let (store, directory) = demo_registry().await;
    let routing = LiveRouting::start(directory.clone(), CoverageConfig::default(), rota_shifts())
        .await
        .unwrap();
    // Wednesday 18 Nov 2026, 23:00: the Tamagawa clinic's team holds the rota.
    let night = jst(11, 18, 23);
    let shift = rota_shifts()
        .into_iter()
        .find(|s| s.starts_at <= night && night < s.ends_at)
        .unwrap();
    assert_eq!(shift.clinic.0, "c-tamagawa-home");
    let patient = PatientId::from("p-0100");
    assert_eq!(
        routing.escalation_plan(&patient, night).unwrap_err(),
        RouteError::UnknownPatient(patient.clone())
    );

    RegistryFile::parse(NEW_PATIENT)
        .unwrap()
        .apply(&store, &directory)
        .await
        .unwrap();
    routing.refresh().await.unwrap();

    let plan = routing.escalation_plan(&patient, night).unwrap();
    let first = plan.recipient(0).unwrap();
    assert_eq!(first.role, ContactRole::OnCallDoctor);
    assert_eq!(first.doctor_id.as_ref().unwrap().0, "u-yamamoto");
    assert_eq!(
        (first.name.as_str(), first.phone.as_str()),
        ("山本 彩", "090-0000-0202")
    );
    // Then the backups, then the patient's own clinic's line, from the registry.
    let rest: Vec<&str> = plan.levels[1..].iter().map(|r| r.phone.as_str()).collect();
    assert_eq!(rest, ["090-0000-0201", "090-0000-0102", "03-5555-0202"]);

    // By day the patient's clinic answers: its director, a registry doctor.
    let day = plan_first(&routing, &patient, jst(11, 18, 11));
    assert_eq!(
        day,
        (ContactRole::PrimaryDoctor, Some("u-suzuki".to_owned()))
    );
}

fn plan_first(
    routing: &LiveRouting,
    patient: &PatientId,
    at: DateTime<Utc>,
) -> (ContactRole, Option<String>) {
    let plan = routing.escalation_plan(patient, at).unwrap();
    let first = plan.recipient(0).unwrap();
    (first.role, first.doctor_id.as_ref().map(|d| d.0.clone()))
}

#[tokio::test]
async fn a_patient_whose_clinic_has_no_team_and_no_callable_director_still_reaches_someone() {
    let (_store, directory) = demo_registry().await;
    let routing = LiveRouting::start(directory, CoverageConfig::default(), rota_shifts())
        .await
        .unwrap();
    // p-0004's clinic, the Tamagawa night partner, has no team in the rotation, and its director
    // is not a registry doctor.
    let patient = PatientId::from("p-0004");
    // Wednesday 11:00, outside its hours (18:00–09:00): the rota's on-call doctor.
    assert_eq!(
        plan_first(&routing, &patient, jst(11, 18, 11)),
        (ContactRole::OnCallDoctor, Some("u-yamamoto".to_owned()))
    );
    // Wednesday 07:00, inside its hours: its emergency line first, then the on-call doctor.
    let plan = routing.escalation_plan(&patient, jst(11, 18, 7)).unwrap();
    let chain: Vec<(ContactRole, &str)> = plan
        .levels
        .iter()
        .map(|r| (r.role, r.phone.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            (ContactRole::ClinicEmergencyLine, "03-0000-0002"),
            (ContactRole::OnCallDoctor, "090-0000-0102"),
        ]
    );
}

#[test]
fn a_rota_naming_what_the_registry_lacks_is_refused_with_the_id() {
    let records = RegistryFile::parse(DEMO_REGISTRY)
        .unwrap()
        .routing_records();
    let renamed = |from: &str, to: &str| -> Vec<Shift> {
        let mut shifts = rota_shifts();
        for s in &mut shifts {
            for id in [&mut s.clinic.0, &mut s.triage_clinic.0, &mut s.doctor.0] {
                if id == from {
                    *id = to.to_owned();
                }
            }
        }
        shifts
    };
    let refused = |shifts| network::build(&records, shifts).unwrap_err();

    let e = refused(renamed("c-tamagawa-night", "c-nowhere"));
    assert_eq!(e, NetworkError::UnknownClinic("c-nowhere".into()));
    assert_eq!(
        e.to_string(),
        "the rota names clinic c-nowhere, which is not in the registry"
    );
    let e = refused(renamed("u-kato", "u-ghost"));
    assert_eq!(
        e.to_string(),
        "the rota names user u-ghost, who is not in the registry"
    );
    // Known to the registry, but not someone the routing can call.
    assert_eq!(
        refused(renamed("u-kato", "u-nurse")),
        NetworkError::NotCallable {
            user: "u-nurse".into(),
            reason: NotCallable::NotADoctor
        }
    );
    assert_eq!(
        refused(renamed("u-kato", "u-doctor")).to_string(),
        "the rota names user u-doctor, who cannot be called: no phone in the registry"
    );
    // The fixture itself agrees with the demo registry.
    network::build(&records, rota_shifts()).unwrap();
}

#[tokio::test]
async fn a_registry_change_the_rota_cannot_use_keeps_the_last_good_routing() {
    let (_store, directory) = demo_registry().await;
    let routing = LiveRouting::start(directory.clone(), CoverageConfig::default(), rota_shifts())
        .await
        .unwrap();
    // Saturday 21 Nov 2026, 03:00: the Setagaya team (u-kato) holds the rota.
    let at = jst(11, 21, 3);
    assert_eq!(
        plan_first(&routing, &PatientId::from("p-0001"), at),
        (ContactRole::OnCallDoctor, Some("u-kato".to_owned()))
    );
    // Someone removes u-kato's phone: the rota still names him.
    directory
        .upsert_user(
            &User {
                id: "u-kato".into(),
                name: "加藤 大輔".into(),
                role: "doctor".into(),
                clinic_id: Some("c-setagaya-home".into()),
                phone: None,
                account: None,
            },
            None,
        )
        .await
        .unwrap();
    let err = routing.refresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            LiveRoutingError::Network(NetworkError::NotCallable {
                reason: NotCallable::NoPhone,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("u-kato"), "{err}");
    // The last good routing still calls him, at the number it had.
    let plan = routing
        .escalation_plan(&PatientId::from("p-0001"), at)
        .unwrap();
    assert_eq!(plan.recipient(0).unwrap().phone.as_str(), "090-0000-0102");
}
