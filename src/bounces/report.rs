//! Reading what arrives in a bounce mailbox: delivery status notifications (RFC 3464), spam
//! complaints in the Abuse Reporting Format (RFC 5965), and unsubscribe requests sent to the
//! `List-Unsubscribe` mailto address. Parsed with `mail-parser`.
//!
//! A report names its copy three ways, tried in this order by the recorder: the bounce address
//! (VERP) the report was sent back to, which survives a report whose body a server mangled;
//! the original `Message-ID`, which names the issue and the reader; the recipient's address.

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders as _};
use sha2::{Digest as _, Sha256};

use crate::domain::token::LinkKey;
use crate::domain::{EventKind, MailEvent};

/// The provider name mailbox reports are recorded under.
pub const PROVIDER: &str = "mailbox";

/// What one message in the mailbox is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Bounces or a complaint, one event per recipient reported.
    Events(Vec<MailEvent>),
    /// A reader asked by mail to leave the list (RFC 2369 `mailto:`), with the signed token
    /// their copy's `List-Unsubscribe` put in the subject.
    Unsubscribe {
        /// The reader's public id, from the token.
        uid: uuid::Uuid,
    },
    /// Nothing to act on: an autoreply, a delivery success, spam; why, for the log.
    Ignored(String),
}

/// What a report is read against.
#[derive(Debug, Clone, Copy)]
pub struct Addresses<'a> {
    /// `bounce_address`: reports sent back to `bounce+TOKEN@…` name their copy.
    pub bounce: Option<&'a str>,
    /// `list_unsubscribe_mailto`: mail to it is an unsubscribe request.
    pub unsubscribe: Option<&'a str>,
    /// The key bounce addresses and unsubscribe tokens are signed with: only an address or a
    /// token it signed names a copy or a reader.
    pub key: &'a LinkKey,
}

/// The longest event id kept as it is; a longer `Message-ID` is recorded by its hash.
const ID_MAX: usize = 200;
/// The longest address kept.
const ADDRESS_MAX: usize = 320;

