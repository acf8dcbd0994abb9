//! The reader's own page behind the signed "manage your subscription" link of every issue and
//! welcome: name, address (confirmed by the new address), public tags, a pause, their data as
//! JSON, and leaving with a reason. Every form carries a CSRF field derived from the link key.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::WebError;
use super::{AppState, html};
use crate::domain::token::ConfirmToken;
use crate::domain::{Subscriber, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::render::{ManagePage, MessagePage};
use crate::store::manage::{self, ChangeConfirmed, ChangeRequested};
use crate::store::{subscriber_admin, subscribers, tags};

/// The reader a manage link names, or an answer for a link that names nobody.
async fn reader(state: &AppState, token: &str) -> Result<Subscriber, WebError> {
    let uid = state.link_key.verify_manage(token).map_err(|_| {
        WebError::NotFound(
            "This link is not valid. Please open the whole link from the email.".into(),
        )
    })?;
    subscribers::find_by_uid(&state.db, &uid)
        .await?
        .ok_or_else(|| {
            WebError::NotFound(
                "No subscription belongs to this link any more, so nothing will be sent to it."
                    .into(),
            )
        })
}

/// What a saved change says, by the code the redirect carries.
fn said(code: &str) -> Option<&'static str> {
    Some(match code {
        "name" => "Your name is saved.",
        "email" => {
            "If that address can receive the publication, a link is on its way to it. Open it there to finish the change; until then issues go to this address."
        }
        "tags" => "Your choices are saved.",
        "pause" => "Your pause is saved.",
        "resumed" => "Issues reach you again from the next one.",
        _ => return None,
    })
}

/// The page's query string: what the last action did.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    saved: String,
}

fn page(
    state: &AppState,
    token: &str,
    s: &Subscriber,
    public: Vec<(crate::domain::tag::Tag, bool)>,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let mut response = html(
        status,
        ManagePage {
            publication: &state.publication,
            base: format!("/manage/{token}"),
            csrf: state.link_key.manage_form_token(&s.uid),
            email: &s.email,
            name: s.name.as_deref().unwrap_or(""),
            status: s.status.as_str(),
            active: s.status == SubscriberStatus::Active,
            tags: public,
            skip_issues: s.skip_issues,
            notice,
            error,
        },
    )?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The public tags, each with whether the reader carries it.
async fn public_tags(
    state: &AppState,
    s: &Subscriber,
) -> Result<Vec<(crate::domain::tag::Tag, bool)>, WebError> {
    let carried = tags::of_subscribers(&state.db, &[s.id])
        .await?
        .remove(&s.id)
        .unwrap_or_default();
    Ok(tags::public(&state.db)
        .await?
        .into_iter()
        .map(|t| {
            let chosen = carried.iter().any(|c| c.id == t.id);
            (t, chosen)
        })
        .collect())
}

/// `GET /manage/{token}`.
#[tracing::instrument(skip_all)]
pub async fn show(
    state: web::Data<AppState>,
    token: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let s = reader(&state, &token).await?;
    let public = public_tags(&state, &s).await?;
    let notice = said(&query.saved).map(str::to_owned);
    page(&state, &token, &s, public, notice, None, StatusCode::OK)
}

/// Checks a post: the browser's origin, and the form's CSRF field against the reader's.
fn check_form(
    req: &HttpRequest,
    state: &AppState,
    s: &Subscriber,
    fields: &[(String, String)],
) -> Result<(), WebError> {
    super::public::check_origin(req, state)?;
    let csrf = field(fields, "csrf").unwrap_or_default();
    if state.link_key.verify_manage_form(&s.uid, csrf) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "This form has expired or did not come from your subscription page. Open the page again and retry."
                .into(),
        ))
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn saved(token: &str, code: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/manage/{token}?saved={code}")))
        .finish()
}

