//! Ingest load benchmark on real parts: Mosquitto (TLS, per-gateway ACL, persistence) and a
//! PostgreSQL + TimescaleDB cluster of its own from the testkit, the `mimamori-server` binary as a
//! child process, and N simulated homes in this process. Each home's gateway streams ECG chunks
//! at 250 Hz from its monitor plus an SpO2 + pulse-rate batch from its oximeter, on the device
//! clock (`--speed 1`, a real home's rate) or as fast as its window of unacknowledged messages
//! allows (`--speed max`, the ceiling). Like the real gateway it keeps what the server has not
//! acknowledged end to end (StoredAck) and resends it when the ack stops advancing.
//!
//! Printed, not asserted: messages/s and ECG samples/s stored; publish → committed latency (p50,
//! p99, max: from a message's first publish to the StoredAck that covers it, at the gateway);
//! the server's CPU and peak RSS (also per 100 patients), the broker's CPU, the whole machine's
//! CPU; resends (what the broker PUBACKed to a gateway and then dropped shows up here); the
//! fraction of the broker-alone ceiling reached; stored ECG bytes per patient-day.
//!
//! PostgreSQL runs with production durability (`fsync`, `full_page_writes`, `synchronous_commit`
//! on) unless `--unsafe-db` keeps the harness's test settings. Everything runs on the same machine,
//! the load generator included; the machine's CPU line shows how busy it was.
//!
//! Figures for issue #7, on a quiet machine (one run at a time; each prints its own command line):
//!
//! ```text
//! # 100 and 1,000 homes streaming in real time (0.5 s ECG chunks + oximetry every second),
//! # Mosquitto at its default limits, then at the deployment guide's raised limits:
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 100  --duration 120 --chunk-ms 500 --broker-limits default
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 100  --duration 120 --chunk-ms 500 --broker-limits raised
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 1000 --duration 120 --chunk-ms 500 --broker-limits default
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 1000 --duration 120 --chunk-ms 500 --broker-limits raised
//! # The ceiling (messages/s against the ~36k/s broker-alone figure), default and raised limits:
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 100 --duration 300 --chunk-ms 200 --speed max --broker-limits default
//! cargo bench -p mimamori-server --bench ingest_load -- --patients 100 --duration 300 --chunk-ms 200 --speed max --broker-limits raised
//! # Chunk duration: repeat a raised real-time run of 1,000 homes with --chunk-ms 200 and 1000.
//! ```
//!
//! Each home holds a connection here and one in Mosquitto (which inherits this process's limits):
//! the run refuses to start when `ulimit -n` is below homes + 256.
//!
//! `--duration` is seconds of device time per home; at `--speed max` the run ends when every
//! message is acknowledged. A gateway that waits `--stall-timeout-s` for an acknowledgement that
//! never comes gives up, and the run says how much was left unacknowledged instead of waiting for
//! ever.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use clap::Parser;
use common::{Stack, ecg_chunk, oximetry};
use mimamori_dsp::SampleRate;
use mimamori_dsp::synth::SynthConfig;
use mimamori_server::storage::{Device, Gateway, Loan, Patient, Storage as _};
use mimamori_testkit::{Mosquitto, MosquittoConfig, Postgres, Transport};
use mimamori_wire::{Body, Channel, Envelope, Epoch, GatewayId, StoredAck, Topic};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::watch;

const SAMPLE_RATE_HZ: u32 = 250;
const MS_PER_SAMPLE: u32 = 1000 / SAMPLE_RATE_HZ;

