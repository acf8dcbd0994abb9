//! The calendar: scheduling issues onto slots, skipping slots, changing the cadence, and the
//! tick that starts due issues (catch-up, missed, reminders, racing instances).

use std::time::Duration;

use chrono::{DateTime, Utc};
use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use fortnight::schedule::Scheduler;
use fortnight::store::{Db, issues};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::both_databases;
use crate::helpers::{Backend, TestApp, spawn_app_with};

both_databases!(
    issues_go_on_the_next_open_slot_a_chosen_slot_or_an_exact_time,
    a_slot_holds_one_issue_and_bad_placements_are_refused,
    the_editor_schedules_and_changes_the_cadence_in_the_admin,
    the_cadence_changes_only_from_a_future_date_and_keeps_history,
    the_tick_starts_a_due_issue_once_and_hands_it_over,
    a_late_issue_catches_up_within_the_grace_and_is_missed_after_it,
    a_skipped_slot_is_passed_over_and_gets_no_reminder,
    an_empty_slot_is_reminded_once,
    ticks_racing_on_two_pools_start_each_issue_once,
    fortnight_tick_runs_one_tick_and_exits,
);

/// Thursday 1 October 2026, 12:00 UTC. The default cadence (every other Thursday at 08:00 UTC
/// from 1 January 2026) has slots on 8 and 22 October.
fn start() -> DateTime<Utc> {
    "2026-10-01T12:00:00Z".parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An instance at `start()`; it does not deliver, so what the scheduler did stays visible.
async fn app_at(backend: Backend) -> (TestApp, String) {
    let app = spawn_app_with(backend, Clock::fixed(start()), |c| {
        c.delivery_worker = false
    })
    .await;
    let token = app.api_token().await;
    (app, token)
}

async fn create(app: &TestApp, token: &str, subject: &str) -> i64 {
    let response = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({"subject": subject}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap()
}

async fn schedule(app: &TestApp, token: &str, id: i64, body: Value) -> reqwest::Response {
    app.api(
        Method::POST,
        &format!("/api/v1/issues/{id}/schedule"),
        token,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

/// Moves the instance's clock to `when` and ticks there.
async fn tick_at(app: &TestApp, when: &str) -> fortnight::schedule::TickReport {
    let when = at(when);
    app.clock.advance(when - app.clock.now());
    app.scheduler.run_due(when).await.unwrap()
}

async fn stored(app: &TestApp, id: i64) -> issues::Issue {
    issues::get(&app.db, id).await.unwrap().unwrap()
}

async fn issues_go_on_the_next_open_slot_a_chosen_slot_or_an_exact_time(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let first = create(&app, &token, "First").await;
    let second = create(&app, &token, "Second").await;
    let third = create(&app, &token, "Third").await;
    let response = schedule(&app, &token, first, json!({"slot": "next"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["status"], "scheduled");
    assert_eq!(body["data"]["slot_at"], "2026-10-08T08:00:00Z");
    let response = schedule(&app, &token, second, json!({"slot": "next"})).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["data"]["slot_at"],
        "2026-10-22T08:00:00Z"
    );
    let response = schedule(&app, &token, third, json!({"slot": "2026-11-19T08:00:00Z"})).await;
    assert_eq!(response.status(), 200);
    // Moving: the third issue goes to an exact time and frees its slot.
    let response = schedule(&app, &token, third, json!({"at": "2026-10-02T17:45:00Z"})).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["scheduled_at"], "2026-10-02T17:45:00Z");
    assert!(body["data"]["slot_at"].is_null());
    let slots: Value = app
        .api(Method::GET, "/api/v1/slots?count=4", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<_> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["taken", "taken", "open", "open"]);
    assert_eq!(slots[0]["issue_id"].as_i64(), Some(first));
    assert_eq!(slots[0]["local"], "Thu 8 Oct 2026, 08:00 UTC");
    // Unschedule: back to draft, the slot is open again.
    let response = app
        .api(
            Method::POST,
            &format!("/api/v1/issues/{first}/unschedule"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let issue = stored(&app, first).await;
    assert_eq!(
        (issue.status, issue.slot_at, issue.scheduled_at),
        (IssueStatus::Draft, None, None)
    );
    // A scheduled issue can still be edited.
    let edit = app
        .api(Method::PUT, &format!("/api/v1/issues/{second}"), &token)
        .json(&json!({"subject": "Second, revised"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status(), 200);
    assert_eq!(stored(&app, second).await.status, IssueStatus::Scheduled);
}

async fn a_slot_holds_one_issue_and_bad_placements_are_refused(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let one = create(&app, &token, "One").await;
    let two = create(&app, &token, "Two").await;
    assert_eq!(
        schedule(&app, &token, one, json!({"slot": "2026-10-08T08:00:00Z"}))
            .await
            .status(),
        200
    );
    let cases = [
        (json!({"slot": "2026-10-08T08:00:00Z"}), 409, "slot_taken"),
        (
            json!({"slot": "2026-10-15T08:00:00Z"}),
            400,
            "invalid_schedule",
        ),
        (
            json!({"at": "2026-10-01T11:59:00Z"}),
            400,
            "invalid_schedule",
        ),
        (json!({"slot": "yesterday"}), 400, "invalid_slot"),
        (
            json!({"slot": "next", "at": "2026-12-01T00:00:00Z"}),
            400,
            "invalid_schedule",
        ),
        (json!({}), 400, "invalid_schedule"),
        (
            json!({"at": "+10000-01-01T00:00:00Z"}),
            400,
            "invalid_schedule",
        ),
        (
            json!({"slot": "9999-12-30T08:00:00Z"}),
            400,
            "invalid_schedule",
        ),
    ];
    for (body, status, code) in cases {
        let response = schedule(&app, &token, two, body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
    }
    assert_eq!(
        stored(&app, two).await.status,
        IssueStatus::Draft,
        "nothing changed"
    );
    // An exact time that is a slot holds that slot.
    let three = create(&app, &token, "Three").await;
    let exact = schedule(&app, &token, three, json!({"at": "2026-10-22T08:00:00Z"})).await;
    assert_eq!(
        exact.json::<Value>().await.unwrap()["data"]["slot_at"],
        "2026-10-22T08:00:00Z"
    );
    // A tick that read an issue before the editor moved it does not start it.
    assert!(
        !issues::start_due(&app.db, three, at("2026-10-08T08:00:00Z"), start())
            .await
            .unwrap()
    );
    assert!(
        !issues::mark_missed(&app.db, three, at("2026-10-08T08:00:00Z"), start())
            .await
            .unwrap()
    );
    assert_eq!(stored(&app, three).await.status, IssueStatus::Scheduled);
    // The database itself refuses a second issue on one slot.
    let direct = issues::schedule(
        &app.db,
        two,
        at("2026-10-08T08:00:00Z"),
        Some(at("2026-10-08T08:00:00Z")),
        start(),
    )
    .await;
    assert!(
        matches!(direct, Err(issues::IssueError::SlotTaken)),
        "{direct:?}"
    );
    // A sent issue cannot be scheduled again.
    assert!(issues::start_sending(&app.db, one, start()).await.unwrap());
    assert_eq!(
        schedule(&app, &token, one, json!({"slot": "next"}))
            .await
            .status(),
        409
    );
    assert_eq!(
        schedule(&app, &token, 999_999, json!({"slot": "next"}))
            .await
            .status(),
        404
    );
}

async fn the_editor_schedules_and_changes_the_cadence_in_the_admin(backend: Backend) {
    let app = spawn_app_with(backend, Clock::fixed(start()), |_| {}).await;
    app.sign_in().await;
    let response = app
        .admin_post("/admin/issues", &[("subject", "From the desk")])
        .await;
    let path = response.headers()["location"].to_str().unwrap().to_owned();
    let id: i64 = path.trim_start_matches("/admin/issues/").parse().unwrap();
    let page = app.get(&path).await.text().await.unwrap();
    assert!(
        page.contains("Thu 8 Oct 2026, 08:00 UTC"),
        "open slots are offered: {page}"
    );
    let response = app
        .admin_post(
            &format!("{path}/schedule"),
            &[("mode", "slot"), ("slot", "2026-10-22T08:00:00+00:00")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        stored(&app, id).await.slot_at,
        Some(at("2026-10-22T08:00:00Z"))
    );
    let response = app
        .admin_post(
            &format!("{path}/schedule"),
            &[("mode", "exact"), ("at", "2026-10-05T09:30")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let issue = stored(&app, id).await;
    assert_eq!(
        (issue.scheduled_at, issue.slot_at),
        (Some(at("2026-10-05T09:30:00Z")), None)
    );
    let page = app.get(&path).await.text().await.unwrap();
    assert!(
        page.contains("Goes out <strong>Mon 5 Oct 2026, 09:30 UTC</strong>"),
        "{page}"
    );
    for (fields, status) in [
        (vec![("mode", "exact"), ("at", "2026-09-01T09:30")], 400),
        (vec![("mode", "exact"), ("at", "soon")], 400),
        (vec![("mode", "sometime")], 400),
        (
            vec![("mode", "slot"), ("slot", "2026-10-15T08:00:00Z")],
            400,
        ),
    ] {
        assert_eq!(
            app.admin_post(&format!("{path}/schedule"), &fields)
                .await
                .status(),
            status,
            "{fields:?}"
        );
    }
    assert_eq!(
        stored(&app, id).await.scheduled_at,
        Some(at("2026-10-05T09:30:00Z"))
    );
    assert_eq!(
        app.admin_post(&format!("{path}/unschedule"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(stored(&app, id).await.status, IssueStatus::Draft);

    let change = [
        ("every_weeks", "1"),
        ("weekday", "1"),
        ("time", "07:15"),
        ("zone", "Europe/London"),
        ("effective_from", "2026-10-10"),
    ];
    assert_eq!(
        app.admin_post("/admin/cadence", &change).await.status(),
        303
    );
    let page = app.get("/admin/cadence").await.text().await.unwrap();
    assert!(
        page.contains("every week on Monday at 07:15 (Europe/London)"),
        "{page}"
    );
    assert!(
        page.contains("Thu 8 Oct 2026, 08:00 UTC"),
        "the old slot stays: {page}"
    );
    assert!(
        page.contains("Mon 12 Oct 2026, 07:15 Europe/London"),
        "{page}"
    );
    let bad = [
        ("every_weeks", "9"),
        ("weekday", "1"),
        ("time", "07:15"),
        ("zone", "Mars/Olympus"),
        ("effective_from", "2026-10-10"),
    ];
    let refused = app.admin_post("/admin/cadence", &bad).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("Mars/Olympus"));
    let skip = app
        .admin_post(
            "/admin/cadence/skip",
            &[("slot", "2026-10-12T06:15:00+00:00")],
        )
        .await;
    assert_eq!(skip.status(), 303);
    assert!(
        app.get("/admin/cadence")
            .await
            .text()
            .await
            .unwrap()
            .contains("skipped")
    );
    let dashboard = app.get("/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("Next slot: <strong>Thu 8 Oct 2026, 08:00 UTC</strong>"),
        "{dashboard}"
    );
}

async fn the_cadence_changes_only_from_a_future_date_and_keeps_history(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let rule = |from: &str| json!({"every_weeks": 1, "weekday": "Thursday", "time": "08:00", "zone": "Asia/Shanghai", "effective_from": from});
    for from in ["2026-10-01", "2026-09-01"] {
        let response = app
            .api(Method::PUT, "/api/v1/cadence", &token)
            .json(&rule(from))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{from}");
    }
    let response = app
        .api(Method::PUT, "/api/v1/cadence", &token)
        .json(&rule("2026-10-02"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cadence: Value = response.json().await.unwrap();
    assert_eq!(cadence["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        cadence["current"]["every_weeks"], 2,
        "the change is not in force yet"
    );
    let slots: Value = app
        .api(Method::GET, "/api/v1/slots?count=3", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ats: Vec<_> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ats,
        [
            "2026-10-08T00:00:00Z",
            "2026-10-15T00:00:00Z",
            "2026-10-22T00:00:00Z"
        ]
    );
    for bad in [
        json!({"every_weeks": 0, "weekday": "Thursday", "time": "08:00", "zone": "UTC", "effective_from": "2026-12-01"}),
        json!({"every_weeks": 1, "weekday": "Someday", "time": "08:00", "zone": "UTC", "effective_from": "2026-12-01"}),
        json!({"every_weeks": 1, "weekday": "Thursday", "time": "8 o'clock", "zone": "UTC", "effective_from": "2026-12-01"}),
        json!({"every_weeks": 1, "weekday": "Thursday", "time": "08:00", "zone": "Nowhere", "effective_from": "2026-12-01"}),
    ] {
        let response = app
            .api(Method::PUT, "/api/v1/cadence", &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_cadence"
        );
    }
    // A change that would strand an issue on a slot the new rule lacks is refused.
    let id = create(&app, &token, "On a Thursday").await;
    assert_eq!(
        schedule(&app, &token, id, json!({"slot": "2026-10-22T00:00:00Z"}))
            .await
            .status(),
        200
    );
    let monday = json!({"every_weeks": 1, "weekday": "Monday", "time": "08:00", "zone": "Asia/Shanghai", "effective_from": "2026-10-12"});
    let stranded = app
        .api(Method::PUT, "/api/v1/cadence", &token)
        .json(&monday)
        .send()
        .await
        .unwrap();
    assert_eq!(stranded.status(), 409);
    let far = json!({"every_weeks": 1, "weekday": "Monday", "time": "08:00", "zone": "UTC", "effective_from": "9999-12-27"});
    assert_eq!(
        app.api(Method::PUT, "/api/v1/cadence", &token)
            .json(&far)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let history: Value = app
        .api(Method::GET, "/api/v1/cadence", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["history"].as_array().unwrap().len(),
        2,
        "refused changes stored nothing"
    );
    assert_eq!(
        app.api(Method::GET, "/api/v1/slots?count=0", &token)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

async fn the_tick_starts_a_due_issue_once_and_hands_it_over(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let id = create(&app, &token, "On time").await;
    assert_eq!(
        schedule(&app, &token, id, json!({"slot": "next"}))
            .await
            .status(),
        200
    );
    let report = tick_at(&app, "2026-10-08T07:59:59Z").await;
    assert!(report.started.is_empty(), "not due yet");
    assert_eq!(stored(&app, id).await.status, IssueStatus::Scheduled);
    let report = tick_at(&app, "2026-10-08T08:00:00Z").await;
    assert_eq!(report.started, [id]);
    tokio::time::timeout(Duration::from_secs(5), app.scheduler.handoff.started())
        .await
        .expect("delivery was woken");
    let issue = stored(&app, id).await;
    assert_eq!(
        (issue.status, issue.published_at),
        (IssueStatus::Sending, Some(at("2026-10-08T08:00:00Z")))
    );
    let again = tick_at(&app, "2026-10-08T08:00:30Z").await;
    assert!(again.started.is_empty(), "started once");
    assert_eq!(
        app.get("/archive/on-time").await.status(),
        200,
        "public once sending"
    );
}

async fn a_late_issue_catches_up_within_the_grace_and_is_missed_after_it(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let inside = create(&app, &token, "Inside the grace").await;
    let outside = create(&app, &token, "Outside the grace").await;
    assert_eq!(
        schedule(&app, &token, inside, json!({"at": "2026-10-01T13:00:00Z"}))
            .await
            .status(),
        200
    );
    assert_eq!(
        schedule(&app, &token, outside, json!({"slot": "next"}))
            .await
            .status(),
        200
    );
    // Nothing ran for a while: the first issue is 5h59m late, the other 6h late and then some.
    let report = tick_at(&app, "2026-10-01T18:59:00Z").await;
    assert_eq!(report.started, [inside]);
    let report = tick_at(&app, "2026-10-08T14:00:01Z").await;
    assert_eq!(
        (report.started.len(), report.missed.as_slice()),
        (0, [outside].as_slice())
    );
    let missed = stored(&app, outside).await;
    assert_eq!(missed.status, IssueStatus::Draft);
    assert_eq!(missed.missed_at, Some(at("2026-10-08T14:00:01Z")));
    assert_eq!(missed.slot_at, None, "the slot is free again");
    let mail = app.wait_for_mail(1).await;
    let notice = mail
        .iter()
        .find(|m| m.to == ["api-owner@example.com"])
        .expect("the editor is told");
    assert!(notice.parsed().subject().unwrap().contains("Missed"));
    assert!(
        notice
            .parsed()
            .body_text(0)
            .unwrap()
            .contains("Outside the grace")
    );
    assert!(
        tick_at(&app, "2026-10-08T14:01:00Z")
            .await
            .missed
            .is_empty(),
        "told once"
    );
    app.sign_in().await;
    let dashboard = app.get("/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("Missed: <a href=\"/admin/issues/"),
        "{dashboard}"
    );
    // Scheduling it again clears the mark.
    app.clock.advance(chrono::Duration::days(7));
    assert_eq!(
        schedule(&app, &token, outside, json!({"slot": "next"}))
            .await
            .status(),
        200
    );
    assert_eq!(stored(&app, outside).await.missed_at, None);
}

async fn a_skipped_slot_is_passed_over_and_gets_no_reminder(backend: Backend) {
    let (app, token) = app_at(backend).await;
    app.create_editor("editor@example.com").await;
    let skip = app
        .api(
            Method::POST,
            "/api/v1/slots/2026-10-08T08:00:00Z/skip",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(skip.status(), 204);
    let id = create(&app, &token, "After the break").await;
    let body: Value = schedule(&app, &token, id, json!({"slot": "next"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["slot_at"], "2026-10-22T08:00:00Z");
    let refused = schedule(
        &app,
        &token,
        create(&app, &token, "X").await,
        json!({"slot": "2026-10-08T08:00:00Z"}),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let report = tick_at(&app, "2026-10-07T12:00:00Z").await;
    assert!(report.reminded.is_empty(), "{report:?}");
    let held = app
        .api(
            Method::POST,
            "/api/v1/slots/2026-10-22T08:00:00Z/skip",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 409, "a slot with an issue is not skipped");
    let not_slot = app
        .api(
            Method::POST,
            "/api/v1/slots/2026-10-09T08:00:00Z/skip",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(not_slot.status(), 400);
    let unskip = app
        .api(
            Method::DELETE,
            "/api/v1/slots/2026-10-08T08:00:00Z/skip",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unskip.status(), 204);
    let slots: Value = app
        .api(Method::GET, "/api/v1/slots?count=1", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(slots[0]["state"], "open");
}

async fn an_empty_slot_is_reminded_once(backend: Backend) {
    let (app, _token) = app_at(backend).await;
    app.create_editor("editor@example.com").await;
    // The default reminder comes 24 hours before a slot with no issue.
    let early = tick_at(&app, "2026-10-07T07:59:00Z").await;
    assert!(early.reminded.is_empty());
    let first = tick_at(&app, "2026-10-07T08:00:00Z").await;
    assert_eq!(first.reminded, [at("2026-10-08T08:00:00Z")]);
    let second = tick_at(&app, "2026-10-07T08:00:30Z").await;
    assert!(second.reminded.is_empty(), "once per slot");
    // Every editor hears of it: the API token's owner and this one.
    let mut mail = app.wait_for_mail(2).await;
    mail.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(
        (mail[0].to.as_slice(), mail[1].to.as_slice()),
        (
            ["api-owner@example.com".to_owned()].as_slice(),
            ["editor@example.com".to_owned()].as_slice()
        )
    );
    assert!(
        mail[0]
            .parsed()
            .subject()
            .unwrap()
            .contains("No issue yet for Thu 8 Oct 2026, 08:00 UTC")
    );
    app.settle_mail().await;
    assert_eq!(app.smtp.messages().len(), 2);
}

async fn ticks_racing_on_two_pools_start_each_issue_once(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = create(&app, &token, &format!("Racer {n}")).await;
        let when = start() + chrono::Duration::minutes(n + 1);
        assert_eq!(
            schedule(&app, &token, id, json!({"at": when.to_rfc3339()}))
                .await
                .status(),
            200
        );
        ids.push(id);
    }
    // A second instance: its own pool on the same database.
    let other_db = Db::connect(
        &SecretString::from(app.database_url.clone()),
        4,
        Default::default(),
    )
    .await
    .unwrap();
    let other = Scheduler {
        db: other_db,
        ..app.scheduler.clone()
    };
    let now = start() + chrono::Duration::hours(1);
    let (a, b) = tokio::join!(app.scheduler.run_due(now), other.run_due(now));
    let mut started: Vec<i64> = a
        .unwrap()
        .started
        .into_iter()
        .chain(b.unwrap().started)
        .collect();
    started.sort();
    assert_eq!(started, ids, "each issue started exactly once");
    for id in ids {
        assert_eq!(stored(&app, id).await.status, IssueStatus::Sending);
    }
}

async fn fortnight_tick_runs_one_tick_and_exits(backend: Backend) {
    let (app, token) = app_at(backend).await;
    let id = create(&app, &token, "Cron").await;
    let now = Utc::now();
    // Due a minute ago by the real clock the command reads.
    issues::schedule(
        &app.db,
        id,
        now - chrono::Duration::minutes(1),
        None,
        now - chrono::Duration::minutes(2),
    )
    .await
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fortnight"));
    command
        .arg("tick")
        .env("FORTNIGHT_DATABASE_URL", &app.database_url)
        .env(
            "FORTNIGHT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", app.smtp.port()),
        )
        .env("FORTNIGHT_REMINDER_BEFORE", "0s");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("tick: 1 issue(s) started, 0 missed"),
        "{stdout}"
    );
    assert_eq!(stored(&app, id).await.status, IssueStatus::Sending);
}
