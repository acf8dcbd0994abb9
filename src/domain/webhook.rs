//! Outbound webhooks: the events an endpoint can ask for, its address and secret, and the
//! signature the Standard Webhooks specification describes
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What happened. The names are the `type` of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A reader signed up (or signed up again after leaving), or the editor added one.
    SubscriberCreated,
    /// A reader confirmed their address.
    SubscriberConfirmed,
    /// A reader left: a link, the manage page, the editor or the API.
    SubscriberUnsubscribed,
    /// A reader's address bounced for good.
    SubscriberBounced,
    /// A reader marked an issue as spam.
    SubscriberComplained,
    /// An issue was put on (or moved to) a time.
    IssueScheduled,
    /// An issue's send finished.
    IssueSent,
    /// The editor's "send a test event"; never asked for, sent to the one endpoint.
    Test,
}

impl EventType {
    /// Every event an endpoint may ask for, in the order they are listed.
    pub const ALL: [EventType; 7] = [
        EventType::SubscriberCreated,
        EventType::SubscriberConfirmed,
        EventType::SubscriberUnsubscribed,
        EventType::SubscriberBounced,
        EventType::SubscriberComplained,
        EventType::IssueScheduled,
        EventType::IssueSent,
    ];

    /// The event's name, e.g. `subscriber.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SubscriberCreated => "subscriber.created",
            EventType::SubscriberConfirmed => "subscriber.confirmed",
            EventType::SubscriberUnsubscribed => "subscriber.unsubscribed",
            EventType::SubscriberBounced => "subscriber.bounced",
            EventType::SubscriberComplained => "subscriber.complained",
            EventType::IssueScheduled => "issue.scheduled",
            EventType::IssueSent => "issue.sent",
            EventType::Test => "webhook.test",
        }
    }

    /// One of [`EventType::ALL`] by name.
    pub fn parse(name: &str) -> Result<EventType, String> {
        EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "{name:?} is not an event; the events are {}.",
                    EventType::ALL.map(EventType::as_str).join(", ")
                )
            })
    }
}

/// The events an endpoint asks for: at least one, each once, in [`EventType::ALL`]'s order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSet(Vec<EventType>);

impl EventSet {
    /// Reads a list of names; refuses an empty list and unknown names.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<EventSet, String> {
        let wanted = names
            .iter()
            .map(|n| EventType::parse(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if wanted.is_empty() {
            return Err("Choose at least one event.".into());
        }
        Ok(EventSet(
            EventType::ALL
                .into_iter()
                .filter(|e| wanted.contains(e))
                .collect(),
        ))
    }

    /// Reads the stored form (names separated by commas).
    pub fn from_stored(stored: &str) -> Result<EventSet, String> {
        EventSet::parse(&stored.split(',').collect::<Vec<_>>())
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.names().join(",")
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.as_str()).collect()
    }

    /// Whether `event` is among them.
    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }
}

impl TryFrom<String> for EventSet {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        EventSet::from_stored(&stored)
    }
}

/// Bytes of a generated secret's key.
const SECRET_BYTES: usize = 24;

/// An endpoint's signing secret: `whsec_` and the base64 of a key of 24 to 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh random secret.
    pub fn generate() -> WebhookSecret {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        WebhookSecret {
            text: format!("whsec_{}", STANDARD.encode(&key)),
            key,
        }
    }

    /// Reads a secret in the `whsec_` form.
    pub fn parse(raw: &str) -> Result<WebhookSecret, String> {
        let text = raw.trim();
        let key = text
            .strip_prefix("whsec_")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|key| (SECRET_BYTES..=64).contains(&key.len()))
            .ok_or("A secret is `whsec_` followed by the base64 of 24 to 64 random bytes.")?;
        Ok(WebhookSecret {
            text: text.to_owned(),
            key,
        })
    }

    /// The `whsec_` form, to show the editor and to store.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header's value for message `id` sent at `timestamp` (Unix
    /// seconds) with `body`: `v1,` and the base64 of HMAC-SHA256 over `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl TryFrom<String> for WebhookSecret {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        WebhookSecret::parse(&stored)
    }
}

/// Longest endpoint address.
pub const MAX_URL: usize = 2000;

/// Reads an endpoint's address: http or https, with a host, no user name or password, at most
/// [`MAX_URL`] characters. Where it may point is checked apart (see [`is_public`]).
pub fn endpoint_url(raw: &str) -> Result<url::Url, String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(format!(
            "The address is too long ({MAX_URL} characters at most)."
        ));
    }
    if !crate::domain::saved_link::has_web_scheme(raw) {
        return Err("The address must start with http:// or https://.".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an address: {e}."))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("The address must start with http:// or https://.".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("The address needs a host.".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Leave the user name and password out of the address.".into());
    }
    // Stored as the parser wrote it (percent-encoded, punycode), so that form is measured.
    if url.as_str().len() > MAX_URL {
        return Err(format!(
            "The address is too long once encoded ({MAX_URL} characters at most)."
        ));
    }
    Ok(url)
}

