//! Pure types and rules, no I/O (but for the time-zone rules `zone` reads from the system's
//! database): once you hold one of these values, it is valid.

pub mod cadence;
mod import;
mod issue;
mod mail_event;
pub mod password;
pub mod saved_link;
pub mod send;
mod subscriber;
mod subscriber_email;
mod subscriber_name;
pub mod tag;
pub mod token;
pub mod webhook;
pub mod welcome;
pub mod zone;

pub use import::{ImportJob, ImportState, RowProblem};
pub use issue::{
    Issue, IssueDraft, IssueInput, IssueInputError, IssueLink, IssueStatus, MAX_BODY_BYTES,
    MAX_LINKS, Slug,
};
pub use mail_event::{Effect, EventKind, MailEvent, RecordedEvent, Suppression};
pub use subscriber::{
    ConsentSource, StatusCounts, Subscriber, SubscriberStatus, new_uid, search_text,
};
pub use subscriber_email::{EmailError, SubscriberEmail};
pub use subscriber_name::{NameError, SubscriberName};
