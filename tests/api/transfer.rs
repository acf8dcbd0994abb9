//! CSV import and export, in the admin and on the command line.

use std::time::Duration;

use fortnight::clock::Clock;
use fortnight::domain::{ImportState, SubscriberStatus};
use fortnight::store::import_jobs;
use fortnight::transfer::{Importer, Outcome, store_file};
use tokio_util::sync::CancellationToken;

use crate::both_databases;
use crate::helpers::{Backend, EDITOR_PASSWORD, spawn_app, spawn_app_with};

both_databases!(
    an_import_reports_bad_rows_by_line_and_merges_duplicates,
    an_import_without_stated_consent_adds_pending_subscribers_and_confirms_them,
    a_malformed_file_imports_nothing_and_says_why,
    an_import_never_brings_back_someone_who_left,
    an_export_imports_back_into_the_same_list,
    the_command_line_adds_editors_and_imports_and_exports,
    an_import_job_shows_its_progress_and_its_first_thousand_problems,
    an_import_of_150_000_rows_killed_mid_way_resumes_and_counts_each_row_once,
    two_runners_never_run_one_import_twice,
);

/// A file of `n` rows where every 97th address is invalid.
fn big_csv(n: usize) -> String {
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        if i % 97 == 0 {
            csv.push_str(&format!("broken{i},Nobody\n"));
        } else {
            csv.push_str(&format!("bulk{i}@example.com,Reader {i}\n"));
        }
    }
    csv
}

fn invalid_in(n: usize) -> i64 {
    (0..n).filter(|i| i % 97 == 0).count() as i64
}

