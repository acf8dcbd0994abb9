//! The delivery worker: enqueues the readers of sending issues, claims deliveries a few at a
//! time for as long as it lives, sends each copy from the issue prepared once under the
//! instance's rate limits, and records every outcome as it happens. Any number of workers, in
//! any number of instances, may run against one database: the claim decides who sends what.
//!
//! One worker run is one task made of these loops, so that aborting it stops them all at once
//! (what a crash does):
//! - `send_concurrency` *slots*, each sending one copy at a time over its own connection;
//! - the [claimer](super::claimer), which claims rows for the slots in small batches;
//! - the [recorder](super::recorder), which group-commits the outcomes;
//! - the [beat](super::beat), which keeps the worker's lease alive and applies steering;
//! - the enqueuer, which adds the readers of sending issues to the queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use actix_governor::governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::claimer::{self, Claims};
use super::gate::Gate;
use super::recorder::{self, Recorder};
use super::{Handoff, beat, copy_for};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::{LinkKey, VerpKind, verp_address};
use crate::mail::prepared::PreparedMessage;
use crate::mail::{Mailer, SendError, retry_at};
use crate::render::issue::{MailSettings, prepare};
use crate::render::{Publication, human_duration};
use crate::store::deliveries::{self, Claimed, Outcome};
use crate::store::{Db, StoreError, issues, outbox, sends};

/// The instance's sending limits, shared by all its workers.
pub struct Limits {
    second: Option<DefaultDirectRateLimiter>,
    hour: Option<DefaultDirectRateLimiter>,
}

impl Limits {
    /// From `send_rate_per_second` and `send_rate_per_hour`. The hourly limit is spread
    /// evenly (one message every hour / N, no burst), so no rolling hour ever sees more
    /// than N + 1.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            second: NonZeroU32::new(config.send_rate_per_second)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            hour: config
                .send_rate_per_hour
                .and_then(NonZeroU32::new)
                .map(|n| {
                    let every = Duration::from_secs(3600) / n.get();
                    RateLimiter::direct(
                        Quota::with_period(every)
                            .expect("a positive period")
                            .allow_burst(NonZeroU32::MIN),
                    )
                }),
        }
    }

    async fn wait(&self) {
        if let Some(limit) = &self.hour {
            limit.until_ready().await;
        }
        if let Some(limit) = &self.second {
            limit.until_ready().await;
        }
    }
}

/// A delivery worker; cheap to clone (clones share the transport, limits and cache).
#[derive(Clone)]
pub struct Worker {
    /// The database.
    pub db: Db,
    /// Where messages go.
    pub transport: Mailer,
    /// Retry policy, concurrency, lease, bounce threshold.
    pub config: Arc<Config>,
    /// The time source.
    pub clock: Clock,
    /// Signs unsubscribe links.
    pub link_key: LinkKey,
    /// The publication.
    pub publication: Arc<Publication>,
    /// Headers and footer of issue emails.
    pub settings: Arc<MailSettings>,
    /// Woken when an issue starts or is steered.
    pub handoff: Handoff,
    /// The instance's rate limits.
    pub limits: Arc<Limits>,
    /// Wakes the sender of notices (the send summary).
    pub outbox_wake: Arc<Notify>,
    /// Issues rendered once, by id.
    pub prepared: Arc<Mutex<HashMap<i64, Arc<PreparedMessage>>>>,
}

