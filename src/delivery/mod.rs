//! Getting an issue to readers. For now: one copy, straight to one address (the editor's
//! test send), through the same per-reader path every delivery takes.

use uuid::Uuid;

use crate::domain::SubscriberEmail;
use crate::domain::token::LinkKey;
use crate::mail::prepared::{PreparedMessage, Reader};
use crate::mail::{Mailer, SendError};
use crate::render::Publication;
use crate::render::issue::{self, MailSettings, RenderError};
use crate::store::issues::Issue;
use crate::store::subscribers::{self, Subscriber};
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

/// Personalises `prepared` for a subscriber, or for an address that is not on the list (no
/// name, and an unsubscribe link that leads nowhere).
pub fn copy_for(
    prepared: &PreparedMessage,
    publication: &Publication,
    link_key: &LinkKey,
    email: &str,
    subscriber: Option<&Subscriber>,
) -> Result<(lettre::address::Envelope, Vec<u8>), RenderError> {
    let uid = subscriber.map_or_else(Uuid::new_v4, |s| s.uid);
    let unsubscribe_url = publication.unsubscribe_url(link_key, &uid);
    let reader = Reader {
        email,
        name: subscriber.and_then(|s| s.name.as_deref()),
        uid,
        unsubscribe_url: &unsubscribe_url,
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
        let subscriber = subscribers::find_by_email(self.db, to).await?;
        let (envelope, raw) = copy_for(
            &prepared,
            self.publication,
            self.link_key,
            to.as_str(),
            subscriber.as_ref(),
        )?;
        Ok(self.mailer.send_raw(&envelope, &raw).await?)
    }
}

/// Where the scheduler hands an issue whose time has come. The issue's `sending` status in
/// the database is the durable hand-off; this wakes whatever delivers it.
#[derive(Clone, Debug, Default)]
pub struct Handoff {
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Handoff {
    /// An issue has just been moved to `sending`.
    pub fn issue_started(&self, issue_id: i64) {
        tracing::info!(issue_id, "issue handed to delivery");
        self.wake.notify_one();
    }

    /// Waits until an issue is handed over (returns at once if one was since the last wait).
    pub async fn started(&self) {
        self.wake.notified().await;
    }
}
