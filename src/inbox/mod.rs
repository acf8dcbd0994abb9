//! The links inbox around the store: a new link's blank title and source filled from its
//! page, then saved.

pub mod fetch;

use chrono::{DateTime, Utc};

use crate::domain::saved_link::{NewSavedLink, SavedLink, one_line};
use crate::store::{Db, StoreError, saved_links};
use fetch::{FetchError, PageFetcher};

/// Saves `link`: a new one with its blank title and source completed from its page first
/// ([`complete`]); a known one (by its normalized address) as given, its page not read again
/// and its blank fields keeping what was saved. The saved link, whether it is new, and why its
/// page could not be read, if it could not.
pub async fn save(
    db: &Db,
    link: NewSavedLink,
    fetcher: &PageFetcher,
    now: DateTime<Utc>,
) -> Result<(SavedLink, bool, Option<FetchError>), StoreError> {
    let (link, problem) = match saved_links::find_by_key(db, &link.address.key).await? {
        Some(_) => (link, None),
        None => complete(link, fetcher).await,
    };
    let (saved, new) = saved_links::save(db, &link, now).await?;
    Ok((saved, new, problem))
}

/// `link` with a blank title taken from its page (`og:title`, else `<title>`) and a blank
/// source from the page's `og:site_name`, else the address's host. The page is read only when
/// the title is blank; when it cannot be, the link is kept as given (with the host as its
/// source) and the reason comes back with it.
pub async fn complete(
    mut link: NewSavedLink,
    fetcher: &PageFetcher,
) -> (NewSavedLink, Option<FetchError>) {
    let url = url::Url::parse(&link.address.url).ok();
    let mut problem = None;
    if link.title.is_empty()
        && let Some(url) = &url
    {
        match fetcher.facts(url).await {
            Ok(facts) => {
                if let Some(title) = facts.title {
                    link.title = one_line("title", &title, crate::domain::saved_link::MAX_TITLE)
                        .unwrap_or_default();
                }
                if link.source.is_empty() {
                    link.source = facts.site_name.unwrap_or_default();
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "a saved link's page could not be read");
                problem = Some(e);
            }
        }
    }
    if link.source.is_empty() {
        let host = url
            .as_ref()
            .and_then(|u| u.host_str())
            .map(|h| h.trim_start_matches("www.").chars().take(100).collect());
        link.source = host.unwrap_or_default();
    }
    (link, problem)
}
