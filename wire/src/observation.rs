//! Vital-sign observations: what was measured, with its LOINC code and UCUM unit, and when.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::MAX_OBSERVATIONS_PER_BATCH;
use crate::{DeviceRef, WireError};

/// UCUM units used by this contract. On the wire each is its UCUM code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ucum {
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "/min")]
    PerMinute,
    #[serde(rename = "mm[Hg]")]
    MillimetreOfMercury,
    #[serde(rename = "Cel")]
    DegreeCelsius,
    #[serde(rename = "kg")]
    Kilogram,
}

impl Ucum {
    /// The UCUM code, e.g. `mm[Hg]`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Percent => "%",
            Self::PerMinute => "/min",
            Self::MillimetreOfMercury => "mm[Hg]",
            Self::DegreeCelsius => "Cel",
            Self::Kilogram => "kg",
        }
    }
}

/// What an observation measures. Each kind fixes its LOINC code and its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VitalSign {
    /// Oxygen saturation by pulse oximetry (LOINC 59408-5; 2708-6 is read as the same).
    Spo2,
    /// Pulse rate measured by the oximeter (LOINC 8889-8).
    PulseRateOximetry,
    /// Systolic blood pressure (LOINC 8480-6).
    SystolicBp,
    /// Diastolic blood pressure (LOINC 8462-4).
    DiastolicBp,
    /// Mean arterial pressure (LOINC 8478-0).
    MeanArterialPressure,
    /// Body temperature (LOINC 8310-5).
    BodyTemperature,
    /// Body weight (LOINC 29463-7).
    BodyWeight,
    /// Heart rate, e.g. from a heart-rate strap or a BP cuff's pulse (LOINC 8867-4).
    HeartRate,
}

impl VitalSign {
    pub const ALL: [Self; 8] = [
        Self::Spo2,
        Self::PulseRateOximetry,
        Self::SystolicBp,
        Self::DiastolicBp,
        Self::MeanArterialPressure,
        Self::BodyTemperature,
        Self::BodyWeight,
        Self::HeartRate,
    ];

    /// The LOINC code written on the wire.
    pub const fn loinc(self) -> &'static str {
        match self {
            Self::Spo2 => "59408-5",
            Self::PulseRateOximetry => "8889-8",
            Self::SystolicBp => "8480-6",
            Self::DiastolicBp => "8462-4",
            Self::MeanArterialPressure => "8478-0",
            Self::BodyTemperature => "8310-5",
            Self::BodyWeight => "29463-7",
            Self::HeartRate => "8867-4",
        }
    }

    /// Reads a LOINC code, accepting 2708-6 (oxygen saturation in arterial blood) as SpO2,
    /// which is how the FHIR vital-signs profile codes it beside 59408-5.
    pub fn from_loinc(code: &str) -> Option<Self> {
        if code == "2708-6" {
            return Some(Self::Spo2);
        }
        Self::ALL.into_iter().find(|v| v.loinc() == code)
    }

    pub const fn unit(self) -> Ucum {
        match self {
            Self::Spo2 => Ucum::Percent,
            Self::PulseRateOximetry | Self::HeartRate => Ucum::PerMinute,
            Self::SystolicBp | Self::DiastolicBp | Self::MeanArterialPressure => {
                Ucum::MillimetreOfMercury
            }
            Self::BodyTemperature => Ucum::DegreeCelsius,
            Self::BodyWeight => Ucum::Kilogram,
        }
    }

    /// A short English name, for messages and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Spo2 => "SpO2",
            Self::PulseRateOximetry => "pulse rate",
            Self::SystolicBp => "systolic blood pressure",
            Self::DiastolicBp => "diastolic blood pressure",
            Self::MeanArterialPressure => "mean arterial pressure",
            Self::BodyTemperature => "body temperature",
            Self::BodyWeight => "body weight",
            Self::HeartRate => "heart rate",
        }
    }

    /// The range a living patient's value can take, in [`Self::unit`]. A value outside it is a
    /// device or decoding fault, not a clinical finding. These are not alert thresholds.
    pub const fn possible_range(self) -> (f64, f64) {
        match self {
            Self::Spo2 => (0.0, 100.0),
            Self::PulseRateOximetry | Self::HeartRate => (15.0, 350.0),
            Self::SystolicBp => (30.0, 300.0),
            Self::DiastolicBp => (10.0, 250.0),
            Self::MeanArterialPressure => (20.0, 270.0),
            Self::BodyTemperature => (25.0, 45.0),
            Self::BodyWeight => (0.5, 350.0),
        }
    }
}

