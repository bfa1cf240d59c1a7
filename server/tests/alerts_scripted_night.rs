//! The scripted night: 30 simulated patient-nights at accelerated time through the pure engine.
//!
//! Each night is a scenario: scripted vitals (1 Hz SpO2 and pulse, evening readings) plus a
//! 10-minute ECG stretch from the dsp synthetic generator, with artefacts (lead-off, motion noise,
//! a cuff error, a missed reading, a flat battery). The expected alerts are derived from the
//! scenario and written to a file BEFORE the engine runs; the engine must raise exactly those, and
//! a restart (checkpoint and restore) in the middle of every night must change nothing.
//!
//! Limitation: ECG seconds are built from the generator's ground truth (quality, rhythm, beats),
//! not from the dsp analysis chain run on the samples.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::{Artefact, LeadOffKind, NoiseKind, Rhythm as SynthRhythm, SynthConfig};
use mimamori_server::alerts::engine::{
    Category, Change, EcgQuality, EcgSecond, Engine, Input, Observation, PatientContext, Rhythm,
    ScheduledReading,
};
use mimamori_server::alerts::rules::{DeviceKind, Measure, Overrides, RuleSet};

const NIGHTS: u32 = 30;
const NIGHT_S: i64 = 8 * 3600;
const ECG_START_S: i64 = 3 * 3600;
const ECG_S: f64 = 600.0;
const ECG_HZ: f64 = 125.0;

/// What goes wrong in a night.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Quiet,
    Desaturation,
    LeadOffAndMotion,
    CuffError,
    MissedWeight,
    FlatBatteryAndAf,
}

fn script(night: u32) -> Script {
    [
        Script::Quiet,
        Script::Desaturation,
        Script::LeadOffAndMotion,
        Script::CuffError,
        Script::MissedWeight,
        Script::FlatBatteryAndAf,
    ][(night % 6) as usize]
}

/// The alerts a clinician reading the script expects, as (key, category).
fn expected(s: Script) -> BTreeSet<(String, Category)> {
    let e: &[(&str, Category)] = match s {
        Script::Quiet => &[],
        Script::Desaturation => &[("spo2_low", Category::Clinical)],
        Script::LeadOffAndMotion => &[
            ("lead_off", Category::Technical),
            ("poor_signal", Category::Technical),
        ],
        Script::CuffError => &[
            ("device_error/bp_cuff", Category::Technical),
            ("reading_not_received/systolic_bp", Category::Technical),
        ],
        Script::MissedWeight => &[("missed_reading/body_weight", Category::Adherence)],
        Script::FlatBatteryAndAf => &[
            ("battery_low/oximeter", Category::Technical),
            ("ecg_new_af", Category::Clinical),
        ],
    };
    e.iter().map(|(k, c)| ((*k).to_owned(), *c)).collect()
}

/// 21:00 local evening start, in UTC (JST = UTC+9 → 12:00 UTC).
fn night_start(night: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + TimeDelta::days(night.into())
}

