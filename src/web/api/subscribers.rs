//! `/api/v1/subscribers`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use crate::domain::tag::TagName;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::store::subscriber_admin::{self, Added, Cursor, Edge, Filter};
use crate::store::subscribers::{NewSignup, Subscriber};
use crate::web::AppState;

/// A subscriber as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SubscriberJson {
    id: i64,
    email: String,
    name: Option<String>,
    /// pending, active, unsubscribed, bounced or complained.
    status: String,
    created_at: DateTime<Utc>,
    consent_at: DateTime<Utc>,
    consent_source: String,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    /// The tags it carries, by name.
    tags: Vec<String>,
    /// Issues the reader chose to skip before receiving again.
    skip_issues: i32,
    /// What the reader said when leaving from their manage page.
    unsubscribe_reason: Option<String>,
}

impl SubscriberJson {
    fn new(s: Subscriber, tags: Vec<String>) -> Self {
        SubscriberJson {
            id: s.id,
            email: s.email,
            name: s.name,
            status: s.status.as_str().to_owned(),
            created_at: s.created_at,
            consent_at: s.consent_at,
            consent_source: s.consent_source,
            confirmed_at: s.confirmed_at,
            unsubscribed_at: s.unsubscribed_at,
            tags,
            skip_issues: s.skip_issues,
            unsubscribe_reason: s.unsubscribe_reason,
        }
    }
}

/// Subscribers as the API shows them, each with its tags.
async fn with_tags(
    state: &AppState,
    list: Vec<Subscriber>,
) -> Result<Vec<SubscriberJson>, ApiError> {
    let ids: Vec<i64> = list.iter().map(|s| s.id).collect();
    let mut tags = crate::store::tags::of_subscribers(&state.db, &ids).await?;
    Ok(list
        .into_iter()
        .map(|s| {
            let names = tags
                .remove(&s.id)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name)
                .collect();
            SubscriberJson::new(s, names)
        })
        .collect())
}

/// One subscriber as the API shows it, under `data`.
async fn envelope(state: &AppState, s: Subscriber) -> Result<SubscriberEnvelope, ApiError> {
    let data = with_tags(state, vec![s]).await?.remove(0);
    Ok(SubscriberEnvelope { data })
}

/// One subscriber.
#[derive(Serialize, ToSchema)]
pub struct SubscriberEnvelope {
    data: SubscriberJson,
}

/// A page of subscribers, newest first.
#[derive(Serialize, ToSchema)]
pub struct SubscriberPage {
    data: Vec<SubscriberJson>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<i64>,
}

/// Filters and paging for the list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(schema_with = super::schema::subscriber_status)]
    status: Option<String>,
    #[param(schema_with = super::schema::search)]
    q: Option<String>,
    /// Only subscribers carrying this tag (its name, any case); 404 when no tag has it.
    #[param(schema_with = super::schema::tag_filter)]
    tag: Option<String>,
    #[param(schema_with = super::schema::cursor)]
    before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A new subscriber.
#[derive(Deserialize, ToSchema)]
pub struct CreateSubscriber {
    #[schema(schema_with = super::schema::email)]
    email: String,
    #[schema(schema_with = super::schema::name)]
    name: Option<String>,
    /// The person already agreed to receive the publication: add as active. Otherwise they
    /// are sent a confirmation email and stay pending until they click it.
    #[serde(default)]
    consented: bool,
    /// Tags to give it, by name; tags that do not exist yet are made.
    #[serde(default)]
    #[schema(schema_with = super::schema::tag_names)]
    tags: Vec<String>,
}

/// A change to a subscriber.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriber {
    /// The new name; null or empty clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::schema::name)]
    name: Option<Option<String>>,
    /// The subscriber's tags, replacing the ones it has; tags that do not exist yet are made.
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::tag_names)]
    tags: Option<Vec<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn email(raw: &str) -> Result<SubscriberEmail, ApiError> {
    SubscriberEmail::parse(raw).map_err(|e| ApiError::invalid("invalid_email", e.to_string()))
}

fn name(raw: Option<&str>) -> Result<Option<SubscriberName>, ApiError> {
    SubscriberName::parse_optional(raw)
        .map_err(|e| ApiError::invalid("invalid_name", e.to_string()))
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "a subscriber")
}

fn missing() -> ApiError {
    ApiError::not_found("No subscriber has this id.")
}

/// List subscribers, newest first, with keyset pagination.
#[utoipa::path(get, path = "/api/v1/subscribers", params(ListParams),
    responses((status = 200, body = SubscriberPage), (status = 400, body = super::error::ErrorBody),
              (status = 404, description = "No tag has the name given in `tag`", body = super::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let status = params
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| SubscriberStatus::try_from(s.to_lowercase()))
        .transpose()
        .map_err(|_| {
            ApiError::invalid(
                "invalid_status",
                "status must be pending, active, unsubscribed, bounced or complained",
            )
        })?;
    let limit = super::page_limit(params.limit, 100)?;
    let search = crate::domain::search_text(params.q.as_deref().unwrap_or(""))
        .map_err(|why| ApiError::invalid("invalid_query", why))?;
    let cursor = params
        .before
        .map_or(Cursor::First { by_signup: false }, |id| {
            Cursor::Before(Edge { id, at: None })
        });
    let tag = match params.tag.as_deref().filter(|t| !t.trim().is_empty()) {
        None => None,
        Some(raw) => {
            let name = super::tags::tag_names(&[raw.to_owned()])?;
            Some(crate::store::tags::by_names(&state.db, &name).await?[0].id)
        }
    };
    let filter = Filter {
        status,
        search,
        tag,
    };
    let page = subscriber_admin::list(&state.db, &filter, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(SubscriberPage {
        data: with_tags(&state, page.items).await?,
        next_before: page.older.map(|edge| edge.id),
    }))
}

