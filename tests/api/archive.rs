//! What readers get: the issue email (every header, both parts), the public archive and the
//! Atom feed, with sent issues only.

use fortnight::clock::Clock;
use fortnight::store::issues;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::helpers::{Backend, TestApp, link_path, spawn_app, spawn_app_with};

both_databases!(
    an_issue_email_carries_every_header_and_both_parts,
    the_archive_shows_sent_issues_only_newest_first,
    archive_pages_and_the_feed_can_be_cached,
    the_feed_is_valid_atom_of_sent_issues,
    hostile_markdown_never_reaches_readers,
    bad_archive_requests_get_clear_answers,
    the_text_part_wraps_roundup_notes_and_keeps_section_breaks,
    the_web_version_links_its_neighbours_and_makes_a_link_card,
);

/// Creates an issue through the API and returns its id.
async fn create(app: &TestApp, token: &str, body: Value) -> i64 {
    let response = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["data"]["id"].as_i64().unwrap()
}

/// Makes an issue public as delivery will: sending, then sent.
/// Mails a test copy of the issue to zoe@example.com.
async fn send_test(app: &TestApp, token: &str, id: i64) {
    let sent = app
        .api(Method::POST, &format!("/api/v1/issues/{id}/test"), token)
        .json(&json!({"email": "zoe@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
}

async fn publish(app: &TestApp, id: i64) {
    let now = app.clock.now();
    assert!(issues::start_sending(&app.db, id, now).await.unwrap());
    // The app's own delivery worker may finish a send with no readers first.
    if !issues::finish_sending(&app.db, id, now).await.unwrap() {
        let issue = issues::get(&app.db, id).await.unwrap().unwrap();
        assert_eq!(issue.status.as_str(), "sent");
    }
}

async fn an_issue_email_carries_every_header_and_both_parts(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.reply_to = Some("Letters Desk <letters@example.com>".into());
        c.list_unsubscribe_mailto = Some("unsubscribe@news.example.com".into());
        c.postal_address = "1 Example Street, Springfield".into();
    })
    .await;
    let token = app.api_token().await;
    let reader = json!({"email": "zoe@example.com", "name": "Zoë & Ada", "consented": true});
    let added = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .json(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let id = create(&app, &token, json!({
        "subject": "Grain and freight",
        "preheader": "What moved this fortnight",
        "body": "Prices [fell](https://example.com/prices).",
        "links_heading": "Weekly Links",
        "links": [{"title": "Ships idle", "url": "https://example.com/ships", "source": "The Ledger", "note": "Rates explain it."}]
    })).await;
    let issue = issues::get(&app.db, id).await.unwrap().unwrap();
    let subscriber = app.subscriber("zoe@example.com").await.unwrap();
    for _ in 0..2 {
        send_test(&app, &token, id).await;
    }
    let mail = app.wait_for_mail(2).await;
    let message = mail[0].parsed();
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("newsletter@localhost.localdomain"));
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("letters@example.com")
    );
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(
        (to.name(), to.address()),
        (Some("Zoë & Ada"), Some("zoe@example.com"))
    );
    assert_eq!(message.subject(), Some("[TEST] Grain and freight"));
    assert!(message.date().is_some());
    // A test copy has a Message-ID of its own, never the one the real copy will carry.
    let real_id = format!(
        "{}.{}@news.example.com",
        issue.uid.simple(),
        subscriber.uid.simple()
    );
    let test_ids = [
        message.message_id().unwrap().to_owned(),
        mail[1].parsed().message_id().unwrap().to_owned(),
    ];
    assert!(
        test_ids
            .iter()
            .all(|id| id.ends_with("@news.example.com") && *id != real_id),
        "{test_ids:?}"
    );
    assert_ne!(test_ids[0], test_ids[1]);
    assert_eq!(
        mail[0].header("List-Id").as_deref(),
        Some("\"The Test Dispatch\" <the-test-dispatch.news.example.com>")
    );
    // Unfolded: a long header may be folded onto several lines.
    let unsubscribe = mail[0]
        .header("List-Unsubscribe")
        .unwrap()
        .replace("\r\n", "")
        .replace('\n', "");
    assert!(
        unsubscribe.starts_with("<http://news.example.com/unsubscribe/"),
        "{unsubscribe}"
    );
    // The mailto's subject carries the same signed token as the link.
    let token = unsubscribe
        .split("/unsubscribe/")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap();
    assert!(
        unsubscribe.ends_with(&format!(
            ", <mailto:unsubscribe@news.example.com?subject=unsubscribe%20{token}>"
        )),
        "{unsubscribe}"
    );
    assert_eq!(
        mail[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(mail[0].header("Precedence").as_deref(), Some("bulk"));

    let text = mail[0].text();
    for expected in [
        "Hi Zoë & Ada,",
        "Weekly Links",
        "1. Ships idle (The Ledger)",
        "Rates explain it.",
        "https://example.com/ships",
        "https://example.com/prices",
        "View in your browser: http://news.example.com/archive/grain-and-freight",
        "1 Example Street, Springfield",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    let html = mail[0].html();
    assert!(html.contains("Hi Zoë &#38; Ada,"), "{html}");
    assert!(html.contains("What moved this fortnight"), "the preheader");
    assert!(html.contains("display:none"), "the preheader is hidden");
    assert!(html.contains("href=\"http://news.example.com/archive/grain-and-freight\""));
    assert!(
        html.contains("prefers-color-scheme: dark"),
        "dark mode rules survive inlining"
    );
    assert!(html.contains("role=\"presentation\""), "table layout");
    assert!(!html.contains("\u{E000}"), "no slot mark is left");

    // The link in the email unsubscribes this reader.
    let path = link_path(&text, "/unsubscribe/").replace("http://news.example.com", "");
    assert_eq!(app.post_form(&path, &[]).await.status(), 200);
    assert_eq!(
        app.subscriber("zoe@example.com")
            .await
            .unwrap()
            .status
            .as_str(),
        "unsubscribed"
    );
}

async fn the_archive_shows_sent_issues_only_newest_first(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Clock::fixed("2026-03-05T09:00:00Z".parse().unwrap()),
        |_| {},
    )
    .await;
    let token = app.api_token().await;
    let older = create(&app, &token, json!({"subject": "First dispatch"})).await;
    publish(&app, older).await;
    app.clock.advance(chrono::Duration::days(14));
    let newer = create(&app, &token, json!({"subject": "Second dispatch", "body": "Read on.", "links": [{"title": "L1", "url": "https://example.com/l1"}]})).await;
    publish(&app, newer).await;
    create(&app, &token, json!({"subject": "Secret draft"})).await;
    let sending = create(&app, &token, json!({"subject": "Going out now"})).await;
    assert!(
        issues::start_sending(&app.db, sending, app.clock.now())
            .await
            .unwrap()
    );

    let archive = app.get("/archive").await;
    assert_eq!(archive.status(), 200);
    let page = archive.text().await.unwrap();
    let (first, second, now) = (
        page.find("First dispatch").unwrap(),
        page.find("Second dispatch").unwrap(),
        page.find("Going out now").unwrap(),
    );
    assert!(now < second && second < first, "newest first: {page}");
    assert!(page.contains("19 March 2026"), "{page}");
    assert!(!page.contains("Secret draft"));

    let issue = app.get("/archive/second-dispatch").await;
    assert_eq!(issue.status(), 200);
    let issue = issue.text().await.unwrap();
    assert!(
        issue.contains("<h1>Second dispatch</h1>") && issue.contains("Read on."),
        "{issue}"
    );
    assert!(issue.contains("href=\"https://example.com/l1\""));
    assert!(
        issue.contains("action=\"/subscribe\""),
        "the signup form is at the bottom"
    );
    assert_eq!(app.get("/archive/secret-draft").await.status(), 404);
    assert_eq!(app.get("/archive/no-such-issue").await.status(), 404);
}

async fn archive_pages_and_the_feed_can_be_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let id = create(&app, &token, json!({"subject": "Cached"})).await;
    publish(&app, id).await;
    for path in ["/archive", "/archive/cached", "/feed.xml"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let cache = response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cache.contains("public") && cache.contains("max-age=300"),
            "{path}: {cache}"
        );
        let modified = response.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_owned();
        let again = app
            .client
            .get(format!("{}{path}", app.address))
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        let stale = app
            .client
            .get(format!("{}{path}", app.address))
            .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200, "{path}");
    }
}

