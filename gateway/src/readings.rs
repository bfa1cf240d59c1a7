//! Turns decoded notifications into wire messages: observations with their timing, ECG chunks,
//! and device status. One [`Extractor`] per connected device keeps the little state this needs
//! (ECG chunking, the rate limit on streamed numerics, BP2 result edges).
//!
//! Values no living patient can have (the wire contract's `possible_range`) are rejected, counted
//! by reason and logged with the bytes in hex; everything else is kept, including readings whose
//! device time is implausible (flagged, timed at reception).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use mimamori_wire::{
    Body, DeviceRef, DeviceStatus, EcgChunk, Observation, ObservationBatch,
    TimeFlag as WireTimeFlag, VitalSign,
};

use crate::devices::Decoded;
use crate::devices::date_time::{TimeFlag, Timing};
use crate::devices::ieee11073::Value;
use crate::devices::viatom::bp2::{Bp2Block, Bp2Status};

/// A streamed numeric (continuous PLX, Checkme live SpO2/HR) is kept at most this often.
pub const STREAM_NUMERIC_INTERVAL: Duration = Duration::seconds(60);
/// ECG samples are sent in chunks of about this length.
pub const ECG_CHUNK: Duration = Duration::seconds(1);
/// A device time this much older than reception means the reading came from the device's memory.
const STORED_AFTER: Duration = Duration::minutes(10);

/// Counts of rejected input by reason, for logs and the status report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejections(pub BTreeMap<&'static str, u64>);

impl Rejections {
    /// Counts one rejection.
    pub fn count(&mut self, reason: &'static str) {
        *self.0.entry(reason).or_default() += 1;
    }

    /// Total rejections.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

#[derive(Debug)]
struct EcgBuffer {
    stream_id: u64,
    rate_hz: f64,
    uv_per_count: f64,
    next_index: u64,
    first_at: Option<DateTime<Utc>>,
    samples: Vec<i16>,
    lead_off: bool,
}

/// Per-device conversion state.
#[derive(Debug)]
pub struct Extractor {
    device: DeviceRef,
    clock_synced: bool,
    last_numeric: BTreeMap<&'static str, DateTime<Utc>>,
    ecg: Option<EcgBuffer>,
    bp2_was_done: bool,
    last_battery: Option<u8>,
    /// Rejections so far.
    pub rejections: Rejections,
}

fn wire_flags(t: &Timing, stored: bool) -> Vec<WireTimeFlag> {
    let mut flags = Vec::new();
    for f in &t.flags {
        let w = match f {
            TimeFlag::DeviceTimeUnknown => WireTimeFlag::NoDeviceTime,
            _ => WireTimeFlag::ImplausibleDeviceTime,
        };
        if !flags.contains(&w) {
            flags.push(w);
        }
    }
    if stored {
        flags.push(WireTimeFlag::StoredOnDevice);
    }
    flags
}

impl Extractor {
    /// State for one device connection; `stream_id` names its ECG recording.
    pub fn new(device: DeviceRef, clock_synced: bool, stream_id: u64) -> Self {
        Self {
            device,
            clock_synced,
            last_numeric: BTreeMap::new(),
            ecg: None,
            bp2_was_done: false,
            last_battery: None,
            rejections: Rejections::default(),
        }
        .with_stream(stream_id)
    }

    fn with_stream(mut self, stream_id: u64) -> Self {
        self.ecg = Some(EcgBuffer {
            stream_id,
            rate_hz: 0.0,
            uv_per_count: 0.0,
            next_index: 0,
            first_at: None,
            samples: Vec::new(),
            lead_off: false,
        });
        self
    }

    fn obs(
        &mut self,
        out: &mut Vec<Observation>,
        vital: VitalSign,
        value: Option<f64>,
        timing: &Timing,
        user: Option<u8>,
    ) {
        let Some(value) = value else { return };
        let stored =
            timing.device_time_used() && timing.received_at - timing.measured_at > STORED_AFTER;
        let o = Observation {
            vital,
            unit: vital.unit(),
            value,
            measured_at: timing.measured_at,
            device_time: timing.device_time.and_then(|d| d.to_naive()),
            received_at: timing.received_at,
            time_flags: wire_flags(timing, stored),
            device_user: user,
        };
        match o.validate().and_then(|()| o.check_possible()) {
            Ok(()) => out.push(o),
            Err(error) => {
                self.rejections.count("impossible_value");
                tracing::warn!(device_id = %self.device.id, vital = vital.name(), value, error = %error, "Impossible value rejected.");
            }
        }
    }

