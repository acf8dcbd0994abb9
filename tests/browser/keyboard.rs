//! The admin from the keyboard alone: the editor flow with Tab, Enter, Space and typing, and a
//! visible focus indicator on every focusable element of every admin page.

use std::collections::HashSet;

use fantoccini::Client;
use fantoccini::key::Key;
use fortnight::domain::IssueStatus;
use fortnight::store::issues;
use serde::Deserialize;

use crate::browser_tests;
use crate::fixture::{EDITOR, instance, site};
use crate::helpers::{Backend, EDITOR_PASSWORD};
use crate::page::{Page, id_in};

browser_tests!(
    the_editor_writes_previews_and_schedules_from_the_keyboard_alone,
    every_focusable_admin_element_shows_where_the_focus_is,
);

/// Describes the focused element and whether it shows focus (an outline or a box shadow).
const FOCUSED: &str = r#"
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const s = getComputedStyle(el);
    const seen = c => c !== "transparent" && !/rgba\(.*,\s*0\)$/.test(c);
    const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0 && seen(s.outlineColor);
    const shadow = s.boxShadow !== "none" && s.boxShadow !== "";
    let path = "", e = el;
    while (e && e !== document.body) {
        const i = e.parentElement ? Array.from(e.parentElement.children).indexOf(e) : 0;
        path = "/" + e.tagName.toLowerCase() + "[" + i + "]" + path;
        e = e.parentElement;
    }
    const label = (el.getAttribute("aria-label") || el.id || el.getAttribute("name")
        || el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60);
    return {
        path, label,
        tag: el.tagName.toLowerCase(),
        kind: el.tagName.toLowerCase() + (el.type ? "[" + el.type + "]" : ""),
        shows_focus: outline || shadow,
        matches: arguments[0] ? el.matches(arguments[0]) : false,
    };
"#;

/// The focused element, as [`FOCUSED`] describes it.
#[derive(Debug, Deserialize)]
struct Focused {
    path: String,
    label: String,
    tag: String,
    kind: String,
    shows_focus: bool,
    matches: bool,
}

impl Focused {
    fn describe(&self) -> String {
        format!("<{}> {:?}", self.kind, self.label)
    }
}

async fn focused(page: &Page, css: Option<&str>) -> Option<Focused> {
    let found = page.js(FOCUSED, vec![css.into()]).await;
    serde_json::from_value(found).expect("a description of the focused element")
}

/// Presses Tab until the focus is on `css` (at most 120 times), noting on the way every
/// element that took the focus without showing it.
async fn tab_to(page: &Page, css: &str, unseen: &mut Vec<String>) {
    for _ in 0..120 {
        page.press(Key::Tab).await;
        let Some(now) = focused(page, Some(css)).await else {
            continue;
        };
        if !now.shows_focus && now.tag != "iframe" {
            unseen.push(format!("{} on {}", now.describe(), page.path().await));
        }
        if now.matches {
            return;
        }
    }
    panic!("Tab never reached {css} on {}", page.describe().await);
}

