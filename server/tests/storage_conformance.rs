//! The storage conformance suite: one body of checks, run against TimescaleDB (a real throwaway
//! cluster from the testkit) and against SQLite.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use std::collections::BTreeSet;

use mimamori_server::alerts::engine::EcgQuality;
use mimamori_server::http::auth::password::verify_password;
use mimamori_server::registry::{Directory, RegistryFile};

use mimamori_server::sinks::sqlite::SqliteStore;
use mimamori_server::sinks::timescale::TimescaleStore;
use mimamori_server::storage::{
    AnalysisState, BeatRecord, Checkpoint, Content, DeadLetter, DerivedBatch, Device, EcgRecord,
    EpisodeKind, EpisodeRecord, Gateway, GatewayAllowList, HeartRateRecord, IngestBatch,
    IngestMessage, Loan, ObservationRecord, PresenceRecord, QualityRunRecord, Series, Storage,
    Watermark,
};
use mimamori_wire::{AllowedDevice, Epoch, GatewayId, VitalSign};

const DEMO_REGISTRY: &str = include_str!("../../fixtures/registry/demo.toml");

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap()
}

fn gw(id: &str) -> GatewayId {
    GatewayId::new(id).unwrap()
}

fn observation(
    patient: &str,
    vital: VitalSign,
    value: f64,
    at: DateTime<Utc>,
) -> ObservationRecord {
    ObservationRecord {
        patient_id: patient.into(),
        device_id: "pc60fw:AA:BB:CC:00:00:03".into(),
        vital,
        value,
        measured_at: at,
        device_time: Some(at.naive_utc() + Duration::hours(9)),
        received_at: at + Duration::seconds(2),
        time_flags: vec!["stored_on_device".into()],
    }
}

fn message(gateway: &str, key: Option<(Epoch, u64)>, content: Content) -> IngestMessage {
    IngestMessage {
        gateway: gw(gateway),
        key,
        known_duplicate: false,
        received_at: t0(),
        sent_at: Some(t0() - Duration::milliseconds(1500)),
        content,
    }
}

fn ecg_record(first_sample_index: u64, samples: Vec<i16>) -> EcgRecord {
    EcgRecord {
        patient_id: "p-0001".into(),
        device_id: "checkme-pro:CP0001".into(),
        lead: "I".into(),
        stream_id: u64::MAX - 7, // exercises the bit-cast of random stream ids
        first_sample_index,
        first_sample_at: t0(),
        sample_rate_hz: 250.0,
        uv_per_count: 2.5,
        lead_off: false,
        samples,
        received_at: t0() + Duration::milliseconds(300),
    }
}

async fn conformance<S: Storage>(store: &S, directory: &Directory) {
    store.migrate().await.expect("migrations apply twice");
    registry_round_trips(store, directory).await;
    allow_lists_follow_loans_and_consent(store).await;
    ingest_is_stored_once_with_watermarks_and_counts(store).await;
    directory_and_dashboard_queries(store, directory).await;
    trend_returns_at_most_the_requested_points(store).await;
    derived_series_and_checkpoints_round_trip(store).await;
    rhythm_episodes_quality_runs_and_analysis_state_round_trip(store).await;
    retention_drops_only_what_is_older_than_the_cutoff(store).await;
}

async fn registry_round_trips<S: Storage>(store: &S, directory: &Directory) {
    let registry = RegistryFile::parse(DEMO_REGISTRY).unwrap();
    let report = registry.apply(store, directory).await.unwrap();
    assert_eq!(report.loans_added, 4);
    assert_eq!(
        registry.apply(store, directory).await.unwrap().loans_added,
        0,
        "seeding twice adds nothing"
    );
    let patients = store.patients().await.unwrap();
    assert_eq!(patients, registry.patients);
    let loans = store.loans().await.unwrap();
    assert_eq!(loans.len(), 4);
    let cuff = loans
        .iter()
        .find(|l| l.device_id == "ble-blood-pressure:UA0001")
        .unwrap();
    assert_eq!(cuff.device_user, Some(1));
    assert_eq!(
        cuff.consent_monitoring_at,
        registry.patients[0].consent_monitoring_at
    );
}