/// What the loops of one worker run share.
pub(super) struct Run {
    pub worker: Worker,
    /// The registration the worker's claims are held under (renewed by the beat; a new one
    /// after a lost lease).
    pub holder: AtomicI64,
    pub gate: Gate,
    /// Issues whose last claim found no due rows: their send may be complete once what is in
    /// flight is recorded.
    pub drained: std::sync::Mutex<HashSet<i64>>,
    /// Claims start again from the top of each issue (a worker died, or rows were released).
    pub rescan: AtomicBool,
    /// The lease was lost: the claimer drops what it holds (it is no longer ours).
    pub lost: AtomicBool,
    /// A claim failed in a way that may have left rows claimed unknown to the worker: the beat
    /// registers it anew.
    pub rotate: AtomicBool,
    /// Rows may have become due (readers were enqueued).
    pub work: Notify,
    /// The mail server was unreachable; nothing is tried before this instant.
    away_until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Run {
    /// How long the mail server is still considered away.
    pub fn away_for(&self) -> Option<Duration> {
        let until = (*self.away_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        until.checked_duration_since(tokio::time::Instant::now())
    }

    fn server_away(&self, error: &str) {
        let mut until = self.away_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = tokio::time::Instant::now();
        if until.is_none_or(|u| u <= now) {
            tracing::warn!(%error, "mail server unavailable; deliveries wait for it");
            *until = Some(now + self.worker.config.mail_retry_base);
        }
    }

    pub fn holder(&self) -> i64 {
        self.holder.load(Ordering::Acquire)
    }
}

impl Worker {
    /// Runs the worker until `shutdown`: registers, then sends until told to stop; then lets
    /// the copies in flight finish, records them, gives back every row it still holds and
    /// deregisters, so that nothing is left in doubt by a clean stop.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(holder) = beat::register(&self, &shutdown).await else {
            return;
        };
        let concurrency = self.config.send_concurrency;
        let run = Run {
            holder: AtomicI64::new(holder.id),
            gate: Gate::default(),
            drained: Default::default(),
            rescan: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            rotate: AtomicBool::new(false),
            work: Notify::new(),
            away_until: Default::default(),
            worker: self,
        };
        run.gate.renewed(holder.id, holder.valid_until);
        let (ask, asks) = mpsc::channel(concurrency * 2);
        let (record, records) = mpsc::channel(8192);
        let (claim, claims) = mpsc::channel(1);
        let recorder = Recorder::new(record, claim);
        let finished = CancellationToken::new();
        let slots = futures_util::future::join_all(
            (0..concurrency)
                .map(|_| slot(&run, Claims::new(ask.clone()), recorder.clone(), &shutdown)),
        );
        drop(ask);
        let claimer = claimer::run(&run, asks, recorder.clone());
        drop(recorder);
        let recorded = async {
            recorder::run(&run, records, claims).await;
            finished.cancel();
        };
        tokio::join!(
            slots,
            claimer,
            recorded,
            beat::run(&run, &finished),
            enqueuer(&run, &shutdown)
        );
        if let Err(e) =
            crate::store::delivery_workers::deregister(&run.worker.db, run.holder()).await
        {
            tracing::warn!(error = %e, "could not deregister the delivery worker; its lease will run out");
        }
    }

    /// The issue rendered once for its whole send, from the cache.
    async fn prepared(&self, issue_id: i64) -> Result<Option<Arc<PreparedMessage>>, StoreError> {
        if let Some(p) = self.prepared.lock().await.get(&issue_id) {
            return Ok(Some(p.clone()));
        }
        let Some(issue) = issues::get(&self.db, issue_id).await? else {
            return Ok(None);
        };
        let date = issue.published_at.unwrap_or_else(|| self.clock.now());
        let prepared = match prepare(&issue, &self.publication, &self.settings, "", date.into()) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(issue_id, error = %e, "issue cannot be rendered");
                return Ok(None);
            }
        };
        self.prepared
            .lock()
            .await
            .insert(issue_id, prepared.clone());
        Ok(Some(prepared))
    }

    /// Finishes the issue's send if nothing is left, and tells the editors how it went.
    pub(super) async fn complete(&self, issue_id: i64) -> Result<(), StoreError> {
        let now = self.clock.now();
        let Some(summary) = sends::complete_if_done(&self.db, issue_id, now).await? else {
            return Ok(());
        };
        self.prepared.lock().await.remove(&issue_id);
        let subject = issues::get(&self.db, issue_id)
            .await?
            .map(|i| i.subject)
            .unwrap_or_default();
        let p = &summary.progress;
        let text = format!(
            "\"{subject}\" has been sent.\n\nSent: {}\nFailed: {}\nSkipped (left before their turn): {}\n\
             In doubt (held by a worker that died; may have arrived twice): {}\nDuration: {}\n\n\
             Details: {}/admin/issues/{issue_id}/send\n",
            p.sent,
            p.failed,
            p.skipped,
            p.in_doubt,
            human_duration(Duration::from_secs(summary.duration_secs as u64)),
            self.publication.base_url,
        );
        outbox::enqueue_notice_to_editors(&self.db, &format!("Sent: \"{subject}\""), &text, now)
            .await?;
        self.outbox_wake.notify_one();
        tracing::info!(
            issue_id,
            sent = p.sent,
            failed = p.failed,
            skipped = p.skipped,
            "send finished"
        );
        Ok(())
    }
}

