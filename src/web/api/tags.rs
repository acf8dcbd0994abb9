//! `/api/v1/tags` and `/api/v1/issues/{id}/segment`: tags on subscribers, and the tagged
//! readers an issue goes to.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use super::error::ErrorBody;
use crate::domain::tag::{Segment, Tag, TagName};
use crate::store::tags::{self, TagError};
use crate::web::AppState;

/// A tag as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct TagJson {
    id: i64,
    name: String,
    description: String,
    /// Readers may choose it on their manage page.
    public: bool,
    created_at: DateTime<Utc>,
    /// Subscribers (any status) carrying it.
    subscribers: i64,
}

impl TagJson {
    fn new(tag: Tag, subscribers: i64) -> TagJson {
        TagJson {
            id: tag.id,
            name: tag.name,
            description: tag.description,
            public: tag.public,
            created_at: tag.created_at,
            subscribers,
        }
    }
}

/// Every tag.
#[derive(Serialize, ToSchema)]
pub struct TagList {
    data: Vec<TagJson>,
}

/// One tag.
#[derive(Serialize, ToSchema)]
pub struct TagEnvelope {
    data: TagJson,
}

/// A new tag.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    #[schema(schema_with = super::schema::tag_name)]
    name: String,
    #[serde(default)]
    #[schema(schema_with = super::schema::tag_description)]
    description: String,
    /// Readers may choose it on their manage page (default false).
    #[serde(default)]
    public: bool,
}

/// A change to a tag: the fields given change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTag {
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::tag_name)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::tag_description)]
    description: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(value_type = bool)]
    public: Option<bool>,
}

/// Subscribers to tag and untag.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagSubscribers {
    /// Subscribers to give the tag (unknown ids are ignored).
    #[serde(default)]
    #[schema(schema_with = super::schema::subscriber_ids)]
    add: Vec<i64>,
    /// Subscribers to take it from.
    #[serde(default)]
    #[schema(schema_with = super::schema::subscriber_ids)]
    remove: Vec<i64>,
}

/// How many subscribers changed.
#[derive(Serialize, ToSchema)]
pub struct TagSubscribersJson {
    /// Subscribers who gained the tag.
    added: u64,
    /// Subscribers who lost it.
    removed: u64,
}

/// An issue's audience: readers with any of `any` (when given), all of `all` and none of
/// `none`; all three empty is everyone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    #[serde(default)]
    #[schema(schema_with = super::schema::tag_names)]
    any: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = super::schema::tag_names)]
    all: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = super::schema::tag_names)]
    none: Vec<String>,
}

/// An issue's audience as it stands.
#[derive(Serialize, ToSchema)]
pub struct SegmentJson {
    any: Vec<String>,
    all: Vec<String>,
    none: Vec<String>,
    /// The segment in words.
    description: String,
    /// Readers it reaches: fixed when the send started, else as many as it would reach now.
    audience: i64,
    /// Whether `audience` is fixed (the send has started).
    fixed: bool,
}

/// An issue's audience, under `data`.
#[derive(Serialize, ToSchema)]
pub struct SegmentEnvelope {
    data: SegmentJson,
}

impl From<TagError> for ApiError {
    fn from(e: TagError) -> Self {
        match e {
            TagError::NotFound => ApiError::not_found("No tag has this id."),
            TagError::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "tag_exists", e.to_string())
            }
            TagError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_tag", e.to_string())
            }
            TagError::InUse(_) => ApiError::new(StatusCode::CONFLICT, "tag_in_use", e.to_string()),
            TagError::Twice(_) => ApiError::invalid("invalid_segment", e.to_string()),
            TagError::Fixed(_) => {
                ApiError::new(StatusCode::CONFLICT, "audience_fixed", e.to_string())
            }
            TagError::Store(e) => e.into(),
        }
    }
}

fn tag_name(raw: &str) -> Result<TagName, ApiError> {
    TagName::parse(raw).map_err(|why| ApiError::invalid("invalid_tag", why))
}

/// Tag names as given, each checked.
pub(super) fn tag_names(raw: &[String]) -> Result<Vec<TagName>, ApiError> {
    raw.iter().map(|n| tag_name(n)).collect()
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "a tag")
}

/// Every tag, by name, with how many subscribers carry it.
#[utoipa::path(get, path = "/api/v1/tags", responses((status = 200, body = TagList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let data = tags::list(&state.db)
        .await?
        .into_iter()
        .map(|c| TagJson::new(c.tag, c.subscribers))
        .collect();
    Ok(HttpResponse::Ok().json(TagList { data }))
}

/// Make a tag.
#[utoipa::path(post, path = "/api/v1/tags", request_body = CreateTag,
    responses((status = 201, body = TagEnvelope), (status = 400, body = ErrorBody),
              (status = 409, description = "Another tag has this name", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    body: super::JsonObject<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    let name = tag_name(&body.name)?;
    let description = description(&body.description)?;
    let tag = tags::create(
        &state.db,
        &name,
        &description,
        body.public,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Created().json(TagEnvelope {
        data: TagJson::new(tag, 0),
    }))
}

fn description(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.chars().count() > 300 || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_tag",
            "The description is one line of at most 300 characters.",
        ));
    }
    Ok(text.to_owned())
}

