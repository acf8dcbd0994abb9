//! `/api/v1/issues`: write, list, preview and test-send issues.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiError;
use super::error::ErrorBody;
use crate::delivery::TestSendError;
use crate::domain::{IssueDraft, IssueInput, IssueLink, IssueStatus, Slug, SubscriberEmail};
use crate::render::issue;
use crate::store::issues::{self, Issue, IssueError};
use crate::web::AppState;

/// An issue as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct IssueJson {
    id: i64,
    uid: Uuid,
    slug: String,
    subject: String,
    preheader: String,
    /// Markdown.
    body: String,
    links_heading: String,
    links: Vec<IssueLink>,
    status: IssueStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    /// When it goes out (scheduled), or the time it missed.
    scheduled_at: Option<DateTime<Utc>>,
    /// The cadence slot it holds, if any.
    slot_at: Option<DateTime<Utc>>,
    /// When the scheduler found its time long past and returned it to draft.
    missed_at: Option<DateTime<Utc>>,
    /// The web version, once the issue is public.
    web_url: Option<String>,
}

impl IssueEnvelope {
    /// The API's view of one issue.
    pub fn new(issue: Issue, state: &AppState) -> IssueEnvelope {
        IssueEnvelope {
            data: IssueJson::new(issue, state),
        }
    }
}

impl IssueJson {
    fn new(issue: Issue, state: &AppState) -> IssueJson {
        let web_url = issue
            .status
            .is_public()
            .then(|| issue::view_url(&state.publication, &issue));
        IssueJson {
            id: issue.id,
            uid: issue.uid,
            slug: issue.slug,
            subject: issue.subject,
            preheader: issue.preheader,
            body: issue.body,
            links_heading: issue.links_heading,
            links: issue.links,
            status: issue.status,
            created_at: issue.created_at,
            updated_at: issue.updated_at,
            published_at: issue.published_at,
            scheduled_at: issue.scheduled_at,
            slot_at: issue.slot_at,
            missed_at: issue.missed_at,
            web_url,
        }
    }
}

/// One issue.
#[derive(Serialize, ToSchema)]
pub struct IssueEnvelope {
    data: IssueJson,
}

/// A page of issues, newest first.
#[derive(Serialize, ToSchema)]
pub struct IssuePage {
    data: Vec<IssueJson>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<i64>,
}

/// Filters and paging for the list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IssueListParams {
    #[param(schema_with = super::schema::issue_status)]
    status: Option<String>,
    #[param(schema_with = super::schema::cursor)]
    before: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// An issue's content: everything the editor writes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    #[schema(schema_with = super::schema::subject)]
    subject: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::slug)]
    slug: Option<String>,
    #[serde(default)]
    #[schema(schema_with = super::schema::preheader)]
    preheader: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::body)]
    body: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::links_heading)]
    links_heading: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::links)]
    links: Vec<IssueLink>,
}

impl IssueBody {
    fn draft(self) -> Result<IssueDraft, ApiError> {
        // Counted before trimming, so that the document can state the limit as `maxLength`
        // (a JSON Schema cannot bound the length of a trimmed slug with its shape rules).
        if self
            .slug
            .as_deref()
            .is_some_and(|s| s.chars().count() > Slug::MAX)
        {
            return Err(ApiError::invalid(
                "invalid_issue",
                format!("The slug is too long ({} characters at most).", Slug::MAX),
            ));
        }
        IssueDraft::parse(IssueInput {
            subject: self.subject,
            slug: self.slug.unwrap_or_default(),
            preheader: self.preheader,
            body: self.body,
            links_heading: self.links_heading,
            links: self.links,
        })
        .map_err(|e| ApiError::invalid("invalid_issue", e.0))
    }
}

/// Both parts of the email as a reader without a known name gets them.
#[derive(Serialize, ToSchema)]
pub struct PreviewJson {
    subject: String,
    text: String,
    html: String,
}

impl PreviewJson {
    /// A preview's three parts.
    pub fn new(subject: String, text: String, html: String) -> PreviewJson {
        PreviewJson {
            subject,
            text,
            html,
        }
    }
}

/// Where to send a test copy.
#[derive(Deserialize, ToSchema)]
pub struct TestSendBody {
    #[schema(schema_with = super::schema::email)]
    email: String,
}

impl TestSendBody {
    /// The address as given.
    pub fn email(&self) -> &str {
        &self.email
    }
}

/// The outcome of a test send.
#[derive(Serialize, ToSchema)]
pub struct TestSendJson {
    /// The mail server's reply.
    reply: String,
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::NotFound => missing(),
            IssueError::WrongStatus(status) => ApiError::new(
                StatusCode::CONFLICT,
                "wrong_status",
                format!("The issue is {status}, so it cannot be changed this way."),
            ),
            IssueError::SlugTaken(slug) => ApiError::new(
                StatusCode::CONFLICT,
                "slug_taken",
                format!("Another issue already uses the slug {slug:?}."),
            ),
            IssueError::SlotTaken => ApiError::new(
                StatusCode::CONFLICT,
                "slot_taken",
                "Another issue already holds that slot.",
            ),
            IssueError::Store(e) => e.into(),
        }
    }
}

