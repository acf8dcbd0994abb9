//! Pause, resume, cancel and progress take effect at once: once the API has answered, no
//! SMTP transaction of the issue starts anywhere; cancel ends every unsent delivery; progress
//! counts each copy within about a second of the relay accepting it.

use std::time::{Duration, Instant};

use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use fortnight::store::sends;
use reqwest::Method;
use serde_json::Value;

use super::{another_worker, copies, settled, start_send, wait_status};
use crate::both_databases;
use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};

both_databases!(
    pause_and_cancel_stop_every_new_transaction_before_they_answer,
    progress_counts_each_copy_within_a_second_of_the_relay_accepting_it,
);

/// Posts a steering action and returns the moment its answer arrived.
async fn steer(app: &TestApp, token: &str, id: i64, action: &str) -> Instant {
    let response = app
        .api(
            Method::POST,
            &format!("/api/v1/issues/{id}/{action}"),
            token,
        )
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(response.status(), 200, "{action}");
    answered
}

/// Transactions the relay saw start after `at`.
fn started_after(app: &TestApp, at: Instant) -> usize {
    app.smtp.starts().iter().filter(|s| **s > at).count()
}

/// The queue depth `/metrics` reports.
async fn queue_depth(app: &TestApp) -> f64 {
    let body = app.get("/metrics").await.text().await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("fortnight_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no queue depth in:\n{body}"))
}

async fn pause_and_cancel_stop_every_new_transaction_before_they_answer(backend: Backend) {
    // No rate limit, a relay that takes 20 ms a message and answers 451 to every third reader
    // the first time: the send is in full flow, with rows retrying, when it is steered. Each
    // 451 costs the connection, and a new one is greeted only after 100 ms: slots often hold a
    // row for that long before their transaction can start.
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.delivery_worker = false;
        c.send_rate_per_second = 0;
        c.delivery_lease = Duration::from_secs(2);
    })
    .await;
    // The sending worker is another instance's: it learns of steering only from the database.
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(another_worker(&app).await.run(stop.clone()));
    let token = app.api_token().await;
    let readers = 600;
    app.seed_active("steer", readers).await;
    for n in (0..readers).step_by(3) {
        app.smtp
            .script_recipient(&format!("steer{n}@example.com"), &[Reply::Temporary]);
    }
    app.smtp.set_delay(Duration::from_millis(20));
    app.smtp.set_greeting_delay(Duration::from_millis(100));
    let id = start_send(&app, &token, "Steered").await;
    let sent = |app: &TestApp| {
        copies(&app.smtp, "Steered")
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    while sent(&app) < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let paused = steer(&app, &token, id, "pause").await;
    let at_pause = settled(&app, "Steered").await;
    assert_eq!(
        started_after(&app, paused),
        0,
        "no transaction starts after the pause answered"
    );
    assert!(at_pause < readers, "{at_pause}");
    assert_eq!(
        app.api(Method::POST, &format!("/api/v1/issues/{id}/pause"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    steer(&app, &token, id, "resume").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent(&app) < at_pause + 40 {
        assert!(Instant::now() < deadline, "the resumed send does not move");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled = steer(&app, &token, id, "cancel").await;
    let at_cancel = settled(&app, "Steered").await;
    assert_eq!(
        started_after(&app, cancelled),
        0,
        "no transaction starts after the cancel answered"
    );
    assert!(at_cancel < readers, "{at_cancel}");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(
        progress.sent as usize, at_cancel,
        "what was sent stays sent, and is counted: {progress:?}"
    );
    assert_eq!(
        (progress.pending, progress.retrying),
        (0, 0),
        "every unsent delivery is cancelled, retrying ones too: {progress:?}"
    );
    assert_eq!(
        progress.sent + progress.cancelled + progress.failed,
        readers as i64,
        "{progress:?}"
    );
    assert_eq!(queue_depth(&app).await, 0.0);
    assert_eq!(
        fortnight::store::issues::get(&app.db, id)
            .await
            .unwrap()
            .unwrap()
            .status,
        IssueStatus::Cancelled
    );
    assert!(
        copies(&app.smtp, "Steered").values().all(|c| c.len() == 1),
        "nobody twice"
    );
    assert_eq!(progress.in_doubt, 0);
    stop.cancel();
    let _ = worker.await;
}

async fn progress_counts_each_copy_within_a_second_of_the_relay_accepting_it(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.send_rate_per_second = 0;
        c.send_concurrency = 2;
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("live", 8).await;
    app.smtp.set_delay(Duration::from_millis(400));
    let id = start_send(&app, &token, "Live").await;
    // For each count n, when the API first reported it.
    let mut reported: Vec<Instant> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reported.len() < 8 {
        assert!(Instant::now() < deadline, "the send did not finish");
        let status: Value = app
            .api(Method::GET, &format!("/api/v1/issues/{id}/send"), &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sent = status["progress"]["sent"].as_u64().unwrap() as usize;
        while reported.len() < sent {
            reported.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accepted: Vec<Instant> = app
        .smtp
        .messages()
        .iter()
        .filter(|m| m.parsed().subject() == Some("Live"))
        .map(|m| m.accepted_at)
        .collect();
    accepted.sort();
    assert_eq!(accepted.len(), 8);
    for (n, (accepted, reported)) in accepted.iter().zip(&reported).enumerate() {
        let lag = reported.saturating_duration_since(*accepted);
        assert!(
            lag < Duration::from_secs(1),
            "copy {} was counted {lag:?} after the relay accepted it",
            n + 1
        );
    }
    wait_status(&app, id, IssueStatus::Sent, 10).await;
}
