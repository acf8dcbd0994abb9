//! The delivery engine: every active reader gets an issue exactly once, through scripted SMTP
//! failures, pauses, cancels, outages, crashes and several instances.

mod faults;
mod steering;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fortnight::clock::Clock;
use fortnight::delivery::worker::Worker;
use fortnight::domain::IssueStatus;
use fortnight::store::deliveries::{self, Outcome};
use fortnight::store::delivery_ledger::{self, Round};
use fortnight::store::{Db, delivery_workers, issues, sends};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::both_databases;
use crate::helpers::{
    Backend, Reply, SmtpCapture, SmtpScript, TestApp, TestDatabase, spawn_app_with, start,
    test_config,
};

both_databases!(
    every_active_reader_gets_the_issue_once_through_scripted_failures,
    scripted_failures_end_the_same_with_a_server_that_does_not_pipeline,
    failed_deliveries_of_a_finished_send_can_be_retried,
    a_reader_who_leaves_mid_send_is_skipped,
    hard_bounces_past_the_threshold_mark_the_reader_bounced,
    an_smtp_outage_pauses_the_send_without_failing_anyone,
    three_instances_send_each_message_once,
    metrics_count_messages_and_requests,
    outcomes_are_recorded_per_row_and_only_by_the_worker_holding_it,
    one_round_records_and_claims_and_never_claims_what_it_records,
    claims_take_the_oldest_sending_issue_first_and_pass_over_a_paused_one,
);

/// Creates an issue through the API and starts its send as the scheduler would.
pub(crate) async fn start_send(app: &TestApp, token: &str, subject: &str) -> i64 {
    start_send_of(app, token, subject, "Body.").await
}

