//! `/api/v1/links`: the links inbox, for scripts and shortcuts that save links as they are
//! found.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::{ApiError, JsonObject};
use crate::domain::saved_link::{LinkAddress, NewSavedLink, SavedLink, SentIn};
use crate::store::saved_links::{self, SavedLinkError};
use crate::web::AppState;

/// A saved link as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct LinkJson {
    id: i64,
    url: String,
    title: String,
    source: String,
    note: String,
    saved_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The published issues it already went out in (by its normalized address), newest
    /// first.
    sent_in: Vec<SentIn>,
}

impl LinkJson {
    fn new(link: SavedLink, sent: &std::collections::HashMap<String, Vec<SentIn>>) -> LinkJson {
        let sent_in = LinkAddress::parse(&link.url)
            .ok()
            .and_then(|a| sent.get(&a.key).cloned())
            .unwrap_or_default();
        LinkJson {
            id: link.id,
            url: link.url,
            title: link.title,
            source: link.source,
            note: link.note,
            saved_at: link.saved_at,
            updated_at: link.updated_at,
            sent_in,
        }
    }
}

/// One saved link.
#[derive(Serialize, ToSchema)]
pub struct LinkEnvelope {
    data: LinkJson,
    /// On a save: why the link's page could not be read for its title (the title is then
    /// left blank).
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// A page of saved links, newest first.
#[derive(Serialize, ToSchema)]
pub struct LinkPage {
    data: Vec<LinkJson>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<i64>,
}

/// The query of the list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkParams {
    #[param(schema_with = super::schema::cursor)]
    before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A link to save.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveLink {
    #[schema(schema_with = super::schema::saved_link_url)]
    url: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::saved_link_title)]
    title: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::saved_link_source)]
    source: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::saved_link_note)]
    note: String,
}

/// A change to a saved link: the fields given change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeLink {
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::saved_link_url)]
    url: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::saved_link_title)]
    title: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::saved_link_source)]
    source: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::saved_link_note)]
    note: Option<String>,
}

impl From<SavedLinkError> for ApiError {
    fn from(e: SavedLinkError) -> Self {
        match e {
            SavedLinkError::NotFound => ApiError::not_found("No saved link has this id."),
            SavedLinkError::Taken(_) => {
                ApiError::new(StatusCode::CONFLICT, "link_exists", e.to_string())
            }
            SavedLinkError::Store(e) => e.into(),
        }
    }
}

fn checked(url: &str, title: &str, source: &str, note: &str) -> Result<NewSavedLink, ApiError> {
    NewSavedLink::parse(url, title, source, note)
        .map_err(|why| ApiError::invalid("invalid_link", why))
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "a saved link")
}

async fn answer(
    state: &AppState,
    status: StatusCode,
    link: SavedLink,
    warning: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let sent = saved_links::sent_in(&state.db).await?;
    Ok(HttpResponse::build(status).json(LinkEnvelope {
        data: LinkJson::new(link, &sent),
        warning,
    }))
}

/// Saved links, newest first, each with the issues it already went out in.
#[utoipa::path(get, path = "/api/v1/links", params(LinkParams),
    responses((status = 200, body = LinkPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    params: web::Query<LinkParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::page_limit(params.limit, 100)?;
    let rows = saved_links::list(&state.db, params.before, limit + 1).await?;
    let (links, next_before) = super::page_of(rows, limit, |l| l.id);
    let sent = saved_links::sent_in(&state.db).await?;
    Ok(HttpResponse::Ok().json(LinkPage {
        data: links.into_iter().map(|l| LinkJson::new(l, &sent)).collect(),
        next_before,
    }))
}

/// Save a link. A new link with no title has its page read once (5 s, its first megabyte,
/// public addresses only) for `og:title` or `<title>`, and a blank source becomes
/// `og:site_name` or the host (`warning` says why when the page cannot be read). An address
/// already saved (compared without case in the scheme and host, the default port, the
/// fragment and `utm_*`, `fbclid`, `gclid`) updates that link: 200 instead of 201, its page is
/// not read again, blank fields keep what was saved, and it is back in the inbox.
#[utoipa::path(post, path = "/api/v1/links", request_body = SaveLink,
    responses((status = 201, description = "Saved", body = LinkEnvelope),
              (status = 200, description = "Already saved: updated", body = LinkEnvelope),
              (status = 400, body = ErrorBody)))]
pub async fn save(
    state: web::Data<AppState>,
    body: JsonObject<SaveLink>,
) -> Result<HttpResponse, ApiError> {
    let link = checked(&body.url, &body.title, &body.source, &body.note)?;
    let (saved, new, problem) =
        crate::inbox::save(&state.db, link, &state.page_fetcher, state.clock.now()).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let warning = problem.map(|why| format!("The page could not be read for its title: {why}"));
    answer(&state, status, saved, warning).await
}

/// One saved link.
#[utoipa::path(get, path = "/api/v1/links/{id}", params(super::document::LinkId),
    responses((status = 200, body = LinkEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let link = saved_links::get(&state.db, id(&path)?)
        .await?
        .ok_or(SavedLinkError::NotFound)?;
    answer(&state, StatusCode::OK, link, None).await
}

/// Change a saved link's address, title, source or note.
#[utoipa::path(patch, path = "/api/v1/links/{id}", params(super::document::LinkId), request_body = ChangeLink,
    responses((status = 200, body = LinkEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Another saved link has this address", body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject<ChangeLink>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    let now = saved_links::get(&state.db, id)
        .await?
        .ok_or(SavedLinkError::NotFound)?;
    let link = checked(
        body.url.as_deref().unwrap_or(&now.url),
        body.title.as_deref().unwrap_or(&now.title),
        body.source.as_deref().unwrap_or(&now.source),
        body.note.as_deref().unwrap_or(&now.note),
    )?;
    let saved = saved_links::update(&state.db, id, &link, state.clock.now()).await?;
    answer(&state, StatusCode::OK, saved, None).await
}

/// Delete a saved link (issues it went into keep it).
#[utoipa::path(delete, path = "/api/v1/links/{id}", params(super::document::LinkId),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    saved_links::delete(&state.db, id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
