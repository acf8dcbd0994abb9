//! axe-core (from npm, in `tests/browser/node_modules`) injected into the page under test and
//! run there; its violations, counted by impact, per page.

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::page::Page;

/// Where `npm ci --prefix tests/browser` puts axe-core.
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/node_modules/axe-core/axe.min.js"
);

/// axe-core's source, or `None` (said loudly on stderr) when it is not installed and the
/// browser tests are not required.
pub fn source() -> Option<String> {
    match std::fs::read_to_string(Path::new(AXE)) {
        Ok(source) => Some(source),
        Err(e) => {
            assert!(
                !crate::driver::required(),
                "BROWSER_TEST_REQUIRED=1 but {AXE} cannot be read ({e}): run npm ci --prefix tests/browser"
            );
            eprintln!(
                "SKIPPED: this accessibility test did not run because {AXE} cannot be read ({e}); \
                 run npm ci --prefix tests/browser"
            );
            None
        }
    }
}

/// One rule broken on a page.
#[derive(Debug, Deserialize)]
pub struct Violation {
    pub id: String,
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    pub nodes: Vec<Node>,
}

/// One element that breaks the rule.
#[derive(Debug, Deserialize)]
pub struct Node {
    pub target: Value,
    pub html: String,
}

impl Violation {
    /// Serious and critical violations fail the test; moderate and minor ones are reported.
    pub fn is_blocking(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

/// Runs axe-core on the page now shown. Frames are left out: the one framed page (the email in
/// the preview) is sandboxed, so no script can reach it.
pub async fn check(page: &Page, source: &str) -> Vec<Violation> {
    page.js(&format!("{source}\n;return typeof axe;"), vec![])
        .await;
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ["violations"], iframes: false })
            .then(r => done({ violations: r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({ target: n.target, html: n.html })),
            })) }))
            .catch(e => done({ error: String(e) }));
    "#;
    let result = page
        .client()
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("axe did not run: {e}"));
    if let Some(error) = result.get("error") {
        panic!("axe failed on {}: {error}", page.describe().await);
    }
    serde_json::from_value(result["violations"].clone()).expect("axe's violations")
}

/// One line of counts by impact, then each violation with its elements.
pub fn report(name: &str, violations: &[Violation]) -> String {
    let count = |impact: &str| {
        violations
            .iter()
            .filter(|v| v.impact.as_deref() == Some(impact))
            .count()
    };
    let mut out = format!(
        "axe {name}: {} critical, {} serious, {} moderate, {} minor\n",
        count("critical"),
        count("serious"),
        count("moderate"),
        count("minor"),
    );
    for v in violations {
        let impact = v.impact.as_deref().unwrap_or("unknown");
        let _ = writeln!(out, "  [{impact}] {}: {} ({})", v.id, v.help, v.help_url);
        for node in &v.nodes {
            let _ = writeln!(out, "      at {}: {}", node.target, node.html);
        }
    }
    out
}

/// Checks `path` on `page`, prints its report, and returns the report if anything blocks.
pub async fn audit(page: &Page, source: &str, name: &str, path: &str) -> Option<String> {
    page.goto(path).await;
    audit_current(page, source, name).await
}

/// Checks the page now shown (one reached by a form, say), prints its report, and returns the
/// report if anything blocks.
pub async fn audit_current(page: &Page, source: &str, name: &str) -> Option<String> {
    let violations = check(page, source).await;
    let dark = page
        .js(
            "return matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await;
    let scheme = if dark == true { "dark" } else { "light" };
    let heading = format!("{name} ({}, {scheme})", page.path().await);
    let report = report(&heading, &violations);
    eprint!("{report}");
    violations
        .iter()
        .any(Violation::is_blocking)
        .then_some(report)
}