/// What the HTTP edge reads: accounts and teams, clinics, whom a gateway serves, the newest
/// readings first, and each lent device with its gateway's state.
async fn directory_and_dashboard_queries<S: Storage>(store: &S, directory: &Directory) {
    let nurse = directory.account_by_login("nurse").await.unwrap().unwrap();
    assert_eq!(nurse.user_id, "u-nurse");
    assert_eq!(nurse.roles, vec!["nurse".to_owned()]);
    assert_eq!(nurse.care_teams, BTreeSet::from(["setagaya".to_owned()]));
    assert!(verify_password("mimamori-nurse", &nurse.password_phc).unwrap());
    assert!(!verify_password("mimamori-doctor", &nurse.password_phc).unwrap());
    let doctor = directory.account_by_login("doctor").await.unwrap().unwrap();
    assert_eq!(doctor.care_teams.len(), 2);
    assert!(
        directory
            .account_by_login("nobody")
            .await
            .unwrap()
            .is_none()
    );

    let teams = directory.care_teams_by_patient().await.unwrap();
    assert_eq!(teams["p-0001"], BTreeSet::from(["setagaya".to_owned()]));
    assert_eq!(teams["p-0004"], BTreeSet::from(["tamagawa".to_owned()]));
    let clinic = directory.clinic("c-setagaya-home").await.unwrap().unwrap();
    assert_eq!(clinic.director, "佐藤 健一");
    assert!(directory.clinic("c-none").await.unwrap().is_none());
    assert_eq!(
        directory.patients_of_gateway("gw-p0002").await.unwrap(),
        vec!["p-0002".to_owned()]
    );
    directory.ping().await.unwrap();

    let epoch = Epoch::from_bytes([9; 16]);
    let readings: Vec<ObservationRecord> = (1..=3)
        .map(|h| {
            observation(
                "p-0001",
                VitalSign::BodyTemperature,
                36.0 + h as f64 / 10.0,
                t0() + Duration::hours(h),
            )
        })
        .collect();
    store
        .commit_ingest(&IngestBatch {
            messages: vec![message(
                "gw-p0001",
                Some((epoch, 0)),
                Content::Observations(readings),
            )],
            watermarks: vec![],
        })
        .await
        .unwrap();
    let newest = store
        .recent_observations(
            "p-0001",
            VitalSign::BodyTemperature,
            t0(),
            t0() + Duration::days(1),
            2,
        )
        .await
        .unwrap();
    let values: Vec<f64> = newest.iter().map(|o| o.value).collect();
    assert_eq!(values, vec![36.3, 36.2], "newest first, at most the limit");
    assert_eq!(newest[0].measured_at, t0() + Duration::hours(3));

    let devices = store.device_states("p-0002", t0()).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, "pc60fw:AA:BB:CC:00:00:03");
    assert_eq!(devices[0].model, "pc60fw");
    assert_eq!(devices[0].gateway_id.as_deref(), Some("gw-p0002"));
    assert_eq!(
        devices[0].gateway_online,
        Some(true),
        "from the gateway's presence"
    );
    assert!(
        store
            .device_states("p-0002", t0() - Duration::days(3650))
            .await
            .unwrap()
            .is_empty(),
        "nothing was lent then"
    );
}

