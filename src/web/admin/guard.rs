//! The two checks in front of the admin: a signed-in editor (else a redirect to sign-in), and
//! for every state-changing request a CSRF token matching the session's plus a same-site
//! `Origin` (else 403, and nothing changes).

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use subtle::ConstantTimeEq;

use super::context::{self, AdminContext, EDITOR, ISSUED};
use crate::store::editors;
use crate::web::AppState;
use crate::web::client_ip::is_own_origin;
use crate::web::error::WebError;
use crate::web::form_body;

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The one route whose form is multipart (the CSV upload): its token is the body's first
/// field, which the handler checks (with [`token_matches`]) before it reads anything else.
pub const MULTIPART_ROUTE: &str = "/admin/import";

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn token_matches(session: &Session, given: &str) -> bool {
    context::stored_csrf(session)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(given.as_bytes())))
}

/// The answer to a form without the right token.
pub fn refused() -> WebError {
    WebError::Forbidden(
        "This form has expired or did not come from this site. Reload the page and try again."
            .into(),
    )
}

/// Refuses an unsafe request from another origin, or without the session's CSRF token in the
/// form's hidden `csrf` field (never in the URL, where it would reach history and logs).
async fn check_csrf(req: &mut ServiceRequest, session: &Session) -> Result<(), WebError> {
    if is_safe(req.method()) {
        return Ok(());
    }
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let own = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| is_own_origin(req.request(), origin, &s.config.base_url, &[]));
        if !own {
            return Err(refused());
        }
    }
    if req.path() == MULTIPART_ROUTE && form_body::has_type(req, "multipart/form-data") {
        return Ok(());
    }
    if !form_body::is_form(req) {
        return Err(refused());
    }
    let body = form_body::peek(req).await.map_err(|e| match e {
        form_body::BodyError::TooLarge => WebError::PayloadTooLarge,
        form_body::BodyError::Unreadable => {
            WebError::BadRequest("The request body could not be read.".into())
        }
    })?;
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    match given {
        Some(given) if token_matches(session, &given) => Ok(()),
        _ => Err(refused()),
    }
}

/// For `/admin/login`: the CSRF check only.
pub async fn require_csrf(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let session = req.get_session();
    check_csrf(&mut req, &session).await?;
    next.call(req).await
}

/// For every other admin route: a signed-in editor who still exists, then the CSRF check.
pub async fn require_editor(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let session = req.get_session();
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| WebError::Internal(anyhow::anyhow!("no app state")))?;
    let editor = match session.get::<i64>(EDITOR).ok().flatten() {
        Some(id) => editors::get(&state.db, id).await.map_err(WebError::from)?,
        None => None,
    };
    // The cookie store cannot revoke anything, so the server decides: a session older than
    // `session_ttl`, or issued before the editor signed out or changed password, is void.
    let issued = session
        .get::<i64>(ISSUED)
        .ok()
        .flatten()
        .and_then(chrono::DateTime::from_timestamp_micros);
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(state.config.session_ttl).unwrap_or_default();
    let editor = editor.filter(|e| {
        issued.is_some_and(|at| {
            now - at <= ttl && e.sessions_valid_after.is_none_or(|cutoff| at > cutoff)
        })
    });
    let Some(editor) = editor else {
        // Never signed in, signed out, or the account was removed: start over.
        session.purge();
        // A page asked for (a bookmarklet's form, a link from a notice) is where sign-in
        // returns to.
        let mut location = "/admin/login".to_owned();
        let wanted = req.uri().path_and_query().map_or("", |p| p.as_str());
        if req.method() == actix_web::http::Method::GET && wanted != "/admin" {
            location.push_str("?next=");
            location.extend(url::form_urlencoded::byte_serialize(wanted.as_bytes()));
        }
        let to_login = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish();
        return Ok(req.into_response(to_login).map_into_right_body());
    };
    check_csrf(&mut req, &session).await?;
    let csrf = context::csrf_token(&session);
    req.extensions_mut().insert(AdminContext { editor, csrf });
    Ok(next.call(req).await?.map_into_left_body())
}
