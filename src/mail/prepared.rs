//! A message encoded once and personalised per recipient by splicing, so that a
//! million-recipient send costs one render plus a memory copy per reader.
//!
//! Both parts are rendered with [`Slot`] marks where the reader's own text goes. The text
//! around the marks is quoted-printable encoded once; each chunk ends in a soft line break,
//! so a chunk and a reader's encoded value can be laid end to end and still be valid
//! quoted-printable. The headers common to every copy are encoded once by lettre.

use std::time::SystemTime;

use lettre::address::Envelope;
use lettre::message::header::{self, ContentType, HeaderName, HeaderValue, Headers, MimeVersion};
use lettre::message::{Mailbox, Mailboxes};
use quoted_printable::{Options, encode_with_options};
use uuid::Uuid;

use super::message::BuildError;

/// A place in a part where each reader gets their own text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// "Hi Ada," or "Hi,".
    Greeting,
    /// The reader's one-click unsubscribe URL.
    UnsubscribeUrl,
    /// The reader's "manage your subscription" URL.
    ManageUrl,
    /// The reader's tracked address of the n-th link (when readers' clicks are tracked).
    Link(u16),
}

/// Opens a slot mark.
const OPEN: char = '\u{E000}';
/// Closes a slot mark.
const CLOSE: char = '\u{E001}';

impl Slot {
    /// The mark a template renders in place of the reader's text: private-use characters
    /// that neither HTML escaping nor CSS inlining touch, and that no editor types.
    pub fn mark(self) -> String {
        let name = match self {
            Slot::Greeting => "greeting".to_owned(),
            Slot::UnsubscribeUrl => "unsubscribe".to_owned(),
            Slot::ManageUrl => "manage".to_owned(),
            Slot::Link(n) => format!("link{n}"),
        };
        format!("{OPEN}{name}{CLOSE}")
    }

    /// The slot a mark's name stands for.
    fn named(name: &str) -> Option<Slot> {
        Some(match name {
            "greeting" => Slot::Greeting,
            "unsubscribe" => Slot::UnsubscribeUrl,
            "manage" => Slot::ManageUrl,
            _ => Slot::Link(name.strip_prefix("link")?.parse().ok()?),
        })
    }
}

/// How the links of a message are tracked per reader: the address of link n for one reader.
pub type LinkSigner = std::sync::Arc<dyn Fn(usize, Uuid) -> String + Send + Sync>;

/// What a part is, for escaping the reader's text inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Html,
}

#[derive(Clone, Debug)]
enum Piece {
    /// Text as rendered, and quoted-printable ending in a line break.
    Fixed {
        raw: String,
        encoded: String,
    },
    Slot(Slot),
}

fn fixed(raw: &str) -> Piece {
    Piece::Fixed {
        raw: raw.to_owned(),
        encoded: qp(raw),
    }
}

/// One part of the message, split at its slots.
#[derive(Clone, Debug)]
struct Part {
    kind: Kind,
    pieces: Vec<Piece>,
}

/// The reader one copy goes to.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    /// Their address.
    pub email: &'a str,
    /// Their name, when known.
    pub name: Option<&'a str>,
    /// Their public id: `Message-ID` derives from it.
    pub uid: Uuid,
    /// Their one-click unsubscribe URL.
    pub unsubscribe_url: &'a str,
    /// Their "manage your subscription" URL.
    pub manage_url: &'a str,
    /// The envelope sender of this copy (a bounce address naming it), instead of the `From`.
    pub return_path: Option<&'a str>,
}

/// Everything the headers say, for [`PreparedMessage::new`].
#[derive(Clone, Debug)]
pub struct Heading<'a> {
    /// The sender.
    pub from: &'a Mailbox,
    /// Where replies go, if not to the sender.
    pub reply_to: Option<&'a Mailbox>,
    /// Subject line.
    pub subject: &'a str,
    /// The `Date` of every copy.
    pub date: SystemTime,
    /// `List-Id` value, e.g. `"Name" <name.example.com>`.
    pub list_id: &'a str,
    /// Mailbox for mail unsubscribes (`mailto:` in `List-Unsubscribe`), if any.
    pub unsubscribe_mailto: Option<&'a str>,
    /// The part of each `Message-ID` before the reader's id.
    pub id_prefix: Uuid,
    /// The domain after `@` in `Message-ID`.
    pub id_domain: &'a str,
}

