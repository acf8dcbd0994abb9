//! Reading a URL-encoded body ahead of the handler (to check its text, or its CSRF token) and
//! handing it on unchanged.

use actix_web::HttpMessage;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;

/// The largest body any form takes (an issue's Markdown in the admin, URL-encoded).
pub const LARGEST_FORM: usize = 2 * 1024 * 1024;

/// The most of a body read ahead of the handler at `path`: what the route itself takes, so
/// that nobody makes the server hold more than the route would.
pub fn limit_for(path: &str) -> usize {
    if path.starts_with("/admin/") {
        LARGEST_FORM
    } else if path.starts_with("/webhooks/") {
        super::webhooks::BODY_LIMIT
    } else if path.starts_with("/api/v1/issues")
        || path.starts_with("/api/v1/tags")
        || path == "/api/v1/welcome"
    {
        super::api::ISSUE_JSON_LIMIT
    } else {
        super::FORM_LIMIT.max(super::api::JSON_LIMIT)
    }
}

/// Why a body could not be read.
pub enum BodyError {
    /// Over the route's limit ([`limit_for`]).
    TooLarge,
    /// The connection failed mid-body.
    Unreadable,
}

/// Whether the request carries `type` (e.g. `application/x-www-form-urlencoded`).
pub fn has_type(req: &ServiceRequest, kind: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with(kind))
}

/// Whether the body is a URL-encoded form.
pub fn is_form(req: &ServiceRequest) -> bool {
    has_type(req, "application/x-www-form-urlencoded")
}

/// The whole body, refused past [`limit_for`] its path without reading further, and put back
/// so that the handler reads it as if nothing had happened.
pub async fn peek(req: &mut ServiceRequest) -> Result<Bytes, BodyError> {
    let limit = limit_for(req.path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(Payload::from(body.clone()));
    Ok(body)
}
