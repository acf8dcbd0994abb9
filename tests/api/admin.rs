//! The editor's admin: sign-in, the guards in front of every route, and subscriber management.

use fortnight::clock::Clock;
use fortnight::domain::SubscriberStatus;

use crate::both_databases;
use crate::helpers::{Backend, EDITOR_PASSWORD, TestApp, spawn_app, spawn_app_with};

both_databases!(
    an_editor_signs_in_and_sees_the_dashboard,
    a_wrong_password_and_an_unknown_address_get_the_same_answer,
    sign_in_attempts_are_rate_limited,
    one_account_is_rate_limited_from_any_number_of_addresses,
    sessions_expire_and_signing_out_voids_copies_of_the_cookie,
    every_admin_route_sends_anonymous_visitors_to_sign_in,
    a_post_without_the_session_csrf_token_is_refused_and_changes_nothing,
    signing_out_or_losing_the_account_ends_the_session,
    the_editor_searches_filters_and_pages_through_subscribers,
    the_editor_adds_unsubscribes_and_erases_subscribers,
    the_session_cookie_is_secure_on_an_https_site,
);

async fn an_editor_signs_in_and_sees_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("dash", 3).await;
    app.create_editor("editor@example.com").await;
    let response = app.post_login("Editor@Example.com", EDITOR_PASSWORD).await;
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    let dashboard = app.get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    let body = dashboard.text().await.unwrap();
    assert!(body.contains("<span>Active</span><b>3</b>"), "{body}");
    assert!(body.contains("<svg"), "the growth chart");
    let editor = fortnight::store::editors::list(&app.db)
        .await
        .unwrap()
        .remove(0);
    assert!(editor.last_login_at.is_some());
}

async fn a_wrong_password_and_an_unknown_address_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_editor("editor@example.com").await;
    let wrong_password = app
        .post_login("editor@example.com", "not the password at all")
        .await;
    assert_eq!(wrong_password.status(), 401);
    let a = wrong_password.text().await.unwrap();
    let unknown = app.post_login("nobody@example.com", EDITOR_PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    let b = unknown.text().await.unwrap();
    // The pages differ only in the address echoed back and the CSRF token.
    let strip = |page: &str, email: &str| {
        let page = page.replace(email, "");
        let start = page.find(r#"name="csrf" value=""#).unwrap() + 26;
        let end = start + page[start..].find('"').unwrap();
        format!("{}{}", &page[..start], &page[end..])
    };
    assert_eq!(
        strip(&a, "editor@example.com"),
        strip(&b, "nobody@example.com")
    );
    assert!(a.contains("The email address or the password is not right."));
    assert_eq!(app.get("/admin").await.status(), 303, "still signed out");
}

async fn sign_in_attempts_are_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| c.login_rate_per_minute = 2).await;
    app.create_editor("editor@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            app.post_login("editor@example.com", "wrong password here")
                .await
                .status(),
            401
        );
    }
    let limited = app.post_login("editor@example.com", EDITOR_PASSWORD).await;
    assert_eq!(
        limited.status(),
        429,
        "even the right password waits once the limit is hit"
    );
    assert_eq!(app.get("/admin").await.status(), 303);
}

