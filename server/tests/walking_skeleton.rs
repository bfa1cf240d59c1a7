//! The walking skeleton: the whole data path on real parts. A gateway publishes an ECG chunk and
//! an SpO2 observation with its own credentials over TLS to Mosquitto; the server stores both in
//! TimescaleDB and sends the gateway its end-to-end acknowledgement; a nurse's WebSocket, logged
//! in through the REST API, receives the observation live and the REST API serves it back.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Stack, TestGateway, device, ecg_chunk, http, log_in, observation, oximetry};
use futures_util::{SinkExt as _, StreamExt as _};
use mimamori_wire::{Body, Epoch, ObservationBatch, VitalSign};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Polls the alert list as the holder of `cookie` sees it until an alert of `patient` whose rule
/// starts with `rule` appears (20 s at most).
async fn wait_for_alert(
    addr: std::net::SocketAddr,
    cookie: &str,
    patient: &str,
    rule: &str,
) -> Value {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (status, _, body) = http(addr, "GET", "/api/v1/alerts", Some(cookie), None).await;
            assert_eq!(status, 200, "{body}");
            let list: Value = serde_json::from_str(&body).unwrap();
            if let Some(alert) = items(&list).iter().find(|a| {
                a["patient_id"] == patient && a["rule"].as_str().unwrap_or("").starts_with(rule)
            }) {
                return alert.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {rule} alert for {patient} within 20 s"))
}

fn items(list: &Value) -> &Vec<Value> {
    list.as_array()
        .or_else(|| list["items"].as_array())
        .unwrap_or_else(|| panic!("not a list: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_to_database_to_ack_to_websocket() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let addr = stack.http;

    // A nurse of p-0001's care team logs in and subscribes to the patient's live feed.
    let cookie = log_in(addr, "nurse").await;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::text(
        json!({"op": "subscribe", "patient_id": "p-0001"}).to_string(),
    ))
    .await
    .unwrap();

    // The gateway publishes over TLS with its own credentials.
    let mut gateway = TestGateway::connect(&stack, "gw-p0001", Epoch::from_bytes([42; 16])).await;
    let now = Utc::now();
    let samples: Vec<i16> = (0..250).map(|i| ((i * 13) % 200 - 100) as i16).collect();
    gateway.push(ecg_chunk("checkme-pro:CP0001", 5, 0, now, &samples));
    let spo2_seq = gateway.push(Body::Observations(ObservationBatch {
        device: device("checkme-pro:CP0001", "checkme-pro"),
        clock_synced: true,
        observations: vec![observation(VitalSign::Spo2, 96.0, now)],
    }));
    gateway.publish_new().await;

    // The server's end-to-end acknowledgement reaches the gateway (not the broker's PUBACK).
    gateway.wait_acked(spo2_seq, Duration::from_secs(30)).await;
    assert_eq!(
        stack
            .count("SELECT count(*) FROM ecg_chunks WHERE patient_id = 'p-0001'")
            .await,
        1
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM observations WHERE patient_id = 'p-0001' AND loinc = '59408-5' AND value = 96")
            .await,
        1
    );

    // The WebSocket client receives the observation live.
    let observation = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                other => panic!("the WebSocket ended: {other:?}"),
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "patient"
                && message["event"]["type"] == "observation"
                && message["event"]["kind"] == "spo2"
            {
                return message;
            }
        }
    })
    .await
    .expect("the SpO2 observation reaches the WebSocket");
    assert_eq!(observation["patient_id"], "p-0001");
    assert_eq!(observation["event"]["value"], 96.0);
    assert_eq!(observation["event"]["unit"], "%");

    // And the REST API serves it from the database.
    let (status, _, body) = http(
        addr,
        "GET",
        "/api/v1/patients/p-0001/vitals/latest",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let latest: Value = serde_json::from_str(&body).unwrap();
    let spo2 = items(&latest)
        .iter()
        .find(|o| o["kind"] == "spo2")
        .unwrap_or_else(|| panic!("no spo2 in {latest}"));
    assert_eq!(spo2["value"], 96.0);

    server.kill().unwrap();
    let _ = server.wait();
}

