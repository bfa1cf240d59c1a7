//! WebSocket `/ws`: live patient events and the alert feed.
//!
//! Protocol (JSON text frames):
//! - client → server: `{"op":"subscribe","patient_id":"…"}`, `{"op":"unsubscribe","patient_id":"…"}`,
//!   `{"op":"subscribe_alerts"}`, `{"op":"unsubscribe_alerts"}`.
//! - server → client: `subscribed`, `unsubscribed`, `error {code, message}`, `patient {patient_id, event}`,
//!   `alert {alert}`, `dropped {patient_id, ecg_frames}`, `heartbeat {t}`, `resync {patient_id?}`.
//!
//! Backpressure: each connection has two queues. Live ECG goes to a small ring
//! that drops its oldest frame when full and tells the client how many it lost
//! before the next frame it does get. Alerts and state changes go to a bounded
//! queue that is never shed: a client that lets it fill is disconnected (it
//! reconnects and reloads), so it can miss nothing silently.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;

use super::api::origin::origin_allowed;
use super::api::scope::CurrentUser;
use super::data::{Alert, PatientEvent, PatientId};
use super::error::ApiError;
use super::state::AppState;

/// Messages from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe { patient_id: PatientId },
    Unsubscribe { patient_id: PatientId },
    SubscribeAlerts,
    UnsubscribeAlerts,
}

/// Messages to the client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Subscribed {
        patient_id: Option<&'a PatientId>,
    },
    Unsubscribed {
        patient_id: Option<&'a PatientId>,
    },
    Error {
        code: &'a str,
        message: String,
        patient_id: Option<&'a PatientId>,
    },
    Patient {
        patient_id: &'a PatientId,
        event: &'a PatientEvent,
    },
    Alert {
        alert: &'a Alert,
    },
    Dropped {
        patient_id: &'a PatientId,
        ecg_frames: u64,
    },
    Heartbeat {
        t: chrono::DateTime<Utc>,
    },
    Resync {
        patient_id: Option<&'a PatientId>,
    },
}

fn text(msg: &ServerMessage<'_>) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_default(),
    ))
}

/// Bounded ring of live ECG frames that drops the oldest and counts what it dropped.
#[derive(Debug)]
pub struct EcgQueue {
    capacity: usize,
    frames: VecDeque<(PatientId, PatientEvent)>,
    dropped: HashMap<PatientId, u64>,
}

impl EcgQueue {
    /// A ring of `capacity` frames (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            frames: VecDeque::new(),
            dropped: HashMap::new(),
        }
    }

    /// Queues a frame, dropping (and counting) the oldest if full.
    pub fn push(&mut self, patient: PatientId, frame: PatientEvent) {
        if self.frames.len() == self.capacity
            && let Some((old_patient, _)) = self.frames.pop_front()
        {
            *self.dropped.entry(old_patient).or_default() += 1;
        }
        self.frames.push_back((patient, frame));
    }

    /// Counts frames lost to a lagging upstream broadcast.
    pub fn count_lost(&mut self, patient: PatientId, frames: u64) {
        *self.dropped.entry(patient).or_default() += frames;
    }

    /// Next frame, with how many frames of that patient were dropped before it (reset on read).
    pub fn pop(&mut self) -> Option<(PatientId, PatientEvent, u64)> {
        let (patient, frame) = self.frames.pop_front()?;
        let dropped = self.dropped.remove(&patient).unwrap_or(0);
        Some((patient, frame, dropped))
    }
}

/// Shared between a connection's forwarders and its writer.
#[derive(Debug)]
struct Outbox {
    ecg: Mutex<EcgQueue>,
    ecg_ready: Notify,
    events: mpsc::Sender<Message>,
}

impl Outbox {
    /// Queues a message that must not be dropped. `false` means the client is too
    /// far behind and the connection must close.
    fn must_send(&self, msg: Message) -> bool {
        self.events.try_send(msg).is_ok()
    }
}

/// Upgrade request, authenticated and Origin-checked before the upgrade.
#[derive(Debug)]
pub struct WsAuth(CurrentUser);

impl FromRequestParts<AppState> for WsAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A browser always sends Origin on WebSocket upgrades; require it and check it.
        if parts.headers.get(axum::http::header::ORIGIN).is_none()
            || !origin_allowed(&parts.headers, &state.config.extra_origins)
        {
            return Err(ApiError::BadOrigin);
        }
        Ok(WsAuth(CurrentUser::from_request_parts(parts, state).await?))
    }
}

