//! The send page as the editor watches it: numbers that rise without a reload, the end on
//! "sent" with its summary, and pause, resume and cancel by button.

use std::time::{Duration, Instant};

use fantoccini::Client;
use fortnight::store::sends;
use serde_json::Value;

use crate::browser_tests;
use crate::fixture::{EDITOR, instance};
use crate::helpers::{Backend, TestApp};
use crate::page::{Page, Target, id_in};

browser_tests!(
    the_send_page_counts_up_live_and_ends_on_sent,
    the_editor_pauses_resumes_and_cancels_a_send,
);

/// The first slot of the default cadence after the fixture's start.
const SLOT: &str = "2026-10-08T08:00:00Z";

/// An instance whose relay takes `delay` over each message, one at a time, with `readers`.
async fn slow_relay(backend: Backend, readers: usize, delay: Duration) -> TestApp {
    let app = instance(backend, |c| {
        c.send_rate_per_second = 0;
        c.send_concurrency = 1;
        // The clock jumps a week to the slot; the editor stays signed in across it.
        c.session_ttl = Duration::from_secs(30 * 86_400);
    })
    .await;
    app.seed_active("reader", readers).await;
    app.smtp.set_delay(delay);
    app
}

/// Writes an issue, puts it on the next slot by button, lets the slot come (the clock moves
/// and the scheduler ticks), and opens its send page; returns the issue's id.
async fn write_schedule_and_start(page: &Page, app: &TestApp, subject: &str) -> i64 {
    page.sign_in(EDITOR).await;
    page.goto("/admin/issues/new").await;
    page.fill("#subject", subject).await;
    page.fill("#body", "The week in grain.").await;
    page.click_through(Target::Button("Save")).await;
    let id = id_in(&page.path().await, "/admin/issues/");
    page.click_through(Target::Button("Put on the next open slot"))
        .await;
    page.wait_for_text("#schedule", "Goes out Thu 8 Oct 2026, 08:00 UTC")
        .await;
    let slot = SLOT.parse().unwrap();
    app.clock.advance(slot - app.clock.now());
    let report = app.scheduler.run_due(slot).await.unwrap();
    assert_eq!(report.started, [id], "the slot came and the issue started");
    page.goto(&format!("/admin/issues/{id}")).await;
    page.click_through(Target::Link("The send: progress and controls"))
        .await;
    assert_eq!(page.path().await, format!("/admin/issues/{id}/send"));
    id
}

/// Copies of the issue the relay has accepted.
fn delivered(app: &TestApp, subject: &str) -> usize {
    app.smtp
        .messages()
        .iter()
        .filter(|m| m.parsed().subject() == Some(subject))
        .count()
}

/// Waits (up to ten seconds) until no copy has arrived for a second; returns how many have.
async fn settled(app: &TestApp, subject: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = delivered(app, subject);
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = delivered(app, subject);
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "copies keep arriving");
        last = now;
    }
}

/// Whether the page offers a form posting to `/admin/issues/{id}/{action}`.
async fn offers(page: &Page, id: i64, action: &str) -> bool {
    page.has(&format!(r#"form[action="/admin/issues/{id}/{action}"]"#))
        .await
}

async fn the_send_page_counts_up_live_and_ends_on_sent(backend: Backend, client: Client) {
    let readers = 10;
    let app = slow_relay(backend, readers, Duration::from_millis(700)).await;
    let page = Page::new(client, &app);
    let id = write_schedule_and_start(&page, &app, "Harvest notes").await;

    // The mark lives as long as this document: numbers read under it came without a reload.
    page.js("window.__watching = true;", vec![]).await;
    let mut live: Vec<i64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = page
            .js(
                "return window.__watching ? Number(document.getElementById('n-sent').textContent) : null;",
                vec![],
            )
            .await;
        match seen {
            Value::Number(n) => {
                let n = n.as_i64().unwrap();
                if live.last() != Some(&n) {
                    live.push(n);
                }
            }
            // The page reloaded itself: the send changed state.
            _ => break,
        }
        assert!(
            Instant::now() < deadline,
            "the send page never reloaded itself; it showed {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the send page counted {live:?} without a reload");
    assert!(
        live.len() >= 2 && live.windows(2).all(|w| w[0] < w[1]),
        "the count rises on the page without a reload: {live:?}"
    );

    page.wait_for_text("#state", "sent").await;
    assert_eq!(page.text("#state").await, "sent");
    assert_eq!(page.text("#n-sent").await, readers.to_string());
    let summary = page.text("#summary").await;
    assert!(summary.contains("Summary"), "{summary}");
    assert!(
        summary.contains(&format!("{readers} sent, 0 failed")),
        "{summary}"
    );
    for action in ["pause", "resume", "cancel"] {
        assert!(!offers(&page, id, action).await, "no {action} once sent");
    }
    assert_eq!(delivered(&app, "Harvest notes"), readers);
}

async fn the_editor_pauses_resumes_and_cancels_a_send(backend: Backend, client: Client) {
    let readers = 30;
    let subject = "Steered notes";
    let app = slow_relay(backend, readers, Duration::from_millis(300)).await;
    let page = Page::new(client, &app);
    let id = write_schedule_and_start(&page, &app, subject).await;
    assert_eq!(page.text("#state").await, "sending");

    page.click_through(Target::Button("Pause")).await;
    assert_eq!(
        page.flash().await,
        "Paused: nothing more goes out until you resume."
    );
    assert_eq!(page.text("#state").await, "paused");
    assert!(!offers(&page, id, "pause").await);
    let at_pause = settled(&app, subject).await;
    assert!(at_pause < readers, "paused before the end: {at_pause}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        delivered(&app, subject),
        at_pause,
        "nothing goes out while paused"
    );

    page.click_through(Target::Button("Resume")).await;
    assert_eq!(page.flash().await, "Resumed.");
    assert_eq!(page.text("#state").await, "sending");
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered(&app, subject) <= at_pause {
        assert!(Instant::now() < deadline, "the resumed send does not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Cancelling needs the box ticked: without it the browser keeps the form back.
    page.click_and_stay(Target::Button("Cancel the rest")).await;
    assert_eq!(
        page.text("#state").await,
        "sending",
        "not cancelled unticked"
    );
    page.click(Target::Css(&format!(
        r#"form[action="/admin/issues/{id}/cancel"] input[name="confirm"]"#
    )))
    .await;
    page.click_through(Target::Button("Cancel the rest")).await;
    assert_eq!(
        page.flash().await,
        "Cancelled: what was sent stays sent; nothing more goes out."
    );
    assert_eq!(page.text("#state").await, "cancelled");
    for action in ["pause", "resume", "cancel"] {
        assert!(
            !offers(&page, id, action).await,
            "no {action} once cancelled"
        );
    }
    let at_cancel = settled(&app, subject).await;
    assert!(at_cancel < readers, "cancelled before the end: {at_cancel}");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(progress.sent as usize, at_cancel, "{progress:?}");
    assert_eq!(
        (progress.pending, progress.retrying),
        (0, 0),
        "{progress:?}"
    );
    assert_eq!(progress.cancelled as usize, readers - at_cancel);
    page.goto(&format!("/admin/issues/{id}/send")).await;
    assert_eq!(page.text("#n-sent").await, at_cancel.to_string());
    assert_eq!(
        page.text("#n-cancelled").await,
        progress.cancelled.to_string()
    );
}
