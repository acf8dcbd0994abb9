//! Refuses request text that is not UTF-8. Form and query decoders replace invalid bytes with
//! U+FFFD and carry on, which would store an address nobody typed; so the path, the query
//! string and every URL-encoded body are checked, after percent-decoding, before any handler
//! reads them. JSON bodies are checked by the JSON parser and CSV files by the importer.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;
use percent_encoding::percent_decode;

use super::api::ApiError;
use super::error::WebError;

/// The largest URL-encoded body any form takes (an issue's Markdown in the admin); each
/// route's own limit applies after this check.
pub const LARGEST_FORM: usize = 2 * 1024 * 1024;

/// Whether `raw`, percent-decoded, is UTF-8.
pub fn decodes(raw: &[u8]) -> bool {
    std::str::from_utf8(&percent_decode(raw).collect::<Vec<u8>>()).is_ok()
}

/// The middleware: a 400 that says what was wrong (JSON under `/api/`, a page elsewhere).
pub async fn refuse_invalid_utf8(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let mut refused = None;
    if !decodes(req.path().as_bytes()) {
        refused = Some(Refusal::Invalid("address"));
    } else if !decodes(req.query_string().as_bytes()) {
        refused = Some(Refusal::Invalid("query string"));
    } else if is_form(&req) {
        match read_body(&mut req).await {
            Ok(body) if decodes(&body) => req.set_payload(Payload::from(body)),
            Ok(_) => refused = Some(Refusal::Invalid("form")),
            Err(refusal) => refused = Some(refusal),
        }
    }
    let Some(refusal) = refused else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let response = if req.path().starts_with("/api/") {
        refusal.api().error_response()
    } else {
        refusal.web().error_response()
    };
    Ok(req.into_response(response).map_into_right_body())
}

enum Refusal {
    Invalid(&'static str),
    TooLarge,
    Unreadable,
}

impl Refusal {
    fn message(&self) -> String {
        match self {
            Refusal::Invalid(what) => {
                format!("The {what} is not valid UTF-8 text; please send it encoded as UTF-8.")
            }
            Refusal::TooLarge => "The request is too large.".into(),
            Refusal::Unreadable => "The request body could not be read.".into(),
        }
    }

    fn api(&self) -> ApiError {
        use actix_web::http::StatusCode;
        match self {
            Refusal::Invalid(_) => ApiError::invalid("invalid_utf8", self.message()),
            Refusal::TooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", self.message())
            }
            Refusal::Unreadable => ApiError::invalid("bad_request", self.message()),
        }
    }

    fn web(&self) -> WebError {
        match self {
            Refusal::TooLarge => WebError::PayloadTooLarge,
            _ => WebError::BadRequest(self.message()),
        }
    }
}

fn is_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The whole body, refused past [`LARGEST_FORM`] without reading further.
async fn read_body(req: &mut ServiceRequest) -> Result<Bytes, Refusal> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > LARGEST_FORM) {
        return Err(Refusal::TooLarge);
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Refusal::Unreadable)?;
        if body.len() + chunk.len() > LARGEST_FORM {
            return Err(Refusal::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::decodes;

    #[test]
    fn percent_encoded_invalid_utf8_is_caught() {
        assert!(decodes(b"email=ada%40example.org&name=Zo%C3%AB"));
        assert!(decodes("name=Zoë".as_bytes()));
        assert!(!decodes(b"email=utf8-%FF%FE%40example.org"));
        assert!(!decodes(b"q=%C3"));
        assert!(!decodes(b"q=\xff"));
        assert!(
            decodes(b"q=%ZZ"),
            "a malformed escape is the form reader's to refuse"
        );
    }
}
