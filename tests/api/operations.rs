//! What operators run around the server: log lines for collectors, the pre-flight check, and
//! the binary as the image ships it (stripped, unprivileged, its own health probe).

use std::process::Command;

use crate::both_databases;
use crate::helpers::{Backend, Running, SmtpCapture, SmtpScript, TestDatabase};

both_databases!(
    log_format_json_writes_one_json_object_per_line,
    check_reaches_the_database_and_the_mail_server_and_says_what_to_fix,
    the_stripped_binary_serves_health_as_an_unprivileged_user_from_an_empty_directory,
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

/// The user the image runs as is not root; here, when the tests run as root, `nobody`.
const UNPRIVILEGED: u32 = 65534;

/// The binary as the image build leaves it: copied, and split by `contrib/split-debuginfo`
/// (the same script the Dockerfile runs), into a folder anyone may read.
fn stripped_binary(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let binary = dir.join("fortnight");
    std::fs::copy(env!("CARGO_BIN_EXE_fortnight"), &binary).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/split-debuginfo");
    let split = Command::new("sh")
        .arg(script)
        .arg(&binary)
        .arg(dir.join("fortnight.debug"))
        .output()
        .unwrap();
    assert!(
        split.status.success(),
        "{}",
        String::from_utf8_lossy(&split.stderr)
    );
    let sections = Command::new("readelf")
        .args(["-S", "--wide"])
        .arg(&binary)
        .output()
        .unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(!sections.contains(".debug_line"), "no line tables left");
    assert!(
        !sections.contains(".debug_info"),
        "no debug information left"
    );
    assert!(
        sections.contains(".gnu_debuglink"),
        "it names its debug file"
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    binary
}

async fn the_stripped_binary_serves_health_as_an_unprivileged_user_from_an_empty_directory(
    backend: Backend,
) {
    use std::os::unix::fs::MetadataExt;
    let database = TestDatabase::create(backend).await;
    let bin_dir = tempfile::tempdir().unwrap();
    let binary = stripped_binary(bin_dir.path());
    // The working directory is empty, as the image's /data volume is at first, and owned by
    // the user; SQLite runs on its default database there.
    let work = tempfile::tempdir().unwrap();
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if as_root {
        std::os::unix::fs::chown(work.path(), Some(UNPRIVILEGED), Some(UNPRIVILEGED)).unwrap();
    }
    let command = |bind: std::net::SocketAddr, args: &[&str]| {
        let mut command = if as_root {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={UNPRIVILEGED}"))
                .arg(format!("--regid={UNPRIVILEGED}"))
                .args(["--clear-groups", "--"])
                .arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command
            .args(args)
            .current_dir(work.path())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("FORTNIGHT_BIND", bind.to_string())
            .env("RUST_LOG", "warn");
        if backend == Backend::Postgres {
            command.env("FORTNIGHT_DATABASE_URL", database.url());
        }
        command
    };
    let probe = |bind: std::net::SocketAddr, args: &[&str]| {
        let output = command(bind, args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };

    // A port free a moment ago may be taken by another test's server before this one binds
    // it: then the server exits, and it starts again on another.
    let mut attempts = 0;
    let (bind, mut server) = 'start: loop {
        attempts += 1;
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bind = free.local_addr().unwrap();
        drop(free);
        let mut server = Running(
            command(bind, &["serve"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut last = String::new();
        loop {
            if let Some(status) = server.0.try_wait().unwrap() {
                assert!(attempts < 3, "the server exited ({status}): {last}");
                continue 'start;
            }
            let (ok, text) = probe(bind, &["healthcheck"]);
            if ok {
                assert!(text.contains("\"status\":\"ok\""), "{text}");
                break 'start (bind, server);
            }
            last = text;
            assert!(
                std::time::Instant::now() < deadline,
                "no healthy answer within 60 s: {last}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let uid = std::fs::read_to_string(format!("/proc/{}/status", server.0.id()))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u32>()
        .unwrap();
    assert_ne!(uid, 0, "the server does not run as root");
    let health = reqwest::get(format!("http://{bind}/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    // `serve` runs a delivery worker too: its heartbeat is what `--worker` looks for. It
    // takes a moment to register after the server answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, text) = probe(bind, &["healthcheck", "--worker"]);
        if ok {
            assert!(text.contains("alive"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Stopped, both probes fail and say why.
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = server.0.wait().unwrap();
    assert!(status.success(), "a clean stop: {status}");
    let (ok, text) = probe(bind, &["healthcheck"]);
    assert!(!ok, "{text}");
    assert!(text.contains("no answer from"), "{text}");
    let (ok, text) = probe(bind, &["healthcheck", "--worker"]);
    assert!(!ok, "{text}");
    assert!(text.contains("no delivery worker"), "{text}");
}