/// Rename a tag, or change its description or whether readers may choose it.
#[utoipa::path(patch, path = "/api/v1/tags/{id}", params(super::document::TagId), request_body = UpdateTag,
    responses((status = 200, body = TagEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "Another tag has this name", body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<UpdateTag>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    let current = tags::get(&state.db, id).await?.ok_or(TagError::NotFound)?;
    let name = tag_name(body.name.as_deref().unwrap_or(&current.name))?;
    let description = description(body.description.as_deref().unwrap_or(&current.description))?;
    let public = body.public.unwrap_or(current.public);
    let tag = tags::update(&state.db, id, &name, &description, public).await?;
    let count = tags::list(&state.db)
        .await?
        .into_iter()
        .find(|c| c.tag.id == id)
        .map_or(0, |c| c.subscribers);
    Ok(HttpResponse::Ok().json(TagEnvelope {
        data: TagJson::new(tag, count),
    }))
}

/// Delete a tag and take it off every subscriber (refused while an unsent issue's audience
/// names it).
#[utoipa::path(delete, path = "/api/v1/tags/{id}", params(super::document::TagId),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
              (status = 409, description = "An unsent issue's audience uses it", body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    tags::delete(&state.db, id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Give the tag to some subscribers and take it from others.
#[utoipa::path(post, path = "/api/v1/tags/{id}/subscribers", params(super::document::TagId), request_body = TagSubscribers,
    responses((status = 200, body = TagSubscribersJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn subscribers(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<TagSubscribers>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    tags::get(&state.db, id).await?.ok_or(TagError::NotFound)?;
    if body.add.iter().chain(&body.remove).any(|id| *id < 1) {
        return Err(ApiError::invalid(
            "invalid_id",
            "Subscriber ids are positive whole numbers.",
        ));
    }
    if body.add.len() > 1000 || body.remove.len() > 1000 {
        return Err(ApiError::invalid(
            "too_many",
            "At most 1,000 subscriber ids each in `add` and `remove`.",
        ));
    }
    let added = tags::tag(&state.db, id, &body.add, state.clock.now()).await?;
    let removed = tags::untag(&state.db, id, &body.remove).await?;
    Ok(HttpResponse::Ok().json(TagSubscribersJson { added, removed }))
}

fn issue_id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "an issue")
}

async fn segment_answer(state: &AppState, issue_id: i64) -> Result<HttpResponse, ApiError> {
    let issue = crate::store::issues::get(&state.db, issue_id)
        .await?
        .ok_or_else(|| ApiError::not_found("No issue has this id."))?;
    let segment = tags::segment_of(&state.db, issue_id).await?;
    let (audience, fixed, description) = match (issue.audience, issue.audience_label) {
        (Some(n), Some(label)) => (n, true, label),
        _ => (
            tags::audience(&state.db, &segment, state.clock.now()).await?,
            false,
            segment.describe(),
        ),
    };
    let names = |list: &[Tag]| list.iter().map(|t| t.name.clone()).collect();
    Ok(HttpResponse::Ok().json(SegmentEnvelope {
        data: SegmentJson {
            any: names(&segment.any),
            all: names(&segment.all),
            none: names(&segment.none),
            description,
            audience,
            fixed,
        },
    }))
}

/// Who an issue goes to, and how many readers that is.
#[utoipa::path(get, path = "/api/v1/issues/{id}/segment", params(super::document::IssueId),
    responses((status = 200, body = SegmentEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get_segment(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    segment_answer(&state, issue_id(&path)?).await
}

/// Send an issue to a segment (or, with all three lists empty, to everyone). Only while it is
/// a draft or scheduled: the audience is fixed when the send starts.
#[utoipa::path(put, path = "/api/v1/issues/{id}/segment", params(super::document::IssueId), request_body = SegmentBody,
    responses((status = 200, body = SegmentEnvelope), (status = 400, body = ErrorBody),
              (status = 404, description = "No such issue, or a tag named is not a tag", body = ErrorBody),
              (status = 409, description = "The send has started", body = ErrorBody)))]
pub async fn put_segment(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<SegmentBody>,
) -> Result<HttpResponse, ApiError> {
    let issue_id = issue_id(&path)?;
    let segment = Segment {
        any: tags::by_names(&state.db, &tag_names(&body.any)?).await?,
        all: tags::by_names(&state.db, &tag_names(&body.all)?).await?,
        none: tags::by_names(&state.db, &tag_names(&body.none)?).await?,
    };
    match tags::set_segment(&state.db, issue_id, &segment).await {
        Err(TagError::NotFound) => Err(ApiError::not_found("No issue has this id.")),
        other => other.map_err(ApiError::from),
    }?;
    segment_answer(&state, issue_id).await
}
