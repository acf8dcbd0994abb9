//! The delivery promise against slow and capped relays, crashes and clean stops: a live
//! worker never loses its claim; a crash doubles at most two copies per SMTP connection, all
//! counted in doubt; the rows of a dead worker are sent within the lease; a clean stop leaves
//! nothing in doubt.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fortnight::clock::Clock;
use fortnight::domain::IssueStatus;
use fortnight::store::sends;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::{another_worker, copies, start_send, wait_status};
use crate::both_databases;
use crate::helpers::{Backend, TestApp, spawn_app_with};

both_databases!(
    a_relay_slower_than_the_lease_gets_one_copy_to_each_reader,
    an_hourly_cap_that_spreads_a_send_over_many_leases_sends_each_copy_once,
    repeated_hard_crashes_lose_nothing_and_double_at_most_two_copies_per_connection,
    a_killed_worker_process_is_recovered_from_within_the_lease,
    one_of_three_instances_killed_mid_send_doubles_only_what_it_held,
    a_clean_stop_mid_send_leaves_nothing_in_doubt,
    a_relay_slow_to_answer_mail_from_during_a_steering_change_costs_no_lease,
    a_worker_that_loses_its_lease_while_alive_registers_again_and_loses_nothing,
    a_cancel_right_after_a_crash_counts_every_copy_that_went_out,
    a_database_that_takes_no_writes_for_longer_than_the_lease_doubles_nobody_for_a_lone_worker,
    a_database_that_takes_no_writes_for_longer_than_the_lease_doubles_two_workers_only_in_doubt,
);

/// Copies beyond the first, over all readers.
fn extra_copies(got: &HashMap<String, Vec<String>>) -> usize {
    got.values().map(|c| c.len().saturating_sub(1)).sum()
}

/// Every reader who got more than one copy has their delivery counted in doubt.
async fn doubles_are_in_doubt(app: &TestApp, id: i64, got: &HashMap<String, Vec<String>>) {
    let rows: Vec<(String, i32)> = fortnight::with_pool!(&app.db, read, |pool| sqlx::query_as(
        "SELECT s.email, d.reclaimed FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
         WHERE d.issue_id = $1"
    )
    .bind(id)
    .fetch_all(pool)
    .await)
    .unwrap();
    let reclaimed: HashMap<String, i32> = rows.into_iter().collect();
    for (reader, ids) in got {
        if ids.len() > 1 {
            assert!(
                reclaimed[reader] > 0,
                "{reader} got {} copies and is not counted in doubt",
                ids.len()
            );
        }
    }
}

/// Each reader's copies keep one Message-ID, and readers' IDs differ.
fn ids_are_per_reader(got: &HashMap<String, Vec<String>>) -> bool {
    let all: std::collections::HashSet<&String> = got.values().flatten().collect();
    all.len() == got.len() && got.values().all(|ids| ids.iter().all(|m| *m == ids[0]))
}

async fn a_relay_slower_than_the_lease_gets_one_copy_to_each_reader(backend: Backend) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.send_rate_per_second = 0;
        c.send_concurrency = 2;
        c.delivery_lease = Duration::from_secs(2);
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("slow", 4).await;
    app.smtp.set_delay(Duration::from_secs(3));
    let id = start_send(&app, &token, "Slow").await;
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    let got = copies(&app.smtp, "Slow");
    assert_eq!(got.len(), 4);
    assert!(got.values().all(|c| c.len() == 1), "{got:?}");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!((progress.sent, progress.in_doubt), (4, 0), "{progress:?}");
}

async fn an_hourly_cap_that_spreads_a_send_over_many_leases_sends_each_copy_once(backend: Backend) {
    // 3,600 an hour is one a second, evenly: five readers take four seconds, four leases.
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.send_rate_per_second = 5;
        c.send_rate_per_hour = Some(3600);
        c.delivery_lease = Duration::from_secs(1);
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("capped", 5).await;
    let id = start_send(&app, &token, "Capped").await;
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    let got = copies(&app.smtp, "Capped");
    assert_eq!(got.len(), 5);
    assert!(got.values().all(|c| c.len() == 1), "{got:?}");
    let mut accepted: Vec<Instant> = app.smtp.messages().iter().map(|m| m.accepted_at).collect();
    accepted.sort();
    let spread = *accepted.last().unwrap() - accepted[0];
    assert!(
        spread >= Duration::from_millis(3500),
        "the cap held: {spread:?}"
    );
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!((progress.sent, progress.in_doubt), (5, 0), "{progress:?}");
}

