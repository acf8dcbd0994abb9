//! The API's contract: every status a route answers is in the OpenAPI document, a method a
//! path does not take is answered 405 with `Allow`, what a `POST` creates links to the
//! operations on it, and a token can be made without the admin.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::both_databases;
use crate::helpers::{Backend, TestApp, spawn_app};

both_databases!(
    every_status_a_route_answers_is_in_the_document,
    a_method_a_path_does_not_take_is_answered_405_with_allow,
    a_search_with_a_control_character_is_refused,
    the_command_line_creates_a_token_shown_once,
    what_a_post_creates_links_to_the_operations_on_it,
);

/// A path from the route table with its parameters filled in.
fn concrete(path: &str, id: &str, at: &str) -> String {
    path.replace("{id}", id).replace("{at}", at)
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    app.api(Method::GET, path, token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The statuses the document lists for one operation.
fn documented(doc: &Value, method: &Method, path: &str) -> BTreeSet<u16> {
    let operation = &doc["paths"][path][method.as_str().to_lowercase()];
    operation["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not in the document"))
        .keys()
        .map(|status| status.parse().unwrap())
        .collect()
}

async fn every_status_a_route_answers_is_in_the_document(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let doc = get_json(&app, "/api/v1/openapi.json", &token).await;
    for (m, path) in fortnight::web::api::route_table() {
        let method = Method::from_bytes(m.as_str().as_bytes()).unwrap();
        let listed = documented(&doc, &method, &path);
        let operation = &doc["paths"][&path][method.as_str().to_lowercase()];
        let mut probes = vec![(
            "no token",
            app.client
                .request(method.clone(), format!("{}{}", app.address, path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        )];
        // An id or instant that no parser takes.
        for bad in ["0", "abc", "9223372036854775808"] {
            if path.contains('{') {
                let url = concrete(&path, bad, bad);
                let status = app.api(method.clone(), &url, &token).send().await.unwrap();
                probes.push(("a bad path parameter", status.status().as_u16()));
            }
        }
        // Well-formed parameters, a token, and a body without a content type.
        let url = concrete(&path, "999999", "2000-01-06T08:00:00Z");
        let bare = app
            .api(method.clone(), &url, &token)
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        probes.push(("a body without a content type", bare));
        assert_eq!(
            bare == 415,
            operation["requestBody"].is_object(),
            "{method} {path}: 415 for a body without a content type exactly when the document \
             says the operation takes one"
        );
        for (probe, status) in probes {
            assert!(
                listed.contains(&status),
                "{method} {path} answered {status} to {probe}; the document lists {listed:?}"
            );
        }
    }
}

async fn a_method_a_path_does_not_take_is_answered_405_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let routes = fortnight::web::api::route_table();
    let paths: BTreeSet<&String> = routes.iter().map(|(_, p)| p).collect();
    for path in paths {
        let taken: BTreeSet<String> = routes
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.to_string())
            .collect();
        let url = concrete(path, "1", "2030-01-03T08:00:00Z");
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            if taken.contains(method.as_str()) {
                continue;
            }
            let response = app.api(method.clone(), &url, &token).send().await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            let allow: BTreeSet<String> = response.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, taken, "Allow of {method} {path}");
            if method != Method::HEAD {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
            }
        }
    }
    // A path that is not the API's at all is still 404.
    let nowhere = app
        .api(Method::PUT, "/api/v1/nowhere", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
}

async fn a_search_with_a_control_character_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    app.seed_active("find", 1).await;
    for q in ["%00", "find%00", "a%0Ab", "%7F"] {
        let response = app
            .api(Method::GET, &format!("/api/v1/subscribers?q={q}"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "q={q}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    }
    let found = get_json(&app, "/api/v1/subscribers?q=find", &token).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
}

async fn the_command_line_creates_a_token_shown_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let create = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortnight"))
            .args(["token", "create", name])
            .env("FORTNIGHT_DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let refused = create("  ");
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("1 to 100 characters"));
    assert!(
        fortnight::store::api_tokens::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );

    let made = create("deploy");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let stdout = String::from_utf8(made.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(
        stdout,
        format!("{token}\n"),
        "standard output is the token alone"
    );
    assert!(token.starts_with("fnt_"));
    let stored = fortnight::store::api_tokens::list(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "deploy");
    assert!(token.starts_with(&stored[0].prefix) && stored[0].prefix.len() < token.len());
    assert_eq!(
        app.api(Method::GET, "/api/v1/subscribers", token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A second run makes a second, different token.
    let again = create("deploy");
    assert!(again.status.success());
    assert_ne!(String::from_utf8(again.stdout).unwrap().trim(), token);
}

/// The path and method an `operationRef` of the document points to.
fn operation_of(reference: &str) -> (String, String) {
    let pointer = reference
        .strip_prefix("#/paths/")
        .unwrap_or_else(|| panic!("{reference} is not a reference into the paths"));
    let (path, method) = pointer.rsplit_once('/').unwrap();
    let path = path
        .replace("%7B", "{")
        .replace("%7D", "}")
        .replace("~1", "/")
        .replace("~0", "~");
    (path, method.to_owned())
}

async fn what_a_post_creates_links_to_the_operations_on_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_token().await;
    let doc = get_json(&app, "/api/v1/openapi.json", &token).await;

    // Every link names an operation of the document, in OpenAPI's own spelling.
    let mut links = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let at = format!("{method} {path} {status} {name}");
                    assert!(
                        link.get("operation_ref").is_none() && link.get("operation_id").is_none(),
                        "{at}: {link}"
                    );
                    let (target, verb) = operation_of(link["operationRef"].as_str().unwrap());
                    assert!(
                        doc["paths"][&target][&verb].is_object(),
                        "{at}: {target} {verb}"
                    );
                    assert_eq!(link["parameters"]["id"], "$response.body#/data/id", "{at}");
                    // A link's name is a component name; its answer carries the `data.id`.
                    assert!(
                        name.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
                        "{at}"
                    );
                    let body = &response["content"]["application/json"]["schema"]["$ref"];
                    assert!(
                        body.as_str().is_some_and(|r| r.ends_with("Envelope")),
                        "{at}: {body}"
                    );
                }
            }
        }
    }
    let created = &doc["paths"]["/api/v1/issues"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        created["post.pause"]["operationRef"],
        "#/paths/~1api~1v1~1issues~1%7Bid%7D~1pause/post"
    );
    for collection in ["subscribers", "issues", "tags", "links", "webhooks"] {
        let path = format!("/api/v1/{collection}");
        let responses = doc["paths"][&path]["post"]["responses"]
            .as_object()
            .unwrap();
        assert!(
            responses
                .values()
                .any(|r| r["links"].as_object().is_some_and(|l| !l.is_empty())),
            "POST {path} links to the operations on {path}/{{id}}"
        );
    }
    assert!(links > 30, "{links} links");

    // Followed: the id a new issue's answer carries is the `{id}` of its paths.
    let response = app
        .api(Method::POST, "/api/v1/issues", &token)
        .json(&serde_json::json!({"subject": "Linked", "body": "Body."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let id = body.pointer("/data/id").unwrap().to_string();
    let (target, _) = operation_of(created["get"]["operationRef"].as_str().unwrap());
    let fetched = get_json(&app, &target.replace("{id}", &id), &token).await;
    assert_eq!(fetched["data"]["subject"], "Linked");
}
