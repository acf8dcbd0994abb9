//! Input that must be refused, not stored: invalid UTF-8 anywhere, addresses with invisible or
//! direction-changing characters, and methods made up to grow the metrics.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::helpers::{Backend, TestApp, spawn_app};

both_databases!(
    invalid_utf8_is_refused_with_400_and_nothing_is_stored,
    invisible_and_bidirectional_characters_in_addresses_are_refused,
    an_internationalized_domain_is_one_reader_in_either_form,
    invented_methods_add_no_metric_series,
);

const HIDDEN: [char; 10] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{061C}',
    '\u{00AD}', '\u{FEFF}',
];

async fn form_post(app: &TestApp, path: &str, body: &'static [u8]) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn says(response: reqwest::Response, status: u16, content_type: &str, text: &str) {
    assert_eq!(response.status(), status);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with(content_type), "{kind}");
    let body = response.text().await.unwrap();
    assert!(body.contains(text), "expected {text:?} in {body}");
}

async fn invalid_utf8_is_refused_with_400_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    for body in [
        &b"email=utf8-%FF%FE%40example.org"[..],
        b"email=ada%40example.org&name=%C3",
        b"email=\xff\xfe@example.org",
        b"email=ada%40example.org&name=Zo\xe9",
    ] {
        says(
            form_post(&app, "/subscribe", body).await,
            400,
            "text/html",
            "UTF-8",
        )
        .await;
    }
    says(app.get("/archive/%FF").await, 400, "text/html", "UTF-8").await;
    says(app.get("/?ref=%C0%AF").await, 400, "text/html", "UTF-8").await;

    for path in ["/api/v1/subscribers?q=%FF", "/api/v1/issues?status=%FE"] {
        let response = app.api(Method::GET, path, &token).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_utf8", "{path}: {body}");
    }
    for (body, code) in [
        (
            &b"{\"email\":\"\xff@example.org\",\"consented\":true}"[..],
            "invalid_utf8",
        ),
        (
            b"{\"email\":\"ada\\udcff@example.org\",\"consented\":true}",
            "invalid_json",
        ),
    ] {
        let response = app
            .api(Method::POST, "/api/v1/subscribers", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // Without a token the API answers 401 before it reads the body at all.
    let anonymous = app
        .client
        .post(format!("{}/api/v1/subscribers", app.address))
        .header("content-type", "application/json")
        .body(&b"{\"email\":\"\xff@example.org\"}"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Nobody makes the server hold more of a body than the route takes.
    let big = format!("email=a%40example.org&name={}", "x".repeat(100_000));
    let refused = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    // The admin's forms pass through the same check.
    app.sign_in().await;
    let csrf = app.csrf_from("/admin").await;
    let response = app
        .client
        .post(format!("{}/admin/subscribers", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&email=x%FF%40example.org").into_bytes())
        .send()
        .await
        .unwrap();
    says(response, 400, "text/html", "UTF-8").await;

    assert_eq!(app.subscriber_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
}

async fn invisible_and_bidirectional_characters_in_addresses_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.sign_in().await;
    let mut csv = String::from("email,name\n");
    for (i, c) in HIDDEN.iter().enumerate() {
        let local = format!("re{c}ader{i}@example.org");
        let domain = format!("reader{i}@exa{c}mple.org");
        for address in [&local, &domain] {
            let response = app.post_subscribe(&[("email", address)]).await;
            says(
                response,
                400,
                "text/html",
                "invisible or direction-changing",
            )
            .await;
            let response = app
                .api(Method::POST, "/api/v1/subscribers", &token)
                .json(&json!({"email": address, "consented": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{address:?}");
            csv.push_str(&format!("{address},Hidden {i}\n"));
        }
    }
    csv.push_str("plain@example.org,Plain\n");
    let page = app.import_csv(&csv, true).await;
    assert!(page.contains("1 added as active"), "{page}");
    assert!(page.contains("20 invalid"), "{page}");
    for line in 2..=21 {
        assert!(
            page.contains(&format!(
                "<tr><td>{line}</td><td>email: That email address contains an invisible"
            )),
            "line {line}: {page}"
        );
    }
    assert_eq!(app.subscriber_count().await, 1);
    assert_eq!(app.outbox_count().await, 0);
}

async fn an_internationalized_domain_is_one_reader_in_either_form(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("ADA@Bücher.example").await;
    app.sign_up("ada@xn--bcher-kva.example").await;
    // Decomposed "é" (e + U+0301) is the composed one.
    app.sign_up("zoe\u{301}@example.org").await;
    app.sign_up("zoé@EXAMPLE.org").await;
    assert_eq!(app.subscriber_count().await, 2);
    let ada = app.subscriber("ada@bücher.example").await.unwrap();
    assert_eq!(ada.email.as_str(), "ADA@xn--bcher-kva.example");
    let mail = app.wait_for_mail(1).await;
    assert!(
        mail.iter()
            .any(|m| m.to.iter().any(|to| to == "ADA@xn--bcher-kva.example")),
        "the envelope carries the ASCII domain: {:?}",
        mail.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
}

/// Series of one metric family with their labels, values left out.
fn series(body: &str, family: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| l.starts_with(family))
        .filter_map(|l| l.rsplit_once(' ').map(|(labels, _)| labels.to_owned()))
        .collect()
}

async fn invented_methods_add_no_metric_series(backend: Backend) {
    let app = spawn_app(backend).await;
    let send = |method: String| {
        let client = app.client.clone();
        let url = format!("{}/archive", app.address);
        async move {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            client.request(method, url).send().await.map(|r| r.status())
        }
    };
    for i in 0..20 {
        send(format!("WARM{i}")).await.unwrap();
    }
    let before = app.get("/metrics").await.text().await.unwrap();
    let others = |body: &str| -> BTreeSet<String> {
        series(body, "fortnight_http_requests_total")
            .into_iter()
            .filter(|s| s.contains("method=\"other\""))
            .collect()
    };
    assert!(!others(&before).is_empty(), "{before}");

    let statuses: Vec<_> = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let long = if i % 1000 == 0 { 60_000 } else { 40 };
            send(format!("JUNK{i}{}", "X".repeat(long)))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let answered: Vec<_> = statuses.iter().filter_map(|s| s.as_ref().ok()).collect();
    assert!(answered.len() >= 9_900, "{} answered", answered.len());
    assert!(
        answered.iter().all(|s| s.is_client_error()),
        "an invented method gets a 4xx"
    );

    let after = app.get("/metrics").await.text().await.unwrap();
    assert!(!after.contains("JUNK"), "an invented method became a label");
    assert_eq!(others(&after), others(&before));
}
