//! Amazon SES bounce and complaint notifications, delivered by SNS.
//!
//! Every SNS message is signed: the fields named by its type, as `name\nvalue\n` lines in a
//! fixed order, signed with RSA (SHA-1 for `SignatureVersion` 1, SHA-256 for 2) by the key of
//! the certificate at `SigningCertURL`. The certificate is fetched over HTTPS only from an SNS
//! host (`sns.<region>.amazonaws.com`), checked by the system's web roots, and cached. Messages
//! from another topic than `ses_sns_topic_arn` are refused; a subscription confirmation for it
//! is confirmed by fetching its `SubscribeURL` (an SNS host too).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::HttpResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
};
use serde::Deserialize;

use super::{Parsed, Refusal, json_body};
use crate::domain::{EventKind, MailEvent};

/// Certificates kept (SNS rotates them rarely; a handful of URLs at most).
const CACHE_LIMIT: usize = 16;

pub(super) struct Settings {
    topic_arn: String,
    http: reqwest::Client,
    /// Certificates on `https://127.0.0.1` are accepted (the test-only authority is set).
    local: bool,
    cache: Mutex<HashMap<String, Arc<CertificateDer<'static>>>>,
}

pub(super) enum Verified {
    Events(Parsed),
    Answered(HttpResponse),
}

impl Settings {
    pub(super) fn new(topic_arn: &str, test_authority: Option<&Path>) -> anyhow::Result<Settings> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = test_authority {
            let ca = CertificateDer::from_pem_file(path).map_err(|e| {
                anyhow::anyhow!(
                    "configuration: key `sns_test_certificate_authority`: cannot read {}: {e}",
                    path.display()
                )
            })?;
            roots.add(ca)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Settings {
            topic_arn: topic_arn.to_owned(),
            http,
            local: test_authority.is_some(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `raw` is an HTTPS URL on an SNS host (or, in tests, on 127.0.0.1).
    fn trusted_url(&self, raw: &str) -> bool {
        let Ok(url) = url::Url::parse(raw) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        if url.scheme() != "https" || url.username() != "" || url.password().is_some() {
            return false;
        }
        if self.local && host == "127.0.0.1" {
            return true;
        }
        if url.query().is_some() && !raw.contains("Action=ConfirmSubscription") {
            return false;
        }
        let region = host.strip_prefix("sns.").and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
        });
        region.is_some_and(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }) && url.port().is_none()
    }

    /// A signing certificate's URL: an SNS host's `/SimpleNotificationService-….pem`.
    fn certificate_url(&self, raw: &str) -> bool {
        if !self.trusted_url(raw) {
            return false;
        }
        let Ok(url) = url::Url::parse(raw) else {
            return false;
        };
        (self.local && url.host_str() == Some("127.0.0.1"))
            || (url.query().is_none()
                && url
                    .path()
                    .strip_prefix("/SimpleNotificationService-")
                    .and_then(|rest| rest.strip_suffix(".pem"))
                    .is_some_and(|id| {
                        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
                    }))
    }

    async fn certificate(&self, url: &str) -> Result<Arc<CertificateDer<'static>>, Refusal> {
        if let Some(cert) = self.cache.lock().expect("cache lock").get(url) {
            return Ok(cert.clone());
        }
        let unavailable = |e: String| Refusal::Unavailable(format!("SNS certificate {url}: {e}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("answered {}", response.status())));
        }
        let pem = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let cert = CertificateDer::from_pem_slice(&pem)
            .map_err(|_| Refusal::Unauthorized("The signing certificate cannot be read."))?;
        let cert = Arc::new(cert.into_owned());
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(url.to_owned(), cert.clone());
        Ok(cert)
    }

    pub(super) async fn verify(
        &self,
        req: &actix_web::HttpRequest,
        body: &[u8],
    ) -> Result<Verified, Refusal> {
        let envelope: Envelope = json_body(body)?;
        if let Some(kind) = req
            .headers()
            .get("x-amz-sns-message-type")
            .and_then(|v| v.to_str().ok())
            && kind != envelope.kind
        {
            return Err(Refusal::Malformed(
                "The message type header and body disagree.".into(),
            ));
        }
        if envelope.topic_arn != self.topic_arn {
            return Err(Refusal::Forbidden("The message is from another SNS topic."));
        }
        if !self.certificate_url(&envelope.signing_cert_url) {
            return Err(Refusal::Forbidden(
                "The signing certificate is not on an SNS host.",
            ));
        }
        let signed = envelope.string_to_sign()?;
        let signature = STANDARD
            .decode(envelope.signature.trim())
            .map_err(|_| Refusal::Unauthorized("The signature is not base64."))?;
        let cert = self.certificate(&envelope.signing_cert_url).await?;
        let cert = webpki::EndEntityCert::try_from(cert.as_ref())
            .map_err(|_| Refusal::Unauthorized("The signing certificate cannot be read."))?;
        let algorithm: &dyn SignatureVerificationAlgorithm =
            match envelope.signature_version.as_str() {
                "1" => &RsaPkcs1Sha1,
                "2" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                _ => return Err(Refusal::Unauthorized("Unknown signature version.")),
            };
        cert.verify_signature(algorithm, signed.as_bytes(), &signature)
            .map_err(|_| Refusal::Unauthorized("The signature does not match."))?;
        match envelope.kind.as_str() {
            "SubscriptionConfirmation" => {
                let url = envelope.subscribe_url.as_deref().unwrap_or("");
                if !self.trusted_url(url) {
                    return Err(Refusal::Forbidden(
                        "The SubscribeURL is not on an SNS host.",
                    ));
                }
                let confirmed = self.http.get(url).send().await.map_err(|e| {
                    Refusal::Unavailable(format!("confirming the subscription: {e}"))
                })?;
                if !confirmed.status().is_success() {
                    return Err(Refusal::Unavailable(format!(
                        "confirming the subscription: SNS answered {}",
                        confirmed.status()
                    )));
                }
                tracing::info!(topic = %envelope.topic_arn, "SNS subscription confirmed");
                Ok(Verified::Answered(
                    HttpResponse::Ok().json(serde_json::json!({ "subscribed": true })),
                ))
            }
            "Notification" => Ok(Verified::Events(notification(&envelope)?)),
            other => {
                tracing::info!(kind = other, "SNS message ignored");
                Ok(Verified::Events(Parsed {
                    events: Vec::new(),
                    ignored: 1,
                }))
            }
        }
    }
}

