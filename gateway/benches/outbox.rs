//! Outbox figures: append throughput with group commit, ack throughput, and the time to recover
//! and replay a day of backlog (one home's ECG at 125 Hz in 1-s chunks plus its vitals) after the
//! home's internet was down for a day.
//!
//! Run: `cargo bench -p mimamori-gateway --bench outbox` (prints figures; not a pass/fail test).
//! The outbox lives in a temporary directory, so the figures are for that file system.

use std::time::Instant;

use chrono::Utc;
use mimamori_gateway::outbox::{Outbox, OutboxConfig};
use mimamori_wire::{
    Body, Channel, DeviceRef, EcgChunk, Observation, ObservationBatch, Ucum, VitalSign,
};

fn device() -> DeviceRef {
    DeviceRef {
        id: "checkme-pro:AA:BB:CC:DD:EE:01".into(),
        model: "checkme-pro".into(),
        ble_address: Some("AA:BB:CC:DD:EE:01".into()),
    }
}

fn ecg_second(i: u64) -> Vec<u8> {
    let now = Utc::now();
    let samples: Vec<i16> = (0..125)
        .map(|k| ((i * 125 + k) % 200) as i16 - 100)
        .collect();
    serde_json::to_vec(&Body::Ecg(EcgChunk {
        device: device(),
        lead: "I".into(),
        sample_rate_hz: 125.0,
        uv_per_count: 10.7696,
        stream_id: 42,
        first_sample_index: i * 125,
        first_sample_at: now,
        device_time: None,
        received_at: now,
        clock_synced: true,
        lead_off: false,
        samples,
    }))
    .unwrap()
}

fn vitals() -> Vec<u8> {
    let now = Utc::now();
    let o = |vital: VitalSign, value: f64| Observation {
        vital,
        unit: vital.unit(),
        value,
        measured_at: now,
        device_time: None,
        received_at: now,
        time_flags: vec![],
        device_user: None,
    };
    let _ = Ucum::Percent;
    serde_json::to_vec(&Body::Observations(ObservationBatch {
        device: device(),
        clock_synced: true,
        observations: vec![
            o(VitalSign::Spo2, 97.0),
            o(VitalSign::PulseRateOximetry, 72.0),
        ],
    }))
    .unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        quota_bytes: 8 << 30,
        ..OutboxConfig::default()
    };

    // Append: a day of one home's messages, group-committed in batches of 25 (one BLE second).
    let day_ecg = 86_400u64;
    let mut outbox = Outbox::open(dir.path(), config.clone()).unwrap();
    let ecg_payloads: Vec<Vec<u8>> = (0..1000).map(ecg_second).collect();
    let vitals_payload = vitals();
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..day_ecg {
        let p = &ecg_payloads[(i % 1000) as usize];
        outbox.append(Channel::Ecg, p).unwrap();
        bytes += p.len() as u64;
        if i % 300 == 0 {
            outbox
                .append(Channel::Observations, &vitals_payload)
                .unwrap();
        }
        if i % 25 == 24 {
            outbox.sync().unwrap();
        }
    }
    outbox.sync().unwrap();
    let append_s = started.elapsed().as_secs_f64();
    let total = outbox.next_seq();
    println!(
        "append: {total} records ({:.1} MiB of payload) in {append_s:.2} s = {:.0} records/s, {:.1} MiB/s, fsync every 25 records",
        bytes as f64 / 1048576.0,
        total as f64 / append_s,
        bytes as f64 / 1048576.0 / append_s
    );
    drop(outbox);

    // Recovery + replay of the whole day, in publisher-sized windows of 128.
    let started = Instant::now();
    let mut outbox = Outbox::open(dir.path(), config.clone()).unwrap();
    let open_s = started.elapsed().as_secs_f64();
    let mut from = 0;
    let mut read = 0u64;
    loop {
        let w = outbox.read_from(from, 128).unwrap();
        let Some(last) = w.last() else { break };
        from = last.seq + 1;
        read += w.len() as u64;
    }
    let replay_s = started.elapsed().as_secs_f64();
    assert_eq!(read, total);
    println!(
        "replay of a day of backlog: recovery scan {open_s:.2} s, recovery + reading all {read} records in windows of 128: {replay_s:.2} s"
    );

    // Ack: the server's watermark advancing 128 at a time (each ack is an atomic, fsynced file write).
    let epoch = outbox.epoch();
    let started = Instant::now();
    let mut acks = 0u64;
    let mut through = 127;
    while through < total {
        outbox.ack(epoch, through).unwrap();
        acks += 1;
        through += 128;
    }
    outbox.ack(epoch, total - 1).unwrap();
    let ack_s = started.elapsed().as_secs_f64();
    println!(
        "ack: {acks} acks covering {total} records in {ack_s:.2} s = {:.0} acks/s, {:.0} records/s released; segments left: {}",
        acks as f64 / ack_s,
        total as f64 / ack_s,
        outbox.status().segments
    );
}
