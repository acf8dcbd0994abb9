//! Link clicks, privacy first: off unless `track_clicks`; through `/l/{token}` a click counts
//! once per request and lands on the exact address; a forged token is a 404, never a
//! redirect; readers are named only with `track_readers`; the web version is never tracked.
//! Opens likewise: no pixel unless `track_opens`, and then one per copy, counted per request.

use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::wait_status;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

both_databases!(
    a_tracked_click_counts_once_and_lands_on_the_exact_address,
    forged_and_changed_tokens_answer_404_and_count_nothing,
    with_track_readers_each_copy_names_its_reader,
    without_track_clicks_links_are_left_as_written,
    with_track_opens_the_pixel_counts_each_open_and_nothing_else_is_tracked,
    with_track_opens_and_track_readers_each_copy_has_its_own_pixel,
    a_flood_from_one_address_is_served_but_counted_only_to_its_limit,
);

/// Query, encoded space, fragment, a non-ASCII path: each must come back byte for byte.
const BODY_LINK: &str = "https://example.com/a/%C3%A9t%C3%A9?b=1&c=%20d#part-2";
const FIRST: &str = "https://news.example.org/story?id=7&utm_source=x";
const SECOND: &str = "http://blog.example.net/post";

async fn send(app: &TestApp, token: &str, subject: &str) -> (i64, String) {
    let created = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({
            "subject": subject,
            "body": format!("Read [this piece]({BODY_LINK}) and [mail us](mailto:desk@example.com)."),
            "links": [
                {"title": "First story", "url": FIRST, "source": "News"},
                {"title": "Second story", "url": SECOND},
            ],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let issue: Value = created.json().await.unwrap();
    let id = issue["data"]["id"].as_i64().unwrap();
    let slug = issue["data"]["slug"].as_str().unwrap().to_owned();
    assert!(
        fortnight::store::issues::start_sending(&app.db, id, app.clock.now())
            .await
            .unwrap()
    );
    app.scheduler.handoff.issue_started(id);
    wait_status(app, id, IssueStatus::Sent, 30).await;
    (id, slug)
}

/// The `/l/` paths in a message's HTML part, in order.
fn tracked(html: &str) -> Vec<String> {
    html.match_indices("/l/")
        .map(|(at, _)| {
            let rest = &html[at..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

fn copy_to(app: &TestApp, email: &str) -> String {
    app.smtp
        .messages()
        .into_iter()
        .find(|m| m.to == vec![email.to_owned()])
        .expect("a copy")
        .html()
}

async fn report(app: &TestApp, token: &str, id: i64) -> Value {
    app.api(Method::GET, &format!("/api/v1/issues/{id}/report"), token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn a_tracked_click_counts_once_and_lands_on_the_exact_address(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.track_clicks = true).await;
    let token = app.api_token().await;
    app.seed_active("reader", 2).await;
    let (id, slug) = send(&app, &token, "Tracked").await;
    let html = copy_to(&app, "reader0@example.com");
    let links = tracked(&html);
    assert_eq!(
        links.len(),
        3,
        "the body's link and both roundup links: {html}"
    );
    assert!(
        html.contains("mailto:desk@example.com"),
        "mailto links stay"
    );
    assert!(!html.contains(FIRST) && !html.contains(SECOND));
    // Without track_readers every copy carries the same links: they name nobody.
    assert_eq!(tracked(&copy_to(&app, "reader1@example.com")), links);

    for (link, want, times) in [
        (&links[0], BODY_LINK, 1),
        (&links[1], FIRST, 3),
        (&links[2], SECOND, 0),
    ] {
        for _ in 0..times {
            let answer = app.get(link).await;
            assert_eq!(answer.status(), 302);
            assert_eq!(answer.headers()["location"].as_bytes(), want.as_bytes());
        }
    }
    let r = report(&app, &token, id).await;
    assert_eq!(r["audience"], 2);
    assert_eq!(r["sent"], 2);
    assert_eq!(r["clicks_tracked"], true);
    let links = r["links"].as_array().unwrap();
    let rows: Vec<(Value, &str, i64)> = links
        .iter()
        .map(|l| {
            (
                l["title"].clone(),
                l["url"].as_str().unwrap(),
                l["clicks"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!("First story"), FIRST, 3),
            (json!("Second story"), SECOND, 0),
            (Value::Null, BODY_LINK, 1),
        ]
    );
    assert!(
        links.iter().all(|l| l["readers"].is_null()),
        "readers are not tracked"
    );

    // The web version is never tracked.
    let web = app
        .get(&format!("/archive/{slug}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!web.contains("/l/"), "{web}");
    assert!(web.contains("example.org/story"));

    // The admin's report shows the same.
    app.sign_in().await;
    let page = app.get(&format!("/admin/issues/{id}/report")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("First story") && page.contains("<td>3</td>"),
        "{page}"
    );
}

async fn forged_and_changed_tokens_answer_404_and_count_nothing(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.track_clicks = true).await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    let (id, _) = send(&app, &token, "Forged").await;
    let real = tracked(&copy_to(&app, "reader0@example.com")).remove(1);
    let token_part = real.trim_start_matches("/l/");
    let (payload, tag) = token_part.split_once('.').unwrap();
    // Another address under the same tag, a changed tag, junk, another installation's key.
    let evil = fortnight::domain::token::Click {
        issue_id: id,
        reader: None,
        url: "https://evil.example/".into(),
    };
    let foreign = fortnight::domain::token::LinkKey::generate().click_token(&evil);
    let mut flipped = tag.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for forged in [
        format!("/l/{payload}x.{tag}"),
        format!("/l/{payload}.{flipped}"),
        format!("/l/{payload}"),
        "/l/https%3A%2F%2Fevil.example".to_owned(),
        format!("/l/{foreign}"),
    ] {
        let answer = app.get(&forged).await;
        assert_eq!(answer.status(), 404, "{forged}");
        assert!(answer.headers().get("location").is_none());
    }
    let r = report(&app, &token, id).await;
    assert!(
        r["links"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["clicks"] == 0),
        "{r}"
    );
}

async fn with_track_readers_each_copy_names_its_reader(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.track_clicks = true;
        c.track_readers = true;
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("reader", 2).await;
    let (id, _) = send(&app, &token, "Named").await;
    let mine = tracked(&copy_to(&app, "reader0@example.com"));
    let theirs = tracked(&copy_to(&app, "reader1@example.com"));
    assert_eq!(mine.len(), 3);
    assert_ne!(mine, theirs, "each copy's links name its reader");
    for link in [&mine[1], &mine[1], &theirs[1]] {
        let answer = app.get(link).await;
        assert_eq!(answer.status(), 302);
        assert_eq!(answer.headers()["location"].as_bytes(), FIRST.as_bytes());
    }
    let r = report(&app, &token, id).await;
    assert_eq!(r["links"][0]["clicks"], 3);
    assert_eq!(r["links"][0]["readers"], 2);
    assert_eq!(r["readers_tracked"], true);
}

async fn without_track_clicks_links_are_left_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    let (id, _) = send(&app, &token, "Plain").await;
    let html = copy_to(&app, "reader0@example.com");
    assert!(tracked(&html).is_empty(), "{html}");
    assert!(
        pixels(&html).is_empty(),
        "no pixel unless track_opens: {html}"
    );
    assert!(
        html.contains("news.example.org/story?id=7&amp;utm_source=x"),
        "{html}"
    );
    let r = report(&app, &token, id).await;
    assert_eq!(r["clicks_tracked"], false);
    assert_eq!(r["opens_tracked"], false);
    assert_eq!(r["opens"], 0);
    assert_eq!(r["links"].as_array().unwrap().len(), 3);
}

/// The `/o/` pixel paths in a message's HTML part.
fn pixels(html: &str) -> Vec<String> {
    html.match_indices("/o/")
        .map(|(at, _)| {
            let rest = &html[at..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

async fn with_track_opens_the_pixel_counts_each_open_and_nothing_else_is_tracked(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.track_opens = true).await;
    let token = app.api_token().await;
    app.seed_active("reader", 2).await;
    let (id, slug) = send(&app, &token, "Opened").await;
    let html = copy_to(&app, "reader0@example.com");
    let pixel = pixels(&html);
    assert_eq!(pixel.len(), 1, "one pixel: {html}");
    assert!(
        tracked(&html).is_empty(),
        "links stay as written without track_clicks"
    );
    assert_eq!(
        pixels(&copy_to(&app, "reader1@example.com")),
        pixel,
        "it names nobody"
    );
    let text = app
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.to == vec!["reader0@example.com".to_owned()])
        .unwrap()
        .text();
    assert!(!text.contains("/o/"), "the text part has no pixel: {text}");

    for n in 1..=2 {
        let answer = app.get(&pixel[0]).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-type"], "image/gif");
        assert_eq!(answer.headers()["cache-control"], "no-store");
        assert!(answer.bytes().await.unwrap().starts_with(b"GIF89a"));
        assert_eq!(report(&app, &token, id).await["opens"], n);
    }
    // A changed token, a link's token and another key's token count nothing.
    let token_part = pixel[0].trim_start_matches("/o/");
    let (payload, tag) = token_part.split_once('.').unwrap();
    let click = fortnight::domain::token::Click {
        issue_id: id,
        reader: None,
        url: String::new(),
    };
    let open = fortnight::domain::token::Open {
        issue_id: id,
        reader: None,
    };
    for forged in [
        format!("/o/{payload}A.{tag}"),
        format!("/o/{}", app.link_key.click_token(&click)),
        format!(
            "/o/{}",
            fortnight::domain::token::LinkKey::generate().open_token(&open)
        ),
        "/o/x".to_owned(),
    ] {
        assert_eq!(app.get(&forged).await.status(), 404, "{forged}");
    }
    let r = report(&app, &token, id).await;
    assert_eq!(r["opens_tracked"], true);
    assert_eq!(r["opens"], 2);
    assert_eq!(r["readers_opened"], Value::Null);
    assert_eq!(r["clicks_tracked"], false);

    // The web version carries no pixel; the admin's report shows the count.
    let web = app
        .get(&format!("/archive/{slug}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!web.contains("/o/"), "{web}");
    app.sign_in().await;
    let page = app
        .get(&format!("/admin/issues/{id}/report"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<b id="r-opens">2</b>"#), "{page}");
}

async fn with_track_opens_and_track_readers_each_copy_has_its_own_pixel(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.track_opens = true;
        c.track_clicks = true;
        c.track_readers = true;
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("reader", 2).await;
    let (id, _) = send(&app, &token, "Opened by whom").await;
    let mine = copy_to(&app, "reader0@example.com");
    let theirs = copy_to(&app, "reader1@example.com");
    assert_eq!(tracked(&mine).len(), 3, "the links are still tracked");
    let (mine, theirs) = (pixels(&mine), pixels(&theirs));
    assert_eq!(mine.len(), 1);
    assert_ne!(mine, theirs, "each copy's pixel names its reader");
    for pixel in [&mine[0], &mine[0], &theirs[0]] {
        assert_eq!(app.get(pixel).await.status(), 200);
    }
    let r = report(&app, &token, id).await;
    assert_eq!(r["opens"], 3);
    assert_eq!(r["readers_opened"], 2);
    // The pixel is not a link: following a link still lands on its address.
    let first = tracked(&copy_to(&app, "reader0@example.com")).remove(1);
    let answer = app.get(&first).await;
    assert_eq!(answer.headers()["location"].as_bytes(), FIRST.as_bytes());
}

async fn a_flood_from_one_address_is_served_but_counted_only_to_its_limit(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.track_clicks = true;
        c.track_opens = true;
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    let (id, _) = send(&app, &token, "Flooded").await;
    let html = copy_to(&app, "reader0@example.com");
    let (link, pixel) = (tracked(&html).remove(1), pixels(&html).remove(0));
    let limit = fortnight::web::clicks::COUNTED_PER_MINUTE as usize;
    for n in 0..limit + 20 {
        let (path, want) = if n % 2 == 0 {
            (&link, 302)
        } else {
            (&pixel, 200)
        };
        assert_eq!(app.get(path).await.status(), want, "request {n} is served");
    }
    let r = report(&app, &token, id).await;
    let clicks = r["links"][0]["clicks"].as_i64().unwrap();
    let opens = r["opens"].as_i64().unwrap();
    assert_eq!(clicks + opens, limit as i64, "{r}");
}
