//! Builds a running instance from configuration: database, mail transport, HTTP server and
//! the background sender, and stops them in order.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bounces::mailbox::BounceMailbox;
use crate::clock::Clock;
use crate::config::{Config, redact_url};
use crate::delivery::Handoff;
use crate::delivery::worker::{Limits, Worker};
use crate::domain::token::LinkKey;
use crate::mail::Mailer;
use crate::outbox::OutboxSender;
use crate::outbox::webhooks::WebhookSender;
use crate::render::Publication;
use crate::render::issue::MailSettings;
use crate::schedule::{Scheduler, Ticker};
use crate::store::signup_queue::{ConfirmQueue, SignupQueue, UnsubscribeQueue};
use crate::store::{Db, settings};
use crate::transfer::Importer;
use crate::web::admin::AdminSetup;
use crate::web::client_ip::ClientIp;
use crate::web::{self as http, AppState};
use actix_governor::governor::{Quota, RateLimiter};
use actix_web::cookie::Key;
use std::num::NonZeroU32;

/// A built instance, bound to its port but not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    sender: OutboxSender,
    webhooks: WebhookSender,
    scheduler: Scheduler,
    worker: Worker,
    importer: Importer,
    mailbox: Option<BounceMailbox>,
    state: web::Data<AppState>,
}

/// The pieces every entry point (the server, `fortnight tick`) shares.
#[derive(Clone)]
pub struct Parts {
    /// Settings.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The time source.
    pub clock: Clock,
    /// Where mail goes.
    pub mailer: Mailer,
    /// Signs unsubscribe links.
    pub link_key: LinkKey,
    /// The publication's name and address.
    pub publication: Arc<Publication>,
    /// Wakes the transactional mail sender.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the import runner.
    pub import_wake: Arc<Notify>,
    /// Wakes the webhook sender.
    pub webhook_wake: Arc<Notify>,
}

impl Parts {
    /// Reads the keys kept in the database and opens the mail transport.
    pub async fn assemble(config: Config, db: Db, clock: Clock) -> anyhow::Result<Parts> {
        let mailer = Mailer::from_config(&config)?;
        let link_key = settings::link_key(&db, clock.now())
            .await
            .context("cannot read the link key")?;
        let publication = Arc::new(Publication {
            name: config.publication_name.clone(),
            pitch: config.publication_pitch.clone(),
            base_url: config.base().to_owned(),
        });
        Ok(Parts {
            config: Arc::new(config),
            db,
            clock,
            mailer,
            link_key,
            publication,
            outbox_wake: Arc::new(Notify::new()),
            import_wake: Arc::new(Notify::new()),
            webhook_wake: Arc::new(Notify::new()),
        })
    }

    /// The CSV import runner; a job held by a process that died resumes after `delivery_lease`.
    pub fn importer(&self) -> Importer {
        let mut importer = Importer::new(
            self.db.clone(),
            self.clock.clone(),
            self.config.delivery_lease,
            self.outbox_wake.clone(),
        );
        importer.wake = self.import_wake.clone();
        importer
    }

    /// The bounce mailbox reader, when `bounce_mailbox` is set.
    pub fn bounce_mailbox(&self) -> anyhow::Result<Option<BounceMailbox>> {
        BounceMailbox::from_config(
            self.config.clone(),
            self.db.clone(),
            self.clock.clone(),
            self.link_key.clone(),
        )
    }

    /// The transactional mail sender.
    pub fn sender(&self) -> OutboxSender {
        OutboxSender {
            db: self.db.clone(),
            mailer: self.mailer.clone(),
            config: self.config.clone(),
            clock: self.clock.clone(),
            link_key: self.link_key.clone(),
            publication: self.publication.clone(),
            wake: self.outbox_wake.clone(),
        }
    }

    /// The outbound webhook sender.
    pub fn webhook_sender(&self) -> anyhow::Result<WebhookSender> {
        WebhookSender::new(
            self.db.clone(),
            self.config.clone(),
            self.clock.clone(),
            self.webhook_wake.clone(),
            self.outbox_wake.clone(),
        )
    }

