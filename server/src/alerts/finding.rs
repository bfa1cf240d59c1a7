//! What an alert found, as data: the engine states the finding once, and each reader phrases it in
//! its own language (the dashboards in Japanese or English, the night doctor's handover page, the
//! operator's log in English).
//!
//! Values keep their units: a threshold finding carries the rule's UCUM code, and phrasing turns it
//! into the symbol clinicians read (`mm[Hg]` → mmHg, `Cel` → ℃).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::rules::{DeviceKind, Measure, Op};
use crate::language::Language;

/// Why an alert was raised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A threshold rule held: `value op limit`, both in `unit` (UCUM).
    Threshold {
        measure: Measure,
        value: f64,
        unit: String,
        op: Op,
        limit: f64,
    },
    /// The longest RR interval of a second of usable ECG.
    EcgPause {
        longest_rr_ms: u32,
    },
    Asystole,
    VentricularFibrillation,
    NewOnsetAtrialFibrillation,
    LeadOff,
    PoorEcgSignal,
    /// Weight gained over the rule's window.
    WeightGain {
        kg: f64,
        days: u32,
    },
    /// Short and long moving averages of weight diverge (heart-failure decompensation).
    WeightTrend {
        kg: f64,
    },
    /// Temperature above the patient's own baseline.
    TemperatureAboveBaseline {
        cel: f64,
    },
    /// SpO2 baseline fallen below the patient's own.
    Spo2BaselineFalling {
        percent: f64,
    },
    /// A scheduled reading not taken (adherence).
    MissedReading {
        measure: Measure,
    },
    /// A scheduled reading not received because of a technical condition (its alert key).
    ReadingNotReceived {
        measure: Measure,
        cause: String,
    },
    DeviceError {
        device: DeviceKind,
        code: String,
    },
    BatteryLow {
        device: DeviceKind,
        percent: f64,
    },
    /// The alert with this key reached nobody.
    NotificationFailed {
        alert_key: String,
    },
    OutboxBacklog {
        readings: u32,
    },
    ClockOff {
        seconds: f64,
    },
    GatewayOffline,
}

impl Finding {
    /// The finding in `language`, for a clinician's screen or page.
    pub fn phrase(&self, language: Language) -> String {
        let ja = language == Language::Ja;
        let pick = |ja_text: String, en_text: String| if ja { ja_text } else { en_text };
        match self {
            Self::Threshold {
                measure,
                value,
                unit,
                op,
                limit,
            } => {
                let name = measure_label(*measure, language);
                let unit = unit_symbol(unit, language);
                let value = trim(*value);
                let limit = trim(*limit);
                pick(
                    format!("{name} {value} {unit}（基準 {} {limit}）", op_symbol(*op)),
                    format!("{name} {value} {unit} (limit {} {limit})", op_symbol(*op)),
                )
            }
            Self::EcgPause { longest_rr_ms } => {
                let s = f64::from(*longest_rr_ms) / 1000.0;
                pick(
                    format!("心拍の休止 {s:.1} 秒"),
                    format!("pause of {s:.1} s"),
                )
            }
            Self::Asystole => pick("心静止".into(), "asystole".into()),
            Self::VentricularFibrillation => pick(
                "心室粗動／心室細動".into(),
                "ventricular flutter / fibrillation".into(),
            ),
            Self::NewOnsetAtrialFibrillation => pick(
                "新規の心房細動".into(),
                "new-onset atrial fibrillation".into(),
            ),
            Self::LeadOff => pick("心電図の電極外れ".into(), "ECG lead off".into()),
            Self::PoorEcgSignal => pick(
                "心電図の信号不良（解析不可）".into(),
                "ECG signal too poor to analyse".into(),
            ),
            Self::WeightGain { kg, days } => pick(
                format!("体重 {days}日で {kg:.1} kg 増加"),
                format!("weight gain {kg:.1} kg in {days} days"),
            ),
            Self::WeightTrend { kg } => pick(
                format!("体重の移動平均が {kg:.1} kg 乖離（増加傾向）"),
                format!("weight moving averages diverge by {kg:.1} kg"),
            ),
            Self::TemperatureAboveBaseline { cel } => pick(
                format!("体温が平常より {cel:.1} ℃ 高い"),
                format!("temperature {cel:.1} °C above the patient's baseline"),
            ),
            Self::Spo2BaselineFalling { percent } => pick(
                format!("SpO₂ の平常値が {percent:.1} % 低下"),
                format!("SpO₂ baseline fallen by {percent:.1} %"),
            ),
            Self::MissedReading { measure } => {
                let name = measure_label(*measure, language);
                pick(
                    format!("予定の{name}測定がありません"),
                    format!("scheduled {name} reading missed"),
                )
            }
            Self::ReadingNotReceived { measure, cause } => {
                let name = measure_label(*measure, language);
                let cause = cause_label(cause, language);
                pick(
                    format!("{name}が届いていません（{cause}）"),
                    format!("{name} reading not received ({cause})"),
                )
            }
            Self::DeviceError { device, code } => {
                let device = device_label(*device, language);
                pick(
                    format!("{device}のエラー {code}"),
                    format!("{device} reported error {code}"),
                )
            }
            Self::BatteryLow { device, percent } => {
                let device = device_label(*device, language);
                pick(
                    format!("{device}の電池残量 {percent:.0} %"),
                    format!("{device} battery {percent:.0} %"),
                )
            }
            Self::NotificationFailed { alert_key } => pick(
                format!("アラート {alert_key} の通知が届いていません"),
                format!("notification of {alert_key} not delivered"),
            ),
            Self::OutboxBacklog { readings } => pick(
                format!("ゲートウェイに未送信の測定値 {readings} 件"),
                format!("{readings} readings waiting at the gateway"),
            ),
            Self::ClockOff { seconds } => pick(
                format!("ゲートウェイの時計が {seconds:.0} 秒ずれています"),
                format!("gateway clock off by {seconds:.0} s"),
            ),
            Self::GatewayOffline => pick(
                "ゲートウェイ切断（Last Will）".into(),
                "gateway offline (last will)".into(),
            ),
        }
    }

