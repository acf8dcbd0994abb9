//! `/l/{token}`: a tracked link followed from an issue email. The click is counted and the
//! reader sent on with a 302 to the link's own address, byte for byte; a token this instance
//! did not sign, or one changed in any way, answers 404, so the route is never an open
//! redirect.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use super::AppState;
use super::error::WebError;
use crate::store::clicks;

/// `GET /l/{token}`.
#[tracing::instrument(skip_all)]
pub async fn follow(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let not_ours = || WebError::NotFound("This link is not valid.".into());
    let click = state.link_key.verify_click(&token).ok_or_else(not_ours)?;
    let location = HeaderValue::from_bytes(click.url.as_bytes()).map_err(|_| not_ours())?;
    // The reader gets to the link even when the count cannot be written.
    let name_reader = state.config.track_clicks && state.config.track_readers;
    if let Err(error) = clicks::record(&state.db, &click, name_reader, state.clock.now()).await {
        tracing::warn!(%error, "a click could not be recorded");
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
