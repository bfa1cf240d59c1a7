//! Ingest load tool: real Mosquitto (TLS) + TimescaleDB from the testkit, the `mimamori-server`
//! binary, and N simulated gateways each streaming 1 s ECG chunks (250 Hz) plus an oximetry
//! batch per chunk as fast as the end-to-end acks allow.
//!
//! Prints messages/s and ECG samples/s stored, publish → committed latency (p50/p99, measured at
//! the gateway from publish to the end-to-end ack covering the message), the server's CPU time
//! and peak RSS, and the stored bytes per patient-day of continuous ECG.
//!
//! ```text
//! cargo bench -p mimamori-server --bench ingest_load -- [patients] [seconds_of_ecg_per_patient] [window]
//! ```
//! `window` is how many messages a gateway may have unacknowledged (its outbox in flight).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{TimeZone as _, Utc};
use common::{Stack, ecg_chunk, oximetry};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::SynthConfig;
use mimamori_server::storage::{Device, Gateway, Loan, Patient, Storage as _};
use mimamori_wire::{Channel, Envelope, Epoch, StoredAck, Topic};
use rumqttc::{AsyncClient, Event, Incoming, QoS};

const SAMPLES_PER_CHUNK: usize = 250;

struct GatewayRun {
    latencies_ms: Vec<f64>,
    messages: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let patients = args.first().copied().unwrap_or(20);
    let seconds = args.get(1).copied().unwrap_or(60);
    let window = args.get(2).copied().unwrap_or(200) as usize;

    let stack = Stack::start().await;
    seed(&stack, patients).await;
    let mut server = stack.spawn_server_ready().await;
    let pid = server.id();

    let (samples, _) = SynthConfig::new(SampleRate::hz(250.0), 1)
        .heart_rate_bpm(72.0)
        .generate_counts(seconds as f64)
        .unwrap();
    let started = Instant::now();
    let mut runs = Vec::new();
    for p in 0..patients {
        let credentials = stack.mosquitto.add_gateway(&format!("gw-b{p}")).unwrap();
        let options = stack
            .mosquitto
            .mqtt_options(
                &format!("bench-{p}"),
                &credentials,
                mimamori_testkit::Transport::Tls,
            )
            .unwrap();
        let samples = samples.clone();
        runs.push(tokio::spawn(run_gateway(p, options, samples, window)));
    }
    let mut latencies = Vec::new();
    let mut messages = 0;
    for run in runs {
        let run = run.await.unwrap();
        latencies.extend(run.latencies_ms);
        messages += run.messages;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_s, rss_kib) = process_figures(pid);
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let ecg_rows = stack.count("SELECT count(*) FROM ecg_chunks").await;
    let ecg_bytes = stack
        .count("SELECT hypertable_size('ecg_chunks')::int8")
        .await;
    let ecg_seconds = ecg_rows as f64 * SAMPLES_PER_CHUNK as f64 / 250.0;
    println!(
        "patients {patients}, {seconds} s of ECG each, window {window}, TLS Mosquitto + TimescaleDB co-located"
    );
    println!(
        "messages stored:        {messages} in {elapsed:.2} s = {:.0} msgs/s",
        messages as f64 / elapsed
    );
    println!(
        "ECG samples stored:     {:.0} samples/s",
        ecg_rows as f64 * SAMPLES_PER_CHUNK as f64 / elapsed
    );
    println!(
        "publish -> committed:   p50 {:.1} ms, p99 {:.1} ms",
        pct(0.5),
        pct(0.99)
    );
    println!(
        "server CPU:             {cpu_s:.2} s ({:.0} % of one core), peak RSS {} MiB",
        100.0 * cpu_s / elapsed,
        rss_kib / 1024
    );
    println!(
        "ECG storage:            {:.1} MiB per patient-day (hypertable incl. indexes, 250 Hz, 1 s chunks)",
        ecg_bytes as f64 / ecg_seconds * 86_400.0 / 1024.0 / 1024.0
    );
    server.kill().unwrap();
    let _ = server.wait();
}

