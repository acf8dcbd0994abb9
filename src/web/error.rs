//! The one error type at the web edge, and the middleware that turns every 4xx/5xx answer on
//! the public site into an HTML page in the publication's look.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use super::AppState;
use crate::render::MessagePage;
use crate::store::StoreError;

/// Everything a request can fail with. Client mistakes carry a message for the reader;
/// internal failures are logged in full and answered without detail.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request is malformed or a value is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request is refused (cross-site form post).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing here.
    #[error("{0}")]
    NotFound(String),
    /// The thing is in a state that does not allow this (an issue already sent, say).
    #[error("{0}")]
    Conflict(String),
    /// The body is over the limit.
    #[error("The request is too large.")]
    PayloadTooLarge,
    /// The body is not in a format this address accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The per-IP limit was reached.
    #[error("Too many requests from your address; please wait a minute and try again.")]
    TooManyRequests,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::issues::IssueError> for WebError {
    fn from(e: crate::store::issues::IssueError) -> Self {
        use crate::store::issues::IssueError;
        match e {
            IssueError::NotFound => {
                WebError::NotFound("There is no such issue (it may have been deleted).".into())
            }
            IssueError::WrongStatus(status) => WebError::Conflict(format!(
                "The issue is {status}, so it cannot be changed this way."
            )),
            IssueError::SlugTaken(slug) => WebError::Conflict(format!(
                "Another issue already uses the address /archive/{slug}."
            )),
            IssueError::SlotTaken => {
                WebError::Conflict("Another issue already holds that slot; choose another.".into())
            }
            IssueError::Store(e) => WebError::Store(e),
        }
    }
}

/// The reader-facing text of an error, carried to the page renderer in the response extensions.
#[derive(Clone, Debug)]
struct ErrorMessage(String);

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            WebError::Store(_) | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
            "Something went wrong on our side. Please try again in a moment.".to_owned()
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status)
            .content_type(mime_text())
            .body(message.clone());
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}

fn mime_text() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}

/// A heading for a status code a reader might meet.
fn title_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "That did not work",
        403 => "Not allowed",
        404 => "Page not found",
        405 => "Not allowed here",
        410 => "This link has expired",
        413 => "Too much data",
        415 => "Unsupported format",
        429 => "Slow down, please",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    }
}

/// Re-renders plain error answers (ours, actix's, the rate limiter's) as HTML pages.
/// Pages that are already HTML, and everything under `/api/` and `/health`, pass untouched.
pub fn render_error_page<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let path = res.request().path();
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if path.starts_with("/api/") && !is_json {
        // The rate limiter and actix answer in plain text; API clients get the API's JSON.
        let (req, old) = res.into_parts();
        let status = old.status();
        let code = match status.as_u16() {
            429 => "too_many_requests",
            404 => "not_found",
            405 => "method_not_allowed",
            s if s >= 500 => "internal",
            _ => "bad_request",
        };
        let mut new =
            crate::web::api::ApiError::new(status, code, default_message(status)).error_response();
        if let Some(retry) = old.headers().get(header::RETRY_AFTER) {
            new.headers_mut().insert(header::RETRY_AFTER, retry.clone());
        }
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, new).map_into_right_body(),
        ));
    }
    if is_html || is_json || path == "/health" {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = res
        .response()
        .extensions()
        .get::<ErrorMessage>()
        .map(|m| m.0.clone())
        .unwrap_or_else(|| default_message(status).to_owned());
    let (req, old) = res.into_parts();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, old).map_into_left_body(),
        ));
    };
    let body = MessagePage::new(&state.publication, title_for(status), &message, false)
        .render()
        .unwrap_or(message);
    let mut new = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    let new: HttpResponse<BoxBody> = new.content_type("text/html; charset=utf-8").body(body);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "There is nothing at this address.",
        429 => "Too many requests from your address; please wait a minute and try again.",
        405 => "This address does not accept that kind of request.",
        s if s >= 500 => "Something went wrong on our side. Please try again in a moment.",
        _ => "The request could not be handled.",
    }
}

/// Maps a failure to read a form body to a clear 4xx.
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as E;
    let web_error = match err {
        E::Overflow { .. } | E::UnknownLength => WebError::PayloadTooLarge,
        E::ContentType => WebError::UnsupportedMediaType(
            "Please send the form as application/x-www-form-urlencoded (an ordinary HTML form)."
                .into(),
        ),
        E::Chunked => WebError::BadRequest("Chunked form bodies are not accepted.".into()),
        E::Parse(_) | E::Serialize(_) => WebError::BadRequest(
            "The form could not be read: a field is malformed or repeated.".into(),
        ),
        other => WebError::BadRequest(format!("The form could not be read: {other}.")),
    };
    web_error.into()
}
