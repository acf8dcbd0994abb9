//! `/l/{token}`: a tracked link followed from an issue email. The click is counted and the
//! reader sent on with a 302 to the link's own address, byte for byte; a token this instance
//! did not sign, or one changed in any way, answers 404, so the route is never an open
//! redirect. `/o/{token}`: the pixel of an issue email (`track_opens`), counted and answered
//! with a transparent 1×1 GIF.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::error::WebError;
use crate::store::clicks;

/// Clicks and opens one client address may have recorded a minute (in a burst, then
/// steadily); past it, the reader is still redirected or served the image, and nothing more
/// is written, so a flood cannot grow the tables.
pub const COUNTED_PER_MINUTE: u32 = 60;

/// Whether this request's click or open is recorded: within the client's limit.
fn counted(state: &AppState, req: &HttpRequest) -> bool {
    let Some(ip) = state.client_ip.of(req) else {
        return false;
    };
    state.tracking_ips.retain_recent();
    state
        .tracking_ips
        .check_key(&super::client_ip::limit_key(ip))
        .is_ok()
}

/// `GET /l/{token}`.
#[tracing::instrument(skip_all)]
pub async fn follow(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let not_ours = || WebError::NotFound("This link is not valid.".into());
    let click = state.link_key.verify_click(&token).ok_or_else(not_ours)?;
    let location = HeaderValue::from_bytes(click.url.as_bytes()).map_err(|_| not_ours())?;
    // The reader gets to the link even when the count cannot be written.
    let name_reader = state.config.track_clicks && state.config.track_readers;
    if counted(&state, &req)
        && let Err(error) = clicks::record(&state.db, &click, name_reader, state.clock.now()).await
    {
        tracing::warn!(%error, "a click could not be recorded");
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /o/{token}`.
#[tracing::instrument(skip_all)]
pub async fn open(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let open = state
        .link_key
        .verify_open(&token)
        .ok_or_else(|| WebError::NotFound("This image is not ours.".into()))?;
    let name_reader = state.config.track_opens && state.config.track_readers;
    // Pixels of past sends still load once `track_opens` is off; they are no longer counted.
    if state.config.track_opens
        && counted(&state, &req)
        && let Err(error) =
            clicks::record_open(&state.db, &open, name_reader, state.clock.now()).await
    {
        tracing::warn!(%error, "an open could not be recorded");
    }
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(PIXEL))
}