/// [`start_send`] of an issue with this Markdown body.
pub(crate) async fn start_send_of(app: &TestApp, token: &str, subject: &str, body: &str) -> i64 {
    let response = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({"subject": subject, "body": body}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    assert!(
        issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    app.scheduler.handoff.issue_started(id);
    id
}

/// Waits (up to `secs`) until the issue's status is `want`.
pub(crate) async fn wait_status(
    app: &TestApp,
    id: i64,
    want: IssueStatus,
    secs: u64,
) -> issues::Issue {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let issue = issues::get(&app.db, id).await.unwrap().unwrap();
        if issue.status == want {
            return issue;
        }
        let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
        assert!(
            tokio::time::Instant::now() < deadline,
            "issue {id} is {:?}, not {want:?}: {progress:?}",
            issue.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (up to ten seconds) until no copy of `subject` has arrived for a second; returns how
/// many have.
pub(crate) async fn settled(app: &TestApp, subject: &str) -> usize {
    let count = || {
        copies(&app.smtp, subject)
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = count();
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = count();
        if now == last {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sending never stops"
        );
        last = now;
    }
}

/// How many copies of the issue (by subject) each address received.
pub(crate) fn copies(smtp: &SmtpCapture, subject: &str) -> HashMap<String, Vec<String>> {
    let mut by_reader: HashMap<String, Vec<String>> = HashMap::new();
    for mail in smtp.messages() {
        let parsed = mail.parsed();
        if parsed.subject() == Some(subject) {
            by_reader
                .entry(mail.to[0].clone())
                .or_default()
                .push(parsed.message_id().unwrap_or("").to_owned());
        }
    }
    by_reader
}

async fn every_active_reader_gets_the_issue_once_through_scripted_failures(backend: Backend) {
    scripted_failures(backend, SmtpCapture::start(SmtpScript::Accept)).await;
}

async fn scripted_failures_end_the_same_with_a_server_that_does_not_pipeline(backend: Backend) {
    scripted_failures(
        backend,
        SmtpCapture::start_without_pipelining(SmtpScript::Accept),
    )
    .await;
}

/// Eight readers, five of them scripted (451 then OK, 550, 421 at the end of DATA, slow, 451
/// four times): the exact outcome of each, through `smtp`.
async fn scripted_failures(backend: Backend, smtp: SmtpCapture) {
    let database = TestDatabase::create(backend).await;
    let mut config = test_config(&database, smtp.port());
    config.send_max_attempts = 4;
    config.bounce_threshold = 1;
    let app = start(config, Clock::System, smtp, database).await;
    let token = app.api_token().await;
    app.seed_active("reader", 8).await;
    app.sign_up("pending@example.com").await;
    app.settle_mail().await;
    let script = [
        ("reader0@example.com", vec![Reply::Temporary, Reply::Accept]),
        ("reader1@example.com", vec![Reply::Permanent]),
        (
            "reader2@example.com",
            vec![Reply::DropInData, Reply::Accept],
        ),
        ("reader3@example.com", vec![Reply::Slow(300)]),
        (
            "reader4@example.com",
            vec![
                Reply::Temporary,
                Reply::Temporary,
                Reply::Temporary,
                Reply::Temporary,
            ],
        ),
    ];
    for (email, replies) in &script {
        app.smtp.script_recipient(email, replies);
    }
    let id = start_send(&app, &token, "Scripted").await;
    let issue = wait_status(&app, id, IssueStatus::Sent, 30).await;
    let got = copies(&app.smtp, "Scripted");
    for n in [0, 2, 3, 5, 6, 7] {
        assert_eq!(
            got.get(&format!("reader{n}@example.com")).map(Vec::len),
            Some(1),
            "reader{n}: {got:?}"
        );
    }
    assert!(!got.contains_key("reader1@example.com") && !got.contains_key("reader4@example.com"));
    assert!(
        !got.contains_key("pending@example.com"),
        "only confirmed readers"
    );
    let reader0 = app.subscriber("reader0@example.com").await.unwrap();
    assert_eq!(
        got["reader0@example.com"][0],
        format!(
            "{}.{}@news.example.com",
            issue.uid.simple(),
            reader0.uid.simple()
        )
    );
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(
        (
            progress.sent,
            progress.failed,
            progress.skipped,
            progress.remaining()
        ),
        (6, 2, 0, 0),
        "{progress:?}"
    );
    let status: Value = app
        .api(Method::GET, &format!("/api/v1/issues/{id}/send"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors = status["errors"].as_array().unwrap();
    let error_of = |email: &str| {
        errors
            .iter()
            .find(|e| e["email"] == email)
            .map(|e| e["last_error"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(
        error_of("reader1@example.com").contains("550"),
        "{errors:?}"
    );
    assert!(
        error_of("reader4@example.com").contains("gave up after 4 tries"),
        "{errors:?}"
    );
    assert_eq!(status["summary"]["progress"]["sent"], 6);
    assert_eq!(
        app.subscriber("reader1@example.com")
            .await
            .unwrap()
            .status
            .as_str(),
        "bounced"
    );
    assert_eq!(
        app.subscriber("reader4@example.com")
            .await
            .unwrap()
            .status
            .as_str(),
        "active",
        "temporary failures are not bounces"
    );
    // The editors hear how it went.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !app
        .smtp
        .messages()
        .iter()
        .any(|m| m.parsed().subject() == Some("Sent: \"Scripted\""))
    {
        assert!(tokio::time::Instant::now() < deadline, "no summary email");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn failed_deliveries_of_a_finished_send_can_be_retried(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.bounce_threshold = 3).await;
    let token = app.api_token().await;
    app.seed_active("again", 3).await;
    app.smtp
        .script_recipient("again1@example.com", &[Reply::Permanent]);
    let id = start_send(&app, &token, "Again").await;
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    assert!(!copies(&app.smtp, "Again").contains_key("again1@example.com"));
    assert_eq!(
        app.api(Method::POST, &format!("/api/v1/issues/{id}/cancel"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    // The pooled connections sit idle long enough to be checked before reuse.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let retry = app
        .api(Method::POST, &format!("/api/v1/issues/{id}/retry"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    let got = copies(&app.smtp, "Again");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.values().all(|c| c.len() == 1));
    assert_eq!(
        app.api(Method::POST, &format!("/api/v1/issues/{id}/retry"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        409,
        "nothing left to retry"
    );
}

async fn a_reader_who_leaves_mid_send_is_skipped(backend: Backend) {
    // One message a second, claimed one at a time: there is time to leave.
    let app = spawn_app_with(backend, Clock::System, |c| c.send_rate_per_second = 1).await;
    let token = app.api_token().await;
    app.seed_active("leave", 4).await;
    let id = start_send(&app, &token, "Leaving").await;
    app.wait_for_mail(1).await;
    let not_yet: Vec<String> = (0..4)
        .map(|n| format!("leave{n}@example.com"))
        .filter(|e| !copies(&app.smtp, "Leaving").contains_key(e))
        .collect();
    let leaver = app.subscriber(&not_yet[not_yet.len() - 1]).await.unwrap();
    fortnight::store::subscribers::unsubscribe(&app.db, &leaver.uid, app.clock.now())
        .await
        .unwrap();
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    let got = copies(&app.smtp, "Leaving");
    assert!(!got.contains_key(&leaver.email), "{got:?}");
    assert_eq!(got.len(), 3);
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!((progress.sent, progress.skipped), (3, 1));
}

async fn hard_bounces_past_the_threshold_mark_the_reader_bounced(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.bounce_threshold = 2).await;
    let token = app.api_token().await;
    app.seed_active("bounce", 2).await;
    app.smtp
        .script_recipient("bounce0@example.com", &[Reply::Permanent, Reply::Permanent]);
    let first = start_send(&app, &token, "First").await;
    wait_status(&app, first, IssueStatus::Sent, 20).await;
    assert_eq!(
        app.subscriber("bounce0@example.com")
            .await
            .unwrap()
            .status
            .as_str(),
        "active",
        "one bounce is not enough"
    );
    let second = start_send(&app, &token, "Second").await;
    wait_status(&app, second, IssueStatus::Sent, 20).await;
    assert_eq!(
        app.subscriber("bounce0@example.com")
            .await
            .unwrap()
            .status
            .as_str(),
        "bounced"
    );
    let third = start_send(&app, &token, "Third").await;
    wait_status(&app, third, IssueStatus::Sent, 20).await;
    assert_eq!(
        copies(&app.smtp, "Third").len(),
        1,
        "a bounced reader is not sent to"
    );
}

async fn an_smtp_outage_pauses_the_send_without_failing_anyone(backend: Backend) {
    let smtp = SmtpCapture::start(SmtpScript::Accept);
    smtp.set_offline(true);
    let database = TestDatabase::create(backend).await;
    let mut config = test_config(&database, smtp.port());
    config.send_max_attempts = 2;
    let app = start(config, Clock::System, smtp, database).await;
    let token = app.api_token().await;
    app.seed_active("outage", 5).await;
    let id = start_send(&app, &token, "Outage").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(
        (progress.pending, progress.failed, progress.sent),
        (5, 0, 0),
        "{progress:?}"
    );
    app.smtp.set_offline(false);
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    let got = copies(&app.smtp, "Outage");
    assert_eq!(got.len(), 5);
    assert!(got.values().all(|c| c.len() == 1));
    assert_eq!(
        sends::progress(&app.db, id, app.clock.now())
            .await
            .unwrap()
            .in_doubt,
        0
    );
}

/// A worker of its own (own pool, own wake-ups, as in another instance) on the app's database.
pub(crate) async fn another_worker(app: &TestApp) -> Worker {
    let db = Db::connect(
        &SecretString::from(app.database_url.clone()),
        4,
        Default::default(),
    )
    .await
    .unwrap();
    Worker {
        db,
        prepared: Default::default(),
        handoff: fortnight::delivery::Handoff::default(),
        ..app.worker.clone()
    }
}

async fn three_instances_send_each_message_once(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.delivery_worker = false;
        c.send_rate_per_second = 0;
    })
    .await;
    let token = app.api_token().await;
    let readers = if backend == Backend::Postgres {
        5000
    } else {
        1500
    };
    app.seed_active("many", readers).await;
    let id = start_send(&app, &token, "Many").await;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(tokio::spawn(another_worker(&app).await.run(stop.clone())));
    }
    wait_status(&app, id, IssueStatus::Sent, 120).await;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let got = copies(&app.smtp, "Many");
    assert_eq!(got.len(), readers);
    assert!(
        got.values().all(|c| c.len() == 1),
        "each reader exactly once"
    );
}

async fn metrics_count_messages_and_requests(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |_| {}).await;
    let token = app.api_token().await;
    app.seed_active("metric", 2).await;
    let id = start_send(&app, &token, "Counted").await;
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    // The finished send's page shows its summary and no controls that would answer 409.
    app.sign_in().await;
    let page = app
        .get(&format!("/admin/issues/{id}/send"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="summary""#), "{page}");
    assert!(page.contains("<strong>2</strong> sent"), "{page}");
    assert!(
        !page.contains("Pause") && !page.contains("Cancel the rest"),
        "{page}"
    );
    assert!(page.contains("accent-color"));
    crate::helpers::assert_no_form_in_a_paragraph(&page, "the send page");
    // A reader's page lists the issues that went to them.
    let reader = app.subscriber("metric0@example.com").await.unwrap();
    let page = app
        .get(&format!("/admin/subscribers/{}", reader.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(
            r#"<a href="/admin/issues/{id}">Counted</a></td><td>sent</td>"#
        )),
        "{page}"
    );
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    for name in [
        "fortnight_messages_sent_total",
        "fortnight_queue_depth",
        "fortnight_smtp_seconds",
        "fortnight_http_requests_total",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
    // From elsewhere (a proxy says so, but the socket is what counts) with a token required:
    let locked = spawn_app_with(backend, Clock::System, |c| {
        c.metrics_token = Some(SecretString::from("s3cret-token"))
    })
    .await;
    assert_eq!(locked.get("/metrics").await.status(), 403);
    let with_token = locked
        .client
        .get(format!("{}/metrics", locked.address))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
}

/// Each delivery row of an issue: id, status, the server's reply, when it was sent, the last error.
type Row = (
    i64,
    String,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
);

async fn delivery_rows(db: &Db, issue_id: i64) -> HashMap<i64, Row> {
    let rows: Vec<Row> = fortnight::with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT id, status, smtp_reply, sent_at, last_error FROM deliveries WHERE issue_id = $1"
    )
    .bind(issue_id)
    .fetch_all(pool)
    .await)
    .unwrap();
    rows.into_iter().map(|r| (r.0, r)).collect()
}

/// Enqueues every reader of every sending issue, as the workers would.
async fn enqueue_all(db: &Db, now: chrono::DateTime<chrono::Utc>) {
    loop {
        let pending = deliveries::to_enqueue(db).await.unwrap();
        if pending.is_empty() {
            break;
        }
        for issue in pending {
            deliveries::enqueue_batch(db, &issue, now).await.unwrap();
        }
    }
}

/// A worker registered with a lease that ends at `expires`.
async fn registered(db: &Db, expires: chrono::DateTime<chrono::Utc>) -> i64 {
    let now = chrono::Utc::now();
    delivery_workers::register(db, "test", 1, now, expires)
        .await
        .unwrap()
}

/// Every issue, oldest first.
async fn all_issues(db: &Db) -> Vec<i64> {
    fortnight::with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT id FROM issues ORDER BY id"
    )
    .fetch_all(pool)
    .await)
    .unwrap()
}

/// A round that only claims, for `holder` as of `now` (leases compared with `alive_at`), of
/// `issues` from `cursors`.
async fn claim_from(
    db: &Db,
    holder: i64,
    now: chrono::DateTime<chrono::Utc>,
    alive_at: chrono::DateTime<chrono::Utc>,
    want: i64,
    issues: &[i64],
    cursors: &mut HashMap<i64, deliveries::Cursor>,
) -> deliveries::Claim {
    let round = Round {
        outcomes: &[],
        want,
        holder,
        issues,
        now,
        alive_at,
        bounce_threshold: 2,
    };
    delivery_ledger::settle(db, round, cursors).await.unwrap()
}

/// Claims from the top of every issue.
async fn claim(
    db: &Db,
    holder: i64,
    now: chrono::DateTime<chrono::Utc>,
    alive_at: chrono::DateTime<chrono::Utc>,
    want: i64,
) -> Vec<deliveries::Claimed> {
    let issues = all_issues(db).await;
    claim_from(
        db,
        holder,
        now,
        alive_at,
        want,
        &issues,
        &mut HashMap::new(),
    )
    .await
    .rows
}

/// A round that only records.
async fn record(
    db: &Db,
    outcomes: &[(deliveries::Claimed, Outcome)],
    now: chrono::DateTime<chrono::Utc>,
) {
    let round = Round {
        outcomes,
        want: 0,
        holder: 0,
        issues: &[],
        now,
        alive_at: chrono::Utc::now(),
        bounce_threshold: 2,
    };
    delivery_ledger::settle(db, round, &mut HashMap::new())
        .await
        .unwrap();
}

async fn outcomes_are_recorded_per_row_and_only_by_the_worker_holding_it(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.delivery_worker = false).await;
    let token = app.api_token().await;
    app.seed_active("lease", 3).await;
    let id = start_send(&app, &token, "Lease").await;
    let now = app.clock.now();
    enqueue_all(&app.db, now).await;
    let alive = chrono::Utc::now();
    let first = registered(&app.db, alive + chrono::Duration::seconds(1)).await;
    let second = registered(&app.db, alive + chrono::Duration::hours(1)).await;
    let claimed = claim(&app.db, first, now, alive, 10).await;
    assert_eq!(claimed.len(), 3);
    assert!(
        claimed
            .iter()
            .all(|c| c.reader.is_some() && c.holder == first)
    );
    assert!(
        claim(&app.db, second, now, alive, 10).await.is_empty(),
        "rows held by a live worker are not claimed"
    );
    assert_eq!(sends::progress(&app.db, id, now).await.unwrap().in_doubt, 0);
    // The first worker's lease runs out: another takes the rows over, in doubt.
    let later = alive + chrono::Duration::seconds(2);
    let retaken = claim(&app.db, second, now, later, 10).await;
    assert_eq!(retaken.len(), 3);
    assert_eq!(sends::progress(&app.db, id, now).await.unwrap().in_doubt, 3);
    // The first worker's outcomes come too late and change nothing.
    let stale: Vec<_> = claimed
        .iter()
        .map(|c| (c.clone(), Outcome::Sent("250 stale".into())))
        .collect();
    record(&app.db, &stale, now).await;
    let rows = delivery_rows(&app.db, id).await;
    assert!(
        rows.values()
            .all(|r| r.1 == "pending" && r.2.is_none() && r.3.is_none()),
        "{rows:?}"
    );
    // The second worker's are kept, each sent row with its own reply and time.
    let outcomes = vec![
        (
            retaken[0].clone(),
            Outcome::Sent("250 2.0.0 Ok: queued as A1".into()),
        ),
        (
            retaken[1].clone(),
            Outcome::Sent("250 2.0.0 Ok: queued as B2".into()),
        ),
        (
            retaken[2].clone(),
            Outcome::Retry {
                at: now + chrono::Duration::minutes(1),
                error: "451 4.3.0 try later".into(),
            },
        ),
    ];
    record(&app.db, &outcomes, now).await;
    let rows = delivery_rows(&app.db, id).await;
    let row = |i: usize| rows[&retaken[i].id].clone();
    assert_eq!(
        (row(0).1.as_str(), row(0).2.as_deref()),
        ("sent", Some("250 2.0.0 Ok: queued as A1"))
    );
    assert_eq!(
        (row(1).1.as_str(), row(1).2.as_deref()),
        ("sent", Some("250 2.0.0 Ok: queued as B2"))
    );
    assert!(row(0).3.is_some() && row(1).3.is_some());
    assert_eq!(
        (row(2).1.as_str(), row(2).3, row(2).4.as_deref()),
        ("retrying", None, Some("451 4.3.0 try later"))
    );
    // A retried row is due later and claimable again once due; a sent one never again.
    let due = now + chrono::Duration::minutes(2);
    let again = claim(&app.db, second, due, later, 10).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (retaken[2].id, 1));
}

/// A round of the recorder both records outcomes and makes the claimer's claim, in one commit
/// (on PostgreSQL, when every outcome is an accepted copy, in one statement). Even when the
/// worker's lease has run out as the database sees it, the claim never takes a row the same
/// round records.
async fn one_round_records_and_claims_and_never_claims_what_it_records(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.delivery_worker = false).await;
    let token = app.api_token().await;
    app.seed_active("round", 8).await;
    let id = start_send(&app, &token, "Round").await;
    let now = app.clock.now();
    enqueue_all(&app.db, now).await;
    let alive = chrono::Utc::now();
    let holder = registered(&app.db, alive + chrono::Duration::seconds(1)).await;
    let first = claim(&app.db, holder, now, alive, 3).await;
    assert_eq!(first.len(), 3);
    // Accepted copies and a claim, judged after the lease ran out: the three held rows look
    // free to the claim, yet they are recorded, and the claim takes the others.
    let accepted: Vec<_> = first
        .iter()
        .map(|c| (c.clone(), Outcome::Sent(format!("250 ok {}", c.id))))
        .collect();
    let mut cursors = HashMap::new();
    let lapsed = alive + chrono::Duration::seconds(2);
    let round = Round {
        outcomes: &accepted,
        want: 10,
        holder,
        issues: &[id],
        now,
        alive_at: lapsed,
        bounce_threshold: 2,
    };
    let second = delivery_ledger::settle(&app.db, round, &mut cursors)
        .await
        .unwrap();
    let recorded: HashSet<i64> = first.iter().map(|c| c.id).collect();
    assert_eq!(second.rows.len(), 5, "{:?}", second.rows);
    assert!(
        second
            .rows
            .iter()
            .all(|c| !recorded.contains(&c.id) && c.reader.is_some() && c.holder == holder)
    );
    let rows = delivery_rows(&app.db, id).await;
    for c in &first {
        assert_eq!(
            (rows[&c.id].1.as_str(), rows[&c.id].2.clone()),
            ("sent", Some(format!("250 ok {}", c.id)))
        );
    }
    let progress = sends::progress(&app.db, id, now).await.unwrap();
    assert_eq!((progress.sent, progress.in_doubt), (3, 0));
    // Mixed outcomes and a claim (a transaction): one accepted, one to retry, the rest given
    // back; the claim then finds nothing due but what was given back.
    let mut mixed = vec![
        (second.rows[0].clone(), Outcome::Sent("250 ok".into())),
        (
            second.rows[1].clone(),
            Outcome::Retry {
                at: now + chrono::Duration::hours(1),
                error: "451 later".into(),
            },
        ),
    ];
    let back: HashSet<i64> = second.rows[2..].iter().map(|c| c.id).collect();
    mixed.extend(
        second.rows[2..]
            .iter()
            .map(|c| (c.clone(), Outcome::Released { at: now })),
    );
    let round = Round {
        outcomes: &mixed,
        want: 10,
        holder,
        issues: &[id],
        now,
        alive_at: alive,
        bounce_threshold: 2,
    };
    let third = delivery_ledger::settle(&app.db, round, &mut HashMap::new())
        .await
        .unwrap();
    let third: HashSet<i64> = third.rows.iter().map(|c| c.id).collect();
    assert_eq!(third, back);
    let progress = sends::progress(&app.db, id, now).await.unwrap();
    assert_eq!((progress.sent, progress.in_doubt), (4, 0));
}

async fn claims_take_the_oldest_sending_issue_first_and_pass_over_a_paused_one(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.delivery_worker = false).await;
    let token = app.api_token().await;
    app.seed_active("two", 3).await;
    let older = start_send(&app, &token, "Older").await;
    let newer = start_send(&app, &token, "Newer").await;
    let now = app.clock.now();
    enqueue_all(&app.db, now).await;
    let alive = chrono::Utc::now();
    let holder = registered(&app.db, alive + chrono::Duration::hours(1)).await;
    let issues_of =
        |rows: &[deliveries::Claimed]| rows.iter().map(|r| r.issue_id).collect::<Vec<_>>();
    assert!(sends::pause(&app.db, older, now).await.unwrap().is_some());
    let first = claim(&app.db, holder, now, alive, 10).await;
    assert_eq!(
        issues_of(&first),
        vec![newer; 3],
        "a paused issue is passed over, even when asked for"
    );
    assert!(sends::resume(&app.db, older, now).await.unwrap().is_some());
    let mut cursors = Default::default();
    let both = [older, newer];
    let second = claim_from(&app.db, holder, now, alive, 2, &both, &mut cursors).await;
    assert_eq!(issues_of(&second.rows), vec![older; 2]);
    assert!(second.drained.is_empty());
    let third = claim_from(&app.db, holder, now, alive, 10, &both, &mut cursors).await;
    assert_eq!(
        issues_of(&third.rows),
        vec![older],
        "held rows are not claimed twice"
    );
    assert_eq!(third.drained, vec![older, newer]);
    assert!(claim(&app.db, holder, now, alive, 10).await.is_empty());
}
