//! The welcome email: written in the admin or through the API, sent once when a reader first
//! confirms, never on a re-signup or a second confirmation.

use chrono::{TimeZone, Utc};
use fortnight::clock::Clock;
use reqwest::Method;
use serde_json::json;

use crate::both_databases;
use crate::helpers::{Backend, TestApp, link_path, spawn_app_with};

both_databases!(
    a_welcome_arrives_once_on_first_confirmation_and_never_on_re_signup,
    nobody_is_welcomed_until_the_editor_writes_one_and_switches_it_on,
    the_welcome_is_rendered_like_an_issue_with_the_list_headers,
    the_api_writes_previews_and_test_sends_the_welcome,
    a_refused_welcome_form_keeps_the_text_and_stores_nothing,
);

/// Monday 30 November 2026: the default cadence's next slot is Thursday 3 December.
async fn spawn(backend: Backend) -> TestApp {
    let clock = Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap());
    spawn_app_with(backend, clock, |_| {}).await
}

const BODY: &str = "Glad you are here. The next issue comes on {{ next_issue }}. \
                    Meanwhile: {{latest_issue}}.";

async fn write_welcome(app: &TestApp, enabled: bool) {
    let mut fields = vec![
        ("subject", "Welcome aboard"),
        ("preheader", "What to expect"),
        ("body", BODY),
    ];
    if enabled {
        fields.push(("enabled", "yes"));
    }
    let saved = app.admin_post("/admin/welcome", &fields).await;
    assert_eq!(saved.status(), 303, "{}", saved.text().await.unwrap());
}

/// Signs `email` up and follows the confirmation link of mail number `nth`; returns the page.
async fn sign_up_and_confirm(app: &TestApp, email: &str, nth: usize) -> String {
    app.sign_up(email).await;
    let mail = app.wait_for_mail(nth).await;
    let confirm = link_path(&mail[nth - 1].text(), "/confirm/");
    let page = app.get(&confirm).await;
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

fn welcomes_to(app: &TestApp, email: &str) -> usize {
    app.smtp
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == email))
        .filter(|m| m.header("Subject").as_deref() == Some("Welcome aboard"))
        .count()
}

async fn a_welcome_arrives_once_on_first_confirmation_and_never_on_re_signup(backend: Backend) {
    let app = spawn(backend).await;
    app.sign_in().await;
    write_welcome(&app, true).await;

    let page = sign_up_and_confirm(&app, "ada@example.com", 1).await;
    assert!(
        page.contains("The next issue of") && page.contains("comes on Thursday 3 December"),
        "the confirmation page names the next issue's date: {page}"
    );
    let mail = app.wait_for_mail(2).await;
    let welcome = &mail[1];
    assert_eq!(welcome.to, vec!["ada@example.com".to_owned()]);
    assert_eq!(welcome.header("Subject").as_deref(), Some("Welcome aboard"));
    let text = welcome.text();
    assert!(
        text.contains("The next issue comes on Thursday 3 December."),
        "{text}"
    );
    // Nothing is published yet: the latest-issue placeholder points at the archive.
    assert!(text.contains("/archive"), "{text}");

    // Signing up again while active, and confirming again with the same link: nothing new.
    app.sign_up("ada@example.com").await;
    let first_confirm = link_path(&mail[0].text(), "/confirm/");
    assert_eq!(app.get(&first_confirm).await.status(), 200);
    app.settle_mail().await;
    assert_eq!(app.smtp.messages().len(), 2);

    // Leaving and coming back: a new confirmation, but no second welcome.
    let unsubscribe = link_path(&welcome.text(), "/unsubscribe/");
    assert_eq!(app.post_form(&unsubscribe, &[]).await.status(), 200);
    let page = sign_up_and_confirm(&app, "ada@example.com", 3).await;
    assert!(page.contains("You are subscribed"), "{page}");
    app.settle_mail().await;
    assert_eq!(
        app.smtp.messages().len(),
        3,
        "no welcome on re-confirmation"
    );
    assert_eq!(welcomes_to(&app, "ada@example.com"), 1);
}

async fn nobody_is_welcomed_until_the_editor_writes_one_and_switches_it_on(backend: Backend) {
    let app = spawn(backend).await;
    app.sign_in().await;
    sign_up_and_confirm(&app, "first@example.com", 1).await;
    app.settle_mail().await;
    assert_eq!(app.smtp.messages().len(), 1, "no welcome written yet");

    write_welcome(&app, false).await;
    sign_up_and_confirm(&app, "second@example.com", 2).await;
    app.settle_mail().await;
    assert_eq!(app.smtp.messages().len(), 2, "the welcome is off");

    write_welcome(&app, true).await;
    sign_up_and_confirm(&app, "third@example.com", 3).await;
    app.wait_for_mail(4).await;
    app.settle_mail().await;
    assert_eq!(welcomes_to(&app, "third@example.com"), 1);
    assert_eq!(welcomes_to(&app, "first@example.com"), 0);
    assert_eq!(welcomes_to(&app, "second@example.com"), 0);
}

