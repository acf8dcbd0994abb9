//! Getting an issue to readers: the per-reader copy, the test send, the hand-off from the
//! scheduler, a send's status and its steering, and (in `worker` and its loops) the delivery
//! engine.

mod beat;
mod claimer;
pub mod gate;
mod recorder;
pub mod worker;

use uuid::Uuid;

use crate::domain::SubscriberEmail;
use crate::domain::token::LinkKey;
use crate::mail::prepared::{PreparedMessage, Reader};
use crate::mail::{Mailer, SendError};
use crate::render::Publication;
use crate::render::issue::{self, MailSettings, RenderError};
use crate::store::deliveries::Recipient;
use crate::store::issues::Issue;
use crate::store::subscribers;
use crate::store::{Db, StoreError};

/// Why a test copy did not go out.
#[derive(Debug, thiserror::Error)]
pub enum TestSendError {
    /// The issue could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The database failed looking up the address.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mail server refused or could not be reached.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Personalises `prepared` for a reader: their name, their unsubscribe link, and the
/// `Message-ID` that is theirs for this issue on every try.
/// With `return_path`, the envelope sender is that bounce address (it names the delivery).
pub fn copy_for(
    prepared: &PreparedMessage,
    publication: &Publication,
    link_key: &LinkKey,
    recipient: &Recipient,
    return_path: Option<&str>,
) -> Result<(lettre::address::Envelope, Vec<u8>), RenderError> {
    let unsubscribe_url = publication.unsubscribe_url(link_key, &recipient.uid);
    let manage_url = publication.manage_url(link_key, &recipient.uid);
    let reader = Reader {
        return_path,
        email: &recipient.email,
        name: recipient.name.as_deref(),
        uid: recipient.uid,
        unsubscribe_url: &unsubscribe_url,
        manage_url: &manage_url,
    };
    Ok(prepared.for_reader(&reader)?)
}

/// Everything a test send needs.
pub struct TestSend<'a> {
    /// The database (to personalise for a subscriber's address).
    pub db: &'a Db,
    /// Where mail goes.
    pub mailer: &'a Mailer,
    /// The publication.
    pub publication: &'a Publication,
    /// Header and footer settings.
    pub settings: &'a MailSettings,
    /// Signs unsubscribe links.
    pub link_key: &'a LinkKey,
}

impl TestSend<'_> {
    /// Sends one copy of `issue`, subject marked `[TEST]`, to `to`, now. It is not recorded
    /// as a delivery and changes nothing stored. Returns the server's reply.
    pub async fn send(
        &self,
        issue: &Issue,
        to: &SubscriberEmail,
        now: std::time::SystemTime,
    ) -> Result<String, TestSendError> {
        let prepared = issue::prepare(issue, self.publication, self.settings, "[TEST] ", now)?;
        self.send_prepared(&prepared, to).await
    }

    /// Sends one copy of a prepared message (subject already marked) to `to`, personalised for
    /// the subscriber with that address if there is one; nothing is recorded.
    pub async fn send_prepared(
        &self,
        prepared: &PreparedMessage,
        to: &SubscriberEmail,
    ) -> Result<String, TestSendError> {
        let subscriber = subscribers::find_by_email(self.db, to).await?;
        // A test copy gets a Message-ID of its own: one equal to the real copy's would make
        // mail providers drop the real issue as a duplicate.
        let uid = subscriber.as_ref().map_or_else(Uuid::new_v4, |s| s.uid);
        let unsubscribe_url = self.publication.unsubscribe_url(self.link_key, &uid);
        let manage_url = self.publication.manage_url(self.link_key, &uid);
        let reader = Reader {
            return_path: None,
            email: to.as_str(),
            name: subscriber.as_ref().and_then(|s| s.name.as_deref()),
            uid: Uuid::new_v4(),
            unsubscribe_url: &unsubscribe_url,
            manage_url: &manage_url,
        };
        let (envelope, raw) = prepared.for_reader(&reader).map_err(RenderError::from)?;
        Ok(self.mailer.send_raw(&envelope, &raw).await?)
    }
}

