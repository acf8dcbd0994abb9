//! Askama structs for the admin's issue pages (`templates/web/admin/issue*.html`).

use askama::Template;

use super::admin::Chrome;
use crate::domain::{IssueInput, IssueStatus};
use crate::store::issues::Issue;

/// The list of issues.
#[derive(Template)]
#[template(path = "web/admin/issues.html")]
pub struct IssuesPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// This page, newest first.
    pub items: Vec<Issue>,
    /// The status filter, as given ("" for all).
    pub status: &'a str,
    /// The id to continue from for older issues.
    pub older: Option<i64>,
}

/// The editor for a new or existing issue.
#[derive(Template)]
#[template(path = "web/admin/issue_edit.html")]
pub struct IssueEditPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue being edited; `None` for a new one.
    pub issue: Option<&'a Issue>,
    /// The values in the fields (as typed, after a refused save).
    pub input: IssueInput,
    /// Why the last save was refused.
    pub error: Option<String>,
}

impl IssueEditPage<'_> {
    /// Where the form posts.
    pub fn action(&self) -> String {
        match self.issue {
            Some(issue) => format!("/admin/issues/{}", issue.id),
            None => "/admin/issues".to_owned(),
        }
    }

    /// Whether the content can still change.
    pub fn editable(&self) -> bool {
        self.issue.is_none_or(|i| i.status.is_editable())
    }
}

/// The preview: the email's HTML (in a frame) and text side by side.
#[derive(Template)]
#[template(path = "web/admin/issue_preview.html")]
pub struct IssuePreviewPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue.
    pub issue: &'a Issue,
    /// The subject line as sent.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// Frame width in pixels; `None` for the full width.
    pub width: Option<u32>,
}

/// Every status the list can filter by.
pub fn statuses() -> [IssueStatus; 5] {
    IssueStatus::ALL
}
