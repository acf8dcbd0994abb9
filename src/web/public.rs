//! The reader-facing pages: signup, confirmation, unsubscribe.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::client_ip::is_own_origin;
use super::error::WebError;
use super::{AppState, html};
use crate::domain::token::ConfirmToken;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName};
use crate::render::{MessagePage, SignupPage, UnsubscribePage};
use crate::store::subscribers::{
    self, ConfirmOutcome, ConfirmRequest, NewSignup, UnsubscribeOutcome, UnsubscribeRequest,
};

/// The signup form's fields; missing ones read as empty so the reader gets a precise message.
#[derive(Debug, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(default)]
    website: String,
}

fn message(
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
    show_signup: bool,
) -> Result<HttpResponse, WebError> {
    html(
        status,
        MessagePage::new(&state.publication, title, text, show_signup),
    )
}

/// `GET /`: the signup page.
#[tracing::instrument(skip_all)]
pub async fn signup_page(state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    html(
        StatusCode::OK,
        SignupPage {
            publication: &state.publication,
            error: None,
            email: "",
            name: "",
        },
    )
}

/// `GET /subscribe`: someone reloaded the answer page; send them to the form.
pub async fn subscribe_redirect() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

/// `POST /subscribe`: records a pending subscriber and queues the confirmation email.
/// The answer is the same whether the address is new, pending, active or gone, and it never
/// waits on the mail server.
#[tracing::instrument(skip_all)]
pub async fn subscribe(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignupForm>,
) -> Result<HttpResponse, WebError> {
    check_origin(&req, &state)?;
    let form = form.into_inner();
    if !form.website.is_empty() {
        tracing::info!("signup dropped: honeypot field filled in");
        return check_your_inbox(&state);
    }
    let parsed = SubscriberEmail::parse(&form.email)
        .map_err(|e| e.to_string())
        .and_then(|email| {
            Ok((
                email,
                SubscriberName::parse_optional(Some(&form.name)).map_err(|e| e.to_string())?,
            ))
        });
    let (email, name) = match parsed {
        Ok(ok) => ok,
        Err(error) => {
            let page = SignupPage {
                publication: &state.publication,
                error: Some(error),
                email: truncate(&form.email, 254),
                name: truncate(&form.name, 100),
            };
            return html(StatusCode::BAD_REQUEST, page);
        }
    };
    let signup = NewSignup {
        email,
        name,
        source: ConsentSource::Form,
        ip: state.client_ip.of(&req).map(|ip| ip.to_string()),
    };
    let outcome = state.signups.signup(state.signup_request(signup)).await?;
    tracing::info!(?outcome, "signup");
    state.outbox_wake.notify_one();
    check_your_inbox(&state)
}

fn check_your_inbox(state: &AppState) -> Result<HttpResponse, WebError> {
    let text = format!(
        "If that address can receive mail, a confirmation link is on its way. Click it to start receiving {}.",
        state.publication.name
    );
    message(state, StatusCode::OK, "Check your inbox", &text, false)
}

/// At most `max` characters of `s`, for echoing input back into a form.
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Refuses form posts that a browser says come from another site, unless that site is listed
/// in `signup_allowed_origins` (a publication may embed the form on its own blog). Requests
/// without `Origin` (non-browser clients) pass; an opaque `Origin: null` passes only when the
/// browser also says the request is same-origin.
pub(super) fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), WebError> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if origin == "null" && matches!(fetch_site, Some("same-origin" | "none")) {
        return Ok(());
    }
    let config = &state.config;
    if is_own_origin(
        req,
        origin,
        &config.base_url,
        &config.signup_allowed_origins,
    ) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Signups are only accepted from this site's own form.".into(),
        ))
    }
}

