//! HTTP: the public pages, health, and the server that serves them.

use std::net::TcpListener;
use std::sync::Arc;

use actix_governor::Governor;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{App, HttpResponse, HttpServer, web};
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::token::LinkKey;
use crate::render::Publication;
use crate::store::Db;

pub mod admin;
pub mod api;
pub(crate) mod archive;
pub mod clicks;
pub mod client_ip;
pub mod error;
mod form_body;
mod health;
mod links;
mod manage;
pub(crate) mod metrics;
mod public;
mod request_span;
mod utf8;
pub mod webhooks;

use client_ip::ClientIp;

/// A rendered page with `status`.
pub(crate) fn html(
    status: StatusCode,
    page: impl askama::Template,
) -> Result<HttpResponse, error::WebError> {
    let body = page
        .render()
        .map_err(|e| error::WebError::Internal(e.into()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

impl AppState {
    /// A signup happening now, under the configured resend interval.
    pub fn signup_request(
        &self,
        signup: crate::store::subscribers::NewSignup,
    ) -> crate::store::subscribers::SignupRequest {
        let now = self.clock.now();
        let interval =
            chrono::Duration::from_std(self.config.confirm_resend_interval).unwrap_or_default();
        crate::store::subscribers::SignupRequest {
            signup,
            now,
            resend_after: now - interval,
        }
    }
}

impl AppState {
    /// An issue's report, its links' clicks included.
    pub async fn report(
        &self,
        issue: &crate::domain::Issue,
    ) -> Result<crate::domain::send::IssueReport, crate::store::StoreError> {
        let body_links = crate::render::issue::body_links(issue, &self.publication);
        crate::store::clicks::report(
            &self.db,
            issue,
            &body_links,
            self.config.track_clicks,
            self.config.track_opens,
            (self.config.track_clicks || self.config.track_opens) && self.config.track_readers,
            self.clock.now(),
        )
        .await
    }

    /// The test sender, on this instance's database, mailer and keys.
    pub fn test_sender(&self) -> crate::delivery::TestSend<'_> {
        crate::delivery::TestSend {
            db: &self.db,
            mailer: &self.mailer,
            publication: &self.publication,
            settings: &self.mail_settings,
            link_key: &self.link_key,
        }
    }

    /// An issue's text and HTML parts as a reader without a known name gets them.
    pub fn preview(
        &self,
        issue: &crate::domain::Issue,
    ) -> Result<(String, String), crate::render::issue::RenderError> {
        let prepared = crate::render::issue::prepare(
            issue,
            &self.publication,
            &self.mail_settings,
            "",
            std::time::SystemTime::now(),
        )?;
        Ok(self.preview_of(&prepared))
    }

    /// A prepared message's text and HTML parts as a reader without a known name gets them.
    pub fn preview_of(
        &self,
        prepared: &crate::mail::prepared::PreparedMessage,
    ) -> (String, String) {
        let nobody = uuid::Uuid::nil();
        let unsubscribe = self.publication.unsubscribe_url(&self.link_key, &nobody);
        let manage = self.publication.manage_url(&self.link_key, &nobody);
        crate::render::issue::preview(prepared, &unsubscribe, &manage)
    }
}

/// Largest public form body accepted, in bytes.
pub(crate) const FORM_LIMIT: usize = 16 * 1024;

/// What every handler can reach.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<Config>,
    /// The time source.
    pub clock: Clock,
    /// Name, pitch and address of the publication.
    pub publication: Arc<Publication>,
    /// Signs and checks unsubscribe links.
    pub link_key: LinkKey,
    /// Wakes the transactional mail sender.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the CSV import runner.
    pub import_wake: Arc<Notify>,
    /// Wakes the outbound webhook sender (test events, redeliveries).
    pub webhook_wake: Arc<Notify>,
    /// Reads a saved link's page for its title.
    pub page_fetcher: crate::inbox::fetch::PageFetcher,
    /// Where mail goes (test sends go straight out).
    pub mailer: crate::mail::Mailer,
    /// Wakes delivery workers (resume, retry).
    pub handoff: crate::delivery::Handoff,
    /// What every issue email's headers and footer say.
    pub mail_settings: Arc<crate::render::issue::MailSettings>,
    /// Tells the client address.
    pub client_ip: ClientIp,
    /// Sign-in attempts per account (the per-IP limit is a middleware).
    pub login_accounts: Arc<actix_governor::governor::DefaultKeyedRateLimiter<String>>,
    /// Clicks and opens recorded per client address (past it, the reader is still served).
    pub tracking_ips: Arc<actix_governor::governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// The bounce and complaint webhooks' settings.
    pub webhooks: webhooks::Shared,
    /// Records signups, many to a transaction under load.
    pub signups: crate::store::signup_queue::SignupQueue,
    /// Records followed confirmation links, many to a transaction under load.
    pub confirms: crate::store::signup_queue::ConfirmQueue,
    /// Records unsubscribes, many to a transaction under load.
    pub unsubscribes: crate::store::signup_queue::UnsubscribeQueue,
}

/// Starts the HTTP server on an already bound listener.
pub fn server(
    listener: TcpListener,
    state: web::Data<AppState>,
    admin: admin::AdminSetup,
) -> std::io::Result<Server> {
    let config = state.config.clone();
    // One limiter per kind, shared by every worker thread of this instance.
    let signup_limit = client_ip::post_limit(
        state.client_ip,
        config.signup_rate_per_minute,
        config.signup_burst,
    );
    let login_limit = client_ip::post_limit(
        state.client_ip,
        admin.login_rate_per_minute,
        admin.login_rate_per_minute,
    );
    crate::telemetry::metrics();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(utf8::refuse_invalid_utf8))
            .wrap(ErrorHandlers::new().default_handler(error::render_error_page))
            .wrap(security_headers())
            .wrap(TracingLogger::<request_span::RouteOnlySpan>::new())
            .wrap(actix_web::middleware::from_fn(metrics::track))
            .app_data(state.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(FORM_LIMIT)
                    .error_handler(error::form_error),
            )
            .route("/", web::get().to(public::signup_page))
            .service(
                web::resource("/subscribe")
                    .wrap(Governor::new(&signup_limit))
                    .route(web::post().to(public::subscribe))
                    .route(web::get().to(public::subscribe_redirect)),
            )
            .route("/confirm/{token}", web::get().to(public::confirm))
            .route(
                "/unsubscribe/{token}",
                web::get().to(public::unsubscribe_page),
            )
            .route("/unsubscribe/{token}", web::post().to(public::unsubscribe))
            .route("/manage/{token}", web::get().to(manage::show))
            .route("/manage/{token}/data.json", web::get().to(manage::data))
            .service(
                web::resource("/manage/{token}/{action}")
                    .wrap(Governor::new(&signup_limit))
                    .route(web::post().to(manage::act)),
            )
            .route(
                "/email-change/{token}",
                web::get().to(manage::confirm_email),
            )
            .route("/l/{token}", web::get().to(clicks::follow))
            .route("/o/{token}", web::get().to(clicks::open))
            .route("/archive", web::get().to(archive::list))
            .route("/links", web::get().to(links::page))
            .route("/links.json", web::get().to(links::json))
            .route("/links.xml", web::get().to(links::feed))
            .route("/archive/{slug}", web::get().to(archive::show))
            .route("/feed.xml", web::get().to(archive::feed))
            .route("/health", web::get().to(health::health))
            .route("/favicon.ico", web::get().to(public::favicon))
            .route("/metrics", web::get().to(metrics::metrics))
            .configure(|cfg| admin::configure(cfg, &admin, &login_limit))
            .configure(|cfg| api::configure(cfg, &signup_limit))
            .configure(webhooks::configure)
            .default_service(web::to(|| async {
                HttpResponse::new(StatusCode::NOT_FOUND)
            }))
    })
    .disable_signals()
    .shutdown_timeout(config.shutdown_grace.as_secs().max(1))
    .listen(listener)?;
    if let Some(workers) = config.http_workers {
        server = server.workers(workers.max(1));
    }
    Ok(server.run())
}

/// Headers every answer carries: no sniffing, no framing, no referrer to other sites (links
/// hold tokens; `same-origin` keeps browsers sending a real `Origin` on our own forms),
/// and a content policy that allows nothing but our own inline styles and forms.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
}
