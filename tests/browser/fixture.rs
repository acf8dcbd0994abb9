//! A populated instance with one of every kind of page, and the list of those pages, for the
//! checks that walk them all (accessibility, keyboard focus, layout).

use std::time::Duration;

use chrono::{DateTime, Utc};
use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use fortnight::store::issues;

use crate::helpers::{Backend, CapturedMail, TestApp, link_path, spawn_app_with};

/// Thursday 1 October 2026, 12:00 UTC. The default cadence (every other Thursday at 08:00 UTC)
/// has slots on 8 and 22 October.
pub fn start() -> DateTime<Utc> {
    "2026-10-01T12:00:00Z".parse().unwrap()
}

/// The editor every browser test signs in as.
pub const EDITOR: &str = "editor@example.com";

/// An instance on a clock fixed at [`start`], with an editor account.
pub async fn instance(
    backend: Backend,
    tweak: impl FnOnce(&mut fortnight::config::Config),
) -> TestApp {
    let app = spawn_app_with(backend, Clock::fixed(start()), tweak).await;
    app.create_editor(EDITOR).await;
    app
}

/// An instance with readers, a sent issue, a draft with a links roundup, a token and a
/// subscriber who signed up by email, and the paths of its pages.
pub struct Site {
    pub app: TestApp,
    /// Admin pages, signed in: (name, path).
    pub admin: Vec<(&'static str, String)>,
    /// A reader's unsubscribe page, from their confirmation email.
    pub unsubscribe: String,
    /// A reader's confirmation link, not yet used.
    pub confirm: String,
    /// The web version of the sent issue.
    pub published: String,
    /// A reader's manage page, from their copy of the sent issue.
    pub manage: String,
}

/// Builds the [`Site`] through the harness (these are the pages' contents, not what is tested).
pub async fn site(backend: Backend) -> Site {
    let app = instance(backend, |_| {}).await;
    app.seed_active("reader", 3).await;
    // The harness's own session (reqwest) writes the content; the browser signs in itself.
    let response = app
        .post_login(EDITOR, crate::helpers::EDITOR_PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    // Tags: one readers may choose, one only the editor sees; and a welcome email.
    for (name, public) in [("Weekly Links only", "yes"), ("VIP", "")] {
        let made = app
            .admin_post(
                "/admin/tags",
                &[
                    ("name", name),
                    ("description", "Just the roundup"),
                    ("public", public),
                ],
            )
            .await;
        assert_eq!(made.status(), 303);
    }
    let welcome = app
        .admin_post(
            "/admin/welcome",
            &[
                ("subject", "Welcome aboard"),
                ("body", "The next issue comes on {{ next_issue }}."),
                ("enabled", "yes"),
            ],
        )
        .await;
    assert_eq!(welcome.status(), 303);
    // A webhook endpoint nobody listens at, with a test event in its log.
    let hook = app
        .admin_post(
            "/admin/webhooks",
            &[
                ("url", "http://127.0.0.1:9/hooks"),
                ("description", "The CRM"),
                ("events", "subscriber.created"),
                ("events", "issue.sent"),
            ],
        )
        .await;
    assert_eq!(hook.status(), 303);
    let webhook = hook.headers()["location"].to_str().unwrap().to_owned();
    let test = app.admin_post(&format!("{webhook}/test"), &[]).await;
    assert_eq!(test.status(), 303);
    let sent = create_issue(
        &app,
        "Notes on the harvest",
        &[("Harvest report", "https://example.com/harvest")],
    )
    .await;
    send_to_the_end(&app, sent).await;
    let manage = link_path(
        &mail_to(&app, "reader0@example.com").await.text(),
        "/manage/",
    );
    let draft = create_issue(
        &app,
        "Freight and weather",
        &[
            ("Freight rates", "https://example.com/freight"),
            ("Barley futures", "https://example.com/barley"),
            ("A wet October", "https://example.com/rain"),
        ],
    )
    .await;
    app.admin_post("/admin/tokens", &[("name", "Zapier")]).await;
    // The links inbox: one saved link that already went out, one waiting.
    for (url, title) in [
        ("https://example.com/harvest?utm_source=x", "Harvest report"),
        ("https://example.com/storage", "Grain storage"),
    ] {
        let saved = app
            .admin_post(
                "/admin/links",
                &[
                    ("url", url),
                    ("title", title),
                    ("source", "The Ledger"),
                    ("note", "Why it matters."),
                ],
            )
            .await;
        assert_eq!(saved.status(), 303);
    }
    app.sign_up("ada@example.com").await;
    let confirmation = mail_to(&app, "ada@example.com").await.text();
    let reader = app.subscriber("reader0@example.com").await.unwrap();
    let slug = issues::get(&app.db, sent).await.unwrap().unwrap().slug;
    // A finished import with a refused row, and a bounce with its suppression.
    app.import_csv("email,name\nnew@example.com,New\nbroken,Nobody\n", true)
        .await;
    let import_job = format!(
        "/admin/import/{}",
        fortnight::store::import_jobs::recent(&app.db, 1)
            .await
            .unwrap()[0]
            .id
    );
    let bounce = fortnight::domain::MailEvent {
        provider: "postmark",
        event_id: "1".into(),
        kind: fortnight::domain::EventKind::Bounce,
        email: "reader2@example.com".into(),
        message_id: None,
        return_path: None,
        diagnostic: "smtp;550 5.1.1 user unknown".into(),
        occurred_at: app.clock.now(),
    };
    fortnight::store::mail_events::record(&app.db, &bounce, None, true, 2, app.clock.now())
        .await
        .unwrap();
    let admin = vec![
        ("dashboard", "/admin".to_owned()),
        ("subscribers", "/admin/subscribers".to_owned()),
        ("subscriber", format!("/admin/subscribers/{}", reader.id)),
        ("issues", "/admin/issues".to_owned()),
        ("new issue", "/admin/issues/new".to_owned()),
        ("issue editor", format!("/admin/issues/{draft}")),
        ("preview", format!("/admin/issues/{draft}/preview")),
        ("send", format!("/admin/issues/{sent}/send")),
        ("cadence", "/admin/cadence".to_owned()),
        ("import", "/admin/import".to_owned()),
        ("tokens", "/admin/tokens".to_owned()),
        ("import job", import_job),
        ("deliverability", "/admin/deliverability".to_owned()),
        ("tags", "/admin/tags".to_owned()),
        ("welcome email", "/admin/welcome".to_owned()),
        ("links", "/admin/links".to_owned()),
        ("webhooks", "/admin/webhooks".to_owned()),
        ("webhook", webhook),
        ("report", format!("/admin/issues/{sent}/report")),
    ];
    Site {
        admin,
        unsubscribe: link_path(&confirmation, "/unsubscribe/"),
        confirm: link_path(&confirmation, "/confirm/"),
        published: format!("/archive/{slug}"),
        manage,
        app,
    }
}

/// Creates a draft through the harness's admin session; returns its id.
async fn create_issue(app: &TestApp, subject: &str, links: &[(&str, &str)]) -> i64 {
    let mut fields = vec![
        ("subject", subject),
        ("preheader", "Grain, freight and the weather"),
        (
            "body",
            "## Grain\n\nPrices **fell** this week.\n\n> Quiet markets.",
        ),
        ("links_heading", "Worth reading"),
    ];
    for (title, url) in links {
        fields.extend([
            ("link_title", *title),
            ("link_url", *url),
            ("link_source", "The Ledger"),
            ("link_note", "Why it matters."),
        ]);
    }
    let response = app.admin_post("/admin/issues", &fields).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    crate::page::id_in(&location, "/admin/issues/")
}

/// Starts the issue's send as the scheduler would and waits until every copy went.
async fn send_to_the_end(app: &TestApp, id: i64) {
    assert!(
        issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    app.scheduler.handoff.issue_started(id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let issue = issues::get(&app.db, id).await.unwrap().unwrap();
        if issue.status == IssueStatus::Sent {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fixture's send did not finish: {:?}",
            issue.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to ten seconds) for the first message to `to`.
async fn mail_to(app: &TestApp, to: &str) -> CapturedMail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mail) = app.smtp.messages().into_iter().find(|m| m.to == [to]) {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message to {to} within ten seconds"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
