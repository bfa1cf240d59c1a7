//! Ingest end to end on real parts: Mosquitto (TLS, ACL, persistence) and TimescaleDB from the
//! testkit, the `mimamori-server` binary as a child process, and test gateways publishing wire
//! messages with rumqttc and holding them until the server's end-to-end ack covers them.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Stack, TestGateway, blood_pressure, ecg_chunk, oximetry, oximetry_of};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::SynthConfig;
use mimamori_server::storage::{
    Content, Device, EcgRecord, IngestBatch, IngestMessage, Loan, Storage as _,
};
use mimamori_wire::{Body, Channel, Envelope, Epoch, GatewayId};

const DRAIN: Duration = Duration::from_secs(60);

/// Counts messages of one gateway's epoch stored (accepted or dead-lettered) in the dedup table.
async fn stored_keys(stack: &Stack, gateway: &str, epoch: Epoch) -> i64 {
    stack
        .count(&format!(
            "SELECT count(*) FROM ingest_dedup WHERE gateway_id = '{gateway}' AND epoch = '{epoch}'"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_is_stored_exactly_once_and_heart_rate_matches_the_ecg() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let start = Utc::now() - chrono::Duration::seconds(120);

    // Patient 1: 40 s of ECG at 75 bpm in 1 s chunks, plus blood pressure.
    let (samples, _truth) = SynthConfig::new(SampleRate::hz(250.0), 7)
        .heart_rate_bpm(75.0)
        .sdnn_ms(0.0)
        .generate_counts(40.0)
        .unwrap();
    let mut gw1 = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([1; 16])).await;
    for (i, chunk) in samples.chunks(250).enumerate() {
        gw1.push(ecg_chunk(
            "checkme-pro:CP0001",
            99,
            i as u64 * 250,
            start,
            chunk,
        ));
        if i % 10 == 0 {
            gw1.push(blood_pressure(
                120.0 + i as f64,
                Some(1),
                start + chrono::Duration::seconds(i as i64),
            ));
        }
    }
    // Patient 2: 100 oximetry batches.
    let mut gw2 = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([2; 16])).await;
    for i in 0..100 {
        gw2.push(oximetry(
            90.0 + f64::from(i % 8),
            start + chrono::Duration::seconds(i64::from(i)),
        ));
    }
    gw1.publish_new().await;
    gw2.publish_new().await;
    // Redeliveries, as after a gateway restart: the first 30 again.
    let gw2_dupes = 30;
    gw2.publish_range(0, gw2_dupes).await;
    gw1.drain(DRAIN).await;
    gw2.drain(DRAIN).await;

    assert_eq!(stack.count("SELECT count(*) FROM ecg_chunks").await, 40);
    assert_eq!(
        stack
            .count("SELECT count(*) FROM observations WHERE patient_id = 'p-0001'")
            .await,
        4 * 2
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM observations WHERE patient_id = 'p-0002'")
            .await,
        100 * 2,
        "the 30 redelivered batches were not stored again"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM (SELECT DISTINCT gateway_id, epoch, seq, loinc FROM observations) d").await,
        stack.count("SELECT count(*) FROM observations").await
    );
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 0);

    // Heart rate from the ECG: wait for the hot path to write it.
    let mut bpm = Vec::new();
    for _ in 0..50 {
        bpm =
            sqlx::query_scalar::<_, f64>("SELECT bpm FROM heart_rate WHERE patient_id = 'p-0001'")
                .fetch_all(stack.store.pool())
                .await
                .unwrap();
        if bpm.len() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(bpm.len() >= 30, "{} heart-rate points", bpm.len());
    for value in &bpm {
        assert!(
            (value - 75.0).abs() <= 1.0,
            "heart rate {value} bpm for a 75 bpm ECG"
        );
    }
    let beats = stack
        .count("SELECT count(*) FROM beats WHERE patient_id = 'p-0001'")
        .await;
    assert!(
        (45..=51).contains(&beats),
        "{beats} beats in 40 s at 75 bpm"
    );

    // The operator's view agrees.
    let stats: serde_json::Value = serde_json::from_str(&stack.run_cli(&["stats"])).unwrap();
    let gw2_stats = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["gateway_id"] == "gw-p0002")
        .unwrap();
    assert_eq!(gw2_stats["stored"], 100);
    assert!(gw2_stats["duplicates"].as_i64().unwrap() >= gw2_dupes as i64);
    assert!(gw2_stats["clock_offset_ms"].is_i64());
    server.kill().unwrap();
    let _ = server.wait();
}

