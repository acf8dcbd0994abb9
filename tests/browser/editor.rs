//! The editor writes an issue as a person would: the links roundup (add, move, remove), the
//! preview, a test send, and a place on the cadence.

use fantoccini::Client;
use fortnight::domain::IssueStatus;
use fortnight::store::issues;

use crate::browser_tests;
use crate::fixture::{EDITOR, instance};
use crate::helpers::{Backend, TestApp};
use crate::page::{Page, Target, id_in};

browser_tests!(the_editor_writes_previews_tests_and_schedules_an_issue);

/// Types a link into the blank row at the bottom of the roundup and adds it.
pub async fn add_link(page: &Page, title: &str, url: &str, source: &str) {
    page.fill("#link-title-new", title).await;
    page.fill("#link-url-new", url).await;
    page.fill("#link-source-new", source).await;
    page.click_through(Target::Button("Add link")).await;
}

/// The titles of the links in the editor, without the blank row.
async fn shown_titles(page: &Page) -> Vec<String> {
    let mut titles = page.values(r#"input[name="link_title"]"#).await;
    assert_eq!(titles.pop().as_deref(), Some(""), "a blank row comes last");
    titles
}

async fn stored_titles(app: &TestApp, id: i64) -> Vec<String> {
    let issue = issues::get(&app.db, id).await.unwrap().unwrap();
    issue.links.iter().map(|l| l.title.clone()).collect()
}

async fn the_editor_writes_previews_tests_and_schedules_an_issue(backend: Backend, client: Client) {
    let app = instance(backend, |_| {}).await;
    let page = Page::new(client, &app);
    page.sign_in(EDITOR).await;
    page.click_through(Target::Link("Issues")).await;
    page.click_through(Target::Link("New issue")).await;
    assert_eq!(page.path().await, "/admin/issues/new");

    page.fill("#subject", "Notes on the harvest").await;
    page.fill("#body", "## Grain\n\nPrices **fell** this week.")
        .await;
    add_link(
        &page,
        "Freight rates",
        "https://example.com/freight",
        "The Ledger",
    )
    .await;
    let path = page.path().await;
    let id = id_in(&path, "/admin/issues/");
    assert_eq!(page.flash().await, "The draft was saved.");
    add_link(&page, "Barley futures", "https://example.com/barley", "").await;
    add_link(
        &page,
        "A wet October",
        "https://example.com/rain",
        "Met Office",
    )
    .await;
    assert_eq!(
        shown_titles(&page).await,
        ["Freight rates", "Barley futures", "A wet October"]
    );

    page.click_through(Target::Css(r#"button[aria-label="Move link 3 up"]"#))
        .await;
    assert_eq!(
        shown_titles(&page).await,
        ["Freight rates", "A wet October", "Barley futures"]
    );
    page.click_through(Target::Css(r#"button[aria-label="Move link 1 down"]"#))
        .await;
    assert_eq!(
        shown_titles(&page).await,
        ["A wet October", "Freight rates", "Barley futures"]
    );
    page.click_through(Target::Css(r#"button[aria-label="Remove link 2"]"#))
        .await;
    assert_eq!(
        shown_titles(&page).await,
        ["A wet October", "Barley futures"]
    );
    assert_eq!(
        stored_titles(&app, id).await,
        ["A wet October", "Barley futures"]
    );

    page.click_through(Target::Link("Preview and test send"))
        .await;
    assert_eq!(page.path().await, format!("/admin/issues/{id}/preview"));
    let text = page.text("pre").await;
    assert!(text.contains("Prices **fell** this week."), "{text}");
    assert!(text.contains("A wet October"), "{text}");
    assert!(page.has(r#"iframe[title="The HTML part"]"#).await);
    page.click_through(Target::Button("Send test")).await;
    assert_eq!(page.flash().await, format!("A test copy went to {EDITOR}."));
    let mail = app.wait_for_mail(1).await;
    assert_eq!(mail[0].to, [EDITOR]);
    assert_eq!(
        mail[0].parsed().subject(),
        Some("[TEST] Notes on the harvest")
    );

    page.click_through(Target::Link("← Back to the editor"))
        .await;
    page.choose("#slot", "Thu 22 Oct 2026, 08:00 UTC").await;
    page.click_through(Target::Button("Put on this slot")).await;
    page.wait_for_text("#schedule", "Goes out Thu 22 Oct 2026, 08:00 UTC")
        .await;
    let issue = issues::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(issue.status, IssueStatus::Scheduled);
    assert_eq!(issue.slot_at, Some("2026-10-22T08:00:00Z".parse().unwrap()));
}
