//! The subscriber list, one subscriber, and what the editor can do to them.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::tag::TagName;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::render::admin::{SubscriberPage, SubscribersPage};
use crate::store::subscriber_admin::{self, Added, Cursor, Edge, Filter};
use crate::store::tags::{self, TagError};
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
    /// A tag's name.
    #[serde(default)]
    tag: String,
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

/// The tag a list is filtered by: none when `raw` is blank; 404 when no tag has the name.
pub async fn tag_filter(state: &AppState, raw: &str) -> Result<Option<i64>, WebError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let name = TagName::parse(raw).map_err(WebError::BadRequest)?;
    match tags::by_names(&state.db, &[name]).await {
        Ok(found) => Ok(found.first().map(|t| t.id)),
        Err(TagError::Store(e)) => Err(e.into()),
        Err(e) => Err(WebError::NotFound(format!(
            "{}.",
            capitalized(&e.to_string())
        ))),
    }
}

/// A sentence's first letter in upper case.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl ListQuery {
    /// The filter this query selects.
    pub async fn filter(&self, state: &AppState) -> Result<Filter, WebError> {
        Ok(Filter {
            status: parse_status(&self.status)?,
            search: crate::domain::search_text(&self.q)
                .map_err(|why| WebError::BadRequest(why.into()))?,
            tag: tag_filter(state, &self.tag).await?,
        })
    }

    /// The filter's own query string (no page position).
    fn filter_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.q)
            .append_pair("status", &self.status)
            .append_pair("tag", &self.tag)
            .finish()
    }

    fn with(&self, key: &str, edge: Edge) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("q", &self.q)
            .append_pair("status", &self.status)
            .append_pair("tag", &self.tag)
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
    let filter = query.filter(&state).await?;
    let cursor = query.cursor()?;
    let page = subscriber_admin::list(&state.db, &filter, cursor, PER_PAGE).await?;
    let filter_query = query.filter_query();
    let counts = subscriber_admin::counts(&state.db).await?;
    let ids: Vec<i64> = page.items.iter().map(|s| s.id).collect();
    let tags_of = tags::of_subscribers(&state.db, &ids).await?;
    let all_tags = tags::list(&state.db).await?;
    html(
        StatusCode::OK,
        SubscribersPage {
            chrome: chrome(&state, &ctx, &session),
            counts,
            items: page.items,
            status: &query.status,
            q: &query.q,
            tag: &query.tag,
            tags_of,
            all_tags,
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
    let tags = tags::of_subscribers(&state.db, &[s.id])
        .await?
        .remove(&s.id)
        .unwrap_or_default();
    let all_tags = tags::list(&state.db).await?;
    html(
        StatusCode::OK,
        SubscriberPage {
            chrome: chrome(&state, &ctx, &session),
            s,
            deliveries,
            tags,
            all_tags,
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

/// `POST /admin/subscribers/bulk`: `action` (unsubscribe, erase, tag or untag) applied to
/// every ticked `id`, or, for tag and untag with `scope=matching`, to every subscriber the
/// list's filter (`q`, `status`, `tag`) selects; erasing also needs the confirmation box.
pub async fn bulk(
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (mut action, mut confirm, mut ids) = (String::new(), String::new(), Vec::new());
    let (mut scope, mut bulk_tag) = (String::new(), String::new());
    let mut query = ListQuery::default();
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "action" => action = value.into_owned(),
            "confirm" => confirm = value.into_owned(),
            "scope" => scope = value.into_owned(),
            "bulk_tag" => bulk_tag = value.into_owned(),
            "q" => query.q = value.into_owned(),
            "status" => query.status = value.into_owned(),
            "tag" => query.tag = value.into_owned(),
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
    let matching = scope == "matching";
    if matching && !matches!(action.as_str(), "tag" | "untag") {
        return Err(WebError::BadRequest(
            "Only tagging and untagging apply to every subscriber that matches; tick the ones to unsubscribe or erase."
                .into(),
        ));
    }
    if ids.is_empty() && !matching {
        return Err(WebError::BadRequest(
            "Tick the subscribers to act on first.".into(),
        ));
    }
    ids.sort_unstable();
    ids.dedup();
    let now = state.clock.now();
    let message = match action.as_str() {
        "unsubscribe" => {
            let n = subscriber_admin::unsubscribe_many(&state.db, &ids, now).await?;
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
        "tag" | "untag" => {
            let tag_id = parse_id(&bulk_tag)
                .map_err(|_| WebError::BadRequest("Choose the tag to add or remove.".into()))?;
            let tag = tags::get(&state.db, tag_id)
                .await?
                .ok_or_else(|| WebError::NotFound("There is no such tag.".into()))?;
            let n = match (action.as_str(), matching) {
                ("tag", true) => {
                    tags::tag_matching(&state.db, tag_id, &query.filter(&state).await?, now).await?
                }
                ("tag", false) => tags::tag(&state.db, tag_id, &ids, now).await?,
                (_, true) => {
                    tags::untag_matching(&state.db, tag_id, &query.filter(&state).await?).await?
                }
                (_, false) => tags::untag(&state.db, tag_id, &ids).await?,
            };
            if action == "tag" {
                format!("{n} subscribers were tagged {}.", tag.name)
            } else {
                format!("{n} subscribers lost the tag {}.", tag.name)
            }
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "Unknown action {other:?}: choose unsubscribe, erase, tag or untag."
            )));
        }
    };
    flash(&session, message);
    Ok(see_other(&format!(
        "/admin/subscribers?{}",
        query.filter_query()
    )))
}

/// The tag form on a subscriber's page.
#[derive(Debug, Deserialize)]
pub struct TagForm {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    action: String,
}

/// `POST /admin/subscribers/{id}/tags`: gives the subscriber a tag, or takes one away.
pub async fn change_tags(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<TagForm>,
) -> Result<HttpResponse, WebError> {
    let s = subscriber_admin::get(&state.db, parse_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    let tag_id = parse_id(&form.tag).map_err(|_| WebError::BadRequest("Choose a tag.".into()))?;
    let tag = tags::get(&state.db, tag_id)
        .await?
        .ok_or_else(|| WebError::NotFound("There is no such tag.".into()))?;
    let message = match form.action.as_str() {
        "add" => {
            tags::tag(&state.db, tag_id, &[s.id], state.clock.now()).await?;
            format!("{} is tagged {}.", s.email, tag.name)
        }
        "remove" => {
            tags::untag(&state.db, tag_id, &[s.id]).await?;
            format!("{} no longer carries {}.", s.email, tag.name)
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "Unknown action {other:?}: add or remove."
            )));
        }
    };
    flash(&session, message);
    Ok(see_other(&format!("/admin/subscribers/{}", s.id)))
}

fn not_found() -> WebError {
    WebError::NotFound("There is no such subscriber (they may have been erased).".into())
}
