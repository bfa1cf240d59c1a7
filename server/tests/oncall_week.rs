//! A scripted week (Golden Week 2026, plus New Year's Eve): each alert reaches the right person
//! through the hook the alert engine uses, and escalation goes to the backup.

use chrono::{DateTime, TimeZone, Utc};
use mimamori_server::oncall::coverage::{Coverage, CoverageConfig, PROGRAM_TIME_ZONE, Reason};
use mimamori_server::oncall::escalation::{AlertRouting, EscalationPlan};
use mimamori_server::oncall::network;
use mimamori_server::oncall::rota::{PatientId, Shift};
use mimamori_server::oncall::route::{ContactRole, OnCallResolver};
use mimamori_server::registry::RegistryFile;

fn jst(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    let year = 2026;
    PROGRAM_TIME_ZONE
        .with_ymd_and_hms(year, month, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A 24-hour shift from `from`.
fn shift(from: DateTime<Utc>, clinic: &str, doctor: &str, backups: &[&str]) -> Shift {
    Shift {
        starts_at: from,
        ends_at: from + chrono::Duration::days(1),
        clinic: clinic.into(),
        doctor: doctor.into(),
        backups: backups.iter().map(|&b| b.into()).collect(),
        triage_clinic: "c-tamagawa-night".into(),
    }
}

fn routing() -> Box<dyn AlertRouting> {
    let registry = RegistryFile::parse(include_str!("../../fixtures/registry/demo.toml")).unwrap();
    let shifts = vec![
        shift(jst(5, 5, 9, 0), "c-futako-home", "u-takahashi", &["u-sato"]),
        shift(
            jst(5, 6, 9, 0),
            "c-setagaya-home",
            "u-kato",
            &["u-sato", "u-takahashi"],
        ),
        shift(
            jst(5, 7, 9, 0),
            "c-tamagawa-home",
            "u-yamamoto",
            &["u-suzuki"],
        ),
        shift(
            jst(5, 8, 9, 0),
            "c-futako-home",
            "u-takahashi",
            &["u-yamamoto"],
        ),
        shift(jst(5, 9, 9, 0), "c-setagaya-home", "u-kato", &["u-sato"]),
        shift(
            jst(12, 31, 9, 0),
            "c-tamagawa-home",
            "u-yamamoto",
            &["u-suzuki", "u-kato"],
        ),
    ];
    let (network, rota) = network::build(&registry.routing_records(), shifts).unwrap();
    Box::new(OnCallResolver::new(
        CoverageConfig::default(),
        network,
        rota,
    ))
}

/// Names notified, in order, when nobody before `acknowledged_by` answers.
fn notified_until(plan: &EscalationPlan, acknowledged_by: &str) -> Vec<String> {
    let mut notified = Vec::new();
    for level in 0.. {
        let Some(r) = plan.recipient(level) else {
            break;
        };
        notified.push(r.name.clone());
        if r.name == acknowledged_by {
            break;
        }
    }
    notified
}

struct Case {
    what: &'static str,
    at: DateTime<Utc>,
    coverage: Coverage,
    reason: Reason,
    first: (&'static str, &'static str),
    backup: &'static str,
    house_call: bool,
}

#[test]
fn scripted_week_reaches_the_right_person_and_escalates_to_the_backup() {
    let routing = routing();
    // 世田谷在宅クリニック: director 佐藤 健一, weekdays 09:00–12:30 and 14:00–18:00.
    let patient = PatientId::from("p-0001");
    let cases = [
        Case {
            what: "holiday (こどもの日, Tue 5 May)",
            at: jst(5, 5, 14, 0),
            coverage: Coverage::OnCall,
            reason: Reason::PublicHoliday,
            first: ("高橋 誠", "090-0000-0301"),
            backup: "佐藤 健一",
            house_call: true,
        },
        Case {
            what: "substitute holiday (振替休日, Wed 6 May)",
            at: jst(5, 6, 11, 0),
            coverage: Coverage::OnCall,
            reason: Reason::PublicHoliday,
            first: ("加藤 大輔", "090-0000-0102"),
            backup: "佐藤 健一",
            house_call: true,
        },
        Case {
            what: "weekday day (Thu 7 May 10:00)",
            at: jst(5, 7, 10, 0),
            coverage: Coverage::PrimaryClinic,
            reason: Reason::ClinicOpen,
            first: ("佐藤 健一", "090-0000-0101"),
            // Then the clinic's own line, whoever answers it.
            backup: "世田谷在宅クリニック",
            house_call: false,
        },
        Case {
            what: "weekday lunch break (Thu 7 May 13:00)",
            at: jst(5, 7, 13, 0),
            coverage: Coverage::OnCall,
            reason: Reason::ClinicClosed,
            first: ("山本 彩", "090-0000-0202"),
            backup: "鈴木 美和",
            house_call: false,
        },
        Case {
            what: "weekday night (Thu 7 May 23:10)",
            at: jst(5, 7, 23, 10),
            coverage: Coverage::OnCall,
            reason: Reason::WeekdayEvening,
            first: ("山本 彩", "090-0000-0202"),
            backup: "鈴木 美和",
            house_call: true,
        },
        Case {
            what: "early weekday morning (Fri 8 May 05:30)",
            at: jst(5, 8, 5, 30),
            coverage: Coverage::OnCall,
            reason: Reason::BeforeClinicOpens,
            first: ("山本 彩", "090-0000-0202"),
            backup: "鈴木 美和",
            house_call: true,
        },
        Case {
            what: "weekday morning after house-call hours (Fri 8 May 07:45)",
            at: jst(5, 8, 7, 45),
            coverage: Coverage::OnCall,
            reason: Reason::BeforeClinicOpens,
            first: ("山本 彩", "090-0000-0202"),
            backup: "鈴木 美和",
            house_call: false,
        },
        Case {
            what: "Saturday (9 May 15:00)",
            at: jst(5, 9, 15, 0),
            coverage: Coverage::OnCall,
            reason: Reason::Weekend,
            first: ("加藤 大輔", "090-0000-0102"),
            backup: "佐藤 健一",
            house_call: true,
        },
        Case {
            what: "31 December (Thu 20:00)",
            at: jst(12, 31, 20, 0),
            coverage: Coverage::OnCall,
            reason: Reason::YearEnd,
            first: ("山本 彩", "090-0000-0202"),
            backup: "鈴木 美和",
            house_call: true,
        },
    ];
    for c in &cases {
        let plan = routing.escalation_plan(&patient, c.at).unwrap();
        assert_eq!(
            (plan.coverage, plan.reason),
            (c.coverage, c.reason),
            "{}",
            c.what
        );
        let first = plan.recipient(0).unwrap();
        assert_eq!(
            (first.name.as_str(), first.phone.as_str()),
            c.first,
            "{}",
            c.what
        );
        assert_eq!(plan.house_call_dispatch, c.house_call, "{}", c.what);
        // The first contact does not answer: the backup is next.
        assert_eq!(
            notified_until(&plan, c.backup),
            [c.first.0, c.backup],
            "{}",
            c.what
        );
        let expected_role = match c.coverage {
            Coverage::OnCall => ContactRole::BackupDoctor,
            Coverage::PrimaryClinic => ContactRole::ClinicEmergencyLine,
        };
        assert_eq!(plan.recipient(1).unwrap().role, expected_role, "{}", c.what);
        // Last in every chain: the patient's own clinic's 24-hour line, or the on-call doctor.
        let last = plan.levels.last().unwrap();
        assert!(
            matches!(
                last.role,
                ContactRole::ClinicEmergencyLine | ContactRole::OnCallDoctor
            ),
            "{}",
            c.what
        );
    }
}

#[test]
fn nobody_answers_on_new_years_eve_walks_the_whole_chain() {
    let plan = routing()
        .escalation_plan(&PatientId::from("p-0001"), jst(12, 31, 20, 0))
        .unwrap();
    let chain: Vec<(&str, &str)> = plan
        .levels
        .iter()
        .map(|r| (r.name.as_str(), r.phone.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            ("山本 彩", "090-0000-0202"),
            ("鈴木 美和", "090-0000-0201"),
            ("加藤 大輔", "090-0000-0102"),
            ("世田谷在宅クリニック", "03-5555-0101"),
        ]
    );
    assert_eq!(plan.recipient(4), None);
}

#[test]
fn a_gap_in_the_rota_is_an_error_not_a_silent_drop() {
    // Thu 31 Dec 08:00: before the New Year's Eve shift starts, and no shift the night before.
    let err = routing()
        .escalation_plan(&PatientId::from("p-0001"), jst(12, 31, 8, 0))
        .unwrap_err();
    assert!(err.to_string().starts_with("no on-call shift at"), "{err}");
}
