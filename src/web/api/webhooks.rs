//! `/api/v1/webhooks`: outbound webhook endpoints, their test events and their delivery log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::error::ErrorBody;
use crate::domain::webhook::{
    DeliveryStatus, Endpoint, EventSet, WebhookDelivery, WebhookSecret, endpoint_url, note,
};
use crate::outbox::webhooks::refused_destination;
use crate::store::webhooks::{self, EndpointChange, NewEndpoint, WebhookError};
use crate::web::AppState;

/// An endpoint as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct WebhookJson {
    id: i64,
    url: String,
    description: String,
    /// The events it is sent.
    events: Vec<&'static str>,
    /// What its payloads are signed with (Standard Webhooks `whsec_` form).
    secret: String,
    /// Whether events are queued and sent to it.
    enabled: bool,
    /// When its current run of failures began; a day of them disables it.
    failing_since: Option<DateTime<Utc>>,
    /// Why Fortnight disabled it, when it did.
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookJson {
    fn from(e: Endpoint) -> Self {
        WebhookJson {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events.names(),
            secret: e.secret.expose().to_owned(),
            enabled: e.enabled,
            failing_since: e.failing_since,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
        }
    }
}

/// Every endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    data: Vec<WebhookJson>,
}

/// One endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookEnvelope {
    data: WebhookJson,
}

/// A new endpoint; its secret is generated.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    #[schema(schema_with = super::schema::webhook_url)]
    url: String,
    #[schema(schema_with = super::schema::webhook_events)]
    events: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = super::schema::webhook_description)]
    description: String,
}

/// A change to an endpoint: the fields given change. Switching it on forgets its failures.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::webhook_url)]
    url: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::webhook_events)]
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(schema_with = super::schema::webhook_description)]
    description: Option<String>,
    #[serde(default, deserialize_with = "super::not_null")]
    #[schema(value_type = bool)]
    enabled: Option<bool>,
    /// `true` replaces the secret with a new one.
    #[serde(default)]
    rotate_secret: bool,
}

/// One event for one endpoint, with its latest try.
#[derive(Serialize, ToSchema)]
pub struct DeliveryJson {
    id: i64,
    endpoint_id: i64,
    /// The `webhook-id` header: the same on every try and redelivery.
    message_id: String,
    /// The event's name.
    event_type: String,
    status: DeliveryStatus,
    /// Tries so far.
    attempts: i32,
    /// When the next try is due, while pending.
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    /// The endpoint's answer to the last try, when it answered.
    last_status_code: Option<i32>,
    /// What went wrong on the last try.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    /// The body sent.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

impl From<WebhookDelivery> for DeliveryJson {
    fn from(d: WebhookDelivery) -> Self {
        DeliveryJson {
            id: d.id,
            endpoint_id: d.endpoint_id,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            message_id: d.message_id,
            event_type: d.event_type,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// One delivery.
#[derive(Serialize, ToSchema)]
pub struct DeliveryEnvelope {
    data: DeliveryJson,
}

/// A page of an endpoint's deliveries, newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    data: Vec<DeliveryJson>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<i64>,
}

/// The query of the delivery log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    #[param(schema_with = super::schema::webhook_delivery_status)]
    status: Option<String>,
    #[param(schema_with = super::schema::cursor)]
    before: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The `{id}` and `{delivery_id}` of a delivery's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct DeliveryPath {
    /// Endpoint id.
    #[param(schema_with = super::schema::id)]
    id: i64,
    /// Delivery id.
    #[param(schema_with = super::schema::id)]
    delivery_id: i64,
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound => {
                ApiError::not_found("No webhook endpoint (or delivery) has this id.")
            }
            WebhookError::Disabled => {
                ApiError::new(StatusCode::CONFLICT, "endpoint_disabled", e.to_string())
            }
            WebhookError::Store(e) => e.into(),
        }
    }
}

fn id(raw: &str) -> Result<i64, ApiError> {
    super::path_id(raw, "a webhook endpoint")
}

/// An address checked for its form and, unless allowed, for where it points.
async fn destination(state: &AppState, raw: &str) -> Result<url::Url, ApiError> {
    let url = endpoint_url(raw).map_err(|why| ApiError::invalid("invalid_url", why))?;
    if let Some(why) = refused_destination(&url, state.config.webhooks_allow_private).await {
        return Err(ApiError::invalid("private_address", why));
    }
    Ok(url)
}

fn events(raw: &[String]) -> Result<EventSet, ApiError> {
    EventSet::parse(raw).map_err(|why| ApiError::invalid("invalid_events", why))
}

