//! Askama templates for web pages (`templates/web/`) and emails (`templates/email/`).

pub mod admin;
pub mod admin_issues;
pub mod feed;
pub mod issue;
pub mod links;
pub mod markdown;

use askama::Template;

/// What every page and email knows about the publication.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The publication's name.
    pub name: String,
    /// The one-line pitch under the name.
    pub pitch: String,
    /// The site's base URL, without a trailing slash.
    pub base_url: String,
}

impl Publication {
    /// A reader's one-click unsubscribe URL.
    pub fn unsubscribe_url(&self, key: &crate::domain::token::LinkKey, uid: &uuid::Uuid) -> String {
        format!(
            "{}/unsubscribe/{}",
            self.base_url,
            key.unsubscribe_token(uid)
        )
    }

    /// A reader's "manage your subscription" URL.
    pub fn manage_url(&self, key: &crate::domain::token::LinkKey, uid: &uuid::Uuid) -> String {
        format!("{}/manage/{}", self.base_url, key.manage_token(uid))
    }
}

/// The signup page, fresh or with a validation error and the reader's input kept.
#[derive(Template)]
#[template(path = "web/signup.html")]
pub struct SignupPage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// What was wrong with the last submission.
    pub error: Option<String>,
    /// The email as typed.
    pub email: &'a str,
    /// The name as typed.
    pub name: &'a str,
}

/// A page that tells the reader one thing, optionally with a follow-up form.
#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The heading.
    pub title: &'a str,
    /// The explanation.
    pub message: &'a str,
    /// Show the signup form below the message (for expired links and the like).
    pub show_signup: bool,
    /// Always empty: the form below starts blank.
    pub error: Option<String>,
    /// Always empty.
    pub email: &'a str,
    /// Always empty.
    pub name: &'a str,
}

impl<'a> MessagePage<'a> {
    /// A message page, with or without the signup form under it.
    pub fn new(
        publication: &'a Publication,
        title: &'a str,
        message: &'a str,
        show_signup: bool,
    ) -> Self {
        MessagePage {
            publication,
            title,
            message,
            show_signup,
            error: None,
            email: "",
            name: "",
        }
    }
}

/// The one-button page behind an unsubscribe link.
#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// Where the button posts.
    pub action: &'a str,
    /// The address being unsubscribed, shown so the reader knows which.
    pub email: &'a str,
}

/// A reader's own page: their name, address, chosen tags, a pause, their data, leaving.
#[derive(Template)]
#[template(path = "web/manage.html")]
pub struct ManagePage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The page's own address (forms post below it).
    pub base: String,
    /// The forms' CSRF field.
    pub csrf: String,
    /// The reader's address.
    pub email: &'a str,
    /// The reader's name, or empty.
    pub name: &'a str,
    /// The subscription's status.
    pub status: &'a str,
    /// Whether the reader is receiving issues.
    pub active: bool,
    /// The public tags, each with whether the reader carries it.
    pub tags: Vec<(crate::domain::tag::Tag, bool)>,
    /// Issues left to skip.
    pub skip_issues: i32,
    /// What the last action did.
    pub notice: Option<String>,
    /// Why the last action was refused.
    pub error: Option<String>,
}

/// What a confirmation email says, whichever part renders it.
pub struct ConfirmEmail<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// "Hi Ada," or "Hi,".
    pub greeting: &'a str,
    /// The link that confirms.
    pub confirm_url: &'a str,
    /// The link that unsubscribes.
    pub unsubscribe_url: &'a str,
    /// How long the link lasts, in words.
    pub valid_for: &'a str,
}

/// The confirmation email, HTML part.
#[derive(Template)]
#[template(path = "email/confirm.html")]
pub struct ConfirmEmailHtml<'a> {
    /// The content.
    pub email: &'a ConfirmEmail<'a>,
}

/// The confirmation email, plain-text part.
#[derive(Template)]
#[template(path = "email/confirm.txt")]
pub struct ConfirmEmailText<'a> {
    /// The content.
    pub email: &'a ConfirmEmail<'a>,
}

pub use crate::mail::prepared::greeting;

/// An instant as the editor reads it, in the publication's zone with the zone named:
/// "Thu 3 Sep 2026, 08:00 Asia/Shanghai".
pub fn local_time(at: chrono::DateTime<chrono::Utc>, zone: &crate::domain::zone::Zone) -> String {
    format!(
        "{} {}",
        zone.local(at).format("%a %-d %b %Y, %H:%M"),
        zone.name()
    )
}

/// A slot's day as the editor names it: "Thu 3 Dec", in the publication's zone.
pub fn short_day(at: chrono::DateTime<chrono::Utc>, zone: &crate::domain::zone::Zone) -> String {
    zone.local(at).format("%a %-d %b").to_string()
}

/// A duration in the words an email uses: "3 days", "12 hours", "45 minutes".
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "days")
    } else if secs >= 2 * 3600 {
        (secs / 3600, "hours")
    } else {
        ((secs / 60).max(1), "minutes")
    };
    let unit = if n == 1 {
        unit.trim_end_matches('s')
    } else {
        unit
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_secs(72 * 3600)), "3 days");
        assert_eq!(human_duration(Duration::from_secs(36 * 3600)), "36 hours");
        assert_eq!(human_duration(Duration::from_secs(10)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(45 * 60)), "45 minutes");
    }
}
