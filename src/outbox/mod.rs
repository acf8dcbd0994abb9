//! The sender of transactional mail: drains `mail_outbox` a batch at a time, composing each
//! confirmation email at send time (so its token exists only in the email), each welcome email
//! at send time too (so it names the next issue as it stands then), retrying temporary
//! failures with exponential backoff and jitter.

pub mod webhooks;
pub mod welcome;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use askama::Template;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::{ConfirmToken, LinkKey, VerpKind, verp_address};
use crate::mail::message::{Email, envelope_from, mailbox};
use crate::mail::{Mailer, SendError};
use crate::render::{self, ConfirmEmail, ConfirmEmailHtml, ConfirmEmailText, Publication};
use crate::store::outbox::{self, Notice, OutboxItem, Outcome};
use crate::store::subscribers::{self, Subscriber};
use crate::store::{Db, StoreError};

/// Emails claimed per round.
const BATCH: i64 = 64;
/// Emails sent at once within a round.
const CONCURRENCY: usize = 8;
/// How long a claim holds before another sender may take the row.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Runs `round` until `shutdown`: again at once after a full `batch`, else after `wake` or
/// `poll`. A database outage or a panic in one round is logged (naming `queue`) and the next
/// round tries again; nothing queued is lost.
pub(crate) async fn run_rounds<F, Fut>(
    queue: &str,
    batch: i64,
    wake: &Notify,
    poll: std::time::Duration,
    shutdown: &CancellationToken,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    while !shutdown.is_cancelled() {
        let claimed = match AssertUnwindSafe(round()).catch_unwind().await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "{queue} unavailable; will retry");
                0
            }
            Err(_) => {
                tracing::error!("{queue} round panicked; will retry");
                0
            }
        };
        if claimed as i64 == batch {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

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
    /// Claims one batch of due emails, sends it and records every outcome; returns how many
    /// were claimed. Once `shutdown` is cancelled, emails not yet started are handed back.
    pub async fn drain_once(&self, shutdown: &CancellationToken) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease = now + LEASE;
        let items = outbox::claim_due(&self.db, now, lease, BATCH).await?;
        if items.is_empty() {
            return Ok(0);
        }
        let ttl = chrono::Duration::from_std(self.config.confirm_token_ttl)
            .unwrap_or(chrono::Duration::days(3));
        let work: Vec<(OutboxItem, ConfirmToken)> = items
            .into_iter()
            .map(|item| (item, ConfirmToken::generate()))
            .collect();
        let wanted: Vec<_> = work
            .iter()
            .filter(|(item, _)| item.kind == "confirm")
            .filter_map(|(item, token)| item.subscriber_id.map(|id| (id, token.hash())))
            .collect();
        let pending: HashMap<i64, Subscriber> =
            subscribers::prepare_confirmations(&self.db, &wanted, now, now + ttl)
                .await?
                .into_iter()
                .map(|s| (s.id, s))
                .collect();
        let welcomed: Vec<i64> = work
            .iter()
            .filter(|(item, _)| item.kind == "welcome")
            .filter_map(|(item, _)| item.subscriber_id)
            .collect();
        let active: HashMap<i64, Subscriber> = subscribers::active_among(&self.db, &welcomed)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let claimed = work.len();
        let outcomes: Vec<(i64, Outcome)> = futures_util::stream::iter(work)
            .map(|(item, token)| {
                let (pending, active) = (&pending, &active);
                async move {
                    if shutdown.is_cancelled() {
                        return (item.id, Outcome::Released);
                    }
                    let readers = if item.kind == "welcome" { active } else { pending };
                    let subscriber = item.subscriber_id.and_then(|id| readers.get(&id));
                    let outcome = self.deliver(&item, &token, subscriber).await;
                    if let Outcome::Retry { error, .. } | Outcome::Failed { error } = &outcome {
                        tracing::warn!(outbox_id = item.id, attempts = item.attempts, %error, "transactional email not sent");
                    }
                    (item.id, outcome)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        // If this fails the lease runs out and the rows are sent again: at least once.
        outbox::finish_batch(&self.db, &outcomes, lease, self.clock.now()).await?;
        Ok(claimed)
    }

    /// Runs until `shutdown`: drains, then sleeps until woken or the poll interval passes.
    /// A database outage or even a panic in one round is logged and the next round tries
    /// again; nothing queued is lost.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = self.config.mail_poll_interval;
        let queue = "transactional mail queue";
        run_rounds(queue, BATCH, &self.wake, poll, &shutdown, || {
            self.drain_once(&shutdown)
        })
        .await;
    }

    async fn deliver(
        &self,
        item: &OutboxItem,
        token: &ConfirmToken,
        subscriber: Option<&Subscriber>,
    ) -> Outcome {
        let result = match (item.kind.as_str(), subscriber) {
            ("confirm", Some(subscriber)) => {
                self.send_confirmation(item.id, subscriber, token).await
            }
            ("welcome", Some(subscriber)) => match self.send_welcome(item.id, subscriber).await {
                Ok(true) => Ok(()),
                Ok(false) => return Outcome::Dropped,
                Err(e) => Err(e),
            },
            ("email_change", _) => {
                match self
                    .send_email_change(item.id, item.payload.as_deref(), token)
                    .await
                {
                    Ok(true) => Ok(()),
                    Ok(false) => return Outcome::Dropped,
                    Err(e) => Err(e),
                }
            }
            ("confirm" | "welcome", None) => return Outcome::Dropped,
            ("notice", _) => self.send_notice(item.id, item.payload.as_deref()).await,
            (kind, _) => Err(SendError::Permanent(format!(
                "unknown outbox kind {kind:?}"
            ))),
        };
        match result {
            Ok(()) => Outcome::Sent,
            Err(SendError::Permanent(error)) => Outcome::Failed { error },
            Err(SendError::Temporary(error) | SendError::Unavailable(error))
                if item.attempts as u32 >= self.config.mail_max_attempts =>
            {
                Outcome::Failed {
                    error: format!("gave up after {} tries: {error}", item.attempts),
                }
            }
            Err(SendError::Temporary(error) | SendError::Unavailable(error)) => Outcome::Retry {
                at: crate::mail::retry_at(&self.config, item.attempts, self.clock.now()),
                error,
            },
        }
    }

    /// Sends one confirmation. The reader's name is left out: anyone can type any name into
    /// the form, and the email goes to an address that has not agreed to anything yet.
    async fn send_confirmation(
        &self,
        outbox_id: i64,
        subscriber: &Subscriber,
        token: &ConfirmToken,
    ) -> Result<(), SendError> {
        let base = &self.publication.base_url;
        let confirm_url = format!("{base}/confirm/{}", token.as_str());
        let unsubscribe_url = self
            .publication
            .unsubscribe_url(&self.link_key, &subscriber.uid);
        let greeting = render::greeting(None);
        let valid_for = render::human_duration(self.config.confirm_token_ttl);
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        let email = ConfirmEmail {
            publication: &self.publication,
            greeting: &greeting,
            confirm_url: &confirm_url,
            unsubscribe_url: &unsubscribe_url,
            valid_for: &valid_for,
        };
        let html = ConfirmEmailHtml { email: &email }
            .render()
            .map_err(|e| permanent(&e))?;
        let text = ConfirmEmailText { email: &email }
            .render()
            .map_err(|e| permanent(&e))?;
        let from = self.config.mail_from();
        let return_path = self.return_path(outbox_id);
        let message = Email {
            return_path: return_path.as_deref(),
            from: &from,
            to: mailbox(&subscriber.email, None).map_err(|e| permanent(&e))?,
            subject: &format!("Confirm your subscription to {}", self.publication.name),
            text,
            html,
            unsubscribe_url: &unsubscribe_url,
            id_domain: self.config.base_url.host_str().unwrap_or("localhost"),
        }
        .build()
        .map_err(|e| permanent(&e))?;
        self.mailer.send(message).await.map(|_| ())
    }

    /// Sends the welcome email to a reader who has just confirmed; `false` when there is none
    /// to send any more (the editor switched it off meanwhile).
    async fn send_welcome(
        &self,
        outbox_id: i64,
        subscriber: &Subscriber,
    ) -> Result<bool, SendError> {
        let temporary = |e: &dyn std::fmt::Display| SendError::Temporary(e.to_string());
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        let Some(content) = crate::store::welcome::get(&self.db)
            .await
            .map_err(|e| temporary(&e))?
            .filter(|w| w.enabled)
        else {
            return Ok(false);
        };
        let settings = crate::render::issue::MailSettings::from_config(&self.config);
        let prepared = welcome::prepare(
            &self.db,
            &content,
            &self.publication,
            &settings,
            "",
            self.clock.now(),
        )
        .await
        .map_err(|e| match e {
            welcome::WelcomeError::Store(e) => temporary(&e),
            welcome::WelcomeError::Render(e) => permanent(&e),
        })?;
        let unsubscribe_url = self
            .publication
            .unsubscribe_url(&self.link_key, &subscriber.uid);
        let manage_url = self.publication.manage_url(&self.link_key, &subscriber.uid);
        let return_path = self.return_path(outbox_id);
        let reader = crate::mail::prepared::Reader {
            email: &subscriber.email,
            name: subscriber.name.as_deref(),
            uid: subscriber.uid,
            unsubscribe_url: &unsubscribe_url,
            manage_url: &manage_url,
            return_path: return_path.as_deref(),
        };
        let (envelope, raw) = prepared.for_reader(&reader).map_err(|e| permanent(&e))?;
        self.mailer.send_raw(&envelope, &raw).await.map(|_| true)
    }

    /// Sends the link that confirms a reader's new address to that address; `false` when the
    /// change is no longer open (used, expired or erased).
    async fn send_email_change(
        &self,
        outbox_id: i64,
        payload: Option<&str>,
        token: &ConfirmToken,
    ) -> Result<bool, SendError> {
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        let change: i64 = payload
            .unwrap_or_default()
            .parse()
            .map_err(|e| permanent(&e))?;
        let now = self.clock.now();
        let Some(new_email) =
            crate::store::manage::prepare_email_change(&self.db, change, &token.hash(), now)
                .await
                .map_err(|e| SendError::Temporary(e.to_string()))?
        else {
            return Ok(false);
        };
        let name = &self.publication.name;
        let link = format!(
            "{}/email-change/{}",
            self.publication.base_url,
            token.as_str()
        );
        let valid_for = render::human_duration(self.config.confirm_token_ttl);
        let to = mailbox(&new_email, None).map_err(|e| permanent(&e))?;
        let mut builder = lettre::Message::builder();
        if let Some(path) = self.return_path(outbox_id) {
            builder = builder.envelope(envelope_from(&path, &to).map_err(|e| permanent(&e))?);
        }
        let message = builder
            .from(self.config.mail_from())
            .to(to)
            .subject(format!("Confirm your new address for {name}"))
            .date_now()
            .body(format!(
                "Hello,\n\nSomeone asked for {name} to be sent to this address from now on. \
                 To confirm, open this link (it works for {valid_for}):\n\n{link}\n\n\
                 If it was not you, ignore this email: nothing changes until the link is opened.\n"
            ))
            .map_err(|e| permanent(&e))?;
        self.mailer.send(message).await.map(|_| true)
    }

    /// The envelope sender naming outbox message `outbox_id`, when `bounce_address` is set.
    fn return_path(&self, outbox_id: i64) -> Option<String> {
        let bounce = self.config.bounce_address.as_deref()?;
        let token = self.link_key.verp_token(VerpKind::Outbox, outbox_id);
        Some(verp_address(bounce, &token))
    }

    /// Sends a notice to an editor: plain text, no list headers.
    async fn send_notice(&self, outbox_id: i64, payload: Option<&str>) -> Result<(), SendError> {
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        let notice: Notice =
            serde_json::from_str(payload.unwrap_or_default()).map_err(|e| permanent(&e))?;
        let to = mailbox(&notice.to, None).map_err(|e| permanent(&e))?;
        let mut builder = lettre::Message::builder();
        if let Some(path) = self.return_path(outbox_id) {
            builder = builder.envelope(envelope_from(&path, &to).map_err(|e| permanent(&e))?);
        }
        let message = builder
            .from(self.config.mail_from())
            .to(to)
            .subject(notice.subject)
            .date_now()
            .body(notice.text)
            .map_err(|e| permanent(&e))?;
        self.mailer.send(message).await.map(|_| ())
    }
}
