//! The links inbox around the store: a saved link's blank title and source filled from its
//! page.

pub mod fetch;

use crate::domain::saved_link::{NewSavedLink, one_line};
use fetch::{FetchError, PageFetcher};

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
    if link.title.is_empty() {
        if let Some(url) = &url {
            match fetcher.facts(url).await {
                Ok(facts) => {
                    if let Some(title) = facts.title {
                        link.title =
                            one_line("title", &title, crate::domain::saved_link::MAX_TITLE)
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
