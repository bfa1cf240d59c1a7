//! The contract as a peer sees it: frozen payloads of every version still decode, every message
//! round-trips, and no input makes the decoder panic.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use mimamori_wire::limits::{
    MAX_ECG_SAMPLES_PER_CHUNK, MAX_OBSERVATIONS_PER_BATCH, MAX_PAYLOAD_BYTES,
};
use mimamori_wire::*;
use proptest::prelude::*;

fn frozen(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/frozen/v1")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gateway() -> GatewayId {
    GatewayId::new("home-0001").unwrap()
}

#[test]
fn frozen_v1_uplink_payloads_decode_on_their_channels() {
    let cases = [
        ("observations.json", Channel::Observations),
        (
            "observations-oximeter-no-device-time.json",
            Channel::Observations,
        ),
        ("ecg.json", Channel::Ecg),
        ("device_status.json", Channel::DeviceStatus),
        ("presence.json", Channel::Presence),
        ("presence-last-will.json", Channel::Presence),
    ];
    for (file, channel) in cases {
        let envelope = Envelope::decode_from(&frozen(file), &gateway(), channel)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(envelope.v, 1);
        assert_eq!(
            envelope.epoch.to_string(),
            "6f1c2a9e0b3d4c5e8f7a6b5c4d3e2f10"
        );
        let again = Envelope::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(again, envelope, "{file} does not round-trip");
    }
}

#[test]
fn frozen_observations_keep_codes_units_and_both_times() {
    let envelope = Envelope::decode(&frozen("observations.json")).unwrap();
    let Body::Observations(batch) = envelope.body else {
        panic!("not observations")
    };
    let systolic = &batch.observations[0];
    assert_eq!(systolic.vital, VitalSign::SystolicBp);
    assert_eq!(systolic.unit, Ucum::MillimetreOfMercury);
    assert_eq!(systolic.value, 142.0);
    assert_eq!(
        systolic.measured_at,
        Utc.with_ymd_and_hms(2026, 11, 24, 22, 14, 0).unwrap()
    );
    assert_eq!(
        systolic.device_time.unwrap().to_string(),
        "2026-11-25 07:14:00"
    );
    assert_eq!(systolic.device_user, Some(1));
}

#[test]
fn frozen_ecg_samples_decode_to_int16() {
    let Body::Ecg(chunk) = Envelope::decode(&frozen("ecg.json")).unwrap().body else {
        panic!("not ecg")
    };
    assert_eq!(
        chunk.samples,
        [0, 10, 20, 30, 40, 30, 20, 10, 0, -10, -20, -10]
    );
    assert_eq!(chunk.end_sample_index(), 1262);
}

#[test]
fn frozen_downlink_payloads_decode() {
    let ack = StoredAck::decode(&frozen("ack.json")).unwrap();
    assert_eq!(ack.stored_through, 45);
    assert_eq!(StoredAck::decode(&ack.encode()).unwrap(), ack);
    let config = GatewayConfig::decode(&frozen("config.json")).unwrap();
    assert_eq!(config.allowed_devices.len(), 2);
    assert_eq!(config.allowed_devices[1].device_user, Some(1));
    assert_eq!(GatewayConfig::decode(&config.encode()).unwrap(), config);
}

fn edit(file: &str, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&frozen(file)).unwrap();
    f(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn each_kind_of_bad_payload_gets_its_own_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edit("observations.json", |v| v["v"] = 2.into()),
            "unsupported_version",
        ),
        (
            edit("observations.json", |v| v["v"] = 0.into()),
            "unsupported_version",
        ),
        (
            edit("observations.json", |v| {
                v["observations"][0]["unit"] = "Cel".into()
            }),
            "unit_mismatch",
        ),
        (
            edit("observations.json", |v| {
                v["observations"][0]["unit"] = "mmHg".into()
            }),
            "schema",
        ),
        (
            edit("observations.json", |v| {
                v["observations"][0]["code"] = "1234-5".into()
            }),
            "schema",
        ),
        (
            edit("observations.json", |v| {
                v["observations"] = serde_json::json!([])
            }),
            "empty",
        ),
        (
            edit("observations.json", |v| v["epoch"] = "xyz".into()),
            "schema",
        ),
        (
            edit("observations.json", |v| v["kind"] = "video".into()),
            "schema",
        ),
        (
            edit("ecg.json", |v| v["sample_rate_hz"] = 10.0.into()),
            "sample_rate",
        ),
        (edit("ecg.json", |v| v["uv_per_count"] = 0.0.into()), "gain"),
        (edit("ecg.json", |v| v["samples"] = "AA==".into()), "schema"),
        (
            edit("device_status.json", |v| v["battery_percent"] = 101.into()),
            "out_of_range",
        ),
        (b"{not json".to_vec(), "schema"),
        (vec![b' '; MAX_PAYLOAD_BYTES + 1], "payload_too_large"),
    ];
    for (payload, reason) in cases {
        let err = Envelope::decode(&payload).expect_err(reason);
        assert_eq!(err.reason(), reason, "{err}");
    }
}