/// A small deterministic generator for measurement noise.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ecg_seconds(s: Script, seed: u64) -> Vec<EcgSecond> {
    let rate = SampleRate::hz(ECG_HZ);
    let mut config = SynthConfig::new(rate, seed).heart_rate_bpm(68.0);
    match s {
        Script::LeadOffAndMotion => {
            config = config.lead_off(LeadOffKind::Flat, 100.0, 60.0).noise_burst(
                NoiseKind::Motion,
                1.5,
                300.0,
                90.0,
            );
        }
        Script::FlatBatteryAndAf => {
            config = config.rhythm_episode(SynthRhythm::AtrialFibrillation, 200.0, 120.0)
        }
        _ => {}
    }
    let (_, truth) = config.generate_mv(ECG_S).unwrap();
    let fs = ECG_HZ as u64;
    (0..ECG_S as u64)
        .map(|k| {
            let (start, end) = (k * fs, (k + 1) * fs);
            let lead_off = truth
                .artefacts
                .iter()
                .any(|a| matches!(a.label, Artefact::LeadOff(_)) && a.overlap(start, end) > 0);
            let noisy = truth.artefact_samples_in(start, end) > fs / 4;
            let quality = if lead_off {
                EcgQuality::LeadOff
            } else if noisy {
                EcgQuality::Poor
            } else {
                EcgQuality::Usable
            };
            // Beats in the 5 s ending with this second give the heart rate and the longest RR.
            let window: Vec<u64> = truth
                .beats
                .iter()
                .map(|b| b.r_peak)
                .filter(|&r| r + 5 * fs >= end && r < end)
                .collect();
            let rrs: Vec<f64> = window
                .windows(2)
                .map(|w| (w[1] - w[0]) as f64 * 1000.0 / ECG_HZ)
                .collect();
            let heart_rate_per_min =
                (!rrs.is_empty()).then(|| 60_000.0 * rrs.len() as f64 / rrs.iter().sum::<f64>());
            let longest_rr_ms = rrs.iter().copied().reduce(f64::max).map(|r| r as u32);
            let rhythm = if quality != EcgQuality::Usable {
                Rhythm::Unknown
            } else if truth.af_samples_in(start, end) > fs / 2 {
                Rhythm::Af
            } else {
                Rhythm::Regular
            };
            EcgSecond {
                quality,
                heart_rate_per_min,
                longest_rr_ms,
                rhythm,
            }
        })
        .collect()
}

/// Every input of one night, in time order, and the ticks (every minute).
fn night_inputs(night: u32) -> (Vec<Input>, Vec<DateTime<Utc>>) {
    let s = script(night);
    let patient = format!("patient-{night:02}");
    let t0 = night_start(night);
    let at = |sec: i64| t0 + TimeDelta::seconds(sec);
    let mut rng = Lcg(u64::from(night) + 1);
    let mut inputs = Vec::new();
    let input = |sec: i64, observation| Input {
        at: at(sec),
        patient: patient.clone(),
        observation,
    };
    let vital = |measure, value| Observation::Vital {
        measure,
        value,
        artefact: false,
    };

    // Evening readings at 21:00–21:05 local, before the 22:00 schedule slot's grace window ends.
    let evening = 3600; // 22:00 local
    if s == Script::CuffError {
        inputs.push(input(
            evening,
            Observation::DeviceError {
                device: DeviceKind::BpCuff,
                code: "E3".into(),
            },
        ));
    } else {
        inputs.push(input(
            evening,
            vital(Measure::SystolicBp, 128.0 + 10.0 * rng.next()),
        ));
    }
    inputs.push(input(
        evening + 60,
        vital(Measure::BodyTemperature, 36.4 + 0.4 * rng.next()),
    ));
    if s != Script::MissedWeight {
        inputs.push(input(
            evening + 120,
            vital(Measure::BodyWeight, 58.0 + rng.next()),
        ));
    }
    let battery_dies_at = 2 * 3600;
    if s == Script::FlatBatteryAndAf {
        inputs.push(input(
            battery_dies_at - 600,
            Observation::Battery {
                device: DeviceKind::Oximeter,
                percent: 8.0,
            },
        ));
    }
    let ecg = ecg_seconds(s, u64::from(night) * 7 + 3);
    for sec in evening + 300..NIGHT_S {
        let oximeter_on = !(s == Script::FlatBatteryAndAf && sec >= battery_dies_at);
        if oximeter_on {
            let desaturating =
                s == Script::Desaturation && (4 * 3600..4 * 3600 + 180).contains(&sec);
            // Motion: the oximeter flags two minutes of implausible values.
            let moving = s == Script::LeadOffAndMotion && (5 * 3600..5 * 3600 + 120).contains(&sec);
            let spo2 = if desaturating {
                85.0 + rng.next()
            } else {
                95.0 + 3.0 * rng.next()
            };
            let spo2 = if moving { 78.0 } else { spo2.round() };
            inputs.push(input(
                sec,
                Observation::Vital {
                    measure: Measure::Spo2,
                    value: spo2,
                    artefact: moving,
                },
            ));
            let pulse = (62.0 + 12.0 * rng.next()).round();
            inputs.push(input(
                sec,
                Observation::Vital {
                    measure: Measure::PulseRate,
                    value: pulse,
                    artefact: moving,
                },
            ));
        }
        if let Some(e) = usize::try_from(sec - ECG_START_S)
            .ok()
            .and_then(|k| ecg.get(k))
        {
            inputs.push(input(sec, Observation::Ecg(*e)));
        }
    }
    let ticks = (0..NIGHT_S / 60).map(|m| at(m * 60)).collect();
    (inputs, ticks)
}

