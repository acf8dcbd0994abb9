//! The bounce mailbox: a folder read over IMAP on an interval, for relays that mail bounces
//! and complaints back to the envelope sender.
//!
//! Each message is read ([`super::report::read`]), its outcome committed (events recorded
//! once by the message's own id, an unsubscribe request carried out), and only then is the
//! message moved to the processed folder. A crash between the two leaves the message in
//! place; reading it again records nothing twice. Several instances may read one mailbox:
//! the second to take a message finds it recorded, and its move finds it gone.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt as _;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::report::{self, Addresses, Report};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::LinkKey;
use crate::store::{Db, subscribers};

/// Messages handled in one poll at most; the rest wait for the next.
const BATCH: usize = 200;
/// A message larger than this is not read (no report is), only moved.
const LARGEST: u32 = 4 * 1024 * 1024;
/// The longest a connection, a login or one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `imaps://`: TLS from the first byte (port 993).
    Tls,
    /// `imap://`: STARTTLS before logging in (port 143); never in clear.
    StartTls,
}

/// A parsed `bounce_mailbox` setting.
#[derive(Clone)]
pub struct MailboxUrl {
    /// TLS or STARTTLS.
    pub security: Security,
    /// The server's name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The login.
    pub user: String,
    password: SecretString,
    /// The folder read (default `INBOX`).
    pub folder: String,
}

impl std::fmt::Debug for MailboxUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxUrl")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

impl MailboxUrl {
    /// Reads `imaps://user:password@host[:port]/FOLDER` (or `imap://` for STARTTLS). The
    /// user and password are percent-decoded.
    pub fn parse(text: &str) -> Result<MailboxUrl, String> {
        let url = Url::parse(text).map_err(|_| {
            "not a URL like imaps://user:password@imap.example.com/INBOX".to_owned()
        })?;
        let (security, default_port) = match url.scheme() {
            "imaps" => (Security::Tls, 993),
            "imap" => (Security::StartTls, 143),
            other => {
                return Err(format!(
                    "scheme {other:?}: use imaps:// or imap:// (STARTTLS)"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host name")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "the user or password is not UTF-8 once decoded".to_owned())
        };
        let user = decode(url.username())?;
        if user.is_empty() {
            return Err("no user name (imaps://user:password@host/INBOX)".into());
        }
        let password = decode(url.password().unwrap_or(""))?;
        let folder = decode(url.path().trim_start_matches('/'))?;
        Ok(MailboxUrl {
            security,
            host,
            port: url.port().unwrap_or(default_port),
            user,
            password: SecretString::from(password),
            folder: if folder.is_empty() {
                "INBOX".into()
            } else {
                folder
            },
        })
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Messages read and moved to the processed folder.
    pub processed: usize,
    /// Bounce and complaint events recorded now.
    pub recorded: usize,
    /// Events read before (a message read twice).
    pub duplicates: usize,
    /// Readers who left by an unsubscribe request.
    pub unsubscribed: usize,
    /// Messages that were none of these (moved all the same).
    pub ignored: usize,
}

/// Why a poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The mail server could not be reached, refused the login, or failed a command.
    #[error("bounce mailbox: {0}")]
    Mailbox(String),
    /// The database failed; the message stays in the mailbox for the next poll.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn imap_error(what: &str) -> impl Fn(async_imap::error::Error) -> PollError + '_ {
    move |e| PollError::Mailbox(format!("{what}: {e}"))
}

async fn timed<T>(
    what: &str,
    future: impl Future<Output = Result<T, PollError>>,
) -> Result<T, PollError> {
    tokio::time::timeout(COMMAND_TIMEOUT, future)
        .await
        .map_err(|_| PollError::Mailbox(format!("{what}: no answer within {COMMAND_TIMEOUT:?}")))?
}

/// Waits for the server's greeting.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), PollError>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    timed("greeting", async {
        client
            .read_response()
            .await
            .map_err(|e| PollError::Mailbox(format!("greeting: {e}")))?
            .ok_or_else(|| PollError::Mailbox("closed before its greeting".into()))
            .map(drop)
    })
    .await
}

/// Reads the bounce mailbox.
#[derive(Clone)]
pub struct BounceMailbox {
    url: MailboxUrl,
    tls: tokio_rustls::TlsConnector,
    db: Db,
    config: Arc<Config>,
    clock: Clock,
    link_key: LinkKey,
}

