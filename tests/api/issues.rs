//! Writing issues in the admin and through the API: the editor, the links roundup, delete,
//! duplicate, preview and the test send.

use fortnight::domain::IssueStatus;
use fortnight::store::issues;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

both_databases!(
    the_editor_writes_a_draft_with_a_links_roundup,
    links_are_reordered_and_removed_without_javascript,
    a_refused_save_keeps_what_was_typed_and_changes_nothing,
    slugs_are_derived_unique_and_editable,
    only_drafts_are_deleted_and_sent_issues_are_fixed,
    duplicating_makes_a_new_draft,
    the_preview_shows_both_parts_and_frames_only_the_email,
    a_test_send_arrives_marked_and_records_no_delivery,
    the_api_writes_lists_and_previews_issues,
    the_api_refuses_bad_issues_with_json_errors,
);

/// Creates a draft through the admin form and returns its id.
pub async fn admin_create(app: &TestApp, fields: &[(&str, &str)]) -> i64 {
    let response = app.admin_post("/admin/issues", fields).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location
        .trim_start_matches("/admin/issues/")
        .parse()
        .unwrap_or_else(|_| panic!("unexpected location {location}"))
}

fn link_row<'a>(
    title: &'a str,
    url: &'a str,
    source: &'a str,
    note: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("link_title", title),
        ("link_url", url),
        ("link_source", source),
        ("link_note", note),
    ]
}

async fn stored(app: &TestApp, id: i64) -> issues::Issue {
    issues::get(&app.db, id)
        .await
        .unwrap()
        .expect("the issue is stored")
}

fn titles(issue: &issues::Issue) -> Vec<String> {
    issue.links.iter().map(|l| l.title.clone()).collect()
}

async fn the_editor_writes_a_draft_with_a_links_roundup(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let mut fields = vec![
        ("subject", "Notes on the harvest"),
        ("preheader", "Grain, freight and the weather"),
        ("body", "## Grain\n\nPrices **fell**."),
        ("links_heading", "Weekly Links"),
    ];
    fields.extend(link_row(
        "Freight rates",
        "https://example.com/freight",
        "The Ledger",
        "Why ships idle.",
    ));
    fields.extend(link_row("", "", "", ""));
    let id = admin_create(&app, &fields).await;
    let issue = stored(&app, id).await;
    assert_eq!(issue.status, IssueStatus::Draft);
    assert_eq!(issue.slug, "notes-on-the-harvest");
    assert_eq!(issue.links_heading, "Weekly Links");
    assert_eq!(titles(&issue), ["Freight rates"]);
    assert_eq!(issue.links[0].source, "The Ledger");

    let page = app
        .get(&format!("/admin/issues/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"Notes on the harvest\""), "{page}");
    crate::helpers::assert_no_form_in_a_paragraph(&page, "the issue page");
    assert!(page.contains("Delete this draft"));
    assert!(
        page.contains(">https://example.com/freight</textarea>"),
        "{page}"
    );
    let list = app
        .get("/admin/issues?status=draft")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("Notes on the harvest"), "{list}");
    let sent_only = app
        .get("/admin/issues?status=sent")
        .await
        .text()
        .await
        .unwrap();
    assert!(!sent_only.contains("Notes on the harvest"));
}

async fn links_are_reordered_and_removed_without_javascript(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let mut fields = vec![("subject", "Links")];
    for t in ["A", "B", "C"] {
        fields.extend(link_row(t, "https://example.com/", "", ""));
    }
    let id = admin_create(&app, &fields).await;
    let path = format!("/admin/issues/{id}");
    let form_with = |action: &'static str, extra: Option<&'static str>| {
        let mut f = vec![("subject", "Links"), ("action", action)];
        for t in ["A", "B", "C"] {
            f.extend(link_row(t, "https://example.com/", "", ""));
        }
        if let Some(t) = extra {
            f.extend(link_row(t, "https://example.com/d", "", ""));
        }
        f
    };
    assert_eq!(
        app.admin_post(&path, &form_with("up-2", None))
            .await
            .status(),
        303
    );
    assert_eq!(titles(&stored(&app, id).await), ["A", "C", "B"]);
    assert_eq!(
        app.admin_post(&path, &form_with("down-0", None))
            .await
            .status(),
        303
    );
    assert_eq!(titles(&stored(&app, id).await), ["B", "A", "C"]);
    assert_eq!(
        app.admin_post(&path, &form_with("remove-1", None))
            .await
            .status(),
        303
    );
    assert_eq!(titles(&stored(&app, id).await), ["A", "C"]);
    // The blank row at the bottom adds a link.
    assert_eq!(
        app.admin_post(&path, &form_with("save", Some("D")))
            .await
            .status(),
        303
    );
    assert_eq!(titles(&stored(&app, id).await), ["A", "B", "C", "D"]);
    let refused = app.admin_post(&path, &form_with("explode-1", None)).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(titles(&stored(&app, id).await), ["A", "B", "C", "D"]);
}

