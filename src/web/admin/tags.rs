//! Tags: make, rename, describe, open to readers, delete.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::subscribers::capitalized;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::tag::TagName;
use crate::render::admin::TagsPage;
use crate::store::tags::{self, TagError};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// `GET /admin/tags`.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let tags = tags::list(&state.db).await?;
    html(
        StatusCode::OK,
        TagsPage {
            chrome: chrome(&state, &ctx, &session),
            tags,
        },
    )
}

/// A tag's form: name, description, and whether readers may choose it.
#[derive(Debug, Deserialize)]
pub struct TagForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    public: String,
}

impl TagForm {
    fn parse(&self) -> Result<(TagName, String, bool), WebError> {
        let name = TagName::parse(&self.name).map_err(WebError::BadRequest)?;
        let description = self.description.trim();
        if description.chars().count() > 300 || description.chars().any(char::is_control) {
            return Err(WebError::BadRequest(
                "The description is one line of at most 300 characters.".into(),
            ));
        }
        Ok((name, description.to_owned(), self.public == "yes"))
    }
}

fn refused(e: TagError) -> WebError {
    match e {
        TagError::Store(e) => e.into(),
        TagError::NotFound => WebError::NotFound("There is no such tag.".into()),
        other => WebError::Conflict(format!("{}.", capitalized(&other.to_string()))),
    }
}

/// `POST /admin/tags`: makes a tag.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<TagForm>,
) -> Result<HttpResponse, WebError> {
    let (name, description, public) = form.parse()?;
    let tag = tags::create(&state.db, &name, &description, public, state.clock.now())
        .await
        .map_err(refused)?;
    flash(&session, format!("The tag {} was made.", tag.name));
    Ok(see_other("/admin/tags"))
}

/// `POST /admin/tags/{id}`: renames or changes a tag.
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<TagForm>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    let (name, description, public) = form.parse()?;
    let tag = tags::update(&state.db, id, &name, &description, public)
        .await
        .map_err(refused)?;
    flash(&session, format!("The tag {} was saved.", tag.name));
    Ok(see_other("/admin/tags"))
}

/// `POST /admin/tags/{id}/delete`: deletes a tag (with the confirmation box).
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Deleting a tag")?;
    tags::delete(&state.db, parse_id(&id)?)
        .await
        .map_err(refused)?;
    flash(
        &session,
        "The tag was deleted and taken off every subscriber.",
    );
    Ok(see_other("/admin/tags"))
}