async fn the_editor_writes_previews_and_schedules_from_the_keyboard_alone(
    backend: Backend,
    client: Client,
) {
    let app = instance(backend, |_| {}).await;
    let page = Page::new(client, &app);
    let mut unseen = Vec::new();
    page.goto("/admin/login").await;
    tab_to(&page, "#email", &mut unseen).await;
    page.type_text(EDITOR).await;
    tab_to(&page, "#password", &mut unseen).await;
    page.type_text(EDITOR_PASSWORD).await;
    page.press_through(Key::Enter).await;
    assert_eq!(page.path().await, "/admin");

    tab_to(&page, r#"header a[href="/admin/issues"]"#, &mut unseen).await;
    page.press_through(Key::Enter).await;
    tab_to(&page, r#"a[href="/admin/issues/new"]"#, &mut unseen).await;
    page.press_through(Key::Enter).await;
    assert_eq!(page.path().await, "/admin/issues/new");
    tab_to(&page, "#subject", &mut unseen).await;
    page.type_text("Notes from the keyboard").await;
    tab_to(&page, "#body", &mut unseen).await;
    page.type_text("## Grain\n\nTyped, not clicked.").await;
    tab_to(&page, "#link-title-new", &mut unseen).await;
    page.type_text("Freight rates").await;
    tab_to(&page, "#link-url-new", &mut unseen).await;
    page.type_text("https://example.com/freight").await;
    tab_to(&page, "li.new button", &mut unseen).await;
    page.press_through(Key::Space).await;
    let id = id_in(&page.path().await, "/admin/issues/");
    let issue = issues::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(issue.subject, "Notes from the keyboard");
    assert!(issue.body.contains("Typed, not clicked."), "{}", issue.body);
    assert_eq!(issue.links.len(), 1);
    assert_eq!(issue.links[0].url, "https://example.com/freight");

    tab_to(
        &page,
        &format!(r#"a[href="/admin/issues/{id}/preview"]"#),
        &mut unseen,
    )
    .await;
    page.press_through(Key::Enter).await;
    tab_to(&page, r#"form[action$="/test"] button"#, &mut unseen).await;
    page.press_through(Key::Enter).await;
    assert_eq!(page.flash().await, format!("A test copy went to {EDITOR}."));
    assert_eq!(app.wait_for_mail(1).await[0].to, [EDITOR]);
    tab_to(
        &page,
        &format!(r#"main a[href="/admin/issues/{id}"]"#),
        &mut unseen,
    )
    .await;
    page.press_through(Key::Enter).await;
    tab_to(
        &page,
        r#"input[name="mode"][value="next"] + button"#,
        &mut unseen,
    )
    .await;
    page.press_through(Key::Space).await;
    page.wait_for_text("#schedule", "Goes out Thu 8 Oct 2026, 08:00 UTC")
        .await;
    let issue = issues::get(&app.db, id).await.unwrap().unwrap();
    assert_eq!(issue.status, IssueStatus::Scheduled);
    assert!(
        unseen.is_empty(),
        "elements took the focus without showing it:\n{}",
        unseen.join("\n")
    );
}

/// Tabs through the page now shown, once round; returns the elements that do not show
/// focus, and adds the kinds of element reached to `kinds`.
async fn walk(page: &Page, kinds: &mut HashSet<String>) -> Vec<String> {
    let mut unseen = Vec::new();
    let mut first: Option<String> = None;
    for _ in 0..200 {
        page.press(Key::Tab).await;
        let Some(now) = focused(page, None).await else {
            if first.is_some() {
                break;
            }
            continue;
        };
        if first.as_deref() == Some(now.path.as_str()) {
            break;
        }
        first.get_or_insert(now.path.clone());
        // Inside a frame the frame's own document shows focus; it is the email, not the admin.
        if now.tag == "iframe" {
            continue;
        }
        kinds.insert(now.tag.clone());
        if !now.shows_focus {
            unseen.push(now.describe());
        }
    }
    unseen
}

async fn every_focusable_admin_element_shows_where_the_focus_is(backend: Backend, client: Client) {
    let site = site(backend).await;
    let page = Page::new(client, &site.app);
    let mut kinds = HashSet::new();
    let mut problems = Vec::new();
    page.goto("/admin/login").await;
    let mut pages = vec![("login", "/admin/login".to_owned())];
    pages.extend(site.admin.iter().map(|(n, p)| (*n, p.clone())));
    for (name, path) in &pages {
        if *name == "dashboard" {
            page.sign_in(EDITOR).await;
        }
        page.goto(path).await;
        let unseen = walk(&page, &mut kinds).await;
        eprintln!(
            "focus {name} ({path}): {} element(s) without a visible focus",
            unseen.len()
        );
        problems.extend(unseen.into_iter().map(|u| format!("{name} ({path}): {u}")));
    }
    for kind in ["a", "button", "input"] {
        assert!(
            kinds.contains(kind),
            "no <{kind}> took the focus: {kinds:?}"
        );
    }
    assert!(
        problems.is_empty(),
        "focus is not visible on:\n{}",
        problems.join("\n")
    );
}