async fn a_refused_save_keeps_what_was_typed_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let id = admin_create(&app, &[("subject", "Kept"), ("body", "Original body")]).await;
    let before = stored(&app, id).await;
    let path = format!("/admin/issues/{id}");
    let mut bad_link = vec![("subject", "Changed"), ("body", "New body typed")];
    bad_link.extend(link_row("Bad", "javascript:alert(1)", "", ""));
    let long_body = "x".repeat(200_001);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("subject", " "), ("body", "New body typed")],
            "subject is required",
        ),
        (vec![("subject", "Two\nlines")], "one line"),
        (bad_link, "URL of link 1"),
        (vec![("subject", "S"), ("slug", "Not A Slug")], "slug"),
        (
            vec![("subject", "S"), ("body", "![](https://example.com/c.png)")],
            "has no description",
        ),
        (
            vec![("subject", "S"), ("body", long_body.as_str())],
            "too long",
        ),
    ];
    for (fields, why) in cases {
        let response = app.admin_post(&path, &fields).await;
        assert_eq!(response.status(), 400, "{why}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(why), "{why}: {page}");
        if why == "URL of link 1" {
            assert!(page.contains("New body typed"), "the input is kept");
        }
        let after = stored(&app, id).await;
        assert_eq!(
            (after.subject, after.body, after.updated_at),
            (
                before.subject.clone(),
                before.body.clone(),
                before.updated_at
            )
        );
    }
    let not_found = app
        .admin_post("/admin/issues/999999", &[("subject", "S")])
        .await;
    assert_eq!(not_found.status(), 404);
    let bad_id = app.get("/admin/issues/not-a-number").await;
    assert_eq!(bad_id.status(), 400);
}

async fn slugs_are_derived_unique_and_editable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let first = admin_create(&app, &[("subject", "Same Title")]).await;
    let second = admin_create(&app, &[("subject", "Same title!")]).await;
    assert_eq!(stored(&app, first).await.slug, "same-title");
    assert_eq!(stored(&app, second).await.slug, "same-title-2");
    let taken = app
        .admin_post(
            &format!("/admin/issues/{second}"),
            &[("subject", "Same"), ("slug", "same-title")],
        )
        .await;
    assert_eq!(taken.status(), 409);
    assert!(taken.text().await.unwrap().contains("/archive/same-title"));
    assert_eq!(stored(&app, second).await.slug, "same-title-2");
    let renamed = app
        .admin_post(
            &format!("/admin/issues/{second}"),
            &[("subject", "Same"), ("slug", "a-new-address")],
        )
        .await;
    assert_eq!(renamed.status(), 303);
    assert_eq!(stored(&app, second).await.slug, "a-new-address");
    let chosen_taken = app
        .admin_post(
            "/admin/issues",
            &[("subject", "X"), ("slug", "a-new-address")],
        )
        .await;
    assert_eq!(chosen_taken.status(), 409);
}

