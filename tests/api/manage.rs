//! The reader's manage page: reached from the signed link in every issue, it changes the name,
//! the address (only once the new address confirms), the public tags and a pause, downloads
//! the reader's data, and unsubscribes with a reason.

use fortnight::domain::{IssueStatus, SubscriberStatus};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::{copies, start_send, wait_status};
use crate::helpers::{Backend, TestApp, link_path, spawn_app};

both_databases!(
    the_manage_link_of_an_issue_changes_the_name_and_shows_the_data,
    an_address_change_takes_effect_only_after_the_new_address_confirms,
    a_paused_reader_misses_exactly_the_issues_they_chose,
    readers_choose_public_tags_and_keep_the_private_ones,
    leaving_with_a_reason_shows_the_reason_to_the_editor,
    forged_links_and_forms_change_nothing,
);

/// Sends an issue to the list and returns the manage link (path) of `email`'s copy.
async fn manage_link(app: &TestApp, token: &str, email: &str) -> String {
    let id = start_send(app, token, "Issue one").await;
    wait_status(app, id, IssueStatus::Sent, 30).await;
    let mail = wait_for_mail_to(app, email).await;
    let html_link = link_path(&mail.html(), "/manage/");
    let text_link = link_path(&mail.text(), "/manage/");
    assert_eq!(html_link, text_link);
    text_link
}

/// The hidden CSRF field of the page at `path`.
async fn csrf(app: &TestApp, path: &str) -> String {
    let page = app.get(path).await.text().await.unwrap();
    let start = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

async fn post(
    app: &TestApp,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, page).await;
    let mut all = vec![("csrf", token.as_str())];
    all.extend_from_slice(fields);
    app.post_form(&format!("{page}/{action}"), &all).await
}

async fn the_manage_link_of_an_issue_changes_the_name_and_shows_the_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    let page = manage_link(&app, &token, "reader0@example.com").await;
    let shown = app.get(&page).await;
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(
        html.contains("reader0@example.com") && html.contains("Reader 0"),
        "{html}"
    );
    crate::helpers::assert_no_form_in_a_paragraph(&html, &page);

    let renamed = post(&app, &page, "name", &[("name", "Ada")]).await;
    assert_eq!(renamed.status(), 303);
    assert_eq!(
        app.subscriber("reader0@example.com")
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Ada")
    );
    let bad = post(&app, &page, "name", &[("name", "<script>")]).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        app.subscriber("reader0@example.com")
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Ada"),
        "a refused name changes nothing"
    );

    let data = app.get(&format!("{page}/data.json")).await;
    assert_eq!(data.status(), 200);
    assert!(
        data.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let data: Value = data.json().await.unwrap();
    assert_eq!(data["email"], "reader0@example.com");
    assert_eq!(data["consent"]["source"], "import");
    assert!(data["consent"]["given_at"].is_string());
    assert_eq!(data["issues_sent"][0]["subject"], "Issue one");
    assert_eq!(data["issues_sent"][0]["status"], "sent");
}