/// Reads an endpoint's note: one line of at most 300 characters once trimmed.
pub fn note(raw: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > 300 || text.chars().any(char::is_control) {
        return Err("The description is one line of at most 300 characters.".into());
    }
    Ok(text.to_owned())
}

/// Whether `ip` is reachable on the public internet: not loopback, private, link-local,
/// shared (carrier-grade NAT), unspecified, broadcast, documentation, benchmarking, multicast
/// or reserved, nor an IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // An IPv4 address inside (mapped, compatible, 6to4): judged as that address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                )));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                )));
            }
            // Only global unicast (2000::/3), less its special ranges: documentation,
            // Teredo and other IETF blocks (2001::/23), NAT64 (64:ff9b::/96 is outside
            // 2000::/3 already).
            (s[0] & 0xe000) == 0x2000
                && !(s[0] == 0x2001 && s[1] == 0x0db8)
                && !(s[0] == 0x2001 && s[1] < 0x0200)
        }
    }
}

/// The waits after each failed try: the first try is at once, the last about 27 hours after
/// the event, so a receiver down for a day still gets it.
pub const RETRY_DELAYS: [std::time::Duration; 7] = [
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(5 * 60),
    std::time::Duration::from_secs(30 * 60),
    std::time::Duration::from_secs(2 * 3600),
    std::time::Duration::from_secs(5 * 3600),
    std::time::Duration::from_secs(10 * 3600),
    std::time::Duration::from_secs(10 * 3600),
];

/// When to try again after try number `attempts` (from 1) failed at `now`; `None` once the
/// tries are used up.
pub fn next_attempt(attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    let wait = RETRY_DELAYS.get(index)?;
    Some(now + chrono::Duration::from_std(*wait).ok()?)
}

/// How long an endpoint may fail without a success before it is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(1);

/// A fresh message id (the `webhook-id` header): `msg_` and a time-ordered UUID.
pub fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The body of a webhook: `{"type", "timestamp", "data"}`.
pub fn payload(event: EventType, data: &serde_json::Value, at: DateTime<Utc>) -> String {
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

/// A registered endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Row id.
    pub id: i64,
    /// Where the events are posted.
    pub url: String,
    /// What the editor wrote about it.
    pub description: String,
    /// The events it wants.
    pub events: EventSet,
    /// What its payloads are signed with.
    pub secret: WebhookSecret,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// When its current run of failures began.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why it was disabled by Fortnight, when it was.
    pub disabled_reason: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Where one event for one endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first try or a retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every try failed.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl TryFrom<String> for DeliveryStatus {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        match stored.as_str() {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(format!("unknown delivery status {other:?}")),
        }
    }
}

/// One event for one endpoint, with its latest try.
#[derive(Clone, Debug)]
pub struct WebhookDelivery {
    /// Row id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The `webhook-id`.
    pub message_id: String,
    /// The event's name.
    pub event_type: String,
    /// The body sent.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: i32,
    /// When the next try is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The endpoint's answer to the last try, when it answered.
    pub last_status_code: Option<i32>,
    /// What went wrong on the last try.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the endpoint took it.
    pub delivered_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_is_whsec_and_enough_base64() {
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        let fresh = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(fresh.expose()).unwrap(), fresh);
        assert_ne!(WebhookSecret::generate(), fresh);
    }

    #[test]
    fn events_are_known_names_kept_in_one_order() {
        let set = EventSet::parse(&["issue.sent", "subscriber.created", "issue.sent"]).unwrap();
        assert_eq!(set.to_stored(), "subscriber.created,issue.sent");
        assert_eq!(EventSet::from_stored(&set.to_stored()).unwrap(), set);
        assert!(EventSet::parse::<&str>(&[]).is_err());
        assert!(EventSet::parse(&["subscriber.deleted"]).is_err());
        assert!(EventSet::parse(&["webhook.test"]).is_err());
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "fec0::1",
            "2001::1",
            "100::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn endpoint_addresses_are_http_with_a_host_and_no_credentials() {
        assert!(endpoint_url("https://hooks.example.com/in").is_ok());
        assert!(endpoint_url("  http://127.0.0.1:8080/x ").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "example.com/hook",
            "",
            "https://",
            "http:/example.com/",
        ] {
            assert!(endpoint_url(bad).is_err(), "{bad:?}");
        }
        assert!(endpoint_url(&format!("https://e.com/{}", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn retries_span_a_day_then_stop() {
        let start = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut at = start;
        let mut attempts = 1;
        while let Some(next) = next_attempt(attempts, at) {
            assert!(next > at);
            at = next;
            attempts += 1;
        }
        assert_eq!(attempts, 8);
        assert!(at - start > chrono::Duration::hours(24));
        assert!(at - start < chrono::Duration::hours(28));
    }
}
