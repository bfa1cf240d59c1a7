//! The home simulator behind `mimamori-gateway simulate`: what real homes would publish, through
//! the same outbox and publisher as a real gateway.
//!
//! Each simulated home ([`HomeSim`]) has a Checkme-like ECG monitor streaming lead I at 125
//! samples/s (from `mimamori_dsp::synth`), a worn pulse oximeter (SpO2 and pulse every 5 min), a
//! BP cuff (07:30 and 19:30), a thermometer (07:35 and 19:35, every 2 h while febrile) and a scale
//! (07:00), on Tokyo local time, with battery status every 30 min. Scenario events
//! ([`scenario::Event`]) bend the vitals and the ECG.
//!
//! The ECG generator is rebuilt every 10 simulated minutes with the heart rate of that moment, so
//! tachycardia shows in the ECG as well as in the pulse; sample indices run on without a gap.

pub mod scenario;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::{EcgSynth, Rhythm, SynthConfig};
use mimamori_wire::{
    Body, DeviceRef, DeviceStatus, EcgChunk, Observation, ObservationBatch, VitalSign,
};

use crate::devices::date_time::tokyo;
use crate::devices::viatom::ecg_gain::CHECKME_LIVE_UV_PER_COUNT;
use scenario::{Event, SimDevice, ramp};

/// ECG sample rate of the simulated monitor.
pub const ECG_RATE_HZ: f64 = 125.0;
/// Length of one ECG generator segment, simulated seconds.
const SEGMENT_S: u64 = 600;
/// Oximeter numerics interval.
const OXIMETER_EVERY: Duration = Duration::minutes(5);
/// Device status interval.
const STATUS_EVERY: Duration = Duration::minutes(30);

/// SplitMix64: small, deterministic, good enough for vital-sign jitter.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Roughly normal (sum of uniforms), mean 0, standard deviation `sd`.
    fn jitter(&mut self, sd: f64) -> f64 {
        let s: f64 = (0..4)
            .map(|_| (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
            .sum();
        (s - 2.0) * sd * (3.0f64).sqrt()
    }
}

/// A patient's resting values.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    heart_rate: f64,
    spo2: f64,
    temperature: f64,
    weight: f64,
    systolic: f64,
    diastolic: f64,
}

/// The vitals of a moment, before measurement noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vitals {
    /// Heart rate, /min.
    pub heart_rate: f64,
    /// SpO2, %.
    pub spo2: f64,
    /// Body temperature, °C.
    pub temperature: f64,
    /// Weight, kg.
    pub weight: f64,
    /// Systolic, mmHg.
    pub systolic: f64,
    /// Diastolic, mmHg.
    pub diastolic: f64,
    /// In atrial fibrillation.
    pub af: bool,
}

/// ECG stream state.
struct EcgStream {
    stream_id: u64,
    next_index: u64,
    next_at: DateTime<Utc>,
    synth: Option<(u64, EcgSynth)>,
}

impl std::fmt::Debug for EcgStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcgStream")
            .field("stream_id", &self.stream_id)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

/// One simulated home.
#[derive(Debug)]
pub struct HomeSim {
    index: usize,
    rng: Rng,
    baseline: Baseline,
    events: Vec<Event>,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    ecg_enabled: bool,
    ecg_chunk_s: u64,
    ecg: EcgStream,
    next_oximeter: DateTime<Utc>,
    next_status: DateTime<Utc>,
}

fn device(kind: SimDevice, home: usize) -> DeviceRef {
    let (model, serial) = match kind {
        SimDevice::Ecg => ("checkme-pro", "CKP"),
        SimDevice::Oximeter => ("o2ring", "O2R"),
        SimDevice::BloodPressure => ("ble-blood-pressure", "BPM"),
        SimDevice::Scale => ("ble-weight-scale", "WSC"),
        SimDevice::Thermometer => ("ble-thermometer", "THM"),
    };
    DeviceRef {
        id: format!("{model}:SIM{serial}{home:05}"),
        model: model.to_owned(),
        ble_address: None,
    }
}