/// A patient's SpO2 stays under 90 % for over a minute: the alert engine, fed by ingest, raises a
/// high-priority alert that the care team sees through the REST API, and a nurse's
/// acknowledgement is persisted by the alert service; another team's nurse sees none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_spo2_raises_an_alert_that_the_care_team_acknowledges() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let addr = stack.http;
    let cookie = log_in(addr, "nurse").await;

    // 80 s of readings every 5 s at 86 %, measured in the recent past (the engine runs on
    // measurement time, so the minute has passed when they arrive).
    let mut gateway = TestGateway::connect(&stack, "gw-p0002", Epoch::from_bytes([43; 16])).await;
    let start = Utc::now() - chrono::Duration::seconds(90);
    let mut last = 0;
    for i in 0..17 {
        last = gateway.push(oximetry(86.0, start + chrono::Duration::seconds(5 * i)));
    }
    gateway.publish_new().await;
    gateway.wait_acked(last, Duration::from_secs(30)).await;

    let alert = wait_for_alert(addr, &cookie, "p-0002", "spo2_low").await;
    assert_eq!(alert["priority"], "high");

    // The registry schedules p-0001's blood pressure at 07:00 and 19:00 Japan time and no cuff
    // reading came: the care team gets a low-priority missed-reading alert, not a page.
    let missed = wait_for_alert(addr, &cookie, "p-0001", "missed_reading/").await;
    assert_eq!(missed["priority"], "low");

    // Another team's nurse does not see it.
    let foreign = log_in(addr, "tamagawa").await;
    let (_, _, body) = http(addr, "GET", "/api/v1/alerts", Some(&foreign), None).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert!(
        !items(&list).iter().any(|a| a["patient_id"] == "p-0002"),
        "another team's nurse must not see p-0002's alerts: {list}"
    );

    let id = alert["id"].as_str().unwrap();
    let (status, _, body) = http(
        addr,
        "POST",
        &format!("/api/v1/alerts/{id}/acknowledge"),
        Some(&cookie),
        Some(&json!({"note": "電話で確認、訪問へ向かう"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("acknowledged"), "{body}");
    let stored: String = sqlx::query_scalar("SELECT state FROM alert WHERE id = $1")
        .bind(id)
        .fetch_one(stack.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, "acknowledged");
    let by: String = sqlx::query_scalar(
        "SELECT actor FROM alert_transition WHERE alert_id = $1 AND to_state = 'acknowledged'",
    )
    .bind(id)
    .fetch_one(stack.store.pool())
    .await
    .unwrap();
    assert!(by.contains("u-nurse"), "{by}");

    server.kill().unwrap();
    let _ = server.wait();
}

/// A nurse without an authenticator enrols one from a clinic network: the password again, a new
/// secret, a code from the app; only then is the secret stored, and enrolling again is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticator_is_enrolled_from_the_clinic_network() {
    use mimamori_server::http::auth::password::hash_password;
    use mimamori_server::http::auth::totp::TotpFactor;
    use mimamori_server::registry::Directory;
    use mimamori_server::registry::directory::{AccountSeed, User};

    let stack = Stack::start().await;
    let directory = Directory::from(&stack.store);
    let user = User {
        id: "u-new".into(),
        name: "新人 看護師".into(),
        role: "nurse".into(),
        clinic_id: None,
        phone: None,
        account: Some(AccountSeed {
            login: "newnurse".into(),
            roles: vec!["nurse".into()],
            password_phc: None,
            demo_password: None,
            totp_secret: None,
        }),
    };
    directory
        .upsert_user(&user, Some(&hash_password("mimamori-newnurse").unwrap()))
        .await
        .unwrap();
    let mut server = stack.spawn_server_ready().await;
    let addr = stack.http;
    let cookie = log_in(addr, "newnurse").await;

    let (status, _, _) = http(
        addr,
        "POST",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"password": "wrong"})),
    )
    .await;
    assert_eq!(status, 401, "the password is asked again");
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"password": "mimamori-newnurse"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let setup: Value = serde_json::from_str(&body).unwrap();
    let secret = setup["secret"].as_str().unwrap();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/mimamori:newnurse?secret=")
    );
    let stored = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT totp_secret FROM user_accounts WHERE user_id = 'u-new'",
        )
        .fetch_one(stack.store.pool())
        .await
        .unwrap()
    };
    assert_eq!(
        stored().await,
        None,
        "nothing stored before the app proved it holds the secret"
    );

    let (status, _, _) = http(
        addr,
        "PUT",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"code": "000000"})),
    )
    .await;
    assert_eq!(status, 401, "a wrong code does not enrol");
    let now = u64::try_from(Utc::now().timestamp()).unwrap();
    let code = TotpFactor::from_base32(secret).unwrap().code_at(now);
    let (status, _, body) = http(
        addr,
        "PUT",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"code": code})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored().await.as_deref(), Some(secret));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE user_id = 'u-new' AND action = 'totp_enrolled'",
    )
    .fetch_one(stack.store.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);

    let (status, _, _) = http(
        addr,
        "POST",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"password": "mimamori-newnurse"})),
    )
    .await;
    assert_eq!(
        status, 409,
        "a second enrolment needs an administrator's reset"
    );

    // Only an administrator resets it; then the nurse can enrol a new phone.
    let reset = |cookie: String, user: &'static str| async move {
        http(
            addr,
            "DELETE",
            &format!("/api/v1/users/{user}/totp"),
            Some(&cookie),
            None,
        )
        .await
    };
    assert_eq!(
        reset(cookie.clone(), "u-new").await.0,
        403,
        "a nurse cannot reset authenticators"
    );
    let admin = log_in(addr, "admin").await;
    let (status, _, body) = reset(admin.clone(), "u-new").await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(stored().await, None);
    assert_eq!(reset(admin, "u-nobody").await.0, 404);
    let (status, _, _) = http(
        addr,
        "POST",
        "/api/v1/session/totp",
        Some(&cookie),
        Some(&json!({"password": "mimamori-newnurse"})),
    )
    .await;
    assert_eq!(status, 200, "enrolment is open again after the reset");
    server.kill().unwrap();
    let _ = server.wait();
}