/// Runs after the demo registry is seeded; leaves the demo loans as they were.
async fn allow_lists_follow_loans_and_consent<S: Storage>(store: &S) {
    let lists = store.gateway_allow_lists(t0()).await.unwrap();
    let devices_of = |lists: &[GatewayAllowList], gateway: &str| {
        lists
            .iter()
            .find(|l| l.gateway_id == gateway)
            .unwrap_or_else(|| panic!("{gateway} listed"))
            .devices
            .clone()
    };
    assert_eq!(
        lists
            .iter()
            .map(|l| l.gateway_id.as_str())
            .collect::<Vec<_>>(),
        ["gw-p0001", "gw-p0002", "gw-p0003"]
    );
    assert_eq!(lists[0].patient_id.as_deref(), Some("p-0001"));
    assert_eq!(
        devices_of(&lists, "gw-p0001"),
        vec![
            AllowedDevice {
                model: "ble-blood-pressure".into(),
                serial: Some("UA0001".into()),
                ble_address: None,
                device_user: Some(1),
            },
            AllowedDevice {
                model: "checkme-pro".into(),
                serial: Some("CP0001".into()),
                ble_address: Some("AA:BB:CC:00:00:01".into()),
                device_user: None,
            },
        ],
        "both loans of p-0001, ordered by model"
    );
    assert_eq!(devices_of(&lists, "gw-p0002").len(), 1);
    assert!(
        devices_of(&lists, "gw-p0003").is_empty(),
        "p-0003's device is lent but she has not consented"
    );
    // Before p-0002's consent and loan began, her gateway reads nothing.
    let before = store
        .gateway_allow_lists(Utc.with_ymd_and_hms(2026, 1, 20, 0, 0, 0).unwrap())
        .await
        .unwrap();
    assert!(devices_of(&before, "gw-p0002").is_empty());

    // A loan that ends and a consent that is withdrawn remove the device from then on.
    store
        .upsert_device(&Device {
            id: "pc60fw:AA:BB:CC:00:00:99".into(),
            model: "pc60fw".into(),
            serial: None,
            ble_address: Some("AA:BB:CC:00:00:99".into()),
            area: "setagaya".into(),
        })
        .await
        .unwrap();
    let loan = store
        .add_loan(&Loan {
            device_id: "pc60fw:AA:BB:CC:00:00:99".into(),
            patient_id: "p-0001".into(),
            device_user: None,
            lent_from: t0() - Duration::days(1),
            lent_until: None,
        })
        .await
        .unwrap();
    assert_eq!(
        devices_of(&store.gateway_allow_lists(t0()).await.unwrap(), "gw-p0001").len(),
        3
    );
    store.end_loan(loan, t0()).await.unwrap();
    assert_eq!(
        devices_of(
            &store
                .gateway_allow_lists(t0() - Duration::seconds(1))
                .await
                .unwrap(),
            "gw-p0001"
        )
        .len(),
        3,
        "still lent a second before it ended"
    );
    assert_eq!(
        devices_of(&store.gateway_allow_lists(t0()).await.unwrap(), "gw-p0001").len(),
        2,
        "a loan ends at lent_until"
    );
    let mut p2 = store
        .patients()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id == "p-0002")
        .unwrap();
    p2.consent_monitoring_withdrawn_at = Some(t0());
    store.upsert_patient(&p2).await.unwrap();
    assert!(
        devices_of(&store.gateway_allow_lists(t0()).await.unwrap(), "gw-p0002").is_empty(),
        "withdrawn consent empties the list"
    );
    p2.consent_monitoring_withdrawn_at = None;
    store.upsert_patient(&p2).await.unwrap();

    // A gateway serving no patient is listed with nothing to read.
    store
        .upsert_gateway(&Gateway {
            id: "gw-spare".into(),
            patient_id: None,
            note: Some("on the shelf".into()),
        })
        .await
        .unwrap();
    assert!(devices_of(&store.gateway_allow_lists(t0()).await.unwrap(), "gw-spare").is_empty());
}