async fn the_feed_is_valid_atom_of_sent_issues(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let first = create(
        &app,
        &token,
        json!({"subject": "Alpha", "preheader": "The first", "body": "Alpha *body*",
               "links_heading": "Weekly Links",
               "links": [{"title": "Ships & ports", "url": "https://example.com/ships", "source": "The Ledger", "note": "Rates explain it."}]}),
    )
    .await;
    publish(&app, first).await;
    let second = create(&app, &token, json!({"subject": "Beta"})).await;
    publish(&app, second).await;
    create(&app, &token, json!({"subject": "Unsent"})).await;
    let response = app.get("/feed.xml").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let body = response.bytes().await.unwrap();
    let feed = feed_rs::parser::parse(&body[..]).expect("a valid feed");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.title.unwrap().content, "The Test Dispatch");
    let titles: Vec<_> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles.contains(&"Alpha".to_owned()) && titles.contains(&"Beta".to_owned()));
    let alpha = feed
        .entries
        .iter()
        .find(|e| e.title.as_ref().unwrap().content == "Alpha")
        .unwrap();
    let uid = issues::get(&app.db, first).await.unwrap().unwrap().uid;
    assert_eq!(alpha.id, format!("urn:uuid:{uid}"));
    assert_eq!(alpha.links[0].href, "http://news.example.com/archive/alpha");
    assert_eq!(alpha.summary.as_ref().unwrap().content, "The first");
    assert!(
        alpha
            .content
            .as_ref()
            .unwrap()
            .body
            .as_ref()
            .unwrap()
            .contains("<em>body</em>")
    );
    // The roundup as the web version shows it.
    let content = alpha.content.as_ref().unwrap().body.as_ref().unwrap();
    for part in [
        "<h2>Weekly Links</h2>",
        "<a href=\"https://example.com/ships\">Ships &#38; ports</a>",
        "The Ledger",
        "Rates explain it.",
    ] {
        assert!(content.contains(part), "{part} missing from {content}");
    }
    let web = app.get("/archive/alpha").await.text().await.unwrap();
    assert!(web.contains("<a href=\"https://example.com/ships\">Ships &#38; ports</a>"));
    assert!(alpha.published.is_some());
}

