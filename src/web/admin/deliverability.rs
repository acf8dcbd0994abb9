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
    .collect();
    html(
        StatusCode::OK,
        DeliverabilityPage {
            chrome: chrome(&state, &ctx, &session),
            events,
            suppressions,
            q: &query.q,
            hooks,
        },
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