impl Serialize for VitalSign {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.loinc())
    }
}

impl<'de> Deserialize<'de> for VitalSign {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_loinc(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown LOINC code {code:?}")))
    }
}

/// Something about an observation's time that the server should know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFlag {
    /// The device gave no time; `measured_at` is the gateway's receive time.
    NoDeviceTime,
    /// The device's time was implausible (in the future, or before the device could have existed);
    /// `measured_at` is the gateway's receive time and the device's reading is kept in `device_time`.
    ImplausibleDeviceTime,
    /// The reading was stored on the device and uploaded later (e.g. a cuff's memory).
    StoredOnDevice,
}

/// One measured value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// What was measured; on the wire its LOINC code.
    #[serde(rename = "code")]
    pub vital: VitalSign,
    /// The UCUM unit of `value`; must be the vital sign's unit.
    pub unit: Ucum,
    pub value: f64,
    /// When the measurement was taken, as a UTC instant: the device's time read as Asia/Tokyo
    /// local time, or the receive time when the device gave none or an implausible one.
    pub measured_at: DateTime<Utc>,
    /// The device's own time stamp exactly as it reported it (zone-less local time), kept beside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time: Option<NaiveDateTime>,
    /// When the gateway received it from the device.
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_flags: Vec<TimeFlag>,
    /// The user slot on a shared device (BP cuffs and scales have 1–4 users), when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_user: Option<u8>,
}

impl Observation {
    /// Checks the unit and that the value is a number. Range checks are [`Self::check_possible`].
    pub fn validate(&self) -> Result<(), WireError> {
        if self.unit != self.vital.unit() {
            return Err(WireError::UnitMismatch {
                vital: self.vital.name(),
                expected: self.vital.unit().code(),
                got: self.unit.code().to_owned(),
            });
        }
        if !self.value.is_finite() {
            return Err(WireError::NotFinite {
                what: self.vital.name(),
                value: self.value,
            });
        }
        Ok(())
    }

    /// Refuses a value no living patient can have (see [`VitalSign::possible_range`]).
    pub fn check_possible(&self) -> Result<(), WireError> {
        let (min, max) = self.vital.possible_range();
        if (min..=max).contains(&self.value) {
            Ok(())
        } else {
            Err(WireError::Implausible {
                vital: self.vital.name(),
                value: self.value,
                unit: self.vital.unit().code(),
                min,
                max,
            })
        }
    }
}

/// Observations taken by one device, sent under one `(epoch, seq)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationBatch {
    pub device: DeviceRef,
    /// Whether the gateway's clock was NTP-synchronised when it received these.
    pub clock_synced: bool,
    pub observations: Vec<Observation>,
}

impl ObservationBatch {
    pub(crate) fn validate(&self) -> Result<(), WireError> {
        self.device.validate()?;
        if self.observations.is_empty() {
            return Err(WireError::Empty {
                what: "observation batch",
            });
        }
        if self.observations.len() > MAX_OBSERVATIONS_PER_BATCH {
            return Err(WireError::TooMany {
                what: "observations",
                count: self.observations.len(),
                limit: MAX_OBSERVATIONS_PER_BATCH,
            });
        }
        self.observations.iter().try_for_each(Observation::validate)
    }
}
