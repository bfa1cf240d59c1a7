//! `mimamori-server news2` run as a process, its JSON read back.

use serde_json::Value;
use std::process::Command;

fn news2(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
        .arg("news2")
        .args(args)
        .output()
        .expect("run mimamori-server");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("news2 prints JSON")
}

#[test]
fn home_measurements_give_a_partial_score_missing_respiration_and_consciousness() {
    let v = news2(&[
        "--spo2", "93", "--pulse", "112", "--sbp", "105", "--temp", "38.1",
    ]);
    // SpO2 93 → 2, pulse 112 → 2, SBP 105 → 1, temperature 38.1 → 1, air → 0.
    assert_eq!(v["score"], 6);
    assert_eq!(v["partial"], true);
    assert_eq!(v["max_missing"], 6);
    assert_eq!(v["any_parameter_3"], false);
    assert_eq!(v["parameters"]["spo2"]["points"], 2);
    assert_eq!(v["parameters"]["pulse"]["points"], 2);
    assert_eq!(v["parameters"]["systolic_bp"]["points"], 1);
    assert_eq!(v["parameters"]["temperature"]["points"], 1);
    assert_eq!(v["parameters"]["air_or_oxygen"]["points"], 0);
    assert_eq!(v["parameters"]["respiration_rate"]["points"], Value::Null);
}

#[test]
fn complete_observations_give_a_full_score() {
    let v = news2(&[
        "--spo2",
        "97",
        "--pulse",
        "70",
        "--sbp",
        "130",
        "--temp",
        "36.8",
        "--resp",
        "26",
        "--consciousness",
        "A",
    ]);
    assert_eq!(v["score"], 3);
    assert_eq!(v["partial"], false);
    assert_eq!(v["max_missing"], 0);
    assert_eq!(v["any_parameter_3"], true);
}

#[test]
fn scale_2_scores_high_saturation_only_on_oxygen() {
    let on_air = news2(&["--scale", "2", "--spo2", "97"]);
    let on_oxygen = news2(&["--scale", "2", "--spo2", "97", "--oxygen"]);
    assert_eq!(on_air["parameters"]["spo2"]["points"], 0);
    assert_eq!(on_air["score"], 0);
    assert_eq!(on_oxygen["parameters"]["spo2"]["points"], 3);
    assert_eq!(on_oxygen["parameters"]["air_or_oxygen"]["points"], 2);
    assert_eq!(on_oxygen["score"], 5);
    assert_eq!(on_oxygen["any_parameter_3"], true);
    // pulse (3), SBP (3), temperature (2), respiration (3), consciousness (3) unknown.
    assert_eq!(on_oxygen["max_missing"], 14);
}

#[test]
fn values_are_rounded_to_the_chart_resolution() {
    let v = news2(&["--temp", "35.04", "--spo2", "95.5"]);
    assert_eq!(v["parameters"]["temperature"]["value"], 35.0);
    assert_eq!(v["parameters"]["temperature"]["points"], 3);
    assert_eq!(v["parameters"]["spo2"]["value"], 96);
    assert_eq!(v["parameters"]["spo2"]["points"], 0);
}

#[test]
fn non_finite_values_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori-server"))
        .args(["news2", "--spo2", "NaN"])
        .output()
        .expect("run mimamori-server");
    assert!(!out.status.success());
}
