//! The links inbox: save links as they are found, edit and delete them, and see which went
//! out already.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::saved_link::{LinkAddress, NewSavedLink};
use crate::render::admin::{LinkNewPage, LinksAdminPage, SavedLinkRow};
use crate::store::saved_links::{self, SavedLinkError};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Saved links shown.
const SHOWN: i64 = 200;

/// A link's form; `from = popup` when it was sent from the bookmarklet's window.
#[derive(Debug, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    from: String,
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
            bookmarklet: bookmarklet(&state.publication.base_url),
        },
    )
}

/// The bookmarklet: opens the save form for the page it is clicked on, in a small window.
fn bookmarklet(base: &str) -> String {
    let target = serde_json::to_string(&format!("{base}/admin/links/new")).unwrap_or_default();
    format!(
        "javascript:(()=>{{const e=encodeURIComponent;window.open({target}+'?url='+e(location.href)\
         +'&title='+e(document.title)+'&note='+e(String(getSelection())),'fortnight-link',\
         'width=520,height=600')}})()"
    )
}

/// The query the bookmarklet and the share sheet open the form with. A phone shares `text`,
/// which may hold the address when `url` is absent.
#[derive(Debug, Default, Deserialize)]
pub struct Prefill {
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    saved: String,
}

/// `GET /admin/links/new`: the save form, prefilled.
pub async fn new(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    query: web::Query<Prefill>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let shared_url = || {
        query
            .text
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(str::to_owned)
    };
    let url = if query.url.trim().is_empty() {
        shared_url().unwrap_or_default()
    } else {
        query.url.clone()
    };
    let note = if query.note.trim().is_empty() {
        query.text.replace(&url, "").trim().to_owned()
    } else {
        query.note.clone()
    };
    let clip = |text: &str, max: usize| -> String {
        text.chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect::<String>()
            .trim()
            .to_owned()
    };
    html(
        StatusCode::OK,
        LinkNewPage {
            chrome: chrome(&state, &ctx, &session),
            url: clip(&url, crate::domain::saved_link::MAX_URL),
            title: clip(&query.title, crate::domain::saved_link::MAX_TITLE),
            note: clip(&note, crate::domain::saved_link::MAX_NOTE),
            saved: query.saved == "1",
        },
    )
}

/// `GET /admin/manifest.webmanifest`: installs the admin on a phone, with the save form as
/// its share target.
pub async fn manifest(state: web::Data<AppState>) -> HttpResponse {
    let name = &state.publication.name;
    HttpResponse::Ok()
        .content_type("application/manifest+json")
        .json(serde_json::json!({
            "name": format!("{name} admin"),
            "short_name": name,
            "start_url": "/admin",
            "scope": "/admin",
            "display": "standalone",
            "icons": [{"src": "/favicon.ico", "sizes": "any", "type": "image/svg+xml"}],
            "share_target": {
                "action": "/admin/links/new",
                "method": "GET",
                "params": {"title": "title", "text": "text", "url": "url"}
            }
        }))
}

/// `POST /admin/links`: saves a link (or updates the one with its address).
pub async fn save(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, WebError> {
    let (_, new, problem) = crate::inbox::save(
        &state.db,
        form.parse()?,
        &state.page_fetcher,
        state.clock.now(),
    )
    .await?;
    let said = if new {
        "The link was saved."
    } else {
        "That link was already saved; it is updated."
    };
    let back = if form.from == "popup" {
        "/admin/links/new?saved=1"
    } else {
        "/admin/links"
    };
    flash(
        &session,
        match problem {
            Some(why) => format!("{said} Its page could not be read ({why}): give it a title."),
            None => said.to_owned(),
        },
    );
    Ok(see_other(back))
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
