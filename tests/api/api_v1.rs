//! The JSON API: bearer tokens, subscribers, errors as JSON, and the OpenAPI document.

use fortnight::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_databases;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

both_databases!(
    every_api_route_refuses_a_missing_or_bad_token_with_401_json,
    a_revoked_token_is_refused_at_once,
    the_api_creates_lists_reads_updates_unsubscribes_and_erases,
    creating_without_consent_is_double_opt_in_under_the_signup_limit,
    bad_api_input_gets_a_json_4xx_and_changes_nothing,
    the_openapi_document_describes_exactly_the_routes,
);

fn method(m: &actix_web::http::Method) -> Method {
    Method::from_bytes(m.as_str().as_bytes()).unwrap()
}

async fn assert_json_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

async fn every_api_route_refuses_a_missing_or_bad_token_with_401_json(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("guarded", 1).await;
    let routes = fortnight::web::api::route_table();
    assert!(routes.len() >= 7, "{routes:?}");
    for (m, path) in &routes {
        let url = format!("{}{}", app.address, path.replace("{id}", "1"));
        for auth in [
            None,
            Some("Bearer nonsense"),
            Some("Bearer fnt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Some("Basic dXNlcjpwYXNz"),
        ] {
            let mut request = app
                .client
                .request(method(m), &url)
                .json(&json!({"email": "x@example.com", "consented": true}));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{m} {path}"
            );
            assert_json_error(response, 401, "unauthorized").await;
        }
    }
    assert_eq!(app.subscriber_count().await, 1);
}

