//! Layered settings: built-in defaults, then an optional `fortnight.toml`, then the
//! environment (`FORTNIGHT_<KEY>`, and plain `DATABASE_URL` when `FORTNIGHT_DATABASE_URL`
//! is unset). Secrets are wrapped so that `Debug` and the logs never show them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::store::Synchronous;

/// Every setting Fortnight reads. Field names are the keys of `fortnight.toml` and, upper-cased
/// after `FORTNIGHT_`, of the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://...`; may hold a password.
    pub database_url: SecretString,
    /// Most connections the pool opens (PostgreSQL; SQLite readers).
    pub database_max_connections: u32,
    /// When a SQLite commit reaches the disk: `full` (before it is acknowledged) or `normal`
    /// (at the next checkpoint; a power cut can lose what was acknowledged).
    pub sqlite_synchronous: Synchronous,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// HTTP worker threads; unset means one per CPU core.
    pub http_workers: Option<usize>,
    /// Public address of the site, the prefix of every link in every email.
    pub base_url: Url,
    /// The `From` of every email, e.g. `"The Fortnightly <news@example.com>"`.
    pub mail_from: String,
    /// The `Reply-To` of issue emails, when replies should go elsewhere than `mail_from`.
    pub reply_to: Option<String>,
    /// A mailbox that takes unsubscribe requests by mail, added to `List-Unsubscribe` as
    /// `mailto:` beside the one-click link (you process what arrives there).
    pub list_unsubscribe_mailto: Option<String>,
    /// The envelope sender for bounces (VERP), e.g. `bounces@news.example.com`: each message
    /// goes out from `bounces+TOKEN@news.example.com`, the token naming the copy, so that a
    /// bounce maps to its reader and issue. Unset, the envelope sender is `mail_from`.
    pub bounce_address: Option<String>,
    /// DKIM selectors, one per key in `dkim_private_key` and in the same order: a name, or a
    /// list to sign with several keys (an RSA key and an Ed25519 key, say).
    #[serde(deserialize_with = "one_or_many")]
    pub dkim_selector: Vec<String>,
    /// DKIM private keys (PEM files; RSA of 2048 bits or more, or Ed25519), paired with
    /// `dkim_selector`. Unset, mail goes out unsigned. `fortnight dkim generate` makes one.
    #[serde(deserialize_with = "one_or_many")]
    pub dkim_private_key: Vec<PathBuf>,
    /// The signing domain (`d=`); unset, the domain of `mail_from`.
    pub dkim_domain: Option<String>,
    /// A mailbox that receives bounces and complaints (the `bounce_address`'s), read over
    /// IMAP: `imaps://user:password@imap.example.com/INBOX` (or `imap://` with STARTTLS).
    pub bounce_mailbox: Option<SecretString>,
    /// How often the bounce mailbox is read.
    #[serde(with = "humantime_serde")]
    pub bounce_mailbox_interval: Duration,
    /// The folder processed messages are moved to (created when missing).
    pub bounce_mailbox_processed_folder: String,
    /// A PEM file of a certificate authority trusted for the bounce mailbox's certificate
    /// besides the public ones, for a mail server with a private CA.
    pub bounce_mailbox_certificate_authority: Option<PathBuf>,
    /// Postmark's bounce and spam-complaint webhook: the `user:password` put in the webhook
    /// URL (basic auth). Unset, `/webhooks/postmark` answers 404.
    pub postmark_webhook_credentials: Option<SecretString>,
    /// Mailgun's webhook signing key (HMAC-SHA256 of timestamp and token). Unset,
    /// `/webhooks/mailgun` answers 404.
    pub mailgun_webhook_signing_key: Option<SecretString>,
    /// SendGrid's Event Webhook verification key (the base64 public key SendGrid shows when
    /// signing is turned on). Unset, `/webhooks/sendgrid` answers 404.
    pub sendgrid_webhook_public_key: Option<String>,
    /// The SNS topic that carries Amazon SES's bounce and complaint notifications; messages
    /// from any other topic are refused. Unset, `/webhooks/ses` answers 404.
    pub ses_sns_topic_arn: Option<String>,
    /// For tests only: a PEM file of a certificate authority whose certificates, served from
    /// `https://127.0.0.1`, are accepted as SNS signing certificates. Never set it in production.
    pub sns_test_certificate_authority: Option<PathBuf>,
    /// How far a signed webhook's timestamp may be from the server's clock.
    #[serde(with = "humantime_serde")]
    pub webhook_timestamp_tolerance: Duration,
    /// The publication's postal address, shown in the footer of every issue (anti-spam laws
    /// such as CAN-SPAM require one).
    pub postal_address: String,
    /// `smtp://host:25` (plain, for a local relay), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`; when unset, mail is written as `.eml` files
    /// to `outbox_dir`.
    pub smtp_url: Option<SecretString>,
    /// Folder for `.eml` files when no SMTP server is configured.
    pub outbox_dir: PathBuf,
    /// The publication's name, shown on pages and in emails.
    pub publication_name: String,
    /// One line under the name on the signup page.
    pub publication_pitch: String,
    /// How long a confirmation link stays valid.
    #[serde(with = "humantime_serde")]
    pub confirm_token_ttl: Duration,
    /// A pending address that signs up again gets a fresh confirmation at most this often, so
    /// nobody can flood someone else's inbox through the form.
    #[serde(with = "humantime_serde")]
    pub confirm_resend_interval: Duration,
    /// Signups accepted per minute from one IP address, on average.
    pub signup_rate_per_minute: u32,
    /// Signups one IP address may make in a burst before the average applies.
    pub signup_burst: u32,
    /// Read the client address from the last `X-Forwarded-For` entry (only behind a proxy you run).
    pub trust_forwarded_for: bool,
    /// Other sites (origins such as `https://blog.example.com`) whose pages may post the signup form.
    pub signup_allowed_origins: Vec<String>,
    /// First wait before retrying a transactional email that failed temporarily; it doubles.
    #[serde(with = "humantime_serde")]
    pub mail_retry_base: Duration,
    /// Longest wait between two tries of a transactional email.
    #[serde(with = "humantime_serde")]
    pub mail_retry_max: Duration,
    /// Tries before a transactional email is given up as failed.
    pub mail_max_attempts: u32,
    /// How often the transactional mail queue is checked when nothing wakes it.
    #[serde(with = "humantime_serde")]
    pub mail_poll_interval: Duration,
    /// Signs the admin session cookie: 64 or more characters, the same on every instance.
    /// When unset, one is generated on first run and kept in the database.
    pub secret_key: Option<SecretString>,
    /// Sign-in attempts accepted per minute from one IP address (and for one account).
    pub login_rate_per_minute: u32,
    /// How long an admin session lasts without signing in again.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Whether `fortnight serve` also runs a delivery worker; turn it off for web-only
    /// instances when `fortnight worker` processes do the sending.
    pub delivery_worker: bool,
    /// Issue messages sent per second by one instance, across all its workers (0: no limit).
    /// With several instances, each sends up to this rate.
    pub send_rate_per_second: u32,
    /// Issue messages sent per hour by one instance (unset: no hourly limit).
    pub send_rate_per_hour: Option<u32>,
    /// Messages one instance sends at once (and SMTP connections it keeps open).
    pub send_concurrency: usize,
    /// Tries before an issue delivery that keeps failing temporarily is given up as failed.
    pub send_max_attempts: u32,
    /// Hard bounces (permanent failures) after which a subscriber is marked bounced.
    pub bounce_threshold: u32,
    /// Links in issue emails go through `/l/{token}`, which counts a click and redirects to the
    /// exact address. Off by default; the web version is never tracked.
    pub track_clicks: bool,
    /// With `track_clicks` or `track_opens`, each reader's links and pixel name them, so the
    /// report can tell who clicked or opened.
    pub track_readers: bool,
    /// The HTML part of issue emails ends with a 1×1 image loaded from `/o/{token}`, which
    /// counts an open. Off by default (many clients load images through a proxy or never).
    pub track_opens: bool,
    /// Let webhook endpoints be at loopback or private addresses (off: only public ones, so
    /// an endpoint cannot reach services inside the server's network).
    pub webhooks_allow_private: bool,
    /// Let the links inbox read pages at loopback or private addresses for their titles (off:
    /// only public ones).
    pub link_fetch_allow_private: bool,
    /// How long the deliveries a worker holds stay its own after its last heartbeat: a worker
    /// renews its claim every quarter of this while it lives, so a slow relay or a low rate
    /// never loses it; the rows of a worker that died are sent by another within this long.
    #[serde(with = "humantime_serde")]
    pub delivery_lease: Duration,
    /// Bearer token for `/metrics`; when unset, only clients on this machine may read it.
    pub metrics_token: Option<SecretString>,
    /// How often the scheduler looks for issues whose time has come.
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// An issue whose time passed while no instance ran is still sent if the scheduler finds
    /// it within this long; later, it is marked missed and the editors are told.
    #[serde(with = "humantime_serde")]
    pub catch_up_grace: Duration,
    /// Editors are reminded this long before a slot that has no issue yet; zero turns
    /// reminders off.
    #[serde(with = "humantime_serde")]
    pub reminder_before: Duration,
    /// The scheduler makes the next open slot's draft by itself this long before the slot,
    /// with the links inbox in its roundup; zero (the default) leaves drafts to the editor.
    #[serde(with = "humantime_serde")]
    pub draft_ahead: Duration,
    /// A finished send's sent deliveries are kept this long, then counted on the issue and
    /// deleted (failed ones, and those a bounce or complaint was reported for, stay); zero
    /// keeps them all.
    #[serde(with = "humantime_serde")]
    pub delivery_retention: Duration,
    /// How log lines are written to stderr: `text` for people, `json` for log collectors
    /// (one object per line).
    pub log_format: LogFormat,
    /// How long shutdown waits for mail in flight before exiting.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: SecretString::from("sqlite://fortnight.db"),
            database_max_connections: 16,
            sqlite_synchronous: Synchronous::Full,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http_workers: None,
            base_url: Url::parse("http://127.0.0.1:8080").expect("valid default"),
            mail_from: "Fortnight <newsletter@localhost.localdomain>".into(),
            reply_to: None,
            list_unsubscribe_mailto: None,
            bounce_address: None,
            dkim_selector: Vec::new(),
            dkim_private_key: Vec::new(),
            dkim_domain: None,
            bounce_mailbox: None,
            bounce_mailbox_interval: Duration::from_secs(60),
            bounce_mailbox_processed_folder: "Processed".into(),
            bounce_mailbox_certificate_authority: None,
            postmark_webhook_credentials: None,
            mailgun_webhook_signing_key: None,
            sendgrid_webhook_public_key: None,
            ses_sns_topic_arn: None,
            sns_test_certificate_authority: None,
            webhook_timestamp_tolerance: Duration::from_secs(300),
            postal_address: String::new(),
            smtp_url: None,
            outbox_dir: PathBuf::from("outbox"),
            publication_name: "Fortnight".into(),
            publication_pitch: "Independent analysis, every other week.".into(),
            confirm_token_ttl: Duration::from_secs(72 * 3600),
            confirm_resend_interval: Duration::from_secs(120),
            signup_rate_per_minute: 10,
            signup_burst: 5,
            trust_forwarded_for: false,
            signup_allowed_origins: Vec::new(),
            mail_retry_base: Duration::from_secs(30),
            mail_retry_max: Duration::from_secs(3600),
            mail_max_attempts: 12,
            mail_poll_interval: Duration::from_secs(5),
            secret_key: None,
            login_rate_per_minute: 5,
            session_ttl: Duration::from_secs(12 * 3600),
            delivery_worker: true,
            send_rate_per_second: 100,
            send_rate_per_hour: None,
            send_concurrency: 8,
            send_max_attempts: 8,
            bounce_threshold: 2,
            track_clicks: false,
            track_readers: false,
            track_opens: false,
            webhooks_allow_private: false,
            link_fetch_allow_private: false,
            delivery_lease: Duration::from_secs(30),
            metrics_token: None,
            tick_interval: Duration::from_secs(30),
            catch_up_grace: Duration::from_secs(6 * 3600),
            reminder_before: Duration::from_secs(24 * 3600),
            draft_ahead: Duration::ZERO,
            delivery_retention: Duration::from_secs(90 * 86_400),
            log_format: LogFormat::Text,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A list setting that may also be given as one value (`key = "a"` or `key = ["a", "b"]`).
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Every key [`Config`] reads, to catch misspelt keys in `fortnight.toml`.
const KEYS: &[&str] = &[
    "database_url",
    "database_max_connections",
    "sqlite_synchronous",
    "bind",
    "http_workers",
    "base_url",
    "mail_from",
    "reply_to",
    "list_unsubscribe_mailto",
    "bounce_address",
    "dkim_selector",
    "dkim_private_key",
    "dkim_domain",
    "bounce_mailbox",
    "bounce_mailbox_interval",
    "bounce_mailbox_processed_folder",
    "bounce_mailbox_certificate_authority",
    "postmark_webhook_credentials",
    "mailgun_webhook_signing_key",
    "sendgrid_webhook_public_key",
    "ses_sns_topic_arn",
    "sns_test_certificate_authority",
    "webhook_timestamp_tolerance",
    "postal_address",
    "smtp_url",
    "outbox_dir",
    "publication_name",
    "publication_pitch",
    "confirm_token_ttl",
    "confirm_resend_interval",
    "signup_rate_per_minute",
    "signup_burst",
    "trust_forwarded_for",
    "signup_allowed_origins",
    "mail_retry_base",
    "mail_retry_max",
    "mail_max_attempts",
    "mail_poll_interval",
    "secret_key",
    "login_rate_per_minute",
    "session_ttl",
    "delivery_worker",
    "send_rate_per_second",
    "send_rate_per_hour",
    "send_concurrency",
    "send_max_attempts",
    "bounce_threshold",
    "track_clicks",
    "track_readers",
    "track_opens",
    "webhooks_allow_private",
    "link_fetch_allow_private",
    "delivery_lease",
    "metrics_token",
    "tick_interval",
    "catch_up_grace",
    "reminder_before",
    "draft_ahead",
    "delivery_retention",
    "log_format",
    "shutdown_grace",
];

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads defaults, then `path` (or `fortnight.toml` when it exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => figment = figment.merge(checked_file(path)?),
            None if Path::new("fortnight.toml").exists() => {
                figment = figment.merge(checked_file(Path::new("fortnight.toml"))?)
            }
            None => {}
        }
        let figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("FORTNIGHT_"));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The `(selector, key file)` pairs DKIM signs with; empty when signing is off.
    pub fn dkim_keys(&self) -> Vec<(&str, &Path)> {
        self.dkim_selector
            .iter()
            .map(String::as_str)
            .zip(self.dkim_private_key.iter().map(PathBuf::as_path))
            .collect()
    }

    /// The DKIM signing domain: `dkim_domain`, else the domain of `mail_from`.
    pub fn dkim_signing_domain(&self) -> String {
        self.dkim_domain.clone().unwrap_or_else(|| {
            self.mail_from
                .parse::<Mailbox>()
                .map(|m| m.email.domain().to_owned())
                .unwrap_or_default()
        })
    }

    /// Checks what serde cannot: URL schemes, the sender address, non-zero limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("key `{key}`: {why}")));
        let db = self.database_url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            return bad(
                "database_url",
                "must start with sqlite:, postgres: or postgresql:".into(),
            );
        }
        if db.starts_with("sqlite::memory:") || db.contains("mode=memory") {
            return bad(
                "database_url",
                "an in-memory SQLite database would lose everything on exit; use a file".into(),
            );
        }
        if self.base_url.path() != "/" || self.base_url.query().is_some() {
            return bad(
                "base_url",
                "must be the site's root, without a path (serve Fortnight on its own host)".into(),
            );
        }
        for (key, value, max_days) in [
            ("confirm_token_ttl", self.confirm_token_ttl, 365),
            ("confirm_resend_interval", self.confirm_resend_interval, 1),
            ("mail_retry_base", self.mail_retry_base, 1),
            ("mail_retry_max", self.mail_retry_max, 7),
            ("mail_poll_interval", self.mail_poll_interval, 1),
            ("shutdown_grace", self.shutdown_grace, 1),
            ("session_ttl", self.session_ttl, 30),
            ("tick_interval", self.tick_interval, 1),
            ("catch_up_grace", self.catch_up_grace, 30),
        ] {
            if value > Duration::from_secs(max_days * 86_400)
                || (value.is_zero() && key != "confirm_resend_interval")
            {
                return bad(
                    key,
                    format!("must be above zero and at most {max_days} days"),
                );
            }
        }
        if !matches!(self.base_url.scheme(), "http" | "https") || self.base_url.cannot_be_a_base() {
            return bad("base_url", "must be an http:// or https:// address".into());
        }
        if let Err(e) = self.mail_from.parse::<Mailbox>() {
            return bad("mail_from", format!("not an email address ({e})"));
        }
        if let Some(Err(e)) = self.reply_to.as_deref().map(str::parse::<Mailbox>) {
            return bad("reply_to", format!("not an email address ({e})"));
        }
        if let Some(mailto) = &self.list_unsubscribe_mailto
            && mailto.parse::<lettre::Address>().is_err()
        {
            return bad(
                "list_unsubscribe_mailto",
                format!("{mailto:?} is not a bare email address like unsubscribe@example.com"),
            );
        }
        if let Some(bounce) = &self.bounce_address
            && (bounce.parse::<lettre::Address>().is_err() || bounce.contains('+'))
        {
            return bad(
                "bounce_address",
                format!(
                    "{bounce:?} is not a bare email address without `+`, like bounces@example.com"
                ),
            );
        }
        if self.dkim_selector.len() != self.dkim_private_key.len() {
            return bad(
                "dkim_selector",
                format!(
                    "{} selector(s) for {} key(s) in `dkim_private_key`: give one selector per key, in the same order",
                    self.dkim_selector.len(),
                    self.dkim_private_key.len()
                ),
            );
        }
        for selector in &self.dkim_selector {
            let label_ok =
                |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !selector.split('.').all(label_ok) {
                return bad(
                    "dkim_selector",
                    format!("{selector:?} is not a DNS name like s1 or news-2026"),
                );
            }
        }
        if let Some(domain) = &self.dkim_domain
            && format!("x@{domain}").parse::<lettre::Address>().is_err()
        {
            return bad("dkim_domain", format!("{domain:?} is not a domain name"));
        }
        if let Some(mailbox) = &self.bounce_mailbox
            && let Err(why) = crate::bounces::mailbox::MailboxUrl::parse(mailbox.expose_secret())
        {
            return bad("bounce_mailbox", why);
        }
        if self.bounce_mailbox_interval.is_zero() {
            return bad("bounce_mailbox_interval", "must be more than zero".into());
        }
        let folder = &self.bounce_mailbox_processed_folder;
        if folder.trim().is_empty() || folder.chars().any(char::is_control) {
            return bad(
                "bounce_mailbox_processed_folder",
                "must name a folder, on one line".into(),
            );
        }
        if let Some(Ok(url)) = self
            .bounce_mailbox
            .as_ref()
            .map(|m| crate::bounces::mailbox::MailboxUrl::parse(m.expose_secret()))
            && url.folder.eq_ignore_ascii_case(folder)
        {
            return bad(
                "bounce_mailbox_processed_folder",
                format!("{folder:?} is the folder read: name another"),
            );
        }
        if let (Some(mailto), Some(bounce)) = (&self.list_unsubscribe_mailto, &self.bounce_address)
            && mailto.eq_ignore_ascii_case(bounce)
        {
            return bad(
                "list_unsubscribe_mailto",
                "must differ from `bounce_address`: one takes requests, the other reports".into(),
            );
        }
        if self.postal_address.chars().any(|c| c.is_control()) {
            return bad("postal_address", "must be one line".into());
        }
        if let Some(smtp) = &self.smtp_url {
            let Ok(url) = Url::parse(smtp.expose_secret()) else {
                return bad(
                    "smtp_url",
                    "must look like smtps://user:pass@host:465".into(),
                );
            };
            if !matches!(url.scheme(), "smtp" | "smtps") || url.host().is_none() {
                return bad(
                    "smtp_url",
                    "must look like smtps://user:pass@host:465 or smtp://host:25".into(),
                );
            }
            let tls = url
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            if !matches!(tls.as_deref(), None | Some("required" | "opportunistic")) {
                return bad(
                    "smtp_url",
                    "?tls= must be `required` or `opportunistic` (STARTTLS), or use smtps://"
                        .into(),
                );
            }
            if url.scheme() == "smtp" && url.password().is_some() && tls.is_none() {
                return bad(
                    "smtp_url",
                    "credentials over plain smtp:// would travel unencrypted; add ?tls=required or use smtps://"
                        .into(),
                );
            }
        }
        if self.signup_rate_per_minute == 0 || self.signup_burst == 0 {
            return bad(
                "signup_rate_per_minute",
                "the signup limit and burst must be above zero".into(),
            );
        }
        if self
            .secret_key
            .as_ref()
            .is_some_and(|k| k.expose_secret().len() < 64)
        {
            return bad("secret_key", "must have at least 64 characters".into());
        }
        if self.catch_up_grace <= self.tick_interval {
            return bad(
                "catch_up_grace",
                "must be longer than tick_interval, or every issue would be missed".into(),
            );
        }
        if !(1..=256).contains(&self.send_concurrency) {
            return bad("send_concurrency", "must be between 1 and 256".into());
        }
        if self.send_max_attempts == 0 || self.bounce_threshold == 0 {
            return bad(
                "send_max_attempts",
                "send_max_attempts and bounce_threshold must be at least 1".into(),
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.delivery_lease) {
            return bad(
                "delivery_lease",
                "must be between 1 second and 1 hour".into(),
            );
        }
        if self.send_rate_per_hour == Some(0) {
            return bad(
                "send_rate_per_hour",
                "must be at least 1 (leave it unset for no hourly limit)".into(),
            );
        }
        if self.reminder_before > Duration::from_secs(30 * 86_400) {
            return bad("reminder_before", "must be at most 30 days".into());
        }
        if self.login_rate_per_minute == 0 {
            return bad("login_rate_per_minute", "must be at least 1".into());
        }
        if self.mail_max_attempts == 0 {
            return bad("mail_max_attempts", "must be at least 1".into());
        }
        for origin in &self.signup_allowed_origins {
            if Url::parse(origin).is_err() {
                return bad(
                    "signup_allowed_origins",
                    format!("{origin:?} is not an origin like https://example.com"),
                );
            }
        }
        Ok(())
    }

    /// The sender, already checked by [`Config::validate`].
    pub fn mail_from(&self) -> Mailbox {
        self.mail_from.parse().expect("validated at load")
    }

    /// The `Reply-To` mailbox, already checked by [`Config::validate`].
    pub fn reply_to(&self) -> Option<Mailbox> {
        self.reply_to.as_deref().and_then(|r| r.parse().ok())
    }

    /// The base URL without a trailing slash, ready to have paths appended.
    pub fn base(&self) -> &str {
        self.base_url.as_str().trim_end_matches('/')
    }
}

