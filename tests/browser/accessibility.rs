//! axe-core over every admin and every public page: no serious or critical violation. Each
//! page's counts by impact are printed (`--nocapture` shows them for passing runs too).

use fantoccini::Client;

use crate::axe;
use crate::browser_tests;
use crate::fixture::{EDITOR, site};
use crate::helpers::Backend;
use crate::page::{Page, Target};

browser_tests!(
    admin_pages_have_no_serious_accessibility_violations,
    public_pages_have_no_serious_accessibility_violations,
);

// The same pages in their dark colour scheme, where contrast can fail on its own.
browser_tests!(
    dark: admin_pages_in_the_dark_scheme_have_no_serious_accessibility_violations,
    public_pages_in_the_dark_scheme_have_no_serious_accessibility_violations,
);

async fn admin_pages_in_the_dark_scheme_have_no_serious_accessibility_violations(
    backend: Backend,
    client: Client,
) {
    admin_pages_have_no_serious_accessibility_violations(backend, client).await;
}

async fn public_pages_in_the_dark_scheme_have_no_serious_accessibility_violations(
    backend: Backend,
    client: Client,
) {
    public_pages_have_no_serious_accessibility_violations(backend, client).await;
}

/// Fails with every page's blocking violations at once, not just the first page's.
fn assert_none_blocking(blocking: Vec<String>) {
    assert!(
        blocking.is_empty(),
        "serious or critical accessibility violations on {} page(s):\n{}",
        blocking.len(),
        blocking.join("\n")
    );
}

async fn admin_pages_have_no_serious_accessibility_violations(backend: Backend, client: Client) {
    let Some(source) = axe::source() else { return };
    let site = site(backend).await;
    let page = Page::new(client, &site.app);
    let mut blocking = Vec::new();
    blocking.extend(axe::audit(&page, &source, "admin login", "/admin/login").await);
    page.sign_in(EDITOR).await;
    for (name, path) in &site.admin {
        blocking.extend(axe::audit(&page, &source, &format!("admin {name}"), path).await);
    }
    assert_none_blocking(blocking);
}

async fn public_pages_have_no_serious_accessibility_violations(backend: Backend, client: Client) {
    let Some(source) = axe::source() else { return };
    let site = site(backend).await;
    let page = Page::new(client, &site.app);
    let pages = [
        ("signup form", "/".to_owned()),
        ("archive", "/archive".to_owned()),
        ("links", "/links".to_owned()),
        ("issue web version", site.published.clone()),
        ("unsubscribe", site.unsubscribe.clone()),
        ("manage subscription", site.manage.clone()),
        ("confirmation: subscribed", site.confirm.clone()),
        ("confirmation: used link", site.confirm.clone()),
        (
            "confirmation: unknown link",
            "/confirm/not-a-real-token".to_owned(),
        ),
        ("not found", "/no-such-page".to_owned()),
    ];
    let mut blocking = Vec::new();
    for (name, path) in &pages {
        blocking.extend(axe::audit(&page, &source, name, path).await);
    }
    // The answers to the forms: signing up, and leaving.
    page.goto("/").await;
    page.fill("#email", "grace@example.com").await;
    page.click_through(Target::Button("Subscribe")).await;
    page.wait_for_text("h1", "Check your inbox").await;
    blocking.extend(axe::audit_current(&page, &source, "signup: check your inbox").await);
    page.goto("/").await;
    page.click_through(Target::Button("Subscribe")).await;
    blocking.extend(axe::audit_current(&page, &source, "signup: refused address").await);
    page.goto(&site.unsubscribe).await;
    page.click_through(Target::Button("Unsubscribe")).await;
    blocking.extend(axe::audit_current(&page, &source, "unsubscribed").await);
    assert_eq!(
        site.app.subscriber("ada@example.com").await.unwrap().status,
        fortnight::domain::SubscriberStatus::Unsubscribed
    );
    assert_none_blocking(blocking);
}
