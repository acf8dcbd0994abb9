//! The Deliverability page: recent bounces and complaints with their evidence, the suppression
//! list (search, lift), and the webhook URLs to give each provider with their status.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, see_other};
use crate::render::admin::{DeliverabilityPage, HookRow, when};
use crate::store::mail_events;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Events and suppressions shown.
const SHOWN: i64 = 100;

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    q: String,
}

/// `GET /admin/deliverability`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    query: web::Query<Query>,
) -> Result<HttpResponse, WebError> {
    let search =
        crate::domain::search_text(&query.q).map_err(|why| WebError::BadRequest(why.into()))?;
    let events = mail_events::recent(&state.db, None, SHOWN).await?;
    let suppressions = mail_events::suppressions(&state.db, search.as_deref(), SHOWN).await?;
    let last = mail_events::last_by_provider(&state.db).await?;
    let configured = state.webhooks.configured();
    let hooks = [
        ("ses", "Amazon SES (through SNS)"),
        ("sendgrid", "SendGrid"),
        ("postmark", "Postmark"),
        ("mailgun", "Mailgun"),
    ]
    .into_iter()
    .map(|(key, name)| HookRow {
        name,
        url: format!("{}/webhooks/{key}", state.publication.base_url),
        configured: configured.contains(&key),
        last: when(&last.iter().find(|(p, _)| p == key).map(|(_, at)| *at)),
    })
    .chain(std::iter::once(HookRow {
        name: "Bounce mailbox (IMAP)",
        url: mailbox_shown(&state.config),
        configured: state.config.bounce_mailbox.is_some(),
        last: when(
            &last
                .iter()
                .find(|(p, _)| p == crate::bounces::report::PROVIDER)
                .map(|(_, at)| *at),
        ),
    }))
    .collect();
    let dkim = state
        .config
        .dkim_selector
        .iter()
        .map(|selector| {
            format!(
                "{selector}._domainkey.{}",
                state.config.dkim_signing_domain()
            )
        })
        .collect();
    html(
        StatusCode::OK,
        DeliverabilityPage {
            chrome: chrome(&state, &ctx, &session),
            events,
            suppressions,
            q: &query.q,
            hooks,
            dkim,
        },
    )
}

/// The bounce mailbox as the page shows it: where it is, never its password.
fn mailbox_shown(config: &crate::config::Config) -> String {
    use secrecy::ExposeSecret as _;
    let Some(Ok(url)) = config
        .bounce_mailbox
        .as_ref()
        .map(|m| crate::bounces::mailbox::MailboxUrl::parse(m.expose_secret()))
    else {
        return "set bounce_mailbox to read one".into();
    };
    let scheme = match url.security {
        crate::bounces::mailbox::Security::Tls => "imaps",
        crate::bounces::mailbox::Security::StartTls => "imap",
    };
    format!(
        "{scheme}://{}@{}:{}/{} (processed mail goes to {})",
        url.user, url.host, url.port, url.folder, config.bounce_mailbox_processed_folder
    )
}

/// The lift form.
#[derive(Debug, Deserialize)]
pub struct LiftForm {
    #[serde(default)]
    email: String,
}

/// `POST /admin/deliverability/lift`: the address may sign up or be imported again.
pub async fn lift(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LiftForm>,
) -> Result<HttpResponse, WebError> {
    if !mail_events::lift(&state.db, &form.email).await? {
        return Err(WebError::NotFound(format!(
            "{} is not suppressed.",
            form.email
        )));
    }
    flash(
        &session,
        format!(
            "{} is no longer suppressed: it may sign up or be imported again.",
            form.email
        ),
    );
    Ok(see_other("/admin/deliverability"))
}
