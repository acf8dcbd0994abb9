//! Golden tests: a fixed issue renders to exactly the HTML and text parts kept in
//! `tests/golden/`. After an intended change to the templates, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test rendering` and review the diff.

use chrono::{TimeZone, Utc};
use fortnight::config::Config;
use fortnight::domain::{IssueLink, IssueStatus};
use fortnight::render::Publication;
use fortnight::render::issue::{MailSettings, prepare, preview};
use fortnight::store::issues::Issue;

fn fixed_issue() -> Issue {
    let at = Utc.with_ymd_and_hms(2026, 9, 3, 8, 0, 0).unwrap();
    Issue {
        id: 7,
        uid: "0192b3c4-0000-7000-8000-000000000007".parse().unwrap(),
        slug: "the-grain-question".into(),
        subject: "The grain question".into(),
        preheader: "Why freight, not harvests, set the price this year".into(),
        body: "## What happened\n\nWheat fell **12%** in a month. The [usual story](https://example.com/story) \
               blames the harvest; the numbers say *freight*.\n\n> Ships waited, and so did prices.\n\n\
               - Rates doubled\n- Stocks held\n\n![A chart of freight rates](https://example.com/chart.png)\n"
            .into(),
        links_heading: "Weekly Links".into(),
        links: vec![
            IssueLink {
                title: "Where the ships wait".into(),
                url: "https://example.com/ships".into(),
                source: "The Ledger".into(),
                note: "The clearest map of the queue.".into(),
            },
            IssueLink {
                title: "A dissent".into(),
                url: "https://example.org/dissent?a=1&b=2".into(),
                source: String::new(),
                note: String::new(),
            },
        ],
        status: IssueStatus::Draft,
        created_at: at,
        updated_at: at,
        published_at: None,
        scheduled_at: None,
        slot_at: None,
        missed_at: None,
        paused_at: None,
        finished_at: None,
        summary: None,
        audience: None,
        audience_label: None,
    }
}

fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from {}; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff.\n--- actual ---\n{actual}",
        path.display()
    );
}

#[test]
fn a_fixed_issue_renders_to_the_golden_parts() {
    let config = Config {
        publication_name: "The Fortnightly Ledger".into(),
        base_url: "https://news.example.com".parse().unwrap(),
        postal_address: "1 Example Street, Springfield".into(),
        ..Config::default()
    };
    let publication = Publication {
        name: config.publication_name.clone(),
        pitch: "Analysis, every other week.".into(),
        base_url: config.base().to_owned(),
    };
    let settings = MailSettings::from_config(&config);
    let prepared = prepare(
        &fixed_issue(),
        &publication,
        &settings,
        "",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let (text, html) = preview(
        &prepared,
        "https://news.example.com/unsubscribe/TOKEN",
        "https://news.example.com/manage/TOKEN",
    );
    check("issue.txt", &text);
    check("issue.html", &html);
}