/// `GET /ws`: the live feed.
pub async fn upgrade(
    State(state): State<AppState>,
    WsAuth(user): WsAuth,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| connection(state, user, socket))
}

async fn connection(state: AppState, user: CurrentUser, socket: WebSocket) {
    let limits = state.config.ws;
    let (events_tx, mut events_rx) = mpsc::channel::<Message>(limits.event_queue_messages);
    let outbox = Arc::new(Outbox {
        ecg: Mutex::new(EcgQueue::new(limits.ecg_queue_frames)),
        ecg_ready: Notify::new(),
        events: events_tx,
    });
    let (mut sink, mut stream) = socket.split();
    let too_slow = Arc::new(Notify::new());

    // Writer: state changes first, then ECG; stops when the events queue closes.
    let writer_outbox = outbox.clone();
    let writer_state = state.clone();
    let writer = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                biased;
                m = events_rx.recv() => match m { Some(m) => m, None => break },
                () = writer_outbox.ecg_ready.notified() => {
                    loop {
                        let next = writer_outbox.ecg.lock().unwrap_or_else(PoisonError::into_inner).pop();
                        let Some((patient, frame, dropped)) = next else { break };
                        if dropped > 0 {
                            writer_state.metrics.ws_ecg_frames_dropped.fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
                        }
                        if dropped > 0 && sink.send(text(&ServerMessage::Dropped { patient_id: &patient, ecg_frames: dropped })).await.is_err() {
                            return;
                        }
                        if sink.send(text(&ServerMessage::Patient { patient_id: &patient, event: &frame })).await.is_err() {
                            return;
                        }
                        // Let queued alerts overtake the rest of the ECG backlog.
                        if !events_rx.is_empty() { writer_outbox.ecg_ready.notify_one(); break; }
                    }
                    continue;
                }
            };
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                return;
            }
        }
    });

    let mut patients: HashMap<PatientId, JoinHandle<()>> = HashMap::new();
    let mut alert_feed: Option<JoinHandle<()>> = None;
    let mut heartbeat = tokio::time::interval(limits.heartbeat);
    let mut silent_beats = 0u32;
    loop {
        tokio::select! {
            () = too_slow.notified() => {
                state.metrics.ws_clients_too_slow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(user_id = %user.user.principal.user_id, "WebSocket client too slow for state changes; disconnecting.");
                break;
            }
            _ = heartbeat.tick() => {
                silent_beats += 1;
                if silent_beats > 3 { break; }
                if !outbox.must_send(text(&ServerMessage::Heartbeat { t: Utc::now() })) || !outbox.must_send(Message::Ping(Default::default())) { break; }
                // Access can lapse (an on-call alert resolved, break-glass expired, logout): re-check.
                if state.sessions.touch(&user.token, Utc::now()).is_err() { break; }
                let mut lapsed = Vec::new();
                for id in patients.keys() {
                    if !matches!(state.decide(&user.user.principal, id).await, Ok(Some(_))) { lapsed.push(id.clone()); }
                }
                for id in lapsed {
                    if let Some(task) = patients.remove(&id) { task.abort(); }
                    outbox.must_send(text(&ServerMessage::Error { code: "patient_out_of_scope", message: ApiError::PatientOutOfScope.to_string(), patient_id: Some(&id) }));
                }
            }
            incoming = stream.next() => {
                let Some(Ok(incoming)) = incoming else { break };
                silent_beats = 0;
                let Message::Text(body) = incoming else {
                    if matches!(incoming, Message::Close(_)) { break; }
                    continue;
                };
                match serde_json::from_str::<ClientMessage>(&body) {
                    Err(e) => { outbox.must_send(text(&ServerMessage::Error { code: "bad_request", message: e.to_string(), patient_id: None })); }
                    Ok(ClientMessage::Subscribe { patient_id }) => {
                        match subscribe_patient(&state, &user, &patient_id, &outbox, &too_slow).await {
                            Ok(task) => {
                                if let Some(old) = patients.insert(patient_id.clone(), task) { old.abort(); }
                                outbox.must_send(text(&ServerMessage::Subscribed { patient_id: Some(&patient_id) }));
                            }
                            Err(e) => { outbox.must_send(text(&ServerMessage::Error { code: e.code(), message: e.to_string(), patient_id: Some(&patient_id) })); }
                        }
                    }
                    Ok(ClientMessage::Unsubscribe { patient_id }) => {
                        if let Some(task) = patients.remove(&patient_id) { task.abort(); }
                        outbox.must_send(text(&ServerMessage::Unsubscribed { patient_id: Some(&patient_id) }));
                    }
                    Ok(ClientMessage::SubscribeAlerts) => {
                        if let Some(old) = alert_feed.replace(forward_alerts(state.clone(), user.clone(), outbox.clone(), too_slow.clone())) { old.abort(); }
                        outbox.must_send(text(&ServerMessage::Subscribed { patient_id: None }));
                    }
                    Ok(ClientMessage::UnsubscribeAlerts) => {
                        if let Some(task) = alert_feed.take() { task.abort(); }
                        outbox.must_send(text(&ServerMessage::Unsubscribed { patient_id: None }));
                    }
                }
            }
        }
    }
    for (_, task) in patients {
        task.abort();
    }
    if let Some(task) = alert_feed {
        task.abort();
    }
    // Try to say goodbye; a client that reads nothing gets its socket dropped.
    let _ = outbox.events.try_send(Message::Close(Some(CloseFrame {
        code: 1013,
        reason: Utf8Bytes::from_static("reconnect"),
    })));
    drop(outbox);
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::debug!("WebSocket writer did not finish; dropping the connection.");
    }
}

