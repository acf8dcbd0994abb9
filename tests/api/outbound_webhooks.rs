//! Outbound webhooks: endpoints registered through the API and the admin, every event queued
//! in the transaction of its change and posted to a real HTTP receiver on loopback, signed so
//! that the Standard Webhooks reference library (Python `standardwebhooks`, an implementation
//! independent of the server's) verifies it; retries across an outage, the endpoint disabled
//! after a day of failures, and private addresses refused.
//!
//! The library comes from `.ci/requirements-verifiers.txt`; `.ci/run` installs it and names
//! its Python in `WEBHOOK_VERIFIER_PYTHON`. Without it the signature test skips, saying so,
//! unless `WEBHOOK_TEST_REQUIRED=1`.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{TimeZone, Utc};
use fortnight::clock::Clock;
use fortnight::domain::{EventKind, IssueStatus, MailEvent};
use fortnight::store::{Db, mail_events};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::{start_send_of, wait_status};
use crate::helpers::{Backend, TestApp, link_path, spawn_app, spawn_app_with};

both_databases!(
    every_event_is_signed_and_verifies_with_the_reference_library,
    an_event_queued_in_a_rolled_back_transaction_never_goes_out,
    a_receiver_down_for_an_hour_gets_every_event_once_back,
    an_endpoint_failing_for_a_day_is_disabled_and_the_editors_are_told,
    private_addresses_are_refused_unless_allowed,
    endpoints_are_managed_through_the_api_and_refused_when_malformed,
    the_admin_registers_tests_and_redelivers,
    every_path_that_ends_a_subscription_reports_it_and_erasure_forgets,
);

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Hit {
    headers: HashMap<String, String>,
    body: String,
    answered: u16,
}

