//! The welcome email: written once by the editor in Markdown, sent to each reader when they
//! first confirm, with a few placeholders filled in at send time.

use super::issue::{IssueDraft, IssueInput, IssueInputError};

/// The welcome email as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// Subject line.
    pub subject: String,
    /// The preview line mail clients show after the subject.
    pub preheader: String,
    /// Markdown, with placeholders.
    pub body: String,
    /// Whether new readers get it.
    pub enabled: bool,
    /// Last saved.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A welcome email as the editor submitted it, checked like an issue's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomeDraft {
    /// Subject line.
    pub subject: String,
    /// Preview line.
    pub preheader: String,
    /// Markdown.
    pub body: String,
    /// Whether new readers get it.
    pub enabled: bool,
}

impl WelcomeDraft {
    /// Checks the fields by the rules of an issue's (subject required, one line each, the
    /// body's size, images described).
    pub fn parse(
        subject: &str,
        preheader: &str,
        body: &str,
        enabled: bool,
    ) -> Result<WelcomeDraft, IssueInputError> {
        let draft = IssueDraft::parse(IssueInput {
            subject: subject.to_owned(),
            preheader: preheader.to_owned(),
            body: body.to_owned(),
            ..IssueInput::default()
        })?;
        Ok(WelcomeDraft {
            subject: draft.subject,
            preheader: draft.preheader,
            body: draft.body,
            enabled,
        })
    }
}

/// What the placeholders stand for when a welcome goes out.
#[derive(Clone, Debug, Default)]
pub struct WelcomeFacts {
    /// The next issue's date in words ("Thursday 3 December"), if one is planned.
    pub next_issue: Option<String>,
    /// The latest published issue: its subject and address.
    pub latest_issue: Option<(String, String)>,
    /// The archive's address, for when nothing is published yet.
    pub archive_url: String,
}

/// The placeholders a welcome's body may use, with what each becomes.
pub const PLACEHOLDERS: [(&str, &str); 3] = [
    (
        "next_issue",
        "the next issue's date, e.g. \"Thursday 3 December\" (\"soon\" when none is planned)",
    ),
    (
        "latest_issue",
        "a link to the latest issue, titled with its subject (to the archive before the first)",
    ),
    (
        "latest_issue_url",
        "the latest issue's address (the archive's before the first)",
    ),
];

/// Markdown's special characters escaped, so an issue's subject stays text.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The body with `{{ next_issue }}`, `{{ latest_issue }}` and `{{ latest_issue_url }}` (spaces
/// inside the braces optional) replaced; anything else in braces is left as written.
pub fn fill(body: &str, facts: &WelcomeFacts) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    let mut rest = body;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        let latest_url = facts
            .latest_issue
            .as_ref()
            .map_or(facts.archive_url.as_str(), |(_, url)| url.as_str());
        match name {
            "next_issue" => out.push_str(&escape_markdown(
                facts.next_issue.as_deref().unwrap_or("soon"),
            )),
            "latest_issue" => {
                let title = facts
                    .latest_issue
                    .as_ref()
                    .map_or("the archive", |(subject, _)| subject.as_str());
                out.push_str(&format!("[{}](<{latest_url}>)", escape_markdown(title)));
            }
            "latest_issue_url" => out.push_str(latest_url),
            _ => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> WelcomeFacts {
        WelcomeFacts {
            next_issue: Some("Thursday 3 December".into()),
            latest_issue: Some((
                "Rates *and* [risks]".into(),
                "https://news.example.com/archive/rates".into(),
            )),
            archive_url: "https://news.example.com/archive".into(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_others_kept() {
        let body = "Next: {{next_issue}}. Latest: {{ latest_issue }} at {{latest_issue_url}}. {{ name }} {{ open";
        assert_eq!(
            fill(body, &facts()),
            "Next: Thursday 3 December. Latest: [Rates \\*and\\* \\[risks\\]](<https://news.example.com/archive/rates>) \
             at https://news.example.com/archive/rates. {{ name }} {{ open"
        );
    }

    #[test]
    fn before_anything_is_planned_or_published() {
        let facts = WelcomeFacts {
            archive_url: "https://news.example.com/archive".into(),
            ..WelcomeFacts::default()
        };
        assert_eq!(
            fill("{{next_issue}} / {{latest_issue}}", &facts),
            "soon / [the archive](<https://news.example.com/archive>)"
        );
    }

    #[test]
    fn a_welcome_needs_a_subject_of_one_line() {
        assert!(WelcomeDraft::parse("", "", "Hello", true).is_err());
        assert!(WelcomeDraft::parse("Welcome", "", "", false).is_ok());
        assert!(WelcomeDraft::parse("Welcome", "two\nlines", "Hi", true).is_err());
        let ok = WelcomeDraft::parse(" Welcome ", "", "Hi\r\nthere", true).unwrap();
        assert_eq!(ok.subject, "Welcome");
        assert_eq!(ok.body, "Hi\nthere");
    }
}
