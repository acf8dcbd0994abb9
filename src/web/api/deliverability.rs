//! `/api/v1/bounces` and `/api/v1/suppressions`: what the providers reported after the send,
//! and the addresses that are no longer mailed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::error::ErrorBody;
use crate::domain::{RecordedEvent, Suppression};
use crate::store::mail_events;
use crate::web::AppState;

/// A page of bounces and complaints, newest first.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    data: Vec<RecordedEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<i64>,
}

/// The query of the bounce list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    #[param(schema_with = super::schema::cursor)]
    before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Bounces and complaints as they were recorded (provider, event, diagnostic, time, effect).
#[utoipa::path(get, path = "/api/v1/bounces", params(EventParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)))]
pub async fn bounces(
    state: web::Data<AppState>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::page_limit(params.limit, 100)?;
    let rows = mail_events::recent(&state.db, params.before, limit + 1).await?;
    let (data, next_before) = super::page_of(rows, limit, |e| e.id);
    Ok(HttpResponse::Ok().json(EventPage { data, next_before }))
}

/// The suppression list.
#[derive(Serialize, ToSchema)]
pub struct SuppressionList {
    data: Vec<Suppression>,
}

/// The query of the suppression list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionParams {
    #[param(schema_with = super::schema::search)]
    q: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Suppressed addresses, newest first: never mailed, refused at signup and import.
#[utoipa::path(get, path = "/api/v1/suppressions", params(SuppressionParams),
    responses((status = 200, body = SuppressionList), (status = 400, body = ErrorBody)))]
pub async fn suppressions(
    state: web::Data<AppState>,
    params: web::Query<SuppressionParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::page_limit(params.limit, 100)?;
    let q = crate::domain::search_text(params.q.as_deref().unwrap_or(""))
        .map_err(|why| ApiError::invalid("invalid_search", why))?;
    let data = mail_events::suppressions(&state.db, q.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(SuppressionList { data }))
}

/// The `{email}` of a suppression's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SuppressedEmail {
    /// The suppressed address.
    #[param(schema_with = super::schema::email)]
    email: String,
}

/// Lift a suppression: the address may sign up or be imported again.
#[utoipa::path(delete, path = "/api/v1/suppressions/{email}", params(SuppressedEmail),
    responses((status = 204, description = "Lifted"), (status = 404, body = ErrorBody)))]
pub async fn lift(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if mail_events::lift(&state.db, &path).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This address is not suppressed.",
        ))
    }
}
