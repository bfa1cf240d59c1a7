//! What a handover summary is rendered from: plain data, gathered by the caller from the registry,
//! the alert and the stored series, so that rendering is a pure function.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::oncall::rota::PhoneNumber;

pub use crate::language::Language;

/// Everything on one handover page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverInput {
    /// Page language.
    #[serde(default)]
    pub language: Language,
    /// When the page is produced; ages and the 72-hour window are counted to this instant.
    pub generated_at: DateTime<Utc>,
    /// The patient.
    pub patient: PatientDetails,
    /// The patient's own clinic.
    pub primary_clinic: PrimaryClinic,
    /// The alert being handed over.
    pub alert: AlertDetails,
    /// Vital-sign series of the last 72 hours (points outside the window are not drawn).
    pub vitals: Vec<VitalSeries>,
    /// The latest ECG strip, if one was recorded.
    pub ecg: Option<EcgStrip>,
    /// Earlier alerts, newest first.
    pub earlier_alerts: Vec<EarlierAlert>,
}

/// Sex as recorded in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// 女性.
    Female,
    /// 男性.
    Male,
    /// Recorded otherwise.
    Other,
}

/// The family member or carer to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPerson {
    /// Name.
    pub name: String,
    /// Relationship to the patient (長女, 夫 …).
    pub relationship: String,
    /// Number to call.
    pub phone: PhoneNumber,
}

/// The visiting-nurse station (訪問看護ステーション) that sees the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NurseStation {
    /// Name.
    pub name: String,
    /// Its 24-hour number.
    pub phone: PhoneNumber,
}

/// One current medication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    /// Drug name with strength (ビソプロロール錠 2.5mg).
    pub name: String,
    /// How it is taken (1錠 1日1回 朝食後).
    pub dosage: String,
}

/// Resuscitation decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResuscitationStatus {
    /// Do not attempt resuscitation (DNAR).
    Dnar,
    /// Full resuscitation.
    FullCode,
    /// Not yet discussed or not recorded.
    NotDiscussed,
}

/// Advance directive (ACP / 人生会議 outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceDirective {
    /// DNAR or not.
    pub resuscitation: ResuscitationStatus,
    /// The patient's wishes in their words (place of death, hospital transfer …).
    pub wishes: String,
    /// When it was last confirmed.
    pub confirmed_on: Option<NaiveDate>,
}

/// Home oxygen therapy (在宅酸素療法).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeOxygen {
    /// Prescribed flow at rest, L/min (UCUM `L/min`).
    pub flow_l_per_min: f64,
    /// When it is used (24時間, 就寝時, 労作時 …).
    pub schedule: String,
}

/// The patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientDetails {
    /// Registry id.
    pub id: String,
    /// Full name in kanji.
    pub name: String,
    /// Reading in hiragana (ふりがな).
    pub name_furigana: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Postal address as written on a visit.
    pub address: String,
    /// A map link from the registry (http or https only); built from the address when absent.
    pub map_url: Option<String>,
    /// Family member or carer.
    pub key_person: Option<KeyPerson>,
    /// Visiting-nurse station.
    pub visiting_nurse_station: Option<NurseStation>,
    /// Main diseases, most relevant first.
    pub main_diseases: Vec<String>,
    /// Current medications.
    pub medications: Vec<Medication>,
    /// Allergies: `None` when never recorded, an empty list when none are known (NKDA).
    pub allergies: Option<Vec<String>>,
    /// Advance directive.
    pub advance_directive: AdvanceDirective,
    /// Home oxygen, when prescribed.
    pub home_oxygen: Option<HomeOxygen>,
}

/// The patient's own clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimaryClinic {
    /// Name.
    pub name: String,
    /// Director (the attending doctor).
    pub director: String,
    /// 24-hour emergency number.
    pub emergency_phone: PhoneNumber,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Wake the on-call doctor.
    Critical,
    /// Needs a look within the hour.
    Warning,
    /// For the record.
    Info,
}

/// The alert being handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDetails {
    /// Alert id.
    pub id: String,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// Severity.
    pub severity: Severity,
    /// Short title (SpO2 低下).
    pub title: String,
    /// Why it fired: the rule and the values that met it.
    pub reason: String,
}

/// An earlier alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlierAlert {
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// How it ended (acknowledged by …, visited, resolved).
    pub outcome: String,
}

/// Which vital sign a series holds; fixes its label and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VitalKind {
    /// Heart (pulse) rate, /min.
    HeartRate,
    /// Oxygen saturation, %.
    Spo2,
    /// Respiratory rate, /min.
    RespiratoryRate,
    /// Body temperature, °C.
    BodyTemperature,
    /// Systolic blood pressure, mmHg.
    SystolicBloodPressure,
    /// Body weight, kg.
    BodyWeight,
}

impl VitalKind {
    /// UCUM code of the values.
    pub fn ucum(self) -> &'static str {
        match self {
            Self::HeartRate | Self::RespiratoryRate => "/min",
            Self::Spo2 => "%",
            Self::BodyTemperature => "Cel",
            Self::SystolicBloodPressure => "mm[Hg]",
            Self::BodyWeight => "kg",
        }
    }

    /// The unit as printed.
    pub(super) fn display_unit(self) -> &'static str {
        match self {
            Self::HeartRate | Self::RespiratoryRate => "/min",
            Self::Spo2 => "%",
            Self::BodyTemperature => "°C",
            Self::SystolicBloodPressure => "mmHg",
            Self::BodyWeight => "kg",
        }
    }

    /// Decimals worth printing.
    pub(super) fn decimals(self) -> usize {
        match self {
            Self::BodyTemperature | Self::BodyWeight => 1,
            _ => 0,
        }
    }
}

/// One measured value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitalPoint {
    /// Measurement time.
    pub at: DateTime<Utc>,
    /// Value in the kind's unit ([`VitalKind::ucum`]).
    pub value: f64,
}

/// A vital-sign series and the range the patient's rules call normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitalSeries {
    /// Which vital sign.
    pub kind: VitalKind,
    /// Points in time order.
    pub points: Vec<VitalPoint>,
    /// The patient's target range (low, high), shaded on the plot; values outside are marked.
    pub target_range: Option<(f64, f64)>,
}

/// An ECG strip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcgStrip {
    /// Time of the first sample.
    pub recorded_at: DateTime<Utc>,
    /// Lead name as the device reports it.
    pub lead: String,
    /// Samples per second (UCUM `Hz`).
    pub sample_rate_hz: f64,
    /// Samples in millivolts.
    pub samples_mv: Vec<f32>,
    /// Detected R peaks, as sample indices into `samples_mv`.
    pub r_peaks: Vec<u64>,
}