async fn ingest_is_stored_once_with_watermarks_and_counts<S: Storage>(store: &S) {
    let epoch = Epoch::from_bytes([7; 16]);
    let obs = vec![
        observation("p-0002", VitalSign::Spo2, 93.0, t0()),
        observation("p-0002", VitalSign::PulseRateOximetry, 71.0, t0()),
    ];
    let samples: Vec<i16> = (0..250).map(|i| ((i * 37) % 900 - 450) as i16).collect();
    let dead = DeadLetter {
        reason: "schema",
        detail: "payload does not match the schema".into(),
        topic: "mimamori/v1/gw/gw-p0002/up/obs".into(),
        payload: b"{\"v\":1,".to_vec(),
    };
    let batch = IngestBatch {
        messages: vec![
            message(
                "gw-p0002",
                Some((epoch, 0)),
                Content::Observations(obs.clone()),
            ),
            message(
                "gw-p0001",
                Some((epoch, 0)),
                Content::Ecg(ecg_record(0, samples.clone())),
            ),
            message("gw-p0002", Some((epoch, 1)), Content::DeadLetter(dead)),
            // The same key again within the batch: stored once.
            message(
                "gw-p0002",
                Some((epoch, 0)),
                Content::Observations(obs.clone()),
            ),
            message(
                "gw-p0002",
                None,
                Content::Presence(PresenceRecord {
                    online: true,
                    software_version: "0.1.0".into(),
                    outbox_depth: Some(3),
                }),
            ),
            message(
                "gw-p0002",
                Some((epoch, 5)),
                Content::Observations(obs[..1].to_vec()),
            ),
        ],
        watermarks: vec![Watermark {
            gateway: gw("gw-p0002"),
            epoch,
            stored_through: 1,
        }],
    };
    let outcome = store.commit_ingest(&batch).await.unwrap();
    assert_eq!(outcome.fresh, vec![true, true, true, false, true, true]);

    // A redelivery after a crash: the same key is a duplicate, nothing is written twice.
    let again = IngestBatch {
        messages: vec![batch.messages[0].clone()],
        watermarks: vec![],
    };
    assert_eq!(
        store.commit_ingest(&again).await.unwrap().fresh,
        vec![false]
    );

    let stored = store
        .observations(
            "p-0002",
            VitalSign::Spo2,
            t0() - Duration::hours(1),
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![obs[0].clone(), obs[0].clone()],
        "seq 0 and seq 5, each once"
    );
    let chunks = store
        .ecg_chunks(
            "p-0001",
            t0() - Duration::hours(1),
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(chunks, vec![ecg_record(0, samples)]);

    let mut marks = store.load_watermarks().await.unwrap();
    marks.sort_by(|a, b| a.gateway.cmp(&b.gateway));
    assert_eq!(marks.len(), 2);
    assert_eq!(
        (marks[0].stored_through, marks[0].stored_above.clone()),
        (None, vec![0])
    );
    assert_eq!(
        (marks[1].stored_through, marks[1].stored_above.clone()),
        (Some(1), vec![5])
    );

    let stats = store.gateway_stats(None).await.unwrap();
    let p2 = stats.iter().find(|s| s.gateway_id == "gw-p0002").unwrap();
    assert_eq!(
        (p2.received, p2.stored, p2.duplicates, p2.dead_lettered),
        (6, 3, 2, 1)
    );
    assert_eq!(p2.dead_lettered_by_reason.get("schema"), Some(&1));
    assert_eq!(p2.clock_offset_ms, Some(1500));
    assert_eq!(p2.last_seen, Some(t0()));
    let later = store
        .gateway_stats(Some(t0() + Duration::hours(1)))
        .await
        .unwrap();
    let p2_later = later.iter().find(|s| s.gateway_id == "gw-p0002").unwrap();
    assert_eq!(p2_later.received, 0, "--since excludes older minutes");
}

async fn trend_returns_at_most_the_requested_points<S: Storage>(store: &S) {
    let start = t0() - Duration::days(400);
    let epoch = Epoch::from_bytes([8; 16]);
    // A year of hourly heart-rate observations, 8,760 values between 60 and 99.
    let records: Vec<ObservationRecord> = (0..8760)
        .map(|h| {
            observation(
                "p-0001",
                VitalSign::HeartRate,
                f64::from(60 + h % 40),
                start + Duration::hours(i64::from(h)),
            )
        })
        .collect();
    let messages = records
        .chunks(256)
        .enumerate()
        .map(|(i, chunk)| {
            message(
                "gw-p0001",
                Some((epoch, i as u64)),
                Content::Observations(chunk.to_vec()),
            )
        })
        .collect();
    store
        .commit_ingest(&IngestBatch {
            messages,
            watermarks: vec![],
        })
        .await
        .unwrap();
    let end = start + Duration::days(365);
    let points = store
        .trend(
            "p-0001",
            Series::Vital(VitalSign::HeartRate),
            start,
            end,
            2000,
        )
        .await
        .unwrap();
    assert!(
        points.len() <= 2000 && points.len() > 1500,
        "{} points",
        points.len()
    );
    assert_eq!(points.iter().map(|p| p.count).sum::<i64>(), 8760);
    assert_eq!(points.first().unwrap().at, start);
    let min = points.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
    let max = points
        .iter()
        .map(|p| p.max)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!((min, max), (60.0, 99.0));
    let coarse = store
        .trend(
            "p-0001",
            Series::Vital(VitalSign::HeartRate),
            start,
            end,
            12,
        )
        .await
        .unwrap();
    assert!(coarse.len() <= 12, "{}", coarse.len());
    let mean = coarse.iter().map(|p| p.mean * p.count as f64).sum::<f64>() / 8760.0;
    assert!((mean - 79.5).abs() < 0.01, "{mean}");
}

async fn derived_series_and_checkpoints_round_trip<S: Storage>(store: &S) {
    let beat = |i: u64, rr: Option<f64>| BeatRecord {
        patient_id: "p-0001".into(),
        at: t0() + Duration::milliseconds(i as i64 * 4),
        stream_id: 42,
        sample_index: i,
        rr_ms: rr,
        late: false,
    };
    let batch = DerivedBatch {
        beats: vec![beat(100, None), beat(300, Some(800.0))],
        heart_rate: (0..10)
            .map(|s| HeartRateRecord {
                patient_id: "p-0001".into(),
                at: t0() + Duration::seconds(s),
                bpm: 75.0,
            })
            .collect(),
        gaps: vec![],
        episodes: vec![],
        quality: vec![],
        checkpoints: vec![Checkpoint {
            patient_id: "p-0001".into(),
            stream_id: 42,
            next_index: 2500,
            last_beat_index: Some(300),
            updated_at: t0(),
            state: None,
        }],
    };
    store.store_derived(&batch).await.unwrap();
    let beats = store
        .beats("p-0001", t0(), t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(beats, batch.beats);
    assert_eq!(store.checkpoints().await.unwrap(), batch.checkpoints);
    let hr = store
        .trend(
            "p-0001",
            Series::HeartRate,
            t0(),
            t0() + Duration::seconds(10),
            5,
        )
        .await
        .unwrap();
    assert_eq!(hr.len(), 5);
    assert!(hr.iter().all(|p| p.count == 2 && p.mean == 75.0));
}

async fn rhythm_episodes_quality_runs_and_analysis_state_round_trip<S: Storage>(store: &S) {
    let patient = "p-0003";
    let at = |s: i64| t0() + Duration::seconds(s);
    let episode = |kind, start_s: i64, end_s: Option<i64>| EpisodeRecord {
        patient_id: patient.into(),
        stream_id: u64::MAX - 1,
        kind,
        start_index: start_s as u64 * 250,
        started_at: at(start_s),
        ended_at: end_s.map(at),
        signal_usable: kind != EpisodeKind::Asystole,
        max_rr_ms: (kind == EpisodeKind::Asystole).then_some(5200.0),
        extreme_per_min: (kind == EpisodeKind::Tachycardia).then_some(151.5),
    };
    let run = |quality, from: i64, to: i64| QualityRunRecord {
        patient_id: patient.into(),
        stream_id: u64::MAX - 1,
        quality,
        started_at: at(from),
        ended_at: at(to),
    };
    let checkpoint = |next_index: u64, state: Option<AnalysisState>| Checkpoint {
        patient_id: patient.into(),
        stream_id: u64::MAX - 1,
        next_index,
        last_beat_index: Some(next_index - 100),
        updated_at: at(next_index as i64 / 250),
        state,
    };
    let state = AnalysisState {
        index: 7500,
        at: at(30),
        bytes: (0..=255).cycle().take(6000).collect(),
    };
    // First flush: AF and tachycardia open, an asystole over, quality as it stood.
    store
        .store_derived(&DerivedBatch {
            episodes: vec![
                episode(EpisodeKind::Af, 0, None),
                episode(EpisodeKind::Asystole, 40, Some(46)),
                episode(EpisodeKind::Tachycardia, 50, None),
            ],
            quality: vec![
                run(EcgQuality::Usable, 0, 40),
                run(EcgQuality::LeadOff, 40, 45),
                run(EcgQuality::Usable, 45, 58),
            ],
            checkpoints: vec![checkpoint(15_000, Some(state.clone()))],
            ..DerivedBatch::default()
        })
        .await
        .unwrap();
    // Next flush: AF ends (same key), the last run grows, a checkpoint without a new state.
    store
        .store_derived(&DerivedBatch {
            episodes: vec![episode(EpisodeKind::Af, 0, Some(90))],
            quality: vec![run(EcgQuality::Usable, 45, 95)],
            checkpoints: vec![checkpoint(24_000, None)],
            ..DerivedBatch::default()
        })
        .await
        .unwrap();

    let episodes = store
        .rhythm_episodes(patient, at(0), at(600))
        .await
        .unwrap();
    assert_eq!(
        episodes,
        vec![
            episode(EpisodeKind::Af, 0, Some(90)),
            episode(EpisodeKind::Asystole, 40, Some(46)),
            episode(EpisodeKind::Tachycardia, 50, None),
        ]
    );
    // Overlap, not containment: an open episode reaches any later range; a closed one does not.
    let later = store
        .rhythm_episodes(patient, at(100), at(200))
        .await
        .unwrap();
    assert_eq!(later, vec![episode(EpisodeKind::Tachycardia, 50, None)]);
    assert!(
        store
            .rhythm_episodes("p-0001", at(0), at(600))
            .await
            .unwrap()
            .is_empty()
    );

    let runs = store.quality_runs(patient, at(42), at(50)).await.unwrap();
    assert_eq!(
        runs,
        vec![
            run(EcgQuality::LeadOff, 40, 45),
            run(EcgQuality::Usable, 45, 95)
        ]
    );
    assert_eq!(
        store
            .quality_runs(patient, at(0), at(600))
            .await
            .unwrap()
            .len(),
        3
    );

    // The checkpoint moved on and kept the last state taken.
    let stored = store.checkpoints().await.unwrap();
    let mine = stored.iter().find(|c| c.patient_id == patient).unwrap();
    assert_eq!(*mine, checkpoint(24_000, Some(state)));
}

async fn retention_drops_only_what_is_older_than_the_cutoff<S: Storage>(store: &S) {
    let old = t0() - Duration::days(6 * 365);
    let epoch = Epoch::from_bytes([9; 16]);
    store
        .commit_ingest(&IngestBatch {
            messages: vec![message(
                "gw-p0002",
                Some((epoch, 0)),
                Content::Observations(vec![observation("p-0002", VitalSign::Spo2, 95.0, old)]),
            )],
            watermarks: vec![],
        })
        .await
        .unwrap();
    let range = |s: &S| {
        let s = s.clone();
        async move {
            s.observations(
                "p-0002",
                VitalSign::Spo2,
                old - Duration::days(1),
                t0() + Duration::days(1),
            )
            .await
            .unwrap()
            .len()
        }
    };
    assert_eq!(range(store).await, 3);
    let report = store
        .apply_retention(
            t0() - Duration::days(5 * 365 + 2),
            t0() - Duration::days(3 * 365 + 1),
        )
        .await
        .unwrap();
    assert!(
        report
            .dropped
            .iter()
            .any(|(table, n)| table == "observations" && *n >= 1),
        "{report:?}"
    );
    assert_eq!(
        range(store).await,
        2,
        "only the six-year-old reading is gone"
    );
}

#[tokio::test]
async fn sqlite_backend_conforms() {
    let store = SqliteStore::in_memory().await.unwrap();
    conformance(&store, &Directory::from(&store)).await;
}

#[tokio::test]
async fn timescale_backend_conforms() {
    let postgres = mimamori_testkit::Postgres::shared().expect("throwaway PostgreSQL");
    let url = postgres.create_database().unwrap();
    let store = TimescaleStore::connect(&url, 4).await.unwrap();
    conformance(&store, &Directory::from(&store)).await;
}
