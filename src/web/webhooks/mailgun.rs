//! Mailgun's webhooks: the body carries `signature` (timestamp, token, and their HMAC-SHA256
//! under the webhook signing key) and one `event-data`: `failed` (permanent or temporary) and
//! `complained`.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::{Parsed, Refusal, fresh, json_body};
use crate::domain::{EventKind, MailEvent};

pub(super) struct Settings {
    key: SecretString,
}

impl Settings {
    pub(super) fn new(key: &SecretString) -> Settings {
        Settings { key: key.clone() }
    }

    /// Checks the signature and its timestamp; answers the events with the signature's token
    /// and the event id it was used for (the caller refuses a token reused for another event).
    pub(super) fn verify(
        &self,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
        tolerance: chrono::Duration,
    ) -> Result<(Parsed, String, String), Refusal> {
        let payload: Payload = json_body(body)?;
        let signature = payload.signature;
        let given = hex_decode(&signature.signature)
            .ok_or(Refusal::Unauthorized("The signature is not hex."))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(signature.timestamp.as_bytes());
        mac.update(signature.token.as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| Refusal::Unauthorized("The signature does not match."))?;
        let seconds: i64 = signature
            .timestamp
            .parse()
            .map_err(|_| Refusal::Unauthorized("The timestamp is not a number."))?;
        fresh(seconds, now, tolerance)?;
        let data = payload.event_data;
        let token = signature.token;
        let signed_for = data.id.clone().unwrap_or_default();
        let kind = match (data.event.as_str(), data.severity.as_deref()) {
            ("failed", Some("permanent")) => Some(EventKind::Bounce),
            ("failed", Some("temporary")) => Some(EventKind::SoftBounce),
            ("complained", _) => Some(EventKind::Complaint),
            _ => None,
        };
        let Some(kind) = kind else {
            tracing::info!(event = %data.event, "mailgun event ignored");
            let parsed = Parsed {
                events: Vec::new(),
                ignored: 1,
            };
            return Ok((parsed, token, signed_for));
        };
        let (Some(id), Some(email)) = (data.id, data.recipient) else {
            return Err(Refusal::Malformed(
                "A failed or complained event needs its id and recipient.".into(),
            ));
        };
        let occurred_at = data
            .timestamp
            .and_then(|t| chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64))
            .unwrap_or(now);
        let status = data.delivery_status.unwrap_or_default();
        let diagnostic = [
            data.reason.unwrap_or_default(),
            status.code.map(|c| c.to_string()).unwrap_or_default(),
            status.message.unwrap_or_default(),
            status.description.unwrap_or_default(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
        let return_path = data.envelope.and_then(|e| e.sender);
        let message_id = data
            .message
            .and_then(|m| m.headers)
            .and_then(|h| h.message_id)
            .map(|id| format!("<{}>", id.trim_start_matches('<').trim_end_matches('>')));
        let parsed = Parsed {
            events: vec![MailEvent {
                provider: "mailgun",
                event_id: id,
                kind,
                email,
                message_id,
                return_path,
                diagnostic,
                occurred_at,
            }],
            ignored: 0,
        };
        Ok((parsed, token, signed_for))
    }
}

fn hex_decode(raw: &str) -> Option<Vec<u8>> {
    if !raw.len().is_multiple_of(2) || !raw.is_ascii() {
        return None;
    }
    (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok())
        .collect()
}

#[derive(Deserialize)]
struct Payload {
    signature: Signature,
    #[serde(rename = "event-data")]
    event_data: EventData,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct EventData {
    event: String,
    id: Option<String>,
    timestamp: Option<f64>,
    severity: Option<String>,
    reason: Option<String>,
    recipient: Option<String>,
    message: Option<Message>,
    #[serde(rename = "delivery-status")]
    delivery_status: Option<DeliveryStatus>,
    envelope: Option<Envelope>,
}

#[derive(Deserialize)]
struct Envelope {
    sender: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    headers: Option<Headers>,
}

#[derive(Deserialize)]
struct Headers {
    #[serde(rename = "message-id")]
    message_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeliveryStatus {
    code: Option<i64>,
    message: Option<String>,
    description: Option<String>,
}
