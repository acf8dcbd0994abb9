//! `/api/v1/issues/{id}/send` and its controls.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::ApiError;
use super::error::ErrorBody;
use crate::delivery::steer::Steer;
use crate::delivery::{self, SendStatus};
use crate::store::{issues, sends};
use crate::web::AppState;

fn steer(state: &AppState) -> Steer<'_> {
    Steer {
        db: &state.db,
        handoff: &state.handoff,
        lease: state.config.delivery_lease,
    }
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "an issue")
}

async fn current(state: &AppState, issue_id: i64) -> Result<HttpResponse, ApiError> {
    let issue = issues::get(&state.db, issue_id)
        .await?
        .ok_or_else(|| ApiError::not_found("No issue has this id."))?;
    let status: SendStatus = delivery::status(&state.db, &issue, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(status))
}

fn refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "wrong_status", message.to_owned())
}

/// How a send stands: counts by state, rate, time left, latest errors, the final summary.
#[utoipa::path(get, path = "/api/v1/issues/{id}/send", params(super::document::IssueId),
    responses((status = 200, body = SendStatus), (status = 404, body = ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    current(&state, id(&path)?).await
}

/// Pause a send in progress. It answers once no copy of the issue can start in any instance.
#[utoipa::path(post, path = "/api/v1/issues/{id}/pause", params(super::document::IssueId),
    responses((status = 200, body = SendStatus), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn pause(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue_id = id(&path)?;
    if !steer(&state).pause(issue_id, state.clock.now()).await? {
        current(&state, issue_id).await?;
        return Err(refused(
            "Only a send in progress (and not paused) can be paused.",
        ));
    }
    current(&state, issue_id).await
}

/// Resume a paused send.
#[utoipa::path(post, path = "/api/v1/issues/{id}/resume", params(super::document::IssueId),
    responses((status = 200, body = SendStatus), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resume(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue_id = id(&path)?;
    if !steer(&state).resume(issue_id, state.clock.now()).await? {
        current(&state, issue_id).await?;
        return Err(refused("Only a paused send can be resumed."));
    }
    current(&state, issue_id).await
}

/// Cancel the rest of a send; what was sent stays sent, every copy still to go is cancelled.
/// It answers once no copy of the issue can start in any instance.
#[utoipa::path(post, path = "/api/v1/issues/{id}/cancel", params(super::document::IssueId),
    responses((status = 200, body = SendStatus), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue_id = id(&path)?;
    if !steer(&state).cancel(issue_id, state.clock.now()).await? {
        current(&state, issue_id).await?;
        return Err(refused("Only a send in progress can be cancelled."));
    }
    current(&state, issue_id).await
}

/// Try the failed deliveries of a finished send again.
#[utoipa::path(post, path = "/api/v1/issues/{id}/retry", params(super::document::IssueId),
    responses((status = 200, body = SendStatus), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retry(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue_id = id(&path)?;
    if sends::retry_failed(&state.db, issue_id, state.clock.now()).await? == 0 {
        current(&state, issue_id).await?;
        return Err(refused(
            "Only a finished send with failed deliveries can be retried.",
        ));
    }
    state.handoff.issue_started(issue_id);
    current(&state, issue_id).await
}

/// An issue's report: audience, sent, failed, bounced, complained, readers who left within 7
/// days, and the clicks on each link (the roundup's in order, with their titles).
#[utoipa::path(get, path = "/api/v1/issues/{id}/report", params(super::document::IssueId),
    responses((status = 200, body = crate::domain::send::IssueReport), (status = 404, body = ErrorBody)))]
pub async fn report(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue = issues::get(&state.db, id(&path)?)
        .await?
        .ok_or_else(|| ApiError::not_found("No issue has this id."))?;
    Ok(HttpResponse::Ok().json(state.report(&issue).await?))
}
