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
}

impl SubscriberStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Active => "active",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
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
