//! Building MIME messages: both parts, and the headers every mail to a reader carries.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use uuid::Uuid;

/// One email to one reader, rendered.
pub struct Email<'a> {
    /// The envelope sender (a bounce address naming the message), instead of the `From`.
    pub return_path: Option<&'a str>,
    /// Sender.
    pub from: &'a Mailbox,
    /// Recipient.
    pub to: Mailbox,
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
    /// The reader's one-click unsubscribe URL (RFC 8058).
    pub unsubscribe_url: &'a str,
    /// The domain after `@` in the `Message-ID`.
    pub id_domain: &'a str,
}

/// A message-building failure (an address or header lettre refuses).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the message: {0}")]
pub struct BuildError(pub String);

impl Email<'_> {
    /// The finished message: multipart/alternative, with `List-Unsubscribe`,
    /// `List-Unsubscribe-Post` and a fresh `Message-ID`.
    pub fn build(self) -> Result<Message, BuildError> {
        let mut builder = Message::builder();
        if let Some(path) = self.return_path {
            builder = builder.envelope(envelope_from(path, &self.to)?);
        }
        builder
            .from(self.from.clone())
            .to(self.to)
            .subject(self.subject)
            .date_now()
            .message_id(Some(format!("<{}@{}>", Uuid::new_v4(), self.id_domain)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{}>", self.unsubscribe_url),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(self.text, self.html))
            .map_err(|e| BuildError(e.to_string()))
    }
}

/// The envelope of a message to `to` whose bounces go to `return_path` rather than to its `From`.
pub fn envelope_from(
    return_path: &str,
    to: &Mailbox,
) -> Result<lettre::address::Envelope, BuildError> {
    let bad = |e: &dyn std::fmt::Display| BuildError(e.to_string());
    let from = return_path.parse().map_err(|e| bad(&e))?;
    lettre::address::Envelope::new(Some(from), vec![to.email.clone()]).map_err(|e| bad(&e))
}

/// A mailbox for a subscriber, with the name when there is one.
pub fn mailbox(email: &str, name: Option<&str>) -> Result<Mailbox, BuildError> {
    let address = email
        .parse()
        .map_err(|e: lettre::address::AddressError| BuildError(e.to_string()))?;
    Ok(Mailbox::new(name.map(str::to_owned), address))
}
