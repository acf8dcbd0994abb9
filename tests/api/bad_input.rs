//! Every bad request gets a clear 4xx page, never a 500, and leaves stored data as it was.

use fortnight::domain::SubscriberStatus;

use crate::both_databases;
use crate::helpers::{Backend, TestApp, link_path, spawn_app};

both_databases!(
    invalid_signup_fields_get_400_with_the_reason_and_the_input_kept,
    malformed_bodies_get_clear_4xx_pages,
    unknown_and_malformed_links_get_clear_4xx_pages,
    a_signup_posted_from_another_site_is_refused,
    unknown_paths_and_methods_get_html_pages,
    bad_requests_leave_an_existing_subscriber_untouched,
    api_bodies_that_are_not_objects_get_400,
);

/// Asserts an HTML error page with `status` that says `says`.
async fn assert_page(response: reqwest::Response, status: u16, says: &str) {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.contains(says), "expected {says:?} in:\n{body}");
}

async fn invalid_signup_fields_get_400_with_the_reason_and_the_input_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let long_email = format!("{}@example.com", "a".repeat(300));
    let long_name = "n".repeat(101);
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("name", "Ada")], "Please enter your email address."),
        (
            &[("email", ""), ("name", "Ada")],
            "Please enter your email address.",
        ),
        (
            &[("email", "not-an-address")],
            "does not look like an email address",
        ),
        (
            &[("email", "ada@localhost")],
            "does not look like an email address",
        ),
        (&[("email", &long_email)], "too long"),
        (
            &[("email", "ada@example.com"), ("name", &long_name)],
            "That name is too long",
        ),
    ];
    for (fields, says) in cases {
        let response = app.post_subscribe(fields).await;
        assert_page(response, 400, says).await;
    }
    let kept = app
        .post_subscribe(&[("email", "typo@@example.com"), ("name", "Ada <b>")])
        .await;
    let body = kept.text().await.unwrap();
    assert!(
        body.contains(r#"value="typo@@example.com""#),
        "the input is kept for correction"
    );
    assert!(!body.contains("<b>"), "echoed input is escaped");
    assert_eq!(app.subscriber_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
}

async fn malformed_bodies_get_clear_4xx_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/subscribe", app.address);
    let huge = format!("email=a%40example.com&name={}", "x".repeat(200_000));
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_page(response, 413, "too large").await;

    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_page(response, 415, "application/x-www-form-urlencoded").await;

    let response = app.client.post(&url).send().await.unwrap();
    assert_page(response, 415, "application/x-www-form-urlencoded").await;

    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=%ZZ%ZZ&name=%")
        .send()
        .await
        .unwrap();
    assert_page(response, 400, "").await;
    assert_eq!(app.subscriber_count().await, 0);
}

async fn unknown_and_malformed_links_get_clear_4xx_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let well_formed_unknown = "A".repeat(43);
    assert_page(
        app.get(&format!("/confirm/{well_formed_unknown}")).await,
        404,
        "not valid",
    )
    .await;
    assert_page(app.get("/confirm/not-a-token").await, 400, "malformed").await;
    assert_page(
        app.get(&format!("/confirm/{}", "x".repeat(5000))).await,
        400,
        "malformed",
    )
    .await;
    assert_page(app.get("/unsubscribe/garbage").await, 400, "malformed").await;
    assert_page(
        app.post_form("/unsubscribe/garbage", &[]).await,
        400,
        "malformed",
    )
    .await;
    // A real token of this installation with one byte of its signature changed.
    let forged = forge(&app);
    assert_page(
        app.get(&format!("/unsubscribe/{forged}")).await,
        400,
        "malformed",
    )
    .await;
    assert_page(
        app.post_form(&format!("/unsubscribe/{forged}"), &[]).await,
        400,
        "malformed",
    )
    .await;
}

async fn a_signup_posted_from_another_site_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("origin", "https://evil.example")
        .form(&[("email", "victim@example.com")])
        .send()
        .await
        .unwrap();
    assert_page(response, 403, "only accepted from this site").await;
    assert_eq!(app.subscriber_count().await, 0);

    // Browsers send an opaque origin when the referrer is withheld; they also say where from.
    let null_cross_site = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("origin", "null")
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "victim@example.com")])
        .send()
        .await
        .unwrap();
    assert_page(null_cross_site, 403, "only accepted from this site").await;
    assert_eq!(app.subscriber_count().await, 0);
    let null_same_origin = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", "own-form@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(null_same_origin.status(), 200);
    let own_host = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("origin", app.address.clone())
        .form(&[("email", "own-host@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        own_host.status(),
        200,
        "the site reached by its own host name"
    );

    let same_site = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("origin", "http://news.example.com")
        .form(&[("email", "reader@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), 200);
}

async fn unknown_paths_and_methods_get_html_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_page(app.get("/no/such/page").await, 404, "Page not found").await;
    let response = app
        .client
        .delete(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_page(response, 404, "nothing at this address").await;
    let response = app.get("/subscribe").await;
    assert_eq!(
        response.status(),
        303,
        "a reload of the answer page goes back to the form"
    );
}

async fn bad_requests_leave_an_existing_subscriber_untouched(backend: Backend) {
    let app = spawn_app(backend).await;
    confirmed_reader(&app, "hal@example.com").await;
    let before = app.subscriber("hal@example.com").await.unwrap();

    app.post_subscribe(&[("email", "HAL@example.com"), ("name", &"n".repeat(500))])
        .await;
    app.post_subscribe(&[("email", "hal@example.com"), ("website", "bot")])
        .await;
    app.get("/unsubscribe/garbage").await;
    app.post_form(&format!("/unsubscribe/{}", forge(&app)), &[])
        .await;

    let after = app.subscriber("hal@example.com").await.unwrap();
    assert_eq!(after.status, SubscriberStatus::Active);
    assert_eq!(after.name, before.name);
    assert_eq!(after.consent_at, before.consent_at);
    assert_eq!(app.subscriber_count().await, 1);
}

async fn confirmed_reader(app: &TestApp, email: &str) {
    app.sign_up(email).await;
    let mail = app.wait_for_mail(1).await;
    assert_eq!(
        app.get(&link_path(&mail[0].text(), "/confirm/"))
            .await
            .status(),
        200
    );
}

/// A token of this installation's shape and key whose signature has one byte changed.
fn forge(app: &TestApp) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let real = app.link_key.unsubscribe_token(&uuid::Uuid::new_v4());
    let mut bytes = URL_SAFE_NO_PAD.decode(real).unwrap();
    bytes[20] ^= 0x40;
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn api_bodies_that_are_not_objects_get_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let tag = app
        .api(reqwest::Method::POST, "/api/v1/tags", &token)
        .json(&serde_json::json!({"name": "Weekly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(tag.status(), 201);
    // serde would read `[]` as a struct whose fields all have defaults.
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/tags/1/subscribers"),
        (reqwest::Method::PATCH, "/api/v1/tags/1"),
        (reqwest::Method::POST, "/api/v1/tags"),
        (reqwest::Method::POST, "/api/v1/webhooks"),
        (reqwest::Method::PUT, "/api/v1/issues/1/segment"),
    ] {
        for body in ["[]", "[\"Weekly\"]", "7", "null", "\"x\""] {
            let refused = app
                .api(method.clone(), path, &token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), 400, "{method} {path} {body}");
            let answer: serde_json::Value = refused.json().await.unwrap();
            assert_eq!(
                answer["error"]["code"], "invalid_json",
                "{method} {path} {body}"
            );
        }
    }
}