async fn the_welcome_is_rendered_like_an_issue_with_the_list_headers(backend: Backend) {
    let app = spawn(backend).await;
    app.sign_in().await;
    write_welcome(&app, true).await;
    sign_up_and_confirm(&app, "grace@example.com", 1).await;
    let welcome = app.wait_for_mail(2).await.remove(1);
    for header in [
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Message-ID",
    ] {
        assert!(welcome.header(header).is_some(), "{header} missing");
    }
    let html = welcome.html();
    assert!(html.contains("Glad you are here."), "{html}");
    assert!(
        !html.contains("View in your browser"),
        "a welcome has no web version"
    );
    // The preheader and the footer's links, as in an issue.
    assert!(html.contains("What to expect"));
    let manage = link_path(&welcome.text(), "/manage/");
    let unsubscribe = link_path(&welcome.text(), "/unsubscribe/");
    let list_unsubscribe = welcome.header("List-Unsubscribe").unwrap();
    assert!(
        list_unsubscribe.contains(&unsubscribe),
        "{list_unsubscribe}"
    );
    assert_ne!(manage, unsubscribe);
}

async fn the_api_writes_previews_and_test_sends_the_welcome(backend: Backend) {
    let app = spawn(backend).await;
    let token = app.api_token().await;
    let missing = app
        .api(Method::GET, "/api/v1/welcome", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    for bad in [
        json!({"subject": "", "body": "Hello", "enabled": false}),
        json!({"subject": "Hi", "body": "Hello"}),
        json!({"subject": "Hi", "body": "Hello", "enabled": true, "extra": 1}),
        json!({"subject": "Two\nlines", "body": "Hello", "enabled": true}),
    ] {
        let refused = app
            .api(Method::PUT, "/api/v1/welcome", &token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
        let error: serde_json::Value = refused.json().await.unwrap();
        assert!(error["error"]["code"].is_string(), "{error}");
    }
    let still_missing = app
        .api(Method::GET, "/api/v1/welcome", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(still_missing.status(), 404, "refused writes store nothing");

    let saved = app
        .api(Method::PUT, "/api/v1/welcome", &token)
        .json(&json!({"subject": "Welcome aboard", "preheader": "", "body": BODY, "enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let got: serde_json::Value = app
        .api(Method::GET, "/api/v1/welcome", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["body"], BODY);
    assert_eq!(got["data"]["enabled"], true);

    let preview: serde_json::Value = app
        .api(Method::GET, "/api/v1/welcome/preview", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = preview["data"]["text"]
        .as_str()
        .or(preview["text"].as_str())
        .unwrap();
    assert!(text.contains("Thursday 3 December"), "{text}");

    let sent = app
        .api(Method::POST, "/api/v1/welcome/test", &token)
        .json(&json!({"email": "proof@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let mail = app.wait_for_mail(1).await;
    assert_eq!(
        mail[0].header("Subject").as_deref(),
        Some("[TEST] Welcome aboard")
    );
    assert_eq!(mail[0].to, vec!["proof@example.com".to_owned()]);
}

async fn a_refused_welcome_form_keeps_the_text_and_stores_nothing(backend: Backend) {
    let app = spawn(backend).await;
    app.sign_in().await;
    let refused = app
        .admin_post(
            "/admin/welcome",
            &[("subject", ""), ("body", "Kept *text*"), ("enabled", "yes")],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Kept *text*") && page.contains("subject is required"),
        "{page}"
    );
    assert!(
        fortnight::store::welcome::get(&app.db)
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
    // Without the CSRF field the guard refuses before anything is read.
    let forged = app
        .post_form(
            "/admin/welcome",
            &[("subject", "Hi"), ("body", "Hello"), ("enabled", "yes")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert!(
        fortnight::store::welcome::get(&app.db)
            .await
            .unwrap()
            .is_none()
    );

    write_welcome(&app, true).await;
    let page = app.get("/admin/welcome").await.text().await.unwrap();
    assert!(page.contains("It is on."), "{page}");
    assert!(
        page.contains("Thursday 3 December"),
        "the saved version's preview: {page}"
    );
    let frame = app.get("/admin/welcome/preview/email").await;
    assert_eq!(frame.status(), 200);
    assert!(frame.text().await.unwrap().contains("Glad you are here."));
}