/// `GET /confirm/{token}`: activates the pending subscriber the link belongs to.
#[tracing::instrument(skip_all)]
pub async fn confirm(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = ConfirmToken::parse(&token).map_err(|_| {
        WebError::BadRequest(
            "This confirmation link is malformed. Please open the whole link from the email."
                .into(),
        )
    })?;
    let request_now = state.clock.now();
    let request = ConfirmRequest {
        hash: token.hash(),
        now: request_now,
    };
    // Answered only once the group holding it is committed (and on disk).
    let outcome = state.confirms.submit(request).await?;
    let confirmed = match outcome {
        ConfirmOutcome::Confirmed => confirmed_text(&state, request_now).await,
        _ => String::new(),
    };
    let (status, title, text, show_signup) = match outcome {
        ConfirmOutcome::Confirmed => (
            StatusCode::OK,
            "You are subscribed",
            confirmed.as_str(),
            false,
        ),
        ConfirmOutcome::AlreadyConfirmed => (
            StatusCode::OK,
            "Already confirmed",
            "This link was already used: your subscription is active. There is nothing more to do.",
            false,
        ),
        ConfirmOutcome::UsedButGone => (
            StatusCode::OK,
            "Link already used",
            "This link was already used, and the subscription has ended since. To come back, sign up again below.",
            true,
        ),
        ConfirmOutcome::NoLongerSubscribed => (
            StatusCode::OK,
            "You have unsubscribed",
            "You left the list after this link was sent. To come back, sign up again below.",
            true,
        ),
        // An expired link is an ordinary situation for the reader, not an error: say what to do.
        ConfirmOutcome::Expired => (
            StatusCode::OK,
            "This link has expired",
            "Confirmation links work for a limited time. Sign up again below and we will send a fresh one.",
            true,
        ),
        ConfirmOutcome::Unknown => (
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "This confirmation link is not valid. Sign up again below to get a new one.",
            true,
        ),
    };
    message(&state, status, title, text, show_signup)
}

/// What the reader reads on confirming: when the next issue comes, if the calendar says. The
/// subscription is already recorded, so a failure to read the calendar only leaves the date out.
async fn confirmed_text(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> String {
    let name = &state.publication.name;
    match crate::schedule::plan::next_issue(&state.db, now).await {
        Ok(Some((_, date))) => {
            format!("Thank you for confirming. The next issue of {name} comes on {date}.")
        }
        Ok(None) => format!("Thank you for confirming. The next issue of {name} will reach you."),
        Err(error) => {
            tracing::warn!(%error, "the next issue's date could not be read");
            format!("Thank you for confirming. The next issue of {name} will reach you.")
        }
    }
}

/// `GET /unsubscribe/{token}`: a page with one button (a GET never changes anything, so link
/// scanners cannot unsubscribe anyone).
#[tracing::instrument(skip_all)]
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let uid = unsubscribe_uid(&state, &token)?;
    match subscribers::find_by_uid(&state.db, &uid).await? {
        None => not_on_list(&state),
        Some(s)
            if matches!(
                s.status,
                crate::domain::SubscriberStatus::Unsubscribed
                    | crate::domain::SubscriberStatus::Bounced
                    | crate::domain::SubscriberStatus::Complained
            ) =>
        {
            unsubscribed(&state)
        }
        Some(s) => {
            let action = format!("/unsubscribe/{}", token.as_str());
            html(
                StatusCode::OK,
                UnsubscribePage {
                    publication: &state.publication,
                    action: &action,
                    email: &s.email,
                },
            )
        }
    }
}

/// `POST /unsubscribe/{token}`: unsubscribes, from the page's button or an RFC 8058 one-click
/// post (`List-Unsubscribe=One-Click`); the body is not needed, the token is the authority.
#[tracing::instrument(skip_all)]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let uid = unsubscribe_uid(&state, &token)?;
    let request = UnsubscribeRequest {
        uid,
        now: state.clock.now(),
    };
    // Answered only once the group holding it is committed (and on disk).
    match state.unsubscribes.submit(request).await? {
        UnsubscribeOutcome::Unsubscribed | UnsubscribeOutcome::AlreadyGone => unsubscribed(&state),
        UnsubscribeOutcome::Unknown => not_on_list(&state),
    }
}

fn unsubscribe_uid(state: &AppState, token: &str) -> Result<uuid::Uuid, WebError> {
    state.link_key.verify_unsubscribe(token).map_err(|_| {
        WebError::BadRequest(
            "This unsubscribe link is malformed. Please open the whole link from the email.".into(),
        )
    })
}

fn unsubscribed(state: &AppState) -> Result<HttpResponse, WebError> {
    let text = format!(
        "You will not receive {} any more. Changed your mind? Sign up again below.",
        state.publication.name
    );
    message(state, StatusCode::OK, "You are unsubscribed", &text, true)
}

fn not_on_list(state: &AppState) -> Result<HttpResponse, WebError> {
    message(
        state,
        StatusCode::NOT_FOUND,
        "Not on the list",
        "No subscription belongs to this link any more, so nothing will be sent to it.",
        true,
    )
}

/// The site's icon: a small SVG (every current browser takes one at `/favicon.ico` when the
/// type says so), cached for a day.
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#b3261e\"/>\
<path d=\"M11 8h11v3.5h-7v3.5h6v3.5h-6V24h-4z\" fill=\"#fff\"/></svg>";

/// `GET /favicon.ico`.
pub async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(FAVICON)
}
