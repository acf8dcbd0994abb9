//! The sender of outbound webhooks: drains `webhook_deliveries` a batch at a time, posts each
//! event signed as the Standard Webhooks specification says, retries failures with backoff
//! for about a day, and disables an endpoint that has failed for a day, telling the editors.
//!
//! Endpoints are posted to only at public addresses unless `webhooks_allow_private` is set:
//! a host name is resolved by [`PublicOnly`], which drops loopback, private and other special
//! addresses, and an address written as an IP is checked before any connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::webhook::{WebhookSecret, is_public};
use crate::store::webhooks::{self, Attempt, DueDelivery, EndpointEffect};
use crate::store::{Db, StoreError};

/// Deliveries claimed per round.
const BATCH: i64 = 32;
/// Deliveries posted at once within a round.
const CONCURRENCY: usize = 8;
/// How long one post may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A claim outlives the slowest possible round (every post timing out) by a minute, so a live
/// sender never loses its rows; a dead one's are taken again after this long.
const LEASE: Duration = Duration::from_secs(10 * (BATCH as u64).div_ceil(CONCURRENCY as u64) + 60);
/// How long registering an endpoint waits to resolve its host.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves host names to public addresses only (or to any, when `allow_private`), and to
/// the addresses in `also`.
#[derive(Debug, Clone, Default)]
pub struct PublicOnly {
    /// Let private and loopback addresses through (tests, or a receiver on the same network).
    pub allow_private: bool,
    /// Private addresses let through all the same.
    pub also: Arc<[IpAddr]>,
}

impl PublicOnly {
    /// Whether `ip` may be connected to.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip) || self.also.contains(&ip)
    }

    /// Why `url`, written with an IP address these rules do not allow, is refused (a host
    /// name is left to the resolver).
    pub fn literal_refusal(&self, url: &url::Url) -> Option<String> {
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!self.allows(ip)).then(|| format!("{ip} is a private or loopback address"))
    }
}

/// `head`, then the causes of `error` (reqwest's own message hides them), never its address
/// (a URL may carry a credential in its path).
pub fn with_causes(head: Option<String>, error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = head.unwrap_or_else(|| error.to_string());
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let rules = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| rules.allows(a.ip()))
                .collect();
            if usable.is_empty() {
                let why = if found.is_empty() {
                    format!("{host} does not resolve")
                } else {
                    format!("{host} resolves only to private or loopback addresses")
                };
                return Err(why.into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why an endpoint's address cannot be used now, or `None`: an IP written in it must be
/// public, and a host name must not resolve to a private address (one that does not resolve
/// yet is accepted; its deliveries fail and retry until it does).
pub async fn refused_destination(url: &url::Url, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    match url.host()? {
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => literal_refusal(url),
        url::Host::Domain(name) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addresses)) => {
                    addresses
                        .map(|a| a.ip())
                        .find(|ip| !is_public(*ip))
                        .map(|ip| {
                            format!(
                                "{name} resolves to {ip}, a private or loopback address; \
                             webhooks go only to public addresses."
                            )
                        })
                }
                _ => None,
            }
        }
    }
}

fn literal_refusal(url: &url::Url) -> Option<String> {
    PublicOnly::default()
        .literal_refusal(url)
        .map(|why| format!("{why}; webhooks go only to public addresses."))
}

/// Everything the sender needs; cheap to clone.
#[derive(Clone)]
pub struct WebhookSender {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<Config>,
    /// The time source.
    pub clock: Clock,
    /// The HTTP client: no proxy, no redirects, public addresses only (unless allowed).
    pub http: reqwest::Client,
    /// Woken when an event is queued by this process.
    pub wake: Arc<Notify>,
    /// Wakes the mail sender (for the editors' notice when an endpoint is disabled).
    pub outbox_wake: Arc<Notify>,
}

