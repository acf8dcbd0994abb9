//! `/api/v1/welcome`: the welcome email a reader gets once, on first confirming.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use super::error::ErrorBody;
use super::issues::{PreviewJson, TestSendBody, TestSendJson};
use crate::domain::SubscriberEmail;
use crate::domain::welcome::{Welcome, WelcomeDraft};
use crate::mail::prepared::PreparedMessage;
use crate::outbox::welcome;
use crate::store;
use crate::web::AppState;

/// The welcome email as stored.
#[derive(Serialize, ToSchema)]
pub struct WelcomeJson {
    subject: String,
    preheader: String,
    /// Markdown; `{{ next_issue }}`, `{{ latest_issue }}` and `{{ latest_issue_url }}` are
    /// filled in when each welcome goes out.
    body: String,
    /// Whether readers who confirm get it.
    enabled: bool,
    updated_at: DateTime<Utc>,
}

/// The welcome email, under `data`.
#[derive(Serialize, ToSchema)]
pub struct WelcomeEnvelope {
    data: WelcomeJson,
}

impl From<Welcome> for WelcomeEnvelope {
    fn from(w: Welcome) -> Self {
        WelcomeEnvelope {
            data: WelcomeJson {
                subject: w.subject,
                preheader: w.preheader,
                body: w.body,
                enabled: w.enabled,
                updated_at: w.updated_at,
            },
        }
    }
}

/// The welcome email as written.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WelcomeBody {
    #[schema(schema_with = super::schema::subject)]
    subject: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::preheader)]
    preheader: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::body)]
    body: String,
    /// Whether readers who confirm get it (an enabled welcome needs a body).
    enabled: bool,
}

async fn saved(state: &AppState) -> Result<Welcome, ApiError> {
    store::welcome::get(&state.db).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No welcome email has been written yet.",
        )
    })
}

async fn prepared(
    state: &AppState,
    content: &Welcome,
    subject_prefix: &str,
) -> Result<PreparedMessage, ApiError> {
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
        welcome::WelcomeError::Store(e) => e.into(),
        welcome::WelcomeError::Render(e) => {
            ApiError::from(store::StoreError::Unavailable(e.to_string()))
        }
    })
}

/// The welcome email (404 until one is written).
#[utoipa::path(get, path = "/api/v1/welcome",
    responses((status = 200, body = WelcomeEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WelcomeEnvelope::from(saved(&state).await?)))
}

/// Write the welcome email, and switch it on or off.
#[utoipa::path(put, path = "/api/v1/welcome", request_body = WelcomeBody,
    responses((status = 200, body = WelcomeEnvelope), (status = 400, body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    body: super::JsonObject<WelcomeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let draft = WelcomeDraft::parse(&body.subject, &body.preheader, &body.body, body.enabled)
        .map_err(|e| ApiError::invalid("invalid_welcome", e.0))?;
    let saved = store::welcome::save(&state.db, &draft, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(WelcomeEnvelope::from(saved)))
}

/// The welcome as a reader who confirmed now would get it: subject, text part and HTML part.
#[utoipa::path(get, path = "/api/v1/welcome/preview",
    responses((status = 200, body = PreviewJson), (status = 404, body = ErrorBody)))]
pub async fn preview(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let content = saved(&state).await?;
    let (text, html) = state.preview_of(&prepared(&state, &content, "").await?);
    Ok(HttpResponse::Ok().json(PreviewJson::new(content.subject, text, html)))
}

/// Send one copy of the welcome, subject marked `[TEST]`, to any address.
#[utoipa::path(post, path = "/api/v1/welcome/test", request_body = TestSendBody,
    responses((status = 200, body = TestSendJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 502, description = "The mail server refused or is unreachable", body = ErrorBody)))]
pub async fn send_test(
    state: web::Data<AppState>,
    body: super::JsonObject<TestSendBody>,
) -> Result<HttpResponse, ApiError> {
    let to = SubscriberEmail::parse(body.email())
        .map_err(|e| ApiError::invalid("invalid_email", e.to_string()))?;
    let content = saved(&state).await?;
    let message = prepared(&state, &content, "[TEST] ").await?;
    let outcome = state.test_sender().send_prepared(&message, &to).await;
    super::issues::test_send_answer(outcome)
}