async fn hostile_markdown_never_reaches_readers(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let hostile = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](javascript:alert(3))\n\n<a href=\"JaVaScRiPt:alert(4)\" onclick=\"alert(5)\">y</a>\n\n<iframe src=\"https://evil.example\"></iframe>";
    let id = create(&app, &token, json!({"subject": "Careful", "body": hostile})).await;
    publish(&app, id).await;
    let page = app
        .get("/archive/careful")
        .await
        .text()
        .await
        .unwrap()
        .to_lowercase();
    let feed = app
        .get("/feed.xml")
        .await
        .text()
        .await
        .unwrap()
        .to_lowercase();
    let preview: Value = app
        .api(Method::GET, &format!("/api/v1/issues/{id}/preview"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let html = preview["html"].as_str().unwrap().to_lowercase();
    for (name, text) in [("archive", &page), ("email", &html)] {
        for banned in ["<script", "onerror", "onclick", "javascript:", "<iframe"] {
            assert!(!text.contains(banned), "{banned} in the {name}: {text}");
        }
    }
    for banned in ["&lt;script", "onerror", "javascript:", "&lt;iframe"] {
        assert!(!feed.contains(banned), "{banned} in the feed: {feed}");
    }
}

async fn bad_archive_requests_get_clear_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, status) in [
        ("/archive?page=abc", 400),
        ("/archive?page=0", 400),
        ("/archive?page=-3", 400),
        ("/archive?page=99", 404),
        ("/archive/%00%ff", 400),
        ("/archive/%00", 404),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    let long = format!("/archive/{}", "a".repeat(500));
    assert_eq!(app.get(&long).await.status(), 404);
    let empty = app.get("/archive").await.text().await.unwrap();
    assert!(empty.contains("Nothing has been published yet."));
}

