//! A whole year, minute by minute: every minute some doctor is reachable for each patient of the
//! fixture network, and the minutes split between clinic and on call as the calendar says.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use mimamori_server::oncall::coverage::{Coverage, CoverageConfig, PROGRAM_TIME_ZONE};
use mimamori_server::oncall::network;
use mimamori_server::oncall::rota::{PatientId, RotaFile, Shift};
use mimamori_server::oncall::route::{ContactRole, OnCallResolver, RouteError};
use mimamori_server::registry::directory::RoutingRecords;

fn resolver(records: &RoutingRecords, file: &RotaFile) -> OnCallResolver {
    let (network, rota) = network::build(records, file.all_shifts().unwrap()).unwrap();
    OnCallResolver::new(CoverageConfig::default(), network, rota)
}

fn jst_midnight(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    PROGRAM_TIME_ZONE
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn every_minute_of_2026_reaches_a_doctor() {
    let (records, rota) = common::demo_routing_records_and_rota();
    let resolver = resolver(&records, &rota);
    // 世田谷在宅クリニック: weekdays 09:00–12:30 and 14:00–18:00, director 佐藤 健一.
    let patient = PatientId::from("p-0001");
    let (from, to) = (jst_midnight(2026, 1, 1), jst_midnight(2027, 1, 1));
    let (mut minutes, mut at_clinic) = (0_u32, 0_u32);
    let mut at = from;
    while at < to {
        let route = resolver
            .who_to_call(at, &patient)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(
            route.notify.doctor_id.is_some(),
            "{at}: first contact is not a doctor"
        );
        assert!(!route.notify.phone.as_str().is_empty());
        match route.coverage {
            Coverage::PrimaryClinic => {
                at_clinic += 1;
                assert_eq!(route.notify.role, ContactRole::PrimaryDoctor);
                assert_eq!(route.notify.name, "佐藤 健一");
            }
            Coverage::OnCall => {
                let shift = resolver.shift_at(at).unwrap();
                assert_eq!(route.notify.doctor_id, Some(&shift.doctor), "{at}");
                assert!(route.chain().count() >= 2, "{at}: no escalation");
            }
        }
        minutes += 1;
        at += Duration::minutes(1);
    }
    assert_eq!(minutes, 525_600);
    // 2026: 365 days − 104 weekend days − 17 holidays on weekdays − 4 more weekdays of the
    // year-end period (2 Jan, 29–31 Dec) = 240 working days; Setagaya is open 450 min of each.
    assert_eq!(at_clinic, 240 * 450);
}

#[test]
fn a_gap_in_the_rota_is_found_by_the_sweep() {
    let (records, mut file) = common::demo_routing_records_and_rota();
    // Replace the rotation with one that leaves Wednesday night 4 Feb 2026 uncovered.
    let rotation = file.rotations.pop().unwrap();
    let shifts: Vec<Shift> = rotation.shifts().unwrap();
    let gap_start = PROGRAM_TIME_ZONE
        .with_ymd_and_hms(2026, 2, 4, 9, 0, 0)
        .unwrap();
    file.shifts = shifts
        .into_iter()
        .filter(|s| s.starts_at != gap_start.with_timezone(&Utc))
        .collect();
    let resolver = resolver(&records, &file);
    let gaps = resolver.unreachable_spans(
        &PatientId::from("p-0001"),
        jst_midnight(2026, 2, 1),
        jst_midnight(2026, 2, 8),
        Duration::minutes(1),
    );
    // The clinic covers 4 Feb in its hours; on call is uncovered over lunch (12:30–14:00) and
    // from 18:00 until the next shift at 09:00 on 5 Feb.
    let starts: Vec<String> = gaps
        .iter()
        .map(|(at, e)| {
            assert!(matches!(e, RouteError::NoShift(_)));
            at.with_timezone(&PROGRAM_TIME_ZONE)
                .format("%m-%d %H:%M")
                .to_string()
        })
        .collect();
    assert_eq!(starts, ["02-04 12:30", "02-04 18:00"]);
}