async fn every_admin_route_sends_anonymous_visitors_to_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("anon", 1).await;
    let routes = fortnight::web::admin::route_table();
    assert!(routes.len() >= 12, "{routes:?}");
    for (method, path) in routes {
        let path = path.replace("{id}", "1");
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{method} {path}");
        // A page asked for is where sign-in returns to; a post is not repeated.
        let back = if method == reqwest::Method::GET && path != "/admin" {
            let mut to = "/admin/login?next=".to_owned();
            to.extend(url::form_urlencoded::byte_serialize(path.as_bytes()));
            to
        } else {
            "/admin/login".to_owned()
        };
        assert_eq!(
            response.headers()["location"],
            back.as_str(),
            "{method} {path}"
        );
    }
    assert_eq!(
        app.subscriber_count().await,
        1,
        "no anonymous request changed anything"
    );
    assert_eq!(
        app.subscriber("anon0@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn a_post_without_the_session_csrf_token_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("keep", 1).await;
    app.sign_in().await;
    let id = app.subscriber("keep0@example.com").await.unwrap().id;
    let erase = format!("/admin/subscribers/{id}/erase");
    let csrf = app.csrf_from("/admin").await;
    let in_url = format!("{erase}?csrf={csrf}");
    for (path, fields) in [
        (&erase, vec![]),
        (&erase, vec![("csrf", "")]),
        (&erase, vec![("csrf", "forged-token")]),
        // The right token, but in the URL: only the form's hidden field counts.
        (&in_url, vec![]),
    ] {
        let response = app.post_form(path, &fields).await;
        assert_eq!(response.status(), 403, "{path} {fields:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("did not come from this site")
        );
    }
    // The right token from another site's page is refused too.
    let cross = app
        .client
        .post(format!("{}{erase}", app.address))
        .form(&[("csrf", &csrf)])
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let login_without_token = app
        .post_form(
            "/admin/login",
            &[
                ("email", "editor@example.com"),
                ("password", EDITOR_PASSWORD),
            ],
        )
        .await;
    assert_eq!(login_without_token.status(), 403);
    // The CSV upload: the token is its first field, and a forged or missing one imports nothing.
    for token in [None, Some("forged-token")] {
        let mut form = reqwest::multipart::Form::new();
        if let Some(token) = token {
            form = form.text("csrf", token);
        }
        let form = form.text("consented", "yes").part(
            "file",
            reqwest::multipart::Part::bytes(b"email\nforged@example.com\n".to_vec())
                .file_name("list.csv"),
        );
        let upload = app
            .client
            .post(format!("{}/admin/import", app.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 403, "{token:?}");
    }
    assert_eq!(app.subscriber_count().await, 1, "nothing was erased");
    let done = app.admin_post(&erase, &[("confirm", "yes")]).await;
    assert_eq!(done.status(), 303, "with the token it works");
    assert_eq!(app.subscriber_count().await, 0);
}

async fn signing_out_or_losing_the_account_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    assert_eq!(app.get("/admin").await.status(), 200);
    assert_eq!(app.admin_post("/admin/logout", &[]).await.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 303);

    let response = app.post_login("editor@example.com", EDITOR_PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 200);
    let email = fortnight::domain::SubscriberEmail::parse("editor@example.com").unwrap();
    assert!(
        fortnight::store::editors::remove(&app.db, &email)
            .await
            .unwrap()
    );
    assert_eq!(
        app.get("/admin").await.status(),
        303,
        "a removed editor's session ends"
    );
}

async fn the_editor_searches_filters_and_pages_through_subscribers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("page", 120).await;
    app.sign_in().await;
    let first = app.get("/admin/subscribers").await.text().await.unwrap();
    assert!(
        first.contains("page119@example.com") && !first.contains("page69@example.com"),
        "newest first, 50 a page"
    );
    assert!(
        first.contains("120 in all: 120 active, 0 pending"),
        "the list's total"
    );
    // A NUL in the search is refused with a page, not a database error (PostgreSQL text
    // cannot hold one).
    for bad in ["/admin/subscribers?q=%00", "/admin/export?q=a%01b"] {
        let refused = app.get(bad).await;
        assert_eq!(refused.status(), 400, "{bad}");
        assert!(refused.text().await.unwrap().contains("control character"));
    }
    let older = first
        .split("/admin/subscribers?")
        .find(|s| s.contains("before="))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = app
        .get(&format!("/admin/subscribers?{older}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(second.contains("page69@example.com") && !second.contains("page119@example.com"));
    assert!(second.contains("Newer"), "a way back");

    let found = app
        .get("/admin/subscribers?q=PAGE7")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        found.contains("page7@example.com")
            && found.contains("page77@example.com")
            && !found.contains("page8@example.com")
    );
    let by_name = app
        .get("/admin/subscribers?q=reader%2011")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_name.contains("page11@example.com") && by_name.contains("page110@example.com"));
    let wildcard = app
        .get("/admin/subscribers?q=%25")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        wildcard.contains("No subscribers match"),
        "LIKE wildcards are taken literally"
    );
    let pending = app
        .get("/admin/subscribers?status=pending")
        .await
        .text()
        .await
        .unwrap();
    assert!(pending.contains("No subscribers match"));
    assert_eq!(
        app.get("/admin/subscribers?status=nonsense").await.status(),
        400
    );
    assert_eq!(app.get("/admin/subscribers?before=abc").await.status(), 400);
}

