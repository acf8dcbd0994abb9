//! The client's address, for per-IP limits and consent evidence.

use std::net::IpAddr;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::{KeyExtractor, SimpleKeyExtractionError};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};

use super::error::WebError;

/// Finds the client address: the TCP peer, or, behind a trusted proxy, the last hop the
/// proxy appended to `X-Forwarded-For` (earlier entries are whatever the client claimed).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp {
    /// Read `X-Forwarded-For`.
    pub trust_forwarded: bool,
}

impl ClientIp {
    /// The client address of a request, if it can be told.
    pub fn of(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
                .last();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.peer_addr().map(|a| a.ip())
    }
}

/// IPv6 clients usually hold a whole /56, so they are limited per prefix.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[7..].fill(0);
            IpAddr::V6(octets.into())
        }
        v4 => v4,
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<Self::Key, Self::KeyExtractionError> {
        self.of(req.request())
            .map(limit_key)
            .ok_or_else(|| SimpleKeyExtractionError::new("cannot tell the client address"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        _: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        let mut response = WebError::TooManyRequests.error_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        response
    }
}
