//! The welcome email as it goes out: the editor's Markdown with its placeholders filled in
//! (the next issue's date from the cadence, the latest issue), rendered like an issue.

use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::domain::welcome::{self, Welcome, WelcomeFacts};
use crate::mail::prepared::PreparedMessage;
use crate::render::Publication;
use crate::render::issue::{self, MailSettings, RenderError};
use crate::schedule::plan;
use crate::store::{Db, StoreError, issues};

/// Why a welcome could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WelcomeError {
    /// Reading the facts failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// What the placeholders stand for now.
pub async fn facts(
    db: &Db,
    publication: &Publication,
    now: DateTime<Utc>,
) -> Result<WelcomeFacts, StoreError> {
    let next_issue = plan::next_issue(db, now).await?.map(|(_, words)| words);
    let latest_issue = issues::published(db, 0, 1)
        .await?
        .into_iter()
        .next()
        .map(|latest| {
            let url = issue::view_url(publication, &latest);
            (latest.subject, url)
        });
    Ok(WelcomeFacts {
        next_issue,
        latest_issue,
        archive_url: format!("{}/archive", publication.base_url),
    })
}

/// The welcome rendered for sending (or a test, with `subject_prefix` "[TEST] ").
pub async fn prepare(
    db: &Db,
    welcome: &Welcome,
    publication: &Publication,
    settings: &MailSettings,
    subject_prefix: &str,
    now: DateTime<Utc>,
) -> Result<PreparedMessage, WelcomeError> {
    let facts = facts(db, publication, now).await?;
    let body = welcome::fill(&welcome.body, &facts);
    Ok(issue::prepare_welcome(
        welcome,
        &body,
        publication,
        settings,
        subject_prefix,
        SystemTime::from(now),
    )?)
}
