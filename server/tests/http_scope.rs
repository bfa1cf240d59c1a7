//! Care-team scoping, route by route, with the routes enumerated from the
//! OpenAPI document the router itself produces: a new route with a
//! `{patient_id}` or `{alert_id}` is checked automatically, a new list route has
//! its body checked for foreign patients, and any other new route fails the
//! test until it is classified here.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use mimamori_server::http::demo::simulated_state;
use mimamori_server::http::simulated::Simulation;
use mimamori_server::http::{HttpConfig, router_with_openapi};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// Patients of the "setagaya" team in the simulation; the "tamagawa" nurse may see none.
const SETAGAYA: [(&str, &str); 6] = [
    ("p01", "山田 太郎"),
    ("p02", "山田 太朗"),
    ("p03", "佐々木 和子"),
    ("p04", "中村 清"),
    ("p05", "小林 ミヨ"),
    ("p06", "加藤 正男"),
];

/// Non-GET routes without a path id that carry no patient data.
const NO_PATIENT_DATA: [&str; 5] = [
    "POST /api/v1/session",
    "DELETE /api/v1/session",
    "POST /api/v1/session/totp",
    "PUT /api/v1/session/totp",
    "DELETE /api/v1/users/{user_id}/totp",
];

struct App {
    router: Router,
    openapi: Value,
    sim: Simulation,
}

async fn app() -> App {
    let (state, sim) = simulated_state(HttpConfig::default(), 7).await.unwrap();
    let (router, openapi) = router_with_openapi(state);
    let router = router.layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    App {
        router,
        openapi: serde_json::to_value(openapi).unwrap(),
        sim,
    }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = to_bytes(res.into_body(), 10 << 20).await.unwrap();
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        set_cookie,
    )
}