/// Streams `count` oximetry batches from a gateway; `disrupt` runs once a quarter is acked.
async fn stream_through_a_crash(stack: &mut Stack, disrupt: impl AsyncFnOnce(&mut Stack)) {
    let mut gateway = TestGateway::connect(stack, "gw-p0002", Epoch::from_bytes([3; 16])).await;
    let start = Utc::now() - chrono::Duration::hours(1);
    let count = 1000u64;
    for i in 0..count {
        gateway.push(oximetry(95.0, start + chrono::Duration::seconds(i as i64)));
    }
    let publisher = gateway.publish_paced(Duration::from_millis(2));
    gateway.wait_acked(count / 4, DRAIN).await;
    let before = stored_keys(stack, "gw-p0002", gateway.epoch).await;
    disrupt(stack).await;
    assert!(
        before < count as i64,
        "the crash came mid-stream ({before} stored)"
    );
    publisher.await.unwrap();
    gateway.drain(DRAIN).await;
    assert_eq!(
        stored_keys(stack, "gw-p0002", gateway.epoch).await,
        count as i64
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM observations WHERE patient_id = 'p-0002'")
            .await,
        count as i64 * 2,
        "the outbox and the database hold the same readings, none twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_stream_loses_and_duplicates_nothing() {
    let mut stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    stream_through_a_crash(&mut stack, async |stack: &mut Stack| {
        server.kill().unwrap(); // SIGKILL
        let _ = server.wait();
        server = stack.spawn_server_ready().await;
    })
    .await;
    server.kill().unwrap();
    let _ = server.wait();
}

/// Polls `sql` (a single bigint) until it reaches `at_least`.
async fn wait_for(stack: &Stack, sql: &str, at_least: i64) -> i64 {
    let mut value = 0;
    for _ in 0..300 {
        value = stack.count(sql).await;
        if value >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecg_committed_before_a_crash_is_analysed_at_restart_without_false_beats() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let start = Utc::now() - chrono::Duration::minutes(10);
    let (samples, truth) = SynthConfig::new(SampleRate::hz(250.0), 7)
        .heart_rate_bpm(75.0)
        .sdnn_ms(0.0)
        .generate_counts(90.0)
        .unwrap();
    let chunks: Vec<&[i16]> = samples.chunks(250).collect();
    let max_beat = "SELECT coalesce(max(sample_index), 0) FROM beats WHERE patient_id = 'p-0001'";

    // 0–40 s live, analysed and checkpointed.
    let mut gateway = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([4; 16])).await;
    for (i, chunk) in chunks[..40].iter().enumerate() {
        gateway.push(ecg_chunk(
            "checkme-pro:CP0001",
            99,
            i as u64 * 250,
            start,
            chunk,
        ));
    }
    gateway.publish_new().await;
    gateway.drain(DRAIN).await;
    let checkpointed =
        "SELECT coalesce(max(next_index), 0) FROM dsp_checkpoints WHERE patient_id = 'p-0001'";
    assert_eq!(wait_for(&stack, checkpointed, 40 * 250).await, 40 * 250);

    // Killed; 40–60 s were committed by it and never analysed (what a crash between the commit
    // and the hot path leaves behind).
    server.kill().unwrap();
    let _ = server.wait();
    let committed: Vec<IngestMessage> = (40..60)
        .map(|i| IngestMessage {
            gateway: GatewayId::new("gw-p0001").unwrap(),
            key: None,
            known_duplicate: false,
            received_at: Utc::now(),
            sent_at: None,
            content: Content::Ecg(EcgRecord {
                patient_id: "p-0001".into(),
                device_id: "checkme-pro:CP0001".into(),
                lead: "I".into(),
                stream_id: 99,
                first_sample_index: i * 250,
                first_sample_at: start + chrono::Duration::seconds(i as i64),
                sample_rate_hz: 250.0,
                uv_per_count: 5.0,
                lead_off: false,
                samples: chunks[i as usize].to_vec(),
                received_at: Utc::now(),
            }),
        })
        .collect();
    stack
        .store
        .commit_ingest(&IngestBatch {
            messages: committed,
            watermarks: vec![],
        })
        .await
        .unwrap();

    // Restarted: the stored 40–60 s are analysed before any new chunk arrives.
    server = stack.spawn_server_ready().await;
    let reached = wait_for(&stack, max_beat, 55 * 250).await;
    assert!(reached >= 55 * 250, "re-analysis reached sample {reached}");

    // 60–90 s live again.
    for (i, chunk) in chunks.iter().enumerate().skip(60) {
        gateway.push(ecg_chunk(
            "checkme-pro:CP0001",
            99,
            i as u64 * 250,
            start,
            chunk,
        ));
    }
    gateway.publish_new().await;
    gateway.drain(DRAIN).await;
    wait_for(&stack, max_beat, 85 * 250).await;
    server.kill().unwrap();
    let _ = server.wait();

    // Every true beat up to 85 s is stored once, and nothing else: no beat lost in the crash, no
    // beat written twice by the replay, no burst of false beats from a re-learning detector.
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT sample_index FROM beats WHERE patient_id = 'p-0001' ORDER BY sample_index",
    )
    .fetch_all(stack.store.pool())
    .await
    .unwrap();
    let expected: Vec<u64> = truth
        .beats
        .iter()
        .map(|b| b.r_peak)
        .filter(|&r| r < 85 * 250)
        .collect();
    let stored_early: Vec<u64> = stored
        .iter()
        .map(|&i| i as u64)
        .filter(|&i| i < 85 * 250 - 10)
        .collect();
    assert_eq!(stored_early.len(), expected.len(), "{stored_early:?}");
    for (got, want) in stored_early.iter().zip(&expected) {
        assert!(got.abs_diff(*want) <= 10, "beat at {got}, truth {want}");
    }
    let seconds = stack
        .count("SELECT count(*) FROM heart_rate WHERE patient_id = 'p-0001'")
        .await;
    let distinct = stack
        .count("SELECT count(DISTINCT at) FROM heart_rate WHERE patient_id = 'p-0001'")
        .await;
    assert_eq!(seconds, distinct, "no second of heart rate written twice");
    assert!(seconds >= 75, "{seconds} seconds of heart rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_mid_stream_loses_and_duplicates_nothing() {
    let mut stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    stream_through_a_crash(&mut stack, async |stack: &mut Stack| {
        stack.mosquitto.kill9().unwrap();
        stack.mosquitto.restart().unwrap();
    })
    .await;
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reimaged_gateway_and_every_bad_input_class_are_handled() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let now = Utc::now();

    // A gateway that streamed, then was re-imaged: a new epoch, sequences from 0 again.
    let mut old = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([4; 16])).await;
    for i in 0..5 {
        old.push(oximetry(96.0, now - chrono::Duration::minutes(10 - i)));
    }
    old.drain(DRAIN).await;
    let mut reimaged = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([5; 16])).await;
    for i in 0..5 {
        reimaged.push(oximetry(94.0, now - chrono::Duration::minutes(4 - i)));
    }
    reimaged.drain(DRAIN).await;
    assert_eq!(
        stack
            .count("SELECT count(*) FROM observations WHERE patient_id = 'p-0002'")
            .await,
        20,
        "both epochs' seq 0..4 are stored"
    );

    // Every bad input class, each with a readable (epoch, seq) so the ack passes over it.
    let mut gw = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([6; 16])).await;
    let envelope = |gw: &TestGateway, seq: u64, body: Body| Envelope::new(gw.epoch, seq, now, body);
    let mut expected: Vec<(&str, u64)> = Vec::new();

    let seq = gw.outbox.len() as u64;
    let mut claims_other = envelope(&gw, seq, blood_pressure(120.0, Some(1), now));
    claims_other.gateway = Some(GatewayId::new("gw-p0002").unwrap());
    gw.push_raw(
        Channel::Observations,
        serde_json::to_vec(&claims_other).unwrap(),
    );
    expected.push(("gateway_mismatch", seq));

    let seq = gw.outbox.len() as u64;
    let text =
        serde_json::to_string(&envelope(&gw, seq, blood_pressure(120.0, Some(1), now))).unwrap();
    gw.push_raw(
        Channel::Observations,
        text.replacen("\"v\":1", "\"v\":99", 1).into_bytes(),
    );
    expected.push(("unsupported_version", seq));

    let seq = gw.outbox.len() as u64;
    gw.push_raw(
        Channel::Observations,
        format!(
            "{{\"v\":1,\"epoch\":\"{}\",\"seq\":{seq},\"kind\":\"observations\"}}",
            gw.epoch
        )
        .into_bytes(),
    );
    expected.push(("schema", seq));

    let seq = gw.outbox.len() as u64;
    gw.push_raw(
        Channel::Observations,
        format!(
            "{{\"v\":1,\"epoch\":\"{}\",\"seq\":{seq},\"pad\":\"{}\"}}",
            gw.epoch,
            "x".repeat(300 * 1024)
        )
        .into_bytes(),
    );
    expected.push(("payload_too_large", seq));

    let seq = gw.outbox.len() as u64;
    let text =
        serde_json::to_string(&envelope(&gw, seq, blood_pressure(120.0, Some(1), now))).unwrap();
    gw.push_raw(
        Channel::Observations,
        text.replace("\"mm[Hg]\"", "\"kg\"").into_bytes(),
    );
    expected.push(("unit_mismatch", seq));

    let seq = gw.push(blood_pressure(400.0, Some(1), now));
    expected.push(("implausible_value", seq));

    let seq = gw.outbox.len() as u64;
    let text =
        serde_json::to_vec(&envelope(&gw, seq, blood_pressure(120.0, Some(1), now))).unwrap();
    gw.push_raw(Channel::Ecg, text);
    expected.push(("channel_mismatch", seq));

    let seq = gw.push(blood_pressure(120.0, Some(2), now));
    expected.push(("device_user_mismatch", seq));

    let seq = gw.push(ecg_chunk("checkme-pro:UNKNOWN", 1, 0, now, &[0; 250]));
    expected.push(("no_active_loan", seq));

    // Patient p-0003's device: lent, but she has not consented to monitoring.
    let seq = gw.push(ecg_chunk("checkme-pro:CP0004", 1, 0, now, &[0; 250]));
    expected.push(("no_consent", seq));

    // The stream goes on after all of them; an old reading from the cuff's memory is kept, flagged.
    let good = gw.push(blood_pressure(
        118.0,
        Some(1),
        now - chrono::Duration::days(90),
    ));
    gw.drain(DRAIN).await;

    for (reason, seq) in &expected {
        let n = stack
            .count(&format!(
                "SELECT count(*) FROM dead_letters WHERE gateway_id = 'gw-p0001' AND reason = '{reason}' AND seq = {seq}"
            ))
            .await;
        assert_eq!(
            n,
            1,
            "{reason} (seq {seq}) dead-lettered once\n{}",
            stack.server_log()
        );
    }
    assert_eq!(
        stack.count("SELECT count(*) FROM dead_letters").await,
        expected.len() as i64
    );
    let flagged = stack
        .count(&format!(
            "SELECT count(*) FROM observations WHERE seq = {good} AND 'implausible_device_time' = ANY(time_flags)"
        ))
        .await;
    assert_eq!(
        flagged, 2,
        "the 90-day-old cuff reading is stored and flagged"
    );

    let stats: serde_json::Value = serde_json::from_str(&stack.run_cli(&["stats"])).unwrap();
    let gw1 = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["gateway_id"] == "gw-p0001")
        .unwrap();
    for (reason, _) in &expected {
        assert_eq!(
            gw1["dead_lettered_by_reason"][reason], 1,
            "{reason} counted"
        );
    }
    server.kill().unwrap();
    let _ = server.wait();
}

