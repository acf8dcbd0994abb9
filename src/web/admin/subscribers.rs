//! The subscriber list, one subscriber, and what the editor can do to them.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::render::admin::{SubscriberPage, SubscribersPage};
use crate::store::subscriber_admin::{self, Added, Cursor, Edge, Filter};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Rows per page.
const PER_PAGE: i64 = 50;

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    before: Option<i64>,
    after: Option<i64>,
    /// The signup time of the subscriber at the page's edge (RFC 3339).
    at: Option<String>,
}

/// Reads a status filter; empty means any.
pub fn parse_status(raw: &str) -> Result<Option<SubscriberStatus>, WebError> {
    if raw.is_empty() {
        return Ok(None);
    }
    SubscriberStatus::try_from(raw.to_lowercase())
        .map(Some)
        .map_err(|_| {
            WebError::BadRequest(format!(
                "Unknown status {raw:?}: use active, pending, unsubscribed, bounced or complained."
            ))
        })
}

impl ListQuery {
    /// The filter this query selects.
    pub fn filter(&self) -> Result<Filter, WebError> {
        Ok(Filter {
            status: parse_status(&self.status)?,
            search: crate::domain::search_text(&self.q)
                .map_err(|why| WebError::BadRequest(why.into()))?,
        })
    }

    fn with(&self, key: &str, edge: Edge) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("q", &self.q)
            .append_pair("status", &self.status)
            .append_pair(key, &edge.id.to_string());
        if let Some(at) = edge.at {
            query.append_pair(
                "at",
                &at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            );
        }
        query.finish()
    }

    /// The page's cursor: an edge needs both its id and its signup time.
    fn cursor(&self) -> Result<Cursor, WebError> {
        let at = match self.at.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| WebError::BadRequest(format!("{raw:?} is not a page position.")))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        Ok(match (self.before, self.after, at) {
            (Some(id), _, Some(at)) => Cursor::Before(Edge { id, at: Some(at) }),
            (None, Some(id), Some(at)) => Cursor::After(Edge { id, at: Some(at) }),
            (None, None, None) => Cursor::First { by_signup: true },
            _ => {
                return Err(WebError::BadRequest(
                    "A page position needs both `before` (or `after`) and `at`.".into(),
                ));
            }
        })
    }
}

/// `GET /admin/subscribers`.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = query.filter()?;
    let cursor = query.cursor()?;
    let page = subscriber_admin::list(&state.db, &filter, cursor, PER_PAGE).await?;
    let filter_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &query.q)
        .append_pair("status", &query.status)
        .finish();
    let counts = subscriber_admin::counts(&state.db).await?;
    html(
        StatusCode::OK,
        SubscribersPage {
            chrome: chrome(&state, &ctx, &session),
            counts,
            items: page.items,
            status: &query.status,
            q: &query.q,
            older: page.older.map(|id| query.with("before", id)),
            newer: page.newer.map(|id| query.with("after", id)),
            filter_query,
        },
    )
}

/// The add form.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    consented: String,
}

/// `POST /admin/subscribers`: adds one address.
pub async fn add(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, WebError> {
    let email =
        SubscriberEmail::parse(&form.email).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let name = SubscriberName::parse_optional(Some(&form.name))
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    let consented = form.consented == "yes";
    let now = state.clock.now();
    let added = subscriber_admin::add(
        &state.db,
        &email,
        name.as_ref(),
        ConsentSource::Admin,
        consented,
        now,
    )
    .await?;
    let (subscriber, message) = match added {
        Added::New(s) if consented => (s, format!("{} was added as active.", email.as_str())),
        Added::New(s) => {
            state.outbox_wake.notify_one();
            (
                s,
                format!(
                    "{} was added; a confirmation email is on its way.",
                    email.as_str()
                ),
            )
        }
        Added::Suppressed => {
            return Err(WebError::Conflict(format!(
                "{} is suppressed: mail to it bounced or its reader complained. Lift the suppression on the Deliverability page first.",
                email.as_str()
            )));
        }
        Added::Exists(s) => (
            s,
            format!(
                "{} is already on the list ({}); nothing changed.",
                email.as_str(),
                "see below"
            ),
        ),
    };
    flash(&session, message);
    Ok(see_other(&format!("/admin/subscribers/{}", subscriber.id)))
}

/// `GET /admin/subscribers/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let s = subscriber_admin::get(&state.db, parse_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    let deliveries = subscriber_admin::deliveries_of(&state.db, s.id, 100).await?;
    html(
        StatusCode::OK,
        SubscriberPage {
            chrome: chrome(&state, &ctx, &session),
            s,
            deliveries,
        },
    )
}

/// `POST /admin/subscribers/{id}/unsubscribe`.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let s = subscriber_admin::unsubscribe(&state.db, parse_id(&id)?, state.clock.now())
        .await?
        .ok_or_else(not_found)?;
    flash(&session, format!("{} is unsubscribed.", s.email));
    Ok(see_other(&format!("/admin/subscribers/{}", s.id)))
}

/// `POST /admin/subscribers/{id}/erase`.
pub async fn erase(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Erasing a subscriber")?;
    if !subscriber_admin::erase(&state.db, parse_id(&id)?).await? {
        return Err(not_found());
    }
    flash(&session, "The subscriber was erased, with their history.");
    Ok(see_other("/admin/subscribers"))
}

/// Most subscribers one bulk action takes (ten pages of the list).
const MAX_BULK: usize = 500;

/// `POST /admin/subscribers/bulk`: `action` (unsubscribe or erase) applied to every ticked
/// `id`; erasing also needs the confirmation box.
pub async fn bulk(
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (mut action, mut confirm, mut ids) = (String::new(), String::new(), Vec::new());
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "action" => action = value.into_owned(),
            "confirm" => confirm = value.into_owned(),
            "id" => {
                ids.push(parse_id(&value)?);
                if ids.len() > MAX_BULK {
                    return Err(WebError::BadRequest(format!(
                        "Select at most {MAX_BULK} subscribers at a time."
                    )));
                }
            }
            _ => {}
        }
    }
    if ids.is_empty() {
        return Err(WebError::BadRequest(
            "Tick the subscribers to act on first.".into(),
        ));
    }
    ids.sort_unstable();
    ids.dedup();
    let message = match action.as_str() {
        "unsubscribe" => {
            let n = subscriber_admin::unsubscribe_many(&state.db, &ids, state.clock.now()).await?;
            format!(
                "{n} of the {} selected were unsubscribed (the others had already left).",
                ids.len()
            )
        }
        "erase" => {
            super::Confirm { confirm }.require("Erasing subscribers")?;
            let n = subscriber_admin::erase_many(&state.db, &ids).await?;
            format!("{n} subscribers were erased, with their history.")
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "Unknown action {other:?}: choose unsubscribe or erase."
            )));
        }
    };
    flash(&session, message);
    Ok(see_other("/admin/subscribers"))
}

fn not_found() -> WebError {
    WebError::NotFound("There is no such subscriber (they may have been erased).".into())
}
