//! The editor's admin under `/admin`: every page and action behind sign-in and a CSRF token.

use actix_governor::Governor;
use actix_session::SessionMiddleware;
use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{Route, web};

use super::client_ip::PostLimit;

mod cadence;
mod context;
mod dashboard;
mod deliverability;
mod guard;
mod issue_form;
mod issue_preview;
mod issues;
mod links;
mod login;
mod send;
mod subscribers;
mod tags;
mod tokens;
mod transfer;
mod webhooks;
mod welcome;

pub use context::AdminContext;
pub use login::after_login;

/// Every signed-in route: (method, path under `/admin`, handler). The router is built from
/// this list and the tests walk the same list, so no route escapes the sign-in check.
fn signed_in_routes() -> Vec<(Method, &'static str, Route)> {
    vec![
        (Method::GET, "", web::get().to(dashboard::show)),
        (
            Method::GET,
            "/subscribers",
            web::get().to(subscribers::list),
        ),
        (
            Method::POST,
            "/subscribers",
            web::post().to(subscribers::add),
        ),
        (
            Method::POST,
            "/subscribers/bulk",
            web::post().to(subscribers::bulk),
        ),
        (
            Method::GET,
            "/subscribers/{id}",
            web::get().to(subscribers::show),
        ),
        (
            Method::POST,
            "/subscribers/{id}/unsubscribe",
            web::post().to(subscribers::unsubscribe),
        ),
        (
            Method::POST,
            "/subscribers/{id}/erase",
            web::post().to(subscribers::erase),
        ),
        (
            Method::POST,
            "/subscribers/{id}/tags",
            web::post().to(subscribers::change_tags),
        ),
        (Method::GET, "/tags", web::get().to(tags::list)),
        (Method::POST, "/tags", web::post().to(tags::create)),
        (Method::POST, "/tags/{id}", web::post().to(tags::update)),
        (
            Method::POST,
            "/tags/{id}/delete",
            web::post().to(tags::delete),
        ),
        (Method::GET, "/issues", web::get().to(issues::list)),
        (Method::POST, "/issues", web::post().to(issues::create)),
        (Method::GET, "/issues/new", web::get().to(issues::new)),
        (
            Method::POST,
            "/issues/draft-preview",
            web::post().to(issue_preview::draft),
        ),
        (Method::GET, "/issues/{id}", web::get().to(issues::edit)),
        (Method::POST, "/issues/{id}", web::post().to(issues::save)),
        (
            Method::POST,
            "/issues/{id}/delete",
            web::post().to(issues::delete),
        ),
        (
            Method::POST,
            "/issues/{id}/duplicate",
            web::post().to(issues::duplicate),
        ),
        (
            Method::GET,
            "/issues/{id}/preview",
            web::get().to(issue_preview::show),
        ),
        (
            Method::GET,
            "/issues/{id}/preview/email",
            web::get().to(issue_preview::email),
        ),
        (
            Method::GET,
            "/issues/{id}/preview/web",
            web::get().to(issue_preview::web_version),
        ),
        (
            Method::POST,
            "/issues/{id}/test",
            web::post().to(issue_preview::send_test),
        ),
        (
            Method::POST,
            "/issues/{id}/schedule",
            web::post().to(cadence::schedule),
        ),
        (
            Method::POST,
            "/issues/{id}/unschedule",
            web::post().to(cadence::unschedule),
        ),
        (
            Method::POST,
            "/issues/{id}/segment",
            web::post().to(issues::segment),
        ),
        (Method::GET, "/issues/{id}/send", web::get().to(send::show)),
        (
            Method::GET,
            "/issues/{id}/report",
            web::get().to(send::report),
        ),
        (
            Method::GET,
            "/issues/{id}/send.json",
            web::get().to(send::json),
        ),
        (
            Method::POST,
            "/issues/{id}/pause",
            web::post().to(send::pause),
        ),
        (
            Method::POST,
            "/issues/{id}/resume",
            web::post().to(send::resume),
        ),
        (
            Method::POST,
            "/issues/{id}/cancel",
            web::post().to(send::cancel),
        ),
        (
            Method::POST,
            "/issues/{id}/retry",
            web::post().to(send::retry),
        ),
        (Method::GET, "/admin.js", web::get().to(send::script)),
        (Method::GET, "/cadence", web::get().to(cadence::show)),
        (Method::POST, "/cadence", web::post().to(cadence::change)),
        (Method::POST, "/cadence/skip", web::post().to(cadence::skip)),
        (
            Method::POST,
            "/cadence/unskip",
            web::post().to(cadence::unskip),
        ),
        (Method::GET, "/import", web::get().to(transfer::import_form)),
        (Method::POST, "/import", web::post().to(transfer::import)),
        // Before `/import/{id}`, which would take `7.json` for an id.
        (
            Method::GET,
            "/import/{id}.json",
            web::get().to(transfer::job_json),
        ),
        (Method::GET, "/import/{id}", web::get().to(transfer::job)),
        (Method::GET, "/export", web::get().to(transfer::export)),
        (
            Method::GET,
            "/deliverability",
            web::get().to(deliverability::show),
        ),
        (
            Method::POST,
            "/deliverability/lift",
            web::post().to(deliverability::lift),
        ),
        (Method::GET, "/links", web::get().to(links::list)),
        // Before `/links/{id}`.
        (Method::GET, "/links/new", web::get().to(links::new)),
        (
            Method::GET,
            "/manifest.webmanifest",
            web::get().to(links::manifest),
        ),
        (Method::POST, "/links", web::post().to(links::save)),
        (Method::POST, "/links/{id}", web::post().to(links::update)),
        (
            Method::POST,
            "/links/{id}/delete",
            web::post().to(links::delete),
        ),
        (Method::GET, "/webhooks", web::get().to(webhooks::list)),
        (Method::POST, "/webhooks", web::post().to(webhooks::create)),
        (Method::GET, "/webhooks/{id}", web::get().to(webhooks::show)),
        (
            Method::POST,
            "/webhooks/{id}",
            web::post().to(webhooks::update),
        ),
        (
            Method::POST,
            "/webhooks/{id}/test",
            web::post().to(webhooks::test),
        ),
        (
            Method::POST,
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            web::post().to(webhooks::redeliver),
        ),
        (
            Method::POST,
            "/webhooks/{id}/delete",
            web::post().to(webhooks::delete),
        ),
        (Method::GET, "/welcome", web::get().to(welcome::show)),
        (Method::POST, "/welcome", web::post().to(welcome::save)),
        (
            Method::GET,
            "/welcome/preview/email",
            web::get().to(welcome::preview_email),
        ),
        (
            Method::POST,
            "/welcome/test",
            web::post().to(welcome::send_test),
        ),
        (Method::GET, "/tokens", web::get().to(tokens::list)),
        (Method::POST, "/tokens", web::post().to(tokens::create)),
        (
            Method::POST,
            "/tokens/{id}/revoke",
            web::post().to(tokens::revoke),
        ),
        (Method::POST, "/logout", web::post().to(login::logout)),
    ]
}