async fn a_revoked_token_is_refused_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    assert_eq!(
        app.api(Method::GET, "/api/v1/subscribers", &token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.sign_in().await;
    let listed = app.get("/admin/tokens").await.text().await.unwrap();
    assert!(
        listed.contains(&token[..10]) && !listed.contains(&token),
        "only the prefix is ever shown again"
    );
    let id = fortnight::store::api_tokens::list(&app.db).await.unwrap()[0].id;
    assert_eq!(
        app.admin_post(&format!("/admin/tokens/{id}/revoke"), &[])
            .await
            .status(),
        303
    );
    assert_json_error(
        app.api(Method::GET, "/api/v1/subscribers", &token)
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;

    // A name with a control character is refused, not handed to the database.
    let refused = app
        .admin_post("/admin/tokens", &[("name", "zap\u{0}ier")])
        .await;
    assert_eq!(refused.status(), 400);
    // A token made in the admin is shown once (after a redirect, so a reload makes no other) and works.
    let made = app.admin_post("/admin/tokens", &[("name", "zapier")]).await;
    assert_eq!(made.status(), 303);
    let page = app.get("/admin/tokens").await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    let start = html.find("<code id=\"new-token\">").unwrap() + 21;
    let fresh = html[start..].split('<').next().unwrap().to_owned();
    assert_eq!(
        app.api(Method::GET, "/api/v1/subscribers", &fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        !app.get("/admin/tokens")
            .await
            .text()
            .await
            .unwrap()
            .contains(&fresh)
    );
}

async fn the_api_creates_lists_reads_updates_unsubscribes_and_erases(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let created = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "Ada@Example.com", "name": "Ada", "consented": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let ada: Value = created.json().await.unwrap();
    assert_eq!(ada["data"]["status"], "active");
    assert_eq!(ada["data"]["consent_source"], "api");
    let id = ada["data"]["id"].as_i64().unwrap();
    let again = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "ada@example.com", "consented": true}))
        .send()
        .await
        .unwrap();
    assert_json_error(again, 409, "exists").await;

    app.seed_active("many", 5).await;
    let page: Value = app
        .api(Method::GET, "/api/v1/subscribers?limit=4", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    let next = page["next_before"].as_i64().unwrap();
    let rest: Value = app
        .api(
            Method::GET,
            &format!("/api/v1/subscribers?limit=4&before={next}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert!(rest["next_before"].is_null());
    let found: Value = app
        .api(
            Method::GET,
            "/api/v1/subscribers?q=ada&status=active",
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["data"][0]["email"], "Ada@example.com",
        "the domain is kept in lower case"
    );

    let renamed: Value = app
        .api(Method::PATCH, &format!("/api/v1/subscribers/{id}"), &token)
        .json(&json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["data"]["name"], "Ada Lovelace");
    let left: Value = app
        .api(
            Method::POST,
            &format!("/api/v1/subscribers/{id}/unsubscribe"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left["data"]["status"], "unsubscribed");
    let got: Value = app
        .api(Method::GET, &format!("/api/v1/subscribers/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got["data"]["unsubscribed_at"].is_string());
    assert_eq!(
        app.api(Method::DELETE, &format!("/api/v1/subscribers/{id}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_json_error(
        app.api(Method::GET, &format!("/api/v1/subscribers/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_json_error(
        app.api(Method::DELETE, &format!("/api/v1/subscribers/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

async fn creating_without_consent_is_double_opt_in_under_the_signup_limit(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.signup_rate_per_minute = 1;
        c.signup_burst = 2;
    })
    .await;
    let token = app.api_token().await;
    let pending = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "bea@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 202);
    let body: Value = pending.json().await.unwrap();
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(
        app.wait_for_mail(1).await[0].to,
        vec!["bea@example.com".to_owned()]
    );
    // The form and the API share the per-IP signup limit.
    assert_eq!(
        app.post_subscribe(&[("email", "form@example.com")])
            .await
            .status(),
        200
    );
    let limited = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .json(&json!({"email": "cid@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_json_error(limited, 429, "too_many_requests").await;
    assert!(app.subscriber("cid@example.com").await.is_none());
}

async fn bad_api_input_gets_a_json_4xx_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("stay", 1).await;
    let id = app.subscriber("stay0@example.com").await.unwrap().id;
    let post = |body: &str| {
        app.api(Method::POST, "/api/v1/subscribers", &token)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    assert_json_error(
        post(r#"{"email": "nope"}"#).send().await.unwrap(),
        400,
        "invalid_email",
    )
    .await;
    assert_json_error(
        post(r#"{"email": "a@example.com", "name": "<script>"}"#)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_name",
    )
    .await;
    assert_json_error(
        post(r#"{"email": "#).send().await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    assert_json_error(
        post(r#"{"name": "no email"}"#).send().await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    assert_json_error(
        post(&format!(
            r#"{{"email": "{}@example.com"}}"#,
            "a".repeat(20_000)
        ))
        .send()
        .await
        .unwrap(),
        413,
        "too_large",
    )
    .await;
    let form = app
        .api(Method::POST, "/api/v1/subscribers", &token)
        .form(&[("email", "a@example.com")])
        .send()
        .await
        .unwrap();
    assert_json_error(form, 415, "unsupported_media_type").await;
    assert_json_error(
        app.api(Method::GET, "/api/v1/subscribers/abc", &token)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_id",
    )
    .await;
    assert_json_error(
        app.api(Method::GET, "/api/v1/subscribers?limit=0", &token)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_limit",
    )
    .await;
    assert_json_error(
        app.api(Method::GET, "/api/v1/subscribers?status=gone", &token)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_status",
    )
    .await;
    assert_json_error(
        app.api(Method::GET, "/api/v1/subscribers?before=x", &token)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_query",
    )
    .await;
    assert_json_error(
        app.api(Method::GET, "/api/v1/nothing-here", &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let rename = app
        .api(Method::PATCH, &format!("/api/v1/subscribers/{id}"), &token)
        .json(&json!({"name": "x".repeat(101)}))
        .send()
        .await
        .unwrap();
    assert_json_error(rename, 400, "invalid_name").await;
    // An empty change changes nothing; `null` tags are not a list.
    let nothing = app
        .api(Method::PATCH, &format!("/api/v1/subscribers/{id}"), &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), 200);
    let null_tags = app
        .api(Method::PATCH, &format!("/api/v1/subscribers/{id}"), &token)
        .json(&json!({"tags": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(null_tags.status(), 400);
    let typo = app
        .api(Method::PATCH, &format!("/api/v1/subscribers/{id}"), &token)
        .json(&json!({"nmae": "x"}))
        .send()
        .await
        .unwrap();
    assert_json_error(typo, 400, "invalid_json").await;
    let kept = app.subscriber("stay0@example.com").await.unwrap();
    assert_eq!(kept.name.as_deref(), Some("Reader 0"));
    assert_eq!(app.subscriber_count().await, 1);
}

async fn the_openapi_document_describes_exactly_the_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let doc: Value = app
        .api(Method::GET, "/api/v1/openapi.json", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let mut routed: Vec<(String, String)> = fortnight::web::api::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let params = doc["paths"]["/api/v1/subscribers"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let mut names: Vec<(&str, &str)> = params
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("before", "query"),
            ("limit", "query"),
            ("q", "query"),
            ("status", "query"),
            ("tag", "query")
        ]
    );
}
