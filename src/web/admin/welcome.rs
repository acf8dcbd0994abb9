//! The welcome email: write it, preview the saved version, send a test copy.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, see_other};
use crate::domain::SubscriberEmail;
use crate::domain::welcome::{PLACEHOLDERS, Welcome, WelcomeDraft};
use crate::mail::prepared::PreparedMessage;
use crate::outbox::welcome;
use crate::render::admin::WelcomePage;
use crate::store;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// The saved welcome rendered as it would go out now.
async fn prepared(
    state: &AppState,
    content: &Welcome,
    subject_prefix: &str,
) -> Result<PreparedMessage, WebError> {
    welcome::prepare(
        &state.db,
        content,
        &state.publication,
        &state.mail_settings,
        subject_prefix,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        welcome::WelcomeError::Store(e) => WebError::from(e),
        welcome::WelcomeError::Render(e) => WebError::Internal(e.into()),
    })
}

/// `GET /admin/welcome`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let saved = store::welcome::get(&state.db).await?;
    let text = match &saved {
        Some(content) => Some(state.preview_of(&prepared(&state, content, "").await?).0),
        None => None,
    };
    let saved = saved.unwrap_or_else(|| Welcome {
        subject: format!("Welcome to {}", state.publication.name),
        preheader: String::new(),
        body: "Thank you for subscribing. The next issue comes on {{ next_issue }}; \
               until then, read the latest: {{ latest_issue }}."
            .into(),
        enabled: false,
        updated_at: state.clock.now(),
    });
    page(&state, &ctx, &session, StatusCode::OK, saved, None, text)
}

fn page(
    state: &AppState,
    ctx: &AdminContext,
    session: &Session,
    status: StatusCode,
    content: Welcome,
    error: Option<String>,
    text: Option<String>,
) -> Result<HttpResponse, WebError> {
    let mut response = html(
        status,
        WelcomePage {
            chrome: chrome(state, ctx, session),
            subject: content.subject,
            preheader: content.preheader,
            body: content.body,
            enabled: content.enabled,
            error,
            text,
            placeholders: &PLACEHOLDERS,
        },
    )?;
    // This page frames the email below; everything else stays unframeable.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
             img-src 'self' data:; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    Ok(response)
}

/// The welcome's form.
#[derive(Debug, Deserialize)]
pub struct WelcomeForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    preheader: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    enabled: String,
}

/// `POST /admin/welcome`: saves it; a refused field re-renders the form (400) with the text kept.
pub async fn save(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    form: web::Form<WelcomeForm>,
) -> Result<HttpResponse, WebError> {
    let enabled = form.enabled == "yes";
    match WelcomeDraft::parse(&form.subject, &form.preheader, &form.body, enabled) {
        Ok(draft) => {
            store::welcome::save(&state.db, &draft, state.clock.now()).await?;
            flash(
                &session,
                if enabled {
                    "Saved. Readers who confirm from now on get this welcome."
                } else {
                    "Saved. The welcome is off: nobody gets it until you switch it on."
                },
            );
            Ok(see_other("/admin/welcome"))
        }
        Err(error) => {
            let form = form.into_inner();
            let typed = Welcome {
                subject: form.subject,
                preheader: form.preheader,
                body: form.body,
                enabled,
                updated_at: state.clock.now(),
            };
            page(
                &state,
                &ctx,
                &session,
                StatusCode::BAD_REQUEST,
                typed,
                Some(error.to_string()),
                None,
            )
        }
    }
}

async fn saved(state: &AppState) -> Result<Welcome, WebError> {
    store::welcome::get(&state.db)
        .await?
        .ok_or_else(|| WebError::NotFound("No welcome email has been written yet.".into()))
}

/// `GET /admin/welcome/preview/email`: the saved welcome's HTML part, for the preview's frame.
pub async fn preview_email(state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let content = saved(&state).await?;
    let (_, html) = state.preview_of(&prepared(&state, &content, "").await?);
    Ok(super::issue_preview::framed_email(html))
}

/// The test-send form.
#[derive(Debug, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    email: String,
}

/// `POST /admin/welcome/test`: one `[TEST]` copy of the saved welcome (on or off), now.
pub async fn send_test(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, WebError> {
    let to =
        SubscriberEmail::parse(&form.email).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let content = saved(&state).await?;
    let message = prepared(&state, &content, "[TEST] ").await?;
    let said = match state.test_sender().send_prepared(&message, &to).await {
        Ok(_) => format!("A test copy went to {}.", to.as_str()),
        Err(e) => {
            tracing::warn!(error = %e, "welcome test send failed");
            format!("The test copy was not sent: {e}")
        }
    };
    flash(&session, said);
    Ok(see_other("/admin/welcome"))
}