/// Reads one raw message. `received` dates a report that carries no date of its own.
pub fn read(raw: &[u8], addresses: Addresses<'_>, received: DateTime<Utc>) -> Report {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Report::Ignored("not a mail message".into());
    };
    let id = match message.message_id().map(clean) {
        Some(id) if !id.is_empty() && id.len() <= ID_MAX => format!("<{id}>"),
        Some(id) if !id.is_empty() => format!("sha256:{}", hex(&Sha256::digest(id.as_bytes()))),
        _ => format!("sha256:{}", hex(&Sha256::digest(raw))),
    };
    let occurred_at = message
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .unwrap_or(received);
    let envelope_to = envelope_addresses(&message);
    // A bounce address counts only when its token is one this instance signed.
    let signed = |address: &String| {
        addresses
            .bounce
            .is_some_and(|bounce| addresses.key.verp_named(bounce, address).is_some())
    };
    let verp = envelope_to.iter().find(|a| signed(a)).cloned();
    let mut found = Found::default();
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let kind = (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase(),
        );
        match (kind.0.as_str(), kind.1.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                found.dsn = Some(delivery_status(part.contents()));
            }
            ("message", "feedback-report") => {
                found.feedback = Some(fields(part.contents()));
            }
            ("text", "rfc822-headers") | ("message", "global-headers") => {
                found
                    .original
                    .get_or_insert_with(|| original(part.contents()));
            }
            ("message", "rfc822" | "global") => {
                if let Some(inner) = part.message() {
                    found
                        .original
                        .get_or_insert_with(|| original(inner.raw_message()));
                }
            }
            _ => {}
        }
    }
    let original = found.original.unwrap_or_default();
    let event = |n: usize, kind: EventKind, email: String, diagnostic: String, path| MailEvent {
        provider: PROVIDER,
        event_id: if n == 0 {
            id.clone()
        } else {
            format!("{id}#{n}")
        },
        kind,
        email: clean(&email).chars().take(ADDRESS_MAX).collect(),
        message_id: original.message_id.clone(),
        return_path: path,
        diagnostic: truncate(&clean(&diagnostic)),
        occurred_at,
    };

    if let Some(feedback) = found.feedback {
        // A complaint: the feedback report names the original envelope; the original's
        // headers name the reader and the copy. Only abuse (and fraud) reports are complaints:
        // DMARC failure reports, "not spam" and the rest are not about the reader.
        let feedback_type = feedback
            .get("feedback-type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(feedback_type.as_str(), "abuse" | "fraud") {
            return Report::Ignored(format!(
                "a feedback report of type {feedback_type:?}, not a complaint"
            ));
        }
        let email = feedback
            .get("original-rcpt-to")
            .map(strip_address)
            .or_else(|| original.to.clone())
            .unwrap_or_default();
        let path = feedback
            .get("original-mail-from")
            .map(strip_address)
            .filter(signed)
            .or_else(|| original.return_path.clone().filter(signed))
            .or(verp);
        if email.is_empty() && path.is_none() && original.message_id.is_none() {
            return Report::Ignored("a feedback report that names no recipient".into());
        }
        let diagnostic = format!("feedback report: {feedback_type}");
        return Report::Events(vec![event(
            0,
            EventKind::Complaint,
            email,
            diagnostic,
            path,
        )]);
    }

    if let Some(recipients) = found.dsn {
        let mut events = Vec::new();
        for (n, recipient) in recipients.iter().enumerate() {
            let kind = match recipient.action.as_deref() {
                Some("failed") => match recipient.status_class() {
                    Some('4') => EventKind::SoftBounce,
                    _ => EventKind::Bounce,
                },
                Some("delayed") => EventKind::SoftBounce,
                Some(_) => continue, // delivered, relayed, expanded
                None => match recipient.status_class() {
                    Some('5') => EventKind::Bounce,
                    Some('4') => EventKind::SoftBounce,
                    _ => continue,
                },
            };
            let email = recipient
                .final_recipient
                .clone()
                .or_else(|| recipient.original_recipient.clone())
                .or_else(|| original.to.clone())
                .unwrap_or_default();
            let path = verp
                .clone()
                .or_else(|| original.return_path.clone().filter(signed));
            events.push(event(n, kind, email, recipient.diagnostic(), path));
        }
        if !events.is_empty() {
            return Report::Events(events);
        }
        if !recipients.is_empty() {
            return Report::Ignored("a delivery status notification of no failure".into());
        }
    }

    // A bounce without a readable status part, sent back to one of our bounce addresses by a
    // mail server (not a person's autoreply): the address names the copy; an SMTP reply in
    // its text (`550 5.1.1 …`, outside the quoted original) says whether it is final.
    if let Some(path) = verp {
        if !from_a_mail_server(&message) {
            return Report::Ignored(
                "mail to a bounce address from a person or an autoreply, not a mail server".into(),
            );
        }
        let text = (0..message.text_body_count())
            .filter_map(|i| message.body_text(i))
            .collect::<Vec<_>>()
            .join("\n");
        return match smtp_reply(&text) {
            Some((line, permanent)) => {
                let kind = if permanent {
                    EventKind::Bounce
                } else {
                    EventKind::SoftBounce
                };
                let diagnostic = format!("bounce without a status report: {line}");
                let email = original.to.clone().unwrap_or_default();
                Report::Events(vec![event(0, kind, email, diagnostic, Some(path))])
            }
            None => Report::Ignored(
                "a mail server's message to a bounce address that states no SMTP failure".into(),
            ),
        };
    }

    if let Some(unsubscribe) = addresses.unsubscribe
        && envelope_to
            .iter()
            .any(|a| a.eq_ignore_ascii_case(unsubscribe))
    {
        // The sender's address proves nothing (anyone can write any `From`); the token
        // that the copy's `List-Unsubscribe` put in the subject names the reader.
        let token = message
            .subject()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == ':')
            .find_map(|word| addresses.key.verify_unsubscribe(word.trim()).ok());
        return match token {
            Some(uid) => Report::Unsubscribe { uid },
            None => Report::Ignored(
                "an unsubscribe request without its signed token (the link in any issue works)"
                    .into(),
            ),
        };
    }
    Report::Ignored("neither a bounce, a complaint nor an unsubscribe request".into())
}

