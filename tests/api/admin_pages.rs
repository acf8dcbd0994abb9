//! The admin's daily pages: the dashboard's figures, the subscriber list's order and bulk
//! actions, the editor's live preview and the cadence's month view.

use fortnight::clock::Clock;
use fortnight::domain::{IssueStatus, SubscriberEmail, SubscriberStatus};
use fortnight::store::subscriber_import::{ImportRow, insert};
use reqwest::Method;

use crate::both_databases;
use crate::delivery::{start_send, wait_status};
use crate::helpers::{Backend, Reply, TestApp, spawn_app, spawn_app_with};

both_databases!(
    the_dashboard_shows_the_last_send_recent_issues_and_dated_growth,
    subscribers_are_listed_by_signup_date_across_pages,
    ticked_subscribers_are_unsubscribed_or_erased_together,
    bad_bulk_actions_are_refused_and_change_nothing,
    the_editor_previews_what_is_typed_before_saving,
    the_cadence_shows_the_coming_months_as_calendars,
);

async fn the_dashboard_shows_the_last_send_recent_issues_and_dated_growth(backend: Backend) {
    // One hard bounce marks a reader bounced.
    let app = spawn_app_with(backend, Clock::System, |c| c.bounce_threshold = 1).await;
    let token = app.api_token().await;
    app.seed_active("dash", 4).await;
    app.smtp
        .script_recipient("dash1@example.com", &[Reply::Permanent]);
    let id = start_send(&app, &token, "The Harvest Issue").await;
    wait_status(&app, id, IssueStatus::Sent, 20).await;
    // Two readers leave after it.
    for email in ["dash2@example.com", "dash3@example.com"] {
        let reader = app.subscriber(email).await.unwrap();
        fortnight::store::subscriber_admin::unsubscribe(&app.db, reader.id, app.clock.now())
            .await
            .unwrap();
    }
    app.sign_in().await;
    let page = app.get("/admin").await.text().await.unwrap();
    let section = &page[page
        .find("id=\"last-send\"")
        .expect("the last send's figures")..];
    assert!(section.contains("The Harvest Issue"), "{section}");
    for (label, n) in [
        ("Sent", 3),
        ("Failed", 1),
        ("Bounced", 1),
        ("Unsubscribed since", 2),
    ] {
        assert!(
            section.contains(&format!("<span>{label}</span><b>{n}</b>")),
            "{label} {n}: {section}"
        );
    }
    assert!(page.contains("<h2>Recent issues</h2>"));
    assert!(
        page.contains(&format!(
            "<a href=\"/admin/issues/{id}\">The Harvest Issue</a></td><td>sent</td>"
        )),
        "{page}"
    );
    // The chart's axis carries dates, and each day its value on hover and in a table.
    let today = app.clock.now().format("%Y-%m-%d").to_string();
    assert!(
        page.contains(&format!("<title>{today}: 4 new</title>")),
        "{page}"
    );
    assert!(page.contains(&format!("<tr><td>{today}</td><td>4</td></tr>")));
    let first = (app.clock.now() - chrono::Duration::days(90))
        .format("%-d %b")
        .to_string();
    assert!(
        page.contains(&format!(">{first}</text>")),
        "the first day is labelled: {page}"
    );
}

fn reader(email: &str, created: &str) -> ImportRow {
    ImportRow {
        email: SubscriberEmail::parse(email).unwrap(),
        name: None,
        status: SubscriberStatus::Active,
        created_at: Some(
            chrono::DateTime::parse_from_rfc3339(created)
                .unwrap()
                .with_timezone(&chrono::Utc),
        ),
        tags: Vec::new(),
    }
}

