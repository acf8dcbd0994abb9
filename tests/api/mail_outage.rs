//! The confirmation email goes out through a durable queue: an SMTP outage delays it,
//! never loses it, and never slows the signup answer.

use fortnight::clock::Clock;
use fortnight::store::outbox;

use crate::both_databases;
use crate::helpers::{
    Backend, SmtpCapture, SmtpScript, TestDatabase, link_path, spawn_app_with, start, test_config,
};

both_databases!(
    a_signup_while_smtp_is_down_is_mailed_once_it_is_back,
    a_temporary_smtp_refusal_is_retried_until_accepted,
    a_permanent_smtp_refusal_fails_the_email_without_retrying,
    without_smtp_mail_is_written_to_the_outbox_folder,
);

async fn a_signup_while_smtp_is_down_is_mailed_once_it_is_back(backend: Backend) {
    // The server is down: every connection is closed before the greeting.
    let smtp = SmtpCapture::start(SmtpScript::Accept);
    smtp.set_offline(true);
    let database = TestDatabase::create(backend).await;
    let config = test_config(&database, smtp.port());
    let app = start(config, Clock::System, smtp, database).await;

    app.sign_up("ida@example.com").await;
    // The queue records failed tries while the server is away.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let failed_tries: Option<String> = last_error(&app.db).await;
        if failed_tries.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed try recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        outbox::counts(&app.db).await.unwrap().pending,
        1,
        "still queued, not lost"
    );

    app.smtp.set_offline(false);
    let back = &app.smtp;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while back.messages().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "mail never arrived after the server came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mail = back.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec!["ida@example.com".to_owned()]);
    assert_eq!(
        app.get(&link_path(&mail[0].text(), "/confirm/"))
            .await
            .status(),
        200
    );
    let counts = outbox::counts(&app.db).await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 0));
}

async fn a_temporary_smtp_refusal_is_retried_until_accepted(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |_| {}).await;
    app.smtp.set_script(SmtpScript::TemporaryFailure);
    app.sign_up("jo@example.com").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while last_error(&app.db).await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed try recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(last_error(&app.db).await.unwrap().contains("451"));
    app.smtp.set_script(SmtpScript::Accept);
    let mail = app.wait_for_mail(1).await;
    assert_eq!(mail.len(), 1);
    app.settle_mail().await;
    assert_eq!(outbox::counts(&app.db).await.unwrap().sent, 1);
}

async fn a_permanent_smtp_refusal_fails_the_email_without_retrying(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |_| {}).await;
    app.smtp.set_script(SmtpScript::PermanentFailure);
    app.sign_up("kim@example.com").await;
    app.settle_mail().await;
    let counts = outbox::counts(&app.db).await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 0, 1));
    assert!(last_error(&app.db).await.unwrap().contains("550"));
    let attempts = attempts(&app.db).await;
    assert_eq!(attempts, 1, "a 5xx is not retried");
}

async fn without_smtp_mail_is_written_to_the_outbox_folder(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let outbox_dir = folder.path().join("outbox");
    let dir = outbox_dir.clone();
    let app = spawn_app_with(backend, Clock::System, move |c| {
        c.smtp_url = None;
        c.outbox_dir = dir;
    })
    .await;
    app.sign_up("lou@example.com").await;
    app.settle_mail().await;
    let files: Vec<_> = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read(&files[0]).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(
        message
            .body_text(0)
            .unwrap()
            .contains("http://news.example.com/confirm/")
    );
    assert!(app.smtp.messages().is_empty());
}

async fn last_error(db: &fortnight::store::Db) -> Option<String> {
    fortnight::with_pool!(db, read, |pool| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT last_error FROM mail_outbox ORDER BY id LIMIT 1",
        )
        .fetch_optional(pool)
        .await
    })
    .unwrap()
    .flatten()
}

async fn attempts(db: &fortnight::store::Db) -> i32 {
    fortnight::with_pool!(db, read, |pool| {
        sqlx::query_scalar::<_, i32>("SELECT attempts FROM mail_outbox ORDER BY id LIMIT 1")
            .fetch_one(pool)
            .await
    })
    .unwrap()
}
