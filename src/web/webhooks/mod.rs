//! Bounce and complaint webhooks from mail providers, one route each under `/webhooks/`.
//!
//! Each is verified the way its provider specifies, and refused (401 or 403, nothing recorded)
//! when the signature, the timestamp window or the credentials fail. A verified body becomes
//! [`MailEvent`]s, each recorded once by its provider's own id and acted on at once
//! ([`crate::store::mail_events::record`]). Events that are neither bounces nor complaints are
//! logged and answered 200, so providers do not retry them forever; a body that cannot be read
//! is answered 400 and changes nothing.

mod mailgun;
mod postmark;
mod sendgrid;
mod ses;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::config::Config;
use crate::domain::MailEvent;
use crate::store::mail_events;

/// The largest webhook body taken (SendGrid batches events; an SNS message is at most 256 KB).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The providers' settings, checked and parsed once at start-up.
pub struct Webhooks {
    postmark: Option<postmark::Settings>,
    mailgun: Option<mailgun::Settings>,
    sendgrid: Option<sendgrid::Settings>,
    ses: Option<ses::Settings>,
    tolerance: chrono::Duration,
}

impl Webhooks {
    /// Reads the webhook settings; a key that cannot be used is a configuration error.
    pub fn from_config(config: &Config) -> anyhow::Result<Webhooks> {
        Ok(Webhooks {
            postmark: config
                .postmark_webhook_credentials
                .as_ref()
                .map(postmark::Settings::new)
                .transpose()?,
            mailgun: config
                .mailgun_webhook_signing_key
                .as_ref()
                .map(mailgun::Settings::new),
            sendgrid: config
                .sendgrid_webhook_public_key
                .as_deref()
                .map(sendgrid::Settings::new)
                .transpose()?,
            ses: config
                .ses_sns_topic_arn
                .as_deref()
                .map(|arn| {
                    ses::Settings::new(arn, config.sns_test_certificate_authority.as_deref())
                })
                .transpose()?,
            tolerance: chrono::Duration::from_std(config.webhook_timestamp_tolerance)
                .unwrap_or(chrono::Duration::minutes(5)),
        })
    }

    /// The providers set up, for the admin's list of webhook URLs.
    pub fn configured(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.ses.is_some() {
            out.push("ses");
        }
        if self.sendgrid.is_some() {
            out.push("sendgrid");
        }
        if self.postmark.is_some() {
            out.push("postmark");
        }
        if self.mailgun.is_some() {
            out.push("mailgun");
        }
        out
    }
}

/// Why a webhook request was not recorded.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The signature, credentials or timestamp do not check out (401).
    Unauthorized(&'static str),
    /// Verified, but not for us (another SNS topic, a certificate from elsewhere): 403.
    Forbidden(&'static str),
    /// The body cannot be read as the provider's format (400).
    Malformed(String),
    /// This provider is not set up here (404).
    NotConfigured,
    /// The database failed (503: the provider retries).
    Unavailable(String),
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Unavailable(e.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl actix_web::ResponseError for Refusal {
    fn error_response(&self) -> HttpResponse {
        let (status, message) = match self {
            Refusal::Unauthorized(why) => (StatusCode::UNAUTHORIZED, why.to_string()),
            Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_string()),
            Refusal::Malformed(why) => (StatusCode::BAD_REQUEST, why.clone()),
            Refusal::NotConfigured => (
                StatusCode::NOT_FOUND,
                "This webhook is not set up on this server.".to_owned(),
            ),
            Refusal::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The event could not be recorded; try again.".to_owned(),
            ),
        };
        if let Refusal::Unavailable(error) = self {
            tracing::error!(%error, "webhook event not recorded");
        } else {
            tracing::warn!(%status, %message, "webhook refused");
        }
        HttpResponse::build(status).json(json!({ "error": message }))
    }
}

/// What a verified body holds: the events to record, and how many were of no concern.
pub(crate) struct Parsed {
    events: Vec<MailEvent>,
    ignored: usize,
}

/// Records verified events; each once.
async fn record(state: &AppState, parsed: Parsed) -> Result<HttpResponse, Refusal> {
    let tally = crate::bounces::record(
        &state.db,
        &state.config,
        &state.link_key,
        &parsed.events,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "recorded": tally.recorded,
        "duplicates": tally.duplicates,
        "ignored": parsed.ignored,
    })))
}

/// `POST /webhooks/postmark`.
async fn postmark(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let settings = state
        .webhooks
        .postmark
        .as_ref()
        .ok_or(Refusal::NotConfigured)?;
    record(&state, settings.verify(&req, &body)?).await
}

/// `POST /webhooks/mailgun`.
async fn mailgun(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, Refusal> {
    let settings = state
        .webhooks
        .mailgun
        .as_ref()
        .ok_or(Refusal::NotConfigured)?;
    let tolerance = state.webhooks.tolerance;
    let (parsed, token, event_id) = settings.verify(&body, state.clock.now(), tolerance)?;
    let now = chrono::Utc::now();
    let forget_before = now - tolerance * 4;
    if !mail_events::token_fits(&state.db, "mailgun", &token, &event_id, now, forget_before).await?
    {
        return Err(Refusal::Unauthorized(
            "This signature was already used for another event.",
        ));
    }
    record(&state, parsed).await
}

/// `POST /webhooks/sendgrid`.
async fn sendgrid(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let settings = state
        .webhooks
        .sendgrid
        .as_ref()
        .ok_or(Refusal::NotConfigured)?;
    let parsed = settings.verify(&req, &body, state.clock.now(), state.webhooks.tolerance)?;
    record(&state, parsed).await
}

/// `POST /webhooks/ses`: Amazon SES notifications through SNS (subscription confirmations too).
async fn ses(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    let settings = state.webhooks.ses.as_ref().ok_or(Refusal::NotConfigured)?;
    match settings.verify(&req, &body).await? {
        ses::Verified::Events(parsed) => record(&state, parsed).await,
        ses::Verified::Answered(response) => Ok(response),
    }
}

/// Adds the webhook routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/webhooks")
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .route("/postmark", web::post().to(postmark))
            .route("/mailgun", web::post().to(mailgun))
            .route("/sendgrid", web::post().to(sendgrid))
            .route("/ses", web::post().to(ses)),
    );
}

/// A shared handle, for the app state.
pub type Shared = Arc<Webhooks>;

/// Reads a JSON body as the provider's format.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| Refusal::Malformed(format!("The body is not the provider's JSON: {e}")))
}

/// A timestamp in seconds within `tolerance` of `now`.
pub(crate) fn fresh(
    seconds: i64,
    now: chrono::DateTime<chrono::Utc>,
    tolerance: chrono::Duration,
) -> Result<(), Refusal> {
    let at = chrono::DateTime::from_timestamp(seconds, 0)
        .ok_or(Refusal::Unauthorized("The timestamp is not a time."))?;
    if (now - at).abs() > tolerance {
        return Err(Refusal::Unauthorized(
            "The timestamp is outside the accepted window.",
        ));
    }
    Ok(())
}
