//! Sending throughput and memory: an issue whose finished message is about 20 KB (Markdown
//! body of `BODY_BYTES`, default 5,500, in both parts, quoted-printable) to N confirmed readers,
//! sent by a real `fortnight worker` process to Postfix's `smtp-sink` on loopback; then
//! `smtp-source -d -l 20480` with as many connections, in the same run, as the reference.
//! SQLite runs with `sqlite_synchronous = normal` and `full` in turns, `ROUNDS` times (default 4,
//! each mode first in every other round), and the medians are compared; then with `full` and
//! every copy DKIM-signed, by an RSA-2048 key and by an Ed25519 key.
//!
//! Needs `smtp-sink` and `smtp-source` (Debian package `postfix`). Run:
//! `cargo bench --bench delivery` (env: `READERS`, default 100000; `CONNECTIONS`, default 8;
//! `POSTGRES_BENCH_URL` to run the PostgreSQL half too; `SKIP_SQLITE` to run only that;
//! `SKIP_DKIM` to leave out the signed runs; `ROUNDS` for the SQLite comparison).
//!
//! `HISTORY=50` runs the retention benchmark instead: on one database, the send rate and the
//! report's time with no past sends, with 50 past sends of every reader kept whole (a year of
//! rows), and after retention folded them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fortnight::domain::{
    IssueDraft, IssueInput, SubscriberEmail, SubscriberName, SubscriberStatus,
};
use fortnight::store::subscriber_import::{self, ImportRow};
use fortnight::store::{Db, issues, sends};
use secrecy::SecretString;

const SINK: &str = "127.0.0.1:2526";

