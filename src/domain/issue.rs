//! An issue of the publication as the editor writes it: subject, slug, preheader, Markdown
//! body and the ordered links roundup, and the states it moves through.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an issue stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    /// Being written; private.
    Draft,
    /// Written and placed at a time; still private and still editable.
    Scheduled,
    /// Going out; public in the archive.
    Sending,
    /// Sent to everyone; public in the archive.
    Sent,
    /// Stopped; private.
    Cancelled,
}

impl IssueStatus {
    /// Every status, in the order an issue moves through them.
    pub const ALL: [IssueStatus; 5] = [
        IssueStatus::Draft,
        IssueStatus::Scheduled,
        IssueStatus::Sending,
        IssueStatus::Sent,
        IssueStatus::Cancelled,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Draft => "draft",
            IssueStatus::Scheduled => "scheduled",
            IssueStatus::Sending => "sending",
            IssueStatus::Sent => "sent",
            IssueStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the editor may still change the content: once sending starts, readers hold
    /// copies, and the archive must show what they were sent.
    pub fn is_editable(self) -> bool {
        matches!(self, IssueStatus::Draft | IssueStatus::Scheduled)
    }

    /// Whether readers may see it in the archive and the feed.
    pub fn is_public(self) -> bool {
        matches!(self, IssueStatus::Sending | IssueStatus::Sent)
    }
}

impl TryFrom<String> for IssueStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        IssueStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| format!("unknown issue status {value:?}"))
    }
}

impl fmt::Display for IssueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the links roundup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueLink {
    /// The linked piece's title.
    pub title: String,
    /// Where it is (http or https).
    pub url: String,
    /// Who published it ("The Economist"); may be empty.
    #[serde(default)]
    pub source: String,
    /// One line of commentary; may be empty.
    #[serde(default)]
    pub note: String,
}

/// The part of an issue's address after `/archive/`: lower-case letters, digits and single
/// dashes, at most [`Slug::MAX`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// Longest slug accepted.
    pub const MAX: usize = 80;

    /// Reads a slug as typed by the editor.
    pub fn parse(raw: &str) -> Result<Slug, IssueInputError> {
        let s = raw.trim();
        let well_formed = !s.is_empty()
            && s.len() <= Slug::MAX
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--");
        if well_formed {
            Ok(Slug(s.to_owned()))
        } else {
            Err(IssueInputError(format!(
                "The slug {s:?} is not usable: use 1 to {} lower-case letters, digits and single dashes, like \"weekly-notes-12\".",
                Slug::MAX
            )))
        }
    }

    /// The slug a subject suggests ("Déjà vu: Q3!" gives "deja-vu-q3"), cut at a word
    /// boundary to leave room for a numeric suffix.
    pub fn from_subject(subject: &str) -> Slug {
        let full = slug::slugify(subject);
        let mut cut = full.as_str();
        while cut.len() > Slug::MAX - 8 {
            cut = cut
                .rsplit_once('-')
                .map_or(&cut[..Slug::MAX - 8], |(head, _)| head);
        }
        let cut = cut.trim_end_matches('-');
        Slug(if cut.is_empty() {
            "issue".to_owned()
        } else {
            cut.to_owned()
        })
    }

    /// This slug with `-n` appended, for the n-th issue that wants it.
    pub fn numbered(&self, n: u32) -> Slug {
        Slug(format!("{}-{n}", self.0))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an issue's fields were refused; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IssueInputError(pub String);

/// An issue's fields as they arrive from a form or the API, not yet checked.
#[derive(Clone, Debug, Default)]
pub struct IssueInput {
    /// Subject line.
    pub subject: String,
    /// Slug; empty means derive it from the subject.
    pub slug: String,
    /// Preview line.
    pub preheader: String,
    /// Markdown body.
    pub body: String,
    /// Heading over the links; empty means "Links".
    pub links_heading: String,
    /// The links, in order.
    pub links: Vec<IssueLink>,
}

/// An issue's content that has passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueDraft {
    /// Subject line, one line of text.
    pub subject: String,
    /// The chosen slug, or `None` to derive one from the subject.
    pub slug: Option<Slug>,
    /// The preview line mail clients show after the subject.
    pub preheader: String,
    /// Markdown.
    pub body: String,
    /// Heading over the links.
    pub links_heading: String,
    /// The links roundup, in order.
    pub links: Vec<IssueLink>,
}

