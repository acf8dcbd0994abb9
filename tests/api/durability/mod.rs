//! What the instance acknowledges is on disk before the acknowledgement leaves: the "check your
//! inbox" answer to a signup, the "you are unsubscribed" answer to a one-click unsubscribe, and,
//! for a copy of an issue the relay accepted, the start of the SMTP transaction that the
//! sending slot holds back until that acceptance is recorded (its copy after next: the bound on
//! duplicates after a crash rests on that record).
//!
//! The real `fortnight serve` runs under `strace -f`, which records in order every write to
//! the database's log (`-wal`), every sync of it, and every write to a socket. For each
//! acknowledgement, the frames that hold the request's data are found in the log by content
//! (the address; the relay's unique "queued as" id, which Fortnight stores with the copy), then
//! the commit frame of their transaction; a sync of the log must begin after that frame was
//! written and return before the acknowledgement's first byte is written. That is the
//! kernel's own contract (written data survives a power cut once a sync of the file has
//! returned) checked against the moment a person or a relay can learn of the answer, on the
//! real binary and file system. A crash-simulating file layer would need a VFS built into the
//! binary and would only see a loss when its simulated cut landed inside the window; the
//! order in the trace shows the window itself. The same check run with
//! `sqlite_synchronous = "normal"` must find answers that went out before the sync, so it can
//! fail.
//!
//! SQLite only: `sqlite_synchronous` governs SQLite's file; PostgreSQL syncs every commit
//! itself (`synchronous_commit = on`), and the rest of the suite runs on both databases.
//! Needs `strace` (and permission to trace); without it the tests skip, saying so, unless
//! `STRACE_TEST_REQUIRED=1` (set by `.ci/run`).

mod relay;
mod trace;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fortnight::domain::{
    IssueDraft, IssueInput, SubscriberEmail, SubscriberName, SubscriberStatus,
};
use fortnight::store::subscriber_import::{ImportRow, insert};
use fortnight::store::{Db, issues};
use secrecy::SecretString;

use crate::helpers::{Backend, CapturedMail, TestDatabase, link_path};
use relay::Relay;
use trace::{Trace, Verdict};

