//! HTTP: the public pages, health, and the server that serves them.

use std::net::TcpListener;
use std::sync::Arc;

use actix_governor::{Governor, GovernorConfigBuilder};
use actix_web::dev::Server;
use actix_web::http::{Method, StatusCode};
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
pub mod client_ip;
pub mod error;
mod health;
mod public;
mod request_span;

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

/// The per-IP limiter type for signups (the form and the API share one limiter).
pub type SignupLimit =
    actix_governor::GovernorConfig<ClientIp, actix_governor::governor::middleware::NoOpMiddleware>;

/// Largest form body accepted, in bytes.
const FORM_LIMIT: usize = 16 * 1024;

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
    /// Tells the client address.
    pub client_ip: ClientIp,
    /// Sign-in attempts per account (the per-IP limit is a middleware).
    pub login_accounts: Arc<actix_governor::governor::DefaultKeyedRateLimiter<String>>,
    /// Records signups, many to a transaction under load.
    pub signups: crate::store::signup_queue::SignupQueue,
}

/// Starts the HTTP server on an already bound listener.
pub fn server(
    listener: TcpListener,
    state: web::Data<AppState>,
    admin: admin::AdminSetup,
) -> std::io::Result<Server> {
    let login_limit = admin::login_limit(&admin);
    let config = state.config.clone();
    let per_minute = u64::from(config.signup_rate_per_minute);
    // One limiter shared by every worker thread of this instance.
    let signup_limit = GovernorConfigBuilder::default()
        .period(std::time::Duration::from_nanos(
            60_000_000_000 / per_minute.max(1),
        ))
        .burst_size(config.signup_burst)
        .methods(vec![Method::POST])
        .key_extractor(state.client_ip)
        .finish()
        .expect("limits validated at load");
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(ErrorHandlers::new().default_handler(error::render_error_page))
            .wrap(security_headers())
            .wrap(TracingLogger::<request_span::RouteOnlySpan>::new())
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
            .route("/health", web::get().to(health::health))
            .configure(|cfg| admin::configure(cfg, &admin, &login_limit))
            .configure(|cfg| api::configure(cfg, &signup_limit))
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
