//! A browser pointed at one instance, with the few verbs the tests need: go, click, type, read,
//! wait. Every wait is bounded.

use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::helpers::{EDITOR_PASSWORD, TestApp};

/// How long a page or an element may take to appear.
const WAIT: Duration = Duration::from_secs(15);

/// Something on the page to act on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A CSS selector.
    Css(&'a str),
    /// A button by its visible text.
    Button(&'a str),
    /// A link by its visible text.
    Link(&'a str),
    /// An XPath expression.
    XPath(&'a str),
}

impl Target<'_> {
    fn xpath(&self) -> Option<String> {
        match self {
            Target::Button(text) => Some(format!("//button[normalize-space()={}]", quote(text))),
            Target::Link(text) => Some(format!("//a[normalize-space()={}]", quote(text))),
            Target::XPath(x) => Some((*x).to_owned()),
            Target::Css(_) => None,
        }
    }
}

/// An XPath string literal.
fn quote(text: &str) -> String {
    if text.contains('"') {
        format!("'{text}'")
    } else {
        format!("\"{text}\"")
    }
}

/// The browser, on one running instance.
pub struct Page {
    client: Client,
    base: String,
}

impl Page {
    /// `client` browsing the instance `app`.
    pub fn new(client: Client, app: &TestApp) -> Page {
        Page {
            client,
            base: app.address.clone(),
        }
    }

    /// The WebDriver client, for what the verbs here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Loads `path` on the instance.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    }

    /// The current page's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for `target` to be on the page, and returns it.
    pub async fn find(&self, target: Target<'_>) -> Element {
        let xpath = target.xpath();
        let locator = match (&target, &xpath) {
            (Target::Css(css), _) => Locator::Css(css),
            (_, Some(x)) => Locator::XPath(x),
            _ => unreachable!(),
        };
        match self.client.wait().at_most(WAIT).for_element(locator).await {
            Ok(element) => element,
            Err(e) => panic!("{target:?} is not on {}: {e}", self.describe().await),
        }
    }

    /// Whether `css` matches anything on the page now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("a query")
            .is_empty()
    }

    /// Clicks `target` (a real click, where the element is).
    pub async fn click(&self, target: Target<'_>) {
        self.find(target)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {target:?}: {e}"));
    }

    /// Clicks `target` and waits for the page it leads to.
    pub async fn click_through(&self, target: Target<'_>) {
        let element = self.find(target).await;
        self.mark_page().await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {target:?}: {e}"));
        self.wait_for_new_page(&format!("clicking {target:?}"))
            .await;
    }

    /// Clicks `target` and checks that the page stays (a form the browser keeps back).
    pub async fn click_and_stay(&self, target: Target<'_>) {
        let element = self.find(target).await;
        self.js("window.__stay = true;", vec![]).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {target:?}: {e}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stayed = self.js("return window.__stay === true;", vec![]).await;
        assert_eq!(stayed, true, "clicking {target:?} left the page");
    }

    /// Empties the field `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(Target::Css(css)).await;
        field.clear().await.expect("the field clears");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Picks the option shown as `label` in the select `css`.
    pub async fn choose(&self, css: &str, label: &str) {
        self.find(Target::Css(css))
            .await
            .select_by_label(label)
            .await
            .unwrap_or_else(|e| panic!("choosing {label:?} in {css}: {e}"));
    }

    /// The visible text of the first match of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(Target::Css(css))
            .await
            .text()
            .await
            .expect("an element's text")
    }

    /// The `value` of every field matching `css`, in order.
    pub async fn values(&self, css: &str) -> Vec<String> {
        let script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.value)";
        let found = self.js(script, vec![Value::from(css)]).await;
        serde_json::from_value(found).expect("a list of values")
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits (up to fifteen seconds) until the expression `condition` is true in the page.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        let script = format!("return !!({condition});");
        let deadline = Instant::now() + WAIT;
        loop {
            // A page that is being replaced may refuse the script for a moment.
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!("waited {WAIT:?} for {what} on {}", self.describe().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) {
        let condition = format!(
            "(document.querySelector({css}) || {{}}).textContent?.includes({needle})",
            css = Value::from(css),
            needle = Value::from(needle),
        );
        self.wait_until(&format!("{css} to say {needle:?}"), &condition)
            .await;
    }

    /// The flash message at the top of an admin page.
    pub async fn flash(&self) -> String {
        self.text(".flash").await
    }

    /// Signs in as `email` (an editor with the harness's password) through the login form.
    pub async fn sign_in(&self, email: &str) {
        self.goto("/admin/login").await;
        self.fill("#email", email).await;
        self.fill("#password", EDITOR_PASSWORD).await;
        self.click_through(Target::Button("Sign in")).await;
        assert_eq!(
            self.path().await,
            "/admin",
            "signed in and on the dashboard"
        );
    }

    /// Presses and releases `key` (keyboard actions, as a person would).
    pub async fn press(&self, key: Key) {
        self.keys(&[char::from(key)]).await;
    }

    /// Presses `key` and waits for the page it leads to.
    pub async fn press_through(&self, key: Key) {
        self.mark_page().await;
        self.press(key).await;
        self.wait_for_new_page(&format!("pressing {key:?}")).await;
    }

    /// Types `text` key by key into whatever has the focus (`\n` is Enter).
    pub async fn type_text(&self, text: &str) {
        let keys: Vec<char> = text
            .chars()
            .map(|c| if c == '\n' { char::from(Key::Enter) } else { c })
            .collect();
        self.keys(&keys).await;
    }

    async fn keys(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".into());
        for &value in keys {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("key actions failed: {e}"));
    }

    /// Marks the current document, so that a new one can be told from it.
    async fn mark_page(&self) {
        self.js("window.__oldPage = true;", vec![]).await;
    }

    /// Waits until a document without the mark has loaded.
    async fn wait_for_new_page(&self, after: &str) {
        self.wait_until(
            &format!("a new page after {after}"),
            "!window.__oldPage && document.readyState === 'complete'",
        )
        .await;
    }

    /// The current address and the start of the page's text, for failure messages.
    pub async fn describe(&self) -> String {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(_) => "?".to_owned(),
        };
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let text: String = text.chars().take(600).collect();
        format!("{url}\n---\n{text}\n---")
    }
}

/// The id at the end of an admin path such as `/admin/issues/12`.
pub fn id_in(path: &str, prefix: &str) -> i64 {
    path.strip_prefix(prefix)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id after {prefix} in {path}"))
}
