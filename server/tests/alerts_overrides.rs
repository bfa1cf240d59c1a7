//! A doctor's per-patient rule override on the real server (issue 8): a COPD patient living at
//! SpO₂ 88 % should not raise "SpO₂ low" every morning. Set through the REST API, the override
//! applies to the next reading, survives a restart, stops at its expiry, and a revocation brings
//! the default back. Nurses read the limits; only doctors change them.

mod common;

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use common::{Stack, TestGateway, http, log_in, oximetry};
use mimamori_wire::Epoch;
use serde_json::{Value, json};

const SPO2_LIMITS: &str = "/api/v1/patients/p-0002/rule-overrides";
const SPO2_LOW: &str = "/api/v1/patients/p-0002/rule-overrides/spo2_low";

/// SpO₂ readings of p-0002 every 5 s over `[from, from + seconds]`, committed by the server.
async fn spo2_run(gateway: &mut TestGateway, spo2: f64, from: DateTime<Utc>, seconds: i64) {
    for s in (0..=seconds).step_by(5) {
        gateway.push(oximetry(spo2, from + chrono::Duration::seconds(s)));
    }
    gateway.drain(Duration::from_secs(30)).await;
}

/// When each of p-0002's "SpO₂ low" alerts was raised, once there are `count` of them.
async fn spo2_alerts_raised(stack: &Stack, count: usize) -> Vec<DateTime<Utc>> {
    let raised = || async {
        sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT raised_at FROM alert WHERE patient_id = 'p-0002' AND rule_key = 'spo2_low'
             ORDER BY raised_at",
        )
        .fetch_all(stack.store.pool())
        .await
        .unwrap()
    };
    let reached = mimamori_testkit::wait_until(Duration::from_secs(20), || async {
        raised().await.len() >= count
    })
    .await;
    let raised = raised().await;
    assert!(
        reached.is_ok(),
        "expected {count} spo2_low alerts: {raised:?}"
    );
    raised
}

/// The doctor's override of the COPD example: raise below 86 %, clear at 88 %.
fn copd_override(expires_at: DateTime<Utc>) -> Value {
    json!({"raise_value": 86, "clear_value": 88, "reason": "COPD: lives at SpO2 88-90 %",
           "expires_at": expires_at})
}

/// The doctor sets [`copd_override`]; refused means the test is wrong.
async fn set_copd_override(addr: std::net::SocketAddr, doctor: &str, expires_at: DateTime<Utc>) {
    let body = copd_override(expires_at);
    let (status, _, text) = http(addr, "PUT", SPO2_LOW, Some(doctor), Some(&body)).await;
    assert_eq!(status, 200, "{text}");
}