    /// A delivery worker, woken by `handoff`.
    pub fn worker(&self, handoff: Handoff) -> anyhow::Result<Worker> {
        Ok(Worker {
            db: self.db.clone(),
            transport: Mailer::with_connections(&self.config, self.config.send_concurrency)?,
            config: self.config.clone(),
            clock: self.clock.clone(),
            link_key: self.link_key.clone(),
            publication: self.publication.clone(),
            settings: Arc::new(
                MailSettings::from_config(&self.config).tracking(&self.config, &self.link_key),
            ),
            handoff,
            limits: Arc::new(Limits::from_config(&self.config)),
            outbox_wake: self.outbox_wake.clone(),
            prepared: Arc::default(),
        })
    }

    /// The scheduler, handing started issues to `handoff`.
    pub fn scheduler(&self, handoff: Handoff) -> Scheduler {
        Scheduler {
            db: self.db.clone(),
            handoff,
            publication: self.publication.clone(),
            outbox_wake: self.outbox_wake.clone(),
            catch_up_grace: self.config.catch_up_grace,
            reminder_before: self.config.reminder_before,
            draft_ahead: self.config.draft_ahead,
            delivery_retention: self.config.delivery_retention,
        }
    }
}

impl Application {
    /// Builds an instance on the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Clock::System).await
    }

    /// Builds an instance: connects, migrates, binds the listener (port 0 picks a free one).
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Application> {
        let db_url = config.database_url.expose_secret().to_owned();
        let db = Db::connect(
            &config.database_url,
            config.database_max_connections,
            config.sqlite_synchronous,
        )
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(&db_url)))?;
        db.migrate()
            .await
            .context("cannot apply database migrations")?;
        tracing::info!(database = %redact_url(&db_url), backend = ?db.backend(), "database ready");
        Self::build_on(config, db, clock).await
    }

    /// Builds an instance on an open, migrated database.
    pub async fn build_on(config: Config, db: Db, clock: Clock) -> anyhow::Result<Application> {
        let parts = Parts::assemble(config, db, clock).await?;
        let Parts {
            config,
            db,
            clock,
            mailer,
            link_key,
            publication,
            outbox_wake,
            import_wake,
            webhook_wake,
        } = parts.clone();
        let listener = TcpListener::bind(config.bind).with_context(|| {
            format!(
                "configuration: key `bind`: cannot listen on {}",
                config.bind
            )
        })?;
        let port = listener.local_addr()?.port();
        let handoff = Handoff::default();
        let state = web::Data::new(AppState {
            db: db.clone(),
            config: config.clone(),
            clock: clock.clone(),
            publication,
            link_key,
            outbox_wake,
            import_wake,
            webhook_wake,
            page_fetcher: crate::inbox::fetch::PageFetcher::new(config.link_fetch_allow_private)?,
            mailer,
            mail_settings: Arc::new(MailSettings::from_config(&config)),
            handoff: handoff.clone(),
            client_ip: ClientIp {
                trust_forwarded: config.trust_forwarded_for,
            },
            signups: SignupQueue::start(db.clone()),
            webhooks: Arc::new(crate::web::webhooks::Webhooks::from_config(&config)?),
            confirms: ConfirmQueue::start(db.clone()),
            unsubscribes: UnsubscribeQueue::start(db.clone()),
            tracking_ips: Arc::new(RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(crate::web::clicks::COUNTED_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ))),
            login_accounts: Arc::new(RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(config.login_rate_per_minute).unwrap_or(NonZeroU32::MIN),
            ))),
        });
        let session_key = match &config.secret_key {
            Some(key) => key.expose_secret().as_bytes().to_vec(),
            None => settings::session_key(&db, clock.now())
                .await
                .context("cannot read the session key")?,
        };
        let admin = AdminSetup {
            key: Key::derive_from(&session_key),
            secure: config.base_url.scheme() == "https",
            ttl: config.session_ttl,
            login_rate_per_minute: config.login_rate_per_minute,
        };
        let server = http::server(listener, state.clone(), admin)?;
        tracing::info!(port, "listening");
        Ok(Application {
            port,
            server,
            sender: parts.sender(),
            webhooks: parts.webhook_sender()?,
            scheduler: parts.scheduler(handoff.clone()),
            worker: parts.worker(handoff)?,
            importer: parts.importer(),
            mailbox: parts.bounce_mailbox()?,
            state,
        })
    }

    /// The port the server is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (database, clock, keys), for callers that drive the instance.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The scheduler, for callers that tick by hand.
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler.clone()
    }

    /// The delivery worker, for callers that run rounds by hand.
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// The CSV import runner, for callers that run jobs by hand.
    pub fn importer(&self) -> Importer {
        self.importer.clone()
    }

    /// The bounce mailbox reader, for callers that poll by hand.
    pub fn bounce_mailbox(&self) -> Option<BounceMailbox> {
        self.mailbox.clone()
    }

    /// The transactional mail sender, for callers that drain it by hand.
    pub fn sender(&self) -> OutboxSender {
        self.sender.clone()
    }

    /// The webhook sender, for callers that drain it by hand.
    pub fn webhook_sender(&self) -> WebhookSender {
        self.webhooks.clone()
    }

    /// Serves until `stop` is cancelled, then stops taking requests and lets those in flight
    /// and the mail being sent finish, together, within one `shutdown_grace`.
    pub async fn run_until(self, stop: CancellationToken) -> anyhow::Result<()> {
        let grace = self.sender.config.shutdown_grace;
        let background = CancellationToken::new();
        let sender = tokio::spawn(self.sender.clone().run(background.clone()));
        let importer = tokio::spawn(self.importer.clone().run(background.clone()));
        let webhooks = tokio::spawn(self.webhooks.clone().run(background.clone()));
        if let Some(mailbox) = self.mailbox.clone() {
            tokio::spawn(mailbox.run(background.clone()));
        }
        let worker = if self.sender.config.delivery_worker {
            tokio::spawn(self.worker.clone().run(background.clone()))
        } else {
            tokio::spawn(async {})
        };
        let ticker = Ticker::start(
            self.scheduler.clone(),
            self.state.clock.clone(),
            self.sender.config.tick_interval,
        )
        .await?;
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            result = &mut server => {
                background.cancel();
                ticker.stop().await;
                result??;
            }
            _ = stop.cancelled() => {
                tracing::info!("shutting down: no new requests; finishing work in flight");
                background.cancel();
                ticker.stop().await;
                let deadline = tokio::time::Instant::now() + grace;
                let (_, sender, worker, _, _) = tokio::join!(
                    handle.stop(true),
                    tokio::time::timeout_at(deadline, sender),
                    tokio::time::timeout_at(deadline, worker),
                    tokio::time::timeout_at(deadline, importer),
                    tokio::time::timeout_at(deadline, webhooks)
                );
                if sender.is_err() || worker.is_err() {
                    tracing::warn!("mail in flight did not finish within the grace period");
                }
                tracing::info!("stopped");
                return Ok(());
            }
        }
        let _ = tokio::time::timeout(grace, sender).await;
        let _ = tokio::time::timeout(grace, worker).await;
        let _ = tokio::time::timeout(grace, importer).await;
        let _ = tokio::time::timeout(grace, webhooks).await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_signalled(self) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        tokio::spawn(shutdown_signal(stop.clone()));
        self.run_until(stop).await
    }
}

/// Runs the delivery worker and the transactional mail sender (no web server, no ticker)
/// until SIGTERM or Ctrl-C: `fortnight worker`, for adding sending capacity.
pub async fn run_workers(parts: Parts) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    tokio::spawn(shutdown_signal(stop.clone()));
    let worker = tokio::spawn(parts.worker(Handoff::default())?.run(stop.clone()));
    let sender = tokio::spawn(parts.sender().run(stop.clone()));
    let webhooks = tokio::spawn(parts.webhook_sender()?.run(stop.clone()));
    tracing::info!("delivery worker running");
    stop.cancelled().await;
    let grace = parts.config.shutdown_grace;
    let _ = tokio::time::timeout(grace, async { tokio::join!(worker, sender, webhooks) }).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal(stop: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    stop.cancel();
}
