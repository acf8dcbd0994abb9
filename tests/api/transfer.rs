//! CSV import and export, in the admin and on the command line.

use fortnight::domain::SubscriberStatus;

use crate::both_databases;
use crate::helpers::{Backend, EDITOR_PASSWORD, TestApp, spawn_app};

both_databases!(
    an_import_reports_bad_rows_by_line_and_merges_duplicates,
    an_import_without_stated_consent_adds_pending_subscribers_and_confirms_them,
    a_malformed_file_imports_nothing_and_says_why,
    an_import_never_brings_back_someone_who_left,
    an_export_imports_back_into_the_same_list,
    the_command_line_adds_editors_and_imports_and_exports,
);

async fn upload(app: &TestApp, csv: &str, consented: bool) -> reqwest::Response {
    let csrf = app.csrf_from("/admin/import").await;
    let mut form = reqwest::multipart::Form::new().text("csrf", csrf).part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("list.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    if consented {
        form = form.text("consented", "yes");
    }
    app.client
        .post(format!("{}/admin/import", app.address))
        .multipart(form)
        .send()
        .await
        .unwrap()
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
    let response = upload(&app, csv, true).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
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
    let response = upload(&app, "email\nfay@example.com\ngil@example.com\n", false).await;
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("0 added as active, 2 added as pending")
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
        let response = upload(&app, csv, true).await;
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
}

async fn an_import_never_brings_back_someone_who_left(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_active("gone", 1).await;
    let id = app.subscriber("gone0@example.com").await.unwrap().id;
    fortnight::store::subscriber_admin::unsubscribe(&app.db, id, app.clock.now())
        .await
        .unwrap();
    app.sign_in().await;
    let page = upload(&app, "email,status\ngone0@example.com,active\n", true)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("1 duplicates merged"));
    assert_eq!(
        app.subscriber("gone0@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
    // And the other way: an opt-out in the file is applied to someone still on the list.
    app.seed_active("stays", 2).await;
    let page = upload(
        &app,
        "email,status\nstays0@example.com,unsubscribed\nstays1@example.com,bounced\n",
        true,
    )
    .await
    .text()
    .await
    .unwrap();
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
    let page = upload(&other, &csv, true).await.text().await.unwrap();
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