/// Next instant after `after` (exclusive) at one of the Tokyo local `times` of day.
fn next_local(after: DateTime<Utc>, times: &[NaiveTime]) -> DateTime<Utc> {
    let local = after.with_timezone(&tokyo());
    let mut best: Option<DateTime<Utc>> = None;
    for day in 0..2 {
        let date = local.date_naive() + Duration::days(day);
        for t in times {
            if let Some(at) = tokyo()
                .from_local_datetime(&date.and_time(*t))
                .single()
                .map(|d| d.with_timezone(&Utc))
                && at > after
                && best.is_none_or(|b| at < b)
            {
                best = Some(at);
            }
        }
    }
    best.unwrap_or(after + Duration::days(1))
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

impl HomeSim {
    /// A home starting at `start`, with the scenario's events for `index`.
    pub fn new(
        index: usize,
        events: Vec<Event>,
        start: DateTime<Utc>,
        ecg_enabled: bool,
        ecg_chunk_s: u64,
    ) -> Self {
        let mut rng = Rng(0x6D69_6D61_6D6F_7269 ^ (index as u64).wrapping_mul(0x9E37_79B9));
        let baseline = Baseline {
            heart_rate: 64.0 + rng.jitter(6.0).abs(),
            spo2: 96.0 + rng.jitter(1.0).clamp(-1.0, 2.0),
            temperature: 36.5 + rng.jitter(0.15),
            weight: 58.0 + rng.jitter(9.0),
            systolic: 128.0 + rng.jitter(10.0),
            diastolic: 76.0 + rng.jitter(6.0),
        };
        let stream_id = rng.next_u64();
        Self {
            index,
            rng,
            baseline,
            events,
            start,
            now: start,
            ecg_enabled,
            ecg_chunk_s: ecg_chunk_s.clamp(1, 60),
            ecg: EcgStream {
                stream_id,
                next_index: 0,
                next_at: start,
                synth: None,
            },
            next_oximeter: start + Duration::seconds(30),
            next_status: start,
        }
    }

    fn hours(&self, t: DateTime<Utc>) -> f64 {
        (t - self.start).num_milliseconds() as f64 / 3_600_000.0
    }

    /// The vitals at `t`, before measurement noise.
    pub fn vitals_at(&self, t: DateTime<Utc>) -> Vitals {
        let h = self.hours(t);
        let b = self.baseline;
        let local_h = f64::from(chrono::Timelike::hour(&t.with_timezone(&tokyo())));
        // Body temperature peaks in the early evening, lowest before dawn.
        let diurnal = 0.25 * ((local_h - 17.0) / 24.0 * std::f64::consts::TAU).cos();
        let mut v = Vitals {
            heart_rate: b.heart_rate,
            spo2: b.spo2,
            temperature: b.temperature + diurnal,
            weight: b.weight,
            systolic: b.systolic,
            diastolic: b.diastolic,
            af: false,
        };
        for e in &self.events {
            match *e {
                Event::Deterioration {
                    at_h,
                    over_h,
                    temperature_rise_cel,
                    heart_rate_rise_per_min,
                    spo2_drop_percent,
                } => {
                    let f = ramp(h, at_h, over_h);
                    v.temperature += temperature_rise_cel * f;
                    v.heart_rate += heart_rate_rise_per_min * f;
                    v.spo2 -= spo2_drop_percent * f;
                    v.systolic -= 15.0 * f * (spo2_drop_percent / 8.0).min(1.0);
                }
                Event::WeightGain { at_h, over_h, kg } => v.weight += kg * ramp(h, at_h, over_h),
                Event::AfOnset { at_h, duration_h } if h >= at_h && h < at_h + duration_h => {
                    v.af = true;
                    v.heart_rate += 25.0;
                }
                _ => {}
            }
        }
        v
    }

    fn silent(&self, dev: SimDevice, t: DateTime<Utc>) -> bool {
        let h = self.hours(t);
        self.events.iter().any(|e| matches!(*e, Event::DeviceSilent { at_h, duration_h, device } if device == dev && h >= at_h && h < at_h + duration_h))
    }

    fn battery(&self, dev: SimDevice, t: DateTime<Utc>) -> u8 {
        let h = self.hours(t);
        let low = self.events.iter().rev().find_map(|e| match *e {
            Event::LowBattery {
                at_h,
                device,
                percent,
            } if device == dev && h >= at_h => Some(percent),
            _ => None,
        });
        // Otherwise a slow daily discharge and recharge.
        low.unwrap_or_else(|| (95.0 - (h % 24.0) * 2.0).clamp(20.0, 100.0) as u8)
    }

    fn observation(
        &self,
        vital: VitalSign,
        value: f64,
        at: DateTime<Utc>,
        user: Option<u8>,
    ) -> Observation {
        let device_time = Some(at.with_timezone(&tokyo()).naive_local());
        Observation {
            vital,
            unit: vital.unit(),
            value,
            measured_at: at,
            device_time,
            received_at: at,
            time_flags: vec![],
            device_user: user,
        }
    }

    fn batch(&self, dev: SimDevice, observations: Vec<Observation>) -> Body {
        Body::Observations(ObservationBatch {
            device: device(dev, self.index),
            clock_synced: true,
            observations,
        })
    }

    /// Everything the home publishes in `(now, to]`, in time order per device.
    pub fn advance(&mut self, to: DateTime<Utc>) -> Vec<Body> {
        let mut out = Vec::new();
        if to <= self.now {
            return out;
        }
        let from = self.now;
        // Scheduled spot measurements.
        let schedule: [(SimDevice, &[NaiveTime]); 3] = [
            (SimDevice::BloodPressure, &[hm(7, 30), hm(19, 30)]),
            (SimDevice::Thermometer, &[hm(7, 35), hm(19, 35)]),
            (SimDevice::Scale, &[hm(7, 0)]),
        ];
        for (dev, times) in schedule {
            let mut t = next_local(from, times);
            while t <= to {
                if !self.silent(dev, t) {
                    out.push(self.spot(dev, t));
                }
                t = next_local(t, times);
            }
        }
        // Extra temperature every 2 h while febrile (carers check more often).
        let mut t =
            from + Duration::hours(2) - Duration::seconds((from - self.start).num_seconds() % 7200);
        while t <= to {
            if self.vitals_at(t).temperature >= 37.5 && !self.silent(SimDevice::Thermometer, t) {
                out.push(self.spot(SimDevice::Thermometer, t));
            }
            t += Duration::hours(2);
        }
        while self.next_oximeter <= to {
            let t = self.next_oximeter;
            if !self.silent(SimDevice::Oximeter, t) {
                let v = self.vitals_at(t);
                let spo2 = (v.spo2 + self.rng.jitter(0.8)).round().clamp(60.0, 100.0);
                let pr = (v.heart_rate + self.rng.jitter(if v.af { 9.0 } else { 2.5 })).round();
                let obs = vec![
                    self.observation(VitalSign::Spo2, spo2, t, None),
                    self.observation(VitalSign::PulseRateOximetry, pr, t, None),
                ];
                out.push(self.batch(SimDevice::Oximeter, obs));
            }
            self.next_oximeter += OXIMETER_EVERY;
        }
        while self.next_status <= to {
            let t = self.next_status;
            for dev in [SimDevice::Ecg, SimDevice::Oximeter] {
                if !self.silent(dev, t) {
                    out.push(Body::DeviceStatus(DeviceStatus {
                        device: device(dev, self.index),
                        at: t,
                        connected: true,
                        battery_percent: Some(self.battery(dev, t)),
                        lead_off: (dev == SimDevice::Ecg).then_some(false),
                        signal_quality: None,
                        firmware: None,
                    }));
                }
            }
            self.next_status += STATUS_EVERY;
        }
        if self.ecg_enabled {
            self.advance_ecg(to, &mut out);
        }
        self.now = to;
        out
    }

    fn spot(&mut self, dev: SimDevice, t: DateTime<Utc>) -> Body {
        let v = self.vitals_at(t);
        let obs = match dev {
            SimDevice::BloodPressure => {
                let sys = (v.systolic + self.rng.jitter(6.0)).round();
                let dia = (v.diastolic + self.rng.jitter(4.0)).round();
                let pulse = (v.heart_rate + self.rng.jitter(3.0)).round();
                vec![
                    self.observation(VitalSign::SystolicBp, sys, t, Some(1)),
                    self.observation(VitalSign::DiastolicBp, dia, t, Some(1)),
                    self.observation(
                        VitalSign::MeanArterialPressure,
                        ((sys + 2.0 * dia) / 3.0).round(),
                        t,
                        Some(1),
                    ),
                    self.observation(VitalSign::HeartRate, pulse, t, Some(1)),
                ]
            }
            SimDevice::Thermometer | SimDevice::Ecg => {
                let temp = ((v.temperature + self.rng.jitter(0.08)) * 10.0).round() / 10.0;
                vec![self.observation(VitalSign::BodyTemperature, temp, t, None)]
            }
            SimDevice::Scale => {
                let kg = ((v.weight + self.rng.jitter(0.12)) * 20.0).round() / 20.0;
                vec![self.observation(VitalSign::BodyWeight, kg, t, Some(1))]
            }
            SimDevice::Oximeter => {
                let spo2 = v.spo2.round().clamp(60.0, 100.0);
                vec![self.observation(VitalSign::Spo2, spo2, t, None)]
            }
        };
        self.batch(dev, obs)
    }

    fn synth_for_segment(&self, segment: u64) -> Option<EcgSynth> {
        let seg_start = self.start + Duration::seconds((segment * SEGMENT_S) as i64);
        let v = self.vitals_at(seg_start + Duration::seconds((SEGMENT_S / 2) as i64));
        let h0 = self.hours(seg_start);
        let seed = (self.index as u64) << 32 | segment;
        let mut cfg = SynthConfig::new(SampleRate::hz(ECG_RATE_HZ), seed)
            .heart_rate_bpm(v.heart_rate.clamp(30.0, 200.0))
            .sdnn_ms(35.0)
            .pvc_probability(0.01)
            .uv_per_count(CHECKME_LIVE_UV_PER_COUNT);
        let seg_h = SEGMENT_S as f64 / 3600.0;
        for e in &self.events {
            match *e {
                Event::AfOnset { at_h, duration_h }
                    if at_h < h0 + seg_h && at_h + duration_h > h0 =>
                {
                    let start_s = ((at_h - h0) * 3600.0).max(0.0);
                    let end_s = ((at_h + duration_h - h0) * 3600.0).min(SEGMENT_S as f64);
                    cfg = cfg.rhythm_episode(Rhythm::AtrialFibrillation, start_s, end_s - start_s);
                }
                Event::Pause { at_h, duration_s } if at_h >= h0 && at_h < h0 + seg_h => {
                    cfg = cfg.pause((at_h - h0) * 3600.0, duration_s);
                }
                _ => {}
            }
        }
        match cfg.build() {
            Ok(s) => Some(s),
            Err(error) => {
                tracing::error!(error = %error, "Simulated ECG configuration rejected.");
                None
            }
        }
    }

    fn advance_ecg(&mut self, to: DateTime<Utc>, out: &mut Vec<Body>) {
        let chunk_samples = (self.ecg_chunk_s as f64 * ECG_RATE_HZ) as usize;
        let per_segment = (SEGMENT_S as f64 * ECG_RATE_HZ) as u64;
        while self.ecg.next_at + Duration::seconds(self.ecg_chunk_s as i64) <= to {
            let mut samples = vec![0i16; chunk_samples];
            let mut filled = 0;
            while filled < chunk_samples {
                let index = self.ecg.next_index + filled as u64;
                let segment = index / per_segment;
                if self.ecg.synth.as_ref().is_none_or(|(s, _)| *s != segment) {
                    self.ecg.synth = self.synth_for_segment(segment).map(|s| (segment, s));
                }
                let left_in_segment = (per_segment - index % per_segment) as usize;
                let n = left_in_segment.min(chunk_samples - filled);
                if let Some((_, synth)) = &mut self.ecg.synth {
                    synth.fill_counts(&mut samples[filled..filled + n]);
                }
                filled += n;
            }
            let at = self.ecg.next_at;
            if !self.silent(SimDevice::Ecg, at) {
                out.push(Body::Ecg(EcgChunk {
                    device: device(SimDevice::Ecg, self.index),
                    lead: "I".into(),
                    sample_rate_hz: ECG_RATE_HZ,
                    uv_per_count: CHECKME_LIVE_UV_PER_COUNT,
                    stream_id: self.ecg.stream_id,
                    first_sample_index: self.ecg.next_index,
                    first_sample_at: at,
                    device_time: None,
                    received_at: at + Duration::seconds(self.ecg_chunk_s as i64),
                    clock_synced: true,
                    lead_off: false,
                    samples,
                }));
            }
            self.ecg.next_index += chunk_samples as u64;
            self.ecg.next_at = at + Duration::seconds(self.ecg_chunk_s as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        // 2026-11-25 06:00 JST.
        "2026-11-24T21:00:00Z".parse().unwrap()
    }

    fn observations(bodies: &[Body], vital: VitalSign) -> Vec<(DateTime<Utc>, f64)> {
        bodies
            .iter()
            .filter_map(|b| match b {
                Body::Observations(batch) => Some(
                    batch
                        .observations
                        .iter()
                        .filter(|o| o.vital == vital)
                        .map(|o| (o.measured_at, o.value)),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn scenario_file(name: &str) -> scenario::Scenario {
        let path = format!(
            "{}/../fixtures/scenarios/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        scenario::Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn scenario(name: &str) -> Vec<Event> {
        scenario_file(name).events_for(0)
    }

    #[test]
    fn a_quiet_day_follows_the_home_schedule() {
        let mut home = HomeSim::new(3, vec![], start(), false, 1);
        let bodies = home.advance(start() + Duration::hours(24));
        // BP twice a day at 07:30 and 19:30 JST, weight once at 07:00.
        let bp = observations(&bodies, VitalSign::SystolicBp);
        let local: Vec<String> = bp
            .iter()
            .map(|(t, _)| t.with_timezone(&tokyo()).format("%H:%M").to_string())
            .collect();
        assert_eq!(local, vec!["07:30", "19:30"]);
        assert_eq!(observations(&bodies, VitalSign::BodyWeight).len(), 1);
        assert_eq!(observations(&bodies, VitalSign::Spo2).len(), 24 * 12);
        for body in &bodies {
            let json = mimamori_wire::Envelope::new(
                mimamori_wire::Epoch::from_bytes([1; 16]),
                0,
                Utc::now(),
                body.clone(),
            )
            .encode();
            assert!(
                json.is_ok(),
                "every simulated body passes the wire contract: {json:?}"
            );
        }
    }

    #[test]
    fn fever_scenario_raises_temperature_and_pulse_and_lowers_spo2() {
        let mut home = HomeSim::new(0, scenario("fever-sepsis"), start(), false, 1);
        let bodies = home.advance(start() + Duration::hours(14));
        let spo2 = observations(&bodies, VitalSign::Spo2);
        let pr = observations(&bodies, VitalSign::PulseRateOximetry);
        let first_hour_spo2: f64 = spo2[..12].iter().map(|x| x.1).sum::<f64>() / 12.0;
        let last_hour_spo2: f64 = spo2[spo2.len() - 12..].iter().map(|x| x.1).sum::<f64>() / 12.0;
        assert!(
            first_hour_spo2 - last_hour_spo2 > 6.0,
            "{first_hour_spo2} -> {last_hour_spo2}"
        );
        let first_pr: f64 = pr[..12].iter().map(|x| x.1).sum::<f64>() / 12.0;
        let last_pr: f64 = pr[pr.len() - 12..].iter().map(|x| x.1).sum::<f64>() / 12.0;
        assert!(last_pr - first_pr > 35.0, "{first_pr} -> {last_pr}");
        let temps = observations(&bodies, VitalSign::BodyTemperature);
        assert!(temps.iter().any(|(_, t)| *t >= 38.5), "{temps:?}");
    }

    #[test]
    fn heart_failure_scenario_gains_two_kilograms_in_three_days() {
        let mut home = HomeSim::new(0, scenario("heart-failure-weight-gain"), start(), false, 1);
        let bodies = home.advance(start() + Duration::hours(24 * 4));
        let w = observations(&bodies, VitalSign::BodyWeight);
        assert_eq!(w.len(), 4);
        let gain = w[3].1 - w[0].1;
        assert!((1.4..=2.6).contains(&gain), "{w:?}");
    }

    #[test]
    fn ecg_is_contiguous_and_silence_and_battery_events_apply() {
        let events = scenario_file("af-pause-devices");
        let mut home = HomeSim::new(2, events.events_for(2), start(), true, 2);
        let bodies = home.advance(start() + Duration::hours(2));
        let chunks: Vec<&EcgChunk> = bodies
            .iter()
            .filter_map(|b| if let Body::Ecg(c) = b { Some(c) } else { None })
            .collect();
        assert_eq!(chunks.len(), 3600);
        assert!(
            chunks
                .windows(2)
                .all(|w| w[0].end_sample_index() == w[1].first_sample_index)
        );
        // Oximeter silent from 0.5 h: the last reading is before then.
        let spo2 = observations(&bodies, VitalSign::Spo2);
        assert!(
            spo2.iter()
                .all(|(t, _)| *t < start() + Duration::minutes(30))
        );
        let low = bodies.iter().any(|b| matches!(b, Body::DeviceStatus(s) if s.device.model == "checkme-pro" && s.battery_percent == Some(8)));
        assert!(low);
    }

    #[test]
    fn af_onset_is_on_only_within_its_episode() {
        let events = scenario_file("af-pause-devices");
        let home = HomeSim::new(0, events.events_for(0), start(), true, 1);
        assert!(!home.vitals_at(start() + Duration::minutes(20)).af);
        assert!(home.vitals_at(start() + Duration::minutes(40)).af);
    }
}