fn env(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds a process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of a process, in MB (VmHWM).
fn peak_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn prepare(url: &str, readers: usize) -> (Db, i64) {
    let db = Db::connect(&SecretString::from(url.to_owned()), 8, Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    for start in (0..readers).step_by(2500) {
        let rows: Vec<ImportRow> = (start..(start + 2500).min(readers))
            .map(|i| ImportRow {
                email: SubscriberEmail::parse(&format!("reader{i}@example.com")).unwrap(),
                name: SubscriberName::parse_optional(Some(&format!("Reader {i}"))).unwrap(),
                status: SubscriberStatus::Active,
                created_at: None,
                tags: Vec::new(),
            })
            .collect();
        subscriber_import::insert(&db, &rows, None, now)
            .await
            .unwrap();
    }
    let issue = make_issue(&db, "Benchmark issue", now).await;
    (db, issue)
}

/// A draft of about 20 KB as sent, ready to start.
async fn make_issue(db: &Db, subject: &str, now: chrono::DateTime<chrono::Utc>) -> i64 {
    let paragraph = "Freight, not harvests, set the price of wheat this year: ships waited at anchor \
                     for weeks, insurers raised their premiums, and the [usual story](https://example.com/s) \
                     explains **very little** of it.\n\n";
    let body = paragraph.repeat(env("BODY_BYTES", 5_500) / paragraph.len() + 1);
    let draft = IssueDraft::parse(IssueInput {
        subject: subject.into(),
        body,
        ..IssueInput::default()
    })
    .unwrap();
    let issue = issues::create(db, &draft, now).await.unwrap();
    let publication = fortnight::render::Publication {
        name: "Bench".into(),
        pitch: String::new(),
        base_url: "http://127.0.0.1:8080".into(),
    };
    let settings =
        fortnight::render::issue::MailSettings::from_config(&fortnight::config::Config::default());
    let prepared = fortnight::render::issue::prepare(
        &issue,
        &publication,
        &settings,
        "",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let unsubscribe = "http://127.0.0.1:8080/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let reader = fortnight::mail::prepared::Reader {
        return_path: None,
        email: "reader1@example.com",
        name: Some("Reader 1"),
        uid: uuid::Uuid::now_v7(),
        unsubscribe_url: unsubscribe,
        manage_url: "http://127.0.0.1:8080/manage/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    let (_, message) = prepared.for_reader(&reader).unwrap();
    println!("message size: {:.1} KB", message.len() as f64 / 1024.0);
    issue.id
}

/// A DKIM key for the worker: its selector and PEM file.
type DkimKey<'a> = Option<(&'a str, &'a std::path::Path)>;

fn worker(url: &str, connections: usize, synchronous: &str, dkim: DkimKey<'_>) -> Child {
    let mut command = match std::env::var("PROFILE") {
        Ok(out) => {
            let mut perf = Command::new("perf");
            perf.args([
                "record",
                "-g",
                "-o",
                &out,
                "--",
                env!("CARGO_BIN_EXE_fortnight"),
            ]);
            perf
        }
        Err(_) => Command::new(env!("CARGO_BIN_EXE_fortnight")),
    };
    command
        .arg("worker")
        .env("FORTNIGHT_DATABASE_URL", url)
        .env("FORTNIGHT_SMTP_URL", format!("smtp://{SINK}"))
        .env("FORTNIGHT_SEND_RATE_PER_SECOND", "0")
        .env("FORTNIGHT_SEND_CONCURRENCY", connections.to_string())
        .env("FORTNIGHT_SQLITE_SYNCHRONOUS", synchronous)
        .env("FORTNIGHT_MAIL_POLL_INTERVAL", "100ms")
        .env("RUST_LOG", "warn");
    if let Some((selector, key)) = dkim {
        command
            .env("FORTNIGHT_DKIM_SELECTOR", selector)
            .env("FORTNIGHT_DKIM_PRIVATE_KEY", key)
            .env("FORTNIGHT_DKIM_DOMAIN", "example.com");
    }
    command
        .stdout(Stdio::null())
        .spawn()
        .expect("the fortnight binary")
}

/// Sends the issue to `readers` through a worker with `sqlite_synchronous = synchronous`;
/// returns the rate in messages/s.
async fn run(
    label: &str,
    url: &str,
    readers: usize,
    connections: usize,
    synchronous: &str,
    dkim: DkimKey<'_>,
) -> f64 {
    let (db, id) = prepare(url, readers).await;
    let rate = send(label, &db, id, url, connections, synchronous, dkim).await;
    db.close().await;
    rate
}

/// Starts issue `id` and has a worker send it; returns the rate in messages/s.
async fn send(
    label: &str,
    db: &Db,
    id: i64,
    url: &str,
    connections: usize,
    synchronous: &str,
    dkim: DkimKey<'_>,
) -> f64 {
    let mut child = worker(url, connections, synchronous, dkim);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    assert!(
        issues::start_sending(db, id, chrono::Utc::now())
            .await
            .unwrap()
    );
    let mut peak = 0.0f64;
    loop {
        peak = peak.max(peak_mb(child.id()));
        let issue = issues::get(db, id).await.unwrap().unwrap();
        if issue.status.as_str() == "sent" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the send did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    peak = peak.max(peak_mb(child.id()));
    let cpu = cpu_secs(child.id());
    let progress = sends::progress(db, id, chrono::Utc::now()).await.unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let rate = progress.sent as f64 / took.as_secs_f64();
    println!(
        "{label}: {} messages in {:.1} s = {rate:.0} messages/s ({connections} connections); worker peak RSS {peak:.0} MB, CPU {cpu:.1} s; failed {}",
        progress.sent,
        took.as_secs_f64(),
        progress.failed
    );
    rate
}

/// The report's time (progress and report, as its page reads them): the median of 15, in ms.
async fn report_ms(db: &Db, id: i64) -> f64 {
    let issue = issues::get(db, id).await.unwrap().unwrap();
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let now = chrono::Utc::now();
        sends::progress(db, id, now).await.unwrap();
        fortnight::store::clicks::report(db, &issue, &[], false, false, false, now)
            .await
            .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Adds `past` finished sends of a year ago, one sent delivery row per reader each, as the
/// send loop leaves them.
async fn add_history(db: &Db, past: usize) {
    let long_ago = chrono::Utc::now() - chrono::Duration::days(365);
    for n in 0..past {
        let id = make_issue(db, &format!("Past issue {n}"), long_ago).await;
        fortnight::with_pool!(db, write, |pool| async {
            sqlx::query(
                "UPDATE issues SET status = 'sent', published_at = $2, finished_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(long_ago)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, next_attempt_at, \
                 smtp_reply, sent_at, updated_at) \
                 SELECT $1, id, 'sent', 1, $2, '250 2.0.0 Ok: queued', $2, $2 FROM subscribers",
            )
            .bind(id)
            .bind(long_ago)
            .execute(pool)
            .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await)
        .unwrap();
    }
}

/// `HISTORY=N`: the send rate and the report's time with no past sends, with N past sends of
/// every reader kept whole, and with them folded by retention.
async fn history(label: &str, url: &str, readers: usize, connections: usize, past: usize) {
    let (db, first) = prepare(url, readers).await;
    let mut lines = Vec::new();
    let rate = send(label, &db, first, url, connections, "full", None).await;
    lines.push(("no history", rate, report_ms(&db, first).await));
    let started = Instant::now();
    add_history(&db, past).await;
    println!(
        "{label}: {past} past sends of {readers} readers added in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let second = make_issue(&db, "Second benchmark issue", chrono::Utc::now()).await;
    let rate = send(label, &db, second, url, connections, "full", None).await;
    lines.push(("history kept whole", rate, report_ms(&db, second).await));
    let started = Instant::now();
    let folded = fortnight::store::retention::fold_due(
        &db,
        chrono::Duration::days(90),
        u64::MAX,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let took = started.elapsed().as_secs_f64();
    println!(
        "{label}: retention folded {} rows of {} sends in {took:.0} s ({:.0} rows/s)",
        folded.rows,
        folded.issues_done,
        folded.rows as f64 / took
    );
    let third = make_issue(&db, "Third benchmark issue", chrono::Utc::now()).await;
    let rate = send(label, &db, third, url, connections, "full", None).await;
    lines.push(("history folded", rate, report_ms(&db, third).await));
    for (what, rate, report) in lines {
        println!("{label}, {what}: send {rate:.0} messages/s, report {report:.1} ms");
    }
    db.close().await;
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn reference(connections: usize) {
    let count = 30_000;
    let started = Instant::now();
    let status = Command::new("smtp-source")
        .args([
            "-d",
            "-s",
            &connections.to_string(),
            "-m",
            &count.to_string(),
            "-l",
            "20480",
        ])
        .args(["-f", "a@example.com", "-t", "b@example.com", SINK])
        .status();
    match status {
        Ok(s) if s.success() => println!(
            "smtp-source -d -s {connections} -m {count} -l 20480: {:.0} messages/s",
            count as f64 / started.elapsed().as_secs_f64()
        ),
        _ => println!("smtp-source: not available"),
    }
}

#[tokio::main]
async fn main() {
    let readers = env("READERS", 100_000);
    let connections = env("CONNECTIONS", 8);
    let mut sink = Command::new("smtp-sink")
        .args(["-u", "nobody", "-c", SINK, "1024"])
        .stdout(Stdio::null())
        .spawn()
        .expect("smtp-sink (apt-get install postfix)");
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let past = env("HISTORY", 0);
    if past > 0 {
        if std::env::var("SKIP_SQLITE").is_err() {
            let url = format!("sqlite://{}", dir.path().join("history.db").display());
            history("SQLite", &url, readers, connections, past).await;
        }
        if let Ok(admin_url) = std::env::var("POSTGRES_BENCH_URL") {
            let url = fresh_postgres(&admin_url).await;
            history("PostgreSQL", &url, readers, connections, past).await;
        }
        reference(connections);
        let _ = sink.kill();
        let _ = sink.wait();
        return;
    }
    if std::env::var("SKIP_SQLITE").is_err() {
        // The two modes take turns, each first in every other round (alike for an even number
        // of rounds), so that a slow spell of the machine or the order of the runs weighs on
        // both; the medians are compared.
        let rounds = env("ROUNDS", 4).max(1);
        let (mut normal, mut full) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                ["normal", "full"]
            } else {
                ["full", "normal"]
            };
            for synchronous in order {
                let file = dir.path().join(format!("bench-{synchronous}-{round}.db"));
                let url = format!("sqlite://{}", file.display());
                let label = format!("SQLite (synchronous = {synchronous}), round {}", round + 1);
                let rate = run(&label, &url, readers, connections, synchronous, None).await;
                // Each round's database goes once measured: with a million readers they are large.
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = file.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
                match synchronous {
                    "normal" => normal.push(rate),
                    _ => full.push(rate),
                }
            }
        }
        let (normal, full) = (median(&mut normal), median(&mut full));
        println!(
            "SQLite send rate, median of {rounds}: synchronous = normal {normal:.0} messages/s, full {full:.0} messages/s (full is {:.0}% of normal)",
            100.0 * full / normal
        );
        let mut rates = vec![normal, full];
        let dkim = if std::env::var("SKIP_DKIM").is_ok() {
            Vec::new()
        } else {
            vec![
                ("rsa", fortnight::mail::dkim::Algorithm::Rsa),
                ("ed25519", fortnight::mail::dkim::Algorithm::Ed25519),
            ]
        };
        for (name, algorithm) in dkim {
            let key = dir.path().join(format!("dkim-{name}.pem"));
            let generated = fortnight::mail::dkim::generate(algorithm).unwrap();
            std::fs::write(&key, generated.pem).unwrap();
            let url = format!(
                "sqlite://{}",
                dir.path().join(format!("bench-dkim-{name}.db")).display()
            );
            let label = format!("SQLite (synchronous = full, DKIM {name})");
            rates.push(
                run(
                    &label,
                    &url,
                    readers,
                    connections,
                    "full",
                    Some((name, &key)),
                )
                .await,
            );
        }
        if rates.len() == 4 {
            println!(
                "DKIM: unsigned {:.0} messages/s, RSA-2048 {:.0} messages/s ({:.0}%), Ed25519 {:.0} messages/s ({:.0}%)",
                rates[1],
                rates[2],
                100.0 * rates[2] / rates[1],
                rates[3],
                100.0 * rates[3] / rates[1]
            );
        }
        reference(connections);
    }
    if let Ok(admin_url) = std::env::var("POSTGRES_BENCH_URL") {
        let url = fresh_postgres(&admin_url).await;
        run("PostgreSQL", &url, readers, connections, "full", None).await;
        reference(connections);
    }
    let _ = sink.kill();
    let _ = sink.wait();
}

/// An empty `fortnight_bench_delivery` database on the server of `admin_url`; its URL.
async fn fresh_postgres(admin_url: &str) -> String {
    let admin = Db::connect(
        &SecretString::from(admin_url.to_owned()),
        1,
        Default::default(),
    )
    .await
    .unwrap();
    let Db::Postgres(pool) = &admin else {
        panic!("not a PostgreSQL URL")
    };
    sqlx::query("DROP DATABASE IF EXISTS fortnight_bench_delivery WITH (FORCE)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE fortnight_bench_delivery")
        .execute(pool)
        .await
        .unwrap();
    admin.close().await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path("/fortnight_bench_delivery");
    url.to_string()
}