#[derive(Debug, Clone, Parser)]
#[command(about = "Ingest load benchmark (see the doc comment of benches/ingest_load.rs)")]
struct Args {
    /// Simulated homes, one gateway each (an ECG monitor and a pulse oximeter).
    #[arg(long, default_value_t = 100)]
    patients: u32,
    /// Seconds of device time each home streams.
    #[arg(long, default_value_t = 60)]
    duration: u32,
    /// ECG chunk duration in milliseconds (a multiple of 4 ms, one sample at 250 Hz).
    #[arg(long, default_value_t = 500)]
    chunk_ms: u32,
    /// Seconds between oximetry batches (SpO2 + pulse rate) of a home.
    #[arg(long, default_value_t = 1.0)]
    vitals_every_s: f64,
    /// Device-time speed: 1 is a real home's rate, 10 ten times that; `max` publishes as fast as
    /// each gateway's window of unacknowledged messages allows.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Mosquitto's limits: `default` (its own: max_queued_messages 1000, max_inflight_messages
    /// 20) or `raised` (docs/deployment.md: 100000 and 100).
    #[arg(long, value_enum, default_value_t = Limits::Raised)]
    broker_limits: Limits,
    /// Messages a gateway may have published and not yet acknowledged end to end.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// A gateway resends what is unacknowledged after this long without the ack advancing.
    #[arg(long, default_value_t = 10)]
    resend_after_s: u64,
    /// A gateway gives up when it has waited this long for an acknowledgement that never came
    /// (the run then reports what was left unacknowledged).
    #[arg(long, default_value_t = 60)]
    stall_timeout_s: u64,
    /// Gateways' transport to the broker.
    #[arg(long, value_enum, default_value_t = Wire::Tls)]
    transport: Wire,
    /// Server: messages per ingest transaction.
    #[arg(long, default_value_t = 500)]
    batch_max_messages: usize,
    /// Server: longest wait of a message for its commit (1..=50 ms).
    #[arg(long, default_value_t = 20)]
    batch_max_delay_ms: u64,
    /// Server: database connections.
    #[arg(long, default_value_t = 8)]
    pool: u32,
    /// Keep the harness's PostgreSQL settings (fsync off): faster, not what a deployment sees.
    #[arg(long)]
    unsafe_db: bool,
    /// QoS 1 messages/s Mosquitto alone delivers to one subscriber on this machine class
    /// (issue #7); the fraction of it the whole system reaches is printed.
    #[arg(long, default_value_t = 36_000.0)]
    broker_ceiling: f64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Device-time speed factor; `None` is as fast as possible.
type Speed = Option<f64>;

fn parse_speed(text: &str) -> Result<Speed, String> {
    if text == "max" {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Some(x)),
        _ => Err(format!("{text}: a positive number or `max`")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Limits {
    Default,
    Raised,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Wire {
    Tls,
    Plain,
}

/// What one home's gateway publishes, in order: `(due in device time, message)`.
#[derive(Debug, Clone, Copy)]
enum Item {
    Ecg { chunk: usize },
    Vitals { batch: usize },
}

/// What one gateway measured.
#[derive(Debug, Default)]
struct GatewayRun {
    latencies_ms: Vec<f32>,
    published: u64,
    acked: u64,
    resent: u64,
    /// When its last message was acknowledged.
    finished: Option<Instant>,
}

/// Shared by every gateway task.
struct Plan {
    args: Args,
    samples: Vec<i16>,
    schedule: Vec<(Duration, Item)>,
    /// Device time of the first sample (in the past, so no time is flagged implausible).
    origin: chrono::DateTime<Utc>,
    acked: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    if args.chunk_ms == 0 || args.chunk_ms % MS_PER_SAMPLE != 0 {
        eprintln!("--chunk-ms must be a positive multiple of {MS_PER_SAMPLE} ms");
        std::process::exit(2);
    }
    check_open_files(args.patients);
    let command_line = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect::<Vec<_>>()
        .join(" ");
    let setup = Instant::now();

    let (queued, inflight) = match args.broker_limits {
        Limits::Default => (1000, 20),
        Limits::Raised => (100_000, 100),
    };
    let mosquitto = Mosquitto::start_with(MosquittoConfig {
        max_queued_messages: queued,
        max_inflight_messages: inflight,
        ..MosquittoConfig::default()
    })
    .expect("mosquitto starts");
    // A cluster of its own: durability can be switched on without touching the tests' cluster.
    let postgres = Postgres::start().expect("postgres starts");
    let db_url = postgres.create_database().expect("database");
    let extra = format!(
        "[ingest]\nbatch_max_messages = {}\nbatch_max_delay_ms = {}\n",
        args.batch_max_messages, args.batch_max_delay_ms
    );
    let stack = Stack::start_with(mosquitto, &db_url, args.pool, &extra).await;
    if !args.unsafe_db {
        make_durable(&stack).await;
    }
    seed(&stack, args.patients).await;
    let names: Vec<String> = (0..args.patients).map(gateway_name).collect();
    let credentials = stack
        .mosquitto
        .add_gateways(&names)
        .expect("gateway accounts");
    let mut server = stack.spawn_server_ready().await;
    let server_pid = server.id();
    let broker_pid: Option<u32> = std::fs::read_to_string(stack.mosquitto.dir().join("broker.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok());

    let plan = Arc::new(make_plan(args.clone()));
    let total_per_gateway = plan.schedule.len() as u64;
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.patients as usize + 1);
    let mut runs = Vec::new();
    for (p, credentials) in credentials.iter().enumerate() {
        let transport = match args.transport {
            Wire::Tls => Transport::Tls,
            Wire::Plain => Transport::Plain,
        };
        let options = stack
            .mosquitto
            .mqtt_options(&format!("bench-{p}"), credentials, transport)
            .unwrap();
        runs.push(tokio::spawn(run_gateway(
            p as u32,
            options,
            Arc::clone(&plan),
            ready_tx.clone(),
            start_rx.clone(),
        )));
    }
    drop(ready_tx);
    for _ in 0..args.patients {
        ready_rx.recv().await.expect("every gateway connects");
    }
    let setup_s = setup.elapsed().as_secs_f64();

    // Go: every gateway's clock starts now.
    let before = Sample::take(server_pid, broker_pid);
    let started = Instant::now();
    start_tx.send_replace(Some(started));
    let sampler = tokio::spawn(report_progress(
        server_pid,
        Arc::clone(&plan),
        total_per_gateway * u64::from(args.patients),
        started,
    ));
    let mut latencies: Vec<f32> = Vec::new();
    let (mut published, mut acked, mut resent) = (0, 0, 0);
    let mut last_ack = started;
    for run in runs {
        let run = run.await.expect("gateway task");
        latencies.extend(run.latencies_ms);
        published += run.published;
        acked += run.acked;
        resent += run.resent;
        if let Some(finished) = run.finished {
            last_ack = last_ack.max(finished);
        }
    }
    let after = Sample::take(server_pid, broker_pid);
    sampler.abort();
    let peak_rss = peak_rss_kib(server_pid);
    let elapsed = last_ack.duration_since(started).as_secs_f64().max(1e-3);
    let window_s = after.at.duration_since(before.at).as_secs_f64().max(1e-3);

    let stored = stack.count("SELECT count(*) FROM ingest_dedup").await;
    let dead = stack.count("SELECT count(*) FROM dead_letters").await;
    let ecg_samples = stack
        .count("SELECT coalesce(sum(sample_count), 0)::int8 FROM ecg_chunks")
        .await;
    let ecg_bytes = stack
        .count("SELECT hypertable_size('ecg_chunks')::int8")
        .await;
    let expected = total_per_gateway * u64::from(args.patients);
    latencies.sort_by(f32::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f32::NAN)
    };
    let per_100 = 100.0 / f64::from(args.patients);
    let server_cpu = after.server_cpu_s - before.server_cpu_s;
    let broker_cpu = after.broker_cpu_s - before.broker_cpu_s;
    let own_cpu = after.own_cpu_s - before.own_cpu_s;
    let schedule_s = plan
        .schedule
        .last()
        .map_or(0.0, |(due, _)| due.as_secs_f64())
        / args.speed.unwrap_or(f64::INFINITY);
    let msgs_per_s = acked as f64 / elapsed;

    println!("ingest_load {command_line}");
    println!(
        "setup:                  {setup_s:.1} s (broker, database, {} homes seeded and connected)",
        args.patients
    );
    println!(
        "load:                   {} homes x {} s of device time, ECG {} Hz in {} ms chunks + oximetry every {} s, speed {}, window {}, {}",
        args.patients,
        args.duration,
        SAMPLE_RATE_HZ,
        args.chunk_ms,
        args.vitals_every_s,
        args.speed.map_or("max".to_owned(), |s| s.to_string()),
        args.window,
        match args.transport {
            Wire::Tls => "TLS",
            Wire::Plain => "plain TCP",
        },
    );
    println!(
        "broker:                 Mosquitto, {} limits (max_queued_messages {queued}, max_inflight_messages {inflight}); PostgreSQL {}",
        match args.broker_limits {
            Limits::Default => "default",
            Limits::Raised => "raised",
        },
        if args.unsafe_db {
            "with the harness's fsync off"
        } else {
            "durable (fsync on)"
        }
    );
    if args.speed.is_some() {
        println!(
            "offered:                {:.0} msgs/s ({:.0} ECG samples/s) for {schedule_s:.1} s",
            expected as f64 / schedule_s.max(1e-3),
            f64::from(args.patients) * f64::from(SAMPLE_RATE_HZ) * args.speed.unwrap_or(1.0),
        );
    }
    println!(
        "stored:                 {stored} messages ({dead} dead-lettered) of {expected} published; {acked} acknowledged end to end{}",
        if acked < expected {
            format!(
                " -- INCOMPLETE: {} never acknowledged (see the stall messages above)",
                expected - acked
            )
        } else {
            String::new()
        }
    );
    let lag = if args.speed.is_some() {
        format!(
            "; last ack {:.1} s after the schedule ended",
            (elapsed - schedule_s).max(0.0)
        )
    } else {
        String::new()
    };
    println!(
        "throughput:             {msgs_per_s:.0} msgs/s, {:.0} ECG samples/s over {elapsed:.1} s (first publish to last ack){lag}",
        ecg_samples as f64 / elapsed,
    );
    println!(
        "publish -> committed:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} messages)",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        latencies.len()
    );
    println!(
        "resent by gateways:     {resent} ({published} publishes in all; resends follow acks that stalled {} s)",
        args.resend_after_s
    );
    println!(
        "server:                 CPU {:.1} s = {:.0} % of one core ({:.1} % per 100 homes), peak RSS {:.0} MiB ({:.1} MiB per 100 homes)",
        server_cpu,
        100.0 * server_cpu / window_s,
        100.0 * server_cpu / window_s * per_100,
        peak_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0 * per_100,
    );
    println!(
        "broker, load generator: CPU {:.0} % and {:.0} % of one core; machine {:.0} % busy ({} cores)",
        100.0 * broker_cpu / window_s,
        100.0 * own_cpu / window_s,
        100.0 * after.machine_busy_since(&before),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    if args.speed.is_none() {
        println!(
            "broker-alone ceiling:   {:.0} % of {:.0} msgs/s",
            100.0 * msgs_per_s / args.broker_ceiling,
            args.broker_ceiling
        );
    }
    if ecg_samples > 0 {
        let ecg_seconds = ecg_samples as f64 / f64::from(SAMPLE_RATE_HZ);
        println!(
            "ECG storage:            {:.1} MiB per patient-day (hypertable with indexes, {} ms chunks)",
            ecg_bytes as f64 / ecg_seconds * 86_400.0 / 1024.0 / 1024.0,
            args.chunk_ms
        );
    }
    server.kill().unwrap();
    let _ = server.wait();
    if acked < expected {
        keep_logs(&stack);
    }
}

/// Copies the server's and the broker's logs out of the scratch directories removed at exit.
fn keep_logs(stack: &Stack) {
    let kept = std::env::temp_dir().join(format!("ingest_load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&kept);
    for (from, name) in [
        (stack.dir.path().join("server.log"), "server.log"),
        (stack.mosquitto.dir().join("mosquitto.log"), "mosquitto.log"),
    ] {
        let _ = std::fs::copy(from, kept.join(name));
    }
    println!("logs kept in:           {}", kept.display());
}

/// Each home is a connection in this process and another in Mosquitto, which inherits this
/// process's limit: refuse to start rather than fail half-way through connecting.
fn check_open_files(patients: u32) {
    let needed = u64::from(patients) + 256;
    let soft: Option<u64> = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        });
    if let Some(soft) = soft
        && soft < needed
    {
        eprintln!(
            "open-file limit {soft} is too low for {patients} homes: run `ulimit -n {}` first",
            needed.next_power_of_two()
        );
        std::process::exit(2);
    }
}

fn gateway_name(p: u32) -> String {
    format!("gw-b{p}")
}

/// Production durability on the benchmark's own cluster (the harness turns it off).
async fn make_durable(stack: &Stack) {
    for setting in ["fsync", "full_page_writes", "synchronous_commit"] {
        sqlx::raw_sql(&format!("ALTER SYSTEM SET {setting} = on"))
            .execute(stack.store.pool())
            .await
            .expect("ALTER SYSTEM");
    }
    sqlx::raw_sql("SELECT pg_reload_conf()")
        .execute(stack.store.pool())
        .await
        .unwrap();
    mimamori_testkit::wait_until(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, String>("SHOW fsync")
            .fetch_one(stack.store.pool())
            .await
            .is_ok_and(|v| v == "on")
    })
    .await
    .expect("fsync on after reload");
}

fn make_plan(args: Args) -> Plan {
    let samples_per_chunk = (args.chunk_ms / MS_PER_SAMPLE) as usize;
    let (samples, _) = SynthConfig::new(SampleRate::hz(f64::from(SAMPLE_RATE_HZ)), 1)
        .heart_rate_bpm(72.0)
        .generate_counts(f64::from(args.duration))
        .expect("synthetic ECG");
    let chunks = samples.len() / samples_per_chunk;
    let vitals_every = Duration::from_secs_f64(args.vitals_every_s.max(0.01));
    let batches = (f64::from(args.duration) / vitals_every.as_secs_f64()).floor() as usize;
    // A message is due when what it carries has been measured: the end of its chunk or second.
    let mut schedule: Vec<(Duration, Item)> = (0..chunks)
        .map(|chunk| {
            (
                Duration::from_millis(u64::from(args.chunk_ms) * (chunk as u64 + 1)),
                Item::Ecg { chunk },
            )
        })
        .chain(
            (0..batches).map(|batch| (vitals_every * (batch as u32 + 1), Item::Vitals { batch })),
        )
        .collect();
    schedule.sort_by_key(|(due, _)| *due);
    Plan {
        origin: Utc::now() - chrono::Duration::seconds(i64::from(args.duration) + 60),
        args,
        samples,
        schedule,
        acked: AtomicU64::new(0),
    }
}

impl Plan {
    fn body(&self, p: u32, item: Item) -> Body {
        match item {
            Item::Ecg { chunk } => {
                let n = (self.args.chunk_ms / MS_PER_SAMPLE) as usize;
                ecg_chunk(
                    &format!("checkme-pro:B{p}"),
                    u64::from(p),
                    (chunk * n) as u64,
                    self.origin,
                    &self.samples[chunk * n..(chunk + 1) * n],
                )
            }
            Item::Vitals { batch } => {
                let at = self.origin
                    + chrono::Duration::milliseconds(
                        (self.args.vitals_every_s * 1000.0 * batch as f64) as i64,
                    );
                let mut body = oximetry(96.0 + (batch % 3) as f64, at);
                if let Body::Observations(b) = &mut body {
                    b.device.id = format!("pc60fw:B{p}");
                }
                body
            }
        }
    }

    /// When `index` is due, from the start, at the run's speed (`None`: at once).
    fn due(&self, index: usize, phase: Duration) -> Option<Duration> {
        let speed = self.args.speed?;
        Some(self.schedule[index].0.div_f64(speed) + phase)
    }
}

async fn seed(stack: &Stack, patients: u32) {
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
                id: gateway_name(p),
                patient_id: Some(patient.id.clone()),
                note: None,
            })
            .await
            .unwrap();
    }
}

/// A message published and not yet acknowledged end to end.
struct Pending {
    seq: u64,
    topic: String,
    payload: Vec<u8>,
    first_sent: Instant,
}

/// One home's gateway: connects, reports ready, waits for the start, then publishes its schedule
/// and keeps every message until the server's StoredAck covers it.
async fn run_gateway(
    p: u32,
    mut options: MqttOptions,
    plan: Arc<Plan>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut start: watch::Receiver<Option<Instant>>,
) -> GatewayRun {
    let window = plan.args.window;
    let resend_after = Duration::from_secs(plan.args.resend_after_s);
    options
        .set_inflight(u16::try_from(window).unwrap_or(u16::MAX))
        .set_keep_alive(Duration::from_secs(30));
    // Room for a whole window resent before the event loop drains the queue.
    let (client, mut event_loop) = AsyncClient::new(options, 4 * window + 16);
    let gateway = GatewayId::new(gateway_name(p)).unwrap();
    let ack_topic = Topic::new(gateway.clone(), Channel::Ack).to_string();
    let topic_of = |body: &Body| Topic::new(gateway.clone(), body.channel()).to_string();
    let epoch = Epoch::from_bytes({
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&p.to_le_bytes());
        b[15] = 1;
        b
    });
    // Homes do not all measure on the same tick.
    let phase = Duration::from_millis(u64::from(p * 7919) % u64::from(plan.args.chunk_ms));
    let total = plan.schedule.len();
    let mut run = GatewayRun {
        latencies_ms: Vec::with_capacity(total),
        ..GatewayRun::default()
    };
    let mut ready = Some(ready);
    let mut started: Option<Instant> = None;
    let mut last_ack = Instant::now();
    let stall_timeout = Duration::from_secs(plan.args.stall_timeout_s);
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut next = 0usize;
    let mut last_progress = Instant::now();

