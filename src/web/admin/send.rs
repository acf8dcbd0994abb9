//! Watching and steering a send: the send page (polled for fresh numbers), pause, resume,
//! cancel, and retrying the failed deliveries of a finished send.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::context::flash;
use super::issues::find;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::delivery;
use crate::delivery::steer::Steer;
use crate::render::admin_issues::SendPage;
use crate::store::sends;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// The script that refreshes the send page's numbers.
const SCRIPT: &str = include_str!("../../../templates/web/admin/admin.js");

/// `GET /admin/issues/{id}/send`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    let status = delivery::status(&state.db, &issue, state.clock.now()).await?;
    html(
        StatusCode::OK,
        SendPage {
            chrome: chrome(&state, &ctx, &session),
            issue: &issue,
            s: status,
        },
    )
}

/// `GET /admin/issues/{id}/send.json`: the same numbers, for the page's poll.
pub async fn json(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    let status = delivery::status(&state.db, &issue, state.clock.now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(status))
}

/// `GET /admin/admin.js`: the admin's small script (live numbers, the preview beside the editor).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

/// Which way an editor steers a send.
#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Cancel,
}

async fn act(
    state: &AppState,
    session: &Session,
    id: &str,
    action: Action,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(id)?;
    find(state, &id.to_string()).await?;
    let steer = Steer {
        db: &state.db,
        handoff: &state.handoff,
        lease: state.config.delivery_lease,
    };
    let now = state.clock.now();
    let (changed, done, refused) = match action {
        Action::Pause => (
            steer.pause(id, now).await?,
            "Paused: nothing more goes out until you resume.",
            "Only a send in progress can be paused.",
        ),
        Action::Resume => (
            steer.resume(id, now).await?,
            "Resumed.",
            "Only a paused send can be resumed.",
        ),
        Action::Cancel => (
            steer.cancel(id, now).await?,
            "Cancelled: what was sent stays sent; nothing more goes out.",
            "Only a send in progress can be cancelled.",
        ),
    };
    if !changed {
        return Err(WebError::Conflict(refused.into()));
    }
    state.outbox_wake.notify_one();
    flash(session, done);
    Ok(see_other(&format!("/admin/issues/{id}/send")))
}

/// `POST /admin/issues/{id}/pause`.
pub async fn pause(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    act(&state, &session, &id, Action::Pause).await
}

/// `POST /admin/issues/{id}/resume`.
pub async fn resume(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    act(&state, &session, &id, Action::Resume).await
}

/// `POST /admin/issues/{id}/cancel`.
pub async fn cancel(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Cancelling the rest of a send")?;
    act(&state, &session, &id, Action::Cancel).await
}

/// `POST /admin/issues/{id}/retry`.
pub async fn retry(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue_id = parse_id(&id)?;
    find(&state, &id).await?;
    let requeued = sends::retry_failed(&state.db, issue_id, state.clock.now()).await?;
    if requeued == 0 {
        return Err(WebError::Conflict(
            "Only a finished send with failed deliveries can be retried.".into(),
        ));
    }
    state.handoff.issue_started(issue_id);
    flash(
        &session,
        format!("{requeued} failed deliveries are being tried again."),
    );
    Ok(see_other(&format!("/admin/issues/{issue_id}/send")))
}

/// `GET /admin/issues/{id}/report`.
pub async fn report(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = super::issues::find(&state, &id).await?;
    let r = state.report(&issue).await?;
    html(
        StatusCode::OK,
        crate::render::admin_issues::ReportPage {
            chrome: super::chrome(&state, &ctx, &session),
            issue: &issue,
            r,
        },
    )
}
