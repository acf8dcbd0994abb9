//! Retention (`delivery_retention`): once a send is older than the retention period, its sent
//! delivery rows are folded into the issue's counts. The send's progress, its report and the
//! readers' histories read the same from what remains; failed copies and those a bounce or a
//! complaint was reported for keep their rows; nothing is folded early, twice, or at all when
//! the setting is zero.

use chrono::Duration;
use fortnight::domain::IssueStatus;
use fortnight::domain::{EventKind, IssueDraft, IssueInput, MailEvent};
use fortnight::store::{Db, issues, mail_events, retention, sends, subscriber_admin};
use reqwest::Method;
use serde_json::Value;

use crate::both_databases;
use crate::delivery::{start_send, wait_status};
use crate::helpers::{Backend, Reply, TestApp, count, spawn_app, spawn_app_with};

both_databases!(
    a_send_to_2000_readers_is_folded_after_90_days_and_its_report_reads_the_same,
    with_zero_retention_a_send_to_50_readers_keeps_every_row,
    two_instances_folding_5000_rows_700_at_a_time_count_each_row_once,
    a_soft_bounce_run_of_3_readers_does_not_reach_across_a_folded_send,
);

const READERS: usize = 2_000;

async fn send(app: &TestApp, token: &str) -> i64 {
    let id = start_send(app, token, "Freight and wheat").await;
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

/// An issue that went out at `at` to every subscriber, as the send loop leaves it: finished,
/// one `sent` row per reader.
async fn past_send(db: &Db, subject: &str, at: chrono::DateTime<chrono::Utc>) -> i64 {
    let draft = IssueDraft::parse(IssueInput {
        subject: subject.into(),
        body: "Past.".into(),
        ..IssueInput::default()
    })
    .unwrap();
    let id = issues::create(db, &draft, at).await.unwrap().id;
    fortnight::with_pool!(db, write, |pool| async {
        sqlx::query(
            "UPDATE issues SET status = 'sent', published_at = $2, finished_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, \
             sent_at, updated_at) SELECT $1, id, 'sent', 1, $2, $2, $2 FROM subscribers",
        )
        .bind(id)
        .bind(at)
        .execute(pool)
        .await?;
        Ok::<(), sqlx::Error>(())
    }
    .await)
    .unwrap();
    id
}

async fn folded_at(db: &Db, id: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    fortnight::with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT folded_at FROM issues WHERE id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await)
    .unwrap()
}

async fn two_instances_folding_5000_rows_700_at_a_time_count_each_row_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("reader", 5_000).await;
    let now = app.clock.now();
    let id = past_send(&app.db, "Long ago", now - Duration::days(200)).await;
    // Copies another worker took over after a crash: in doubt, and counted so when folded.
    fortnight::with_pool!(&app.db, write, |pool| sqlx::query(
        "UPDATE deliveries SET reclaimed = 1 WHERE issue_id = $1 AND subscriber_id % 100 = 7"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    let before = sends::progress(&app.db, id, now).await.unwrap();
    assert_eq!(before.sent, 5_000);
    assert_eq!(before.in_doubt, 50);

    let other = Db::connect(
        &secrecy::SecretString::from(app.database_url.clone()),
        4,
        Default::default(),
    )
    .await
    .unwrap();
    let mut total = 0;
    loop {
        let (a, b) = tokio::join!(
            retention::fold_due(&app.db, Duration::days(90), 700, now),
            retention::fold_due(&other, Duration::days(90), 700, now),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        total += a.rows + b.rows;
        let left = count(&app.db, "deliveries").await;
        assert_eq!(left, 5_000 - total as i64, "each row folded once");
        if left > 0 {
            assert_eq!(
                folded_at(&app.db, id).await,
                None,
                "not done with {left} rows left"
            );
        }
        if a.rows + b.rows == 0 {
            break;
        }
        assert!(a.rows <= 700 && b.rows <= 700, "{a:?} {b:?}");
    }
    assert_eq!(total, 5_000);
    assert!(folded_at(&app.db, id).await.is_some());
    let after = sends::progress(&app.db, id, now).await.unwrap();
    assert_eq!(after, before, "the counts read the same");
}

async fn soft_bounce(app: &TestApp, reader: i64, issue: i64, at: chrono::DateTime<chrono::Utc>) {
    let delivery: i64 = fortnight::with_pool!(&app.db, read, |pool| sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE subscriber_id = $1 AND issue_id = $2"
    )
    .bind(reader)
    .bind(issue)
    .fetch_one(pool)
    .await)
    .unwrap();
    let event = MailEvent {
        provider: "mailbox",
        event_id: format!("soft-{reader}-{issue}"),
        kind: EventKind::SoftBounce,
        email: "reader0@example.com".into(),
        message_id: None,
        return_path: None,
        diagnostic: "452 4.2.2 mailbox full".into(),
        occurred_at: at,
    };
    mail_events::record(&app.db, &event, Some(delivery), false, 2, at)
        .await
        .unwrap();
}

async fn a_soft_bounce_run_of_3_readers_does_not_reach_across_a_folded_send(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("reader", 3).await;
    let reader = app.subscriber("reader0@example.com").await.unwrap().id;
    let now = app.clock.now();
    // A soft bounce on a send 200 days ago; the send after it reached the reader (its row,
    // with nothing reported, is folded away with the rest of that send's).
    let first = past_send(&app.db, "Two hundred days ago", now - Duration::days(200)).await;
    soft_bounce(&app, reader, first, now - Duration::days(200)).await;
    past_send(
        &app.db,
        "A hundred and fifty days ago",
        now - Duration::days(150),
    )
    .await;
    retention::fold_due(&app.db, Duration::days(90), u64::MAX, now)
        .await
        .unwrap();
    assert_eq!(
        history(&app, "reader0@example.com").await,
        vec!["sent"],
        "the bounced copy stays, the one that went through is folded"
    );
    // Today's soft bounce is not the second in a row: the threshold (2) is not reached.
    let third = past_send(&app.db, "Today", now).await;
    soft_bounce(&app, reader, third, now).await;
    let status = app.subscriber("reader0@example.com").await.unwrap().status;
    assert_eq!(status.as_str(), "active");
    // The next one is.
    let fourth = past_send(&app.db, "Next", now + Duration::days(14)).await;
    soft_bounce(&app, reader, fourth, now + Duration::days(14)).await;
    let status = app.subscriber("reader0@example.com").await.unwrap().status;
    assert_eq!(status.as_str(), "bounced");
}
