//! The signup form: double opt-in, evidence of consent, one answer for every case, bots.

use fortnight::clock::Clock;
use fortnight::domain::SubscriberStatus;

use crate::both_databases;
use crate::helpers::{Backend, link_path, spawn_app, spawn_app_with};

both_databases!(
    the_signup_page_offers_an_accessible_form,
    a_signup_stores_a_pending_subscriber_with_consent_evidence,
    a_signup_sends_one_confirmation_email_with_both_parts_and_unsubscribe_headers,
    signing_up_again_while_pending_sends_a_fresh_confirmation_with_the_same_answer,
    signing_up_again_while_active_sends_nothing_new_with_the_same_answer,
    the_honeypot_drops_the_signup_silently,
    too_many_signups_from_one_address_are_refused_with_429,
    repeated_signups_of_a_pending_address_are_not_mailed_more_than_once_per_interval,
    concurrent_signups_are_each_recorded_once,
);

async fn the_signup_page_offers_an_accessible_form(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("The Test Dispatch"));
    assert!(body.contains(r#"<form class="card" method="post" action="/subscribe""#));
    assert!(body.contains(r#"<label for="email">"#) && body.contains(r#"id="email" name="email""#));
    assert!(body.contains(r#"<label for="name">"#) && body.contains(r#"id="name" name="name""#));
    assert!(
        body.contains(r#"name="website" tabindex="-1""#),
        "honeypot present and out of tab order"
    );
}

async fn a_signup_stores_a_pending_subscriber_with_consent_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.clock.now();
    let response = app
        .post_subscribe(&[("email", "ada@example.com"), ("name", "Ada Lovelace")])
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));

    let ada = app.subscriber("ada@example.com").await.expect("stored");
    assert_eq!(ada.status, SubscriberStatus::Pending);
    assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.consent_source, "form");
    assert_eq!(ada.consent_ip.as_deref(), Some("127.0.0.1"));
    assert!(ada.consent_at >= before);
    assert!(ada.confirmed_at.is_none());
}

async fn a_signup_sends_one_confirmation_email_with_both_parts_and_unsubscribe_headers(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.post_subscribe(&[("email", "ada@example.com"), ("name", "Ada")])
        .await;

    let mail = app.wait_for_mail(1).await;
    assert_eq!(mail.len(), 1);
    let message = &mail[0];
    assert_eq!(message.to, vec!["ada@example.com".to_owned()]);
    let subject = message.parsed().subject().unwrap().to_owned();
    assert_eq!(subject, "Confirm your subscription to The Test Dispatch");
    let text = message.text();
    let html = message.html();
    assert!(text.starts_with("Hi,"), "{text}");
    assert!(
        !text.contains("Ada") && !html.contains("Ada"),
        "text typed into the form stays out of the email"
    );
    assert!(text.contains("http://news.example.com/confirm/"));
    assert!(html.contains("http://news.example.com/confirm/"));
    assert_eq!(link_path(&text, "/confirm/"), link_path(&html, "/confirm/"));
    let unsubscribe = message
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with("<http://news.example.com/unsubscribe/"),
        "{unsubscribe}"
    );
    assert_eq!(
        message.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        text.contains(&link_path(&unsubscribe, "/unsubscribe/")),
        "visible unsubscribe link"
    );
    assert!(message.header("Message-ID").is_some());
}

async fn signing_up_again_while_pending_sends_a_fresh_confirmation_with_the_same_answer(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let first = app.sign_up("grace@example.com").await;
    let second = app.sign_up("Grace@EXAMPLE.com").await;
    assert_eq!(
        first.replace("Grace@EXAMPLE.com", "grace@example.com"),
        second.replace("Grace@EXAMPLE.com", "grace@example.com")
    );

    let mail = app.wait_for_mail(2).await;
    assert_eq!(
        app.subscriber_count().await,
        1,
        "one subscriber whatever the case"
    );
    assert_ne!(
        link_path(&mail[0].text(), "/confirm/"),
        link_path(&mail[1].text(), "/confirm/")
    );
    // Either link confirms.
    let response = app.get(&link_path(&mail[0].text(), "/confirm/")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.subscriber("grace@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn signing_up_again_while_active_sends_nothing_new_with_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.sign_up("linus@example.com").await;
    let mail = app.wait_for_mail(1).await;
    app.get(&link_path(&mail[0].text(), "/confirm/")).await;
    let queued = app.outbox_count().await;

    let again = app.sign_up("LINUS@example.com").await;
    assert_eq!(
        first.to_lowercase(),
        again.to_lowercase(),
        "the answer does not reveal that the address is known"
    );
    app.settle_mail().await;
    assert_eq!(app.outbox_count().await, queued, "no new email queued");
    assert_eq!(app.smtp.messages().len(), 1);
    assert_eq!(
        app.subscriber("linus@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn the_honeypot_drops_the_signup_silently(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_subscribe(&[
            ("email", "bot@example.com"),
            ("name", ""),
            ("website", "http://spam.example"),
        ])
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.unwrap().contains("Check your inbox"),
        "bots see the usual answer"
    );
    assert_eq!(app.subscriber_count().await, 0);
    assert_eq!(app.outbox_count().await, 0);
}

async fn too_many_signups_from_one_address_are_refused_with_429(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.signup_rate_per_minute = 1;
        c.signup_burst = 3;
    })
    .await;
    for i in 0..3 {
        app.sign_up(&format!("reader{i}@example.com")).await;
    }
    let refused = app
        .post_subscribe(&[("email", "reader3@example.com")])
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(refused.text().await.unwrap().contains("Too many requests"));
    assert_eq!(
        app.subscriber_count().await,
        3,
        "the refused signup stored nothing"
    );
    // Pages other than the signup post are not limited.
    assert_eq!(app.get("/").await.status(), 200);
}

async fn repeated_signups_of_a_pending_address_are_not_mailed_more_than_once_per_interval(
    backend: Backend,
) {
    let clock = Clock::fixed(chrono::Utc::now());
    let app = spawn_app_with(backend, clock.clone(), |c| {
        c.confirm_resend_interval = std::time::Duration::from_secs(120);
    })
    .await;
    let answers: Vec<String> = futures_answers(&app, "target@example.com", 5).await;
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "the same answer every time"
    );
    app.settle_mail().await;
    assert_eq!(
        app.outbox_count().await,
        1,
        "one confirmation within the interval"
    );

    clock.advance(chrono::Duration::seconds(121));
    app.sign_up("target@example.com").await;
    app.settle_mail().await;
    assert_eq!(
        app.outbox_count().await,
        2,
        "a fresh one after the interval"
    );
    assert_eq!(app.wait_for_mail(2).await.len(), 2);
}

async fn futures_answers(app: &crate::helpers::TestApp, email: &str, n: usize) -> Vec<String> {
    let mut answers = Vec::new();
    for _ in 0..n {
        answers.push(app.sign_up(email).await);
    }
    answers
}

async fn concurrent_signups_are_each_recorded_once(backend: Backend) {
    let app = spawn_app(backend).await;
    // Twenty addresses, each posted twice in different case, all at once: they share commits.
    let posts = (0..40).map(|i| {
        let email = if i % 2 == 0 {
            format!("crowd{}@example.com", i / 2)
        } else {
            format!("CROWD{}@example.com", i / 2)
        };
        let app = &app;
        async move { app.post_subscribe(&[("email", &email)]).await.status() }
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.subscriber_count().await, 20);
    assert_eq!(
        app.outbox_count().await,
        40,
        "every signup of a pending address queues a confirmation"
    );
    app.settle_mail().await;
    assert_eq!(app.smtp.messages().len(), 40);
}
