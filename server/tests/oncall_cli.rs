//! The `calendar` and `oncall` subcommands, run as the built binary.

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mimamori-server");
const ROTA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/oncall/setagaya-rota.toml"
);
const REGISTRY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/registry/demo.toml"
);

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("MIMAMORI_ONCALL_ROTA")
        .env_remove("MIMAMORI_ONCALL_COVERAGE")
        .env_remove("MIMAMORI_ONCALL_REGISTRY")
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn calendar_prints_the_cabinet_office_list() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/calendar/jp-holidays-2019-2027.tsv"
    ))
    .unwrap();
    let expected: String = fixture
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = run(&["calendar", "--from", "2019-01-01", "--to", "2027-12-31"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn calendar_range_is_inclusive_at_both_ends() {
    let out = run(&["calendar", "--from", "2026-09-21", "--to", "2026-09-22"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "2026-09-21\t敬老の日\n2026-09-22\t国民の休日\n"
    );
}

#[test]
fn calendar_refuses_years_it_cannot_compute() {
    let out = run(&["calendar", "--from", "2100-01-01", "--to", "2100-12-31"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2100"));
}

#[test]
fn oncall_without_patient_assumes_weekday_nine_to_six() {
    let cases = [
        ("2026-11-25T09:00:00+09:00", "primary-clinic", "clinic-open"),
        (
            "2026-11-25T08:59:00+09:00",
            "on-call",
            "before-clinic-opens",
        ),
        ("2026-11-25T18:00:00+09:00", "on-call", "weekday-evening"),
        // The same instant written in UTC.
        ("2026-11-25T09:00:00Z", "on-call", "weekday-evening"),
        ("2026-11-28T12:00:00+09:00", "on-call", "weekend"),
        ("2026-05-06T12:00:00+09:00", "on-call", "public-holiday"),
        ("2026-12-31T12:00:00+09:00", "on-call", "year-end"),
    ];
    for (at, coverage, reason) in cases {
        let v = json(&["oncall", "--at", at]);
        assert_eq!(v["coverage"], coverage, "{at}");
        assert_eq!(v["reason"], reason, "{at}");
    }
    let v = json(&["oncall", "--at", "2026-05-06T12:00:00+09:00"]);
    assert_eq!(v["holiday"], "振替休日");
}

#[test]
fn oncall_with_patient_names_who_to_call() {
    // Saturday 28 Nov 2026 03:00 JST: the shift that began Friday 09:00.
    let v = json(&[
        "oncall",
        "--at",
        "2026-11-28T03:00:00+09:00",
        "--patient",
        "p-0001",
        "--rota",
        ROTA,
        "--registry",
        REGISTRY,
    ]);
    assert_eq!(v["coverage"], "on-call");
    assert_eq!(v["notify"]["role"], "on-call-doctor");
    let first = v["notify"]["doctor_id"].as_str().unwrap().to_owned();
    let chain: Vec<&str> = v["escalation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phone"].as_str().unwrap())
        .collect();
    assert!(chain.len() >= 2);
    assert_eq!(
        *chain.last().unwrap(),
        "03-5555-0101",
        "primary clinic's emergency line last"
    );
    assert_eq!(v["triage"]["name"], "玉川ナイトパートナー診療所");
    assert_eq!(v["primary_clinic"]["director"], "佐藤 健一");
    // The next day's shift is someone else.
    let next = json(&[
        "oncall",
        "--at",
        "2026-11-29T03:00:00+09:00",
        "--patient",
        "p-0001",
        "--rota",
        ROTA,
        "--registry",
        REGISTRY,
    ]);
    assert_ne!(next["notify"]["doctor_id"].as_str().unwrap(), first);
}

#[test]
fn oncall_unknown_patient_fails_with_a_message() {
    let out = run(&[
        "oncall",
        "--at",
        "2026-11-28T03:00:00+09:00",
        "--patient",
        "p-9999",
        "--rota",
        ROTA,
        "--registry",
        REGISTRY,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown patient p-9999"));
}