    /// A short title for a list or a page heading ("SpO₂ 低値", "low SpO₂").
    pub fn title(&self, language: Language) -> String {
        let ja = language == Language::Ja;
        let pick = |ja_text: &str, en_text: &str| (if ja { ja_text } else { en_text }).to_owned();
        match self {
            Self::Threshold { measure, op, .. } => {
                let name = measure_label(*measure, language);
                match (op, ja) {
                    (Op::Lt | Op::Le, true) => format!("{name} 低値"),
                    (Op::Lt | Op::Le, false) => format!("low {name}"),
                    (Op::Gt | Op::Ge, true) => format!("{name} 高値"),
                    (Op::Gt | Op::Ge, false) => format!("high {name}"),
                }
            }
            Self::EcgPause { .. } => pick("心拍の休止", "ECG pause"),
            Self::WeightGain { .. } | Self::WeightTrend { .. } => {
                pick("体重増加（心不全）", "weight gain (heart failure)")
            }
            Self::TemperatureAboveBaseline { .. } => pick("体温上昇", "rising temperature"),
            Self::Spo2BaselineFalling { .. } => pick("SpO₂ 低下傾向", "falling SpO₂ baseline"),
            Self::MissedReading { .. } => pick("測定忘れ", "missed reading"),
            Self::ReadingNotReceived { .. } => pick("測定値未着", "reading not received"),
            Self::DeviceError { .. } => pick("機器エラー", "device error"),
            Self::BatteryLow { .. } => pick("電池残量低下", "low battery"),
            Self::NotificationFailed { .. } => pick("通知不達", "notification failed"),
            Self::OutboxBacklog { .. } => pick("未送信データ滞留", "gateway backlog"),
            Self::ClockOff { .. } => pick("時計のずれ", "gateway clock off"),
            // The phrase is already a title.
            Self::Asystole
            | Self::VentricularFibrillation
            | Self::NewOnsetAtrialFibrillation
            | Self::LeadOff
            | Self::PoorEcgSignal
            | Self::GatewayOffline => self.phrase(language),
        }
    }
}

/// English, for logs, the webhook's text and stored alert details.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.phrase(Language::En))
    }
}

fn measure_label(measure: Measure, language: Language) -> &'static str {
    let ja = language == Language::Ja;
    match measure {
        Measure::Spo2 => "SpO₂",
        Measure::PulseRate if ja => "脈拍数",
        Measure::PulseRate => "pulse rate",
        Measure::EcgHeartRate if ja => "心拍数（心電図）",
        Measure::EcgHeartRate => "heart rate (ECG)",
        Measure::SystolicBp if ja => "収縮期血圧",
        Measure::SystolicBp => "systolic BP",
        Measure::BodyTemperature if ja => "体温",
        Measure::BodyTemperature => "temperature",
        Measure::BodyWeight if ja => "体重",
        Measure::BodyWeight => "weight",
    }
}