impl WebhookSender {
    /// A sender with its own HTTP client.
    pub fn new(
        db: Db,
        config: Arc<Config>,
        clock: Clock,
        wake: Arc<Notify>,
        outbox_wake: Arc<Notify>,
    ) -> anyhow::Result<WebhookSender> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("Fortnight-Webhooks/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly {
                allow_private: config.webhooks_allow_private,
                also: Arc::new([]),
            }))
            .build()?;
        Ok(WebhookSender {
            db,
            config,
            clock,
            http,
            wake,
            outbox_wake,
        })
    }

    /// Claims one batch of due deliveries, posts them and records every try; returns how many
    /// were claimed. Once `shutdown` is cancelled, deliveries not yet started are handed back.
    pub async fn drain_once(&self, shutdown: &CancellationToken) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease = now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::hours(1));
        let due = webhooks::claim_due(&self.db, now, lease, BATCH).await?;
        let claimed = due.len();
        let outcomes: Vec<Result<Option<i64>, StoreError>> = futures_util::stream::iter(due)
            .map(|delivery| async move {
                if shutdown.is_cancelled() {
                    return Ok(Some(delivery.id));
                }
                let attempt = self.post(&delivery).await;
                if let Some(error) = &attempt.error {
                    tracing::warn!(delivery = delivery.id, endpoint = delivery.endpoint_id,
                        attempts = delivery.attempts, %error, "webhook not delivered");
                }
                let notice = self.notice(&delivery, &attempt);
                let effect =
                    webhooks::record_attempt(&self.db, &delivery, lease, &attempt, &notice).await?;
                if effect == EndpointEffect::Disabled {
                    self.outbox_wake.notify_one();
                }
                Ok(None)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        // What was not tried goes back at once, even when recording another try failed.
        let untried: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().copied().flatten())
            .collect();
        webhooks::release(&self.db, &untried, lease).await?;
        if let Some(Err(e)) = outcomes.into_iter().find(Result::is_err) {
            return Err(e);
        }
        Ok(claimed)
    }

    /// Runs until `shutdown`: drains, then sleeps until woken or the poll interval passes.
    /// A database outage or a panic in one round is logged and the next round tries again.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = self.config.mail_poll_interval;
        super::run_rounds("webhook queue", BATCH, &self.wake, poll, &shutdown, || {
            self.drain_once(&shutdown)
        })
        .await;
    }

    /// Posts one delivery; the outcome as the endpoint gave it.
    async fn post(&self, delivery: &DueDelivery) -> Attempt {
        let failed = |status_code: Option<u16>, error: String, sender: &WebhookSender| Attempt {
            status_code,
            error: Some(error),
            at: sender.clock.now(),
        };
        let url = match crate::domain::webhook::endpoint_url(&delivery.url) {
            Ok(url) => url,
            Err(why) => return failed(None, why, self),
        };
        let refused = (!self.config.webhooks_allow_private)
            .then(|| literal_refusal(&url))
            .flatten();
        if let Some(why) = refused {
            return failed(None, why, self);
        }
        let secret = match WebhookSecret::parse(&delivery.secret) {
            Ok(secret) => secret,
            Err(why) => return failed(None, why, self),
        };
        let timestamp = self.clock.now().timestamp();
        let signature = secret.sign(&delivery.message_id, timestamp, &delivery.payload);
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Attempt {
                status_code: Some(response.status().as_u16()),
                error: None,
                at: self.clock.now(),
            },
            Ok(response) => {
                let status = response.status();
                failed(
                    Some(status.as_u16()),
                    format!("the endpoint answered {status}"),
                    self,
                )
            }
            Err(e) => failed(None, describe(e), self),
        }
    }

    /// The notice every editor gets if this try disables the endpoint: subject and text.
    fn notice(&self, delivery: &DueDelivery, attempt: &Attempt) -> (String, String) {
        let name = &self.config.publication_name;
        let base = self.config.base();
        let text = format!(
            "Fortnight stopped sending webhooks to {url}: every try has failed for a day.\n\n\
             The last failure: {error}\n\n\
             Events are no longer queued for it, and those already queued wait. Once it works\n\
             again, switch it back on at\n\
             {base}/admin/webhooks/{id}\n\
             (the waiting events then go out), and redeliver from its log there the ones that\n\
             failed for good.\n",
            url = delivery.url,
            error = attempt.error.as_deref().unwrap_or("unknown"),
            id = delivery.endpoint_id,
        );
        (format!("[{name}] A webhook endpoint was disabled"), text)
    }
}

/// A failed post in words, with its causes.
fn describe(error: reqwest::Error) -> String {
    let head = if error.is_timeout() {
        Some(format!("no answer within {} seconds", TIMEOUT.as_secs()))
    } else if error.is_connect() {
        Some("could not connect".to_owned())
    } else {
        None
    };
    with_causes(head, error)
}