#[derive(Default)]
struct Found {
    dsn: Option<Vec<Recipient>>,
    feedback: Option<Fields>,
    original: Option<Original>,
}

/// The headers of the message a report is about.
#[derive(Debug, Default, Clone)]
struct Original {
    message_id: Option<String>,
    to: Option<String>,
    return_path: Option<String>,
}

fn original(raw: &[u8]) -> Original {
    let Some(headers) = MessageParser::default().parse_headers(raw) else {
        return Original::default();
    };
    Original {
        message_id: headers.message_id().map(|id| format!("<{id}>")),
        to: first_address(headers.to()),
        return_path: headers
            .header("Return-Path")
            .and_then(text_of)
            .map(|p| strip_address(&p)),
    }
}

/// One recipient's block of a delivery status notification.
#[derive(Debug, Default)]
struct Recipient {
    final_recipient: Option<String>,
    original_recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic_code: Option<String>,
}

impl Recipient {
    /// `4` or `5` (or `2`): the class of the RFC 3463 status.
    fn status_class(&self) -> Option<char> {
        self.status.as_deref()?.trim().chars().next()
    }

    fn diagnostic(&self) -> String {
        let status = self.status.as_deref().unwrap_or("no status");
        truncate(&match &self.diagnostic_code {
            Some(code) => format!("{status} {code}"),
            None => status.to_owned(),
        })
    }
}

/// The per-recipient blocks of a `message/delivery-status` body (the first block is about
/// the whole message and names no recipient).
fn delivery_status(body: &[u8]) -> Vec<Recipient> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    text.split("\n\n")
        .map(|block| fields(block.as_bytes()))
        .filter(|f| f.get("final-recipient").is_some() || f.get("action").is_some())
        .map(|f| Recipient {
            final_recipient: f.get("final-recipient").map(typed_address),
            original_recipient: f.get("original-recipient").map(typed_address),
            action: f.get("action").map(|a| a.trim().to_ascii_lowercase()),
            status: f.get("status").map(|s| s.trim().to_owned()),
            diagnostic_code: f.get("diagnostic-code").map(|d| {
                d.split_once(';')
                    .map_or(d, |(_, rest)| rest)
                    .trim()
                    .to_owned()
            }),
        })
        .collect()
}

/// A block of `Name: value` fields (folded lines joined), by lower-case name; the first of
/// each name wins.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn fields(block: &[u8]) -> Fields {
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    Fields(out)
}

/// `rfc822; ada@example.com` → `ada@example.com`.
fn typed_address(value: &str) -> String {
    strip_address(value.split_once(';').map_or(value, |(_, a)| a))
}

/// `<ada@example.com>` → `ada@example.com`.
fn strip_address(value: &str) -> String {
    value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

fn text_of(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(list) => list.first().map(|t| t.to_string()),
        HeaderValue::Address(a) => first_address(Some(a)),
        _ => None,
    }
}

fn first_address(address: Option<&Address<'_>>) -> Option<String> {
    address?.first()?.address().map(str::to_owned)
}

/// Where the message was delivered: the envelope recipient that servers record
/// (`Delivered-To`, `X-Original-To`, `Envelope-To`), then `To`.
fn envelope_addresses(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "X-Envelope-To",
    ] {
        for header in message.root_part().headers.iter() {
            if header.name.as_str().eq_ignore_ascii_case(name)
                && let Some(text) = text_of(&header.value)
            {
                out.push(strip_address(&text));
            }
        }
    }
    if let Some(to) = message.to() {
        out.extend(to.iter().filter_map(|a| a.address().map(str::to_owned)));
    }
    out
}