    /// An SpO2 reading and the oximeter's pulse rate, timed alike.
    fn spo2_pulse(
        &mut self,
        obs: &mut Vec<Observation>,
        spo2: Option<f64>,
        pulse: Option<f64>,
        timing: &Timing,
    ) {
        self.obs(obs, VitalSign::Spo2, spo2, timing, None);
        self.obs(obs, VitalSign::PulseRateOximetry, pulse, timing, None);
    }

    /// A streamed SpO2 / pulse pair, kept when the sensor is worn and the rate limit allows.
    fn oximetry(
        &mut self,
        kind: &'static str,
        obs: &mut Vec<Observation>,
        worn: bool,
        spo2: Option<u8>,
        pulse: Option<u16>,
        now: &Timing,
    ) {
        if worn && spo2.is_some() && self.due(kind, now.received_at) {
            self.obs(obs, VitalSign::Spo2, spo2.map(f64::from), now, None);
            self.obs(
                obs,
                VitalSign::PulseRateOximetry,
                pulse.map(f64::from),
                now,
                None,
            );
        }
    }

    /// Whether a streamed numeric may be kept now (rate limit per kind).
    fn due(&mut self, kind: &'static str, at: DateTime<Utc>) -> bool {
        match self.last_numeric.get(kind) {
            Some(last) if at - *last < STREAM_NUMERIC_INTERVAL => false,
            _ => {
                self.last_numeric.insert(kind, at);
                true
            }
        }
    }

    fn status(
        &mut self,
        out: &mut Vec<Body>,
        at: DateTime<Utc>,
        battery: Option<u8>,
        lead_off: Option<bool>,
    ) {
        if battery.is_some() && battery == self.last_battery && lead_off.is_none() {
            return;
        }
        self.last_battery = battery.or(self.last_battery);
        out.push(Body::DeviceStatus(DeviceStatus {
            device: self.device.clone(),
            at,
            connected: true,
            battery_percent: battery,
            lead_off,
            signal_quality: None,
            firmware: None,
        }));
    }

    fn push_ecg(
        &mut self,
        out: &mut Vec<Body>,
        samples: &[i16],
        rate_hz: f64,
        uv_per_count: f64,
        received_at: DateTime<Utc>,
        lead_off: bool,
    ) {
        let Some(buf) = self.ecg.as_mut() else { return };
        if buf.samples.is_empty() {
            // The first sample of the chunk was taken one chunk-length before these arrived.
            let offset = Duration::microseconds((samples.len() as f64 / rate_hz * 1e6) as i64);
            buf.first_at = Some(received_at - offset);
        }
        buf.rate_hz = rate_hz;
        buf.uv_per_count = uv_per_count;
        buf.lead_off |= lead_off;
        buf.samples.extend_from_slice(samples);
        if buf.samples.len() as f64 >= rate_hz * ECG_CHUNK.num_milliseconds() as f64 / 1000.0 {
            self.flush_ecg(out, received_at);
        }
    }

    /// Sends any buffered ECG samples (call when the device disconnects).
    pub fn flush_ecg(&mut self, out: &mut Vec<Body>, received_at: DateTime<Utc>) {
        let Some(buf) = self.ecg.as_mut() else { return };
        if buf.samples.is_empty() {
            return;
        }
        let samples = std::mem::take(&mut buf.samples);
        let n = samples.len() as u64;
        out.push(Body::Ecg(EcgChunk {
            device: self.device.clone(),
            lead: "I".into(),
            sample_rate_hz: buf.rate_hz,
            uv_per_count: buf.uv_per_count,
            stream_id: buf.stream_id,
            first_sample_index: buf.next_index,
            first_sample_at: buf.first_at.unwrap_or(received_at),
            device_time: None,
            received_at,
            clock_synced: self.clock_synced,
            lead_off: std::mem::take(&mut buf.lead_off),
            samples,
        }));
        buf.next_index += n;
    }

