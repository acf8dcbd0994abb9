//! What happens after the send: bounce and complaint reports, from providers' webhooks
//! ([`crate::web`]) and from a bounce mailbox read over IMAP ([`mailbox`]), recorded once each
//! and acted on ([`record`]).

pub mod mailbox;
pub mod report;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::token::{LinkKey, VerpKind};
use crate::domain::{Effect, MailEvent};
use crate::store::{Db, StoreError, mail_events};

/// How a batch of reports was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Reports recorded now (and acted on).
    pub recorded: usize,
    /// Reports recorded before: a provider's retry, a message read twice.
    pub duplicates: usize,
}

/// Records each event once and acts on its reader (see [`mail_events::record`]): the copy
/// its bounce address names first, then its `Message-ID`, then the address alone.
pub async fn record(
    db: &Db,
    config: &Config,
    link_key: &LinkKey,
    events: &[MailEvent],
    now: DateTime<Utc>,
) -> Result<Tally, StoreError> {
    let threshold = config.bounce_threshold as i32;
    let mut tally = Tally::default();
    for event in events {
        let named = config
            .bounce_address
            .as_deref()
            .zip(event.return_path.as_deref())
            .and_then(|(bounce, path)| link_key.verp_named(bounce, path));
        let delivery = match named {
            Some((VerpKind::Delivery, id)) => Some(id),
            _ => None,
        };
        // Providers sign their reports, so the address they give is theirs to vouch for; what
        // arrives in the mailbox names a reader only by a signed bounce address or our
        // Message-ID, as anyone can mail it.
        let by_address = event.provider != report::PROVIDER;
        let effect = mail_events::record(db, event, delivery, by_address, threshold, now).await?;
        if effect == Effect::Duplicate {
            tally.duplicates += 1;
            continue;
        }
        tally.recorded += 1;
        metrics::counter!(
            "fortnight_mail_events_total",
            "provider" => event.provider,
            "kind" => event.kind.as_str()
        )
        .increment(1);
        tracing::info!(
            provider = event.provider,
            kind = event.kind.as_str(),
            effect = effect.as_str(),
            "mail event recorded"
        );
    }
    Ok(tally)
}