#[test]
fn the_topic_decides_the_gateway_and_the_channel() {
    let claims_other = edit("observations.json", |v| v["gateway"] = "home-0002".into());
    let err = Envelope::decode_from(&claims_other, &gateway(), Channel::Observations).unwrap_err();
    assert_eq!(err.reason(), "gateway_mismatch");
    let claims_self = edit("observations.json", |v| v["gateway"] = "home-0001".into());
    assert!(Envelope::decode_from(&claims_self, &gateway(), Channel::Observations).is_ok());
    let err =
        Envelope::decode_from(&frozen("ecg.json"), &gateway(), Channel::Observations).unwrap_err();
    assert_eq!(err.reason(), "channel_mismatch");
}

#[test]
fn encode_refuses_what_a_server_would_refuse() {
    let Body::Ecg(mut chunk) = Envelope::decode(&frozen("ecg.json")).unwrap().body else {
        panic!()
    };
    chunk.samples = vec![0; MAX_ECG_SAMPLES_PER_CHUNK + 1];
    let envelope = Envelope::new(Epoch::from_bytes([7; 16]), 1, Utc::now(), Body::Ecg(chunk));
    assert_eq!(envelope.encode().unwrap_err().reason(), "too_many_items");
}

#[test]
fn possible_ranges_are_checked_separately_from_decoding() {
    let Body::Observations(mut batch) =
        Envelope::decode(&frozen("observations.json")).unwrap().body
    else {
        panic!()
    };
    let systolic = &mut batch.observations[0];
    assert!(systolic.check_possible().is_ok());
    systolic.value = 999.0;
    assert_eq!(
        systolic.check_possible().unwrap_err().reason(),
        "implausible_value"
    );
}

// ---- property tests ----

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_600_000_000i64..2_100_000_000, 0u32..1000)
        .prop_map(|(s, ms)| Utc.timestamp_opt(s, ms * 1_000_000).unwrap())
}

fn device() -> impl Strategy<Value = DeviceRef> {
    (
        "[a-z0-9:-]{1,40}",
        "[a-z-]{1,20}",
        proptest::option::of("[0-9A-F:]{17}"),
    )
        .prop_map(|(id, model, ble_address)| DeviceRef {
            id,
            model,
            ble_address,
        })
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        0..VitalSign::ALL.len(),
        -1000.0f64..1000.0,
        instant(),
        instant(),
        any::<Option<u8>>(),
    )
        .prop_map(|(i, value, measured_at, received_at, device_user)| {
            let vital = VitalSign::ALL[i];
            Observation {
                vital,
                unit: vital.unit(),
                value,
                measured_at,
                device_time: None,
                received_at,
                time_flags: vec![],
                device_user,
            }
        })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            device(),
            any::<bool>(),
            prop::collection::vec(observation(), 1..MAX_OBSERVATIONS_PER_BATCH)
        )
            .prop_map(|(device, clock_synced, observations)| {
                Body::Observations(ObservationBatch {
                    device,
                    clock_synced,
                    observations,
                })
            }),
        (
            device(),
            50.0f64..2000.0,
            0.01f64..1000.0,
            any::<u64>(),
            0u64..u64::MAX / 2,
            instant(),
            prop::collection::vec(any::<i16>(), 1..2000)
        )
            .prop_map(
                |(device, rate, gain, stream_id, first, at, samples)| Body::Ecg(EcgChunk {
                    device,
                    lead: "II".into(),
                    sample_rate_hz: rate,
                    uv_per_count: gain,
                    stream_id,
                    first_sample_index: first,
                    first_sample_at: at,
                    device_time: None,
                    received_at: at,
                    clock_synced: true,
                    lead_off: false,
                    samples,
                })
            ),
    ]
}

proptest! {
    #[test]
    fn every_valid_message_round_trips(epoch in any::<[u8; 16]>(), seq in any::<u64>(), at in instant(), body in body()) {
        let envelope = Envelope::new(Epoch::from_bytes(epoch), seq, at, body);
        let bytes = envelope.encode().unwrap();
        prop_assert_eq!(Envelope::decode(&bytes).unwrap(), envelope);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Envelope::decode(&bytes);
        let _ = StoredAck::decode(&bytes);
        let _ = GatewayConfig::decode(&bytes);
        let _ = Topic::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_valid_payloads_never_panic(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut payload = frozen("ecg.json");
        let i = index.index(payload.len());
        payload[i] = byte;
        let _ = Envelope::decode(&payload);
    }
}