fn device_label(device: DeviceKind, language: Language) -> &'static str {
    let ja = language == Language::Ja;
    match device {
        DeviceKind::Ecg if ja => "心電計",
        DeviceKind::Ecg => "ECG recorder",
        DeviceKind::Oximeter if ja => "パルスオキシメータ",
        DeviceKind::Oximeter => "pulse oximeter",
        DeviceKind::BpCuff if ja => "血圧計",
        DeviceKind::BpCuff => "BP cuff",
        DeviceKind::Thermometer if ja => "体温計",
        DeviceKind::Thermometer => "thermometer",
        DeviceKind::Scale if ja => "体重計",
        DeviceKind::Scale => "scale",
        DeviceKind::Gateway if ja => "ゲートウェイ",
        DeviceKind::Gateway => "gateway",
    }
}

/// A technical alarm's key (`battery_low/oximeter`) as the cause of a missing reading.
fn cause_label(cause: &str, language: Language) -> String {
    let ja = language == Language::Ja;
    let (kind, device) = cause.split_once('/').unwrap_or((cause, ""));
    let device = DeviceKind::ALL
        .into_iter()
        .find(|d| d.as_str() == device)
        .map_or("", |d| device_label(d, language));
    match kind {
        "gateway_offline" if ja => "ゲートウェイ切断".into(),
        "gateway_offline" => "gateway offline".into(),
        "battery_low" if ja => format!("{device}の電池切れ"),
        "battery_low" => format!("{device} battery low"),
        "device_error" if ja => format!("{device}のエラー"),
        "device_error" => format!("{device} error"),
        other => other.to_owned(),
    }
}

/// The symbol clinicians read for a UCUM code.
fn unit_symbol(ucum: &str, language: Language) -> &str {
    match ucum {
        "mm[Hg]" => "mmHg",
        "Cel" => "℃",
        "/min" if language == Language::Ja => "回/分",
        other => other,
    }
}

fn op_symbol(op: Op) -> &'static str {
    match op {
        Op::Lt => "<",
        Op::Le => "≤",
        Op::Gt => ">",
        Op::Ge => "≥",
    }
}

/// A reading as the device gave it: no trailing `.0` on whole numbers.
fn trim(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_reads_in_both_languages_with_clinical_units() {
        let low_bp = Finding::Threshold {
            measure: Measure::SystolicBp,
            value: 82.0,
            unit: "mm[Hg]".into(),
            op: Op::Lt,
            limit: 90.0,
        };
        assert_eq!(
            low_bp.phrase(Language::Ja),
            "収縮期血圧 82 mmHg（基準 < 90）"
        );
        assert_eq!(low_bp.to_string(), "systolic BP 82 mmHg (limit < 90)");
        assert_eq!(low_bp.title(Language::Ja), "収縮期血圧 低値");
        assert_eq!(low_bp.title(Language::En), "low systolic BP");
        let fever = Finding::Threshold {
            measure: Measure::BodyTemperature,
            value: 38.4,
            unit: "Cel".into(),
            op: Op::Ge,
            limit: 38.0,
        };
        assert_eq!(fever.phrase(Language::Ja), "体温 38.4 ℃（基準 ≥ 38）");
    }

    #[test]
    fn a_missing_reading_names_its_technical_cause() {
        let f = Finding::ReadingNotReceived {
            measure: Measure::Spo2,
            cause: "battery_low/oximeter".into(),
        };
        assert_eq!(
            f.phrase(Language::Ja),
            "SpO₂が届いていません（パルスオキシメータの電池切れ）"
        );
        assert_eq!(
            f.to_string(),
            "SpO₂ reading not received (pulse oximeter battery low)"
        );
    }

    #[test]
    fn findings_survive_the_alert_snapshot_json() {
        let f = Finding::EcgPause {
            longest_rr_ms: 4500,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"kind":"ecg_pause","longest_rr_ms":4500}"#);
        assert_eq!(serde_json::from_str::<Finding>(&json).unwrap(), f);
        assert_eq!(f.phrase(Language::Ja), "心拍の休止 4.5 秒");
    }
}
