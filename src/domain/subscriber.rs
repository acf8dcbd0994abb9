//! Subscriber lifecycle states and where consent came from.

use std::fmt;

/// Where a subscriber stands. Only `Active` subscribers are ever sent an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    /// Signed up, confirmation not yet clicked.
    Pending,
    /// Confirmed; receives issues.
    Active,
    /// Left the list.
    Unsubscribed,
    /// Mail to the address failed permanently.
    Bounced,
    /// The reader marked an issue as spam.
    Complained,
}

impl SubscriberStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Active => "active",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
            SubscriberStatus::Complained => "complained",
        }
    }
}

impl TryFrom<String> for SubscriberStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "pending" => Ok(SubscriberStatus::Pending),
            "active" => Ok(SubscriberStatus::Active),
            "unsubscribed" => Ok(SubscriberStatus::Unsubscribed),
            "bounced" => Ok(SubscriberStatus::Bounced),
            "complained" => Ok(SubscriberStatus::Complained),
            other => Err(format!("unknown subscriber status {other:?}")),
        }
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a subscriber's consent was given, kept as evidence beside its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentSource {
    /// The public signup form.
    Form,
    /// The JSON API.
    Api,
    /// Added by an editor in the admin.
    Admin,
    /// A CSV import.
    Import,
}

impl ConsentSource {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Form => "form",
            ConsentSource::Api => "api",
            ConsentSource::Admin => "admin",
            ConsentSource::Import => "import",
        }
    }
}

/// A new subscriber's public id. Time-ordered (UUIDv7), so a bulk import appends to the
/// id's index instead of scattering writes over it; unsubscribe links rest on the MAC, not on
/// the id being unguessable.
pub fn new_uid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A search of the list by address or name: `None` when blank; refused when longer than 254
/// characters or holding a control character (no address or name has one, and PostgreSQL
/// refuses a NUL in text outright).
pub fn search_text(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.chars().count() > 254 {
        return Err("The search text is too long (254 characters at most).");
    }
    if raw.chars().any(char::is_control) {
        return Err("The search text holds a control character.");
    }
    Ok(Some(raw.to_owned()).filter(|q| !q.trim().is_empty()))
}

/// Subscribers by status.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StatusCounts {
    /// Waiting for confirmation.
    pub pending: i64,
    /// Receiving issues.
    pub active: i64,
    /// Left.
    pub unsubscribed: i64,
    /// Undeliverable.
    pub bounced: i64,
    /// Marked an issue as spam.
    pub complained: i64,
}

impl StatusCounts {
    /// Everyone stored, whatever their status.
    pub fn total(&self) -> i64 {
        self.pending + self.active + self.unsubscribed + self.bounced + self.complained
    }
}

/// A reader on the list: their address, where they stand, and the evidence of consent.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Internal id.
    pub id: i64,
    /// Public random id; unsubscribe links derive from it.
    pub uid: uuid::Uuid,
    /// The address as given.
    pub email: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// Lifecycle state.
    pub status: SubscriberStatus,
    /// When consent was last given.
    pub consent_at: chrono::DateTime<chrono::Utc>,
    /// Where consent was last given (form, api, import, admin).
    pub consent_source: String,
    /// The address consent came from, when known.
    pub consent_ip: Option<String>,
    /// First signup.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Latest confirmation.
    pub confirmed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Latest unsubscription.
    pub unsubscribed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Issues the reader chose to skip before receiving again (a pause, 0 to 6).
    pub skip_issues: i32,
    /// What the reader said when leaving from their manage page.
    pub unsubscribe_reason: Option<String>,
}
