//! SendGrid's Event Webhook, signed: `X-Twilio-Email-Event-Webhook-Signature` is an ECDSA
//! (P-256, SHA-256) signature, base64 DER, over `X-Twilio-Email-Event-Webhook-Timestamp`
//! followed by the raw body, under the key SendGrid shows when signing is turned on. The body
//! is an array of events: `bounce` (type `bounce` or `blocked`), `dropped` and `spamreport`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

use super::{Parsed, Refusal, fresh, json_body};
use crate::domain::{EventKind, MailEvent};

const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

pub(super) struct Settings {
    key: VerifyingKey,
}

impl Settings {
    pub(super) fn new(key: &str) -> anyhow::Result<Settings> {
        let bad = || {
            anyhow::anyhow!(
                "configuration: key `sendgrid_webhook_public_key`: not SendGrid's base64 P-256 public key"
            )
        };
        let der = STANDARD.decode(key.trim()).map_err(|_| bad())?;
        let key = VerifyingKey::from_public_key_der(&der).map_err(|_| bad())?;
        Ok(Settings { key })
    }

    pub(super) fn verify(
        &self,
        req: &actix_web::HttpRequest,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
        tolerance: chrono::Duration,
    ) -> Result<Parsed, Refusal> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let (Some(signature), Some(timestamp)) = (header(SIGNATURE), header(TIMESTAMP)) else {
            return Err(Refusal::Unauthorized(
                "The signature and timestamp headers are required.",
            ));
        };
        let signature = STANDARD
            .decode(signature)
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .ok_or(Refusal::Unauthorized(
                "The signature is not base64 DER ECDSA.",
            ))?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.key
            .verify(&signed, &signature)
            .map_err(|_| Refusal::Unauthorized("The signature does not match."))?;
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| Refusal::Unauthorized("The timestamp is not a number."))?;
        fresh(seconds, now, tolerance)?;
        let events: Vec<Event> = json_body(body)?;
        let mut parsed = Parsed {
            events: Vec::new(),
            ignored: 0,
        };
        for event in events {
            let reason = event.reason.clone().unwrap_or_default();
            let kind = match (event.event.as_str(), event.kind.as_deref()) {
                ("bounce", Some("blocked")) => Some(EventKind::SoftBounce),
                ("bounce", _) => Some(EventKind::Bounce),
                ("spamreport", _) => Some(EventKind::Complaint),
                ("dropped", _) if reason.contains("Spam") => Some(EventKind::Complaint),
                ("dropped", _) if reason.contains("Bounced") || reason.contains("Invalid") => {
                    Some(EventKind::Bounce)
                }
                _ => None,
            };
            let Some(kind) = kind else {
                tracing::info!(event = %event.event, "sendgrid event ignored");
                parsed.ignored += 1;
                continue;
            };
            let (Some(id), Some(email)) = (event.sg_event_id, event.email) else {
                // One incomplete event does not make SendGrid retry (and lose) the whole batch.
                tracing::warn!(event = %event.event, "sendgrid event without sg_event_id or email ignored");
                parsed.ignored += 1;
                continue;
            };
            let diagnostic = [
                event.kind.unwrap_or_default(),
                event.status.unwrap_or_default(),
                reason,
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
            parsed.events.push(MailEvent {
                provider: "sendgrid",
                event_id: id,
                kind,
                email,
                message_id: event.smtp_id,
                return_path: None,
                diagnostic,
                occurred_at: event
                    .timestamp
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .unwrap_or(now),
            });
        }
        Ok(parsed)
    }
}

#[derive(Deserialize)]
struct Event {
    event: String,
    email: Option<String>,
    timestamp: Option<i64>,
    #[serde(rename = "smtp-id")]
    smtp_id: Option<String>,
    sg_event_id: Option<String>,
    reason: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}
