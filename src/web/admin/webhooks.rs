//! Outbound webhooks: register endpoints, send a test event, read the delivery log, redeliver.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::webhook::{EventSet, EventType, WebhookSecret, endpoint_url, note};
use crate::outbox::webhooks::refused_destination;
use crate::render::admin::{WebhookPage, WebhooksPage};
use crate::store::webhooks::{self, EndpointChange, NewEndpoint, WebhookError};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Deliveries shown on an endpoint's page.
const LOG_LENGTH: i64 = 100;

fn event_names() -> Vec<&'static str> {
    EventType::ALL.iter().map(|e| e.as_str()).collect()
}

fn refused(e: WebhookError) -> WebError {
    match e {
        WebhookError::NotFound => {
            WebError::NotFound("There is no such webhook endpoint or delivery.".into())
        }
        WebhookError::Disabled => {
            WebError::Conflict("The endpoint is switched off: switch it on first.".into())
        }
        WebhookError::Store(e) => e.into(),
    }
}

/// An endpoint's form, read by hand: `events` repeats, one per ticked box.
#[derive(Default)]
struct EndpointForm {
    url: String,
    description: String,
    events: Vec<String>,
    enabled: bool,
    rotate_secret: bool,
}

impl EndpointForm {
    fn read(body: &[u8]) -> EndpointForm {
        let mut form = EndpointForm::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "url" => form.url = value.into_owned(),
                "description" => form.description = value.into_owned(),
                "events" => form.events.push(value.into_owned()),
                "enabled" => form.enabled = value == "yes",
                "rotate_secret" => form.rotate_secret = value == "yes",
                _ => {}
            }
        }
        form
    }

    /// The address, note and events, each checked; the address also for where it points.
    async fn parse(&self, state: &AppState) -> Result<(url::Url, String, EventSet), WebError> {
        let url = endpoint_url(&self.url).map_err(WebError::BadRequest)?;
        if let Some(why) = refused_destination(&url, state.config.webhooks_allow_private).await {
            return Err(WebError::BadRequest(why));
        }
        let description = note(&self.description).map_err(WebError::BadRequest)?;
        let events = EventSet::parse(&self.events).map_err(WebError::BadRequest)?;
        Ok((url, description, events))
    }
}

/// `GET /admin/webhooks`.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let endpoints = webhooks::list(&state.db).await?;
    html(
        StatusCode::OK,
        WebhooksPage {
            chrome: chrome(&state, &ctx, &session),
            endpoints,
            events: event_names(),
        },
    )
}

/// `POST /admin/webhooks`: registers an endpoint with a fresh secret.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (url, description, events) = EndpointForm::read(&body).parse(&state).await?;
    let new = NewEndpoint {
        url,
        description,
        events,
        secret: WebhookSecret::generate(),
    };
    let endpoint = webhooks::create(&state.db, &new, state.clock.now()).await?;
    flash(
        &session,
        "The endpoint was added. Give its signing secret to the receiver.",
    );
    Ok(see_other(&format!("/admin/webhooks/{}", endpoint.id)))
}

/// `GET /admin/webhooks/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    let endpoint = webhooks::get(&state.db, id)
        .await?
        .ok_or(WebhookError::NotFound)
        .map_err(refused)?;
    let deliveries = webhooks::deliveries(&state.db, id, None, None, LOG_LENGTH).await?;
    html(
        StatusCode::OK,
        WebhookPage {
            chrome: chrome(&state, &ctx, &session),
            endpoint,
            events: event_names(),
            deliveries,
        },
    )
}

/// `POST /admin/webhooks/{id}`: saves an endpoint's settings.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    let form = EndpointForm::read(&body);
    let (url, description, events) = form.parse(&state).await?;
    let change = EndpointChange {
        url: Some(url),
        description: Some(description),
        events: Some(events),
        secret: form.rotate_secret.then(WebhookSecret::generate),
        enabled: Some(form.enabled),
    };
    webhooks::update(&state.db, id, &change, state.clock.now())
        .await
        .map_err(refused)?;
    flash(&session, "The endpoint was saved.");
    Ok(see_other(&format!("/admin/webhooks/{id}")))
}

/// `POST /admin/webhooks/{id}/test`: queues a `webhook.test` event for it.
pub async fn test(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    webhooks::queue_test(&state.db, id, &state.publication.name, state.clock.now())
        .await
        .map_err(refused)?;
    state.webhook_wake.notify_one();
    flash(
        &session,
        "A test event is on its way; its delivery shows below.",
    );
    Ok(see_other(&format!("/admin/webhooks/{id}")))
}

/// `POST /admin/webhooks/{id}/deliveries/{delivery_id}/redeliver`.
pub async fn redeliver(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (endpoint, delivery) = path.into_inner();
    let (endpoint, delivery) = (parse_id(&endpoint)?, parse_id(&delivery)?);
    webhooks::redeliver(&state.db, endpoint, delivery, state.clock.now())
        .await
        .map_err(refused)?;
    state.webhook_wake.notify_one();
    flash(&session, "The event was queued again, with the same id.");
    Ok(see_other(&format!("/admin/webhooks/{endpoint}")))
}

/// `POST /admin/webhooks/{id}/delete`: removes an endpoint and its log (with the
/// confirmation box).
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Removing an endpoint")?;
    webhooks::delete(&state.db, parse_id(&id)?)
        .await
        .map_err(refused)?;
    flash(&session, "The endpoint and its log were removed.");
    Ok(see_other("/admin/webhooks"))
}