/// An app without a worker of its own, sending as fast as it can over eight connections to a
/// relay that takes `delay` a message, with a one-second lease.
async fn crash_app(backend: Backend, readers: usize, delay: Duration) -> (TestApp, String, i64) {
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.delivery_worker = false;
        c.send_rate_per_second = 0;
        c.send_concurrency = 8;
        c.delivery_lease = Duration::from_secs(1);
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("crash", readers).await;
    app.smtp.set_delay(delay);
    let id = start_send(&app, &token, "Crash").await;
    (app, token, id)
}

async fn repeated_hard_crashes_lose_nothing_and_double_at_most_two_copies_per_connection(
    backend: Backend,
) {
    let connections = 8;
    // About 250 copies a second: six crash cycles of under two seconds come mid-send.
    let readers = 4000;
    let (app, _, id) = crash_app(backend, readers, Duration::from_millis(30)).await;
    let mut rng = rand::rng();
    let mut crashes = 0;
    let mut doubled = 0;
    for _ in 0..6 {
        let worker = another_worker(&app).await;
        let db = worker.db.clone();
        let task = tokio::spawn(worker.run(CancellationToken::new()));
        // Long enough for the last dead worker's rows to be taken again and sent, then a
        // crash at a random moment: the task is aborted and its connections dropped.
        tokio::time::sleep(Duration::from_millis(1600 + rng.random_range(0..500))).await;
        let before = extra_copies(&copies(&app.smtp, "Crash"));
        assert!(
            before - doubled <= 2 * connections,
            "crash {crashes} doubled {} copies",
            before - doubled
        );
        doubled = before;
        let issue = fortnight::store::issues::get(&app.db, id)
            .await
            .unwrap()
            .unwrap();
        task.abort();
        let _ = task.await;
        db.close().await;
        if issue.status == IssueStatus::Sending {
            crashes += 1;
        }
    }
    let crashed = Instant::now();
    let worker = another_worker(&app).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(worker.run(stop.clone()));
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    let recovered = crashed.elapsed();
    stop.cancel();
    let _ = task.await;
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    let extra = extra_copies(&got);
    eprintln!(
        "{crashes} crashes mid-send: {extra} extra copies, {} in doubt, finished {recovered:?} after the last; {progress:?}",
        progress.in_doubt
    );
    assert!(crashes >= 4, "the crashes came mid-send ({crashes})");
    assert_eq!(got.len(), readers, "nobody is skipped");
    assert_eq!(progress.sent, readers as i64, "{progress:?}");
    assert!(extra - doubled <= 2 * connections, "the last crash");
    assert!(
        extra as i64 <= progress.in_doubt,
        "every duplicate is counted in doubt: {extra} > {}",
        progress.in_doubt
    );
    // What a worker holds: two per connection in its slots, up to four per slot in reserve.
    assert!(
        progress.in_doubt <= (crashes * 6 * connections) as i64,
        "in doubt counts not many more than what the crashes held: {}",
        progress.in_doubt
    );
    assert!(ids_are_per_reader(&got), "copies keep their Message-ID");
    doubles_are_in_doubt(&app, id, &got).await;
}

/// `fortnight worker` as a child process on the app's database and relay.
fn worker_process(app: &TestApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fortnight"))
        .arg("worker")
        .env("FORTNIGHT_DATABASE_URL", &app.database_url)
        .env(
            "FORTNIGHT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", app.smtp.port()),
        )
        .env("FORTNIGHT_SEND_RATE_PER_SECOND", "0")
        .env("FORTNIGHT_SEND_CONCURRENCY", "8")
        .env("FORTNIGHT_DELIVERY_LEASE", "1s")
        .env("FORTNIGHT_MAIL_POLL_INTERVAL", "50ms")
        .env("FORTNIGHT_BASE_URL", "http://news.example.com")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the fortnight binary")
}

