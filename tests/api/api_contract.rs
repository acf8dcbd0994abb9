//! The API's contract: a token can be made without the admin.

use reqwest::Method;

use crate::both_databases;
use crate::helpers::{Backend, spawn_app};

both_databases!(the_command_line_creates_a_token_shown_once,);

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
