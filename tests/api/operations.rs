//! What operators run around the server: log lines for collectors.

use std::process::Command;

use crate::both_databases;
use crate::helpers::{Backend, SmtpCapture, SmtpScript, TestDatabase};

both_databases!(
    log_format_json_writes_one_json_object_per_line,
    check_reaches_the_database_and_the_mail_server_and_says_what_to_fix,
);

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

async fn check_reaches_the_database_and_the_mail_server_and_says_what_to_fix(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let smtp = SmtpCapture::start(SmtpScript::Accept);
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-secret-key-that-must-never-be-printed-0123456789-0123456789-0123";
    let check = |database_url: &str, smtp_url: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_fortnight"))
            .arg("check")
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("FORTNIGHT_DATABASE_URL", database_url)
            .env("FORTNIGHT_SMTP_URL", smtp_url)
            .env("FORTNIGHT_SECRET_KEY", secret)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, text) = check(
        &database.url(),
        &format!("smtp://127.0.0.1:{}", smtp.port()),
    );
    assert!(ok, "{text}");
    assert!(text.contains("check: ok"), "{text}");
    assert!(text.contains("answers"), "{text}");
    assert!(text.contains("migrations: "), "{text}");
    assert!(
        text.contains(&format!("mail: SMTP 127.0.0.1:{}", smtp.port())),
        "{text}"
    );
    assert!(text.contains("time zones: "), "{text}");
    assert!(!text.contains(secret), "the secret key is never printed");
    assert!(smtp.messages().is_empty(), "no mail is sent");

    // A mail server that is not there, and a password in its URL that is not printed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (ok, text) = check(
        &database.url(),
        &format!("smtp://mailer:hunter2-password@127.0.0.1:{port}?tls=required"),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("fix: mail:") && text.contains("smtp_url"),
        "{text}"
    );
    assert!(!text.contains("hunter2-password"), "{text}");

    // A database that is not there.
    let missing = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}/no/such/folder/fortnight.db",
            dir.path().display()
        ),
        Backend::Postgres => "postgres://postgres@127.0.0.1:1/nothing".to_owned(),
    };
    let (ok, text) = check(&missing, &format!("smtp://127.0.0.1:{}", smtp.port()));
    assert!(!ok, "{text}");
    assert!(
        text.contains("fix: database:") && text.contains("database_url"),
        "{text}"
    );
}
