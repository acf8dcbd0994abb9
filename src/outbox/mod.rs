//! The sender of transactional mail: drains `mail_outbox`, composing each confirmation
//! email at send time (so its token exists only in the email), retrying temporary failures
//! with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::{ConfirmToken, LinkKey};
use crate::mail::message::{Email, mailbox};
use crate::mail::{Mailer, SendError};
use crate::render::{self, ConfirmEmailHtml, ConfirmEmailText, Publication};
use crate::store::outbox::{self, OutboxItem, Outcome};
use crate::store::{Db, StoreError, subscribers};
use askama::Template;

/// Emails claimed per round.
const BATCH: i64 = 64;
/// Emails sent at once within a round.
const CONCURRENCY: usize = 8;
/// How long a claim holds before another sender may take the row.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Everything the sender needs; cheap to clone.
#[derive(Clone)]
pub struct OutboxSender {
    /// The database.
    pub db: Db,
    /// Where mail goes.
    pub mailer: Mailer,
    /// Settings (retry policy, token lifetime, sender).
    pub config: Arc<Config>,
    /// The time source.
    pub clock: Clock,
    /// Signs unsubscribe links.
    pub link_key: LinkKey,
    /// The publication's name and address.
    pub publication: Arc<Publication>,
    /// Woken when new mail is queued.
    pub wake: Arc<Notify>,
}

impl OutboxSender {
    /// Claims one batch of due emails and sends it; returns how many were handled.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let items = outbox::claim_due(&self.db, now, now + LEASE, BATCH).await?;
        let handled = items.len();
        futures_util::stream::iter(items)
            .for_each_concurrent(CONCURRENCY, |item| async move {
                let outcome = self.deliver(&item).await;
                if let Outcome::Retry { error, .. } | Outcome::Failed { error } = &outcome {
                    tracing::warn!(outbox_id = item.id, attempts = item.attempts, %error, "transactional email not sent");
                }
                if let Err(e) = outbox::finish(&self.db, item.id, &outcome, self.clock.now()).await {
                    // The lease runs out and the row is retried; a duplicate confirmation is harmless.
                    tracing::error!(outbox_id = item.id, error = %e, "could not record an email's outcome");
                }
            })
            .await;
        Ok(handled)
    }

    /// Runs until `shutdown`: drains, then sleeps until woken or the poll interval passes.
    /// A database outage is logged and retried; nothing queued is lost.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let handled = match self.drain_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "transactional mail queue unavailable; will retry");
                    0
                }
            };
            if handled as i64 == BATCH && !shutdown.is_cancelled() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.mail_poll_interval) => {}
            }
        }
    }

    async fn deliver(&self, item: &OutboxItem) -> Outcome {
        let result = match (item.kind.as_str(), item.subscriber_id) {
            ("confirm", Some(subscriber_id)) => self.send_confirmation(subscriber_id).await,
            (kind, _) => Err(SendError::Permanent(format!(
                "unknown outbox kind {kind:?}"
            ))),
        };
        match result {
            Ok(true) => Outcome::Sent,
            Ok(false) => Outcome::Dropped,
            Err(SendError::Permanent(error)) => Outcome::Failed { error },
            Err(SendError::Temporary(error))
                if item.attempts as u32 >= self.config.mail_max_attempts =>
            {
                Outcome::Failed {
                    error: format!("gave up after {} tries: {error}", item.attempts),
                }
            }
            Err(SendError::Temporary(error)) => Outcome::Retry {
                at: self.retry_at(item.attempts),
                error,
            },
        }
    }

    /// Sends a confirmation with a fresh token; `Ok(false)` when none is needed any more.
    async fn send_confirmation(&self, subscriber_id: i64) -> Result<bool, SendError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.config.confirm_token_ttl)
            .unwrap_or(chrono::Duration::days(3));
        let token = ConfirmToken::generate();
        let subscriber = subscribers::prepare_confirmation(
            &self.db,
            subscriber_id,
            &token.hash(),
            now,
            now + ttl,
        )
        .await
        .map_err(|e| SendError::Temporary(e.to_string()))?;
        let Some(subscriber) = subscriber else {
            return Ok(false);
        };
        let base = &self.publication.base_url;
        let confirm_url = format!("{base}/confirm/{}", token.as_str());
        let unsubscribe_url = format!(
            "{base}/unsubscribe/{}",
            self.link_key.unsubscribe_token(&subscriber.uid)
        );
        let greeting = render::greeting(subscriber.name.as_deref());
        let valid_for = render::human_duration(self.config.confirm_token_ttl);
        let (html, text) = (
            ConfirmEmailHtml {
                publication: &self.publication,
                greeting: &greeting,
                confirm_url: &confirm_url,
                unsubscribe_url: &unsubscribe_url,
                valid_for: &valid_for,
            }
            .render(),
            ConfirmEmailText {
                publication: &self.publication,
                greeting: &greeting,
                confirm_url: &confirm_url,
                unsubscribe_url: &unsubscribe_url,
                valid_for: &valid_for,
            }
            .render(),
        );
        let html = html.map_err(|e| SendError::Permanent(e.to_string()))?;
        let text = text.map_err(|e| SendError::Permanent(e.to_string()))?;
        let to = mailbox(&subscriber.email, subscriber.name.as_deref())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let subject = format!("Confirm your subscription to {}", self.publication.name);
        let from = self.config.mail_from();
        let message = Email {
            from: &from,
            to,
            subject: &subject,
            text,
            html,
            unsubscribe_url: &unsubscribe_url,
            id_domain: self.config.base_url.host_str().unwrap_or("localhost"),
        }
        .build()
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.mailer.send(message).await?;
        Ok(true)
    }

    /// Exponential backoff from `mail_retry_base`, capped at `mail_retry_max`, with up to 25%
    /// jitter so that many failed emails do not all come back at once.
    fn retry_at(&self, attempts: i32) -> DateTime<Utc> {
        let base = self.config.mail_retry_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << (attempts.clamp(1, 30) - 1));
        let capped = exp.min(self.config.mail_retry_max.as_millis() as u64);
        let jitter = rand::rng().random_range(0..=capped / 4);
        let wait = Duration::from_millis(capped + jitter);
        self.clock.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
    }
}
