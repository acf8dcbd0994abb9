//! Refuses request text that is not UTF-8. Form and query decoders replace invalid bytes with
//! U+FFFD and carry on, which would store an address nobody typed; so the path, the query
//! string and every URL-encoded body are checked, after percent-decoding, before any handler
//! reads them, and every JSON body as it is. CSV files are checked row by row by the importer.

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use percent_encoding::percent_decode;

use super::api::ApiError;
use super::error::WebError;
use super::form_body::{self, BodyError};

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
    } else if (form_body::is_form(&req) || form_body::has_type(&req, "application/json"))
        && !unauthenticated_api(&req)
    {
        let (what, check): (_, fn(&[u8]) -> bool) = if form_body::is_form(&req) {
            ("form", decodes)
        } else {
            ("JSON body", |raw| std::str::from_utf8(raw).is_ok())
        };
        match form_body::peek(&mut req).await {
            Ok(body) if check(&body) => {}
            Ok(_) => refused = Some(Refusal::Invalid(what)),
            Err(BodyError::TooLarge) => refused = Some(Refusal::TooLarge),
            Err(BodyError::Unreadable) => refused = Some(Refusal::Unreadable),
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

/// An API request without credentials: it is refused 401 before its body matters, so its
/// body is not read here.
fn unauthenticated_api(req: &ServiceRequest) -> bool {
    req.path().starts_with("/api/")
        && !req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
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
