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

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses an unsafe request without the session's CSRF token (in the form action's query,
/// so multipart uploads are covered without reading their bodies) or from another origin.
fn check_csrf(req: &ServiceRequest, session: &Session) -> Result<(), WebError> {
    if is_safe(req.method()) {
        return Ok(());
    }
    let refused = || {
        WebError::Forbidden(
            "This form has expired or did not come from this site. Reload the page and try again."
                .into(),
        )
    };
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
    let given = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    match (context::stored_csrf(session), given) {
        (Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(refused()),
    }
}

/// For `/admin/login`: the CSRF check only.
pub async fn require_csrf(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    check_csrf(&req, &req.get_session())?;
    next.call(req).await
}

/// For every other admin route: a signed-in editor who still exists, then the CSRF check.
pub async fn require_editor(
    req: ServiceRequest,
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
        let to_login = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/admin/login"))
            .finish();
        return Ok(req.into_response(to_login).map_into_right_body());
    };
    check_csrf(&req, &session)?;
    let csrf = context::csrf_token(&session);
    req.extensions_mut().insert(AdminContext { editor, csrf });
    Ok(next.call(req).await?.map_into_left_body())
}
