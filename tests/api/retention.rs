//! Retention (`delivery_retention`): once a send is older than the retention period, its sent
//! delivery rows are folded into the issue's counts. The send's progress, its report and the
//! readers' histories read the same from what remains; failed copies and those a bounce or a
//! complaint was reported for keep their rows; nothing is folded early, twice, or at all when
//! the setting is zero.

use chrono::Duration;
use fortnight::domain::IssueStatus;
use fortnight::domain::{EventKind, MailEvent};
use fortnight::store::{mail_events, subscriber_admin};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::wait_status;
use crate::helpers::{Backend, Reply, TestApp, count, spawn_app, spawn_app_with};

both_databases!(
    a_send_to_2000_readers_is_folded_after_90_days_and_its_report_reads_the_same,
    with_zero_retention_a_send_to_50_readers_keeps_every_row,
);

const READERS: usize = 2_000;

async fn send(app: &TestApp, token: &str) -> i64 {
    let created = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({"subject": "Freight and wheat", "body": "The price of wheat."}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    assert!(
        fortnight::store::issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    app.scheduler.handoff.issue_started(id);
    wait_status(app, id, IssueStatus::Sent, 120).await;
    id
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.api(Method::GET, path, token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The send's counts and its report, as the API gives them (the parts that do not move with
/// the clock).
async fn counts(app: &TestApp, token: &str, id: i64) -> (Value, Value) {
    let send = get_json(app, token, &format!("/api/v1/issues/{id}/send")).await;
    let mut progress = send["progress"].clone();
    progress["sent_last_minute"] = Value::Null;
    let report = get_json(app, token, &format!("/api/v1/issues/{id}/report")).await;
    (progress, report)
}

async fn report_event(app: &TestApp, kind: EventKind, email: &str) {
    let copy = app
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.to == vec![email.to_owned()])
        .expect("a copy");
    let event = MailEvent {
        provider: "postmark",
        event_id: format!("{kind:?}-{email}"),
        kind,
        email: email.to_owned(),
        message_id: copy.header("Message-ID"),
        return_path: None,
        diagnostic: "550 5.1.1 no such user".into(),
        occurred_at: app.clock.now(),
    };
    mail_events::record(&app.db, &event, None, false, 2, app.clock.now())
        .await
        .unwrap();
}

async fn history(app: &TestApp, email: &str) -> Vec<String> {
    let reader = app.subscriber(email).await.unwrap();
    subscriber_admin::deliveries_of(&app.db, reader.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.status)
        .collect()
}

async fn a_send_to_2000_readers_is_folded_after_90_days_and_its_report_reads_the_same(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("reader", READERS).await;
    let failing: Vec<String> = (0..5).map(|i| format!("reader{i}@example.com")).collect();
    for email in &failing {
        app.smtp.script_recipient(email, &[Reply::Permanent]);
    }
    let id = send(&app, &token).await;
    let started = app.clock.now();

    // What the report counts besides sent and failed: a bounce and a complaint reported
    // after the send, and three readers who left within the week.
    report_event(&app, EventKind::Bounce, "reader10@example.com").await;
    report_event(&app, EventKind::Complaint, "reader11@example.com").await;
    for i in 20..23 {
        let reader = app
            .subscriber(&format!("reader{i}@example.com"))
            .await
            .unwrap();
        let left = app
            .api(
                Method::POST,
                &format!("/api/v1/subscribers/{}/unsubscribe", reader.id),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert!(left.status().is_success());
    }
    let before = counts(&app, &token, id).await;
    assert_eq!(before.0["sent"], READERS as i64 - 5);
    assert_eq!(before.0["failed"], 5);
    assert_eq!(before.1["bounced"], 1);
    assert_eq!(before.1["complained"], 1);
    assert_eq!(before.1["unsubscribed_within_7_days"], 3);
    assert_eq!(count(&app.db, "deliveries").await, READERS as i64);

    // Not before the retention period is over.
    let early = app
        .scheduler
        .run_due(started + Duration::days(89))
        .await
        .unwrap();
    assert_eq!(early.folded, 0);
    assert_eq!(count(&app.db, "deliveries").await, READERS as i64);

    // Two instances fold at once: every row is counted by exactly one of them.
    let other = crate::links::other_scheduler(&app).await;
    let later = started + Duration::days(91);
    let (a, b) = tokio::join!(app.scheduler.run_due(later), other.run_due(later));
    let folded = a.unwrap().folded + b.unwrap().folded;
    assert_eq!(folded, READERS as u64 - 7);
    assert_eq!(app.scheduler.run_due(later).await.unwrap().folded, 0);
    // Left: the five failed copies, and the bounced and complained ones with their evidence.
    assert_eq!(count(&app.db, "deliveries").await, 7);
    assert_eq!(
        counts(&app, &token, id).await,
        before,
        "the counts read the same"
    );

    // The readers' histories: what remains.
    assert_eq!(history(&app, "reader0@example.com").await, vec!["failed"]);
    assert_eq!(history(&app, "reader10@example.com").await, vec!["sent"]);
    assert!(history(&app, "reader100@example.com").await.is_empty());
    app.sign_in().await;
    let reader = app.subscriber("reader100@example.com").await.unwrap();
    let page = app.get(&format!("/admin/subscribers/{}", reader.id)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("delivery_retention"));

    // Retrying the failed copies reopens the send; the counts go on from the folded ones, and
    // the new sends are folded in their turn.
    for email in &failing {
        app.smtp.script_recipient(email, &[Reply::Accept]);
    }
    let retried = app
        .api(Method::POST, &format!("/api/v1/issues/{id}/retry"), &token)
        .send()
        .await
        .unwrap();
    assert!(retried.status().is_success());
    app.scheduler.handoff.issue_started(id);
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    let (progress, report) = counts(&app, &token, id).await;
    assert_eq!(progress["sent"], READERS as i64);
    assert_eq!(progress["failed"], 0);
    assert_eq!(report["unsubscribed_within_7_days"], 3);
    let refold = app.clock.now() + Duration::days(91);
    assert_eq!(app.scheduler.run_due(refold).await.unwrap().folded, 5);
    assert_eq!(count(&app.db, "deliveries").await, 2);
    assert_eq!(counts(&app, &token, id).await.0["sent"], READERS as i64);
}

async fn with_zero_retention_a_send_to_50_readers_keeps_every_row(backend: Backend) {
    let app = spawn_app_with(backend, fortnight::clock::Clock::System, |c| {
        c.delivery_retention = std::time::Duration::ZERO
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("reader", 50).await;
    send(&app, &token).await;
    let years = app.clock.now() + Duration::days(3 * 365);
    assert_eq!(app.scheduler.run_due(years).await.unwrap().folded, 0);
    assert_eq!(count(&app.db, "deliveries").await, 50);
}