async fn the_editor_adds_unsubscribes_and_erases_subscribers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let added = app
        .admin_post(
            "/admin/subscribers",
            &[
                ("email", "ann@example.com"),
                ("name", "Ann"),
                ("consented", "yes"),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let ann = app.subscriber("ann@example.com").await.unwrap();
    assert_eq!(
        (ann.status, ann.consent_source.as_str()),
        (SubscriberStatus::Active, "admin")
    );
    let page = app
        .get(&format!("/admin/subscribers/{}", ann.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("was added as active") && page.contains("via admin"),
        "flash and history"
    );

    app.admin_post(
        "/admin/subscribers",
        &[("email", "ben@example.com"), ("name", "")],
    )
    .await;
    assert_eq!(
        app.subscriber("ben@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
    assert_eq!(
        app.wait_for_mail(1).await[0].to,
        vec!["ben@example.com".to_owned()],
        "a confirmation goes out"
    );
    let bad = app
        .admin_post("/admin/subscribers", &[("email", "not an address")])
        .await;
    assert_eq!(bad.status(), 400);

    app.admin_post(&format!("/admin/subscribers/{}/unsubscribe", ann.id), &[])
        .await;
    assert_eq!(
        app.subscriber("ann@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );

    let ben = app.subscriber("ben@example.com").await.unwrap();
    let erase = format!("/admin/subscribers/{}/erase", ben.id);
    // Erasing cannot be undone: without the box ticked, nothing happens.
    let unconfirmed = app.admin_post(&erase, &[]).await;
    assert_eq!(unconfirmed.status(), 400);
    assert!(unconfirmed.text().await.unwrap().contains("tick the box"));
    assert!(app.subscriber("ben@example.com").await.is_some());
    let page = app
        .get(&format!("/admin/subscribers/{}", ben.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="confirm" value="yes" required"#),
        "{page}"
    );
    assert_eq!(
        app.admin_post(&erase, &[("confirm", "yes")]).await.status(),
        303
    );
    assert!(app.subscriber("ben@example.com").await.is_none());
    assert_eq!(
        count(&app, "confirmation_tokens").await + count(&app, "mail_outbox").await,
        0,
        "their tokens and mail went too"
    );
    assert_eq!(
        app.get(&format!("/admin/subscribers/{}", ben.id))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.admin_post("/admin/subscribers/999999/erase", &[("confirm", "yes")])
            .await
            .status(),
        404
    );
}

async fn the_session_cookie_is_secure_on_an_https_site(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.base_url = "https://news.example.com".parse().unwrap()
    })
    .await;
    let response = app.get("/admin/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn count(app: &TestApp, table: &'static str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    fortnight::with_pool!(&app.db, read, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .unwrap()
}

async fn one_account_is_rate_limited_from_any_number_of_addresses(backend: Backend) {
    // Behind a trusted proxy each attempt comes "from" another IP: only the per-account limit applies.
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.login_rate_per_minute = 2;
        c.trust_forwarded_for = true;
    })
    .await;
    app.create_editor("editor@example.com").await;
    app.create_editor("other@example.com").await;
    let attempt = |ip: u8, email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let csrf = app.csrf_from("/admin/login").await;
            app.client
                .post(format!("{}/admin/login", app.address))
                .header("x-forwarded-for", format!("198.51.100.{ip}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        attempt(1, "editor@example.com", "wrong password one").await,
        401
    );
    assert_eq!(
        attempt(2, "editor@example.com", "wrong password two").await,
        401
    );
    assert_eq!(attempt(3, "editor@example.com", EDITOR_PASSWORD).await, 429);
    assert_eq!(
        attempt(4, "other@example.com", EDITOR_PASSWORD).await,
        303,
        "other accounts are not held back"
    );
}

async fn sessions_expire_and_signing_out_voids_copies_of_the_cookie(backend: Backend) {
    let clock = Clock::fixed(chrono::Utc::now());
    let app = spawn_app_with(backend, clock.clone(), |c| {
        c.session_ttl = std::time::Duration::from_secs(3600)
    })
    .await;
    app.create_editor("editor@example.com").await;
    let login = app.post_login("editor@example.com", EDITOR_PASSWORD).await;
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let with_copy = || {
        thief
            .get(format!("{}/admin", app.address))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(
        with_copy().await.unwrap().status(),
        200,
        "the copy works while the session lives"
    );
    assert_eq!(app.admin_post("/admin/logout", &[]).await.status(), 303);
    assert_eq!(
        with_copy().await.unwrap().status(),
        303,
        "signing out voids every copy"
    );

    clock.advance(chrono::Duration::seconds(1));
    app.post_login("editor@example.com", EDITOR_PASSWORD).await;
    assert_eq!(app.get("/admin").await.status(), 200);
    clock.advance(chrono::Duration::minutes(61));
    assert_eq!(
        app.get("/admin").await.status(),
        303,
        "a session older than session_ttl is over"
    );
}
