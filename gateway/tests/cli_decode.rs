//! The `decode` subcommand end to end: JSON in natural units on success, a precise error and a
//! non-zero exit on bad input.

use std::process::{Command, Output};

fn decode(profile: &str, hex: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mimamori-gateway"))
        .args(["decode", "--profile", profile])
        .args(hex)
        .output()
        .expect("the binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn blood_pressure_in_kpa_is_printed_in_mmhg() {
    let v = json(&decode(
        "blood-pressure",
        &["07 A0 F0 6B F0 7D F0 DD 07 08 1A 09 0A 14 40 00"],
    ));
    assert_eq!(v["systolic_mmhg"], 120.01);
    assert_eq!(v["reported_unit"], "kPa");
    assert_eq!(v["time_stamp"], "2013-08-26T09:10:20");
    assert_eq!(v["pulse_rate_per_min"], 64.0);
}

#[test]
fn hex_may_be_split_across_arguments_and_specials_are_labelled() {
    let v = json(&decode("plx-spot", &["02", "FF 07", "FF07", "00 20"]));
    assert_eq!(v["spo2_percent"], "NaN");
    assert_eq!(v["measurement_status"]["set"][0], "measurement_unavailable");
}

#[test]
fn each_kind_decodes_its_vector() {
    let cases = [
        (
            "temperature",
            "06 65 0E 00 FE E8 07 03 05 0E 07 09 02",
            "/temperature_cel",
            serde_json::json!(36.85),
        ),
        (
            "weight",
            "0E 16 35 E8 07 03 05 07 1E 00 02 DE 00 D6 06",
            "/weight_kg",
            serde_json::json!(67.95),
        ),
        (
            "plx-continuous",
            "1C 60 00 3D 00 00 01 00 08 00 1F F0",
            "/spo2_percent",
            serde_json::json!(96.0),
        ),
        (
            "heart-rate",
            "16 4B 20 03",
            "/rr_intervals_ms/0",
            serde_json::json!(781.25),
        ),
        ("battery", "55", "/battery_percent", serde_json::json!(85)),
        (
            "checkme-live",
            "A5 5A 1F 01 00 00 2E 00 5D 00 2E 00 ED FF 48 00 58 00 05 00 00 00 01 00 F1 55 F3 00 07 00 00",
            "/ecg/heart_rate_per_min",
            serde_json::json!(72),
        ),
        (
            "o2-live",
            "55 00 FF 00 00 0C 00 61 48 00 00 00 00 00 55 00 03 19 01 0D",
            "/spo2_percent",
            serde_json::json!(97),
        ),
        (
            "lepu-frame",
            "A5 03 FC 01 01 1E 00 48 00 00 5A 23 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 04 00 64 00 CE FF 00 00 FF 7F E1",
            "/content/er1_live/samples_uv/3",
            serde_json::Value::Null,
        ),
    ];
    for (profile, hex, pointer, expected) in cases {
        let v = json(&decode(profile, &[hex]));
        assert_eq!(v.pointer(pointer), Some(&expected), "{profile}: {v}");
    }
}

#[test]
fn bad_input_exits_non_zero_with_the_reason_and_the_bytes() {
    let out = decode("lepu-frame", &["A5 E1 1E 00 00 00 00 68"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad crc: frame says 0x68, computed 0x69"),
        "{err}"
    );
    assert!(err.contains("bytes: A5 E1 1E 00 00 00 00 68"), "{err}");

    let out = decode("weight", &["0G"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid hex character 'G'"));

    let out = decode("no-such-kind", &["00"]);
    assert!(!out.status.success());
}
