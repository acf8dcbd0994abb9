//! Outgoing mail: an SMTP server, or `.eml` files in an outbox folder when none is configured.

use std::sync::Arc;

use lettre::address::Envelope;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{Config, redact_url};

pub mod dkim;
pub mod message;
pub mod pool;
pub mod prepared;

/// How many connections the instance's own mail (confirmations, notices, test sends) keeps open.
const TRANSACTIONAL_CONNECTIONS: usize = 8;

/// Where mail goes, and the DKIM keys that sign it. Clones share one connection pool.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    dkim: Option<Arc<dkim::Dkim>>,
}

#[derive(Clone)]
enum Transport {
    /// A pool of SMTP connections ([`pool::SmtpPool`]).
    Smtp(Arc<pool::SmtpPool>),
    /// `.eml` files in a folder.
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// A send that did not go through.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: 4xx replies, timeouts, refused or dropped connections.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never succeed as it is: 5xx replies, an unusable message.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The mail server cannot be reached at all; nothing was attempted.
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
}

impl Mailer {
    /// Builds the transport the configuration names, saying in the log which one it is.
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let mailer = Self::with_connections(config, TRANSACTIONAL_CONNECTIONS)?;
        match &config.smtp_url {
            Some(url) => {
                tracing::info!(smtp = %redact_url(url.expose_secret()), "mail goes to the SMTP server")
            }
            None => tracing::warn!(
                outbox_dir = %config.outbox_dir.display(),
                "no smtp_url configured: mail is written as .eml files to the outbox folder, not sent"
            ),
        }
        Ok(mailer)
    }

    /// The transport the configuration names, with a pool of its own keeping up to
    /// `connections` SMTP connections open (the delivery worker's is `send_concurrency`).
    pub fn with_connections(config: &Config, connections: usize) -> anyhow::Result<Mailer> {
        let dkim = match config.dkim_keys() {
            keys if keys.is_empty() => None,
            keys => Some(Arc::new(
                dkim::Dkim::load(&config.dkim_signing_domain(), keys)
                    .map_err(|e| anyhow::anyhow!("configuration: key `dkim_private_key`: {e}"))?,
            )),
        };
        let transport = match &config.smtp_url {
            Some(url) => pool::SmtpPool::new(url.expose_secret(), connections)
                .map(|pool| Transport::Smtp(Arc::new(pool)))
                .map_err(|e| anyhow::anyhow!("configuration: key `smtp_url`: {e}"))?,
            None => {
                std::fs::create_dir_all(&config.outbox_dir).map_err(|e| {
                    anyhow::anyhow!(
                        "configuration: key `outbox_dir`: cannot create {}: {e}",
                        config.outbox_dir.display()
                    )
                })?;
                Transport::Files(AsyncFileTransport::new(&config.outbox_dir))
            }
        };
        Ok(Mailer { transport, dkim })
    }

    /// Connects to the SMTP server as a send would (EHLO, STARTTLS, AUTH) without sending;
    /// `None` when mail goes to the outbox folder.
    pub async fn probe(&self) -> Option<Result<String, SendError>> {
        match &self.transport {
            Transport::Smtp(pool) => Some(pool.probe().await),
            Transport::Files(_) => None,
        }
    }

    /// Hands one message over; `Ok` carries the server's reply (or the file written).
    pub async fn send(&self, message: Message) -> Result<String, SendError> {
        self.send_raw(message.envelope(), &message.formatted())
            .await
    }

    /// Hands over a message already encoded (see [`prepared`]).
    pub async fn send_raw(&self, envelope: &Envelope, raw: &[u8]) -> Result<String, SendError> {
        self.send_raw_when(envelope, raw, || Some(()))
            .await
            .map(|reply| reply.expect("always entered"))
    }

    /// [`send_raw`](Self::send_raw) if `enter` agrees once the transport is ready (see
    /// [`pool::SmtpPool::send_when`]); `Ok(None)` when it refused and nothing was sent.
    /// With DKIM keys configured, the message is signed first.
    pub async fn send_raw_when<E>(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        enter: impl FnOnce() -> Option<E>,
    ) -> Result<Option<String>, SendError> {
        let signed;
        let raw = match &self.dkim {
            Some(dkim) => {
                signed = sign(dkim, raw).await?;
                &signed[..]
            }
            None => raw,
        };
        match &self.transport {
            Transport::Smtp(pool) => pool.send_when(envelope, raw, enter).await,
            Transport::Files(files) => {
                let Some(_entry) = enter() else {
                    return Ok(None);
                };
                files
                    .send_raw(envelope, raw)
                    .await
                    .map(|id| Some(format!("written {id}.eml")))
                    .map_err(|e| SendError::Temporary(e.to_string()))
            }
        }
    }
}

/// `raw` signed with every key, on a blocking thread: an RSA signature takes about a
/// millisecond of CPU, too long to hold an async worker thread.
async fn sign(dkim: &Arc<dkim::Dkim>, raw: &[u8]) -> Result<Vec<u8>, SendError> {
    let (dkim, raw) = (Arc::clone(dkim), raw.to_vec());
    tokio::task::spawn_blocking(move || dkim.sign(&raw))
        .await
        .map_err(|e| SendError::Temporary(format!("DKIM signing stopped: {e}")))?
        // A failure here is ours, not the reader's: never a bounce.
        .map_err(|e| SendError::Temporary(format!("cannot DKIM-sign the message: {e}")))
}

/// When to try again after `attempts` failed tries: exponential backoff from
/// `mail_retry_base`, capped at `mail_retry_max`, with up to 25% jitter so that many failed
/// emails do not all come back at once.
pub fn retry_at(
    config: &Config,
    attempts: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    use rand::Rng;
    let base = config.mail_retry_base.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << (attempts.clamp(1, 30) - 1));
    let capped = exp.min(config.mail_retry_max.as_millis() as u64);
    let jitter = rand::rng().random_range(0..=capped / 4);
    let wait = std::time::Duration::from_millis(capped + jitter);
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
}
