//! A fictional patient with every field filled, for the demo, the screenshot and the tests.
//!
//! Everything here is invented: the person, the address (a block number that does not exist in
//! 玉川3丁目) and the numbers (03-5555-xxxx, 090-0000-xxxx). Series are generated deterministically
//! so the rendered page is the same on every run.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::input::*;
use crate::oncall::rota::PhoneNumber;

/// A small deterministic generator (xorshift64*) so the demo needs no `rand`.
struct Noise(u64);

impl Noise {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::try_from(s.to_owned()).unwrap_or_else(|_| unreachable!("demo numbers are valid"))
}

fn series(
    kind: VitalKind,
    end: DateTime<Utc>,
    every: Duration,
    target_range: Option<(f64, f64)>,
    value_at: impl Fn(f64, &mut Noise) -> Option<f64>,
) -> VitalSeries {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15 ^ kind as u64);
    let start = end - Duration::hours(72);
    let mut points = Vec::new();
    let mut at = start + every;
    while at <= end {
        let hours_before_end = (end - at).num_seconds() as f64 / 3600.0;
        if let Some(value) = value_at(hours_before_end, &mut noise) {
            points.push(VitalPoint { at, value });
        }
        at += every;
    }
    VitalSeries {
        kind,
        points,
        target_range,
    }
}

/// Ten seconds of atrial fibrillation at 250 Hz: irregular RR (420–760 ms), no P waves, a
/// fibrillatory baseline. Returns the strip with its true R-peak positions.
fn af_strip(recorded_at: DateTime<Utc>) -> EcgStrip {
    const RATE: f64 = 250.0;
    let n = (10.0 * RATE) as usize;
    let mut noise = Noise(0xD1B5_4A32_D192_ED03);
    let mut peaks = Vec::new();
    let mut t = 0.35;
    while t < 9.8 {
        peaks.push((t * RATE).round() as u64);
        t += 0.59 + 0.17 * noise.next();
    }
    let gauss = |x: f64, mu: f64, sigma: f64| (-((x - mu) / sigma).powi(2) / 2.0).exp();
    let samples_mv = (0..n)
        .map(|i| {
            let x = i as f64 / RATE;
            let fibrillation = 0.04 * (2.0 * std::f64::consts::PI * 6.3 * x).sin()
                + 0.02 * (2.0 * std::f64::consts::PI * 8.9 * x + 1.0).sin();
            let beats: f64 = peaks
                .iter()
                .map(|&p| {
                    let r = p as f64 / RATE;
                    -0.12 * gauss(x, r - 0.022, 0.008) + 1.15 * gauss(x, r, 0.010)
                        - 0.28 * gauss(x, r + 0.024, 0.009)
                        + 0.22 * gauss(x, r + 0.26, 0.045)
                })
                .sum();
            (fibrillation + beats) as f32
        })
        .collect();
    EcgStrip {
        recorded_at,
        lead: "I".into(),
        sample_rate_hz: RATE,
        samples_mv,
        r_peaks: peaks,
    }
}