async fn seed(stack: &Stack, patients: u64) {
    let since = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for p in 0..patients {
        let patient = Patient {
            id: format!("p-b{p}"),
            name: format!("Bench {p}"),
            name_furigana: "べんち".into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap(),
            sex: "unknown".into(),
            address: "invented".into(),
            map_url: None,
            key_person_name: None,
            key_person_phone: None,
            main_diseases: vec![],
            medications: vec![],
            allergies: vec![],
            advance_directive: None,
            dnar: false,
            home_oxygen_l_per_min: None,
            news2_spo2_scale: 1,
            reading_schedule: None,
            primary_clinic_id: None,
            consent_monitoring_at: Some(since),
            consent_monitoring_withdrawn_at: None,
            consent_night_sharing_at: None,
            consent_night_sharing_withdrawn_at: None,
        };
        stack.store.upsert_patient(&patient).await.unwrap();
        for (id, model) in [
            (format!("checkme-pro:B{p}"), "checkme-pro"),
            (format!("pc60fw:B{p}"), "pc60fw"),
        ] {
            stack
                .store
                .upsert_device(&Device {
                    id: id.clone(),
                    model: model.into(),
                    serial: None,
                    ble_address: None,
                    area: "setagaya".into(),
                })
                .await
                .unwrap();
            stack
                .store
                .add_loan(&Loan {
                    device_id: id,
                    patient_id: patient.id.clone(),
                    device_user: None,
                    lent_from: since,
                    lent_until: None,
                })
                .await
                .unwrap();
        }
        stack
            .store
            .upsert_gateway(&Gateway {
                id: format!("gw-b{p}"),
                patient_id: Some(patient.id.clone()),
                note: None,
            })
            .await
            .unwrap();
    }
}

async fn run_gateway(
    p: u64,
    mut options: rumqttc::MqttOptions,
    samples: Vec<i16>,
    window: usize,
) -> GatewayRun {
    options.set_inflight(window.min(u16::MAX as usize) as u16);
    let (client, mut event_loop) = AsyncClient::new(options, window * 2 + 10);
    let gateway = mimamori_wire::GatewayId::new(format!("gw-b{p}")).unwrap();
    let epoch = Epoch::from_bytes([(p % 251) as u8 + 1; 16]);
    let ack_topic = Topic::new(gateway.clone(), Channel::Ack).to_string();
    let start = Utc::now() - chrono::Duration::hours(2);
    // Outbox: alternately an ECG chunk and an oximetry batch.
    let mut outbox = Vec::new();
    for (i, chunk) in samples.chunks(SAMPLES_PER_CHUNK).enumerate() {
        let at = start + chrono::Duration::seconds(i as i64);
        outbox.push(ecg_chunk(
            &format!("checkme-pro:B{p}"),
            p,
            (i * SAMPLES_PER_CHUNK) as u64,
            start,
            chunk,
        ));
        let mut ox = oximetry(96.0, at);
        if let mimamori_wire::Body::Observations(batch) = &mut ox {
            batch.device.id = format!("pc60fw:B{p}");
        }
        outbox.push(ox);
    }
    let payloads: Vec<(String, Vec<u8>)> = outbox
        .into_iter()
        .enumerate()
        .map(|(seq, body)| {
            let topic = Topic::new(gateway.clone(), body.channel()).to_string();
            (
                topic,
                Envelope::new(epoch, seq as u64, Utc::now(), body)
                    .encode()
                    .unwrap(),
            )
        })
        .collect();
    let total = payloads.len();
    let mut sent_at: VecDeque<Instant> = VecDeque::new();
    let mut next = 0usize;
    let mut acked = 0usize; // messages covered by the ack
    let mut latencies_ms = Vec::with_capacity(total);
    let mut subscribed = false;
    while acked < total {
        if subscribed {
            while next < total && next - acked < window {
                let (topic, payload) = &payloads[next];
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                    .await
                    .unwrap();
                sent_at.push_back(Instant::now());
                next += 1;
            }
        }
        match event_loop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                client
                    .subscribe(&ack_topic, QoS::AtLeastOnce)
                    .await
                    .unwrap();
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => subscribed = true,
            Ok(Event::Incoming(Incoming::Publish(publish))) if publish.topic == ack_topic => {
                let ack = StoredAck::decode(&publish.payload).unwrap();
                if ack.epoch != epoch {
                    continue;
                }
                let now = Instant::now();
                while acked <= ack.stored_through as usize && acked < total {
                    let at = sent_at.pop_front().unwrap();
                    latencies_ms.push(now.duration_since(at).as_secs_f64() * 1000.0);
                    acked += 1;
                }
            }
            Ok(_) => {}
            Err(error) => panic!("gateway {p}: {error}"),
        }
    }
    GatewayRun {
        latencies_ms,
        messages: total as u64,
    }
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc.
fn process_figures(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the command name.
    let cpu_s = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu_s, rss)
}