/// Add a subscriber: active when `consented`, otherwise pending with a confirmation email
/// (double opt-in, under the signup form's per-IP limit).
#[utoipa::path(post, path = "/api/v1/subscribers", request_body = CreateSubscriber,
    responses((status = 201, description = "Added as active", body = SubscriberEnvelope),
              (status = 202, description = "Pending: a confirmation email is on its way", body = SubscriberEnvelope),
              (status = 400, body = super::error::ErrorBody),
              (status = 409, description = "Already on the list", body = super::error::ErrorBody),
              (status = 429, description = "Too many signups from this address", body = super::error::ErrorBody,
               headers(("Retry-After" = String, description = "Seconds to wait")))))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: super::JsonObject<CreateSubscriber>,
) -> Result<HttpResponse, ApiError> {
    let address = email(&body.email)?;
    let name = name(body.name.as_deref())?;
    let tag_names = super::tags::tag_names(&body.tags)?;
    if body.consented {
        let now = state.clock.now();
        return match subscriber_admin::add(
            &state.db,
            &address,
            name.as_ref(),
            ConsentSource::Api,
            true,
            now,
        )
        .await?
        {
            Added::New(s) => {
                give_tags(&state, s.id, &tag_names).await?;
                Ok(HttpResponse::Created().json(envelope(&state, s).await?))
            }
            Added::Exists(_) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "exists",
                "This address is already on the list.",
            )),
            Added::Suppressed => Err(ApiError::new(
                StatusCode::CONFLICT,
                "suppressed",
                "This address is suppressed: it bounced or complained. Lift the suppression first.",
            )),
        };
    }
    let signup = NewSignup {
        email: address.clone(),
        name,
        source: ConsentSource::Api,
        ip: state.client_ip.of(&req).map(|ip| ip.to_string()),
    };
    state.signups.signup(state.signup_request(signup)).await?;
    state.outbox_wake.notify_one();
    let stored = crate::store::subscribers::find_by_email(&state.db, &address)
        .await?
        .ok_or_else(missing)?;
    give_tags(&state, stored.id, &tag_names).await?;
    Ok(HttpResponse::Accepted().json(envelope(&state, stored).await?))
}

/// One subscriber.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}", params(super::document::SubscriberId),
    responses((status = 200, body = SubscriberEnvelope), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = subscriber_admin::get(&state.db, id(&path)?)
        .await?
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok().json(envelope(&state, s).await?))
}

/// Gives a subscriber tags by name, making the tags that do not exist yet.
async fn give_tags(
    state: &AppState,
    subscriber_id: i64,
    names: &[TagName],
) -> Result<(), ApiError> {
    let now = state.clock.now();
    for tag in crate::store::tags::ensure(&state.db, names, now).await? {
        crate::store::tags::tag(&state.db, tag.id, &[subscriber_id], now).await?;
    }
    Ok(())
}

/// Change a subscriber's name, tags, or both (a field left out is left as it is).
#[utoipa::path(patch, path = "/api/v1/subscribers/{id}", params(super::document::SubscriberId), request_body = UpdateSubscriber,
    responses((status = 200, body = SubscriberEnvelope), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<UpdateSubscriber>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    let new_name = body.name.as_ref().map(|n| name(n.as_deref())).transpose()?;
    let tag_names = body
        .tags
        .as_deref()
        .map(super::tags::tag_names)
        .transpose()?;
    let now = state.clock.now();
    let mut s = subscriber_admin::get(&state.db, id)
        .await?
        .ok_or_else(missing)?;
    if let Some(new_name) = new_name {
        s = subscriber_admin::rename(&state.db, id, new_name.as_ref(), now)
            .await?
            .ok_or_else(missing)?;
    }
    if let Some(names) = tag_names {
        let ids: Vec<i64> = crate::store::tags::ensure(&state.db, &names, now)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        crate::store::tags::replace(&state.db, id, &ids, false, now).await?;
    }
    Ok(HttpResponse::Ok().json(envelope(&state, s).await?))
}

/// Unsubscribe a subscriber (idempotent).
#[utoipa::path(post, path = "/api/v1/subscribers/{id}/unsubscribe", params(super::document::SubscriberId),
    responses((status = 200, body = SubscriberEnvelope), (status = 404, body = super::error::ErrorBody)))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = subscriber_admin::unsubscribe(&state.db, id(&path)?, state.clock.now())
        .await?
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok().json(envelope(&state, s).await?))
}

/// Erase a subscriber and their history (GDPR).
#[utoipa::path(delete, path = "/api/v1/subscribers/{id}", params(super::document::SubscriberId),
    responses((status = 204, description = "Erased"), (status = 404, body = super::error::ErrorBody)))]
pub async fn erase(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !subscriber_admin::erase(&state.db, id(&path)?).await? {
        return Err(missing());
    }
    Ok(HttpResponse::NoContent().finish())
}