async fn a_killed_worker_process_is_recovered_from_within_the_lease(backend: Backend) {
    // About 250 copies a second: three kills under two seconds apart come mid-send.
    let readers = 3000;
    let (app, _, id) = crash_app(backend, readers, Duration::from_millis(30)).await;
    let mut rng = rand::rng();
    let mut doubled = 0;
    for kill in 0..3 {
        let mut child = worker_process(&app);
        tokio::time::sleep(Duration::from_millis(1500 + rng.random_range(0..500))).await;
        let before = extra_copies(&copies(&app.smtp, "Crash"));
        assert!(
            before - doubled <= 16,
            "kill {kill} doubled {}",
            before - doubled
        );
        doubled = before;
        // SIGKILL: no handler runs, sockets are closed by the kernel.
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let killed = Instant::now();
    let mut child = worker_process(&app);
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    let recovered = killed.elapsed();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    let extra = extra_copies(&got);
    eprintln!(
        "3 kills: {extra} extra copies, {} in doubt, finished {recovered:?} after the last",
        progress.in_doubt
    );
    assert_eq!(got.len(), readers);
    assert!(extra - doubled <= 16);
    assert!(extra as i64 <= progress.in_doubt);
    assert!(ids_are_per_reader(&got));
    doubles_are_in_doubt(&app, id, &got).await;
}

async fn one_of_three_instances_killed_mid_send_doubles_only_what_it_held(backend: Backend) {
    let readers = 3000;
    let (app, _, id) = crash_app(backend, readers, Duration::from_millis(10)).await;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let worker = another_worker(&app).await;
        tasks.push((worker.db.clone(), tokio::spawn(worker.run(stop.clone()))));
    }
    while app.smtp.messages().len() < readers / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (db, victim) = tasks.remove(1);
    victim.abort();
    let _ = victim.await;
    db.close().await;
    wait_status(&app, id, IssueStatus::Sent, 90).await;
    stop.cancel();
    for (_, task) in tasks {
        let _ = task.await;
    }
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    let extra = extra_copies(&got);
    eprintln!(
        "one of three killed: {extra} extra copies, {} in doubt",
        progress.in_doubt
    );
    assert_eq!(got.len(), readers);
    assert!(extra <= 16, "{extra}");
    assert!(extra as i64 <= progress.in_doubt);
    assert!(progress.in_doubt <= 48, "{}", progress.in_doubt);
    doubles_are_in_doubt(&app, id, &got).await;
}

