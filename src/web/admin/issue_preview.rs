//! Previewing an issue as readers will get it, and sending a test copy.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::issues::find;
use super::{AdminContext, chrome, see_other};
use crate::domain::SubscriberEmail;
use crate::render::admin_issues::{DraftPreview, IssuePreviewPage};
use crate::store::issues::Issue;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// The preview's query string.
#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    width: Option<String>,
}

fn parts(state: &AppState, issue: &Issue) -> Result<(String, String), WebError> {
    state
        .preview(issue)
        .map_err(|e| WebError::Internal(e.into()))
}

/// `GET /admin/issues/{id}/preview`: the HTML part in a frame beside the text part.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, WebError> {
    let width = match query.width.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .ok()
                .filter(|w| (240..=1600).contains(w))
                .ok_or_else(|| {
                    WebError::BadRequest(format!("{raw:?} is not a preview width (240 to 1600)."))
                })?,
        ),
    };
    let issue = find(&state, &id).await?;
    let (text, _) = parts(&state, &issue)?;
    let mut response = html(
        StatusCode::OK,
        IssuePreviewPage {
            chrome: chrome(&state, &ctx, &session),
            subject: issue.subject.clone(),
            issue: &issue,
            text,
            width,
        },
    )?;
    // This page frames the email below; everything else stays unframeable.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    Ok(response)
}

/// `GET /admin/issues/{id}/preview/email`: the HTML part alone, for the preview's frame.
/// Its images load from wherever the issue points, as in a mail client; scripts never run.
pub async fn email(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    let (_, html) = parts(&state, &issue)?;
    Ok(framed_email(html))
}

/// An email's HTML part for a preview's frame: its images load from wherever it points, as in
/// a mail client; scripts never run; only our own pages may frame it.
pub(super) fn framed_email(html: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-ancestors 'self'; \
             base-uri 'none'; form-action 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
        .body(html)
}

/// `GET /admin/issues/{id}/preview/web`: the web version, as the archive will show it.
pub async fn web_version(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    let page =
        crate::web::archive::issue_page(&state, &issue, crate::web::archive::Neighbours::Preview)?;
    let mut response = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page);
    crate::web::archive::allow_remote_images(&mut response);
    Ok(response)
}

/// The test-send form.
#[derive(Debug, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    email: String,
}

/// `POST /admin/issues/{id}/test`: sends one `[TEST]` copy to the address given, now.
pub async fn send_test(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, WebError> {
    let to =
        SubscriberEmail::parse(&form.email).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let issue = find(&state, &id).await?;
    let message = match state
        .test_sender()
        .send(&issue, &to, state.clock.now().into())
        .await
    {
        Ok(_) => format!("A test copy went to {}.", to.as_str()),
        Err(e) => {
            tracing::warn!(error = %e, "test send failed");
            format!("The test copy was not sent: {e}")
        }
    };
    flash(&session, message);
    Ok(see_other(&format!("/admin/issues/{}/preview", issue.id)))
}

/// `POST /admin/issues/draft-preview`: the editor's fields as they would read, before they are
/// saved, for the preview beside the editor.
pub async fn draft(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, WebError> {
    let form = super::issue_form::IssueForm::parse(&body)?;
    let html = askama::Template::render(&DraftPreview::of(&form.input, &state.publication))
        .map_err(|e| WebError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}