/// A message ready to be personalised for any number of readers.
#[derive(Clone)]
pub struct PreparedMessage {
    /// Signs each reader's tracked links, when readers' clicks are tracked.
    links: Option<LinkSigner>,
    head: String,
    boundary: String,
    parts: [Part; 2],
    from: lettre::Address,
    unsubscribe_mailto: Option<String>,
    id_prefix: String,
    id_domain: String,
}

/// Quoted-printable for one chunk: CRLF line ends, lines of at most 75 characters, then a
/// soft line break (so the 76-character limit holds) unless the chunk ends a line itself.
fn qp(chunk: &str) -> String {
    let normalized = chunk.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = encode_with_options(normalized, Options::default().line_length_limit(75));
    if !out.is_empty() && !out.ends_with("\r\n") {
        out.push_str("=\r\n");
    }
    out
}

impl Part {
    fn split(kind: Kind, rendered: &str) -> Part {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        let mut searched = 0;
        while let Some(open) = rest[searched..].find(OPEN).map(|at| at + searched) {
            let name_at = open + OPEN.len_utf8();
            let slot = rest[name_at..].find(CLOSE).and_then(|len| {
                Slot::named(&rest[name_at..name_at + len]).map(|slot| (slot, name_at + len))
            });
            let Some((slot, close)) = slot else {
                // Not one of ours: kept as text.
                searched = name_at;
                continue;
            };
            pieces.push(fixed(&rest[..open]));
            pieces.push(Piece::Slot(slot));
            rest = &rest[close + CLOSE.len_utf8()..];
            searched = 0;
        }
        pieces.push(fixed(rest));
        Part { kind, pieces }
    }

    fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Text => "text/plain; charset=utf-8",
            Kind::Html => "text/html; charset=utf-8",
        }
    }

    /// The reader's text for a slot, escaped for this part.
    fn value(&self, slot: Slot, reader: &Reader<'_>, links: Option<&LinkSigner>) -> String {
        let value = match slot {
            Slot::Greeting => greeting(reader.name),
            Slot::UnsubscribeUrl => reader.unsubscribe_url.to_owned(),
            Slot::ManageUrl => reader.manage_url.to_owned(),
            Slot::Link(n) => links
                .map(|sign| sign(n.into(), reader.uid))
                .unwrap_or_default(),
        };
        match self.kind {
            Kind::Text => value,
            Kind::Html => askama::filters::escape(value, askama::filters::Html)
                .map(|safe| safe.to_string())
                .unwrap_or_default(),
        }
    }

    /// Appends this part, quoted-printable, for one reader.
    fn write(&self, out: &mut Vec<u8>, reader: &Reader<'_>, links: Option<&LinkSigner>) {
        for piece in &self.pieces {
            match piece {
                Piece::Fixed { encoded, .. } => out.extend_from_slice(encoded.as_bytes()),
                Piece::Slot(slot) => {
                    out.extend_from_slice(qp(&self.value(*slot, reader, links)).as_bytes())
                }
            }
        }
    }

    /// This part as one reader sees it, decoded.
    fn decoded(&self, reader: &Reader<'_>, links: Option<&LinkSigner>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Fixed { raw, .. } => out.push_str(raw),
                Piece::Slot(slot) => out.push_str(&self.value(*slot, reader, links)),
            }
        }
        out
    }
}

/// "Hi Ada," when the name is known, "Hi," otherwise.
pub fn greeting(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("Hi {name},"),
        None => "Hi,".to_owned(),
    }
}

fn bad(e: impl std::fmt::Display) -> BuildError {
    BuildError(e.to_string())
}

impl std::fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("head", &self.head)
            .field("tracked", &self.links.is_some())
            .finish_non_exhaustive()
    }
}

