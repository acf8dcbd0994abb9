//! `GET /health` tells whether the database answers.

use crate::both_databases;
use crate::helpers::{Backend, spawn_app};

both_databases!(health_is_ok_while_the_database_answers_and_503_when_it_does_not);

async fn health_is_ok_while_the_database_answers_and_503_when_it_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    app.db.close().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 503);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}