async fn subscribers_are_listed_by_signup_date_across_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    // 120 readers whose ids run against their signup dates, as an import of an old list makes.
    let rows: Vec<ImportRow> = (0..120)
        .map(|i| {
            let day = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
                + chrono::Duration::days(i * 7 % 120);
            reader(&format!("old{i}@example.com"), &format!("{day}T09:00:00Z"))
        })
        .collect();
    insert(&app.db, &rows, None, app.clock.now()).await.unwrap();
    app.sign_in().await;
    let dates = |page: &str| -> Vec<String> {
        page.split("<td>")
            .filter_map(|cell| {
                let value = cell.split("</td>").next()?;
                (value.len() == 10 && value.starts_with("20")).then(|| value.to_owned())
            })
            .collect()
    };
    let mut seen = Vec::new();
    let mut path = "/admin/subscribers".to_owned();
    for _ in 0..5 {
        let page = app.get(&path).await.text().await.unwrap();
        seen.extend(dates(&page));
        match page
            .split("href=\"/admin/subscribers?")
            .find(|p| p.contains("before="))
        {
            Some(rest) if page.contains("Older →") => {
                let query = rest
                    .split('"')
                    .next()
                    .unwrap()
                    .replace("&amp;", "&")
                    .replace("&#38;", "&");
                path = format!("/admin/subscribers?{query}");
            }
            _ => break,
        }
    }
    assert_eq!(seen.len(), 120, "every reader once across the pages");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest signup first");
    assert_eq!(seen[0], "2020-04-29");
}

/// Posts the bulk form with `fields` (repeated `id`s allowed).
async fn bulk(app: &TestApp, fields: &[(&str, String)]) -> reqwest::Response {
    let csrf = app.csrf_from("/admin/subscribers").await;
    let mut all = vec![("csrf", csrf)];
    all.extend(fields.iter().cloned());
    app.client
        .post(format!("{}/admin/subscribers/bulk", app.address))
        .form(&all)
        .send()
        .await
        .unwrap()
}