impl PreparedMessage {
    /// Encodes the common headers and both parts once. `text` and `html` carry [`Slot`] marks.
    pub fn new(head: &Heading<'_>, text: &str, html: &str) -> Result<PreparedMessage, BuildError> {
        let boundary = format!("=_fortnight_{}", Uuid::new_v4().simple());
        let mut headers = Headers::new();
        headers.set(header::From::from(Mailboxes::from(head.from.clone())));
        if let Some(reply_to) = head.reply_to {
            headers.set(header::ReplyTo::from(Mailboxes::from(reply_to.clone())));
        }
        headers.set(header::Subject::from(head.subject.to_owned()));
        headers.set(header::Date::new(head.date));
        headers.set(MimeVersion::new(1, 0));
        for (name, value) in [
            ("List-Id", head.list_id.to_owned()),
            (
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ),
            ("Precedence", "bulk".to_owned()),
        ] {
            headers.insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str(name),
                value,
            ));
        }
        headers.set(
            ContentType::parse(&format!("multipart/alternative; boundary=\"{boundary}\""))
                .map_err(bad)?,
        );
        Ok(PreparedMessage {
            links: None,
            head: headers.to_string(),
            boundary,
            parts: [Part::split(Kind::Text, text), Part::split(Kind::Html, html)],
            from: head.from.email.clone(),
            unsubscribe_mailto: head.unsubscribe_mailto.map(str::to_owned),
            id_prefix: head.id_prefix.simple().to_string(),
            id_domain: head.id_domain.to_owned(),
        })
    }

    /// The message with each reader's tracked links made by `links` (its [`Slot::Link`] marks).
    pub fn with_links(mut self, links: LinkSigner) -> PreparedMessage {
        self.links = Some(links);
        self
    }

    /// The `Message-ID` of the copy for the reader with this id: the same on every try.
    pub fn message_id(&self, reader: Uuid) -> String {
        format!(
            "<{}.{}@{}>",
            self.id_prefix,
            reader.simple(),
            self.id_domain
        )
    }

    /// The finished copy for one reader, and its SMTP envelope.
    pub fn for_reader(&self, reader: &Reader<'_>) -> Result<(Envelope, Vec<u8>), BuildError> {
        let to: Mailbox = super::message::mailbox(reader.email, reader.name)?;
        let from = match reader.return_path {
            Some(path) => path.parse().map_err(bad)?,
            None => self.from.clone(),
        };
        let envelope = Envelope::new(Some(from), vec![to.email.clone()]).map_err(bad)?;
        let mut own = Headers::with_capacity(3);
        own.set(header::To::from(Mailboxes::from(to)));
        own.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Message-ID"),
            self.message_id(reader.uid),
        ));
        let mut unsubscribe = format!("<{}>", reader.unsubscribe_url);
        if let Some(mailto) = &self.unsubscribe_mailto {
            // The subject carries the reader's signed token (the last part of the link), so a
            // request mailed by anyone else names nobody.
            let token = reader.unsubscribe_url.rsplit('/').next().unwrap_or("");
            unsubscribe.push_str(&format!(
                ", <mailto:{mailto}?subject=unsubscribe%20{token}>"
            ));
        }
        own.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            unsubscribe,
        ));
        let mut out = Vec::with_capacity(self.size_hint());
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(own.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        for part in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(part.content_type().as_bytes());
            out.extend_from_slice(b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
            part.write(&mut out, reader, self.links.as_ref());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        Ok((envelope, out))
    }

    /// The text and HTML parts as one reader sees them: what a preview shows.
    pub fn parts_for(&self, reader: &Reader<'_>) -> (String, String) {
        (
            self.parts[0].decoded(reader, self.links.as_ref()),
            self.parts[1].decoded(reader, self.links.as_ref()),
        )
    }

    fn size_hint(&self) -> usize {
        let body: usize = self
            .parts
            .iter()
            .flat_map(|p| &p.pieces)
            .map(|piece| match piece {
                Piece::Fixed { encoded, .. } => encoded.len(),
                Piece::Slot(_) => 160,
            })
            .sum();
        self.head.len() + body + 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_quoted_printable_decodes_to_the_whole() {
        let long = "é".repeat(100) + " = tail  ";
        let whole = format!("{long}\nline two\n");
        let spliced = qp(&long[..37 * 2]) + &qp(&long[37 * 2..]) + &qp("\nline two\n");
        for line in spliced.split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
        }
        let decoded =
            quoted_printable::decode(&spliced, quoted_printable::ParseMode::Strict).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            whole.replace('\n', "\r\n")
        );
    }

    #[test]
    fn greets_by_name_or_plainly() {
        assert_eq!(greeting(Some("Ada")), "Hi Ada,");
        assert_eq!(greeting(Some("  ")), "Hi,");
        assert_eq!(greeting(None), "Hi,");
    }
}