/// Readers of the issue; the first two unsubscribe from their copy.
const READERS: usize = 5;
/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_signups_unsubscribes_and_deliveries_are_synced_before_the_answer() {
    let Some(found) = traced_run("full").await else {
        return;
    };
    for (kind, verdicts) in found.kinds() {
        for verdict in verdicts {
            assert!(verdict.synced(), "{kind}: {verdict}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_synchronous_normal_answers_go_out_before_the_sync() {
    let Some(found) = traced_run("normal").await else {
        return;
    };
    for (kind, verdicts) in found.kinds() {
        assert!(
            verdicts.iter().all(|v| !matches!(v, Verdict::NotFound(_))),
            "{kind}: the check itself found nothing to judge: {verdicts:#?}"
        );
        assert!(
            verdicts.iter().any(|v| matches!(v, Verdict::NotSynced(_))),
            "{kind}: every answer was synced first even with synchronous = NORMAL: {verdicts:#?}"
        );
    }
}

/// What the trace says about each acknowledgement.
struct Found {
    signups: Vec<Verdict>,
    unsubscribes: Vec<Verdict>,
    deliveries: Vec<Verdict>,
}

impl Found {
    fn kinds(&self) -> [(&str, &Vec<Verdict>); 3] {
        [
            ("signup", &self.signups),
            ("unsubscribe", &self.unsubscribes),
            ("delivery", &self.deliveries),
        ]
    }
}

/// Three signups, a send to `READERS` readers, and two one-click unsubscribes against the real
/// binary under strace with `sqlite_synchronous = synchronous`; `None` when strace cannot run.
async fn traced_run(synchronous: &str) -> Option<Found> {
    if !strace_works() {
        return None;
    }
    let database = TestDatabase::create(Backend::Sqlite).await;
    let db = Db::connect(&SecretString::from(database.url()), 2, Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let readers = seed_readers(&db).await;
    let issue = create_issue(&db).await;
    let relay = Relay::start();
    let dir = tempfile::tempdir().unwrap();
    let trace_file = dir.path().join("trace");
    let server = Server::start(&database.url(), relay.port, synchronous, &trace_file);

    let mut signups = Vec::new();
    for i in 0..3 {
        let body = format!("email=signup{i}%40durable.test&name=");
        let (client, answer) = post(server.port, "/subscribe", body).await;
        assert!(answer.contains("Check your inbox"), "{answer}");
        signups.push((client, format!("signup{i}@durable.test")));
    }
    wait_until("the three confirmations", || relay.accepted().len() >= 3).await;

    assert!(
        issues::start_sending(&db, issue, chrono::Utc::now())
            .await
            .unwrap()
    );
    let copies = || {
        relay
            .accepted()
            .into_iter()
            .filter(|m| readers.contains(&m.to[0]))
            .collect::<Vec<_>>()
    };
    wait_until("a copy for every reader", || copies().len() >= READERS).await;

    let mut unsubscribes = Vec::new();
    for reader in &readers[..2] {
        let copy = copies().into_iter().find(|m| &m.to[0] == reader).unwrap();
        let mail = CapturedMail {
            from: String::new(),
            to: copy.to,
            raw: copy.raw,
            accepted_at: std::time::Instant::now(),
        };
        let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
        let path = link_path(&header, "/unsubscribe/");
        let (client, answer) = post(server.port, &path, "List-Unsubscribe=One-Click".into()).await;
        assert!(answer.contains("You are unsubscribed"), "{answer}");
        unsubscribes.push((client, reader.clone()));
    }
    server.stop();
    db.close().await;

    let trace = Trace::parse(&std::fs::read_to_string(&trace_file).unwrap());
    let answered = |(client, marker): &(u16, String)| {
        let accepted = trace.accepted(*client).expect("the connection's accept");
        let answer = trace
            .sends_to(*client)
            .find(|c| c.start > accepted)
            .expect("the answer");
        trace.synced_before(marker, accepted, answer.start)
    };
    let found = Found {
        signups: signups.iter().map(answered).collect(),
        unsubscribes: unsubscribes.iter().map(answered).collect(),
        deliveries: deliveries(&trace, &relay, &readers),
    };
    for (kind, verdicts) in found.kinds() {
        for verdict in verdicts {
            eprintln!("{synchronous}: {kind}: {verdict}");
        }
    }
    Some(found)
}

/// For each copy of the issue, whether its acceptance was synced before the slot began the
/// transaction it holds back for it (the copy after next on the same connection).
fn deliveries(trace: &Trace, relay: &Relay, readers: &[String]) -> Vec<Verdict> {
    let accepted = relay.accepted();
    let copies: Vec<(usize, String, String)> = trace
        .transactions(relay.port)
        .into_iter()
        .filter(|(_, _, to)| readers.contains(to))
        .collect();
    assert_eq!(copies.len(), READERS, "one transaction per reader");
    copies
        .windows(3)
        .map(|w| {
            let ((start, fd, to), (next_start, next_fd, _)) = (&w[0], &w[2]);
            assert_eq!(fd, next_fd, "one slot, one connection");
            let queue_id = &accepted.iter().find(|m| &m.to[0] == to).unwrap().queue_id;
            trace.synced_before(queue_id, *start, *next_start)
        })
        .collect()
}

/// Whether strace can trace a child here; says so loudly when it cannot.
fn strace_works() -> bool {
    let works = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var("STRACE_TEST_REQUIRED").as_deref() != Ok("1"),
            "STRACE_TEST_REQUIRED=1 but strace is missing or may not trace here"
        );
        eprintln!(
            "SKIPPED: the durability test did not run: strace is missing or may not trace here \
             (apt-get install strace)"
        );
    }
    works
}

/// `fortnight serve` under strace, in its own process group.
struct Server {
    strace: Child,
    port: u16,
}

impl Server {
    fn start(url: &str, relay: u16, synchronous: &str, trace: &Path) -> Server {
        let calls = "trace=write,writev,sendto,sendmsg,pwrite64,pwritev,pwritev2,fsync,fdatasync,accept,accept4";
        let mut strace = Command::new("strace")
            .args(["-f", "-qq", "-yy", "-xx", "-s", "8192", "-e", calls, "-o"])
            .arg(trace)
            .args([env!("CARGO_BIN_EXE_fortnight"), "serve"])
            .current_dir(trace.parent().unwrap())
            .env("FORTNIGHT_DATABASE_URL", url)
            .env("FORTNIGHT_SQLITE_SYNCHRONOUS", synchronous)
            .env("FORTNIGHT_SMTP_URL", format!("smtp://127.0.0.1:{relay}"))
            .env("FORTNIGHT_BIND", "127.0.0.1:0")
            .env("FORTNIGHT_BASE_URL", "http://news.example.com")
            .env("FORTNIGHT_HTTP_WORKERS", "1")
            .env("FORTNIGHT_SEND_CONCURRENCY", "1")
            .env("FORTNIGHT_SEND_RATE_PER_SECOND", "0")
            .env("FORTNIGHT_MAIL_POLL_INTERVAL", "100ms")
            .env("FORTNIGHT_SIGNUP_RATE_PER_MINUTE", "10000")
            .env("FORTNIGHT_SIGNUP_BURST", "10000")
            .env("FORTNIGHT_SHUTDOWN_GRACE", "2s")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = strace.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let port = line.split("port=").nth(1).and_then(|p| {
                        p.trim_start_matches(|c: char| !c.is_ascii_digit())
                            .split(|c: char| !c.is_ascii_digit())
                            .next()?
                            .parse::<u16>()
                            .ok()
                    });
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(WAIT).ok().flatten();
        let mut server = Server { strace, port: 0 };
        server.port = port.expect("fortnight serve did not say where it listens within 30 s");
        server
    }

    /// SIGTERM to the group: strace holds on (it blocks fatal signals while it runs a
    /// command) until Fortnight has stopped, then writes the rest of the trace and exits.
    fn stop(mut self) {
        self.signal("-TERM");
        let deadline = std::time::Instant::now() + WAIT;
        while self.strace.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "fortnight did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        let group = format!("-{}", self.strace.id());
        let _ = Command::new("kill").args([signal, "--", &group]).status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.strace.try_wait().ok().flatten().is_none() {
            self.signal("-KILL");
            let _ = self.strace.wait();
        }
    }
}

/// Posts a form over a connection of its own (closed after the answer); returns the
/// connection's local port, by which the trace knows it, and the whole answer.
async fn post(port: u16, path: &str, body: String) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let client = stream.local_addr().unwrap().port();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        (client, String::from_utf8_lossy(&answer).into_owned())
    })
    .await
    .unwrap()
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `READERS` active readers; their addresses, lower-cased.
async fn seed_readers(db: &Db) -> Vec<String> {
    let emails: Vec<String> = (0..READERS)
        .map(|i| format!("reader{i}@durable.test"))
        .collect();
    let rows: Vec<ImportRow> = emails
        .iter()
        .map(|email| ImportRow {
            email: SubscriberEmail::parse(email).unwrap(),
            name: SubscriberName::parse_optional(None).unwrap(),
            status: SubscriberStatus::Active,
            created_at: None,
            tags: Vec::new(),
        })
        .collect();
    insert(db, &rows, None, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    emails
}

async fn create_issue(db: &Db) -> i64 {
    let draft = IssueDraft::parse(IssueInput {
        subject: "Durable issue".into(),
        body: "Body.".into(),
        ..IssueInput::default()
    })
    .unwrap();
    issues::create(db, &draft, chrono::Utc::now())
        .await
        .unwrap()
        .id
}
