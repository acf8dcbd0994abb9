//! Every admin page on a phone (375 px) and on a laptop (1280 px): no sideways scrolling, no
//! paragraph that the HTML parser had to break around a form, and rows of controls that stay
//! on one line where there is room.

use fantoccini::Client;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser_tests;
use crate::fixture::{EDITOR, site};
use crate::helpers::Backend;
use crate::page::Page;

browser_tests!(admin_pages_fit_a_phone_and_keep_rows_together_on_a_laptop);

/// The page is no wider than the window; if it is, the elements that stick out.
const OVERFLOW: &str = r##"
    const root = document.documentElement;
    if (root.scrollWidth <= root.clientWidth) return [];
    const over = e => e.getBoundingClientRect().right > root.clientWidth + 1;
    const out = [];
    // The innermost elements that stick out: their parents only stick out because of them.
    for (const el of document.querySelectorAll("body *")) {
        if (over(el) && !Array.from(el.children).some(over)) {
            const r = el.getBoundingClientRect();
            out.push(`<${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ? "." + el.className : ""}> ends at ${Math.round(r.right)} px`);
        }
    }
    return [`the page is ${root.scrollWidth} px wide in a ${root.clientWidth} px window`].concat(out.slice(0, 8));
"##;

/// `.row` containers whose children do not share a line, or whose buttons sit at different
/// heights.
const ROWS: &str = r##"
    const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
    const name = e => `<${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className}> "${e.textContent.trim().replace(/\s+/g, " ").slice(0, 50)}"`;
    const out = [];
    for (const row of document.querySelectorAll(".row")) {
        const kids = Array.from(row.children).filter(shown).map(k => k.getBoundingClientRect());
        if (kids.length > 1 && Math.max(...kids.map(r => r.top)) >= Math.min(...kids.map(r => r.bottom))) {
            out.push(`${name(row)} wraps onto more than one line`);
            continue;
        }
        const buttons = Array.from(row.querySelectorAll("button")).filter(shown);
        const tops = buttons.map(b => b.getBoundingClientRect().top);
        if (tops.length > 1 && Math.max(...tops) - Math.min(...tops) > 4) {
            out.push(`${name(row)}: its buttons sit at ${tops.map(Math.round).join(", ")} px`);
        }
    }
    return out;
"##;

/// A `<form>` (or a block) inside a `<p>` in the live page, and the paragraphs the parser made
/// up: an end tag `</p>` with no open paragraph becomes an extra, empty `<p>`.
const PARAGRAPHS: &str = r##"
    const out = Array.from(document.querySelectorAll("p form, p div, p table"))
        .map(e => `a <${e.tagName.toLowerCase()}> inside a <p>`);
    const written = arguments[0];
    const live = document.querySelectorAll("p").length;
    if (live !== written) out.push(`${live} paragraphs in the page but ${written} in its HTML: the parser closed a <p> early (a form or block inside it)`);
    return out;
"##;

/// The number of `<p>` start tags in the HTML the server sends for the page now shown, in
/// the browser's session: a plain HTTP/1.1 GET with its cookies.
async fn written_paragraphs(page: &Page) -> usize {
    let url = page.client().current_url().await.unwrap();
    let cookie = page
        .client()
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
        &url[url::Position::BeforePath..]
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "GET {url}: {answer}");
    let html = answer.to_ascii_lowercase();
    html.matches("<p>").count() + html.matches("<p ").count()
}

/// Loads `path` in a window whose page is 375 px wide. A phone's scrollbars float over the
/// page; this browser's take room, so the window grows by their width.
async fn phone_width(page: &Page, path: &str) {
    page.client().set_window_size(375, 800).await.unwrap();
    page.goto(path).await;
    // A scrollbar always, so that growing the window by its width cannot make it go away
    // (a page just taller than the window) and leave the page wider than a phone.
    page.js(
        "document.documentElement.style.overflowY = 'scroll'; return null",
        vec![],
    )
    .await;
    let gutter = page
        .js(
            "return window.innerWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .as_u64()
        .expect("a width");
    if gutter > 0 {
        page.client()
            .set_window_size(375 + gutter as u32, 800)
            .await
            .unwrap();
    }
    let width = page
        .js("return document.documentElement.clientWidth", vec![])
        .await;
    assert_eq!(width, 375, "the page is a phone's width");
}

async fn problems(page: &Page, script: &str, args: Vec<Value>) -> Vec<String> {
    serde_json::from_value(page.js(script, args).await).expect("a list of problems")
}

async fn admin_pages_fit_a_phone_and_keep_rows_together_on_a_laptop(
    backend: Backend,
    client: Client,
) {
    let site = site(backend).await;
    let page = Page::new(client, &site.app);
    let mut pages = vec![("login", "/admin/login".to_owned())];
    pages.extend(site.admin.iter().map(|(n, p)| (*n, p.clone())));
    let mut found = Vec::new();
    for (name, path) in &pages {
        if *name == "dashboard" {
            page.sign_in(EDITOR).await;
        }
        phone_width(&page, path).await;
        let mut here: Vec<String> = problems(&page, OVERFLOW, vec![])
            .await
            .into_iter()
            .map(|p| format!("at 375 px: {p}"))
            .collect();
        page.client().set_window_size(1280, 900).await.unwrap();
        page.goto(path).await;
        let at_1280 = problems(&page, OVERFLOW, vec![]).await;
        here.extend(at_1280.into_iter().map(|p| format!("at 1280 px: {p}")));
        here.extend(problems(&page, ROWS, vec![]).await);
        let written = written_paragraphs(&page).await;
        here.extend(problems(&page, PARAGRAPHS, vec![written.into()]).await);
        eprintln!("layout {name} ({path}): {} problem(s)", here.len());
        found.extend(here.into_iter().map(|p| format!("{name} ({path}): {p}")));
    }
    assert!(found.is_empty(), "layout problems:\n{}", found.join("\n"));
}