fn spo2_low(list: &str) -> Value {
    let list: Value = serde_json::from_str(list).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "spo2_low")
        .cloned()
        .expect("spo2_low is overridable")
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Now, to the second (the database keeps microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

async fn start() -> (Stack, common::ServerProcess, TestGateway) {
    let stack = Stack::start().await;
    let server = stack.spawn_server_ready().await;
    let gateway = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([61; 16])).await;
    (stack, server, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctors_override_spares_the_usual_spo2_but_not_a_lower_one() {
    let (stack, mut server, mut gateway) = start().await;
    let addr = stack.http;
    let nurse = log_in(addr, "nurse").await;
    let doctor = log_in(addr, "doctor").await;

    let (status, _, body) = http(addr, "GET", SPO2_LIMITS, Some(&nurse), None).await;
    assert_eq!(status, 200, "{body}");
    let limits = spo2_low(&body);
    assert_eq!(limits["unit"], "%");
    assert_eq!(limits["raise"], json!({"op": "<", "value": 90.0}));
    assert_eq!(
        (
            limits["override_min"].as_f64(),
            limits["override_max"].as_f64()
        ),
        (Some(85.0), Some(92.0))
    );
    assert!(limits["override_in_force"].is_null());

    let in_an_hour = Utc::now() + chrono::Duration::hours(1);
    let refusals = [
        (
            &nurse,
            SPO2_LOW,
            copd_override(in_an_hour),
            403,
            "role_forbidden",
        ),
        (
            &doctor,
            SPO2_LOW,
            json!({"raise_value": 80, "clear_value": 88, "reason": "r", "expires_at": in_an_hour}),
            422,
            "outside_safety_range",
        ),
        (
            &doctor,
            SPO2_LOW,
            json!({"raise_value": 88, "clear_value": 87, "reason": "r", "expires_at": in_an_hour}),
            422,
            "no_hysteresis",
        ),
        (
            &doctor,
            SPO2_LOW,
            copd_override(Utc::now() - chrono::Duration::minutes(1)),
            422,
            "expiry_not_in_future",
        ),
        (
            &doctor,
            "/api/v1/patients/p-0002/rule-overrides/spo2_lwo",
            copd_override(in_an_hour),
            404,
            "unknown_rule",
        ),
    ];
    for (cookie, path, body, status, code) in refusals {
        let (got, _, text) = http(addr, "PUT", path, Some(cookie), Some(&body)).await;
        assert_eq!(
            (got, error_code(&text).as_str()),
            (status, code),
            "{body}: {text}"
        );
    }
    set_copd_override(addr, &doctor, in_an_hour).await;
    let (_, _, body) = http(addr, "GET", SPO2_LIMITS, Some(&nurse), None).await;
    let set = &spo2_low(&body)["override_in_force"];
    assert_eq!(
        (
            set["raise_value"].as_f64(),
            set["set_by"].as_str(),
            set["set_by_name"].as_str()
        ),
        (Some(86.0), Some("u-doctor"), Some("鈴木 一郎 (医師)"))
    );

    // 65 s at 88 % would raise under the default (< 90 % for 60 s); with the override it does
    // not, and the 84 % that follows still does, 60 s after it began.
    let t0 = now() + chrono::Duration::seconds(5);
    spo2_run(&mut gateway, 88.0, t0, 65).await;
    let low = t0 + chrono::Duration::seconds(70);
    spo2_run(&mut gateway, 84.0, low, 65).await;
    let raised = spo2_alerts_raised(&stack, 1).await;
    assert_eq!(raised, vec![low + chrono::Duration::seconds(60)]);

    // One change, audited twice: the override's own trail and the access log.
    assert_eq!(
        stack
            .count("SELECT count(*) FROM alert_rule_override_audit")
            .await,
        1
    );
    let writes = stack
        .count(
            "SELECT count(*) FROM audit_events WHERE user_id = 'u-doctor' AND outcome = 'allowed'
             AND action = 'PUT /api/v1/patients/{patient_id}/rule-overrides/{rule_id}'",
        )
        .await;
    assert!(writes >= 1, "the doctor's write is in the access log");
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_survives_a_restart_and_ends_at_its_expiry() {
    let (stack, server, mut gateway) = start().await;
    let addr = stack.http;
    let doctor = log_in(addr, "doctor").await;
    let t0 = now();
    let expiry = t0 + chrono::Duration::seconds(100);
    set_copd_override(addr, &doctor, expiry).await;

    let mut server = restart(&stack, server).await;
    spo2_run(&mut gateway, 88.0, t0 + chrono::Duration::seconds(5), 65).await;
    // After the expiry the default applies again: the same run raises.
    let after = expiry + chrono::Duration::seconds(5);
    spo2_run(&mut gateway, 88.0, after, 65).await;
    let raised = spo2_alerts_raised(&stack, 1).await;
    assert_eq!(raised, vec![after + chrono::Duration::seconds(60)]);
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_restores_the_default_also_after_a_restart() {
    let (stack, server, mut gateway) = start().await;
    let addr = stack.http;
    let (nurse, doctor) = (log_in(addr, "nurse").await, log_in(addr, "doctor").await);
    let in_an_hour = Utc::now() + chrono::Duration::hours(1);
    set_copd_override(addr, &doctor, in_an_hour).await;

    let why = json!({"reason": "exacerbation treated; back to the usual limit"});
    let refusals = [
        (&nurse, why.clone(), 403, "role_forbidden"),
        (&doctor, json!({"reason": " "}), 422, "reason_required"),
    ];
    for (cookie, body, status, code) in refusals {
        let (got, _, text) = http(addr, "DELETE", SPO2_LOW, Some(cookie), Some(&body)).await;
        assert_eq!((got, error_code(&text).as_str()), (status, code), "{text}");
    }
    let (status, _, body) = http(addr, "DELETE", SPO2_LOW, Some(&doctor), Some(&why)).await;
    assert_eq!(status, 200, "{body}");
    let limits: Value = serde_json::from_str(&body).unwrap();
    assert!(limits["override_in_force"].is_null(), "{limits}");
    let (status, _, body) = http(addr, "DELETE", SPO2_LOW, Some(&doctor), Some(&why)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "no_override_in_force")
    );
    // The trail keeps both: the override and its revocation (a row expiring as it is set).
    assert_eq!(
        stack
            .count("SELECT count(*) FROM alert_rule_override_audit WHERE expires_at = set_at")
            .await,
        1
    );

    let mut server = restart(&stack, server).await;
    let t0 = now() + chrono::Duration::seconds(5);
    spo2_run(&mut gateway, 88.0, t0, 65).await;
    let raised = spo2_alerts_raised(&stack, 1).await;
    assert_eq!(raised, vec![t0 + chrono::Duration::seconds(60)]);
    server.kill().unwrap();
    let _ = server.wait();
}

async fn restart(stack: &Stack, mut server: common::ServerProcess) -> common::ServerProcess {
    server.kill().unwrap();
    let _ = server.wait();
    stack.spawn_server_ready().await
}