async fn an_address_change_takes_effect_only_after_the_new_address_confirms(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("old", 1).await;
    app.seed_active("other", 1).await;
    let page = manage_link(&app, &token, "old0@example.com").await;

    // A taken address gets the same answer as a free one (the form tells nobody who is on the
    // list), and nothing is mailed to it or changed.
    let taken = post(&app, &page, "email", &[("email", "other0@example.com")]).await;
    assert_eq!(taken.status(), 303);
    let asked = post(&app, &page, "email", &[("email", "New@Example.com")]).await;
    assert_eq!(asked.status(), 303);
    let link_mail = wait_for_mail_to(&app, "New@example.com").await;
    let link = link_path(&link_mail.text(), "/email-change/");

    // Until the new address confirms, issues go to the old one.
    assert!(app.subscriber("old0@example.com").await.is_some());
    let id = start_send(&app, &token, "Issue two").await;
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    assert!(copies(&app.smtp, "Issue two").contains_key("old0@example.com"));

    let confirmed = app.get(&link).await;
    assert_eq!(confirmed.status(), 200);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("now goes to New@example.com")
    );
    let moved = app.subscriber("new@example.com").await.unwrap();
    assert_eq!(moved.email, "New@example.com");
    assert!(app.subscriber("old0@example.com").await.is_none());
    // The old address is told.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.smtp.messages().iter().any(|m| {
        m.to == vec!["old0@example.com".to_owned()]
            && m.header("Subject")
                .unwrap_or_default()
                .contains("has moved")
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old address gets a notice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let again = app.get(&link).await;
    assert!(again.text().await.unwrap().contains("expired"));
    let others: Vec<_> = app
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.to == vec!["other0@example.com".to_owned()])
        .filter(|m| !m.header("Subject").unwrap_or_default().starts_with("Issue"))
        .collect();
    assert!(others.is_empty(), "the taken address was not mailed");
    assert!(app.subscriber("other0@example.com").await.is_some());
    let id = start_send(&app, &token, "Issue three").await;
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    let three = copies(&app.smtp, "Issue three");
    assert!(three.contains_key("New@example.com") && !three.contains_key("old0@example.com"));
    // A fourth request within the hour is refused; nothing is queued.
    // (The manage link names the reader, not the address: the old one still works.)
    for address in ["a1@example.com", "a2@example.com"] {
        let asked = post(&app, &page, "email", &[("email", address)]).await;
        assert_eq!(asked.status(), 303);
    }
    let limited = post(&app, &page, "email", &[("email", "a3@example.com")]).await;
    assert_eq!(limited.status(), 429);
}

async fn a_paused_reader_misses_exactly_the_issues_they_chose(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("r", 2).await;
    let page = manage_link(&app, &token, "r0@example.com").await;
    let paused = post(&app, &page, "pause", &[("issues", "2")]).await;
    assert_eq!(paused.status(), 303);
    assert_eq!(
        app.subscriber("r0@example.com").await.unwrap().skip_issues,
        2
    );
    for bad in ["7", "-1", "two", ""] {
        let refused = post(&app, &page, "pause", &[("issues", bad)]).await;
        assert_eq!(refused.status(), 400, "{bad}");
    }
    for subject in ["Paused A", "Paused B", "Back C"] {
        let id = start_send(&app, &token, subject).await;
        wait_status(&app, id, IssueStatus::Sent, 30).await;
    }
    for (subject, gets) in [("Paused A", false), ("Paused B", false), ("Back C", true)] {
        let got = copies(&app.smtp, subject);
        assert_eq!(got.contains_key("r0@example.com"), gets, "{subject}");
        assert!(got.contains_key("r1@example.com"), "{subject}");
    }
    assert_eq!(
        app.subscriber("r0@example.com").await.unwrap().skip_issues,
        0
    );
}

async fn readers_choose_public_tags_and_keep_the_private_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let public = app
        .api(Method::POST, "/api/v1/tags", &token)
        .json(&json!({"name": "Weekly Links only", "description": "Just the roundup", "public": true}))
        .send()
        .await
        .unwrap();
    let public = public.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    app.api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "t@example.com", "consented": true, "tags": ["VIP"]}))
        .send()
        .await
        .unwrap();
    let private = fortnight::store::tags::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.tag.name == "VIP")
        .unwrap()
        .tag
        .id;
    let page = manage_link(&app, &token, "t@example.com").await;
    let html = app.get(&page).await.text().await.unwrap();
    assert!(html.contains("Weekly Links only") && html.contains("Just the roundup"));
    assert!(
        !html.contains("VIP"),
        "private tags are not shown to readers"
    );

    let names = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            let s = fortnight::store::subscribers::find_by_email(
                &db,
                &fortnight::domain::SubscriberEmail::parse("t@example.com").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
            let mut names: Vec<String> = fortnight::store::tags::of_subscribers(&db, &[s.id])
                .await
                .unwrap()
                .remove(&s.id)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name)
                .collect();
            names.sort();
            names
        }
    };
    let chose = post(&app, &page, "tags", &[("tag", &public.to_string())]).await;
    assert_eq!(chose.status(), 303);
    assert_eq!(names(&app).await, ["VIP", "Weekly Links only"]);
    let forged = post(&app, &page, "tags", &[("tag", &private.to_string())]).await;
    assert_eq!(forged.status(), 400, "a private tag cannot be chosen");
    assert_eq!(names(&app).await, ["VIP", "Weekly Links only"]);
    let cleared = post(&app, &page, "tags", &[]).await;
    assert_eq!(cleared.status(), 303);
    assert_eq!(
        names(&app).await,
        ["VIP"],
        "unchoosing keeps the editor's tags"
    );
}