impl Hit {
    fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An HTTP server on loopback that records every request and answers with the status set.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (h, s) = (hits.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (hits, status) = (h.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (hits, status) = (hits.clone(), status.clone());
                async move {
                    let answered = status.load(Ordering::SeqCst);
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                        .collect();
                    let body = String::from_utf8(body.to_vec()).unwrap();
                    hits.lock().unwrap().push(Hit {
                        headers,
                        body,
                        answered,
                    });
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap())
                        .finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            hits,
            status,
            handle,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Waits (up to 20 s) until at least `n` requests came; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} webhook requests arrived: {hits:#?}",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Registers an endpoint through the API; its JSON.
async fn register(app: &TestApp, token: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .api(Method::POST, "/api/v1/webhooks", token)
        .json(&json!({"url": url, "events": events, "description": "the tests' receiver"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json(response).await["data"].clone()
}

const ALL_EVENTS: [&str; 7] = [
    "subscriber.created",
    "subscriber.confirmed",
    "subscriber.unsubscribed",
    "subscriber.bounced",
    "subscriber.complained",
    "issue.scheduled",
    "issue.sent",
];

/// The endpoint's deliveries through the API, newest first.
async fn deliveries(app: &TestApp, token: &str, endpoint: i64) -> Vec<Value> {
    let response = app
        .api(
            Method::GET,
            &format!("/api/v1/webhooks/{endpoint}/deliveries?limit=500"),
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json(response).await["data"].as_array().unwrap().clone()
}

/// Signs `email` up and confirms it (mail number `nth`).
async fn sign_up_and_confirm(app: &TestApp, email: &str, nth: usize) {
    app.sign_up(email).await;
    let mail = app.wait_for_mail(nth).await;
    let confirm = link_path(&mail[nth - 1].text(), "/confirm/");
    assert_eq!(app.get(&confirm).await.status(), 200);
}

/// Records a bounce or complaint for `email`, as a signed provider's report would.
async fn report(
    app: &TestApp,
    kind: EventKind,
    email: &str,
    id: &str,
) -> Result<fortnight::domain::Effect, fortnight::store::StoreError> {
    let event = MailEvent {
        provider: "postmark",
        event_id: id.into(),
        kind,
        email: email.into(),
        message_id: None,
        return_path: None,
        diagnostic: "550 5.1.1 no such user".into(),
        occurred_at: app.clock.now(),
    };
    mail_events::record(&app.db, &event, None, true, 2, app.clock.now()).await
}

/// The Python that has `standardwebhooks`, or `None` (after saying so) when the test may skip.
fn verifier() -> Option<String> {
    let python = std::env::var("WEBHOOK_VERIFIER_PYTHON").unwrap_or_else(|_| "python3".into());
    let works = Command::new(&python)
        .args(["-c", "import standardwebhooks.webhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    assert!(
        std::env::var("WEBHOOK_TEST_REQUIRED").as_deref() != Ok("1"),
        "WEBHOOK_TEST_REQUIRED=1 but {python} cannot import standardwebhooks: \
         pip install -r .ci/requirements-verifiers.txt, or set WEBHOOK_VERIFIER_PYTHON"
    );
    eprintln!(
        "SKIPPED: the webhook signature check needs the standardwebhooks package ({python} cannot import it)"
    );
    None
}

/// Each case (`secret`, `body`, `headers`) checked by the reference library: `true` where it
/// verifies.
fn verify(python: &str, cases: &[(String, String, HashMap<String, String>)]) -> Vec<bool> {
    let script = "import json, sys\n\
                  from standardwebhooks.webhooks import Webhook\n\
                  for case in json.load(sys.stdin):\n\
                  \x20   try:\n\
                  \x20       Webhook(case['secret']).verify(case['body'], case['headers'])\n\
                  \x20       print('ok')\n\
                  \x20   except Exception as e:\n\
                  \x20       print('fail', type(e).__name__, e)\n";
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, body, headers)| json!({"secret": secret, "body": body, "headers": headers}))
        .collect();
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<bool> = stdout.lines().map(|l| l == "ok").collect();
    assert_eq!(lines.len(), cases.len(), "{stdout}");
    lines
}

async fn every_event_is_signed_and_verifies_with_the_reference_library(backend: Backend) {
    let python = verifier();
    let app = spawn_app(backend).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let endpoint = register(&app, &token, &receiver.url, &ALL_EVENTS).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    // Each event, once.
    sign_up_and_confirm(&app, "ada@example.com", 1).await;
    let ada = app.subscriber("ada@example.com").await.unwrap();
    let left = app
        .api(
            Method::POST,
            &format!("/api/v1/subscribers/{}/unsubscribe", ada.id),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 200);
    sign_up_and_confirm(&app, "bob@example.com", 2).await;
    sign_up_and_confirm(&app, "cy@example.com", 3).await;
    report(&app, EventKind::Bounce, "bob@example.com", "b-1")
        .await
        .unwrap();
    report(&app, EventKind::Complaint, "cy@example.com", "c-1")
        .await
        .unwrap();
    let issue = app
        .api(Method::POST, "/api/v1/issues", &token)
        .json(&json!({"subject": "Scheduled one", "body": "Body."}))
        .send()
        .await
        .unwrap();
    let issue_id = json(issue).await["data"]["id"].as_i64().unwrap();
    let at = (app.clock.now() + chrono::Duration::days(2)).to_rfc3339();
    let scheduled = app
        .api(
            Method::POST,
            &format!("/api/v1/issues/{issue_id}/schedule"),
            &token,
        )
        .json(&json!({ "at": at }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scheduled.status(),
        200,
        "{}",
        scheduled.text().await.unwrap()
    );
    sign_up_and_confirm(&app, "dee@example.com", 4).await;
    let sent = start_send_of(&app, &token, "Sent one", "Body.").await;
    wait_status(&app, sent, IssueStatus::Sent, 20).await;

    // created ×4, confirmed ×4, unsubscribed, bounced, complained, scheduled, sent: 13.
    receiver.wait_for(13).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 13, "one request per event: {hits:#?}");
    let by_id: HashMap<String, Hit> = hits
        .into_iter()
        .map(|hit| (hit.id().to_owned(), hit))
        .collect();
    assert_eq!(by_id.len(), 13, "one id per event: {by_id:#?}");
    let mut kinds: HashMap<String, Vec<Value>> = HashMap::new();
    for hit in by_id.values() {
        let body = hit.json();
        assert_eq!(hit.headers["content-type"], "application/json");
        kinds
            .entry(body["type"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["data"].clone());
    }
    let count = |kind: &str| kinds.get(kind).map_or(0, Vec::len);
    assert_eq!(count("subscriber.created"), 4);
    assert_eq!(count("subscriber.confirmed"), 4);
    assert_eq!(count("subscriber.unsubscribed"), 1);
    assert_eq!(count("subscriber.bounced"), 1);
    assert_eq!(count("subscriber.complained"), 1);
    assert_eq!(count("issue.scheduled"), 1);
    assert_eq!(count("issue.sent"), 1);
    assert_eq!(
        kinds["subscriber.unsubscribed"][0]["email"],
        "ada@example.com"
    );
    assert_eq!(
        kinds["subscriber.unsubscribed"][0]["status"],
        "unsubscribed"
    );
    assert_eq!(kinds["subscriber.bounced"][0]["email"], "bob@example.com");
    assert_eq!(kinds["subscriber.complained"][0]["email"], "cy@example.com");
    assert_eq!(kinds["issue.scheduled"][0]["id"], issue_id);
    assert_eq!(kinds["issue.sent"][0]["id"], sent);
    assert_eq!(
        kinds["issue.sent"][0]["summary"]["progress"]["sent"], 1,
        "{:#?}",
        kinds["issue.sent"]
    );

    // The log says each was delivered, with the receiver's answer.
    let log = deliveries(&app, &token, endpoint["id"].as_i64().unwrap()).await;
    assert_eq!(log.len(), 13);
    for d in &log {
        assert_eq!(d["status"], "delivered", "{d:#}");
        assert_eq!(d["last_status_code"], 200);
        assert_eq!(d["attempts"], 1);
    }

    let Some(python) = python else { return };
    let mut cases: Vec<(String, String, HashMap<String, String>)> = by_id
        .values()
        .map(|hit| (secret.clone(), hit.body.clone(), hit.headers.clone()))
        .collect();
    assert!(verify(&python, &cases).into_iter().all(|ok| ok));
    // A changed body, a wrong secret and a changed id must fail.
    let (_, body, headers) = cases[0].clone();
    let mut changed_id = headers.clone();
    changed_id.insert("webhook-id".into(), "msg_other".into());
    cases = vec![
        (
            secret.clone(),
            body.replace("\"type\"", "\"typ\""),
            headers.clone(),
        ),
        (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            body.clone(),
            headers.clone(),
        ),
        (secret.clone(), body, changed_id),
    ];
    assert_eq!(verify(&python, &cases), vec![false, false, false]);
}

/// Makes the next change to a reported bounce fail inside its transaction, after the
/// subscriber's event was queued (a trigger on `mail_events`), or stops doing so.
async fn refuse_bounce_effects(db: &Db, on: bool) {
    let statements: &[&'static str] = match (db, on) {
        (Db::Sqlite { .. }, true) => {
            &["CREATE TRIGGER refuse_effect BEFORE UPDATE ON mail_events \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"]
        }
        (Db::Sqlite { .. }, false) => &["DROP TRIGGER refuse_effect"],
        (Db::Postgres(_), true) => &[
            "CREATE FUNCTION refuse_effect() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_effect BEFORE UPDATE ON mail_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_effect()",
        ],
        (Db::Postgres(_), false) => &["DROP TRIGGER refuse_effect ON mail_events"],
    };
    for statement in statements {
        match db {
            Db::Sqlite { write, .. } => {
                sqlx::raw_sql(*statement).execute(write).await.unwrap();
            }
            Db::Postgres(pool) => {
                sqlx::raw_sql(*statement).execute(pool).await.unwrap();
            }
        }
    }
}

async fn an_event_queued_in_a_rolled_back_transaction_never_goes_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let endpoint = register(&app, &token, &receiver.url, &["subscriber.bounced"]).await;
    let endpoint = endpoint["id"].as_i64().unwrap();
    sign_up_and_confirm(&app, "ada@example.com", 1).await;
    sign_up_and_confirm(&app, "bob@example.com", 2).await;

    // The bounce's transaction queues the event, then fails: all of it rolls back.
    refuse_bounce_effects(&app.db, true).await;
    assert!(
        report(&app, EventKind::Bounce, "ada@example.com", "b-1")
            .await
            .is_err()
    );
    refuse_bounce_effects(&app.db, false).await;
    assert_eq!(
        app.subscriber("ada@example.com").await.unwrap().status,
        fortnight::domain::SubscriberStatus::Active,
        "the bounce did not happen"
    );
    // A committed one goes out; the rolled-back one never does.
    report(&app, EventKind::Bounce, "bob@example.com", "b-2")
        .await
        .unwrap();
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].json()["data"]["email"], "bob@example.com");
    assert_eq!(deliveries(&app, &token, endpoint).await.len(), 1);
}

/// Waits (up to 20 s) until every delivery of `endpoint` has had `tries` tries, the last
/// recorded at the fixed clock's present.
async fn wait_tries(app: &TestApp, token: &str, endpoint: i64, tries: i64) -> Vec<Value> {
    let now = app.clock.now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = deliveries(app, token, endpoint).await;
        let done = log.iter().all(|d| {
            d["attempts"] == tries
                && d["last_attempt_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t == now)
        });
        if done {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every delivery had {tries} tries: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Monday 30 November 2026, 10:00 UTC.
fn fixed_clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap())
}

async fn a_receiver_down_for_an_hour_gets_every_event_once_back(backend: Backend) {
    let app = spawn_app_with(backend, fixed_clock(), |_| {}).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let endpoint = register(&app, &token, &receiver.url, &["subscriber.created"]).await;
    let endpoint = endpoint["id"].as_i64().unwrap();
    receiver.answer(503);
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        app.sign_up(email).await;
    }
    // Tried at once, then after 5 s, 5 min and 30 min: down all along.
    wait_tries(&app, &token, endpoint, 1).await;
    for (wait, tries) in [(5, 2), (5 * 60, 3), (30 * 60, 4)] {
        app.clock.advance(chrono::Duration::seconds(wait));
        wait_tries(&app, &token, endpoint, tries).await;
    }
    // An hour after the events the receiver is back; the next try (2 h after the fourth)
    // reaches it.
    app.clock.advance(chrono::Duration::seconds(25 * 60));
    receiver.answer(200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 12, "nothing is due within the hour");
    app.clock
        .advance(chrono::Duration::seconds(2 * 3600 - 25 * 60));
    let log = wait_tries(&app, &token, endpoint, 5).await;
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");
    // Every event arrived once with a 2xx answer, always with the same id.
    let hits = receiver.hits();
    assert_eq!(hits.len(), 15);
    let mut taken: HashMap<String, usize> = HashMap::new();
    for hit in hits.iter().filter(|h| h.answered == 200) {
        *taken.entry(hit.id().to_owned()).or_default() += 1;
    }
    assert_eq!(taken.len(), 3);
    assert!(taken.values().all(|n| *n == 1), "{taken:?}");
    let ids: std::collections::HashSet<&str> = hits.iter().map(Hit::id).collect();
    assert_eq!(ids.len(), 3, "retries keep the message id");
    let emails: std::collections::HashSet<String> = hits
        .iter()
        .map(|h| h.json()["data"]["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails.len(), 3);
}

async fn an_endpoint_failing_for_a_day_is_disabled_and_the_editors_are_told(backend: Backend) {
    let app = spawn_app_with(backend, fixed_clock(), |_| {}).await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let token = app.api_token().await;
    let endpoint = register(&app, &token, &receiver.url, &["subscriber.created"]).await;
    let id = endpoint["id"].as_i64().unwrap();
    let test = app
        .api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), 202);
    wait_tries(&app, &token, id, 1).await;
    let waits = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (n, wait) in waits.into_iter().enumerate() {
        let still = json(
            app.api(Method::GET, &format!("/api/v1/webhooks/{id}"), &token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(still["data"]["enabled"], true, "on until a day has passed");
        app.clock.advance(chrono::Duration::seconds(wait));
        wait_tries(&app, &token, id, n as i64 + 2).await;
    }
    let log = deliveries(&app, &token, id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["last_status_code"], 500);
    assert_eq!(receiver.hits().len(), 8);
    let endpoint = json(
        app.api(Method::GET, &format!("/api/v1/webhooks/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await["data"]
        .clone();
    assert_eq!(endpoint["enabled"], false);
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{endpoint:#}"
    );
    let notice = app.wait_for_mail(1).await;
    assert_eq!(notice[0].to, vec!["api-owner@example.com".to_owned()]);
    assert!(
        notice[0]
            .header("Subject")
            .unwrap()
            .contains("webhook endpoint was disabled")
    );
    assert!(
        notice[0].text().contains(&receiver.url),
        "{}",
        notice[0].text()
    );

    // A disabled endpoint is not sent new events, nor test events; switched on again, it
    // forgets its failures.
    app.sign_up("later@example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(&app, &token, id).await.len(), 1);
    let refused = app
        .api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(json(refused).await["error"]["code"], "endpoint_disabled");
    let on = app
        .api(Method::PATCH, &format!("/api/v1/webhooks/{id}"), &token)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let on = json(on).await["data"].clone();
    assert_eq!(on["enabled"], true);
    assert_eq!(on["failing_since"], Value::Null);
    assert_eq!(on["disabled_reason"], Value::Null);
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.webhooks_allow_private = false).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hooks"),
        "http://10.1.2.3/hooks".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        format!("http://[::1]:{port}/"),
        "http://0.0.0.0/".into(),
    ] {
        let refused = app
            .api(Method::POST, "/api/v1/webhooks", &token)
            .json(&json!({"url": url, "events": ["subscriber.created"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{url}");
        assert_eq!(
            json(refused).await["error"]["code"],
            "private_address",
            "{url}"
        );
    }
    let listed = json(
        app.api(Method::GET, "/api/v1/webhooks", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"], json!([]));

    // An endpoint that comes to point inside (stored before, or a name that now resolves to a
    // loopback address) is not connected to: the try fails and says why.
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hooks"),
    ] {
        let new = fortnight::store::webhooks::NewEndpoint {
            url: url.parse().unwrap(),
            description: String::new(),
            events: fortnight::domain::webhook::EventSet::parse(&["subscriber.created"]).unwrap(),
            secret: fortnight::domain::webhook::WebhookSecret::generate(),
        };
        let stored = fortnight::store::webhooks::create(&app.db, &new, app.clock.now())
            .await
            .unwrap();
        let test = app
            .api(
                Method::POST,
                &format!("/api/v1/webhooks/{}/test", stored.id),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(test.status(), 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let log = loop {
            let log = deliveries(&app, &token, stored.id).await;
            if log[0]["attempts"] == 1 && log[0]["last_error"].is_string() {
                break log;
            }
            assert!(tokio::time::Instant::now() < deadline, "{log:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let error = log[0]["last_error"].as_str().unwrap();
        assert!(error.contains("private or loopback"), "{url}: {error}");
        assert_eq!(log[0]["last_status_code"], Value::Null);
    }
    assert!(receiver.hits().is_empty(), "nothing reached the receiver");
}

async fn endpoints_are_managed_through_the_api_and_refused_when_malformed(backend: Backend) {
    let app = spawn_app(backend).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let created = register(
        &app,
        &token,
        &receiver.url,
        &["issue.sent", "subscriber.created"],
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["events"],
        json!(["subscriber.created", "issue.sent"])
    );
    assert_eq!(created["enabled"], true);

    for (body, code) in [
        (json!({"url": receiver.url, "events": []}), "invalid_events"),
        (
            json!({"url": receiver.url, "events": ["subscriber.deleted"]}),
            "invalid_events",
        ),
        (
            json!({"url": "ftp://example.com/", "events": ["issue.sent"]}),
            "invalid_url",
        ),
        (
            json!({"url": "https://user:pw@example.com/", "events": ["issue.sent"]}),
            "invalid_url",
        ),
        (
            json!({"url": "not a url", "events": ["issue.sent"]}),
            "invalid_url",
        ),
        (
            json!({"url": receiver.url, "events": ["issue.sent"], "description": "two\nlines"}),
            "invalid_description",
        ),
    ] {
        let refused = app
            .api(Method::POST, "/api/v1/webhooks", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{body}");
        assert_eq!(json(refused).await["error"]["code"], code, "{body}");
    }
    let bad_json = app
        .api(Method::POST, "/api/v1/webhooks", &token)
        .json(&json!({"url": receiver.url, "events": ["issue.sent"], "secret": "whsec_x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400, "unknown fields are refused");

    // Changes: events, note, a new secret; malformed ones change nothing.
    let patched = app
        .api(Method::PATCH, &format!("/api/v1/webhooks/{id}"), &token)
        .json(&json!({"events": ["subscriber.confirmed"], "description": "CRM", "rotate_secret": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched = json(patched).await["data"].clone();
    assert_eq!(patched["events"], json!(["subscriber.confirmed"]));
    assert_eq!(patched["description"], "CRM");
    assert_ne!(patched["secret"], created["secret"]);
    for body in [
        json!({"events": []}),
        json!({"url": "gopher://x"}),
        json!({"url": null}),
    ] {
        let refused = app
            .api(Method::PATCH, &format!("/api/v1/webhooks/{id}"), &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{body}");
    }
    let now = json(
        app.api(Method::GET, &format!("/api/v1/webhooks/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await["data"]
        .clone();
    assert_eq!(now, patched, "refused changes changed nothing");

    // The test event, its log entry and a redelivery with the same id.
    let test = app
        .api(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), 202);
    let delivery = json(test).await["data"].clone();
    assert_eq!(delivery["event_type"], "webhook.test");
    let first = receiver.wait_for(1).await;
    assert_eq!(first[0].json()["type"], "webhook.test");
    let again = app
        .api(
            Method::POST,
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                delivery["id"]
            ),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    let both = receiver.wait_for(2).await;
    assert_eq!(
        both[0].id(),
        both[1].id(),
        "a redelivery keeps the webhook-id"
    );
    assert_eq!(both[0].body, both[1].body);
    let filtered = app
        .api(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries?status=failed"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json(filtered).await["data"], json!([]));
    for path in [
        format!("/api/v1/webhooks/{id}/deliveries?status=lost"),
        format!("/api/v1/webhooks/{id}/deliveries?limit=0"),
        "/api/v1/webhooks/0".to_owned(),
        "/api/v1/webhooks/x/deliveries".to_owned(),
    ] {
        let refused = app.api(Method::GET, &path, &token).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{path}");
    }
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks/999".to_owned()),
        (Method::POST, "/api/v1/webhooks/999/test".to_owned()),
        (Method::GET, "/api/v1/webhooks/999/deliveries".to_owned()),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/deliveries/999/redeliver"),
        ),
        (Method::DELETE, "/api/v1/webhooks/999".to_owned()),
    ] {
        let missing = app.api(method, &path, &token).send().await.unwrap();
        assert_eq!(missing.status(), 404, "{path}");
    }
    let deleted = app
        .api(Method::DELETE, &format!("/api/v1/webhooks/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app
        .api(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

async fn the_admin_registers_tests_and_redelivers(backend: Backend) {
    let app = spawn_app(backend).await;
    let receiver = Receiver::start().await;
    app.sign_in().await;
    let page = app.get("/admin/webhooks").await.text().await.unwrap();
    assert!(page.contains("No endpoints yet"));
    // Refused forms store nothing.
    for fields in [
        vec![("url", receiver.url.as_str())],
        vec![("url", "ftp://example.com/"), ("events", "issue.sent")],
        vec![("url", receiver.url.as_str()), ("events", "issue.unsent")],
    ] {
        let refused = app.admin_post("/admin/webhooks", &fields).await;
        assert_eq!(refused.status(), 400, "{fields:?}");
        assert!(
            refused
                .headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    assert!(
        fortnight::store::webhooks::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    let added = app
        .admin_post(
            "/admin/webhooks",
            &[
                ("url", receiver.url.as_str()),
                ("description", "Zapier"),
                ("events", "subscriber.created"),
                ("events", "issue.sent"),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let location = added.headers()["location"].to_str().unwrap().to_owned();
    let page = app.get(&location).await.text().await.unwrap();
    let endpoint = fortnight::store::webhooks::list(&app.db)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        endpoint.events.names(),
        vec!["subscriber.created", "issue.sent"]
    );
    assert!(
        page.contains(endpoint.secret.expose()),
        "the page shows the secret"
    );

    let test = app.admin_post(&format!("{location}/test"), &[]).await;
    assert_eq!(test.status(), 303);
    let hit = receiver.wait_for(1).await.remove(0);
    assert_eq!(hit.json()["type"], "webhook.test");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = app.get(&location).await.text().await.unwrap();
        if page.contains("delivered") {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.contains("<td>200"), "the log shows the answer: {page}");
    let delivery = fortnight::store::webhooks::deliveries(&app.db, endpoint.id, None, None, 10)
        .await
        .unwrap()
        .remove(0);
    let again = app
        .admin_post(
            &format!("{location}/deliveries/{}/redeliver", delivery.id),
            &[],
        )
        .await;
    assert_eq!(again.status(), 303);
    let both = receiver.wait_for(2).await;
    assert_eq!(both[1].id(), hit.id());

    // Switched off from its page, it is sent no events.
    let off = app
        .admin_post(
            &location,
            &[
                ("url", receiver.url.as_str()),
                ("events", "subscriber.created"),
            ],
        )
        .await;
    assert_eq!(off.status(), 303);
    app.sign_up("quiet@example.com").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 2);
    let removed = app
        .admin_post(&format!("{location}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(removed.status(), 303);
    assert!(
        fortnight::store::webhooks::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn every_path_that_ends_a_subscription_reports_it_and_erasure_forgets(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.bounce_threshold = 1).await;
    let receiver = Receiver::start().await;
    let token = app.api_token().await;
    let events = [
        "subscriber.unsubscribed",
        "subscriber.bounced",
        "subscriber.complained",
    ];
    let endpoint = register(&app, &token, &receiver.url, &events).await;
    let endpoint = endpoint["id"].as_i64().unwrap();
    app.seed_active("reader", 4).await;

    // The mail server refuses reader0's copy for good: with a threshold of 1, they bounce.
    app.smtp
        .script_recipient("reader0@example.com", &[crate::helpers::Reply::Permanent]);
    let sent = start_send_of(&app, &token, "Refused", "Body.").await;
    wait_status(&app, sent, IssueStatus::Sent, 20).await;
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].json()["type"], "subscriber.bounced");
    assert_eq!(hits[0].json()["data"]["email"], "reader0@example.com");

    // An import's opt-outs are reported as what they are.
    let page = {
        app.sign_in().await;
        app.import_csv(
            "email,status\nreader1@example.com,unsubscribed\nreader2@example.com,complained\n",
            true,
        )
        .await
    };
    assert!(page.contains("done"), "{page}");
    let hits = receiver.wait_for(3).await;
    let mut seen: Vec<(String, String)> = hits
        .iter()
        .map(|h| {
            let body = h.json();
            (
                body["type"].as_str().unwrap().to_owned(),
                body["data"]["email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("subscriber.bounced".into(), "reader0@example.com".into()),
            ("subscriber.complained".into(), "reader2@example.com".into()),
            (
                "subscriber.unsubscribed".into(),
                "reader1@example.com".into()
            ),
        ]
    );

    // Erasing a reader deletes the events about them.
    let reader1 = app.subscriber("reader1@example.com").await.unwrap();
    let erased = app
        .api(
            Method::DELETE,
            &format!("/api/v1/subscribers/{}", reader1.id),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 204);
    let log = deliveries(&app, &token, endpoint).await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|d| d["payload"]["data"]["email"] != "reader1@example.com"),
        "{log:#?}"
    );
}