/// The settings file, refused when it holds a key Fortnight does not know (a typo would
/// otherwise be ignored silently, e.g. a misspelt `smtp_url` sending mail to files).
fn checked_file(path: &Path) -> Result<figment::providers::Data<Toml>, ConfigError> {
    let file = Toml::file_exact(path);
    let table: std::collections::BTreeMap<String, figment::value::Value> =
        Figment::from(Toml::file_exact(path))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
    if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ConfigError(format!(
            "key `{unknown}` in {} is not a setting",
            path.display()
        )));
    }
    Ok(file)
}

/// A URL with its password replaced, safe to log.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment's `Jail` closures return its own `figment::Error`"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load() -> Result<Config, ConfigError> {
        Config::load(None)
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        Jail::expect_with(|_| {
            let config = load().unwrap();
            assert_eq!(config.database_url.expose_secret(), "sqlite://fortnight.db");
            assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
            assert!(config.smtp_url.is_none());
            assert_eq!(config.outbox_dir, PathBuf::from("outbox"));
            Ok(())
        });
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "fortnight.toml",
                r#"
                publication_name = "From the file"
                bind = "0.0.0.0:9000"
                confirm_token_ttl = "2h"
                "#,
            )?;
            jail.set_env("FORTNIGHT_BIND", "127.0.0.1:9100");
            let config = load().unwrap();
            assert_eq!(config.publication_name, "From the file");
            assert_eq!(config.bind.to_string(), "127.0.0.1:9100");
            assert_eq!(config.confirm_token_ttl, Duration::from_secs(7200));
            Ok(())
        });
    }

    #[test]
    fn plain_database_url_is_honoured_unless_the_prefixed_one_is_set() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://plain@localhost/db");
            assert_eq!(
                load().unwrap().database_url.expose_secret(),
                "postgres://plain@localhost/db"
            );
            jail.set_env("FORTNIGHT_DATABASE_URL", "postgres://prefixed@localhost/db");
            assert_eq!(
                load().unwrap().database_url.expose_secret(),
                "postgres://prefixed@localhost/db"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_by_name() {
        Jail::expect_with(|jail| {
            jail.create_file("fortnight.toml", "smtp_ulr = \"smtps://mail.example.com\"")?;
            let err = load().unwrap_err().to_string();
            assert!(err.contains("smtp_ulr"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_key_list_names_every_setting() {
        let shown = format!("{:#?}", Config::default());
        let fields: Vec<&str> = shown
            .lines()
            .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k))
            .collect();
        assert_eq!(
            fields, KEYS,
            "KEYS must list the fields of Config, in order"
        );
    }

    #[test]
    fn sqlite_commits_are_synced_unless_the_operator_says_normal() {
        Jail::expect_with(|jail| {
            assert_eq!(load().unwrap().sqlite_synchronous, Synchronous::Full);
            jail.create_file("fortnight.toml", "sqlite_synchronous = \"normal\"")?;
            assert_eq!(load().unwrap().sqlite_synchronous, Synchronous::Normal);
            jail.set_env("FORTNIGHT_SQLITE_SYNCHRONOUS", "FULL");
            assert_eq!(load().unwrap().sqlite_synchronous, Synchronous::Full);
            jail.set_env("FORTNIGHT_SQLITE_SYNCHRONOUS", "extra");
            let err = load().unwrap_err().to_string();
            assert!(
                err.to_lowercase().contains("sqlite_synchronous")
                    && err.contains("\"full\" or \"normal\""),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_explicit_config_path_must_exist() {
        Jail::expect_with(|_| {
            let err = Config::load(Some(Path::new("missing.toml"))).unwrap_err();
            assert!(err.to_string().contains("missing.toml"));
            Ok(())
        });
    }

    #[test]
    fn bad_values_stop_loading_with_the_key_named() {
        for (key, value) in [
            ("FORTNIGHT_BIND", "not-an-address"),
            ("FORTNIGHT_BASE_URL", "ftp://example.com"),
            ("FORTNIGHT_MAIL_FROM", "nobody"),
            ("FORTNIGHT_SMTP_URL", "http://mail.example.com"),
            ("FORTNIGHT_DATABASE_URL", "mysql://localhost/db"),
            ("FORTNIGHT_CONFIRM_TOKEN_TTL", "soon"),
            ("FORTNIGHT_SIGNUP_BURST", "0"),
            (
                "FORTNIGHT_SMTP_URL",
                "smtp://user:pass@mail.example.com:587",
            ),
            (
                "FORTNIGHT_SMTP_URL",
                "smtp://user:pass@mail.example.com:587?tls=true",
            ),
            ("FORTNIGHT_DATABASE_URL", "sqlite::memory:"),
            ("FORTNIGHT_BASE_URL", "https://example.com/news/"),
            ("FORTNIGHT_MAIL_RETRY_MAX", "30d"),
            ("FORTNIGHT_SECRET_KEY", "too-short"),
            ("FORTNIGHT_DELIVERY_LEASE", "500ms"),
            ("FORTNIGHT_DELIVERY_LEASE", "2h"),
            ("FORTNIGHT_SQLITE_SYNCHRONOUS", "off"),
            (
                "FORTNIGHT_BOUNCE_MAILBOX",
                "pop3://user:pass@mail.example.com/",
            ),
            ("FORTNIGHT_BOUNCE_MAILBOX", "imaps://mail.example.com/INBOX"),
            ("FORTNIGHT_BOUNCE_MAILBOX_INTERVAL", "0s"),
            ("FORTNIGHT_BOUNCE_MAILBOX_PROCESSED_FOLDER", " "),
            ("FORTNIGHT_DKIM_DOMAIN", "not a domain"),
            ("FORTNIGHT_DKIM_SELECTOR", "s1"),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env(key, value);
                let err = load().unwrap_err().to_string().to_lowercase();
                let name = key.trim_start_matches("FORTNIGHT_").to_lowercase();
                let named = err.contains(&name)
                    || (name == "signup_burst" && err.contains("signup_rate_per_minute"));
                assert!(named, "{key}={value}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn settings_that_contradict_each_other_are_refused() {
        for (pairs, named) in [
            (
                [
                    (
                        "FORTNIGHT_BOUNCE_MAILBOX",
                        "imaps://u:p@mail.example.com/Bounces",
                    ),
                    ("FORTNIGHT_BOUNCE_MAILBOX_PROCESSED_FOLDER", "bounces"),
                ],
                "bounce_mailbox_processed_folder",
            ),
            (
                [
                    ("FORTNIGHT_BOUNCE_ADDRESS", "bounces@example.com"),
                    ("FORTNIGHT_LIST_UNSUBSCRIBE_MAILTO", "Bounces@example.com"),
                ],
                "list_unsubscribe_mailto",
            ),
            (
                [
                    ("FORTNIGHT_DKIM_SELECTOR", "not a selector"),
                    ("FORTNIGHT_DKIM_PRIVATE_KEY", "/etc/fortnight/dkim.pem"),
                ],
                "dkim_selector",
            ),
        ] {
            Jail::expect_with(|jail| {
                for (key, value) in pairs {
                    jail.set_env(key, value);
                }
                let err = load().unwrap_err().to_string();
                assert!(err.contains(named), "{pairs:?}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "FORTNIGHT_SMTP_URL",
                "smtps://user:hunter2@mail.example.com:465",
            );
            jail.set_env(
                "FORTNIGHT_DATABASE_URL",
                "postgres://app:s3cret@db.example.com/news",
            );
            let shown = format!("{:?}", load().unwrap());
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cret"),
                "{shown}"
            );
            Ok(())
        });
    }

    #[test]
    fn logged_urls_hide_the_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db/news"),
            "postgres://app:***@db/news"
        );
        assert_eq!(redact_url("sqlite://fortnight.db"), "sqlite://fortnight.db");
    }
}