/// Whether a message comes from a mail server rather than a person or an autoresponder: sent
/// by `MAILER-DAEMON` or `postmaster` (or with the null return path), and not marked as an
/// automatic reply.
fn from_a_mail_server(message: &Message<'_>) -> bool {
    let header = |name: &str| {
        message
            .root_part()
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .and_then(|h| text_of(&h.value))
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|p| p == "auto_reply")
        || header("Auto-Submitted").is_some_and(|a| a.starts_with("auto-replied"))
    {
        return false;
    }
    let daemon = first_address(message.from()).is_some_and(|from| {
        let local = from.split('@').next().unwrap_or("").to_ascii_lowercase();
        matches!(local.as_str(), "mailer-daemon" | "postmaster")
    });
    daemon || header("Return-Path").is_some_and(|p| p == "<>" || p.is_empty())
}

/// The first SMTP failure reply in a bounce's text (`550 5.1.1 …`, `452-4.2.2 …`: a reply code
/// and an enhanced status code of the same class), outside quoted lines and the copy of the
/// original message; the line, and whether it is permanent.
fn smtp_reply(text: &str) -> Option<(String, bool)> {
    for line in text.lines() {
        let line = line.trim();
        let lower = line.to_ascii_lowercase();
        if lower.contains("copy of the message")
            || lower.contains("original message")
            || lower.starts_with("message-id:")
        {
            break;
        }
        if line.starts_with('>') {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';'))
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let (code, enhanced) = (pair[0], pair[1].trim_end_matches(['.', ':']));
            let code = code.strip_suffix('-').unwrap_or(code);
            let class = code.chars().next();
            let reply = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
            let mut parts = enhanced.split('.');
            let same_class = parts.next().map(|c| c.chars().next()) == Some(class);
            let rest: Vec<&str> = parts.collect();
            let status = rest.len() == 2
                && rest.iter().all(|p| {
                    !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())
                });
            if reply && same_class && status && matches!(class, Some('4' | '5')) {
                return Some((truncate(line), class == Some('5')));
            }
        }
        // `550-5.1.1` written as one word.
        for word in &words {
            if let Some((code, enhanced)) = word.split_once('-')
                && code.len() == 3
                && code.bytes().all(|b| b.is_ascii_digit())
                && matches!(code.chars().next(), Some('4' | '5'))
                && enhanced.starts_with(code.chars().next().unwrap_or('x'))
                && enhanced.split('.').count() == 3
            {
                return Some((truncate(line), code.starts_with('5')));
            }
        }
    }
    None
}

/// Text without control characters (a NUL would be refused by PostgreSQL).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn truncate(text: &str) -> String {
    text.chars().take(1000).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_replies_are_found_outside_the_quoted_original() {
        let found = |t: &str| smtp_reply(t).map(|(_, permanent)| permanent);
        assert_eq!(
            found("host mx said: 550 5.1.1 <a@b>: Recipient address rejected"),
            Some(true)
        );
        assert_eq!(found("452 4.2.2 mailbox full"), Some(false));
        assert_eq!(
            found("550-5.1.1 The email account does not exist."),
            Some(true)
        );
        assert_eq!(found("I am back on 5.1.26, version 5.1.1 then"), None);
        assert_eq!(found("> 550 5.1.1 quoted"), None);
        assert_eq!(found("--- copy of the message\n550 5.1.1 x"), None);
        assert_eq!(found("250 2.0.0 Ok: queued"), None);
        assert_eq!(found("550 4.1.1 mixed classes"), None);
    }

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(clean("a\0b\r\nc"), "a b  c");
    }

    #[test]
    fn folded_fields_are_joined() {
        let f = fields(b"Diagnostic-Code: smtp; 550 no\r\n such user\r\nStatus: 5.1.1\r\n");
        assert_eq!(f.get("diagnostic-code"), Some("smtp; 550 no such user"));
        assert_eq!(f.get("status"), Some("5.1.1"));
    }
}