/// The method and full path of every signed-in admin route.
pub fn route_table() -> Vec<(Method, String)> {
    signed_in_routes()
        .into_iter()
        .map(|(m, p, _)| (m, format!("/admin{p}")))
        .collect()
}

/// Settings the admin scope needs, made once per instance and shared by its workers.
#[derive(Clone)]
pub struct AdminSetup {
    /// Signs the session cookie.
    pub key: Key,
    /// Sets `Secure` on the cookie (the site is served over https).
    pub secure: bool,
    /// Session lifetime.
    pub ttl: std::time::Duration,
    /// Sign-ins per minute per IP.
    pub login_rate_per_minute: u32,
}

/// Registers `/admin` on an app: the sign-in page (CSRF-checked, rate-limited per IP) and
/// everything else behind [`guard::require_editor`], all inside the session middleware.
pub fn configure(cfg: &mut web::ServiceConfig, setup: &AdminSetup, login_limit: &PostLimit) {
    // Issue bodies run to a few hundred KB, URL-encoded.
    let mut signed_in = web::scope("")
        .app_data(web::PayloadConfig::new(crate::web::form_body::LARGEST_FORM))
        .wrap(from_fn(guard::require_editor));
    for (_, path, route) in signed_in_routes() {
        signed_in = signed_in.route(path, route);
    }
    let session = SessionMiddleware::builder(CookieSessionStore::default(), setup.key.clone())
        .cookie_name("fortnight_admin".into())
        .cookie_secure(setup.secure)
        .cookie_http_only(true)
        // Lax, not Strict: a link to the admin from an email or a chat arrives signed in.
        // Cross-site posts still carry no cookie, and every post needs the CSRF token anyway.
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/admin".into())
        .session_lifecycle(PersistentSession::default().session_ttl(
            actix_web::cookie::time::Duration::seconds(setup.ttl.as_secs() as i64),
        ))
        .build();
    cfg.service(
        web::scope("/admin")
            .service(
                web::resource("/login")
                    .wrap(from_fn(guard::require_csrf))
                    .wrap(Governor::new(login_limit))
                    .route(web::get().to(login::form))
                    .route(web::post().to(login::submit)),
            )
            .service(signed_in)
            .wrap(session)
            // The admin's own script (live numbers, the editor's preview) may run and call home;
            // pages that need less or more (the preview's frame) set their own.
            // The manifest makes the admin installable (the links inbox's share target); a
            // page that opened the bookmarklet's window keeps no handle on it.
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((
                        actix_web::http::header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
                         img-src 'self' data:; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                         base-uri 'none'",
                    ))
                    .add(("cross-origin-opener-policy", "same-origin")),
            ),
    );
}

/// The frame of a signed-in page.
fn chrome<'a>(
    state: &'a crate::web::AppState,
    ctx: &'a AdminContext,
    session: &actix_session::Session,
) -> crate::render::admin::Chrome<'a> {
    crate::render::admin::Chrome {
        publication: &state.publication,
        editor: &ctx.editor.email,
        csrf: &ctx.csrf,
        flash: context::take_flash(session),
    }
}

/// The box an editor ticks to confirm an action that cannot be undone (erase, delete, cancel):
/// the browser asks for it (`required`), and the server refuses the action without it.
#[derive(serde::Deserialize)]
pub struct Confirm {
    #[serde(default)]
    confirm: String,
}

impl Confirm {
    /// Refuses (400, nothing changed) unless the box was ticked.
    pub fn require(&self, action: &str) -> Result<(), crate::web::error::WebError> {
        if self.confirm == "yes" {
            Ok(())
        } else {
            Err(crate::web::error::WebError::BadRequest(format!(
                "{action} cannot be undone: tick the box beside the button to confirm."
            )))
        }
    }
}

/// A 303 to `location`, the answer to every successful admin form.
fn see_other(location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// A record id from a path: a positive whole number.
fn parse_id(raw: &str) -> Result<i64, crate::web::error::WebError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| crate::web::error::WebError::BadRequest(format!("{raw:?} is not an id.")))
}
