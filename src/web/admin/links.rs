//! The links inbox: save links as they are found, edit and delete them, and see which went
//! out already.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::saved_link::{LinkAddress, NewSavedLink};
use crate::render::admin::{LinksAdminPage, SavedLinkRow};
use crate::store::saved_links::{self, SavedLinkError};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Saved links shown.
const SHOWN: i64 = 200;

/// A link's form.
#[derive(Debug, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    note: String,
}

impl LinkForm {
    fn parse(&self) -> Result<NewSavedLink, WebError> {
        NewSavedLink::parse(&self.url, &self.title, &self.source, &self.note)
            .map_err(WebError::BadRequest)
    }
}

fn refused(e: SavedLinkError) -> WebError {
    match e {
        SavedLinkError::NotFound => WebError::NotFound("There is no such saved link.".into()),
        SavedLinkError::Taken(_) => {
            WebError::Conflict("Another saved link has this address; edit that one instead.".into())
        }
        SavedLinkError::Store(e) => e.into(),
    }
}

/// `GET /admin/links`.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let sent = saved_links::sent_in(&state.db).await?;
    let links = saved_links::list(&state.db, None, SHOWN)
        .await?
        .into_iter()
        .map(|link| SavedLinkRow {
            sent_in: LinkAddress::parse(&link.url)
                .ok()
                .and_then(|a| sent.get(&a.key).cloned())
                .unwrap_or_default(),
            link,
        })
        .collect();
    html(
        StatusCode::OK,
        LinksAdminPage {
            chrome: chrome(&state, &ctx, &session),
            links,
        },
    )
}

/// `POST /admin/links`: saves a link (or updates the one with its address).
pub async fn save(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, WebError> {
    let (link, problem) = crate::inbox::complete(form.parse()?, &state.page_fetcher).await;
    let (_, new) = saved_links::save(&state.db, &link, state.clock.now()).await?;
    let said = if new {
        "The link was saved."
    } else {
        "That link was already saved; it is updated."
    };
    flash(
        &session,
        match problem {
            Some(why) => format!("{said} Its page could not be read ({why}): give it a title."),
            None => said.to_owned(),
        },
    );
    Ok(see_other("/admin/links"))
}

/// `POST /admin/links/{id}`: changes a saved link.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, WebError> {
    let link = form.parse()?;
    saved_links::update(&state.db, parse_id(&id)?, &link, state.clock.now())
        .await
        .map_err(refused)?;
    flash(&session, "The link was saved.");
    Ok(see_other("/admin/links"))
}

/// `POST /admin/links/{id}/delete` (with the confirmation box).
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Deleting a link")?;
    saved_links::delete(&state.db, parse_id(&id)?)
        .await
        .map_err(refused)?;
    flash(&session, "The link was deleted.");
    Ok(see_other("/admin/links"))
}