async fn subscribe_patient(
    state: &AppState,
    user: &CurrentUser,
    patient_id: &PatientId,
    outbox: &Arc<Outbox>,
    too_slow: &Arc<Notify>,
) -> Result<JoinHandle<()>, ApiError> {
    state
        .authorize(
            &user.user.principal,
            patient_id,
            "WS subscribe patient",
            user.remote,
        )
        .await?;
    let mut rx = state.data.subscribe_patient(patient_id)?;
    let (outbox, too_slow, patient_id) = (outbox.clone(), too_slow.clone(), patient_id.clone());
    Ok(tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) if event.is_droppable() => {
                    outbox
                        .ecg
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(patient_id.clone(), event);
                    outbox.ecg_ready.notify_one();
                }
                Ok(event) => {
                    if !outbox.must_send(text(&ServerMessage::Patient {
                        patient_id: &patient_id,
                        event: &event,
                    })) {
                        too_slow.notify_one();
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // The server-side broadcast overran us: we cannot know what was
                    // lost, so tell the client to reload this patient's state.
                    outbox
                        .ecg
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .count_lost(patient_id.clone(), n);
                    if !outbox.must_send(text(&ServerMessage::Resync {
                        patient_id: Some(&patient_id),
                    })) {
                        too_slow.notify_one();
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}

fn forward_alerts(
    state: AppState,
    user: CurrentUser,
    outbox: Arc<Outbox>,
    too_slow: Arc<Notify>,
) -> JoinHandle<()> {
    let mut rx = state.data.subscribe_alerts();
    tokio::spawn(async move {
        loop {
            let msg = match rx.recv().await {
                Ok(alert) => {
                    // The same policy as REST; audited as a read of that patient's data.
                    if state
                        .authorize(
                            &user.user.principal,
                            &alert.patient_id,
                            "WS alert feed",
                            user.remote,
                        )
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    text(&ServerMessage::Alert { alert: &alert })
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    text(&ServerMessage::Resync { patient_id: None })
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !outbox.must_send(msg) {
                too_slow.notify_one();
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::data::EcgFrame;

    fn frame(n: i32) -> PatientEvent {
        PatientEvent::Ecg(EcgFrame {
            start: Utc::now(),
            sample_rate_hz: 250,
            samples_uv: vec![n],
            r_peaks: vec![],
            rr_ms: vec![],
        })
    }

    #[test]
    fn full_ring_drops_oldest_and_reports_count_with_next_frame_of_that_patient() {
        let mut q = EcgQueue::new(2);
        let p = PatientId("p".into());
        for n in 0..5 {
            q.push(p.clone(), frame(n));
        }
        let (_, f, dropped) = q.pop().unwrap();
        assert_eq!(dropped, 3);
        assert!(
            matches!(f, PatientEvent::Ecg(EcgFrame { ref samples_uv, .. }) if samples_uv == &[3])
        );
        let (_, _, dropped) = q.pop().unwrap();
        assert_eq!(dropped, 0);
        assert!(q.pop().is_none());
    }
}
