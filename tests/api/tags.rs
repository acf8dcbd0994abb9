//! Tags and segments: readers carry tags (API, admin, CSV); an issue sent to a segment
//! reaches exactly the matching readers, counted before the send and fixed when it starts.

use std::collections::BTreeSet;

use fortnight::domain::IssueStatus;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::{copies, wait_status};
use crate::helpers::{Backend, TestApp, spawn_app};

both_databases!(
    a_segment_send_reaches_exactly_the_matching_readers,
    tags_are_managed_through_the_api_and_refused_when_malformed,
    the_admin_filters_by_tag_and_tags_in_bulk,
    a_csv_tags_column_tags_readers_and_the_export_lists_them,
    a_tag_in_an_unsent_issues_segment_cannot_be_deleted,
    a_pause_is_counted_once_when_two_instances_enqueue_the_same_batch,
);

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Adds an active subscriber with these tags through the API; returns its id.
async fn reader(app: &TestApp, token: &str, email: &str, tags: &[&str]) -> i64 {
    let response = app
        .api(Method::POST, "/api/v1/subscribers", token)
        .json(&json!({"email": email, "consented": true, "tags": tags}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json(response).await["data"]["id"].as_i64().unwrap()
}

async fn new_issue(app: &TestApp, token: &str, subject: &str) -> i64 {
    let response = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({"subject": subject, "body": "Body."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json(response).await["data"]["id"].as_i64().unwrap()
}

async fn a_segment_send_reaches_exactly_the_matching_readers(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    reader(&app, &token, "a@example.com", &["Weekly"]).await;
    reader(&app, &token, "b@example.com", &["Links"]).await;
    reader(&app, &token, "ab@example.com", &["weekly", "Links"]).await;
    reader(&app, &token, "ax@example.com", &["Weekly", "Muted"]).await;
    reader(&app, &token, "none@example.com", &[]).await;
    reader(&app, &token, "x@example.com", &["Muted"]).await;
    // A pending reader with the tag is not in the audience.
    app.api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "pending@example.com", "tags": ["Weekly"]}))
        .send()
        .await
        .unwrap();

    let id = new_issue(&app, &token, "Segmented").await;
    let segment = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}/segment"), &token)
        .json(&json!({"any": ["Weekly", "links"], "none": ["MUTED"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(segment.status(), 200);
    let segment = json(segment).await;
    assert_eq!(segment["data"]["audience"], 3, "{segment}");
    assert_eq!(segment["data"]["fixed"], false);
    assert_eq!(
        segment["data"]["description"],
        "readers tagged any of Links, Weekly; none of Muted"
    );

    // The audience is counted on the schedule box before the send.
    app.sign_in().await;
    let page = app
        .get(&format!("/admin/issues/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            "readers tagged any of Links, Weekly; none of Muted</strong>: 3 readers as of now"
        ),
        "{page}"
    );

    assert!(
        fortnight::store::issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    app.scheduler.handoff.issue_started(id);
    // Tagged after the start: the audience was fixed then.
    let late = reader(&app, &token, "late@example.com", &["Weekly"]).await;
    let sent = wait_status(&app, id, IssueStatus::Sent, 30).await;
    assert_eq!(sent.audience, Some(3));
    let got: BTreeSet<String> = copies(&app.smtp, "Segmented").into_keys().collect();
    let want: BTreeSet<String> = ["a@example.com", "b@example.com", "ab@example.com"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
    assert!(
        copies(&app.smtp, "Segmented")
            .values()
            .all(|c| c.len() == 1)
    );
    assert!(late > 0);

    let status = json(
        app.api(Method::GET, &format!("/api/v1/issues/{id}/send"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status["audience"], 3, "{status}");
    // Once the send has started, the audience is fixed.
    let refused = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}/segment"), &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let fixed = json(
        app.api(Method::GET, &format!("/api/v1/issues/{id}/segment"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fixed["data"]["fixed"], true);
    assert_eq!(fixed["data"]["audience"], 3);
}

async fn tags_are_managed_through_the_api_and_refused_when_malformed(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let made = app
        .api(Method::POST, "/api/v1/tags", &token)
        .json(&json!({"name": "Weekly Links", "description": "Only the roundup", "public": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let tag = json(made).await["data"]["id"].as_i64().unwrap();
    for bad in [
        json!({"name": ""}),
        json!({"name": "a,b"}),
        json!({"name": "zero\u{200b}width"}),
        json!({"name": "bidi\u{202e}txet"}),
        json!({"name": "x".repeat(51)}),
        json!({"name": "ok", "unknown": 1}),
    ] {
        let refused = app
            .api(Method::POST, "/api/v1/tags", &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let taken = app
        .api(Method::POST, "/api/v1/tags", &token)
        .json(&json!({"name": "weekly links"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    let list = json(
        app.api(Method::GET, "/api/v1/tags", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "refusals stored nothing"
    );

    let one = reader(&app, &token, "one@example.com", &[]).await;
    let two = reader(&app, &token, "two@example.com", &[]).await;
    let changed = json(
        app.api(
            Method::POST,
            &format!("/api/v1/tags/{tag}/subscribers"),
            &token,
        )
        .json(&json!({"add": [one, two]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(changed["added"], 2);
    for bad in [json!({"remove": [0]}), json!({"add": [-1]})] {
        let refused = app
            .api(
                Method::POST,
                &format!("/api/v1/tags/{tag}/subscribers"),
                &token,
            )
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let null_name = app
        .api(Method::PATCH, &format!("/api/v1/tags/{tag}"), &token)
        .json(&json!({"name": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(null_name.status(), 400);
    let filtered = json(
        app.api(
            Method::GET,
            "/api/v1/subscribers?tag=weekly%20links",
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 2);
    assert_eq!(filtered["data"][0]["tags"], json!(["Weekly Links"]));
    let unknown = app
        .api(Method::GET, "/api/v1/subscribers?tag=nope", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // PATCH replaces the tags; a tag not yet made is made.
    let patched = json(
        app.api(Method::PATCH, &format!("/api/v1/subscribers/{one}"), &token)
            .json(&json!({"tags": ["Fresh"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patched["data"]["tags"], json!(["Fresh"]));
    let renamed = app
        .api(Method::PATCH, &format!("/api/v1/tags/{tag}"), &token)
        .json(&json!({"name": "Roundup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    assert_eq!(json(renamed).await["data"]["subscribers"], 1);
    let deleted = app
        .api(Method::DELETE, &format!("/api/v1/tags/{tag}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let two = json(
        app.api(Method::GET, &format!("/api/v1/subscribers/{two}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(two["data"]["tags"], json!([]));
}

async fn the_admin_filters_by_tag_and_tags_in_bulk(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("bulk", 12).await;
    app.sign_in().await;
    let made = app
        .admin_post(
            "/admin/tags",
            &[("name", "VIP"), ("description", ""), ("public", "")],
        )
        .await;
    assert_eq!(made.status(), 303);
    let tag = fortnight::store::tags::list(&app.db).await.unwrap()[0]
        .tag
        .id;
    let tag = tag.to_string();
    // Every subscriber matching a search: bulk1, bulk10, bulk11.
    let tagged = app
        .admin_post(
            "/admin/subscribers/bulk",
            &[
                ("action", "tag"),
                ("scope", "matching"),
                ("bulk_tag", &tag),
                ("q", "bulk1"),
            ],
        )
        .await;
    assert_eq!(tagged.status(), 303);
    let page = app
        .get("/admin/subscribers?tag=vip")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("href=\"/admin/subscribers/").count(),
        3,
        "{page}"
    );
    // Untag the ticked ones.
    let ids: Vec<i64> = fortnight::store::subscriber_admin::list(
        &app.db,
        &fortnight::store::subscriber_admin::Filter {
            search: Some("bulk10".into()),
            ..Default::default()
        },
        fortnight::store::subscriber_admin::Cursor::First { by_signup: false },
        10,
    )
    .await
    .unwrap()
    .items
    .iter()
    .map(|s| s.id)
    .collect();
    let id = ids[0].to_string();
    let untagged = app
        .admin_post(
            "/admin/subscribers/bulk",
            &[("action", "untag"), ("bulk_tag", &tag), ("id", &id)],
        )
        .await;
    assert_eq!(untagged.status(), 303);
    let page = app
        .get("/admin/subscribers?tag=VIP")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("href=\"/admin/subscribers/").count(),
        2,
        "{page}"
    );
    // Bad input: unsubscribing "every match" is refused, an unknown tag filter is 404.
    let refused = app
        .admin_post(
            "/admin/subscribers/bulk",
            &[("action", "unsubscribe"), ("scope", "matching")],
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(app.get("/admin/subscribers?tag=nope").await.status(), 404);
    let bad_name = app.admin_post("/admin/tags", &[("name", "a;b")]).await;
    assert_eq!(bad_name.status(), 400);
    assert_eq!(
        fortnight::store::tags::list(&app.db).await.unwrap().len(),
        1
    );
}

async fn a_csv_tags_column_tags_readers_and_the_export_lists_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let page = app
        .import_csv(
            "email,name,tags\nann@example.com,Ann,\"Weekly; VIP\"\nbob@example.com,Bob,vip\ncat@example.com,Cat,\n",
            true,
        )
        .await;
    assert!(page.contains("done"), "{page}");
    let tags = fortnight::store::tags::list(&app.db).await.unwrap();
    let counts: Vec<(String, i64)> = tags
        .iter()
        .map(|t| (t.tag.name.clone(), t.subscribers))
        .collect();
    assert_eq!(counts, [("VIP".to_owned(), 2), ("Weekly".to_owned(), 1)]);
    let csv = app.get("/admin/export?tag=vip").await.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",tags"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains("VIP; Weekly"), "{csv}");
}

async fn a_tag_in_an_unsent_issues_segment_cannot_be_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    reader(&app, &token, "a@example.com", &["Weekly"]).await;
    let id = new_issue(&app, &token, "Later").await;
    let set = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}/segment"), &token)
        .json(&json!({"all": ["Weekly"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let unknown = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}/segment"), &token)
        .json(&json!({"all": ["Nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let twice = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}/segment"), &token)
        .json(&json!({"any": ["Weekly"], "none": ["WEEKLY"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "one tag in two roles");
    let tag = fortnight::store::tags::list(&app.db).await.unwrap()[0]
        .tag
        .id;
    let refused = app
        .api(Method::DELETE, &format!("/api/v1/tags/{tag}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let still = json(
        app.api(Method::GET, &format!("/api/v1/issues/{id}/segment"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        still["data"]["all"],
        json!(["Weekly"]),
        "the refused change kept the segment"
    );
    assert_eq!(still["data"]["audience"], 1);
}

/// Two instances run the enqueue from the same (stale) cursor, the second after readers in
/// the first's batch left: only the batch that moved the cursor counts the pause.
async fn a_pause_is_counted_once_when_two_instances_enqueue_the_same_batch(backend: Backend) {
    use fortnight::store::{Db, deliveries, issues, manage};
    use secrecy::SecretString;
    let database = crate::helpers::TestDatabase::create(backend).await;
    let db = Db::connect(&SecretString::from(database.url()), 4, Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    // One more reader than an enqueue batch takes.
    let readers = fortnight::store::deliveries::ENQUEUE_BATCH as usize + 1;
    let rows: Vec<fortnight::store::subscriber_import::ImportRow> = (0..readers)
        .map(|i| fortnight::store::subscriber_import::ImportRow {
            email: fortnight::domain::SubscriberEmail::parse(&format!("p{i}@example.com")).unwrap(),
            name: None,
            status: fortnight::domain::SubscriberStatus::Active,
            created_at: None,
            tags: Vec::new(),
        })
        .collect();
    for chunk in rows.chunks(2500) {
        fortnight::store::subscriber_import::insert(
            &db,
            chunk,
            None,
            now - chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    }
    let paused = fortnight::store::subscribers::find_by_email(
        &db,
        &fortnight::domain::SubscriberEmail::parse("p0@example.com").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(manage::pause(&db, paused.id, 3, now).await.unwrap());
    let draft = fortnight::domain::IssueDraft::parse(fortnight::domain::IssueInput {
        subject: "Once".into(),
        ..Default::default()
    })
    .unwrap();
    let issue = issues::create(&db, &draft, now).await.unwrap();
    assert!(issues::start_sending(&db, issue.id, now).await.unwrap());
    let stale = deliveries::to_enqueue(&db).await.unwrap().remove(0);
    assert!(deliveries::enqueue_batch(&db, &stale, now).await.unwrap() > 0);
    // A reader of the first batch leaves, so a second run from the stale cursor reaches past
    // the first batch's end: it must still not count the pause again.
    let last = fortnight::store::subscribers::find_by_email(
        &db,
        &fortnight::domain::SubscriberEmail::parse("p1@example.com").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    fortnight::store::subscribers::unsubscribe(&db, &last.uid, now)
        .await
        .unwrap();
    deliveries::enqueue_batch(&db, &stale, now).await.unwrap();
    let again = fortnight::store::subscriber_admin::get(&db, paused.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.skip_issues, 2, "one issue skipped, counted once");
    let batch = fortnight::store::deliveries::ENQUEUE_BATCH;
    assert_eq!(deliveries::queue_depth(&db).await.unwrap(), batch - 1);
}
