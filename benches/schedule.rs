//! The scheduler's two costs:
//! - computing the next 1,000 slots of a cadence with a change in its history (pure);
//! - one tick over 10,000 scheduled issues, none of them due, on SQLite and on PostgreSQL.
//!
//! Run: `cargo bench --bench schedule`. The PostgreSQL half runs when `POSTGRES_BENCH_URL`
//! (or `POSTGRES_TEST_URL`) names a server, e.g. `postgres://postgres@127.0.0.1:5432/postgres`;
//! it creates and drops a database `fortnight_bench_tick`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime, Utc, Weekday};
use fortnight::delivery::Handoff;
use fortnight::domain::cadence::{Cadence, Rule};
use fortnight::domain::{IssueDraft, IssueInput};
use fortnight::render::Publication;
use fortnight::schedule::Scheduler;
use fortnight::store::{Db, issues};
use secrecy::SecretString;

const ISSUES: usize = 10_000;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn slots() {
    let rule = |every, from: &str| {
        Rule::new(
            every,
            Weekday::Thu,
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            fortnight::domain::cadence::Zone::parse("Europe/London").unwrap(),
            from.parse::<NaiveDate>().unwrap(),
        )
        .unwrap()
    };
    let cadence = Cadence::new(vec![rule(1, "2024-01-01"), rule(2, "2026-09-01")]).unwrap();
    let from = "2026-06-01T00:00:00Z".parse().unwrap();
    let times: Vec<Duration> = (0..2000)
        .map(|_| {
            let started = Instant::now();
            let found = std::hint::black_box(cadence.slots_after(std::hint::black_box(from), 1000));
            assert_eq!(found.len(), 1000);
            started.elapsed()
        })
        .collect();
    println!(
        "next 1,000 slots (weekly, then biweekly from a change; Europe/London): median {:?}",
        median(times)
    );
}

async fn tick(label: &str, url: &str) {
    let db = Db::connect(&SecretString::from(url.to_owned()), 8, Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let now = Utc::now();
    for n in 0..ISSUES {
        let draft = IssueDraft::parse(IssueInput {
            subject: format!("Issue {n}"),
            ..IssueInput::default()
        })
        .unwrap();
        let issue = issues::create(&db, &draft, now).await.unwrap();
        let at = now + chrono::Duration::days(1) + chrono::Duration::minutes(n as i64);
        issues::schedule(&db, issue.id, at, None, now)
            .await
            .unwrap();
    }
    let scheduler = Scheduler {
        db: db.clone(),
        handoff: Handoff::default(),
        publication: Arc::new(Publication {
            name: "Bench".into(),
            pitch: String::new(),
            base_url: "http://localhost".into(),
        }),
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        catch_up_grace: Duration::from_secs(6 * 3600),
        reminder_before: Duration::from_secs(24 * 3600),
        draft_ahead: Duration::ZERO,
        delivery_retention: Duration::ZERO,
    };
    let mut times = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let report = scheduler.run_due(now).await.unwrap();
        times.push(started.elapsed());
        assert!(report.started.is_empty());
    }
    println!(
        "{label}: one tick over {ISSUES} scheduled issues, none due: median {:?}",
        median(times)
    );
    db.close().await;
}

#[tokio::main]
async fn main() {
    slots();
    let dir = tempfile::tempdir().unwrap();
    tick(
        "SQLite",
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
    )
    .await;
    let pg = std::env::var("POSTGRES_BENCH_URL").or_else(|_| std::env::var("POSTGRES_TEST_URL"));
    match pg {
        Ok(admin_url) => {
            let admin = Db::connect(
                &SecretString::from(admin_url.clone()),
                1,
                Default::default(),
            )
            .await
            .unwrap();
            let Db::Postgres(pool) = &admin else {
                panic!("not a PostgreSQL URL")
            };
            sqlx::query("DROP DATABASE IF EXISTS fortnight_bench_tick")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("CREATE DATABASE fortnight_bench_tick")
                .execute(pool)
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin_url).unwrap();
            url.set_path("/fortnight_bench_tick");
            tick("PostgreSQL", url.as_str()).await;
            sqlx::query("DROP DATABASE IF EXISTS fortnight_bench_tick")
                .execute(pool)
                .await
                .unwrap();
        }
        Err(_) => println!("PostgreSQL: skipped (set POSTGRES_BENCH_URL)"),
    }
}
