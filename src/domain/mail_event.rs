//! What mail providers and bounce mailboxes report after a send: bounces and complaints.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What happened to a copy after the relay took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The address does not exist or refuses mail for good.
    Bounce,
    /// A temporary failure (a full mailbox, a deferral that gave up).
    SoftBounce,
    /// The reader marked the message as spam.
    Complaint,
}

impl EventKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Bounce => "bounce",
            EventKind::SoftBounce => "soft_bounce",
            EventKind::Complaint => "complaint",
        }
    }
}

impl TryFrom<String> for EventKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "bounce" => Ok(EventKind::Bounce),
            "soft_bounce" => Ok(EventKind::SoftBounce),
            "complaint" => Ok(EventKind::Complaint),
            other => Err(format!("unknown mail event kind {other:?}")),
        }
    }
}

/// One report, as a provider or a bounce mailbox gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    /// Who reported it: `ses`, `sendgrid`, `postmark`, `mailgun`, `mailbox`.
    pub provider: &'static str,
    /// The report's own id: a report delivered twice is recorded once.
    pub event_id: String,
    /// What happened.
    pub kind: EventKind,
    /// The recipient's address.
    pub email: String,
    /// The copy's `Message-ID`, when the report carries it (names the issue and the reader).
    pub message_id: Option<String>,
    /// The copy's envelope sender, when the report carries it: a bounce address (VERP) names
    /// the exact delivery.
    pub return_path: Option<String>,
    /// The provider's or the receiving server's words (a DSN's diagnostic code, a feedback type).
    pub diagnostic: String,
    /// When it happened, as reported.
    pub occurred_at: DateTime<Utc>,
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The event was recorded before (a provider's retry): nothing more.
    Duplicate,
    /// The reader was marked bounced and the address suppressed.
    Bounced,
    /// The reader was marked complained and the address suppressed.
    Complained,
    /// A temporary failure was counted toward the bounce threshold.
    Counted,
    /// The temporary failures reached the bounce threshold: the reader was marked bounced.
    BouncedAtThreshold,
    /// Recorded; the reader had already left, or no reader has the address.
    NoChange,
}

impl Effect {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Duplicate => "duplicate",
            Effect::Bounced => "bounced",
            Effect::Complained => "complained",
            Effect::Counted => "counted",
            Effect::BouncedAtThreshold => "bounced_at_threshold",
            Effect::NoChange => "no_change",
        }
    }
}

/// A recorded event, as the admin and the API list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordedEvent {
    /// Its number.
    pub id: i64,
    /// Who reported it.
    pub provider: String,
    /// The report's own id.
    pub event_id: String,
    /// What happened.
    #[schema(value_type = String)]
    pub kind: String,
    /// The recipient.
    pub email: String,
    /// The reader, while they are on the list.
    pub subscriber_id: Option<i64>,
    /// The issue the copy belonged to, when known.
    pub issue_id: Option<i64>,
    /// The evidence: the provider's or the receiving server's words.
    pub diagnostic: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it arrived here.
    pub received_at: DateTime<Utc>,
    /// What it did.
    pub effect: String,
}

/// An address that is never mailed again until an editor lifts it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Suppression {
    /// The address.
    pub email: String,
    /// `bounce` or `complaint`.
    pub reason: String,
    /// Who reported it.
    pub provider: String,
    /// The evidence.
    pub diagnostic: String,
    /// Since when.
    pub created_at: DateTime<Utc>,
}