/// A night doctor's session survives a crash of the server; a logged-out one does not come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_a_server_restart_and_a_logout_does_not() {
    let stack = Stack::start().await;
    let mut server = stack.spawn_server_ready().await;
    let addr = stack.http;
    let kept = log_in(addr, "doctor").await;
    let ended = log_in(addr, "nurse").await;
    // Logins are journalled behind the requests (a crash right after one only logs the user out),
    // so wait for both; a logout answers only once it is journalled, so the crash follows at once.
    let journalled = || async {
        sqlx::query_scalar::<_, String>("SELECT login FROM dashboard_sessions ORDER BY login")
            .fetch_all(stack.store.pool())
            .await
            .unwrap()
    };
    mimamori_testkit::wait_until(Duration::from_secs(10), || async {
        journalled().await == vec!["doctor".to_owned(), "nurse".to_owned()]
    })
    .await
    .expect("the journal holds both sessions");
    let (status, _, _) = http(addr, "DELETE", "/api/v1/session", Some(&ended), None).await;
    assert_eq!(status, 204);
    server.kill().unwrap();
    let _ = server.wait();

    let mut server = stack.spawn_server_ready().await;
    let (status, _, body) = http(addr, "GET", "/api/v1/session", Some(&kept), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"login\":\"doctor\""), "{body}");
    let (status, _, _) = http(addr, "GET", "/api/v1/session", Some(&ended), None).await;
    assert_eq!(status, 401, "a logout stays a logout");
    server.kill().unwrap();
    let _ = server.wait();
}