/// The posted form's fields, in order.
fn fields(body: &web::Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A form refused for a reason the reader can fix: the page again, with the reason (400).
async fn refused(
    state: &AppState,
    token: &str,
    s: &Subscriber,
    why: String,
) -> Result<HttpResponse, WebError> {
    let public = public_tags(state, s).await?;
    page(
        state,
        token,
        s,
        public,
        None,
        Some(why),
        StatusCode::BAD_REQUEST,
    )
}

/// `POST /manage/{token}/{action}`: name, email, tags, pause or unsubscribe.
#[tracing::instrument(skip_all, fields(action = %path.1))]
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (token, action) = path.into_inner();
    let s = reader(&state, &token).await?;
    let fields = fields(&body);
    check_form(&req, &state, &s, &fields)?;
    let now = state.clock.now();
    let active = s.status == SubscriberStatus::Active;
    match action.as_str() {
        "unsubscribe" => {
            let reason = field(&fields, "reason")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| {
                    r.chars()
                        .filter(|c| !c.is_control())
                        .take(500)
                        .collect::<String>()
                });
            manage::unsubscribe_with_reason(&state.db, s.id, reason.as_deref(), now).await?;
            let text = format!(
                "You will not receive {} any more. Changed your mind? Sign up again below.",
                state.publication.name
            );
            html(
                StatusCode::OK,
                MessagePage::new(&state.publication, "You are unsubscribed", &text, true),
            )
        }
        _ if !active => Err(WebError::Conflict(
            "This subscription is not active, so it cannot be changed; sign up again to come back."
                .into(),
        )),
        "name" => match SubscriberName::parse_optional(field(&fields, "name")) {
            Ok(name) => {
                subscriber_admin::rename(&state.db, s.id, name.as_ref(), now).await?;
                Ok(saved(&token, "name"))
            }
            Err(e) => refused(&state, &token, &s, e.to_string()).await,
        },
        "email" => {
            let new = match SubscriberEmail::parse(field(&fields, "email").unwrap_or("")) {
                Ok(new) => new,
                Err(e) => return refused(&state, &token, &s, e.to_string()).await,
            };
            if new.key() == s.email.to_lowercase() {
                return refused(&state, &token, &s, "That is already your address.".into()).await;
            }
            let ttl = chrono::Duration::from_std(state.config.confirm_token_ttl)
                .unwrap_or(chrono::Duration::days(3));
            // The answer is the same whether the address is free, taken or suppressed (only a
            // free one is mailed), so the form tells nobody who is on the list.
            match manage::request_email_change(&state.db, s.id, &new, now, now + ttl).await? {
                ChangeRequested::Queued => {
                    state.outbox_wake.notify_one();
                    Ok(saved(&token, "email"))
                }
                ChangeRequested::Taken | ChangeRequested::Suppressed => Ok(saved(&token, "email")),
                ChangeRequested::TooMany => Err(WebError::TooManyRequests),
            }
        }
        "tags" => {
            let public = tags::public(&state.db).await?;
            let mut chosen = Vec::new();
            for (key, value) in &fields {
                if key != "tag" {
                    continue;
                }
                let tag = public.iter().find(|t| t.id.to_string() == *value);
                match tag {
                    Some(t) => chosen.push(t.id),
                    None => {
                        let why =
                            "One of the choices is no longer offered; here are the current ones."
                                .to_owned();
                        return refused(&state, &token, &s, why).await;
                    }
                }
            }
            tags::replace(&state.db, s.id, &chosen, true, now).await?;
            Ok(saved(&token, "tags"))
        }
        "pause" => {
            let issues = field(&fields, "issues")
                .and_then(|n| n.trim().parse::<i32>().ok())
                .filter(|n| (0..=6).contains(n));
            let Some(issues) = issues else {
                let why = "Choose how many issues to skip: 1 to 6 (or 0 to resume).".to_owned();
                return refused(&state, &token, &s, why).await;
            };
            manage::pause(&state.db, s.id, issues, now).await?;
            Ok(saved(&token, if issues == 0 { "resumed" } else { "pause" }))
        }
        _ => Err(WebError::NotFound("There is no such page.".into())),
    }
}

/// Everything stored about a reader, for `GET /manage/{token}/data.json`.
#[derive(Serialize)]
struct ReaderData {
    email: String,
    name: Option<String>,
    status: String,
    signed_up_at: DateTime<Utc>,
    consent: Consent,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    unsubscribe_reason: Option<String>,
    skip_issues: i32,
    tags: Vec<String>,
    issues_sent: Vec<IssueSent>,
}

/// The evidence of the reader's consent.
#[derive(Serialize)]
struct Consent {
    given_at: DateTime<Utc>,
    source: String,
    ip: Option<String>,
}

/// One issue as it went to the reader.
#[derive(Serialize)]
struct IssueSent {
    subject: String,
    status: String,
    sent_at: Option<DateTime<Utc>>,
}

/// `GET /manage/{token}/data.json`: what is stored about the reader, as a download.
#[tracing::instrument(skip_all)]
pub async fn data(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let s = reader(&state, &token).await?;
    let tags = tags::of_subscribers(&state.db, &[s.id])
        .await?
        .remove(&s.id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let issues_sent = subscriber_admin::deliveries_of(&state.db, s.id, 100_000)
        .await?
        .into_iter()
        .map(|d| IssueSent {
            subject: d.subject,
            status: d.status,
            sent_at: d.sent_at,
        })
        .collect();
    let data = ReaderData {
        email: s.email,
        name: s.name,
        status: s.status.as_str().to_owned(),
        signed_up_at: s.created_at,
        consent: Consent {
            given_at: s.consent_at,
            source: s.consent_source,
            ip: s.consent_ip,
        },
        confirmed_at: s.confirmed_at,
        unsubscribed_at: s.unsubscribed_at,
        unsubscribe_reason: s.unsubscribe_reason,
        skip_issues: s.skip_issues,
        tags,
        issues_sent,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"my-subscription.json\"",
        ))
        .json(data))
}

/// `GET /email-change/{token}`: the new address confirms; the subscription moves to it.
#[tracing::instrument(skip_all)]
pub async fn confirm_email(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = ConfirmToken::parse(&token).map_err(|_| {
        WebError::BadRequest(
            "This link is malformed. Please open the whole link from the email.".into(),
        )
    })?;
    let outcome = manage::confirm_email_change(
        &state.db,
        &token.hash(),
        &state.publication.name,
        state.clock.now(),
    )
    .await?;
    state.outbox_wake.notify_one();
    let (status, title, text) = match outcome {
        ChangeConfirmed::Changed { new_email } => (
            StatusCode::OK,
            "Address changed",
            format!(
                "{} now goes to {new_email}. The old address was told.",
                state.publication.name
            ),
        ),
        ChangeConfirmed::Taken => (
            StatusCode::CONFLICT,
            "Address already subscribed",
            "That address cannot be used (it already receives the publication, or mail to it bounced), so nothing changed.".to_owned(),
        ),
        ChangeConfirmed::Expired => (
            StatusCode::OK,
            "This link has expired",
            "It was used already or is too old. Ask for the change again from your subscription page."
                .to_owned(),
        ),
        ChangeConfirmed::Unknown => (
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "This link is not valid.".to_owned(),
        ),
    };
    html(
        status,
        MessagePage::new(&state.publication, title, &text, false),
    )
}