    /// Converts one decoded notification received at `received_at` into wire bodies.
    pub fn extract(&mut self, decoded: &Decoded, received_at: DateTime<Utc>) -> Vec<Body> {
        let mut bodies = Vec::new();
        let mut obs = Vec::new();
        let now = Timing::from_device(None, received_at);
        let num = |v: Value| v.number();
        match decoded {
            Decoded::BloodPressure(bp) => {
                let t = Timing::from_device(bp.time_stamp, received_at);
                self.obs(
                    &mut obs,
                    VitalSign::SystolicBp,
                    num(bp.systolic_mmhg),
                    &t,
                    bp.user_id,
                );
                self.obs(
                    &mut obs,
                    VitalSign::DiastolicBp,
                    num(bp.diastolic_mmhg),
                    &t,
                    bp.user_id,
                );
                self.obs(
                    &mut obs,
                    VitalSign::MeanArterialPressure,
                    num(bp.mean_arterial_mmhg),
                    &t,
                    bp.user_id,
                );
                self.obs(
                    &mut obs,
                    VitalSign::HeartRate,
                    bp.pulse_rate_per_min.and_then(num),
                    &t,
                    bp.user_id,
                );
            }
            Decoded::Temperature(t) => {
                let timing = Timing::from_device(t.time_stamp, received_at);
                self.obs(
                    &mut obs,
                    VitalSign::BodyTemperature,
                    num(t.temperature_cel),
                    &timing,
                    None,
                );
            }
            Decoded::Weight(w) => {
                let timing = Timing::from_device(w.time_stamp, received_at);
                self.obs(
                    &mut obs,
                    VitalSign::BodyWeight,
                    w.weight_kg,
                    &timing,
                    w.user_id,
                );
            }
            Decoded::PlxSpot(s) => {
                let mut timing = Timing::from_device(s.time_stamp, received_at);
                if s.device_clock_not_set {
                    timing = timing.distrust(TimeFlag::DeviceClockNotSet);
                }
                if !s.device_status.as_ref().is_some_and(|d| d.sensor_off()) {
                    self.spo2_pulse(
                        &mut obs,
                        num(s.reading.spo2_percent),
                        num(s.reading.pulse_rate_per_min),
                        &timing,
                    );
                }
            }
            Decoded::PlxContinuous(c) => {
                let off = c.device_status.as_ref().is_some_and(|d| d.sensor_off());
                if off {
                    self.status(&mut bodies, received_at, None, Some(true));
                } else if self.due("plx", received_at) {
                    self.spo2_pulse(
                        &mut obs,
                        num(c.normal.spo2_percent),
                        num(c.normal.pulse_rate_per_min),
                        &now,
                    );
                }
            }
            Decoded::HeartRate(hr) => {
                if self.due("hr", received_at) {
                    self.obs(
                        &mut obs,
                        VitalSign::HeartRate,
                        Some(f64::from(hr.heart_rate_per_min)),
                        &now,
                        None,
                    );
                }
            }
            Decoded::Battery(b) => {
                self.status(&mut bodies, received_at, Some(b.battery_percent), None)
            }
            Decoded::CheckmeLive(live) => {
                if let Some(ecg) = &live.ecg {
                    self.push_ecg(
                        &mut bodies,
                        &ecg.samples,
                        f64::from(live.sample_rate_hz),
                        ecg.uv_per_count,
                        received_at,
                        false,
                    );
                    if ecg.heart_rate_per_min.is_some() && self.due("ecg_hr", received_at) {
                        self.obs(
                            &mut obs,
                            VitalSign::HeartRate,
                            ecg.heart_rate_per_min.map(f64::from),
                            &now,
                            None,
                        );
                    }
                }
                if let Some(spo2) = &live.spo2 {
                    self.oximetry(
                        "spo2",
                        &mut obs,
                        true,
                        spo2.spo2_percent,
                        spo2.pulse_rate_per_min,
                        &now,
                    );
                }
                if live.battery_percent.is_some() {
                    self.status(&mut bodies, received_at, live.battery_percent, None);
                }
            }
            Decoded::O2Live(o2) => {
                self.oximetry(
                    "o2",
                    &mut obs,
                    o2.worn,
                    o2.spo2_percent,
                    o2.pulse_rate_per_min,
                    &now,
                );
                self.status(&mut bodies, received_at, Some(o2.battery_percent), None);
            }
            Decoded::O2Wave(o2) => {
                self.oximetry(
                    "o2",
                    &mut obs,
                    o2.worn,
                    o2.spo2_percent,
                    o2.pulse_rate_per_min,
                    &now,
                );
            }
            Decoded::LepuFrame { content, .. } => match content {
                crate::devices::LepuContent::Er1Live(er1) => {
                    let lead_off = er1.run_state == 7
                        || er1
                            .samples
                            .contains(&crate::devices::viatom::ecg_gain::INVALID_SAMPLE);
                    self.push_ecg(
                        &mut bodies,
                        &er1.samples,
                        f64::from(er1.sample_rate_hz),
                        er1.uv_per_count,
                        received_at,
                        lead_off,
                    );
                    if er1.heart_rate_per_min > 0 && self.due("ecg_hr", received_at) {
                        self.obs(
                            &mut obs,
                            VitalSign::HeartRate,
                            Some(f64::from(er1.heart_rate_per_min)),
                            &now,
                            None,
                        );
                    }
                    self.status(&mut bodies, received_at, Some(er1.battery_percent), None);
                }
                crate::devices::LepuContent::Bp2Live(bp2) => {
                    let done = bp2.status == Bp2Status::BpDone;
                    if let (
                        true,
                        false,
                        Bp2Block::BpResult {
                            systolic_mmhg,
                            diastolic_mmhg,
                            mean_arterial_mmhg,
                            pulse_rate_per_min,
                            ..
                        },
                    ) = (done, self.bp2_was_done, &bp2.block)
                    {
                        // The monitor repeats its result on every poll: keep the first only.
                        self.obs(
                            &mut obs,
                            VitalSign::SystolicBp,
                            Some(f64::from(*systolic_mmhg)),
                            &now,
                            None,
                        );
                        self.obs(
                            &mut obs,
                            VitalSign::DiastolicBp,
                            Some(f64::from(*diastolic_mmhg)),
                            &now,
                            None,
                        );
                        self.obs(
                            &mut obs,
                            VitalSign::MeanArterialPressure,
                            Some(f64::from(*mean_arterial_mmhg)),
                            &now,
                            None,
                        );
                        self.obs(
                            &mut obs,
                            VitalSign::HeartRate,
                            Some(f64::from(*pulse_rate_per_min)),
                            &now,
                            None,
                        );
                    }
                    self.bp2_was_done = done;
                    if !bp2.samples.is_empty() {
                        self.push_ecg(
                            &mut bodies,
                            &bp2.samples,
                            f64::from(bp2.sample_rate_hz),
                            bp2.uv_per_count,
                            received_at,
                            false,
                        );
                    }
                    self.status(&mut bodies, received_at, Some(bp2.battery_percent), None);
                }
                _ => {}
            },
            Decoded::CuffPressure(_)
            | Decoded::CurrentTime(_)
            | Decoded::DateTime { .. }
            | Decoded::ViatomResponse { .. }
            | Decoded::Bp2DeviceInfo(_) => {}
        }
        if !obs.is_empty() {
            bodies.insert(
                0,
                Body::Observations(ObservationBatch {
                    device: self.device.clone(),
                    clock_synced: self.clock_synced,
                    observations: obs,
                }),
            );
        }
        bodies
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::Profile;
    use crate::devices::error::parse_hex;
    use crate::devices::viatom::checkme_live::CheckBytes;

    fn decode(p: Profile, hex: &str) -> Decoded {
        p.decode(&parse_hex(hex).unwrap(), CheckBytes::Unverified)
            .unwrap()
    }

    fn ex() -> Extractor {
        Extractor::new(
            DeviceRef {
                id: "dev:1".into(),
                model: "test".into(),
                ble_address: None,
            },
            true,
            7,
        )
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn blood_pressure_becomes_four_observations_timed_by_the_device_clock() {
        let d = decode(
            Profile::BloodPressure,
            "1E 8A 00 58 00 69 00 E8 07 03 05 0E 07 09 48 00 01 04 00",
        );
        let bodies = ex().extract(&d, t("2024-03-05T05:07:30Z"));
        let Body::Observations(batch) = &bodies[0] else {
            panic!("{bodies:?}")
        };
        let got: Vec<(VitalSign, f64)> = batch
            .observations
            .iter()
            .map(|o| (o.vital, o.value))
            .collect();
        assert_eq!(
            got,
            vec![
                (VitalSign::SystolicBp, 138.0),
                (VitalSign::DiastolicBp, 88.0),
                (VitalSign::MeanArterialPressure, 105.0),
                (VitalSign::HeartRate, 72.0)
            ]
        );
        assert!(
            batch
                .observations
                .iter()
                .all(|o| o.measured_at == t("2024-03-05T05:07:09Z")
                    && o.device_user == Some(1)
                    && o.time_flags.is_empty())
        );
    }

    #[test]
    fn old_stored_reading_is_kept_with_its_flag() {
        let d = decode(
            Profile::BloodPressure,
            "1E 8A 00 58 00 69 00 E8 07 03 05 0E 07 09 48 00 01 04 00",
        );
        let received = t("2026-11-25T01:00:00Z");
        let bodies = ex().extract(&d, received);
        let Body::Observations(batch) = &bodies[0] else {
            panic!()
        };
        let o = &batch.observations[0];
        assert_eq!(
            (o.measured_at, o.time_flags.clone()),
            (received, vec![WireTimeFlag::ImplausibleDeviceTime])
        );
        assert_eq!(o.device_time.unwrap().to_string(), "2024-03-05 14:07:09");
    }

    #[test]
    fn impossible_values_are_counted_not_sent() {
        // Nordic's 18.9 mmHg systolic decodes, but no living patient has it.
        let d = decode(Profile::BloodPressure, "00 BD F0 0B 00 9F F0");
        let mut e = ex();
        let bodies = e.extract(&d, Utc::now());
        let Body::Observations(batch) = &bodies[0] else {
            panic!()
        };
        // Systolic 18.9 and MAP 15.9 are below any living patient's; diastolic 11 is not.
        assert_eq!(
            batch
                .observations
                .iter()
                .map(|o| o.vital)
                .collect::<Vec<_>>(),
            vec![VitalSign::DiastolicBp]
        );
        assert_eq!(e.rejections.0.get("impossible_value"), Some(&2));
    }

    #[test]
    fn streamed_numerics_are_rate_limited_and_ecg_is_chunked_contiguously() {
        let frame = "A5 5A 2D 01 00 00 2E 00 5D 00 2E 00 ED FF 48 00 58 00 05 00 00 00 01 00 02 0A 00 23 00 3C 00 2D 00 14 00 48 00 61 19 01 00 F1 55 00 00";
        let d = decode(Profile::CheckmeLive, frame);
        let mut e = ex();
        let start = t("2026-11-25T01:00:00Z");
        let mut bodies = Vec::new();
        for i in 0..125 {
            bodies.extend(e.extract(&d, start + Duration::milliseconds(40 * i)));
        }
        let spo2 = bodies.iter().filter(|b| matches!(b, Body::Observations(o) if o.observations.iter().any(|o| o.vital == VitalSign::Spo2))).count();
        assert_eq!(
            spo2, 1,
            "at most one per minute: at 0 s and not again within these 5 s"
        );
        let chunks: Vec<&EcgChunk> = bodies
            .iter()
            .filter_map(|b| if let Body::Ecg(c) = b { Some(c) } else { None })
            .collect();
        assert_eq!(chunks.len(), 5);
        assert!(
            chunks
                .iter()
                .all(|c| c.samples.len() == 125 && c.sample_rate_hz == 125.0 && c.stream_id == 7)
        );
        assert!(
            chunks
                .windows(2)
                .all(|w| w[0].end_sample_index() == w[1].first_sample_index)
        );
        let battery_updates = bodies
            .iter()
            .filter(|b| matches!(b, Body::DeviceStatus(_)))
            .count();
        assert_eq!(battery_updates, 1, "battery is reported when it changes");
    }

    #[test]
    fn bp2_result_is_kept_once_although_polled_repeatedly() {
        let d = decode(
            Profile::LepuFrame,
            "A5 08 F7 01 01 20 00 05 00 50 3C 0F 00 00 00 00 01 00 00 00 7B 00 50 00 5E 00 46 00 00 00 00 00 00 00 00 00 00 00 00 42",
        );
        let mut e = ex();
        let n: usize = (0..3)
            .map(|_| {
                e.extract(&d, Utc::now())
                    .iter()
                    .filter(|b| matches!(b, Body::Observations(_)))
                    .count()
            })
            .sum();
        assert_eq!(n, 1);
    }
}