async fn a_clean_stop_mid_send_leaves_nothing_in_doubt(backend: Backend) {
    let readers = 600;
    let (app, _, id) = crash_app(backend, readers, Duration::from_millis(10)).await;
    for _ in 0..3 {
        let worker = another_worker(&app).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(worker.run(stop.clone()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        // What SIGTERM does: stop taking work, finish what is in flight, give the rest back.
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a clean stop is quick")
            .unwrap();
        let held: i64 = fortnight::with_pool!(&app.db, read, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE claimed_by IS NOT NULL"
        )
        .fetch_one(pool)
        .await)
        .unwrap();
        assert_eq!(held, 0, "a stopped worker holds nothing");
    }
    let worker = another_worker(&app).await;
    let stop = CancellationToken::new();
    // Without the stopped workers' rows back at once, this would wait out their leases.
    let started = Instant::now();
    let task = tokio::spawn(worker.run(stop.clone()));
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    stop.cancel();
    let _ = task.await;
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(got.len(), readers);
    assert!(got.values().all(|c| c.len() == 1), "nobody twice");
    assert_eq!(progress.in_doubt, 0, "{progress:?}");
    eprintln!(
        "after three clean stops the send finished {:?} after the last start",
        started.elapsed()
    );
}

async fn a_relay_slow_to_answer_mail_from_during_a_steering_change_costs_no_lease(
    backend: Backend,
) {
    // Every MAIL FROM takes 3 s to answer, longer than the 2 s lease. One worker holds both
    // readers' rows, in their transactions; a second send starts meanwhile (a steering change,
    // which waits for those transactions to start before it is confirmed). The first worker must
    // go on renewing its lease all the while, or the second, idle worker takes its rows over and
    // sends them again.
    let app = spawn_app_with(backend, Clock::System, |c| {
        c.delivery_worker = false;
        c.send_rate_per_second = 0;
        c.send_concurrency = 2;
        c.delivery_lease = Duration::from_secs(2);
    })
    .await;
    let token = app.api_token().await;
    app.seed_active("checked", 2).await;
    app.smtp.set_mail_delay(Duration::from_secs(3));
    let stop = CancellationToken::new();
    let first_worker = tokio::spawn(another_worker(&app).await.run(stop.clone()));
    let first = start_send(&app, &token, "First").await;
    while app.smtp.starts().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Room for the second send's copies and for taking the first one's over, should its lease
    // lapse.
    let mut idle = another_worker(&app).await;
    idle.config = std::sync::Arc::new(fortnight::config::Config {
        send_concurrency: 4,
        ..(*idle.config).clone()
    });
    let second_worker = tokio::spawn(idle.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = start_send(&app, &token, "Second").await;
    wait_status(&app, first, IssueStatus::Sent, 60).await;
    wait_status(&app, second, IssueStatus::Sent, 60).await;
    stop.cancel();
    let _ = tokio::join!(first_worker, second_worker);
    for (subject, id) in [("First", first), ("Second", second)] {
        let got = copies(&app.smtp, subject);
        assert_eq!(got.len(), 2, "{subject}: {got:?}");
        assert!(got.values().all(|c| c.len() == 1), "{subject}: {got:?}");
        let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
        assert_eq!(progress.in_doubt, 0, "{subject}: {progress:?}");
    }
}

/// A [`crash_app`] of `readers` (a fast relay) with a worker run of its own, once the relay
/// has 100 copies; the worker stops when the token is cancelled.
async fn a_hundred_copies_in(
    backend: Backend,
    readers: usize,
) -> (TestApp, i64, CancellationToken, tokio::task::JoinHandle<()>) {
    let (app, _, id) = crash_app(backend, readers, Duration::from_millis(10)).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(another_worker(&app).await.run(stop.clone()));
    while app.smtp.messages().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (app, id, stop, task)
}

/// How many delivery worker registrations there are, live or lapsed.
async fn registrations(app: &TestApp) -> i64 {
    fortnight::with_pool!(&app.db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM delivery_workers"
    )
    .fetch_one(pool)
    .await)
    .unwrap()
}

async fn a_worker_that_loses_its_lease_while_alive_registers_again_and_loses_nothing(
    backend: Backend,
) {
    let readers = 600;
    let (app, id, stop, task) = a_hundred_copies_in(backend, readers).await;
    // As if the worker had been cut off from the database for longer than its lease: its
    // registration is gone, and what it holds may be anyone's.
    fortnight::with_pool!(&app.db, write, |pool| sqlx::query(
        "DELETE FROM delivery_workers"
    )
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap();
    wait_status(&app, id, IssueStatus::Sent, 30).await;
    stop.cancel();
    let _ = task.await;
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(got.len(), readers, "nobody is skipped");
    assert_eq!(progress.sent, readers as i64, "{progress:?}");
    assert!(
        extra_copies(&got) as i64 <= progress.in_doubt,
        "{progress:?}"
    );
    doubles_are_in_doubt(&app, id, &got).await;
    let registered = registrations(&app).await;
    assert_eq!(
        registered, 0,
        "the new registration is removed at the clean stop"
    );
}

async fn a_cancel_right_after_a_crash_counts_every_copy_that_went_out(backend: Backend) {
    let readers = 2000;
    let (app, token, id) = crash_app(backend, readers, Duration::from_millis(30)).await;
    let worker = another_worker(&app).await;
    let db = worker.db.clone();
    let task = tokio::spawn(worker.run(CancellationToken::new()));
    while app.smtp.messages().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;
    db.close().await;
    // The dead worker's lease has not run out yet: the cancel waits for it, then answers.
    let response = app
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/issues/{id}/cancel"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Copies the relay was still taking when the worker died arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(
        (progress.pending, progress.retrying),
        (0, 0),
        "{progress:?}"
    );
    assert_eq!(
        progress.sent + progress.cancelled,
        readers as i64,
        "{progress:?}"
    );
    assert!(
        got.len() as i64 <= progress.sent + progress.in_doubt,
        "every copy that went out is counted sent or in doubt: {} copies, {progress:?}",
        got.len()
    );
    assert!(progress.in_doubt <= 48, "{progress:?}");
}

/// Opens a connection of its own to the app's database, for [`hold_writes`].
async fn lock_holder(app: &TestApp) -> fortnight::store::Db {
    fortnight::store::Db::connect(
        &secrecy::SecretString::from(app.database_url.clone()),
        1,
        fortnight::store::Synchronous::Normal,
    )
    .await
    .unwrap()
}

/// Takes the write lock of the delivery tables (on SQLite, of the whole file) for `hold`, as a
/// database that has stopped taking writes: whatever writes them meanwhile waits for it.
async fn hold_writes(db: &fortnight::store::Db, hold: Duration) {
    let postgres = db.backend() == fortnight::store::Backend::Postgres;
    fortnight::with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let lock = if postgres {
            "LOCK TABLE deliveries, delivery_workers IN EXCLUSIVE MODE"
        } else {
            "UPDATE delivery_steer SET seq = seq WHERE id = 1"
        };
        sqlx::query(lock).execute(&mut *tx).await?;
        tokio::time::sleep(hold).await;
        tx.commit().await
    }
    .await)
    .unwrap();
}

