//! Backups that are safe while the server runs: `fortnight backup` in the middle of a signup
//! flood and a send, `fortnight restore` into a fresh folder, and every row committed before
//! the backup began found there. On PostgreSQL the command shows the pg_dump line instead.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use fortnight::store::Db;
use secrecy::SecretString;

use crate::both_databases;
use crate::delivery::{start_send_of, wait_status};
use crate::helpers::{Backend, spawn_app_with};

both_databases!(
    a_backup_during_a_flood_of_1500_signups_and_a_send_to_1000_readers_holds_all_committed_before_it,
);

/// Runs the real `fortnight` with only `database_url` set, in an empty folder.
fn fortnight(args: &[&str], database_url: &str, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fortnight"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("FORTNIGHT_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn a_backup_during_a_flood_of_1500_signups_and_a_send_to_1000_readers_holds_all_committed_before_it(
    backend: Backend,
) {
    let app = spawn_app_with(backend, Clock::System, |c| c.send_rate_per_second = 0).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup.db");
    let file_arg = file.to_str().unwrap().to_owned();
    if backend == Backend::Postgres {
        let output = fortnight(&["backup", &file_arg], &app.database_url, work.path());
        assert!(!output.status.success());
        let text = said(&output);
        assert!(text.contains("pg_dump --format=custom --file="), "{text}");
        assert!(!file.exists());
        return;
    }
    let token = app.api_token().await;
    app.seed_active("reader", 1000).await;
    let send = start_send_of(&app, &token, "During the backup", "Body.").await;

    // A flood of signups, 16 at a time; each answered one is committed.
    let acknowledged: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let flood = {
        let (acknowledged, client, address) = (
            acknowledged.clone(),
            app.client.clone(),
            app.address.clone(),
        );
        tokio::spawn(async move {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    let (acknowledged, client, address, next) = (
                        acknowledged.clone(),
                        client.clone(),
                        address.clone(),
                        next.clone(),
                    );
                    tokio::spawn(async move {
                        loop {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if n >= 1500 {
                                return;
                            }
                            let email = format!("flood{n}@example.com");
                            let answer = client
                                .post(format!("{address}/subscribe"))
                                .form(&[("email", email.as_str()), ("name", "")])
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(answer.status(), 200);
                            acknowledged.lock().unwrap().push((email, Instant::now()));
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the flood did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // What was committed before the backup began.
    let began = Instant::now();
    let signed_up: HashSet<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(email, _)| email.clone())
        .collect();
    let sent_before: i64 = match &app.db {
        Db::Sqlite { read, .. } => {
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'")
                .fetch_one(read)
                .await
                .unwrap()
        }
        Db::Postgres(_) => unreachable!(),
    };
    let backup = {
        let (url, dir, file_arg) = (
            app.database_url.clone(),
            work.path().to_owned(),
            file_arg.clone(),
        );
        tokio::task::spawn_blocking(move || fortnight(&["backup", &file_arg], &url, &dir))
            .await
            .unwrap()
    };
    assert!(backup.status.success(), "{}", said(&backup));
    let during = acknowledged.lock().unwrap().len();
    flood.await.unwrap();
    wait_status(&app, send, IssueStatus::Sent, 60).await;
    assert!(
        during < 1500,
        "the backup ran while signups were still coming ({during} of 1500 answered by its end)"
    );

    // Restoring over the running server's database is refused.
    let busy = fortnight(&["restore", &file_arg], &app.database_url, work.path());
    assert!(!busy.status.success());
    assert!(said(&busy).contains("is using"), "{}", said(&busy));

    // Restored into a fresh folder, it holds everything committed before it began.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_url = format!("sqlite://{}", fresh.path().join("fortnight.db").display());
    let restored = fortnight(&["restore", &file_arg], &fresh_url, work.path());
    assert!(restored.status.success(), "{}", said(&restored));
    let db = Db::connect(&SecretString::from(fresh_url), 2, Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let Db::Sqlite { read, .. } = &db else {
        unreachable!()
    };
    let emails: HashSet<String> = sqlx::query_scalar("SELECT email FROM subscribers")
        .fetch_all(read)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<&String> = signed_up.difference(&emails).collect();
    assert!(
        missing.is_empty(),
        "{} signups answered before the backup began are missing",
        missing.len()
    );
    assert!(signed_up.len() >= 300);
    let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'")
        .fetch_one(read)
        .await
        .unwrap();
    assert!(
        sent >= sent_before,
        "{sent} sent copies, {sent_before} before the backup"
    );
    let readers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'active'")
            .fetch_one(read)
            .await
            .unwrap();
    assert_eq!(readers, 1000, "the seeded readers");
    // A backup refuses to overwrite a file.
    let again = fortnight(&["backup", &file_arg], &app.database_url, work.path());
    assert!(!again.status.success());
    assert!(said(&again).contains("exists already"), "{}", said(&again));
}
