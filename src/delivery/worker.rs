//! The delivery worker: enqueues the readers of sending issues, claims deliveries under a
//! lease, renders each copy from the issue prepared once, sends it under the instance's rate
//! limit, and records every outcome. Any number of workers, in any number of instances, may
//! run against one database: the claim decides who sends what.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_governor::governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use super::{Handoff, copy_for};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::LinkKey;
use crate::mail::prepared::PreparedMessage;
use crate::mail::{Mailer, SendError, retry_at};
use crate::render::issue::{MailSettings, prepare};
use crate::render::{Publication, human_duration};
use crate::store::deliveries::{self, Claimed, Outcome};
use crate::store::subscribers::Subscriber;
use crate::store::{Db, StoreError, issues, outbox, sends};

/// Most deliveries claimed per round. Under a low rate limit a round claims about a second's
/// worth, so that readers who leave meanwhile are still skipped.
const BATCH: i64 = 500;
/// How long a claim holds before another worker may take the rows.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// The instance's sending limits, shared by all its workers.
pub struct Limits {
    second: Option<DefaultDirectRateLimiter>,
    hour: Option<DefaultDirectRateLimiter>,
}

impl Limits {
    /// From `send_rate_per_second` and `send_rate_per_hour`.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            second: NonZeroU32::new(config.send_rate_per_second)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            hour: config
                .send_rate_per_hour
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_hour(n))),
        }
    }

    async fn wait(&self) {
        if let Some(limit) = &self.second {
            limit.until_ready().await;
        }
        if let Some(limit) = &self.hour {
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
    /// Retry policy, concurrency, bounce threshold.
    pub config: Arc<Config>,
    /// The time source.
    pub clock: Clock,
    /// Signs unsubscribe links.
    pub link_key: LinkKey,
    /// The publication.
    pub publication: Arc<Publication>,
    /// Headers and footer of issue emails.
    pub settings: Arc<MailSettings>,
    /// Woken when an issue starts.
    pub handoff: Handoff,
    /// The instance's rate limits.
    pub limits: Arc<Limits>,
    /// Wakes the sender of notices (the send summary).
    pub outbox_wake: Arc<Notify>,
    /// Issues rendered once, by id.
    pub prepared: Arc<Mutex<HashMap<i64, Arc<PreparedMessage>>>>,
    /// Messages in flight in this instance, across its loops (`send_concurrency`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

/// Claim-and-send loops per instance: while one records its batch and claims the next, the
/// other is sending, so the connections never wait on the database.
pub const LOOPS: usize = 2;

/// What one round did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Round {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Readers enqueued.
    pub enqueued: bool,
    /// The mail server could not be reached.
    pub server_away: bool,
}

impl Worker {
    /// Runs [`LOOPS`] loops of rounds until `shutdown`. They are futures of this one task, so
    /// dropping or aborting it stops them all at once (what a crash does).
    pub async fn run(self, shutdown: CancellationToken) {
        futures_util::future::join_all((0..LOOPS).map(|_| self.clone().run_loop(shutdown.clone())))
            .await;
    }

    /// Runs rounds until `shutdown`, sleeping when there is nothing to do (or the server is
    /// away). A database outage or a panic in one round is logged; the next round tries again.
    async fn run_loop(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let round = AssertUnwindSafe(self.round(&shutdown)).catch_unwind().await;
            let round = match round {
                Ok(Ok(round)) => round,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "delivery queue unavailable; will retry");
                    Round::default()
                }
                Err(_) => {
                    tracing::error!("delivery round panicked; will retry");
                    Round::default()
                }
            };
            if (round.claimed > 0 || round.enqueued) && !round.server_away {
                continue;
            }
            let pause = if round.server_away {
                self.config.mail_retry_base
            } else {
                self.config.mail_poll_interval
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.handoff.started() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: enqueue a batch of readers for each sending issue, then send one batch.
    pub async fn round(&self, shutdown: &CancellationToken) -> Result<Round, StoreError> {
        let mut round = Round::default();
        for issue in deliveries::to_enqueue(&self.db).await? {
            let looked = deliveries::enqueue_batch(&self.db, &issue, self.clock.now()).await?;
            round.enqueued |= looked > 0;
            if looked == 0 {
                self.complete(issue.id).await?;
            }
        }
        let (claimed, away) = self.deliver_batch(shutdown).await?;
        round.claimed = claimed;
        round.server_away = away;
        Ok(round)
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

    /// Claims, sends and records one batch; returns how many were claimed and whether the
    /// mail server was away.
    pub async fn deliver_batch(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<(usize, bool), StoreError> {
        let now = self.clock.now();
        let lease = now + LEASE;
        let batch = match self.config.send_rate_per_second {
            0 => BATCH,
            rate => (rate as i64).clamp(1, BATCH),
        };
        let claimed = deliveries::claim(&self.db, now, lease, batch).await?;
        if claimed.is_empty() {
            return Ok((0, false));
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.subscriber_id).collect();
        let readers: HashMap<i64, Subscriber> = deliveries::recipients(&self.db, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let issue_ids: HashSet<i64> = claimed.iter().map(|c| c.issue_id).collect();
        let mut messages = HashMap::new();
        for id in &issue_ids {
            if let Some(p) = self.prepared(*id).await? {
                messages.insert(*id, p);
            }
        }
        let away = AtomicBool::new(false);
        let count = claimed.len();
        let outcomes: Vec<(Claimed, Outcome)> = futures_util::stream::iter(claimed)
            .map(|row| {
                let (readers, messages, away) = (&readers, &messages, &away);
                async move {
                    let outcome = self
                        .deliver_one(
                            &row,
                            readers.get(&row.subscriber_id),
                            messages.get(&row.issue_id),
                            away,
                            shutdown,
                        )
                        .await;
                    (row, outcome)
                }
            })
            // The semaphore bounds the instance; this only keeps the futures in hand small.
            .buffer_unordered(self.config.send_concurrency * 2)
            .collect()
            .await;
        crate::telemetry::record_deliveries(&outcomes);
        // If this fails the lease runs out and the rows are sent again (same Message-ID).
        deliveries::finish(
            &self.db,
            &outcomes,
            lease,
            self.clock.now(),
            self.config.bounce_threshold as i32,
        )
        .await?;
        for id in issue_ids {
            self.complete(id).await?;
        }
        Ok((count, away.load(Ordering::Relaxed)))
    }

    async fn deliver_one(
        &self,
        row: &Claimed,
        reader: Option<&Subscriber>,
        message: Option<&Arc<PreparedMessage>>,
        away: &AtomicBool,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let later = || Outcome::Released {
            at: self.clock.now() + chrono::Duration::seconds(1),
        };
        let Some(reader) = reader.filter(|r| r.status.as_str() == "active") else {
            return Outcome::Skipped;
        };
        let Some(message) = message else {
            return Outcome::Failed {
                error: "the issue cannot be rendered".into(),
                bounce: false,
            };
        };
        if shutdown.is_cancelled() || away.load(Ordering::Relaxed) {
            return later();
        }
        let Ok(_slot) = self.in_flight.acquire().await else {
            return later();
        };
        self.limits.wait().await;
        let (envelope, raw) = match copy_for(message, &self.publication, &self.link_key, reader) {
            Ok(copy) => copy,
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                    bounce: false,
                };
            }
        };
        let started = std::time::Instant::now();
        let result = self.transport.send_raw(&envelope, &raw).await;
        crate::telemetry::record_smtp_latency(started.elapsed());
        match result {
            Ok(reply) => Outcome::Sent(reply),
            Err(SendError::Permanent(error)) => Outcome::Failed {
                error,
                bounce: true,
            },
            Err(SendError::Unavailable(error)) => {
                if !away.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "mail server unavailable; deliveries wait for it");
                }
                later()
            }
            Err(SendError::Temporary(error))
                if row.attempts as u32 >= self.config.send_max_attempts =>
            {
                Outcome::Failed {
                    error: format!("gave up after {} tries: {error}", row.attempts),
                    bounce: false,
                }
            }
            Err(SendError::Temporary(error)) => Outcome::Retry {
                at: retry_at(&self.config, row.attempts, self.clock.now()),
                error,
            },
        }
    }

    /// Finishes the issue's send if nothing is left, and tells the editors how it went.
    async fn complete(&self, issue_id: i64) -> Result<(), StoreError> {
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
             In doubt (in flight at a crash; may have arrived twice): {}\nDuration: {}\n\n\
             Details: {}/admin/issues/{issue_id}/send\n",
            p.sent,
            p.failed,
            p.skipped,
            p.in_doubt,
            human_duration(std::time::Duration::from_secs(summary.duration_secs as u64)),
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
