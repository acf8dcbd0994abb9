//! Confirmation and unsubscription links, end to end.

use chrono::{Duration, Utc};
use fortnight::clock::Clock;
use fortnight::domain::SubscriberStatus;

use crate::both_databases;
use crate::helpers::{Backend, TestApp, link_path, spawn_app, spawn_app_with};

both_databases!(
    a_reader_subscribes_confirms_and_unsubscribes_end_to_end,
    one_click_unsubscribe_follows_rfc_8058_and_is_idempotent,
    a_used_confirmation_link_says_already_confirmed,
    an_expired_confirmation_link_gets_a_clear_page_and_changes_nothing,
    an_unsubscribed_reader_can_subscribe_again,
    a_confirmation_link_does_not_bring_back_a_reader_who_left,
    the_unsubscribe_page_does_not_unsubscribe_by_itself,
    a_used_link_of_a_reader_who_left_says_so,
);

/// Signs up and returns the paths of the confirmation and unsubscribe links of the email.
async fn sign_up_and_read_links(app: &TestApp, email: &str, nth_mail: usize) -> (String, String) {
    app.sign_up(email).await;
    let mail = app.wait_for_mail(nth_mail).await;
    let text = mail[nth_mail - 1].text();
    (
        link_path(&text, "/confirm/"),
        link_path(&text, "/unsubscribe/"),
    )
}

async fn a_reader_subscribes_confirms_and_unsubscribes_end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, unsubscribe) = sign_up_and_read_links(&app, "ada@example.com", 1).await;

    let confirmed = app.get(&confirm).await;
    assert_eq!(confirmed.status(), 200);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("You are subscribed")
    );
    let ada = app.subscriber("ada@example.com").await.unwrap();
    assert_eq!(ada.status, SubscriberStatus::Active);
    assert!(ada.confirmed_at.is_some());

    let page = app.get(&unsubscribe).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("ada@example.com") && page.contains(&format!(r#"action="{unsubscribe}""#))
    );

    let left = app.post_form(&unsubscribe, &[]).await;
    assert_eq!(left.status(), 200);
    assert!(left.text().await.unwrap().contains("You are unsubscribed"));
    let ada = app.subscriber("ada@example.com").await.unwrap();
    assert_eq!(ada.status, SubscriberStatus::Unsubscribed);
    assert!(ada.unsubscribed_at.is_some());
}

async fn one_click_unsubscribe_follows_rfc_8058_and_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, _) = sign_up_and_read_links(&app, "bob@example.com", 1).await;
    app.get(&confirm).await;
    let header = app.smtp.messages()[0].header("List-Unsubscribe").unwrap();
    let target = link_path(&header, "/unsubscribe/");

    for _ in 0..2 {
        let response = app
            .client
            .post(format!("{}{target}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        app.subscriber("bob@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
}

async fn a_used_confirmation_link_says_already_confirmed(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, _) = sign_up_and_read_links(&app, "cy@example.com", 1).await;
    assert_eq!(app.get(&confirm).await.status(), 200);
    let again = app.get(&confirm).await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Already confirmed"));
    assert_eq!(
        app.subscriber("cy@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn an_expired_confirmation_link_gets_a_clear_page_and_changes_nothing(backend: Backend) {
    let clock = Clock::fixed(Utc::now());
    let app = spawn_app_with(backend, clock.clone(), |c| {
        c.confirm_token_ttl = std::time::Duration::from_secs(3600)
    })
    .await;
    let (confirm, _) = sign_up_and_read_links(&app, "dee@example.com", 1).await;
    assert!(
        app.smtp.messages()[0]
            .text()
            .contains("works for 60 minutes")
    );

    clock.advance(Duration::hours(1) + Duration::seconds(1));
    let response = app.get(&confirm).await;
    assert_eq!(
        response.status(),
        200,
        "an expired link is a clear page, not an error"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("This link has expired"));
    assert!(
        body.contains(r#"action="/subscribe""#),
        "offers a fresh signup"
    );
    assert_eq!(
        app.subscriber("dee@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
}

async fn an_unsubscribed_reader_can_subscribe_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, unsubscribe) = sign_up_and_read_links(&app, "eve@example.com", 1).await;
    app.get(&confirm).await;
    app.post_form(&unsubscribe, &[]).await;
    assert_eq!(
        app.subscriber("eve@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );

    let (confirm_again, unsubscribe_again) =
        sign_up_and_read_links(&app, "eve@example.com", 2).await;
    assert_eq!(
        unsubscribe_again, unsubscribe,
        "the unsubscribe link of a reader never changes"
    );
    assert_eq!(
        app.subscriber("eve@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
    assert_eq!(app.get(&confirm_again).await.status(), 200);
    assert_eq!(
        app.subscriber("eve@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
    assert_eq!(app.subscriber_count().await, 1);
}

async fn a_confirmation_link_does_not_bring_back_a_reader_who_left(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, unsubscribe) = sign_up_and_read_links(&app, "fay@example.com", 1).await;
    app.post_form(&unsubscribe, &[]).await;
    let response = app.get(&confirm).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You have unsubscribed")
    );
    assert_eq!(
        app.subscriber("fay@example.com").await.unwrap().status,
        SubscriberStatus::Unsubscribed
    );
}

async fn the_unsubscribe_page_does_not_unsubscribe_by_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, unsubscribe) = sign_up_and_read_links(&app, "gus@example.com", 1).await;
    app.get(&confirm).await;
    for _ in 0..3 {
        assert_eq!(app.get(&unsubscribe).await.status(), 200);
    }
    assert_eq!(
        app.subscriber("gus@example.com").await.unwrap().status,
        SubscriberStatus::Active
    );
}

async fn a_used_link_of_a_reader_who_left_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let (confirm, unsubscribe) = sign_up_and_read_links(&app, "hep@example.com", 1).await;
    app.get(&confirm).await;
    app.post_form(&unsubscribe, &[]).await;
    let response = app.get(&confirm).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("Link already used") && !body.contains("is active"),
        "{body}"
    );
}