/// One sending slot: takes a rate permit, then a row, sends it, hands the outcome to the
/// recorder, and goes on. Before it starts a copy, the outcome of its copy before last must be
/// recorded: so when the worker dies, each slot has at most two copies that may have been
/// accepted without a record (the one in its SMTP transaction and the one before it).
async fn slot(run: &Run, claims: Claims, recorder: Recorder, shutdown: &CancellationToken) {
    let poll = run.worker.config.mail_poll_interval;
    let mut unrecorded: VecDeque<oneshot::Receiver<()>> = VecDeque::with_capacity(2);
    while !shutdown.is_cancelled() {
        if let Some(wait) = run.away_for() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => continue,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = run.worker.limits.wait() => {}
        }
        // Not raced with the shutdown: the claimer always answers soon, and a row it handed
        // over must come back to the recorder either way.
        let Some(row) = claims.next().await else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = run.work.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        };
        if shutdown.is_cancelled() {
            let at = run.worker.clock.now();
            recorder.submit(row, Outcome::Released { at }).await;
            break;
        }
        while unrecorded.len() > 1 {
            if let Some(earlier) = unrecorded.pop_front() {
                let _ = earlier.await;
            }
        }
        let outcome = deliver(run, &row).await;
        unrecorded.push_back(recorder.submit(row, outcome).await);
    }
}

/// Sends one copy and says what became of it.
async fn deliver(run: &Run, row: &Claimed) -> Outcome {
    let worker = &run.worker;
    let Some(reader) = row
        .reader
        .as_ref()
        .filter(|r| r.status.as_str() == "active")
    else {
        return Outcome::Skipped;
    };
    let message = match worker.prepared(row.issue_id).await {
        Ok(Some(message)) => message,
        Ok(None) => {
            return Outcome::Failed {
                error: "the issue cannot be rendered".into(),
                bounce: false,
            };
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not load the issue; the copy goes back to the queue");
            return Outcome::Released {
                at: worker.clock.now(),
            };
        }
    };
    let return_path = worker.config.bounce_address.as_deref().map(|bounce| {
        let token = worker.link_key.verp_token(VerpKind::Delivery, row.id);
        verp_address(bounce, &token)
    });
    let copy = copy_for(
        &message,
        &worker.publication,
        &worker.link_key,
        reader,
        return_path.as_deref(),
    );
    let (envelope, raw) = match copy {
        Ok(copy) => copy,
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
                bounce: false,
            };
        }
    };
    let started = std::time::Instant::now();
    let enter = || run.gate.enter(row.issue_id, row.holder).ok();
    let result = worker.transport.send_raw_when(&envelope, &raw, enter).await;
    crate::telemetry::record_smtp_latency(started.elapsed());
    let tries = row.attempts as u32 + 1;
    match result {
        Ok(Some(reply)) => Outcome::Sent(reply),
        // Paused, cancelled, or the lease is in question: not started, not a try.
        Ok(None) => Outcome::Released {
            at: worker.clock.now(),
        },
        Err(SendError::Permanent(error)) => Outcome::Failed {
            error,
            bounce: true,
        },
        Err(SendError::Unavailable(error)) => {
            run.server_away(&error);
            Outcome::Released {
                at: worker.clock.now() + chrono::Duration::seconds(1),
            }
        }
        Err(SendError::Temporary(error)) if tries >= worker.config.send_max_attempts => {
            Outcome::Failed {
                error: format!("gave up after {tries} tries: {error}"),
                bounce: false,
            }
        }
        Err(SendError::Temporary(error)) => Outcome::Retry {
            at: retry_at(&worker.config, tries as i32, worker.clock.now()),
            error,
        },
    }
}

/// Adds the readers of sending issues to the queue, a batch at a time, and finishes the sends
/// whose readers turn out to be none.
async fn enqueuer(run: &Run, shutdown: &CancellationToken) {
    let worker = &run.worker;
    while !shutdown.is_cancelled() {
        let mut busy = false;
        match deliveries::to_enqueue(&worker.db).await {
            Ok(pending) => {
                for issue in pending {
                    match deliveries::enqueue_batch(&worker.db, &issue, worker.clock.now()).await {
                        Ok(0) => {
                            if let Err(e) = worker.complete(issue.id).await {
                                tracing::warn!(error = %e, "could not finish a send; will retry");
                            }
                        }
                        Ok(_) => {
                            busy = true;
                            run.work.notify_waiters();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not enqueue readers; will retry")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "delivery queue unavailable; will retry"),
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = worker.handoff.started() => {}
            _ = tokio::time::sleep(worker.config.mail_poll_interval) => {}
        }
    }
}