/// A gateway that publishes into another's namespace, and one with a wrong password, get nothing
/// to the server: nothing is stored, not even as a dead letter. Non-delivery is bounded by a
/// marker the rightful gateway publishes afterwards and that the server does store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_namespace_and_wrong_password_reach_nothing() {
    use mimamori_testkit::{Credentials, Transport};
    use mimamori_wire::Topic;
    use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Incoming, QoS};

    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let now = Utc::now() - chrono::Duration::seconds(60);

    // An intruder with valid credentials of its own publishes into gw-p0002's namespace. Under
    // MQTT 3.1.1 the broker PUBACKs it and drops it; wait for that PUBACK so the publish was
    // handled before the marker below.
    let intruder_epoch = Epoch::from_bytes([9; 16]);
    let intruder = stack.mosquitto.add_gateway("gw-intruder").unwrap();
    let options = stack
        .mosquitto
        .mqtt_options("gw-intruder-client", &intruder, Transport::Tls)
        .unwrap();
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    let payload = Envelope::new(intruder_epoch, 0, now, oximetry(97.0, now))
        .encode()
        .unwrap();
    let victim = GatewayId::new("gw-p0002").unwrap();
    client
        .publish(
            Topic::new(victim, Channel::Observations).to_string(),
            QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("intruder connection failed: {e}"),
            }
        }
    })
    .await
    .expect("the broker acknowledges the foreign publish (and drops it)");

    // A gateway with a wrong password is refused at CONNECT and can publish nothing.
    let rightful = stack.mosquitto.add_gateway("gw-p0003").unwrap();
    let wrong = Credentials {
        username: rightful.username.clone(),
        password: format!("{}-wrong", rightful.password),
    };
    let options = stack
        .mosquitto
        .mqtt_options("gw-p0003-wrong", &wrong, Transport::Tls)
        .unwrap();
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    let payload = Envelope::new(Epoch::from_bytes([8; 16]), 0, now, oximetry(96.0, now))
        .encode()
        .unwrap();
    let topic = Topic::new(GatewayId::new("gw-p0003").unwrap(), Channel::Observations);
    client
        .publish(topic.to_string(), QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    match event_loop.poll().await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert!(
                matches!(
                    code,
                    ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
                ),
                "{code:?}"
            );
        }
        other => panic!("a wrong password must be refused at CONNECT, got {other:?}"),
    }

    // The marker: the rightful gateway's reading is stored and acknowledged.
    let mut marker = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([7; 16])).await;
    marker.push(oximetry(95.0, now));
    marker.drain(DRAIN).await;

    assert_eq!(stored_keys(&stack, "gw-p0002", intruder_epoch).await, 0);
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM ingest_dedup WHERE epoch IN ('{intruder_epoch}', '{}')",
                Epoch::from_bytes([8; 16])
            ))
            .await,
        0,
        "nothing of the intruders is stored, not even as a dead letter"
    );
    assert_eq!(
        stored_keys(&stack, "gw-p0002", Epoch::from_bytes([7; 16])).await,
        1
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A device lent a moment ago: its first reading must find the new loan even though the loan book
/// was reloaded (for another gateway's miss) less than a second before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_lent_a_moment_ago_is_ingested_not_dead_lettered() {
    let stack = Stack::start().await;
    let _server = stack.spawn_server_ready().await;
    let mut other = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([71; 16])).await;
    let mut home = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([72; 16])).await;
    let now = Utc::now();

    // A miss elsewhere makes the server reload its loans just now.
    other.push(oximetry_of("pc60fw:00:00:00:00:00:99", 97.0, now));
    other.drain(DRAIN).await;

    // The coordinator lends p-0002 a second oximeter; its first reading follows at once.
    let new_device = "pc60fw:AA:BB:CC:00:00:42";
    stack
        .store
        .upsert_device(&Device {
            id: new_device.into(),
            model: "pc60fw".into(),
            serial: None,
            ble_address: Some("AA:BB:CC:00:00:42".into()),
            area: "setagaya".into(),
        })
        .await
        .unwrap();
    stack
        .store
        .add_loan(&Loan {
            device_id: new_device.into(),
            patient_id: "p-0002".into(),
            device_user: None,
            lent_from: now - chrono::Duration::minutes(1),
            lent_until: None,
        })
        .await
        .unwrap();
    home.push(oximetry_of(new_device, 95.0, now));
    home.drain(DRAIN).await;

    let stored = stack
        .count(&format!(
            "SELECT count(*) FROM observations WHERE device_id = '{new_device}' AND patient_id = 'p-0002'"
        ))
        .await;
    let dead = stack
        .count("SELECT count(*) FROM dead_letters WHERE gateway_id = 'gw-p0002'")
        .await;
    assert_eq!((stored, dead), (2, 0), "{}", stack.server_log());
}
