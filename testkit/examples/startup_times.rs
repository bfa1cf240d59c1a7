//! Prints how long the harness takes to start and stop its services on this machine.
//!
//! ```text
//! cargo run -p mimamori-testkit --example startup_times
//! ```
//!
//! Each figure is the median of five runs; start-up on a loaded 2-core machine varies a lot.

use std::time::{Duration, Instant};

use mimamori_testkit::{Mosquitto, Postgres, Result, TestCa};

const RUNS: usize = 5;

fn main() -> Result<()> {
    let ca = timed(|| TestCa::generate().map(drop))?;
    // The shared CA is made once per process; keep it out of the broker figures.
    TestCa::shared()?;

    let mut cluster_up = Vec::new();
    let mut database = Vec::new();
    let mut cluster_down = Vec::new();
    let mut broker_up = Vec::new();
    let mut broker_restart = Vec::new();
    let mut broker_down = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let cluster = Postgres::start()?;
        cluster_up.push(started.elapsed());
        database.push(timed(|| cluster.create_database().map(drop))?);
        cluster_down.push(timed(|| {
            drop(cluster);
            Ok(())
        })?);

        let started = Instant::now();
        let mut broker = Mosquitto::start()?;
        broker_up.push(started.elapsed());
        broker_restart.push(timed(|| broker.restart())?);
        broker_down.push(timed(|| {
            drop(broker);
            Ok(())
        })?);
    }

    println!("test CA + server certificate:        {:>8.1?}", ca);
    println!(
        "postgres cluster up (initdb, start, extension): {:>8.1?}",
        median(cluster_up)
    );
    println!(
        "postgres create_database:            {:>8.1?}",
        median(database)
    );
    println!(
        "postgres cluster down (stop, rm):    {:>8.1?}",
        median(cluster_down)
    );
    println!(
        "mosquitto up (plain + TLS):          {:>8.1?}",
        median(broker_up)
    );
    println!(
        "mosquitto graceful restart:          {:>8.1?}",
        median(broker_restart)
    );
    println!(
        "mosquitto down (kill, rm):           {:>8.1?}",
        median(broker_down)
    );
    Ok(())
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