fn context(night: u32) -> PatientContext {
    let slot = NaiveTime::from_hms_opt(13, 0, 0).unwrap(); // 22:00 JST
    PatientContext {
        known_af: false,
        schedule: [
            Measure::SystolicBp,
            Measure::BodyTemperature,
            Measure::BodyWeight,
        ]
        .into_iter()
        .map(|measure| ScheduledReading { measure, at: slot })
        .collect(),
        monitored_since: Some(night_start(night)),
    }
}

/// Runs a night, optionally restarting (checkpoint → new engine → restore) after `restart_at`
/// inputs. Returns every raise as (time, key, category).
fn run(night: u32, restart_at: Option<usize>) -> Vec<(DateTime<Utc>, String, Category)> {
    let (inputs, ticks) = night_inputs(night);
    let patient = format!("patient-{night:02}");
    let mut engine = Engine::new(RuleSet::builtin(), Overrides::default());
    engine.set_patient(&patient, context(night));
    let mut raised = Vec::new();
    let mut ticks = ticks.into_iter().peekable();
    for (n, i) in inputs.iter().enumerate() {
        if restart_at == Some(n) {
            let checkpoint = engine.checkpoint();
            drop(engine);
            engine =
                Engine::restore(RuleSet::builtin(), Overrides::default(), &checkpoint).unwrap();
        }
        let mut signals = Vec::new();
        while let Some(t) = ticks.next_if(|t| *t <= i.at) {
            signals.extend(engine.tick(t));
        }
        signals.extend(engine.observe(i));
        for s in signals {
            if let Change::Raise { category, .. } = s.change {
                raised.push((s.at, s.key, category));
            }
        }
    }
    for t in ticks {
        for s in engine.tick(t) {
            if let Change::Raise { category, .. } = s.change {
                raised.push((s.at, s.key, category));
            }
        }
    }
    raised
}

#[test]
fn thirty_scripted_nights_raise_exactly_the_expected_alerts_and_restart_changes_nothing() {
    // The expected-alert file is written from the scenarios before any engine runs.
    let dir = tempfile::tempdir().unwrap();
    let expected_file = dir.path().join("expected-alerts.json");
    let expected_all: Vec<(u32, Vec<(String, Category)>)> = (0..NIGHTS)
        .map(|n| (n, expected(script(n)).into_iter().collect()))
        .collect();
    std::fs::write(
        &expected_file,
        serde_json::to_vec_pretty(&expected_all).unwrap(),
    )
    .unwrap();

    let expected_read: Vec<(u32, Vec<(String, Category)>)> =
        serde_json::from_slice(&std::fs::read(&expected_file).unwrap()).unwrap();
    let mut non_actionable_clinical = 0;
    for (night, expected) in expected_read {
        let got = run(night, None);
        let got_set: BTreeSet<(String, Category)> =
            got.iter().map(|(_, k, c)| (k.clone(), *c)).collect();
        let expected: BTreeSet<_> = expected.into_iter().collect();
        non_actionable_clinical += got_set
            .difference(&expected)
            .filter(|(_, c)| *c == Category::Clinical)
            .count();
        assert_eq!(got_set, expected, "night {night} ({:?})", script(night));
        assert_eq!(
            got.len(),
            got_set.len(),
            "night {night}: an alert was raised twice: {got:?}"
        );
        let (inputs, _) = night_inputs(night);
        assert_eq!(
            run(night, Some(inputs.len() / 2)),
            got,
            "night {night}: restart changed the alerts"
        );
    }
    println!(
        "non-actionable clinical alerts over {NIGHTS} patient-nights: {non_actionable_clinical}"
    );
    assert!(
        non_actionable_clinical * 10 <= NIGHTS as usize,
        "more than 1 per 10 patient-nights"
    );
}