async fn login(router: &Router, login: &str) -> String {
    let password = format!("mimamori-{login}");
    let (status, body, cookie) = call(
        router,
        "POST",
        "/api/v1/session",
        None,
        Some(json!({"login": login, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn documented_statuses(op: &Value) -> Vec<u16> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.parse().ok())
        .collect()
}

#[tokio::test]
async fn every_patient_data_route_refuses_a_user_outside_the_care_team() {
    let App {
        router, openapi, ..
    } = app().await;
    let outsider = login(&router, "tamagawa").await;
    let insider = login(&router, "nurse").await;
    // A setagaya alert (the simulation's first: p05's low battery).
    let foreign_alert = "a00001";
    let mut checked = 0;
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let route = format!("{method} {path}");
            let uri = path
                .replace("{patient_id}", "p01")
                .replace("{alert_id}", foreign_alert)
                .replace("{kind}", "heart_rate")
                .replace("{action}", "acknowledge")
                .replace("{rule_id}", "spo2_low");
            let body = (method != "GET").then(|| {
                json!({"note": "checked by test", "reason": "scoping test reason",
                       "raise_value": 86.0, "clear_value": 88.0, "expires_at": "2099-01-01T00:00:00Z"})
            });
            if route == "POST /api/v1/patients/{patient_id}/break-glass" {
                // How access is obtained; returns no patient data (tested below).
                continue;
            }
            if path.contains("{patient_id}") || path.contains("{alert_id}") {
                let (status, text, _) =
                    call(&router, &method, &uri, Some(&outsider), body.clone()).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{route} let an outsider in: {text}"
                );
                assert_eq!(error_code(&text), "patient_out_of_scope", "{route}");
                assert!(
                    documented_statuses(op).contains(&403),
                    "{route} does not document its 403"
                );
                if method == "GET" {
                    let (status, text, _) =
                        call(&router, &method, &uri, Some(&insider), None).await;
                    assert!(
                        status.is_success(),
                        "{route} refused the care team: {status} {text}"
                    );
                    assert!(
                        documented_statuses(op).contains(&status.as_u16()),
                        "{route}: undocumented {status}"
                    );
                }
            } else if method == "GET" {
                let (status, text, _) = call(&router, &method, &uri, Some(&outsider), None).await;
                assert!(
                    documented_statuses(op).contains(&status.as_u16()),
                    "{route}: undocumented {status} {text}"
                );
                for (id, name) in SETAGAYA {
                    assert!(
                        !text.contains(&format!("\"{id}\"")) && !text.contains(name),
                        "{route} shows {id} to an outsider"
                    );
                }
            } else {
                assert!(
                    NO_PATIENT_DATA.contains(&route.as_str()),
                    "unclassified route {route}: add a scope check and classify it here"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} routes enumerated");
    // The lists do show the outsider their own team's patients (the filter is not vacuous).
    let (_, text, _) = call(&router, "GET", "/api/v1/patients", Some(&outsider), None).await;
    assert!(
        text.contains("\"p07\"") && !text.contains("\"p01\""),
        "{text}"
    );
}

#[tokio::test]
async fn no_session_means_no_data_and_a_stable_error_code() {
    let App { router, .. } = app().await;
    let (status, text, _) = call(&router, "GET", "/api/v1/patients/p01", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&text), "unauthenticated");
    let (status, text, _) = call(
        &router,
        "POST",
        "/api/v1/session",
        None,
        Some(json!({"login": "nurse", "password": "wrong"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&text), "invalid_credentials");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let App { router, .. } = app().await;
    for _ in 0..5 {
        call(
            &router,
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"login": "doctor", "password": "nope"})),
        )
        .await;
    }
    // Even the right password is refused now, without being checked.
    let (status, text, _) = call(
        &router,
        "POST",
        "/api/v1/session",
        None,
        Some(json!({"login": "doctor", "password": "mimamori-doctor"})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert_eq!(error_code(&text), "rate_limited");
}

#[tokio::test]
async fn on_call_doctor_sees_a_patient_only_while_an_alert_is_routed_to_them() {
    let App { router, sim, .. } = app().await;
    let oncall = login(&router, "oncall").await;
    let (status, _, _) = call(&router, "GET", "/api/v1/patients/p03", Some(&oncall), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let alert = sim
        .deteriorate(&mimamori_server::http::data::PatientId("p03".into()))
        .unwrap();
    let (status, _, _) = call(&router, "GET", "/api/v1/patients/p03", Some(&oncall), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, html, _) = call(
        &router,
        "GET",
        &format!("/api/v1/alerts/{}/handover", alert.id),
        Some(&oncall),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("佐々木 和子") && html.contains("ささき かずこ"),
        "handover names the patient with furigana"
    );
    let (status, text, _) = call(
        &router,
        "POST",
        &format!("/api/v1/alerts/{}/resolve", alert.id),
        Some(&oncall),
        Some(json!({"note": "visited, oxygen flow corrected"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, _) = call(&router, "GET", "/api/v1/patients/p03", Some(&oncall), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "access ends with the alert");
    // Neighbouring patients were never reachable.
    let (status, _, _) = call(&router, "GET", "/api/v1/patients/p04", Some(&oncall), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn break_glass_needs_a_reason_and_is_audited_with_it() {
    let App { router, .. } = app().await;
    let outsider = login(&router, "tamagawa").await;
    let (status, _, _) = call(
        &router,
        "POST",
        "/api/v1/patients/p01/break-glass",
        Some(&outsider),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reason = "family called: patient unresponsive";
    let (status, _, _) = call(
        &router,
        "POST",
        "/api/v1/patients/p01/break-glass",
        Some(&outsider),
        Some(json!({"reason": reason})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        &router,
        "GET",
        "/api/v1/patients/p01",
        Some(&outsider),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = call(&router, "GET", "/api/v1/audit", Some(&outsider), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only administrators read the audit trail"
    );
    let admin = login(&router, "admin").await;
    let (status, _, _) = call(&router, "GET", "/api/v1/patients/p01", Some(&admin), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "administrators see no patient data by role"
    );
    let (status, text, _) = call(
        &router,
        "GET",
        "/api/v1/audit?patient_id=p01&limit=50",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows: Value = serde_json::from_str(&text).unwrap();
    let rows = rows["items"].as_array().unwrap();
    let read = rows
        .iter()
        .find(|r| {
            r["action"] == "GET /api/v1/patients/{patient_id}"
                && r["user_id"] == "u-tamagawa"
                && r["outcome"] == "allowed"
        })
        .expect("the read is audited");
    assert_eq!(read["basis"], "break_glass");
    assert_eq!(read["break_glass_reason"], reason);
    assert!(
        rows.iter()
            .any(|r| r["user_id"] == "u-admin" && r["outcome"] == "refused"),
        "refusals are audited too"
    );
}