async fn only_drafts_are_deleted_and_sent_issues_are_fixed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let draft = admin_create(&app, &[("subject", "Throwaway")]).await;
    let unconfirmed = app
        .admin_post(&format!("/admin/issues/{draft}/delete"), &[])
        .await;
    assert_eq!(unconfirmed.status(), 400, "the box was not ticked");
    assert!(issues::get(&app.db, draft).await.unwrap().is_some());
    let response = app
        .admin_post(
            &format!("/admin/issues/{draft}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(issues::get(&app.db, draft).await.unwrap().is_none());
    assert_eq!(
        app.admin_post(
            &format!("/admin/issues/{draft}/delete"),
            &[("confirm", "yes")]
        )
        .await
        .status(),
        404
    );

    let sent = admin_create(&app, &[("subject", "Gone out"), ("body", "As sent")]).await;
    let now = app.clock.now();
    assert!(issues::start_sending(&app.db, sent, now).await.unwrap());
    assert!(
        !issues::start_sending(&app.db, sent, now).await.unwrap(),
        "starts once"
    );
    let refused = app
        .admin_post(
            &format!("/admin/issues/{sent}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(refused.status(), 409);
    // Cancelling the rest of a send cannot be undone either: without the box, it goes on.
    let unconfirmed = app
        .admin_post(&format!("/admin/issues/{sent}/cancel"), &[])
        .await;
    assert_eq!(unconfirmed.status(), 400);
    // (The app's worker may meanwhile finish this readerless send; it is never cancelled.)
    assert_ne!(
        issues::get(&app.db, sent).await.unwrap().unwrap().status,
        fortnight::domain::IssueStatus::Cancelled
    );
    let edit = app
        .admin_post(
            &format!("/admin/issues/{sent}"),
            &[("subject", "Rewritten"), ("body", "Changed")],
        )
        .await;
    assert_eq!(edit.status(), 409);
    let issue = stored(&app, sent).await;
    assert_eq!(
        (issue.subject.as_str(), issue.body.as_str()),
        ("Gone out", "As sent")
    );
    let page = app
        .get(&format!("/admin/issues/{sent}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("content is fixed"), "{page}");
}

async fn duplicating_makes_a_new_draft(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let mut fields = vec![
        ("subject", "Original"),
        ("body", "Body"),
        ("preheader", "Pre"),
    ];
    fields.extend(link_row("L", "https://example.com/l", "S", "N"));
    let id = admin_create(&app, &fields).await;
    assert!(
        issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    let response = app
        .admin_post(&format!("/admin/issues/{id}/duplicate"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let copy_id: i64 = response.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/admin/issues/")
        .parse()
        .unwrap();
    let (original, copy) = (stored(&app, id).await, stored(&app, copy_id).await);
    assert_ne!(copy.id, original.id);
    assert_ne!(copy.uid, original.uid);
    assert_eq!(copy.status, IssueStatus::Draft);
    assert_eq!(copy.slug, "original-2");
    assert_eq!(
        (copy.subject, copy.body, copy.preheader, copy.links),
        (
            original.subject,
            original.body,
            original.preheader,
            original.links
        )
    );
    assert!(copy.published_at.is_none());
}

async fn the_preview_shows_both_parts_and_frames_only_the_email(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let mut fields = vec![
        ("subject", "Preview me"),
        ("body", "Hello *there* <script>alert(1)</script>"),
    ];
    fields.extend(link_row(
        "Report",
        "https://example.com/report",
        "Desk",
        "Worth it.",
    ));
    let id = admin_create(&app, &fields).await;
    let page = app.get(&format!("/admin/issues/{id}/preview")).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-src 'self'")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("src=\"/admin/issues/{id}/preview/email\"")),
        "{page}"
    );
    assert!(
        page.contains("1. Report (Desk)"),
        "the text part is shown: {page}"
    );
    assert!(page.contains("https://example.com/report"));

    let email = app.get(&format!("/admin/issues/{id}/preview/email")).await;
    assert_eq!(email.status(), 200);
    assert_eq!(email.headers()["x-frame-options"], "SAMEORIGIN");
    let html = email.text().await.unwrap();
    assert!(html.contains("<em>there</em>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("style="), "CSS is inlined");
    assert!(html.contains("Hi,"));

    let web = app.get(&format!("/admin/issues/{id}/preview/web")).await;
    assert_eq!(web.status(), 200);
    let web = web.text().await.unwrap();
    assert!(
        web.contains("<h1>Preview me</h1>") && web.contains("action=\"/subscribe\""),
        "{web}"
    );
    // The draft stays private.
    let slug = stored(&app, id).await.slug;
    assert_eq!(app.get(&format!("/archive/{slug}")).await.status(), 404);
    assert_eq!(
        app.get("/admin/issues/1/preview?width=5").await.status(),
        400
    );
}

async fn a_test_send_arrives_marked_and_records_no_delivery(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let id = admin_create(&app, &[("subject", "Try me"), ("body", "Body text")]).await;
    let before = stored(&app, id).await;
    let response = app
        .admin_post(
            &format!("/admin/issues/{id}/test"),
            &[("email", "proof@example.com")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let mail = app.wait_for_mail(1).await;
    assert_eq!(mail[0].to, ["proof@example.com"]);
    assert_eq!(mail[0].parsed().subject(), Some("[TEST] Try me"));
    assert!(mail[0].text().contains("Body text"));
    let flash = app
        .get(&format!("/admin/issues/{id}/preview"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        flash.contains("A test copy went to proof@example.com"),
        "{flash}"
    );
    assert_eq!(app.outbox_count().await, 0, "no delivery is recorded");
    let after = stored(&app, id).await;
    assert_eq!(
        (after.status, after.updated_at),
        (before.status, before.updated_at)
    );
    let bad = app
        .admin_post(
            &format!("/admin/issues/{id}/test"),
            &[("email", "not an address")],
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(app.smtp.messages().len(), 1);
}

async fn the_api_writes_lists_and_previews_issues(backend: Backend) {
    let app = spawn_app_with(backend, fortnight::clock::Clock::System, |c| {
        c.postal_address = "1 Example Street, Springfield".into();
    })
    .await;
    let token = app.api_token().await;
    let body = json!({
        "subject": "From the API",
        "preheader": "The preview line",
        "body": "Some **Markdown**.",
        "links": [{"title": "One", "url": "https://example.com/1", "source": "Src", "note": "Note"}]
    });
    let created = app
        .api(Method::POST, "/api/v1/issues", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["data"]["id"].as_i64().unwrap();
    assert_eq!(created["data"]["status"], "draft");
    assert_eq!(created["data"]["slug"], "from-the-api");
    assert_eq!(created["data"]["links"][0]["source"], "Src");
    assert!(
        created["data"]["web_url"].is_null(),
        "a draft has no public address"
    );

    let put = json!({"subject": "Renamed", "body": "Some **Markdown**.", "links": []});
    let updated = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}"), &token)
        .json(&put)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["data"]["subject"], "Renamed");
    assert_eq!(
        updated["data"]["slug"], "from-the-api",
        "the slug stays unless given"
    );
    assert_eq!(updated["data"]["links"], json!([]));

    let preview: Value = app
        .api(Method::GET, &format!("/api/v1/issues/{id}/preview"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        preview["html"]
            .as_str()
            .unwrap()
            .contains("<strong>Markdown</strong>")
    );
    assert!(
        preview["text"]
            .as_str()
            .unwrap()
            .contains("1 Example Street, Springfield")
    );

    let copy = app
        .api(
            Method::POST,
            &format!("/api/v1/issues/{id}/duplicate"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(copy.status(), 201);
    let list: Value = app
        .api(Method::GET, "/api/v1/issues?limit=1", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let next = list["next_before"].as_i64().expect("a second page");
    let rest: Value = app
        .api(
            Method::GET,
            &format!("/api/v1/issues?limit=1&before={next}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"][0]["id"].as_i64(), Some(id));
    assert!(rest["next_before"].is_null());

    let test = app
        .api(Method::POST, &format!("/api/v1/issues/{id}/test"), &token)
        .json(&json!({"email": "proof@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), 200);
    app.wait_for_mail(1).await;

    let deleted = app
        .api(Method::DELETE, &format!("/api/v1/issues/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app
        .api(Method::GET, &format!("/api/v1/issues/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

async fn the_api_refuses_bad_issues_with_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let good = json!({"subject": "Fine"});
    let created: Value = app
        .api(Method::POST, "/api/v1/issues", &token)
        .json(&good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_i64().unwrap();
    let cases = [
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": ""}),
            400,
            "invalid_issue",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "links": [{"title": "T", "url": "javascript:alert(1)"}]}),
            400,
            "invalid_issue",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "slug": "Bad Slug"}),
            400,
            "invalid_issue",
        ),
        (
            // Counted before trimming, as the document's maxLength says.
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "slug": format!(" {} ", "a".repeat(80))}),
            400,
            "invalid_issue",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "colour": "red"}),
            400,
            "",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "body": "a\u{0}b"}),
            400,
            "invalid_issue",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "links": [{"title": "T", "url": "https://exa\u{0}mple.com/"}]}),
            400,
            "",
        ),
        (
            Method::POST,
            "/api/v1/issues".to_owned(),
            json!({"subject": "S", "slug": "fine"}),
            409,
            "slug_taken",
        ),
        (
            Method::PUT,
            "/api/v1/issues/abc".to_owned(),
            json!({"subject": "S"}),
            400,
            "invalid_id",
        ),
        (
            Method::PUT,
            "/api/v1/issues/999999".to_owned(),
            json!({"subject": "S"}),
            404,
            "not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/issues/{id}/test"),
            json!({"email": "nope"}),
            400,
            "invalid_email",
        ),
        (
            Method::GET,
            "/api/v1/issues?status=posted".to_owned(),
            json!(null),
            400,
            "invalid_status",
        ),
        (
            Method::GET,
            "/api/v1/issues?limit=0".to_owned(),
            json!(null),
            400,
            "invalid_limit",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let mut request = app.api(method.clone(), &path, &token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path} {body}");
        let error: Value = response.json().await.expect("a JSON error");
        if !code.is_empty() {
            assert_eq!(error["error"]["code"], code, "{method} {path}: {error}");
        }
    }
    assert!(
        issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    let put = app
        .api(Method::PUT, &format!("/api/v1/issues/{id}"), &token)
        .json(&json!({"subject": "Late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 409);
    let delete = app
        .api(Method::DELETE, &format!("/api/v1/issues/{id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 409);
    assert_eq!(stored(&app, id).await.subject, "Fine");
    let not_json = app
        .api(Method::POST, "/api/v1/issues", &token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        issues::list(&app.db, None, None, 100).await.unwrap().len(),
        1,
        "nothing else was stored"
    );
}
