//! Per-reader rendering throughput: an issue with a 20 KB Markdown body and a dozen links is
//! prepared once, then a finished MIME message (headers, both parts, the reader's name and
//! signed unsubscribe link) is made for each of many readers on one thread.
//!
//! Run: `cargo bench --bench render` (optionally `READERS=500000`).

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use chrono::Utc;
use fortnight::config::Config;
use fortnight::domain::token::LinkKey;
use fortnight::domain::{IssueLink, IssueStatus};
use fortnight::mail::prepared::Reader;
use fortnight::render::Publication;
use fortnight::render::issue::{MailSettings, prepare};
use fortnight::store::issues::Issue;

fn issue() -> Issue {
    let paragraph = "Freight, not harvests, set the price of wheat this year: ships waited at \
                     anchor for weeks, insurers raised their premiums, and the [usual story]\
                     (https://example.com/story) about the weather explains **very little** of it.\n\n";
    let mut body = String::from("## What happened\n\n");
    while body.len() < 20_000 {
        body.push_str(paragraph);
    }
    let links = (1..=12)
        .map(|i| IssueLink {
            title: format!("Link number {i}: a report worth reading"),
            url: format!("https://example.com/reports/{i}"),
            source: "The Ledger".into(),
            note: "One line on why it matters, as the editor wrote it.".into(),
        })
        .collect();
    let now = Utc::now();
    Issue {
        id: 1,
        uid: uuid::Uuid::now_v7(),
        slug: "benchmark".into(),
        subject: "The grain question".into(),
        preheader: "Why freight set the price".into(),
        body,
        links_heading: "Weekly Links".into(),
        links,
        status: IssueStatus::Sending,
        created_at: now,
        updated_at: now,
        published_at: Some(now),
        scheduled_at: Some(now),
        slot_at: None,
        missed_at: None,
        paused_at: None,
        finished_at: None,
        summary: None,
        audience: None,
        audience_label: None,
    }
}

fn main() {
    let readers: usize = std::env::var("READERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let config = Config {
        base_url: "https://news.example.com".parse().unwrap(),
        postal_address: "1 Example Street, Springfield".into(),
        ..Config::default()
    };
    let publication = Publication {
        name: config.publication_name.clone(),
        pitch: config.publication_pitch.clone(),
        base_url: config.base().to_owned(),
    };
    let settings = MailSettings::from_config(&config);
    let key = LinkKey::generate();
    let issue = issue();

    let started = Instant::now();
    let prepared = prepare(&issue, &publication, &settings, "", SystemTime::now()).unwrap();
    let prepare_time = started.elapsed();

    let emails: Vec<String> = (0..1000)
        .map(|i| format!("reader{i}@example.com"))
        .collect();
    let uids: Vec<uuid::Uuid> = (0..1000).map(|_| uuid::Uuid::now_v7()).collect();
    let mut bytes = 0usize;
    let started = Instant::now();
    for i in 0..readers {
        let uid = uids[i % 1000];
        let unsubscribe_url = publication.unsubscribe_url(&key, &uid);
        let manage_url = publication.manage_url(&key, &uid);
        let reader = Reader {
            return_path: None,
            email: &emails[i % 1000],
            name: (i % 2 == 0).then_some("Ada Lovelace"),
            uid,
            unsubscribe_url: &unsubscribe_url,
            manage_url: &manage_url,
        };
        let (envelope, message) = prepared.for_reader(black_box(&reader)).unwrap();
        bytes += black_box(message).len();
        black_box(envelope);
    }
    let elapsed = started.elapsed();
    let rate = readers as f64 / elapsed.as_secs_f64();
    println!("prepare (render, sanitize, inline CSS, encode): {prepare_time:.2?}");
    println!(
        "per reader: {readers} messages in {elapsed:.2?} = {rate:.0} messages/s on one thread, \
         average message {:.1} KB",
        bytes as f64 / readers as f64 / 1024.0
    );
}