async fn a_database_that_takes_no_writes_for_longer_than_the_lease_doubles_nobody_for_a_lone_worker(
    backend: Backend,
) {
    let readers = 2000;
    let (app, id, stop, task) = a_hundred_copies_in(backend, readers).await;
    let holder = lock_holder(&app).await;
    // Three leases long. The worker's outcomes, claims and heartbeat all wait, and so does its
    // sending once each connection has two copies unrecorded. Its lease runs out meanwhile: the
    // renewal that waited can only set an expiry already past, the next one finds the lease
    // lapsed, and the worker registers anew. A claim still queued under the old registration
    // is not made; one already in the waiting round is made under the lapsed registration, and
    // the worker drops its rows.
    let (_, (early, late)) = tokio::join!(hold_writes(&holder, Duration::from_secs(3)), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let early = app.smtp.messages().len();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        (early, app.smtp.messages().len())
    });
    holder.close().await;
    assert_eq!(
        early, late,
        "nothing is sent while its record cannot be made"
    );
    assert!(late < readers, "the send was cut off mid-way: {late}");
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    let registrations = registrations(&app).await;
    assert_eq!(
        registrations, 2,
        "the first lease ran out while writes waited, and the worker registered anew"
    );
    stop.cancel();
    let _ = task.await;
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(got.len(), readers, "nobody is skipped");
    assert_eq!(extra_copies(&got), 0, "nobody gets two copies: {got:?}");
    assert!(ids_are_per_reader(&got));
    assert_eq!(
        (
            progress.sent,
            progress.failed,
            progress.pending,
            progress.retrying
        ),
        (readers as i64, 0, 0, 0),
        "{progress:?}"
    );
}

async fn a_database_that_takes_no_writes_for_longer_than_the_lease_doubles_two_workers_only_in_doubt(
    backend: Backend,
) {
    let (readers, connections) = (2000, 8);
    let (app, id, stop, first) = a_hundred_copies_in(backend, readers).await;
    let second = tokio::spawn(another_worker(&app).await.run(stop.clone()));
    let holder = lock_holder(&app).await;
    // Both leases run out while writes wait. Afterwards either worker may claim the rows the
    // other held, among them copies that went out but could not be recorded: those readers
    // may get two copies, and every one of them is counted in doubt.
    hold_writes(&holder, Duration::from_secs(3)).await;
    holder.close().await;
    let cut = app.smtp.messages().len();
    assert!(cut < readers, "the send was cut off mid-way: {cut}");
    wait_status(&app, id, IssueStatus::Sent, 60).await;
    stop.cancel();
    let _ = tokio::join!(first, second);
    let got = copies(&app.smtp, "Crash");
    let progress = sends::progress(&app.db, id, app.clock.now()).await.unwrap();
    assert_eq!(got.len(), readers, "nobody is skipped");
    assert_eq!(progress.sent, readers as i64, "{progress:?}");
    assert!(ids_are_per_reader(&got));
    let extra = extra_copies(&got);
    assert!(
        extra as i64 <= progress.in_doubt,
        "{extra} extra copies, {progress:?}"
    );
    assert!(
        extra <= 2 * 2 * connections,
        "at most two copies per connection of each worker: {extra}"
    );
    doubles_are_in_doubt(&app, id, &got).await;
}
