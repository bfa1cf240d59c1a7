//! The live feed over a real socket: a client that stops reading loses live ECG
//! frames (and is told how many) but no observation and no alert; a
//! subscription to another team's patient is refused.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, header};
use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _};
use mimamori_server::http::data::{EcgFrame, Observation, PatientEvent, PatientId, VitalKind};
use mimamori_server::http::demo::simulated_state;
use mimamori_server::http::simulated::Simulation;
use mimamori_server::http::state::WsLimits;
use mimamori_server::http::{AppState, HttpConfig, router_with_openapi, serve};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tower::ServiceExt as _;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(ecg_queue_frames: usize) -> (AppState, Simulation, SocketAddr) {
    let config = HttpConfig {
        ws: WsLimits {
            ecg_queue_frames,
            event_queue_messages: 4096,
            heartbeat: Duration::from_secs(3600),
        },
        ..HttpConfig::default()
    };
    let (state, sim) = simulated_state(config, 3).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state.clone(), std::future::pending()));
    (state, sim, addr)
}

async fn cookie(state: &AppState, login: &str) -> String {
    let (router, _) = router_with_openapi(state.clone());
    let router = router.layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
    let body = json!({"login": login, "password": format!("mimamori-{login}")}).to_string();
    let req = Request::post("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn connect(
    addr: SocketAddr,
    cookie: &str,
    origin: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    req.headers_mut()
        .insert(header::ORIGIN, origin.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }
}

fn ecg(marker: i32) -> PatientEvent {
    // 2,000 samples ≈ 10 kB of JSON: a few hundred frames fill the socket buffers.
    PatientEvent::Ecg(EcgFrame {
        start: Utc::now(),
        sample_rate_hz: 250,
        samples_uv: vec![marker; 2000],
        r_peaks: vec![],
        rr_ms: vec![],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_loses_ecg_frames_but_never_an_observation_or_alert() {
    let (state, sim, addr) = start(8).await;
    let mut ws = connect(
        addr,
        &cookie(&state, "nurse").await,
        &format!("http://{addr}"),
    )
    .await
    .unwrap();
    let p01 = PatientId("p01".into());
    ws.send(Message::text(
        json!({"op": "subscribe", "patient_id": "p01"}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::text(json!({"op": "subscribe_alerts"}).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");

    // The client now reads nothing while the server outruns it.
    const FRAMES: i32 = 3000;
    const OBSERVATIONS: usize = 40;
    let mut alerts = Vec::new();
    for i in 0..FRAMES {
        sim.publish(&p01, ecg(i)).unwrap();
        if i % 75 == 0 {
            let o = Observation {
                kind: VitalKind::Spo2,
                value: 90.0,
                unit: "%".into(),
                measured_at: Utc::now(),
                received_at: Utc::now(),
            };
            sim.publish(&p01, PatientEvent::Observation(o)).unwrap();
        }
        if i % 1000 == 500 {
            alerts.push(sim.deteriorate(&p01).unwrap().id);
        }
        if i % 16 == 0 {
            // Let the forwarder keep up with the broadcast; the socket is what is slow.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    let (mut frames, mut dropped, mut observations, mut seen_alerts, mut last) =
        (0i64, 0i64, 0usize, Vec::new(), -1);
    while last != FRAMES - 1 || observations < OBSERVATIONS || seen_alerts.len() < alerts.len() {
        let msg = next_json(&mut ws).await;
        match msg["type"].as_str().unwrap() {
            "patient" if msg["event"]["type"] == "ecg" => {
                frames += 1;
                last = msg["event"]["samples_uv"][0].as_i64().unwrap() as i32;
            }
            "patient" if msg["event"]["type"] == "observation" => observations += 1,
            "dropped" => dropped += msg["ecg_frames"].as_i64().unwrap(),
            "alert" => seen_alerts.push(msg["alert"]["id"].as_str().unwrap().to_owned()),
            "resync" => panic!("the forwarder lagged; the test publishes too fast"),
            _ => {}
        }
    }
    println!("ecg frames delivered {frames}, dropped {dropped}");
    assert_eq!(observations, OBSERVATIONS, "every observation arrives");
    assert_eq!(
        seen_alerts,
        alerts.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
        "every alert arrives, in order"
    );
    assert!(
        dropped > 0,
        "a client that does not read must lose ECG frames"
    );
    assert_eq!(
        frames + dropped,
        i64::from(FRAMES),
        "every lost frame is reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_patient_subscription_and_foreign_origin_are_refused() {
    let (state, sim, addr) = start(8).await;
    let cookie = cookie(&state, "tamagawa").await;
    assert!(
        connect(addr, &cookie, "http://evil.example").await.is_err(),
        "cross-origin upgrade refused"
    );
    let mut ws = connect(addr, &cookie, &format!("http://{addr}"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "subscribe", "patient_id": "p01"}).to_string(),
    ))
    .await
    .unwrap();
    let msg = next_json(&mut ws).await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["code"], "patient_out_of_scope");
    // The alert feed carries only the user's own patients.
    ws.send(Message::text(json!({"op": "subscribe_alerts"}).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    sim.deteriorate(&PatientId("p01".into())).unwrap();
    let own = sim.deteriorate(&PatientId("p07".into())).unwrap();
    let msg = next_json(&mut ws).await;
    assert_eq!(
        msg["alert"]["id"],
        own.id.0.as_str(),
        "first alert seen is the own team's: {msg}"
    );
}
