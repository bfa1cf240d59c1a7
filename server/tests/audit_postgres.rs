//! The audit trail is append-only by PostgreSQL's own permissions: the server's
//! role may INSERT and SELECT, and UPDATE, DELETE and TRUNCATE fail — for that
//! role by privilege, and even for the table's owner by trigger.
//! Runs on the real PostgreSQL + TimescaleDB of the test harness.

use mimamori_server::http::audit::{AuditEntry, AuditLog, AuditOutcome, AuditQuery};
use mimamori_server::http::data::{PatientId, UserId};
use mimamori_testkit::Postgres;
use sqlx::postgres::PgPoolOptions;

fn entry() -> AuditEntry {
    AuditEntry {
        user_id: UserId("u-nurse".into()),
        patient_id: Some(PatientId("p01".into())),
        action: "GET /api/v1/patients/{patient_id}".into(),
        outcome: AuditOutcome::Allowed,
        basis: Some("break_glass"),
        remote_addr: "192.0.2.7".into(),
        break_glass_reason: Some("family called at night".into()),
    }
}

#[tokio::test]
async fn server_role_may_insert_and_select_but_not_update_or_delete_audit_rows() {
    let pg = Postgres::shared().unwrap();
    let url = pg.create_database().unwrap();
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("migrations/postgres")
        .run(&owner)
        .await
        .unwrap();

    // The server logs in as a role that is a member of mimamori_server, and nothing more.
    let role = format!("audit_server_{}", std::process::id());
    sqlx::query(&format!("CREATE ROLE {role} LOGIN IN ROLE mimamori_server"))
        .execute(&owner)
        .await
        .unwrap();
    let server_url = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let server = PgPoolOptions::new()
        .max_connections(2)
        .connect(&server_url)
        .await
        .unwrap();

    let log = AuditLog::Postgres(server.clone());
    log.append(&[entry(), entry()]).await.unwrap();
    let rows = log
        .query(&AuditQuery {
            patient_id: Some("p01".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].break_glass_reason.as_deref(),
        Some("family called at night")
    );
    assert!(rows[0].id > rows[1].id, "newest first");

    for sql in [
        "UPDATE audit_events SET action = 'nothing happened'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(sql).execute(&server).await.expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    // Even the owner (a deployment that wrongly runs the server as owner) cannot rewrite history.
    for sql in [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(sql).execute(&owner).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(count, 2);
    server.close().await;
    sqlx::query(&format!("DROP OWNED BY {role}"))
        .execute(&owner)
        .await
        .unwrap();
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&owner)
        .await
        .unwrap();
}