/// The demo patient at 03:40 JST on Thursday 26 November 2026, twelve minutes after an SpO2 alert.
pub fn demo_input(language: Language) -> HandoverInput {
    let generated_at: DateTime<Utc> =
        DateTime::from_timestamp(1_795_632_000, 0).unwrap_or(DateTime::UNIX_EPOCH); // 2026-11-25T18:40:00Z
    let raised_at = generated_at - Duration::minutes(8);
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();

    let heart_rate = series(
        VitalKind::HeartRate,
        generated_at,
        Duration::minutes(5),
        Some((50.0, 110.0)),
        |h, n| {
            let circadian = 6.0 * (h / 24.0 * std::f64::consts::TAU).sin();
            let rise = if h < 3.0 { (3.0 - h) * 9.0 } else { 0.0 };
            Some((86.0 + circadian + rise + 5.0 * n.next()).round())
        },
    );
    let spo2 = series(
        VitalKind::Spo2,
        generated_at,
        Duration::minutes(5),
        Some((88.0, 92.0)),
        |h, n| {
            // Off the finger for three hours on the afternoon bath day.
            if (40.0..43.0).contains(&h) {
                return None;
            }
            let fall = if h < 0.7 { (0.7 - h) * 8.0 } else { 0.0 };
            Some((90.6 + 0.7 * n.next() - fall).round())
        },
    );
    let temperature = series(
        VitalKind::BodyTemperature,
        generated_at,
        Duration::hours(8),
        Some((35.5, 37.5)),
        |h, n| Some(((36.6 + (72.0 - h) / 72.0 * 1.0 + 0.15 * n.next()) * 10.0).round() / 10.0),
    );
    let systolic = series(
        VitalKind::SystolicBloodPressure,
        generated_at,
        Duration::hours(12),
        Some((100.0, 140.0)),
        |h, n| Some((124.0 - (72.0 - h) / 72.0 * 14.0 + 4.0 * n.next()).round()),
    );
    let weight = series(
        VitalKind::BodyWeight,
        generated_at,
        Duration::hours(24),
        None,
        |h, _| Some(((48.2 + (72.0 - h) / 72.0 * 1.3) * 10.0).round() / 10.0),
    );

    HandoverInput {
        language,
        generated_at,
        patient: PatientDetails {
            id: "p-0002".into(),
            name: "山田 花子".into(),
            name_furigana: "やまだ はなこ".into(),
            date_of_birth: date(1938, 4, 2),
            sex: Sex::Female,
            address: "東京都世田谷区玉川3丁目99-9 グリーンハイツ101".into(),
            map_url: None,
            key_person: Some(KeyPerson {
                name: "山田 太郎".into(),
                relationship: "長男".into(),
                phone: phone("090-0000-1111"),
            }),
            visiting_nurse_station: Some(NurseStation {
                name: "玉川訪問看護ステーション".into(),
                phone: phone("03-5555-0505"),
            }),
            main_diseases: vec![
                "慢性心不全（NYHA III度、EF 35%）".into(),
                "慢性閉塞性肺疾患（COPD、在宅酸素）".into(),
                "永続性心房細動".into(),
                "2型糖尿病".into(),
            ],
            medications: vec![
                Medication {
                    name: "フロセミド錠 20mg".into(),
                    dosage: "1錠 1日1回 朝食後".into(),
                },
                Medication {
                    name: "ビソプロロールフマル酸塩錠 2.5mg".into(),
                    dosage: "1錠 1日1回 朝食後".into(),
                },
                Medication {
                    name: "アピキサバン錠 2.5mg".into(),
                    dosage: "1錠 1日2回 朝夕食後".into(),
                },
                Medication {
                    name: "チオトロピウム吸入".into(),
                    dosage: "1日1回 2吸入".into(),
                },
                Medication {
                    name: "メトホルミン塩酸塩錠 250mg".into(),
                    dosage: "1錠 1日2回 朝夕食後".into(),
                },
            ],
            allergies: Some(vec!["ペニシリン系抗菌薬（発疹）".into()]),
            advance_directive: AdvanceDirective {
                resuscitation: ResuscitationStatus::Dnar,
                wishes: "自宅での看取りを希望。救急搬送は本人・長男と相談のうえ判断。".into(),
                confirmed_on: Some(date(2026, 10, 2)),
            },
            home_oxygen: Some(HomeOxygen {
                flow_l_per_min: 1.0,
                schedule: "24時間（労作時 2 L/分）".into(),
            }),
        },
        primary_clinic: PrimaryClinic {
            name: "玉川訪問診療所".into(),
            director: "鈴木 美和".into(),
            emergency_phone: phone("03-5555-0202"),
        },
        alert: AlertDetails {
            id: "a-20261126-0007".into(),
            raised_at,
            severity: Severity::Critical,
            title: "SpO2 低下".into(),
            reason: "SpO2 85% が5分間持続（目標 88–92%、NEWS2 スケール2）。同時に心拍数 110/分超。"
                .into(),
        },
        vitals: vec![heart_rate, spo2, temperature, systolic, weight],
        ecg: Some(af_strip(raised_at - Duration::minutes(2))),
        earlier_alerts: vec![
            EarlierAlert {
                raised_at: generated_at - Duration::days(5) - Duration::hours(7),
                severity: Severity::Warning,
                title: "SpO2 低下（87%）".into(),
                outcome: "訪問看護師が訪問、吸入後 91% に改善".into(),
            },
            EarlierAlert {
                raised_at: generated_at - Duration::days(13),
                severity: Severity::Warning,
                title: "体重増加（3日で +2.1 kg）".into(),
                outcome: "主治医がフロセミドを 20mg に増量".into(),
            },
            EarlierAlert {
                raised_at: generated_at - Duration::days(26) - Duration::hours(2),
                severity: Severity::Critical,
                title: "頻脈（128/分）".into(),
                outcome: "当番医が電話対応、翌朝主治医へ申し送り".into(),
            },
        ],
    }
}