fn missing() -> ApiError {
    ApiError::not_found("No issue has this id.")
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "an issue")
}

async fn find(state: &AppState, raw: &str) -> Result<Issue, ApiError> {
    issues::get(&state.db, id(raw)?).await?.ok_or_else(missing)
}

fn one(status: StatusCode, issue: Issue, state: &AppState) -> HttpResponse {
    HttpResponse::build(status).json(IssueEnvelope::new(issue, state))
}

/// List issues, newest first.
#[utoipa::path(get, path = "/api/v1/issues", params(IssueListParams),
    responses((status = 200, body = IssuePage), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    params: web::Query<IssueListParams>,
) -> Result<HttpResponse, ApiError> {
    let status = params
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| IssueStatus::try_from(s.to_lowercase()))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "invalid_status",
                "status must be draft, scheduled, sending, sent or cancelled",
            )
        })?;
    let limit = super::page_limit(params.limit, 50)?;
    let rows = issues::list(&state.db, status, params.before, limit + 1).await?;
    let (items, next_before) = super::page_of(rows, limit, |i| i.id);
    Ok(HttpResponse::Ok().json(IssuePage {
        data: items
            .into_iter()
            .map(|i| IssueJson::new(i, &state))
            .collect(),
        next_before,
    }))
}

/// Create a draft.
#[utoipa::path(post, path = "/api/v1/issues", request_body = IssueBody,
    responses((status = 201, body = IssueEnvelope), (status = 400, body = ErrorBody),
              (status = 409, description = "The slug is taken", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    body: super::JsonObject<IssueBody>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner().draft()?;
    let issue = issues::create(&state.db, &draft, state.clock.now()).await?;
    Ok(one(StatusCode::CREATED, issue, &state))
}

/// One issue.
#[utoipa::path(get, path = "/api/v1/issues/{id}", params(super::document::IssueId),
    responses((status = 200, body = IssueEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue = find(&state, &path).await?;
    Ok(one(StatusCode::OK, issue, &state))
}

/// Replace a draft's or scheduled issue's content.
#[utoipa::path(put, path = "/api/v1/issues/{id}", params(super::document::IssueId), request_body = IssueBody,
    responses((status = 200, body = IssueEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Already sending or sent, or the slug is taken", body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<IssueBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    let draft = body.into_inner().draft()?;
    let issue = issues::update(&state.db, id, &draft, state.clock.now()).await?;
    Ok(one(StatusCode::OK, issue, &state))
}

/// Delete a draft.
#[utoipa::path(delete, path = "/api/v1/issues/{id}", params(super::document::IssueId),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
              (status = 409, description = "Not a draft", body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    issues::delete_draft(&state.db, id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start a new draft from an issue's content.
#[utoipa::path(post, path = "/api/v1/issues/{id}/duplicate", params(super::document::IssueId),
    responses((status = 201, body = IssueEnvelope), (status = 404, body = ErrorBody)))]
pub async fn duplicate(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let copy = issues::duplicate(&state.db, id(&path)?, state.clock.now()).await?;
    Ok(one(StatusCode::CREATED, copy, &state))
}

/// The email as readers will get it: subject, text part and HTML part.
#[utoipa::path(get, path = "/api/v1/issues/{id}/preview", params(super::document::IssueId),
    responses((status = 200, body = PreviewJson), (status = 404, body = ErrorBody)))]
pub async fn preview(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue = find(&state, &path).await?;
    let (text, html) = state
        .preview(&issue)
        .map_err(|e| ApiError::from(crate::store::StoreError::Unavailable(e.to_string())))?;
    Ok(HttpResponse::Ok().json(PreviewJson {
        subject: issue.subject,
        text,
        html,
    }))
}

/// Send one copy, subject marked `[TEST]`, to any address; it is not counted as a delivery.
#[utoipa::path(post, path = "/api/v1/issues/{id}/test", params(super::document::IssueId), request_body = TestSendBody,
    responses((status = 200, body = TestSendJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 502, description = "The mail server refused or is unreachable", body = ErrorBody)))]
pub async fn send_test(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<TestSendBody>,
) -> Result<HttpResponse, ApiError> {
    let to = SubscriberEmail::parse(&body.email)
        .map_err(|e| ApiError::invalid("invalid_email", e.to_string()))?;
    let issue = find(&state, &path).await?;
    let outcome = state
        .test_sender()
        .send(&issue, &to, state.clock.now().into())
        .await;
    test_send_answer(outcome)
}

/// The API's answer to a test send.
pub(super) fn test_send_answer(
    outcome: Result<String, TestSendError>,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Ok(reply) => Ok(HttpResponse::Ok().json(TestSendJson { reply })),
        Err(TestSendError::Send(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "mail_refused",
            e.to_string(),
        )),
        Err(TestSendError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::from(crate::store::StoreError::Unavailable(
            e.to_string(),
        ))),
    }
}