/// Where the scheduler hands an issue whose time has come, and where this instance's editors
/// steer a send. The database is the durable hand-off (the issue's status, the steering
/// counter); this only wakes this instance's workers sooner than their polling would.
#[derive(Clone, Debug, Default)]
pub struct Handoff {
    wake: std::sync::Arc<tokio::sync::Notify>,
    steer: std::sync::Arc<tokio::sync::Notify>,
}

impl Handoff {
    /// An issue has just been moved to `sending`.
    pub fn issue_started(&self, issue_id: i64) {
        tracing::info!(issue_id, "issue handed to delivery");
        self.wake.notify_one();
        self.steer.notify_waiters();
    }

    /// Waits until an issue is handed over (returns at once if one was since the last wait).
    pub async fn started(&self) {
        self.wake.notified().await;
    }

    /// A send was paused, resumed or cancelled here.
    pub fn steered(&self) -> tokio::sync::futures::Notified<'_> {
        self.steer.notified()
    }
}

/// Steering a send: each change is committed with a bump of the steering counter, and pause
/// and cancel then wait until every live worker has applied it, so that when they answer, no
/// copy of the issue starts anywhere. A worker that does not answer within `delivery_lease`
/// can no longer send anything (its lease lapses first), so the wait is bounded by it.
pub mod steer {
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::Handoff;
    use crate::clock::Clock;
    use crate::store::{Db, StoreError, delivery_workers, sends};

    /// Everything steering needs.
    pub struct Steer<'a> {
        /// The database.
        pub db: &'a Db,
        /// Wakes this instance's workers.
        pub handoff: &'a Handoff,
        /// `delivery_lease`: the longest wait for workers.
        pub lease: Duration,
    }

    impl Steer<'_> {
        /// Pauses a send; `false` when it was not sending or already paused.
        pub async fn pause(&self, issue_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
            let seq = sends::pause(self.db, issue_id, now).await?;
            self.settle(seq).await
        }

        /// Cancels a send; `false` when it was not sending.
        pub async fn cancel(&self, issue_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
            let seq = sends::cancel(self.db, issue_id, now).await?;
            self.settle(seq).await
        }

        /// Resumes a paused send; `false` when it was not paused.
        pub async fn resume(&self, issue_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
            let resumed = sends::resume(self.db, issue_id, now).await?.is_some();
            if resumed {
                self.handoff.issue_started(issue_id);
            }
            Ok(resumed)
        }

        /// Waits (up to the lease) until every live worker has applied steering change `seq`.
        async fn settle(&self, seq: Option<i64>) -> Result<bool, StoreError> {
            let Some(seq) = seq else {
                return Ok(false);
            };
            self.handoff.steer.notify_waiters();
            // The change is committed whatever happens here: a failed look is tried again, and
            // after the lease any worker that has not confirmed it has stopped sending anyway.
            let deadline = tokio::time::Instant::now() + self.lease;
            loop {
                match delivery_workers::lagging(self.db, seq, Clock::System.now()).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot see whether workers applied a change")
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(
                        seq,
                        "a delivery worker did not confirm the change; its lease has lapsed"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(true)
        }
    }
}

pub use crate::domain::send::SendStatus;

/// How a send stands now.
pub async fn status(
    db: &Db,
    issue: &Issue,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SendStatus, StoreError> {
    let progress = crate::store::sends::progress(db, issue.id, now).await?;
    let errors = crate::store::sends::recent_errors(db, issue.id, 20).await?;
    let total = progress.total().max(1);
    let rate = crate::domain::send::rate_per_minute(
        progress.sent_last_minute,
        issue.published_at.map(|at| now - at),
    );
    Ok(SendStatus {
        state: issue.status,
        paused: issue.paused_at.is_some(),
        percent: (total - progress.remaining()) * 100 / total,
        rate_per_minute: rate,
        eta_secs: (rate > 0 && progress.remaining() > 0).then(|| progress.remaining() * 60 / rate),
        errors,
        summary: issue
            .summary
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        progress,
        audience: issue.audience,
        audience_label: issue.audience_label.clone(),
    })
}
