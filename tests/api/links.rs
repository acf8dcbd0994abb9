//! The links inbox: links saved through the API and the admin, one entry per normalized
//! address, marked when they already went out; and the public page and feeds of every link
//! that went out in a published issue, never one from a draft or a scheduled issue.

use fortnight::domain::IssueStatus;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::delivery::wait_status;
use crate::helpers::{Backend, TestApp, spawn_app};

use actix_web::{App, HttpResponse, HttpServer, web};
use fortnight::inbox::fetch::{FetchError, PageFetcher};
use fortnight::outbox::webhooks::PublicOnly;

both_databases!(
    a_link_is_saved_once_whatever_form_its_address_takes,
    malformed_links_are_refused_and_change_nothing,
    a_saved_link_that_went_out_is_marked_with_its_issue,
    the_public_page_and_feeds_show_only_published_links,
    the_admin_saves_edits_and_deletes_links,
    a_link_saved_without_a_title_takes_its_pages,
    the_bookmarklet_form_works_with_the_session_and_its_csrf,
    draft_ahead_makes_one_draft_per_slot_with_three_instances_ticking,
    the_reminder_counts_the_waiting_links_and_the_editor_adds_them_with_one_click,
);

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn save(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.api(Method::POST, "/api/v1/links", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates an issue with `links` (title, url, source, note) and, when `send`, sends it to
/// the end; returns its id.
async fn issue(
    app: &TestApp,
    token: &str,
    subject: &str,
    links: &[(&str, &str, &str, &str)],
    send: bool,
) -> i64 {
    let links: Vec<Value> = links
        .iter()
        .map(|(title, url, source, note)| json!({"title": title, "url": url, "source": source, "note": note}))
        .collect();
    let created = app
        .api(Method::POST, "/api/v1/issues", token)
        .json(&json!({"subject": subject, "body": "Body.", "links": links}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = json_of(created).await["data"]["id"].as_i64().unwrap();
    if send {
        assert!(
            fortnight::store::issues::start_sending(&app.db, id, app.clock.now())
                .await
                .unwrap()
        );
        app.scheduler.handoff.issue_started(id);
        wait_status(app, id, IssueStatus::Sent, 30).await;
    }
    id
}

async fn a_link_is_saved_once_whatever_form_its_address_takes(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let first = save(
        &app,
        &token,
        json!({"url": "https://example.com/story?id=7&utm_source=twitter", "title": "A story", "note": "Read it"}),
    )
    .await;
    assert_eq!(first.status(), 201);
    let first = json_of(first).await["data"].clone();
    // The same link: host case, default port, fragment and click tags aside.
    let again = save(
        &app,
        &token,
        json!({"url": "HTTPS://Example.com:443/story?fbclid=x&id=7#comments", "source": "Example"}),
    )
    .await;
    assert_eq!(again.status(), 200, "a known address updates its entry");
    let again = json_of(again).await["data"].clone();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        again["title"], "A story",
        "a blank title keeps the saved one"
    );
    assert_eq!(again["note"], "Read it");
    assert_eq!(again["source"], "Example");
    assert_eq!(
        again["url"],
        "HTTPS://Example.com:443/story?fbclid=x&id=7#comments"
    );
    // Another link.
    let other = save(
        &app,
        &token,
        json!({"url": "https://example.com/story?id=8"}),
    )
    .await;
    assert_eq!(other.status(), 201);
    let other_id = json_of(other).await["data"]["id"].as_i64().unwrap();

    let list = json_of(
        app.api(Method::GET, "/api/v1/links?limit=1", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], other_id, "newest first");
    let next = list["next_before"].as_i64().unwrap();
    let rest = json_of(
        app.api(Method::GET, &format!("/api/v1/links?before={next}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest["data"][0]["id"], first["id"]);
    assert_eq!(rest["next_before"], Value::Null);

    // Moving one onto the other's address is refused; other changes land.
    let clash = app
        .api(Method::PATCH, &format!("/api/v1/links/{other_id}"), &token)
        .json(&json!({"url": "https://example.com/story?id=7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(clash.status(), 409);
    let changed = app
        .api(Method::PATCH, &format!("/api/v1/links/{other_id}"), &token)
        .json(&json!({"title": "Another story"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(json_of(changed).await["data"]["title"], "Another story");
    let deleted = app
        .api(Method::DELETE, &format!("/api/v1/links/{other_id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app
        .api(Method::GET, &format!("/api/v1/links/{other_id}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

async fn malformed_links_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let kept = save(
        &app,
        &token,
        json!({"url": "https://example.com/a", "title": "Kept"}),
    )
    .await;
    let id = json_of(kept).await["data"]["id"].as_i64().unwrap();
    for body in [
        json!({"url": "ftp://example.com/a"}),
        json!({"url": "example.com/a"}),
        json!({"url": "javascript:alert(1)"}),
        json!({"url": format!("https://example.com/{}", "a".repeat(2000))}),
        json!({"url": "https://example.com/b", "title": "two\nlines"}),
        json!({"url": "https://example.com/b", "note": "n".repeat(501)}),
        json!({"url": "https://example.com/b", "extra": 1}),
        json!({"title": "no address"}),
        json!([]),
    ] {
        let refused = save(&app, &token, body.clone()).await;
        assert_eq!(refused.status(), 400, "{body}");
    }
    for body in [
        json!({"url": null}),
        json!({"title": "bad\u{7}"}),
        json!({"url": "mailto:x@example.com"}),
    ] {
        let refused = app
            .api(Method::PATCH, &format!("/api/v1/links/{id}"), &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{body}");
    }
    let list = json_of(
        app.api(Method::GET, "/api/v1/links", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["title"], "Kept");
    assert_eq!(data[0]["url"], "https://example.com/a");
    for path in [
        "/api/v1/links/0",
        "/api/v1/links/x",
        "/api/v1/links?limit=0",
    ] {
        let refused = app.api(Method::GET, path, &token).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{path}");
    }
}

async fn a_saved_link_that_went_out_is_marked_with_its_issue(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    let sent = issue(
        &app,
        &token,
        "Issue one",
        &[(
            "Freight",
            "https://example.com/freight?utm_medium=email",
            "Ledger",
            "",
        )],
        true,
    )
    .await;
    issue(
        &app,
        &token,
        "A draft",
        &[("Barley", "https://example.com/barley", "", "")],
        false,
    )
    .await;
    let freight =
        json_of(save(&app, &token, json!({"url": "https://EXAMPLE.com/freight"})).await).await;
    let marks = &freight["data"]["sent_in"];
    assert_eq!(marks.as_array().unwrap().len(), 1, "{freight}");
    assert_eq!(marks[0]["issue_id"], sent);
    assert_eq!(marks[0]["subject"], "Issue one");
    let barley =
        json_of(save(&app, &token, json!({"url": "https://example.com/barley"})).await).await;
    assert_eq!(barley["data"]["sent_in"], json!([]), "a draft is not sent");
    app.sign_in().await;
    let page = app.get("/admin/links").await.text().await.unwrap();
    assert!(page.contains("Already went out in"), "{page}");
    assert!(page.contains(&format!("/admin/issues/{sent}")));
}

async fn the_public_page_and_feeds_show_only_published_links(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("reader", 1).await;
    issue(
        &app,
        &token,
        "Older issue",
        &[(
            "Grain prices",
            "https://example.com/grain",
            "The Ledger",
            "Prices fell.",
        )],
        true,
    )
    .await;
    issue(
        &app,
        &token,
        "Newer issue",
        &[
            (
                "Freight rates",
                "https://example.com/freight",
                "Shipping Weekly",
                "Rates rose.",
            ),
            ("Rain", "https://example.com/rain", "The Ledger", ""),
        ],
        true,
    )
    .await;
    issue(
        &app,
        &token,
        "Draft",
        &[("Secret draft link", "https://example.com/draft", "", "")],
        false,
    )
    .await;
    let scheduled = issue(
        &app,
        &token,
        "Scheduled",
        &[("Secret scheduled link", "https://example.com/later", "", "")],
        false,
    )
    .await;
    let at = (app.clock.now() + chrono::Duration::days(3)).to_rfc3339();
    let put = app
        .api(
            Method::POST,
            &format!("/api/v1/issues/{scheduled}/schedule"),
            &token,
        )
        .json(&json!({ "at": at }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let page = app.get("/links").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for shown in [
        "Grain prices",
        "Freight rates",
        "Rain",
        "Prices fell.",
        "Newer issue",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    assert!(!page.contains("Secret"), "{page}");
    assert!(
        page.find("Freight rates").unwrap() < page.find("Grain prices").unwrap(),
        "newest first"
    );
    crate::helpers::assert_no_form_in_a_paragraph(&page, "/links");

    let found = app.get("/links?q=RATES").await.text().await.unwrap();
    assert!(found.contains("Freight rates") && !found.contains("Grain prices"));
    let ledger = app
        .get("/links?source=the+ledger")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        ledger.contains("Grain prices")
            && ledger.contains("Rain")
            && !ledger.contains("Freight rates")
    );
    let none = app
        .get("/links?q=nothing-like-this")
        .await
        .text()
        .await
        .unwrap();
    assert!(none.contains("No link matches"));
    assert_eq!(app.get("/links?q=%07").await.status(), 400);
    assert_eq!(app.get("/links?page=x").await.status(), 400);
    assert_eq!(
        app.get("/links?page=2").await.status(),
        404,
        "three links make one page"
    );

    let feed = app.get("/links.json").await;
    assert_eq!(feed.headers()["content-type"], "application/feed+json");
    let feed: Value = feed.json().await.unwrap();
    assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
    let items = feed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["url"], "https://example.com/freight");
    assert_eq!(items[0]["content_text"], "Rates rose.");
    assert_eq!(items[0]["tags"], json!(["Shipping Weekly"]));
    let ids: std::collections::HashSet<&str> =
        items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);

    let atom = app.get("/links.xml").await;
    assert_eq!(atom.headers()["content-type"], "application/atom+xml");
    let atom = feed_rs::parser::parse(atom.bytes().await.unwrap().as_ref()).unwrap();
    let titles: Vec<String> = atom
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(titles, ["Freight rates", "Rain", "Grain prices"]);
    assert_eq!(atom.entries[0].links[0].href, "https://example.com/freight");
}

async fn the_admin_saves_edits_and_deletes_links(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let empty = app.get("/admin/links").await.text().await.unwrap();
    assert!(empty.contains("No links saved yet"));
    let saved = app
        .admin_post(
            "/admin/links",
            &[
                ("url", "https://example.com/a?utm_source=x"),
                ("title", "First"),
                ("source", "Ex"),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let again = app
        .admin_post(
            "/admin/links",
            &[("url", "https://example.com/a"), ("note", "Worth it")],
        )
        .await;
    assert_eq!(again.status(), 303);
    let page = app.get("/admin/links").await.text().await.unwrap();
    assert!(page.contains("already saved; it is updated"), "{page}");
    let links = fortnight::store::saved_links::list(&app.db, None, 10)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].title.as_str(), links[0].note.as_str()),
        ("First", "Worth it")
    );
    for fields in [
        vec![("url", "not a link")],
        vec![("url", "https://example.com/b"), ("title", "x\u{1}")],
    ] {
        let refused = app.admin_post("/admin/links", &fields).await;
        assert_eq!(refused.status(), 400, "{fields:?}");
    }
    let id = links[0].id;
    let edited = app
        .admin_post(
            &format!("/admin/links/{id}"),
            &[
                ("url", "https://example.com/a"),
                ("title", "Renamed"),
                ("source", ""),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(edited.status(), 303);
    assert_eq!(
        fortnight::store::saved_links::get(&app.db, id)
            .await
            .unwrap()
            .unwrap()
            .title,
        "Renamed"
    );
    let unconfirmed = app
        .admin_post(&format!("/admin/links/{id}/delete"), &[])
        .await;
    assert_eq!(unconfirmed.status(), 400);
    let deleted = app
        .admin_post(&format!("/admin/links/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status(), 303);
    assert!(
        fortnight::store::saved_links::list(&app.db, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A web server on loopback with the pages the title reader meets: `/og`, `/plain`,
/// `/missing`, `/slow` (7 s), `/huge` (5 MB, its title after the first megabyte),
/// `/huge-titled` (5 MB, titled at the top), redirects to a private address, to FTP, and a
/// chain of `/hop/{n}`. Returns its base address.
fn page_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let hop_base = base.clone();
    let html = |body: String| {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body)
    };
    let server = HttpServer::new(move || {
        let hop_base = hop_base.clone();
        App::new()
            .route("/og", web::get().to(move || async move {
                html(r#"<html><head><title>Plain | Site</title><meta property="og:title" content="The real title"><meta property="og:site_name" content="The Ledger"></head><body>x</body></html>"#.into())
            }))
            .route("/plain", web::get().to(move || async move {
                html("<html><head><title>Grain &amp; freight</title></head></html>".into())
            }))
            .route("/missing", web::get().to(|| async { HttpResponse::NotFound().finish() }))
            .route("/slow", web::get().to(move || async move {
                tokio::time::sleep(std::time::Duration::from_secs(7)).await;
                html("<title>Too late</title>".into())
            }))
            .route("/huge", web::get().to(move || async move {
                let mut page = "<html><head>".to_owned();
                page.push_str(&"<!-- filler -->".repeat(5 * 1024 * 1024 / 15));
                page.push_str("<title>Past the first megabyte</title></head></html>");
                html(page)
            }))
            .route("/huge-titled", web::get().to(move || async move {
                let mut page = "<html><head><title>Titled at the top</title>".to_owned();
                page.push_str(&"<!-- filler -->".repeat(5 * 1024 * 1024 / 15));
                html(page)
            }))
            .route("/to-private", web::get().to(|| async {
                HttpResponse::Found().insert_header(("location", "http://10.1.2.3/secret")).finish()
            }))
            .route("/to-loopback", web::get().to(move |req: actix_web::HttpRequest| async move {
                let port = req.app_config().local_addr().port();
                HttpResponse::Found().insert_header(("location", format!("http://127.0.0.2:{port}/og"))).finish()
            }))
            .route("/to-ftp", web::get().to(|| async {
                HttpResponse::Found().insert_header(("location", "ftp://example.com/file")).finish()
            }))
            .route("/hop/{n}", web::get().to(move |n: web::Path<u32>| {
                let hop_base = hop_base.clone();
                async move {
                    let n = n.into_inner();
                    if n == 0 {
                        return html("<title>The end of the hops</title>".into());
                    }
                    HttpResponse::Found().insert_header(("location", format!("{hop_base}/hop/{}", n - 1))).finish()
                }
            }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    base
}

async fn a_link_saved_without_a_title_takes_its_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let base = page_server();
    let og = json_of(save(&app, &token, json!({"url": format!("{base}/og")})).await).await;
    assert_eq!(og["data"]["title"], "The real title");
    assert_eq!(og["data"]["source"], "The Ledger");
    assert_eq!(og.get("warning"), None);
    // The editor's own words stay when the link is saved again with only its address: the
    // page is not read again.
    let id = og["data"]["id"].as_i64().unwrap();
    let renamed = app
        .api(Method::PATCH, &format!("/api/v1/links/{id}"), &token)
        .json(&json!({"title": "My title", "source": "My source"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let again = save(&app, &token, json!({"url": format!("{base}/og#again")})).await;
    assert_eq!(again.status(), 200);
    let again = json_of(again).await;
    assert_eq!(again["data"]["title"], "My title");
    assert_eq!(again["data"]["source"], "My source");
    // A page that cannot be read: the API says why.
    let missing = json_of(
        save(
            &app,
            &token,
            json!({"url": format!("{base}/missing?api=1")}),
        )
        .await,
    )
    .await;
    assert_eq!(missing["data"]["title"], "");
    assert!(
        missing["warning"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    let plain = json_of(
        save(
            &app,
            &token,
            json!({"url": format!("{base}/plain"), "source": "Mine"}),
        )
        .await,
    )
    .await;
    assert_eq!(plain["data"]["title"], "Grain & freight");
    assert_eq!(plain["data"]["source"], "Mine", "a source given is kept");
    // A title given is kept, and the page is not read.
    let given = json_of(
        save(
            &app,
            &token,
            json!({"url": format!("{base}/slow"), "title": "As typed"}),
        )
        .await,
    )
    .await;
    assert_eq!(given["data"]["title"], "As typed");
    assert_eq!(
        given["data"]["source"], "127.0.0.1",
        "the host stands in for a source"
    );
    // A page that cannot be read leaves the title blank, and the admin says why.
    app.sign_in().await;
    let saved = app
        .admin_post(
            "/admin/links",
            &[("url", &format!("{base}/missing")), ("title", "")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let page = app.get("/admin/links").await.text().await.unwrap();
    assert!(page.contains("could not be read"), "{page}");
    assert!(page.contains("404"), "{page}");
}

/// A reader that lets the test server's own address through, and no other private one.
fn reader() -> PageFetcher {
    PageFetcher::with_rules(PublicOnly {
        allow_private: false,
        also: std::sync::Arc::new(["127.0.0.1".parse().unwrap()]),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reader_stops_at_5_seconds_1_megabyte_and_5_redirects_and_refuses_private_addresses()
 {
    let base = page_server();
    let reader = reader();
    let read = |path: &str| {
        let url: url::Url = format!("{base}{path}").parse().unwrap();
        let reader = reader.clone();
        async move { reader.facts(&url).await }
    };
    assert_eq!(
        read("/og").await.unwrap().title.as_deref(),
        Some("The real title")
    );
    // A 5 MB page is read to its first megabyte only.
    assert_eq!(read("/huge").await.unwrap().title, None);
    assert_eq!(
        read("/huge-titled").await.unwrap().title.as_deref(),
        Some("Titled at the top")
    );
    // A page slower than 5 seconds is given up.
    let started = std::time::Instant::now();
    let slow = read("/slow").await.unwrap_err();
    assert!(matches!(slow, FetchError::Failed(_)), "{slow}");
    assert!(slow.to_string().contains("5 seconds"), "{slow}");
    assert!(started.elapsed() < std::time::Duration::from_secs(7));
    // Redirects: five are followed, a sixth is not; none to a private address or another scheme.
    assert_eq!(
        read("/hop/5").await.unwrap().title.as_deref(),
        Some("The end of the hops")
    );
    assert!(read("/hop/6").await.is_err());
    for path in ["/to-private", "/to-loopback", "/to-ftp"] {
        let refused = read(path).await.unwrap_err();
        assert!(
            matches!(refused, FetchError::Refused(_)),
            "{path}: {refused}"
        );
    }
    // Without the exception, the loopback server itself is refused, by address and by name.
    let strict = PageFetcher::new(false).unwrap();
    let port = base.rsplit(':').next().unwrap();
    for url in [format!("{base}/og"), format!("http://localhost:{port}/og")] {
        let refused = strict.facts(&url.parse().unwrap()).await.unwrap_err();
        assert!(
            refused.to_string().contains("private or loopback"),
            "{url}: {refused}"
        );
    }
}

async fn the_bookmarklet_form_works_with_the_session_and_its_csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    let prefilled =
        "/admin/links/new?url=https%3A%2F%2Fexample.com%2Fa&title=A+title&note=Picked+text";
    // Signed out, the form sends the editor to sign in, and back to it, prefilled, after.
    let signed_out = app.get(prefilled).await;
    assert_eq!(signed_out.status(), 303);
    let to_login = signed_out.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        to_login,
        "/admin/login?next=%2Fadmin%2Flinks%2Fnew%3Furl%3Dhttps%253A%252F%252Fexample.com%252Fa%26title%3DA%2Btitle%26note%3DPicked%2Btext"
    );
    app.create_editor("editor@example.com").await;
    let csrf = app.csrf_from(&to_login).await;
    let signed_in = app
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("email", "editor@example.com"),
                ("password", crate::helpers::EDITOR_PASSWORD),
                ("next", prefilled),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], prefilled);
    // Sign-in never leads off the admin.
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/admin/../x",
        "/archive",
    ] {
        assert_eq!(fortnight::web::admin::after_login(evil), "/admin", "{evil}");
    }
    let page = app.get(prefilled).await.text().await.unwrap();
    assert!(page.contains(r#"value="https://example.com/a""#), "{page}");
    assert!(page.contains(r#"value="A title""#) && page.contains(r#"value="Picked text""#));
    crate::helpers::assert_no_form_in_a_paragraph(&page, prefilled);
    let csrf = app.csrf_from(prefilled).await;
    let fields = [
        ("url", "https://example.com/a"),
        ("title", "A title"),
        ("source", ""),
        ("note", "Picked text"),
        ("from", "popup"),
    ];
    // Without the session's token, or from another site, nothing is saved.
    assert_eq!(app.post_form("/admin/links", &fields).await.status(), 403);
    let mut with_token = vec![("csrf", csrf.as_str())];
    with_token.extend_from_slice(&fields);
    let cross = app
        .client
        .post(format!("{}/admin/links", app.address))
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(
        fortnight::store::saved_links::list(&app.db, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let saved = app.post_form("/admin/links", &with_token).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/admin/links/new?saved=1");
    let done = app
        .get("/admin/links/new?saved=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(done.contains("You can close this window"), "{done}");
    let links = fortnight::store::saved_links::list(&app.db, None, 10)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].title.as_str(), links[0].note.as_str()),
        ("A title", "Picked text")
    );

    // A phone's share sheet sends the address inside `text`.
    let shared = app
        .get("/admin/links/new?title=Rain&text=Worth+reading+https%3A%2F%2Fexample.com%2Frain")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        shared.contains(r#"value="https://example.com/rain""#),
        "{shared}"
    );
    assert!(shared.contains(r#"value="Worth reading""#), "{shared}");
    let manifest: Value = app
        .get("/admin/manifest.webmanifest")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["share_target"]["action"], "/admin/links/new");
    assert_eq!(manifest["share_target"]["params"]["url"], "url");
    let inbox = app.get("/admin/links").await.text().await.unwrap();
    let decoded = inbox
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&");
    assert!(
        decoded.contains(
            "href=\"javascript:(()=>{const e=encodeURIComponent;window.open(\"http://news.example.com/admin/links/new\"+'?url='+e(location.href)+'&title='+e(document.title)+'&note='+e(String(getSelection()))"
        ),
        "{inbox}"
    );
}

/// Thursday 1 October 2026, 12:00 UTC: the default cadence (every other Thursday at 08:00
/// UTC) has its next slot on Thursday 8 October.
fn october() -> chrono::DateTime<chrono::Utc> {
    "2026-10-01T12:00:00Z".parse().unwrap()
}

fn slot() -> chrono::DateTime<chrono::Utc> {
    "2026-10-08T08:00:00Z".parse().unwrap()
}

/// Another instance's scheduler: its own connections to the same database.
pub(crate) async fn other_scheduler(app: &TestApp) -> fortnight::schedule::Scheduler {
    let db = fortnight::store::Db::connect(
        &secrecy::SecretString::from(app.database_url.clone()),
        4,
        Default::default(),
    )
    .await
    .unwrap();
    fortnight::schedule::Scheduler {
        db,
        ..app.scheduler.clone()
    }
}

async fn draft_ahead_makes_one_draft_per_slot_with_three_instances_ticking(backend: Backend) {
    let app =
        crate::helpers::spawn_app_with(backend, fortnight::clock::Clock::fixed(october()), |c| {
            c.draft_ahead = std::time::Duration::from_secs(5 * 86_400)
        })
        .await;
    let token = app.api_token().await;
    for (url, title) in [
        ("https://example.com/first", "First saved"),
        ("https://example.com/second", ""),
        ("https://example.com/third", "Third saved"),
    ] {
        app.clock.advance(chrono::Duration::minutes(1));
        let saved = save(
            &app,
            &token,
            json!({"url": url, "title": title, "source": "Ex"}),
        )
        .await;
        assert_eq!(saved.status(), 201);
    }
    let three = [
        app.scheduler.clone(),
        other_scheduler(&app).await,
        other_scheduler(&app).await,
    ];
    let drafts = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            fortnight::store::issues::list(&db, Some(IssueStatus::Draft), None, 100)
                .await
                .unwrap()
        }
    };
    // Six days before the slot: too early.
    let early = slot() - chrono::Duration::days(6);
    for s in &three {
        assert!(s.run_due(early).await.unwrap().drafted.is_empty());
    }
    assert!(drafts(&app).await.is_empty());
    // Within five days, three instances ticking at once make one draft.
    let now = slot() - chrono::Duration::days(4);
    let (a, b, c) = tokio::join!(
        three[0].run_due(now),
        three[1].run_due(now),
        three[2].run_due(now)
    );
    let made: Vec<i64> = [a, b, c]
        .into_iter()
        .flat_map(|r| r.unwrap().drafted)
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let all = drafts(&app).await;
    assert_eq!(all.len(), 1);
    let draft = &all[0];
    assert_eq!(draft.subject, "The issue of Thu 8 Oct");
    assert_eq!(draft.body, "");
    let links: Vec<(&str, &str)> = draft
        .links
        .iter()
        .map(|l| (l.title.as_str(), l.url.as_str()))
        .collect();
    assert_eq!(
        links,
        [
            ("First saved", "https://example.com/first"),
            ("https://example.com/second", "https://example.com/second"),
            ("Third saved", "https://example.com/third"),
        ],
        "the inbox in the order saved"
    );
    // Later ticks make no other; a deleted draft is not made again.
    for s in &three {
        assert!(
            s.run_due(now + chrono::Duration::hours(1))
                .await
                .unwrap()
                .drafted
                .is_empty()
        );
    }
    fortnight::store::issues::delete_draft(&app.db, draft.id)
        .await
        .unwrap();
    assert!(
        app.scheduler
            .run_due(now + chrono::Duration::hours(2))
            .await
            .unwrap()
            .drafted
            .is_empty()
    );
    assert!(drafts(&app).await.is_empty());
}

async fn the_reminder_counts_the_waiting_links_and_the_editor_adds_them_with_one_click(
    backend: Backend,
) {
    let app =
        crate::helpers::spawn_app_with(backend, fortnight::clock::Clock::fixed(october()), |_| {})
            .await;
    let token = app.api_token().await;
    let mut saved = Vec::new();
    for url in ["https://example.com/one", "https://example.com/two"] {
        let link = json_of(save(&app, &token, json!({"url": url, "title": url})).await).await;
        saved.push(link["data"]["id"].as_i64().unwrap());
    }
    // The reminder, a day before the empty slot, says how many links wait.
    let now = slot() - chrono::Duration::hours(12);
    app.clock.advance(now - app.clock.now());
    let report = app.scheduler.run_due(now).await.unwrap();
    assert_eq!(report.reminded, vec![slot()]);
    let notice = app.wait_for_mail(1).await;
    assert_eq!(
        notice[0].header("Subject").as_deref(),
        Some("The issue for Thu 8 Oct has 2 links and no body yet")
    );
    assert!(
        notice[0].text().contains("/admin/links"),
        "{}",
        notice[0].text()
    );

    // On a draft, the editor's links table offers the waiting links; one click adds one.
    let id = issue(
        &app,
        &token,
        "Hand-made",
        &[("Already in", "https://example.com/one", "", "")],
        false,
    )
    .await;
    app.sign_in().await;
    let page = app
        .get(&format!("/admin/issues/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Waiting in the links inbox (1)"), "{page}");
    assert!(
        page.contains(&format!(r#"value="add-{}""#, saved[1])),
        "only the link not in it yet"
    );
    crate::helpers::assert_no_form_in_a_paragraph(&page, "issue editor");
    let added = app
        .admin_post(
            &format!("/admin/issues/{id}"),
            &[
                ("subject", "Hand-made"),
                ("body", "Body."),
                ("link_title", "Already in"),
                ("link_url", "https://example.com/one"),
                ("link_source", ""),
                ("link_note", ""),
                ("action", &format!("add-{}", saved[1])),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let issue = fortnight::store::issues::get(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    let urls: Vec<&str> = issue.links.iter().map(|l| l.url.as_str()).collect();
    assert_eq!(urls, ["https://example.com/one", "https://example.com/two"]);
    let page = app
        .get(&format!("/admin/issues/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Waiting in the links inbox"), "{page}");
    // A second click adds nothing more.
    let twice = app
        .admin_post(
            &format!("/admin/issues/{id}"),
            &[
                ("subject", "Hand-made"),
                ("body", "Body."),
                ("link_title", "Already in"),
                ("link_url", "https://example.com/one"),
                ("link_source", ""),
                ("link_note", ""),
                ("link_title", "https://example.com/two"),
                ("link_url", "https://example.com/two"),
                ("link_source", ""),
                ("link_note", ""),
                ("action", &format!("add-{}", saved[1])),
            ],
        )
        .await;
    assert_eq!(twice.status(), 303);
    let issue = fortnight::store::issues::get(&app.db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.links.len(), 2);
    let missing = app
        .admin_post(
            &format!("/admin/issues/{id}"),
            &[("subject", "Hand-made"), ("action", "add-999")],
        )
        .await;
    assert_eq!(missing.status(), 404);
}