async fn ticked_subscribers_are_unsubscribed_or_erased_together(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("bulk", 5).await;
    app.sign_in().await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            app.subscriber(&format!("bulk{n}@example.com"))
                .await
                .unwrap()
                .id,
        );
    }
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let page = app.get("/admin/subscribers").await.text().await.unwrap();
    assert!(
        page.contains(&format!("name=\"id\" value=\"{a}\"")),
        "{page}"
    );
    let response = bulk(
        &app,
        &[
            ("action", "unsubscribe".into()),
            ("id", a.to_string()),
            ("id", b.to_string()),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    for n in [0, 1] {
        assert_eq!(
            app.subscriber(&format!("bulk{n}@example.com"))
                .await
                .unwrap()
                .status,
            SubscriberStatus::Unsubscribed
        );
    }
    let page = app.get("/admin/subscribers").await.text().await.unwrap();
    assert!(
        page.contains("2 of the 2 selected were unsubscribed"),
        "{page}"
    );
    let response = bulk(
        &app,
        &[
            ("action", "erase".into()),
            ("confirm", "yes".into()),
            ("id", c.to_string()),
            ("id", d.to_string()),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(app.subscriber("bulk2@example.com").await.is_none());
    assert!(app.subscriber("bulk3@example.com").await.is_none());
    assert_eq!(app.subscriber_count().await, 3);
}

async fn bad_bulk_actions_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("keep", 2).await;
    app.sign_in().await;
    let a = app
        .subscriber("keep0@example.com")
        .await
        .unwrap()
        .id
        .to_string();
    let too_many: Vec<(&str, String)> = (1..=501)
        .map(|n| ("id", n.to_string()))
        .chain([("action", "unsubscribe".to_owned())])
        .collect();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("action", "erase".into()), ("id", a.clone())],
        vec![("action", "explode".into()), ("id", a.clone())],
        vec![("action", "unsubscribe".into())],
        vec![("action", "unsubscribe".into()), ("id", "x1".into())],
        vec![("action", "unsubscribe".into()), ("id", "-4".into())],
        too_many,
    ];
    for fields in cases {
        let response = bulk(&app, &fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Without the CSRF token, nothing either.
    let forged = app
        .post_form(
            "/admin/subscribers/bulk",
            &[("action", "unsubscribe"), ("id", &a)],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.subscriber_count().await, 2);
    assert_eq!(
        app.subscriber("keep0@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn the_editor_previews_what_is_typed_before_saving(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let page = app.get("/admin/issues/new").await.text().await.unwrap();
    assert!(page.contains("id=\"live-preview\""), "{page}");
    assert!(
        page.contains("<textarea id=\"link-note-new\" name=\"link_note\""),
        "commentary is a text area"
    );
    assert!(page.contains("<textarea id=\"link-url-new\" name=\"link_url\""));
    let csrf = app.csrf_from("/admin/issues/new").await;
    let preview = app
        .post_form(
            "/admin/issues/draft-preview",
            &[
                ("csrf", &csrf),
                ("subject", "Freight <and> wheat"),
                ("body", "Ships **waited**.\n\n<script>alert(1)</script>"),
                ("links_heading", ""),
                ("link_title", "Port queues"),
                ("link_url", "https://example.com/ports"),
                ("link_source", "The Ledger"),
                ("link_note", "Why the anchorage filled."),
            ],
        )
        .await;
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["cache-control"], "no-store");
    let html = preview.text().await.unwrap();
    assert!(
        html.contains("<h1>Freight &#60;and&#62; wheat</h1>")
            || html.contains("<h1>Freight &lt;and&gt; wheat</h1>"),
        "{html}"
    );
    assert!(html.contains("<strong>waited</strong>"), "{html}");
    assert!(!html.contains("<script"), "sanitised: {html}");
    assert!(
        html.contains("<h2>Links</h2>")
            && html.contains("Port queues")
            && html.contains("Why the anchorage filled."),
        "{html}"
    );
    // Nothing is stored by a preview.
    assert!(
        fortnight::store::issues::list(&app.db, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Without the token it is refused.
    let forged = app
        .post_form("/admin/issues/draft-preview", &[("body", "x")])
        .await;
    assert_eq!(forged.status(), 403);
    // Saved, the page shows the preview of what was saved, scripts or not.
    let id = crate::issues::admin_create(
        &app,
        &[("subject", "Saved one"), ("body", "A *fine* body.")],
    )
    .await;
    let page = app
        .get(&format!("/admin/issues/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let preview = &page[page.find("id=\"live-preview\"").unwrap()..];
    assert!(preview.contains("<em>fine</em>"), "{preview}");
    let script = app.get("/admin/admin.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("data-render"));
}

async fn the_cadence_shows_the_coming_months_as_calendars(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let token = app.api_token().await;
    let page = app.get("/admin/cadence").await.text().await.unwrap();
    let months = &page[page.find("id=\"months\"").expect("the month view")..];
    let now = app.clock.now();
    let this_month = now.format("%B %Y").to_string();
    assert!(
        months.contains(&format!("<caption>{this_month}</caption>")),
        "{months}"
    );
    assert_eq!(months.matches("<table class=\"month\">").count(), 3);
    // The default cadence puts a slot in every other week: the calendars hold open slots.
    let open = months.matches("class=\"slot open\"").count();
    assert!(open >= 3, "{open} open slots in three months");
    // An issue put on the next slot shows there by name.
    let created = app
        .api(Method::POST, "/api/v1/issues", &token)
        .json(&serde_json::json!({"subject": "On the calendar", "body": "Body."}))
        .send()
        .await
        .unwrap();
    let id = created.json::<serde_json::Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    let placed = app
        .admin_post(&format!("/admin/issues/{id}/schedule"), &[("mode", "next")])
        .await;
    assert_eq!(placed.status(), 303);
    let page = app.get("/admin/cadence").await.text().await.unwrap();
    let months = &page[page.find("id=\"months\"").unwrap()..];
    assert!(
        months.contains(&format!(
            "<a href=\"/admin/issues/{id}\">On the calendar</a>"
        )),
        "{months}"
    );
    assert!(months.contains("class=\"slot taken\""));
}