    loop {
        if started.is_none()
            && ready.is_none()
            && let Some(at) = *start.borrow()
        {
            started = Some(at);
            last_progress = Instant::now();
        }
        let mut next_due: Option<Instant> = None;
        if let Some(at) = started {
            // Publish what is due, within the window.
            while next < total && pending.len() < window {
                if let Some(due) = plan.due(next, phase).map(|d| at + d)
                    && due > Instant::now()
                {
                    next_due = Some(due);
                    break;
                }
                let body = plan.body(p, plan.schedule[next].1);
                let topic = topic_of(&body);
                let payload = Envelope::new(epoch, next as u64, Utc::now(), body)
                    .encode()
                    .expect("valid message");
                client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                    .await
                    .expect("client queue");
                if pending.is_empty() {
                    last_progress = Instant::now();
                    last_ack = Instant::now();
                }
                pending.push_back(Pending {
                    seq: next as u64,
                    topic,
                    payload,
                    first_sent: Instant::now(),
                });
                run.published += 1;
                next += 1;
            }
            if next == total && pending.is_empty() {
                break;
            }
            // Resend what the ack has not covered for a while (the broker may have dropped it).
            if !pending.is_empty() && last_progress.elapsed() >= resend_after {
                for m in &pending {
                    client
                        .publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.clone())
                        .await
                        .expect("client queue");
                    run.resent += 1;
                    run.published += 1;
                }
                last_progress = Instant::now();
            }
        }
        let wake = next_due
            .into_iter()
            .chain((!pending.is_empty()).then(|| last_progress + resend_after))
            .chain((!pending.is_empty()).then(|| last_ack + stall_timeout))
            .map(tokio::time::Instant::from_std)
            .min();
        tokio::select! {
            event = event_loop.poll() => match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    client.subscribe(&ack_topic, QoS::AtLeastOnce).await.expect("client queue");
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(()).await;
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) if publish.topic == ack_topic => {
                    let Ok(ack) = StoredAck::decode(&publish.payload) else { continue };
                    if ack.epoch != epoch {
                        continue;
                    }
                    let now = Instant::now();
                    let mut covered = 0;
                    while pending.front().is_some_and(|m| m.seq <= ack.stored_through) {
                        let m = pending.pop_front().expect("front exists");
                        run.latencies_ms.push(now.duration_since(m.first_sent).as_secs_f32() * 1000.0);
                        covered += 1;
                    }
                    if covered > 0 {
                        run.acked += covered;
                        plan.acked.fetch_add(covered, Ordering::Relaxed);
                        last_progress = now;
                        last_ack = now;
                        run.finished = Some(now);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("gateway {p}: {error}; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = start.changed(), if started.is_none() && ready.is_none() => {}
        }
        if !pending.is_empty() && last_ack.elapsed() >= stall_timeout {
            eprintln!(
                "gateway {p}: no acknowledgement for {} s; giving up with {} unacknowledged",
                stall_timeout.as_secs(),
                pending.len() + (total - next)
            );
            break;
        }
    }
    let _ = client.disconnect().await;
    run
}

/// CPU times and the time they were read.
struct Sample {
    at: Instant,
    server_cpu_s: f64,
    broker_cpu_s: f64,
    own_cpu_s: f64,
    /// (busy, total) jiffies of the whole machine.
    machine: (u64, u64),
}

impl Sample {
    fn take(server: u32, broker: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server_cpu_s: cpu_seconds(&format!("/proc/{server}/stat")),
            broker_cpu_s: broker.map_or(0.0, |b| cpu_seconds(&format!("/proc/{b}/stat"))),
            own_cpu_s: cpu_seconds("/proc/self/stat"),
            machine: machine_jiffies(),
        }
    }

    fn machine_busy_since(&self, before: &Self) -> f64 {
        let busy = self.machine.0.saturating_sub(before.machine.0) as f64;
        let total = self.machine.1.saturating_sub(before.machine.1) as f64;
        if total > 0.0 { busy / total } else { 0.0 }
    }
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
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
    // After the command name, utime and stime are the 12th and 13th fields; USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// (busy, total) jiffies summed over every CPU.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The server's peak resident set (VmHWM, KiB).
fn peak_rss_kib(server: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{server}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints progress every 5 s on stderr while the run lasts.
async fn report_progress(server: u32, plan: Arc<Plan>, expected: u64, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let acked = plan.acked.load(Ordering::Relaxed);
        eprintln!(
            "[{:>5.0} s] acknowledged {acked}/{expected} ({:.0} msgs/s in the last 5 s), server peak RSS {} MiB",
            started.elapsed().as_secs_f64(),
            (acked - last) as f64 / 5.0,
            peak_rss_kib(server) / 1024,
        );
        last = acked;
    }
}
