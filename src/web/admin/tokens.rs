//! API tokens: create (shown once), list, revoke.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, see_other};
use crate::render::admin::TokensPage;
use crate::store::api_tokens;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Session key of a token made but not yet shown.
const NEW_TOKEN: &str = "new_token";

/// `GET /admin/tokens`. A token just made is in the (encrypted) session for this one view.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let tokens = api_tokens::list(&state.db).await?;
    let created = session.remove_as::<String>(NEW_TOKEN).and_then(Result::ok);
    let page = TokensPage {
        chrome: chrome(&state, &ctx, &session),
        tokens,
        created,
    };
    let mut response = html(StatusCode::OK, page)?;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The create form.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

/// `POST /admin/tokens`: makes a token and shows it once on the page it redirects to (post,
/// redirect, get: a reload cannot make a second one).
pub async fn create(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let name = crate::domain::token::token_name(&form.name)
        .map_err(|why| WebError::BadRequest(why.into()))?;
    let (_, token) =
        api_tokens::create(&state.db, name, Some(ctx.editor.id), state.clock.now()).await?;
    session
        .insert(NEW_TOKEN, token)
        .map_err(|e| WebError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(see_other("/admin/tokens"))
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = super::parse_id(&id)?;
    if !api_tokens::revoke(&state.db, id, state.clock.now()).await? {
        return Err(WebError::NotFound("There is no such live token.".into()));
    }
    flash(
        &session,
        "The token was revoked; requests using it are refused from now on.",
    );
    Ok(see_other("/admin/tokens"))
}