async fn an_import_reports_bad_rows_by_line_and_merges_duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("old", 1).await;
    app.sign_in().await;
    let csv = "Email,Name,Status,Created\n\
               ada@example.com,Ada,active,2024-05-01\n\
               not-an-email,Bad,active,\n\
               ADA@example.com,Ada again,active,\n\
               old0@example.com,Existing,active,\n\
               bo@example.com,Bo,weird,\n\
               cy@example.com,Cy,unsubscribed,\n\
               di@example.com,Di,active,yesterday\n\
               ed@example.com,Ed,,\n";
    let page = app.import_csv(csv, true).await;
    assert!(
        page.contains("8 rows read: 2 added as active, 0 added as pending"),
        "{page}"
    );
    assert!(
        page.contains("1 added as unsubscribed or bounced, 2 duplicates merged, 3 invalid"),
        "{page}"
    );
    for (line, why) in [(3, "email:"), (6, "status:"), (8, "created:")] {
        assert!(
            page.contains(&format!("<tr><td>{line}</td><td>{why}")),
            "line {line}: {page}"
        );
    }
    let ada = app.subscriber("ada@example.com").await.unwrap();
    assert_eq!(
        (ada.status, ada.name.as_deref(), ada.consent_source.as_str()),
        (SubscriberStatus::Active, Some("Ada"), "import")
    );
    assert_eq!(ada.created_at.format("%Y-%m-%d").to_string(), "2024-05-01");
    assert_eq!(
        app.subscriber("old0@example.com")
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Reader 0"),
        "existing rows untouched"
    );
    assert_eq!(
        app.subscriber("cy@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(app.subscriber_count().await, 4);
    assert_eq!(
        app.outbox_count().await,
        0,
        "stated consent: nobody is mailed"
    );
}

async fn an_import_without_stated_consent_adds_pending_subscribers_and_confirms_them(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let page = app
        .import_csv("email\nfay@example.com\ngil@example.com\n", false)
        .await;
    assert!(
        page.contains("0 added as active, 2 added as pending"),
        "{page}"
    );
    assert_eq!(
        app.subscriber("fay@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
    let mail = app.wait_for_mail(2).await;
    let mut to: Vec<String> = mail.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, vec!["fay@example.com", "gil@example.com"]);
}

async fn a_malformed_file_imports_nothing_and_says_why(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    for csv in ["name,status\nAda,active\n", "", "\u{0}\u{1}binary\u{ff}"] {
        let response = app.upload_csv(csv, true).await;
        assert_eq!(response.status(), 400, "{csv:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Nothing was imported"),
            "{csv:?}"
        );
    }
    let no_file = app
        .admin_post("/admin/import", &[("consented", "yes")])
        .await;
    assert!(no_file.status().is_client_error());
    assert_eq!(app.subscriber_count().await, 0);
    assert!(
        import_jobs::recent(&app.db, 10).await.unwrap().is_empty(),
        "a refused file leaves no job behind"
    );
}

async fn an_import_never_brings_back_someone_who_left(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("gone", 1).await;
    let id = app.subscriber("gone0@example.com").await.unwrap().id;
    fortnight::store::subscriber_admin::unsubscribe(&app.db, id, app.clock.now())
        .await
        .unwrap();
    app.sign_in().await;
    let page = app
        .import_csv("email,status\ngone0@example.com,active\n", true)
        .await;
    assert!(page.contains("1 duplicates merged"));
    assert_eq!(
        app.subscriber("gone0@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
    // And the other way: an opt-out in the file is applied to someone still on the list.
    app.seed_active("stays", 2).await;
    let page = app
        .import_csv(
            "email,status\nstays0@example.com,unsubscribed\nstays1@example.com,bounced\n",
            true,
        )
        .await;
    assert!(
        page.contains("2 subscribers already on the list were marked unsubscribed or bounced"),
        "{page}"
    );
    assert_eq!(
        app.subscriber("stays0@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(
        app.subscriber("stays1@example.com").await.unwrap().status,
        SubscriberStatus::Bounced
    );
}

async fn an_export_imports_back_into_the_same_list(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("trip", 30).await;
    let id = app.subscriber("trip3@example.com").await.unwrap().id;
    fortnight::store::subscriber_admin::unsubscribe(&app.db, id, app.clock.now())
        .await
        .unwrap();
    app.sign_in().await;
    let export = app.get("/admin/export").await;
    assert_eq!(export.status(), 200);
    assert!(
        export.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = export.text().await.unwrap();
    assert_eq!(csv.lines().count(), 31);
    assert!(csv.starts_with("email,name,status,created"));
    let active_only = app
        .get("/admin/export?status=active")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(active_only.lines().count(), 30);

    let other = spawn_app(backend).await;
    other.sign_in().await;
    let page = other.import_csv(&csv, true).await;
    assert!(page.contains("30 rows read: 29 added as active"), "{page}");
    assert_eq!(
        other.subscriber("trip3@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
    assert_eq!(
        other
            .subscriber("trip7@example.com")
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Reader 7")
    );
    let again = other.get("/admin/export").await.text().await.unwrap();
    let emails = |csv: &str| {
        let mut v: Vec<String> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        emails(&csv),
        emails(&again),
        "address, name and status survive the round trip"
    );
}

async fn the_command_line_adds_editors_and_imports_and_exports(backend: Backend) {
    let app = spawn_app(backend).await;
    let database_url = app.database_url.clone();
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fortnight"))
            .args(args)
            .env("FORTNIGHT_DATABASE_URL", &database_url)
            .env("RUST_LOG", "off")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run(
        &["editor", "add", "cli@example.com", "--password-stdin"],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let added = run(
        &["editor", "add", "cli@example.com", "--password-stdin"],
        &format!("{EDITOR_PASSWORD}\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(!String::from_utf8_lossy(&added.stdout).contains(EDITOR_PASSWORD));
    assert_eq!(
        app.post_login("cli@example.com", EDITOR_PASSWORD)
            .await
            .status(),
        303,
        "the new editor can sign in"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.csv");
    std::fs::write(
        &file,
        "email,name\nhal@example.com,Hal\nbad,x\nhal@example.com,Hal\n",
    )
    .unwrap();
    let imported = run(
        &[
            "subscribers",
            "import",
            file.to_str().unwrap(),
            "--consented",
        ],
        "",
    );
    let out = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success());
    assert!(
        out.contains("3 rows read: 1 added as active")
            && out.contains("1 duplicates merged, 1 invalid"),
        "{out}"
    );
    assert!(out.contains("line 3: email:"), "{out}");
    let exported = run(&["subscribers", "export", "--status", "active"], "");
    let out = String::from_utf8_lossy(&exported.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(String::from_utf8_lossy(&exported.stderr).contains("1 subscribers exported"));
    assert!(out.contains("hal@example.com,Hal,active"));
    let missing = run(&["subscribers", "import", "/no/such/file.csv"], "");
    assert!(!missing.status.success());
}

async fn an_import_job_shows_its_progress_and_its_first_thousand_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in().await;
    let n = 120_000;
    let page = app.import_csv(&big_csv(n), true).await;
    let invalid = invalid_in(n);
    assert!(
        page.contains(&format!(
            "{n} rows read: {} added as active",
            n as i64 - invalid
        )),
        "{page}"
    );
    assert!(page.contains(&format!(", {invalid} invalid")), "{page}");
    // The first thousand problems are listed, by line, once each; the rest are counted.
    let listed = page.matches("email: ").count();
    assert_eq!(listed, 1000, "{page}");
    assert!(page.contains(&format!("… and {} more.", invalid - 1000)));
    assert!(
        page.contains("<tr><td>2</td><td>email:"),
        "line 2 is the first row"
    );
    // The job's numbers as the page's script reads them.
    let id = import_jobs::recent(&app.db, 1).await.unwrap()[0].id;
    let json: serde_json::Value = app
        .get(&format!("/admin/import/{id}.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["job"]["state"], "done");
    assert_eq!(json["job"]["rows_read"], n as i64);
    assert_eq!(json["percent"], 100);
    // The form lists the job.
    let form = app.get("/admin/import").await.text().await.unwrap();
    assert!(
        form.contains(&format!("href=\"/admin/import/{id}\">list.csv</a>")),
        "{form}"
    );
    assert_eq!(app.get("/admin/import/999999").await.status(), 404);
    assert_eq!(app.get("/admin/import/nope.json").await.status(), 404);
}

async fn an_import_of_150_000_rows_killed_mid_way_resumes_and_counts_each_row_once(
    backend: Backend,
) {
    // A short lease, so the server takes the dead command's job over quickly.
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.delivery_lease = Duration::from_secs(1);
    })
    .await;
    let n = 150_000;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");
    std::fs::write(&file, big_csv(n)).unwrap();
    let mut child = crate::helpers::Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_fortnight"))
            .args([
                "subscribers",
                "import",
                file.to_str().unwrap(),
                "--consented",
            ])
            .env("FORTNIGHT_DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "off")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Kill it (SIGKILL: no chance to let go) once some batches, but not all, are committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let job = import_jobs::recent(&app.db, 1).await.unwrap().pop();
        if let Some(job) = job.filter(|j| j.rows_read > 0) {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
            break import_jobs::get(&app.db, job.id).await.unwrap().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        at_kill.state.is_open() && at_kill.rows_read < n as i64,
        "the command finished before it was killed: {at_kill:?}"
    );
    // The server's runner takes the job over once the dead holder's lease lapses.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = import_jobs::get(&app.db, at_kill.id)
            .await
            .unwrap()
            .unwrap();
        if !job.state.is_open() {
            break job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not resumed: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let invalid = invalid_in(n);
    assert_eq!(job.state, ImportState::Done);
    assert_eq!(
        (job.rows_read, job.added_active, job.invalid, job.duplicates),
        (n as i64, n as i64 - invalid, invalid, 0),
        "every row counted once across the kill"
    );
    assert_eq!(app.subscriber_count().await, n as i64 - invalid);
    let problems = import_jobs::problems(&app.db, job.id).await.unwrap();
    assert_eq!(problems.len(), 1000);
    assert_eq!(problems[0].line, 2);
    assert_eq!(
        import_jobs::chunk(&app.db, job.id, 0).await.unwrap(),
        None,
        "a finished job's file is dropped"
    );
}

async fn two_runners_never_run_one_import_twice(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        // Only the two runners below take the job.
        c.delivery_lease = Duration::from_secs(30);
    })
    .await;
    let n = 20_000;
    let csv = big_csv(n);
    // Two runners of their own race for it (the app's own sleeps: it is not woken).
    let runner = || {
        Importer::new(
            app.db.clone(),
            Clock::System,
            Duration::from_secs(30),
            std::sync::Arc::new(tokio::sync::Notify::new()),
        )
    };
    let (a, b) = (runner(), runner());
    let id = store_file(
        &app.db,
        std::io::Cursor::new(csv.into_bytes()),
        "race.csv",
        0,
        true,
        app.clock.now(),
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let (ra, rb) = tokio::join!(
        a.run_next(Some(id), &stop, &|_| {}),
        b.run_next(Some(id), &stop, &|_| {})
    );
    let ran: Vec<Outcome> = [ra.unwrap(), rb.unwrap()]
        .into_iter()
        .flatten()
        .map(|(_, outcome)| outcome)
        .collect();
    // One took it and finished; the other found nothing to take (unless the app's own runner
    // woke first, in which case neither did and the job is finished all the same).
    assert!(ran.len() <= 1, "{ran:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = import_jobs::get(&app.db, id).await.unwrap().unwrap();
        if !job.state.is_open() {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let invalid = invalid_in(n);
    assert_eq!(
        (job.rows_read, job.added_active, job.invalid),
        (n as i64, n as i64 - invalid, invalid)
    );
    assert_eq!(app.subscriber_count().await, n as i64 - invalid);
}
