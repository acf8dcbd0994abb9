//! `fortnight serve` as a process: it serves, and on SIGTERM stops cleanly and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::both_databases;
use crate::helpers::{Backend, SmtpCapture, SmtpScript, TestDatabase};

both_databases!(sigterm_stops_the_server_cleanly);

async fn sigterm_stops_the_server_cleanly(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let smtp = SmtpCapture::start(SmtpScript::Accept);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fortnight"))
        .arg("serve")
        .env("FORTNIGHT_DATABASE_URL", database.url())
        .env("FORTNIGHT_BIND", "127.0.0.1:0")
        .env(
            "FORTNIGHT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.port()),
        )
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The log says which port port 0 became; the rest of the log is collected for the end.
    let stderr = child.stderr.take().unwrap();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = line
                .split("port=")
                .nth(1)
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                let _ = port_tx.send(port);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server reports its port");
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = log.join().unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(
        client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_err(),
        "no longer listening"
    );
}