/// Longest Markdown body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 200_000;
/// Most links in one roundup.
pub const MAX_LINKS: usize = 100;

/// One line of text: trimmed, no control characters, 0..=max characters (min 1 if required).
fn one_line(field: &str, raw: &str, max: usize, required: bool) -> Result<String, IssueInputError> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(IssueInputError(format!("The {field} is required.")));
    }
    if value.chars().count() > max {
        return Err(IssueInputError(format!(
            "The {field} is too long ({max} characters at most)."
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(IssueInputError(format!(
            "The {field} must be one line of text."
        )));
    }
    Ok(value.to_owned())
}

fn link(n: usize, raw: &IssueLink) -> Result<IssueLink, IssueInputError> {
    let field = |name: &str| format!("{name} of link {n}");
    let url = raw.url.trim();
    let parsed = url::Url::parse(url).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && url.len() <= 2000
    });
    if parsed.is_none() {
        return Err(IssueInputError(format!(
            "The URL of link {n} must be a full http:// or https:// address (got {url:?})."
        )));
    }
    let url = parsed.map(String::from).unwrap_or_default();
    Ok(IssueLink {
        title: one_line(&field("title"), &raw.title, 300, true)?,
        url,
        source: one_line(&field("source"), &raw.source, 100, false)?,
        note: one_line(&field("commentary"), &raw.note, 500, false)?,
    })
}