/// SHA-1 RSA, which webpki does not offer and SNS's `SignatureVersion` 1 uses.
#[derive(Debug)]
struct RsaPkcs1Sha1;

impl SignatureVerificationAlgorithm for RsaPkcs1Sha1 {
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_PKCS1_SHA256
    }

    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }
}

/// An SNS message.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    signature_version: String,
    #[serde(rename = "Signature")]
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
}

impl Envelope {
    /// The text SNS signs: the type's fields as `name\nvalue\n`, in this order.
    fn string_to_sign(&self) -> Result<String, Refusal> {
        let missing = |name: &str| Refusal::Malformed(format!("The SNS message has no {name}."));
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("TopicArn", &self.topic_arn));
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                fields.push((
                    "SubscribeURL",
                    self.subscribe_url
                        .as_deref()
                        .ok_or_else(|| missing("SubscribeURL"))?,
                ));
                fields.push(("Timestamp", &self.timestamp));
                fields.push((
                    "Token",
                    self.token.as_deref().ok_or_else(|| missing("Token"))?,
                ));
                fields.push(("TopicArn", &self.topic_arn));
            }
            _ => return Err(Refusal::Malformed("Unknown SNS message type.".into())),
        }
        fields.push(("Type", &self.kind));
        Ok(fields
            .into_iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect())
    }
}

/// The SES notification inside an SNS message: one event per recipient.
fn notification(envelope: &Envelope) -> Result<Parsed, Refusal> {
    let note: Notification = serde_json::from_str(&envelope.message)
        .map_err(|e| Refusal::Malformed(format!("The SES notification is not JSON: {e}")))?;
    let kind = note
        .notification_type
        .or(note.event_type)
        .unwrap_or_default();
    let (message_id, return_path) = match note.mail {
        Some(mail) => (mail.common_headers.and_then(|h| h.message_id), mail.source),
        None => (None, None),
    };
    let at = |raw: Option<&str>| {
        raw.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now)
    };
    let mut parsed = Parsed {
        events: Vec::new(),
        ignored: 0,
    };
    match (kind.as_str(), note.bounce, note.complaint) {
        ("Bounce", Some(bounce), _) => {
            let event_kind = match bounce.bounce_type.as_str() {
                "Permanent" => EventKind::Bounce,
                _ => EventKind::SoftBounce,
            };
            let id = bounce
                .feedback_id
                .unwrap_or_else(|| envelope.message_id.clone());
            for recipient in bounce.bounced_recipients {
                let diagnostic = [
                    format!(
                        "{} {}",
                        bounce.bounce_type,
                        bounce.bounce_sub_type.clone().unwrap_or_default()
                    )
                    .trim()
                    .to_owned(),
                    recipient.diagnostic_code.unwrap_or_default(),
                ]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
                parsed.events.push(MailEvent {
                    provider: "ses",
                    event_id: format!("{id}/{}", recipient.email_address.to_lowercase()),
                    kind: event_kind,
                    email: recipient.email_address,
                    message_id: message_id.clone(),
                    return_path: return_path.clone(),
                    diagnostic,
                    occurred_at: at(bounce.timestamp.as_deref()),
                });
            }
        }
        ("Complaint", _, Some(complaint)) => {
            let id = complaint
                .feedback_id
                .unwrap_or_else(|| envelope.message_id.clone());
            for recipient in complaint.complained_recipients {
                parsed.events.push(MailEvent {
                    provider: "ses",
                    event_id: format!("{id}/{}", recipient.email_address.to_lowercase()),
                    kind: EventKind::Complaint,
                    email: recipient.email_address,
                    message_id: message_id.clone(),
                    return_path: return_path.clone(),
                    diagnostic: complaint
                        .complaint_feedback_type
                        .clone()
                        .unwrap_or_else(|| "complaint".into()),
                    occurred_at: at(complaint.timestamp.as_deref()),
                });
            }
        }
        ("Bounce" | "Complaint", _, _) => {
            return Err(Refusal::Malformed(format!(
                "The {kind} notification has no {} object.",
                kind.to_lowercase()
            )));
        }
        (other, _, _) => {
            tracing::info!(kind = other, "SES notification ignored");
            parsed.ignored = 1;
        }
    }
    Ok(parsed)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    notification_type: Option<String>,
    event_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    mail: Option<Mail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    bounce_sub_type: Option<String>,
    bounced_recipients: Vec<Recipient>,
    timestamp: Option<String>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    complained_recipients: Vec<Recipient>,
    timestamp: Option<String>,
    feedback_id: Option<String>,
    complaint_feedback_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    diagnostic_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    common_headers: Option<CommonHeaders>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommonHeaders {
    message_id: Option<String>,
}