async fn the_text_part_wraps_roundup_notes_and_keeps_section_breaks(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let note = "Freight rates tell the story better than any forecast: ".repeat(6);
    let long_url = format!("https://example.com/{}", "path/".repeat(30));
    let id = create(&app, &token, json!({
        "subject": "Wrapped",
        "body": "First part.\n\n---\n\nSecond part.",
        "links_heading": "Weekly Links",
        "links": [
            {"title": "A title long enough to need a second line of its own in the text part of the email", "url": long_url, "source": "The Ledger", "note": note.trim()},
            {"title": "Short", "url": "https://example.com/short"}
        ]
    })).await;
    send_test(&app, &token, id).await;
    let text = app.wait_for_mail(1).await[0].text().replace("\r\n", "\n");
    assert!(
        text.contains("First part.\n\n* * *\n\nSecond part."),
        "{text}"
    );
    let roundup = &text[text.find("Weekly Links").expect("the roundup")..];
    for line in roundup.lines().take_while(|l| !l.starts_with("--")) {
        if line.trim_start().starts_with("https://") {
            continue;
        }
        assert!(
            line.chars().count() <= 72,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    assert!(
        roundup.contains(&format!("   {long_url}\n")),
        "the address is never broken: {roundup}"
    );
    let note_lines: Vec<_> = roundup
        .lines()
        .filter(|l| l.contains("Freight") || l.contains("forecast"))
        .collect();
    assert!(note_lines.len() >= 4, "{roundup}");
    assert!(note_lines.iter().all(|l| l.starts_with("   ")), "{roundup}");
    let words: Vec<_> = roundup.split_whitespace().collect();
    assert_eq!(
        words.iter().filter(|w| **w == "forecast:").count(),
        6,
        "no word of the note is lost: {roundup}"
    );
    assert!(
        roundup.contains("2. Short\n   https://example.com/short"),
        "{roundup}"
    );
}

async fn the_web_version_links_its_neighbours_and_makes_a_link_card(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let mut ids = Vec::new();
    for subject in ["First", "Second", "Third"] {
        let id = create(
            &app,
            &token,
            json!({"subject": subject, "preheader": format!("{subject} preview")}),
        )
        .await;
        publish(&app, id).await;
        ids.push(id);
    }
    let page = app.get("/archive/second").await.text().await.unwrap();
    for part in [
        r#"<link rel="canonical" href="http://news.example.com/archive/second">"#,
        r#"<meta property="og:title" content="Second">"#,
        r#"<meta property="og:description" content="Second preview">"#,
        r#"<meta property="og:url" content="http://news.example.com/archive/second">"#,
        r#"<meta property="og:site_name" content="The Test Dispatch">"#,
        r#"<a rel="prev" href="http://news.example.com/archive/first">← First</a>"#,
        r#"<a rel="next" href="http://news.example.com/archive/third">Third →</a>"#,
    ] {
        assert!(page.contains(part), "{part} missing:\n{page}");
    }
    let first = app.get("/archive/first").await.text().await.unwrap();
    assert!(!first.contains(r#"rel="prev""#) && first.contains(r#"rel="next""#));
    let third = app.get("/archive/third").await.text().await.unwrap();
    assert!(third.contains(r#"rel="prev""#) && !third.contains(r#"rel="next""#));

    let icon = app.get("/favicon.ico").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));

    // The admin's preview of the web version leads back to the admin, and to no neighbour.
    app.sign_in().await;
    let preview = app
        .get(&format!("/admin/issues/{}/preview/web", ids[1]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        preview.contains(&format!(r#"<a href="/admin/issues/{}">"#, ids[1])),
        "{preview}"
    );
    assert!(!preview.contains(r#"rel="next""#));
}