/// Every Markdown image needs a description (its alt text): mail clients often block images,
/// and screen readers read the description instead.
fn images_described(body: &str) -> Result<(), IssueInputError> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut open: Option<(String, String)> = None;
    let mut n = 0;
    for event in Parser::new(body) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                n += 1;
                open = Some((dest_url.to_string(), String::new()));
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, alt)) = open.as_mut() {
                    alt.push_str(&text);
                }
            }
            Event::End(TagEnd::Image) => {
                if let Some((url, alt)) = open.take()
                    && alt.trim().is_empty()
                {
                    return Err(IssueInputError(format!(
                        "Image {n} ({url}) has no description: write it as ![what it shows]({url})."
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl IssueDraft {
    /// Checks every field; the first problem found is the error.
    pub fn parse(input: IssueInput) -> Result<IssueDraft, IssueInputError> {
        let subject = one_line("subject", &input.subject, 200, true)?;
        let slug = match input.slug.trim() {
            "" => None,
            raw => Some(Slug::parse(raw)?),
        };
        let preheader = one_line("preheader", &input.preheader, 200, false)?;
        if input
            .body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(IssueInputError(
                "The body contains control characters; paste it as plain text.".into(),
            ));
        }
        if input.body.len() > MAX_BODY_BYTES {
            return Err(IssueInputError(format!(
                "The body is too long ({} KB at most).",
                MAX_BODY_BYTES / 1000
            )));
        }
        images_described(&input.body)?;
        let links_heading = match one_line("links heading", &input.links_heading, 80, false)? {
            h if h.is_empty() => "Links".to_owned(),
            h => h,
        };
        if input.links.len() > MAX_LINKS {
            return Err(IssueInputError(format!(
                "Too many links ({MAX_LINKS} at most)."
            )));
        }
        let links = input
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| link(i + 1, l))
            .collect::<Result<_, _>>()?;
        Ok(IssueDraft {
            subject,
            slug,
            preheader,
            body: input.body.replace("\r\n", "\n"),
            links_heading,
            links,
        })
    }
}

/// An issue: its content, where it stands and when things happened to it.
#[derive(Debug, Clone)]
pub struct Issue {
    /// Internal id.
    pub id: i64,
    /// Public identity: feed entry ids and Message-IDs derive from it.
    pub uid: uuid::Uuid,
    /// The address under `/archive/`.
    pub slug: String,
    /// Subject line.
    pub subject: String,
    /// Preview line.
    pub preheader: String,
    /// Markdown body.
    pub body: String,
    /// Heading over the links.
    pub links_heading: String,
    /// The links roundup, in order.
    pub links: Vec<IssueLink>,
    /// Where it stands.
    pub status: IssueStatus,
    /// First saved.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When sending started (and it became public).
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it is to go out (scheduled), or the time it missed (after a miss).
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The cadence slot it holds; `None` when scheduled at an exact time outside the cadence.
    pub slot_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the scheduler found its time long past and returned it to draft.
    pub missed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the editor paused its send.
    pub paused_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its send finished (sent or cancelled).
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The send's final report (JSON).
    pub summary: Option<String>,
    /// How many readers the send was fixed to when it started.
    pub audience: Option<i64>,
    /// Who they were, in words ("everyone", "readers tagged any of Weekly").
    pub audience_label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(subject: &str) -> IssueInput {
        IssueInput {
            subject: subject.into(),
            ..IssueInput::default()
        }
    }

    #[test]
    fn slugs_come_from_subjects() {
        assert_eq!(Slug::from_subject("Déjà vu: Q3!").as_str(), "deja-vu-q3");
        assert_eq!(Slug::from_subject("???").as_str(), "issue");
        let long = Slug::from_subject(&"word ".repeat(40));
        assert!(long.as_str().len() <= Slug::MAX - 8, "{long:?}");
        assert!(!long.as_str().ends_with('-'));
        assert_eq!(Slug::from_subject("a b").numbered(2).as_str(), "a-b-2");
    }

    #[test]
    fn only_clean_slugs_parse() {
        assert!(Slug::parse("weekly-12").is_ok());
        for bad in ["", "Upper", "a--b", "-a", "a-", "a b", "é", &"a".repeat(81)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_draft_needs_a_one_line_subject() {
        assert!(IssueDraft::parse(input("  ")).is_err());
        assert!(IssueDraft::parse(input("two\nlines")).is_err());
        assert!(IssueDraft::parse(input(&"x".repeat(201))).is_err());
        let draft = IssueDraft::parse(input(" Notes 12 ")).unwrap();
        assert_eq!(draft.subject, "Notes 12");
        assert_eq!(draft.links_heading, "Links");
        assert_eq!(draft.slug, None);
    }

    #[test]
    fn links_need_a_title_and_a_web_address() {
        let with = |url: &str, title: &str| IssueInput {
            links: vec![IssueLink {
                title: title.into(),
                url: url.into(),
                ..IssueLink::default()
            }],
            ..input("s")
        };
        assert!(IssueDraft::parse(with("https://example.com/a", "A")).is_ok());
        for bad in [
            "javascript:alert(1)",
            "example.com",
            "ftp://x.org/",
            "https://",
        ] {
            let err = IssueDraft::parse(with(bad, "A")).unwrap_err();
            assert!(err.0.contains("link 1"), "{err}");
        }
        assert!(IssueDraft::parse(with("https://example.com", " ")).is_err());
    }

    #[test]
    fn images_need_a_description() {
        let with = |body: &str| IssueInput {
            body: body.into(),
            ..input("s")
        };
        assert!(IssueDraft::parse(with("![A chart of rates](https://x.org/c.png)")).is_ok());
        let err = IssueDraft::parse(with("Text\n\n![](https://x.org/c.png)")).unwrap_err();
        assert!(err.0.contains("Image 1 (https://x.org/c.png)"), "{err}");
        assert!(IssueDraft::parse(with("![ ](a.png) and ![ok](b.png)")).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in IssueStatus::ALL {
            assert_eq!(IssueStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert!(IssueStatus::try_from("posted".to_owned()).is_err());
    }
}