async fn leaving_with_a_reason_shows_the_reason_to_the_editor(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("leaver", 1).await;
    let page = manage_link(&app, &token, "leaver0@example.com").await;
    let form = csrf(&app, &page).await;
    let left = post(&app, &page, "unsubscribe", &[("reason", "Too many emails")]).await;
    assert_eq!(left.status(), 200);
    assert!(left.text().await.unwrap().contains("You are unsubscribed"));
    let s = app.subscriber("leaver0@example.com").await.unwrap();
    assert_eq!(s.status, SubscriberStatus::Unsubscribed);
    assert_eq!(s.unsubscribe_reason.as_deref(), Some("Too many emails"));
    app.sign_in().await;
    let admin = app
        .get(&format!("/admin/subscribers/{}", s.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(admin.contains("Too many emails"), "{admin}");
    // A left reader can no longer change anything but can still read their data.
    let refused = app
        .post_form(
            &format!("{page}/name"),
            &[("csrf", form.as_str()), ("name", "X")],
        )
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(app.get(&format!("{page}/data.json")).await.status(), 200);
}

async fn forged_links_and_forms_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("victim", 2).await;
    let page = manage_link(&app, &token, "victim0@example.com").await;
    let other = manage_link_of(&app, "victim1@example.com").await;

    // A changed character: 404, and no data.
    let mut tampered = page.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(app.get(&tampered).await.status(), 404);
    assert_eq!(
        app.get(&format!("{tampered}/data.json")).await.status(),
        404
    );
    // The unsubscribe token of the same reader does not open the page.
    let s = app.subscriber("victim0@example.com").await.unwrap();
    let unsubscribe = app.link_key.unsubscribe_token(&s.uid);
    assert_eq!(
        app.get(&format!("/manage/{unsubscribe}")).await.status(),
        404
    );

    // No CSRF field, or another reader's: refused.
    let bare = app
        .post_form(&format!("{page}/unsubscribe"), &[("reason", "x")])
        .await;
    assert_eq!(bare.status(), 403);
    let theirs = csrf(&app, &other).await;
    let crossed = app
        .post_form(
            &format!("{page}/unsubscribe"),
            &[("csrf", theirs.as_str()), ("reason", "x")],
        )
        .await;
    assert_eq!(crossed.status(), 403);
    // Another site's form.
    let own = csrf(&app, &page).await;
    let cross_site = app
        .client
        .post(format!("{}{page}/unsubscribe", app.address))
        .header("origin", "https://evil.example")
        .form(&[("csrf", own.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert_eq!(
        app.subscriber("victim0@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
    // A made-up address-change link.
    assert_eq!(
        app.get("/email-change/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .status(),
        404
    );
}

/// The manage link of a reader, as the issue already sent carried it.
async fn manage_link_of(app: &TestApp, email: &str) -> String {
    let mail = app
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.to == vec![email.to_owned()])
        .expect("a copy");
    link_path(&mail.text(), "/manage/")
}

/// Waits (up to ten seconds) for a message to `email` and returns the first.
async fn wait_for_mail_to(app: &TestApp, email: &str) -> crate::helpers::CapturedMail {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(mail) = app
            .smtp
            .messages()
            .into_iter()
            .find(|m| m.to == vec![email.to_owned()])
        {
            return mail;
        }
        assert!(tokio::time::Instant::now() < deadline, "no mail to {email}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
