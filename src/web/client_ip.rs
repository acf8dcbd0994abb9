//! Who is asking: the client's address (per-IP limits, consent evidence) and whether a
//! browser's `Origin` is this site.

use std::net::IpAddr;

use actix_governor::governor::NotUntil;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::{KeyExtractor, SimpleKeyExtractionError};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};

use super::error::WebError;

/// Finds the client address: the TCP peer, or, behind a trusted proxy, the last entry of
/// `X-Forwarded-For` (the one the proxy appended; earlier entries are whatever the client
/// claimed). When that last entry is not a plain IP address, the peer address is used.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp {
    /// Read `X-Forwarded-For`.
    pub trust_forwarded: bool,
}

impl ClientIp {
    /// The client address of a request, if it can be told.
    pub fn of(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded {
            let last = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last();
            if let Some(ip) = last.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
                return Some(ip);
            }
        }
        req.peer_addr().map(|a| a.ip())
    }
}

/// A per-IP limit on POST requests (signups, sign-ins), shared by every worker thread.
pub type PostLimit =
    actix_governor::GovernorConfig<ClientIp, actix_governor::governor::middleware::NoOpMiddleware>;

/// `per_minute` POSTs a minute per client on average, `burst` at once.
pub fn post_limit(client_ip: ClientIp, per_minute: u32, burst: u32) -> PostLimit {
    actix_governor::GovernorConfigBuilder::default()
        .period(std::time::Duration::from_nanos(
            60_000_000_000 / u64::from(per_minute.max(1)),
        ))
        .burst_size(burst.max(1))
        .methods(vec![actix_web::http::Method::POST])
        .key_extractor(client_ip)
        .finish()
        .expect("non-zero limits")
}

/// Whether a browser's `Origin` is this site: its public `base_url`, the host the request was
/// sent to, or one of `extra` (other sites allowed to post a form here).
pub fn is_own_origin(
    req: &HttpRequest,
    origin: &str,
    base_url: &url::Url,
    extra: &[String],
) -> bool {
    let Ok(origin) = url::Url::parse(origin).map(|u| u.origin()) else {
        return false;
    };
    let host = req.connection_info().host().to_owned();
    let same_host = origin
        .ascii_serialization()
        .split_once("://")
        .is_some_and(|(_, h)| h == host);
    same_host
        || origin == base_url.origin()
        || extra
            .iter()
            .filter_map(|o| url::Url::parse(o).ok())
            .any(|u| u.origin() == origin)
}

/// IPv6 clients usually hold a whole /56, so they are limited per prefix.
pub(super) fn limit_key(ip: IpAddr) -> IpAddr {
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(trust: bool, forwarded: Option<&str>) -> Option<IpAddr> {
        let mut req = TestRequest::default().peer_addr("10.0.0.9:5000".parse().unwrap());
        if let Some(value) = forwarded {
            req = req.insert_header(("x-forwarded-for", value));
        }
        ClientIp {
            trust_forwarded: trust,
        }
        .of(&req.to_http_request())
    }

    #[test]
    fn the_peer_address_is_used_unless_the_proxy_is_trusted() {
        assert_eq!(
            ip(false, Some("203.0.113.7")),
            Some("10.0.0.9".parse().unwrap())
        );
        assert_eq!(ip(true, None), Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn only_the_entry_the_proxy_appended_counts() {
        assert_eq!(
            ip(true, Some("1.1.1.1, 203.0.113.7")),
            Some("203.0.113.7".parse().unwrap())
        );
        // A client-written first entry cannot win when the last one is unparsable.
        assert_eq!(
            ip(true, Some("1.1.1.1, unknown")),
            Some("10.0.0.9".parse().unwrap())
        );
        assert_eq!(
            ip(true, Some("1.1.1.1, 203.0.113.7:443")),
            Some("10.0.0.9".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_56_prefix() {
        let a = limit_key("2001:db8:aa:bb01::1".parse().unwrap());
        let b = limit_key("2001:db8:aa:bbff::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(
            limit_key("192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