fn description(raw: &str) -> Result<String, ApiError> {
    note(raw).map_err(|why| ApiError::invalid("invalid_description", why))
}

/// Every endpoint, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks", responses((status = 200, body = WebhookList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let data = webhooks::list(&state.db)
        .await?
        .into_iter()
        .map(WebhookJson::from)
        .collect();
    Ok(HttpResponse::Ok().json(WebhookList { data }))
}

/// Register an endpoint. Its secret is generated and returned; payloads are signed with it
/// as the Standard Webhooks specification says.
#[utoipa::path(post, path = "/api/v1/webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookEnvelope),
              (status = 400, description = "Not a usable address (or a private one), or no known event", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    body: super::JsonObject<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let new = NewEndpoint {
        url: destination(&state, &body.url).await?,
        description: description(&body.description)?,
        events: events(&body.events)?,
        secret: WebhookSecret::generate(),
    };
    let endpoint = webhooks::create(&state.db, &new, state.clock.now()).await?;
    Ok(HttpResponse::Created().json(WebhookEnvelope {
        data: endpoint.into(),
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", params(super::document::WebhookId),
    responses((status = 200, body = WebhookEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = webhooks::get(&state.db, id(&path)?)
        .await?
        .ok_or(WebhookError::NotFound)?;
    Ok(HttpResponse::Ok().json(WebhookEnvelope {
        data: endpoint.into(),
    }))
}

/// Change an endpoint's address, events or description, switch it on or off, or give it a
/// new secret.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", params(super::document::WebhookId), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    webhooks::get(&state.db, id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let change = EndpointChange {
        url: match &body.url {
            Some(raw) => Some(destination(&state, raw).await?),
            None => None,
        },
        description: body.description.as_deref().map(description).transpose()?,
        events: body.events.as_deref().map(events).transpose()?,
        secret: body.rotate_secret.then(WebhookSecret::generate),
        enabled: body.enabled,
    };
    let endpoint = webhooks::update(&state.db, id, &change, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(WebhookEnvelope {
        data: endpoint.into(),
    }))
}

/// Remove an endpoint and its delivery log; events queued for it are not sent.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", params(super::document::WebhookId),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    webhooks::delete(&state.db, id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Queue a `webhook.test` event for the endpoint (whatever events it wants); sent at once
/// when it is enabled.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", params(super::document::WebhookId),
    responses((status = 202, body = DeliveryEnvelope), (status = 404, body = ErrorBody),
              (status = 409, description = "The endpoint is switched off", body = ErrorBody)))]
pub async fn test(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let delivery = webhooks::queue_test(
        &state.db,
        id(&path)?,
        &state.publication.name,
        state.clock.now(),
    )
    .await?;
    state.webhook_wake.notify_one();
    Ok(HttpResponse::Accepted().json(DeliveryEnvelope {
        data: delivery.into(),
    }))
}

/// The endpoint's deliveries, newest first: each event, its status, tries, last answer and
/// error.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", params(super::document::WebhookId, DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<DeliveryParams>,
) -> Result<HttpResponse, ApiError> {
    let id = id(&path)?;
    let limit = super::page_limit(params.limit, 100)?;
    let status = match params.status.as_deref().map(str::to_lowercase) {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(DeliveryStatus::try_from(s).map_err(|_| {
            ApiError::invalid(
                "invalid_status",
                "status is one of pending, delivered, failed",
            )
        })?),
    };
    webhooks::get(&state.db, id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let rows = webhooks::deliveries(&state.db, id, status, params.before, limit + 1).await?;
    let (data, next_before) = super::page_of(rows, limit, |d| d.id);
    Ok(HttpResponse::Ok().json(DeliveryPage {
        data: data.into_iter().map(DeliveryJson::from).collect(),
        next_before,
    }))
}

/// Send a delivery again, as a new delivery with the same `webhook-id` and body.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", params(DeliveryPath),
    responses((status = 202, body = DeliveryEnvelope), (status = 404, body = ErrorBody),
              (status = 409, description = "The endpoint is switched off", body = ErrorBody)))]
pub async fn redeliver(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (endpoint, delivery) = path.into_inner();
    let endpoint = id(&endpoint)?;
    let delivery = super::path_id(&delivery, "a delivery")?;
    let again = webhooks::redeliver(&state.db, endpoint, delivery, state.clock.now()).await?;
    state.webhook_wake.notify_one();
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(DeliveryEnvelope { data: again.into() }))
}
