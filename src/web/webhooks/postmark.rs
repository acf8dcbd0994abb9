//! Postmark's bounce and spam-complaint webhooks: credentials in the webhook URL (basic auth),
//! one record per request (`RecordType` `Bounce` or `SpamComplaint`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Parsed, Refusal, json_body};
use crate::domain::{EventKind, MailEvent};

pub(super) struct Settings {
    /// `user:password`, as basic auth carries it.
    credentials: SecretString,
}

impl Settings {
    pub(super) fn new(credentials: &SecretString) -> anyhow::Result<Settings> {
        if !credentials.expose_secret().contains(':') {
            anyhow::bail!(
                "configuration: key `postmark_webhook_credentials`: write it as user:password"
            );
        }
        Ok(Settings {
            credentials: credentials.clone(),
        })
    }

    pub(super) fn verify(
        &self,
        req: &actix_web::HttpRequest,
        body: &[u8],
    ) -> Result<Parsed, Refusal> {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| STANDARD.decode(v.trim()).ok())
            .ok_or(Refusal::Unauthorized("Basic credentials are required."))?;
        let expected = self.credentials.expose_secret().as_bytes();
        if !bool::from(given.ct_eq(expected)) {
            return Err(Refusal::Unauthorized("The credentials do not match."));
        }
        let record: Record = json_body(body)?;
        let kind = match (record.record_type.as_str(), record.kind.as_deref()) {
            ("SpamComplaint", _) => Some(EventKind::Complaint),
            ("Bounce", Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated")) => {
                Some(EventKind::Bounce)
            }
            ("Bounce", Some("SpamComplaint" | "SpamNotification")) => Some(EventKind::Complaint),
            ("Bounce", Some("SoftBounce" | "Transient" | "DnsError")) => {
                Some(EventKind::SoftBounce)
            }
            _ => None,
        };
        let Some(kind) = kind else {
            tracing::info!(record_type = %record.record_type, kind = ?record.kind, "postmark record ignored");
            return Ok(Parsed {
                events: Vec::new(),
                ignored: 1,
            });
        };
        let (Some(id), Some(email)) = (record.id, record.email) else {
            return Err(Refusal::Malformed(
                "A bounce record needs its ID and Email.".into(),
            ));
        };
        let occurred_at = record
            .bounced_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let diagnostic = [
            record.kind.as_deref(),
            record.description.as_deref(),
            record.details.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
        Ok(Parsed {
            events: vec![MailEvent {
                provider: "postmark",
                event_id: id.to_string(),
                kind,
                email,
                message_id: None,
                return_path: None,
                diagnostic,
                occurred_at,
            }],
            ignored: 0,
        })
    }
}

/// The fields of a Postmark bounce or spam-complaint record that matter here.
#[derive(Deserialize)]
struct Record {
    #[serde(rename = "RecordType")]
    record_type: String,
    #[serde(rename = "ID")]
    id: Option<serde_json::Number>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Email")]
    email: Option<String>,
    #[serde(rename = "BouncedAt")]
    bounced_at: Option<String>,
    #[serde(rename = "Description")]
    description: Option<String>,
    #[serde(rename = "Details")]
    details: Option<String>,
}
