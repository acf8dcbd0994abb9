//! What operators run around the server: log lines for collectors.

use std::process::Command;

use crate::both_databases;
use crate::helpers::{Backend, TestDatabase};

both_databases!(log_format_json_writes_one_json_object_per_line,);

async fn log_format_json_writes_one_json_object_per_line(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_fortnight"))
            .arg("migrate")
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("FORTNIGHT_DATABASE_URL", database.url())
            .env("FORTNIGHT_LOG_FORMAT", format)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap()
    };
    let json = run("json");
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let lines: Vec<String> = String::from_utf8(json.stderr)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "debug logging says something");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["target"].is_string(), "{line}");
    }
    // The default stays readable lines.
    let text = run("text");
    assert!(text.status.success());
    let first = String::from_utf8(text.stderr).unwrap();
    let first = first.lines().next().unwrap_or_default().to_owned();
    assert!(
        serde_json::from_str::<serde_json::Value>(&first).is_err(),
        "{first}"
    );
    // A format it does not know is refused, naming the key.
    let bad = run("xml");
    assert!(!bad.status.success());
    let why = String::from_utf8_lossy(&bad.stderr).to_lowercase();
    assert!(why.contains("log_format") && why.contains("json"), "{why}");
}
