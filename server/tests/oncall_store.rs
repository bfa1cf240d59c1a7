//! Rota persistence: publish a month, read it back, replace part of it, refuse overlaps — one
//! test body for SQLite and PostgreSQL.

mod common;

use chrono::{DateTime, Days, TimeZone, Utc};
use mimamori_server::oncall::coverage::{CoverageConfig, PROGRAM_TIME_ZONE};
use mimamori_server::oncall::escalation::AlertRouting;
use mimamori_server::oncall::network;
use mimamori_server::oncall::rota::{CareNetwork, PatientId, Rota, Shift};
use mimamori_server::oncall::route::OnCallResolver;
use mimamori_server::oncall::store::{RotaStore, RotaStoreError};

use sqlx::{Database, Pool};

fn jst(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    PROGRAM_TIME_ZONE
        .with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// The demo network and the fixture rotation's shifts for November 2026 (starting 1 Nov 09:00
/// JST).
fn november() -> (CareNetwork, Vec<Shift>) {
    let (records, mut file) = common::demo_routing_records_and_rota();
    let rotation = file.rotations.pop().unwrap();
    let shifts: Vec<Shift> = rotation
        .shifts()
        .unwrap()
        .into_iter()
        .filter(|s| s.starts_at >= jst(11, 1, 9) && s.starts_at < jst(12, 1, 9))
        .collect();
    assert_eq!(shifts.len(), 30);
    let (network, _) = network::build(&records, shifts.clone()).unwrap();
    (network, shifts)
}

/// The same checks for every backend.
async fn exercise(pool: &impl RotaStore) {
    let (network, shifts) = november();
    let (from, to) = (jst(11, 1, 9), jst(12, 1, 9));
    pool.publish(&network, from, to, shifts.clone())
        .await
        .unwrap();

    // Everything comes back as it went in, backups in call order.
    let loaded = pool.load(from, to).await.unwrap();
    assert_eq!(loaded, shifts);
    // A window in the middle returns the shifts overlapping it, including the one already
    // running at its start.
    let window = pool.load(jst(11, 10, 3), jst(11, 11, 3)).await.unwrap();
    assert_eq!(window, shifts[8..10]);

    // Republishing one week swaps its shifts and keeps the rest.
    let week_from = jst(11, 16, 9);
    let week_to = week_from + Days::new(7);
    let mut swapped: Vec<Shift> = shifts
        .iter()
        .filter(|s| s.starts_at >= week_from && s.starts_at < week_to)
        .cloned()
        .collect();
    for s in &mut swapped {
        s.doctor = "u-sato".into();
        s.backups = vec!["u-kato".into()];
    }
    pool.publish(&network, week_from, week_to, swapped.clone())
        .await
        .unwrap();
    let loaded = pool.load(from, to).await.unwrap();
    assert_eq!(loaded.len(), 30);
    assert_eq!(loaded[15..22], swapped[..]);
    assert_eq!(loaded[..15], shifts[..15]);

    // The stored rota routes alerts.
    let rota = Rota::new(loaded, &network).unwrap();
    let routing = OnCallResolver::new(CoverageConfig::default(), network.clone(), rota);
    let plan = routing
        .escalation_plan(&PatientId::from("p-0001"), jst(11, 18, 23))
        .unwrap();
    assert_eq!(plan.recipient(0).unwrap().name, "佐藤 健一");
    assert_eq!(plan.recipient(1).unwrap().name, "加藤 大輔");

    // A shift overlapping one that is kept is refused, and nothing is written.
    let mut overlapping = shifts[20].clone();
    overlapping.starts_at = jst(12, 1, 8); // an hour before 30 Nov's shift ends
    overlapping.ends_at = jst(12, 2, 9);
    let err = pool
        .publish(&network, jst(12, 1, 0), jst(12, 2, 0), vec![overlapping])
        .await
        .unwrap_err();
    assert!(matches!(err, RotaStoreError::Invalid(_)), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(pool.load(jst(12, 1, 9), jst(12, 3, 0)).await.unwrap(), []);

    // A shift outside the period being published is refused.
    let err = pool
        .publish(
            &network,
            jst(12, 5, 0),
            jst(12, 6, 0),
            vec![shifts[0].clone()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RotaStoreError::OutsidePeriod { .. }), "{err}");
}

async fn migrated<DB: Database>(pool: Pool<DB>, migrator: sqlx::migrate::Migrator) -> Pool<DB>
where
    <DB as Database>::Connection: sqlx::migrate::Migrate,
{
    migrator.run(&pool).await.unwrap();
    pool
}

#[tokio::test]
async fn rota_round_trips_through_sqlite() {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    exercise(&migrated(pool, sqlx::migrate!("./migrations/sqlite")).await).await;
}

#[tokio::test]
async fn rota_round_trips_through_postgres() {
    let url = mimamori_testkit::Postgres::shared()
        .expect("throwaway PostgreSQL")
        .create_database()
        .expect("a fresh database");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    exercise(&migrated(pool, sqlx::migrate!("./migrations/postgres")).await).await;
}