impl BounceMailbox {
    /// The mailbox `bounce_mailbox` names, or none when it is unset.
    pub fn from_config(
        config: Arc<Config>,
        db: Db,
        clock: Clock,
        link_key: LinkKey,
    ) -> anyhow::Result<Option<BounceMailbox>> {
        let Some(setting) = &config.bounce_mailbox else {
            return Ok(None);
        };
        let url = MailboxUrl::parse(setting.expose_secret())
            .map_err(|e| anyhow::anyhow!("configuration: key `bounce_mailbox`: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &config.bounce_mailbox_certificate_authority {
            use rustls_pki_types::pem::PemObject as _;
            let bad = |e: &dyn std::fmt::Display| {
                anyhow::anyhow!(
                    "configuration: key `bounce_mailbox_certificate_authority`: {}: {e}",
                    path.display()
                )
            };
            for cert in
                rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?
            {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Some(BounceMailbox {
            url,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            db,
            config,
            clock,
            link_key,
        }))
    }

    /// Polls every `bounce_mailbox_interval`, the first time one interval after the start,
    /// until `stop`; a failed poll is logged and tried again at the next interval.
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(
            host = %self.url.host,
            folder = %self.url.folder,
            "reading the bounce mailbox"
        );
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.bounce_mailbox_interval) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                result = self.poll() => match result {
                    Ok(polled) if polled.processed > 0 => {
                        tracing::info!(?polled, "bounce mailbox read");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "bounce mailbox not read; trying again later"),
                },
            }
        }
    }

    /// Reads what is in the folder now (up to a batch), acts on it and moves it.
    pub async fn poll(&self) -> Result<Polled, PollError> {
        let tcp = timed("connect", async {
            TcpStream::connect((self.url.host.as_str(), self.url.port))
                .await
                .map_err(|e| {
                    PollError::Mailbox(format!(
                        "cannot connect to {}:{}: {e}",
                        self.url.host, self.url.port
                    ))
                })
        })
        .await?;
        let name = rustls_pki_types::ServerName::try_from(self.url.host.clone())
            .map_err(|e| PollError::Mailbox(format!("host name: {e}")))?;
        let secure = |tcp: TcpStream| {
            timed("TLS", async {
                self.tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| PollError::Mailbox(format!("TLS: {e}")))
            })
        };
        match self.url.security {
            Security::Tls => {
                let mut client = async_imap::Client::new(secure(tcp).await?);
                greeting(&mut client).await?;
                self.session(client).await
            }
            Security::StartTls => {
                let mut plain = async_imap::Client::new(tcp);
                greeting(&mut plain).await?;
                timed("STARTTLS", async {
                    plain
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(imap_error("STARTTLS"))
                })
                .await?;
                let tls = secure(plain.into_inner()).await?;
                self.session(async_imap::Client::new(tls)).await
            }
        }
    }

    async fn session<T>(&self, client: async_imap::Client<T>) -> Result<Polled, PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let mut session = timed("login", async {
            client
                .login(&self.url.user, self.url.password.expose_secret())
                .await
                .map_err(|(e, _)| PollError::Mailbox(format!("login as {}: {e}", self.url.user)))
        })
        .await?;
        let result = self.process(&mut session).await;
        // A polite goodbye; the outcome is already committed either way.
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        result
    }

    async fn process<T>(&self, session: &mut Session<T>) -> Result<Polled, PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let folder = &self.url.folder;
        let processed_folder = &self.config.bounce_mailbox_processed_folder;
        timed("select", async {
            session.select(folder).await.map_err(imap_error("select"))
        })
        .await?;
        // Messages a person (or a reader without MOVE) flagged deleted are left alone.
        let mut uids: Vec<u32> = timed("search", async {
            session
                .uid_search("UNDELETED")
                .await
                .map_err(imap_error("search"))
        })
        .await?
        .into_iter()
        .collect();
        uids.sort_unstable();
        uids.truncate(BATCH);
        let mut polled = Polled::default();
        if uids.is_empty() {
            return Ok(polled);
        }
        // The processed folder may exist already: the answer to CREATE does not matter, the
        // move's does.
        let _ = timed("create", async {
            session
                .create(processed_folder)
                .await
                .map_err(imap_error("create"))
        })
        .await;
        let capabilities = timed("capabilities", async {
            session
                .capabilities()
                .await
                .map_err(imap_error("capabilities"))
        })
        .await?;
        let (can_move, uidplus) = (
            capabilities.has_str("MOVE"),
            capabilities.has_str("UIDPLUS"),
        );
        let addresses = Addresses {
            bounce: self.config.bounce_address.as_deref(),
            unsubscribe: self.config.list_unsubscribe_mailto.as_deref(),
            key: &self.link_key,
        };
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sizes: std::collections::HashMap<u32, u32> = timed("fetch sizes", async {
            let fetched: Vec<_> = session
                .uid_fetch(&set, "RFC822.SIZE")
                .await
                .map_err(imap_error("fetch sizes"))?
                .try_collect()
                .await
                .map_err(imap_error("fetch sizes"))?;
            Ok(fetched
                .iter()
                .filter_map(|f| Some((f.uid?, f.size?)))
                .collect())
        })
        .await?;
        for uid in uids {
            if sizes.get(&uid).is_some_and(|size| *size > LARGEST) {
                tracing::info!(
                    uid,
                    "bounce mailbox: a message too large to be a report; moved unread"
                );
                polled.ignored += 1;
                self.take_away(session, uid, can_move, uidplus).await?;
                polled.processed += 1;
                continue;
            }
            let raw = timed("fetch", async {
                let fetched: Vec<_> = session
                    .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                    .await
                    .map_err(imap_error("fetch"))?
                    .try_collect()
                    .await
                    .map_err(imap_error("fetch"))?;
                Ok(fetched
                    .iter()
                    .find(|f| f.uid == Some(uid))
                    .and_then(|f| f.body().map(<[u8]>::to_vec)))
            })
            .await?;
            // Taken by another instance since the search.
            let Some(raw) = raw else { continue };
            let now = self.clock.now();
            match report::read(&raw, addresses, now) {
                Report::Events(events) => {
                    let tally =
                        super::record(&self.db, &self.config, &self.link_key, &events, now).await?;
                    polled.recorded += tally.recorded;
                    polled.duplicates += tally.duplicates;
                }
                Report::Unsubscribe { uid } => {
                    if self.unsubscribe(&uid, now).await? {
                        polled.unsubscribed += 1;
                    }
                }
                Report::Ignored(why) => {
                    tracing::info!(uid, why, "bounce mailbox: message not acted on");
                    polled.ignored += 1;
                }
            }
            // Committed: now the message may leave the folder.
            self.take_away(session, uid, can_move, uidplus).await?;
            polled.processed += 1;
        }
        Ok(polled)
    }

    /// Moves a message to the processed folder: `UID MOVE`, else copy, flag and expunge just
    /// that message (`UID EXPUNGE`, UIDPLUS), or the folder's flagged ones where the server has
    /// neither.
    async fn take_away<T>(
        &self,
        session: &mut Session<T>,
        uid: u32,
        can_move: bool,
        uidplus: bool,
    ) -> Result<(), PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let processed_folder = &self.config.bounce_mailbox_processed_folder;
        timed("move", async {
            if can_move {
                return session
                    .uid_mv(uid.to_string(), processed_folder)
                    .await
                    .map_err(imap_error("move"));
            }
            session
                .uid_copy(uid.to_string(), processed_folder)
                .await
                .map_err(imap_error("copy"))?;
            session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
                .await
                .map_err(imap_error("store"))?
                .try_collect::<Vec<_>>()
                .await
                .map_err(imap_error("store"))?;
            if uidplus {
                session
                    .uid_expunge(uid.to_string())
                    .await
                    .map_err(imap_error("expunge"))?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(imap_error("expunge"))?;
            } else {
                session
                    .expunge()
                    .await
                    .map_err(imap_error("expunge"))?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(imap_error("expunge"))?;
            }
            Ok(())
        })
        .await
    }

    /// Carries out an unsubscribe request mailed with the reader's token; whether they left now.
    async fn unsubscribe(
        &self,
        uid: &uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PollError> {
        let outcome = subscribers::unsubscribe(&self.db, uid, now).await?;
        if outcome == subscribers::UnsubscribeOutcome::Unsubscribed {
            tracing::info!("a reader left by an unsubscribe request mailed to the list");
            metrics::counter!("fortnight_unsubscribes_total", "via" => "mail").increment(1);
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_urls_are_read() {
        let url = MailboxUrl::parse("imaps://bounces%40example.com:p%3Ass@imap.example.com/INBOX")
            .unwrap();
        assert_eq!(url.security, Security::Tls);
        assert_eq!((url.host.as_str(), url.port), ("imap.example.com", 993));
        assert_eq!(url.user, "bounces@example.com");
        assert_eq!(url.password.expose_secret(), "p:ss");
        assert_eq!(url.folder, "INBOX");
        let url = MailboxUrl::parse("imap://u:p@127.0.0.1:1143").unwrap();
        assert_eq!(
            (url.security, url.port, url.folder.as_str()),
            (Security::StartTls, 1143, "INBOX")
        );
        assert!(!format!("{url:?}").contains("\"p\""));
        for bad in [
            "pop3://u:p@h/",
            "imaps://h/INBOX",
            "not a url",
            "imaps://u:p@/INBOX",
        ] {
            assert!(MailboxUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
