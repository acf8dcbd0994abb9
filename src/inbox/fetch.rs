//! Reading a saved link's page once, for the title and the site's name the editor left
//! blank: 5 seconds at most, the first megabyte only, up to 5 redirects, http and https only,
//! and only public addresses unless `link_fetch_allow_private` (the same resolver as the
//! webhooks: a name that resolves to a private address is never connected to).

use std::sync::Arc;
use std::time::Duration;

use crate::outbox::webhooks::{PublicOnly, with_causes};

/// The longest a fetch takes, redirects included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a page read.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// What a page says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageFacts {
    /// `og:title`, else `<title>`.
    pub title: Option<String>,
    /// `og:site_name`.
    pub site_name: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The address, or one it redirected to, is not a public http(s) address.
    #[error("{0}")]
    Refused(String),
    /// The request failed (timeout, connection, status).
    #[error("{0}")]
    Failed(String),
}

/// The page reader, with its own HTTP client.
#[derive(Clone)]
pub struct PageFetcher {
    http: reqwest::Client,
    rules: PublicOnly,
}

fn refusal(url: &url::Url, rules: &PublicOnly) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("{} is not an http or https address", url.scheme()));
    }
    rules.literal_refusal(url)
}

impl PageFetcher {
    /// A fetcher; `allow_private` lets it read pages at loopback and private addresses.
    pub fn new(allow_private: bool) -> anyhow::Result<PageFetcher> {
        PageFetcher::with_rules(PublicOnly {
            allow_private,
            also: Arc::new([]),
        })
    }

    /// A fetcher that reads public addresses and those `rules` let through.
    pub fn with_rules(rules: PublicOnly) -> anyhow::Result<PageFetcher> {
        let redirect_rules = rules.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match refusal(attempt.url(), &redirect_rules) {
                Some(why) => attempt.error(format!("a redirect was refused: {why}")),
                None => attempt.follow(),
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "Fortnight/",
                env!("CARGO_PKG_VERSION"),
                " (link titles)"
            ))
            .timeout(TIMEOUT)
            .redirect(policy)
            .no_proxy()
            .dns_resolver(Arc::new(rules.clone()))
            .build()?;
        Ok(PageFetcher { http, rules })
    }

    /// Reads the page at `url` (its first megabyte) for its title and site name.
    pub async fn facts(&self, url: &url::Url) -> Result<PageFacts, FetchError> {
        if let Some(why) = refusal(url, &self.rules) {
            return Err(FetchError::Refused(why));
        }
        let read = async {
            let mut response = self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml")
                .send()
                .await
                .map_err(describe)?;
            if !response.status().is_success() {
                return Err(FetchError::Failed(format!(
                    "the page answered {}",
                    response.status()
                )));
            }
            let mut body: Vec<u8> = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                let room = MAX_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BYTES {
                    break;
                }
            }
            Ok(body)
        };
        let body = tokio::time::timeout(TIMEOUT, read).await.map_err(|_| {
            FetchError::Failed(format!("no page within {} seconds", TIMEOUT.as_secs()))
        })??;
        Ok(facts_of(&String::from_utf8_lossy(&body)))
    }
}

fn describe(error: reqwest::Error) -> FetchError {
    let head = error
        .is_timeout()
        .then(|| format!("no page within {} seconds", TIMEOUT.as_secs()));
    let text = with_causes(head, error);
    if text.contains("redirect was refused") || text.contains("private or loopback") {
        FetchError::Refused(text)
    } else {
        FetchError::Failed(text)
    }
}

/// One line: white space runs as one space, trimmed, at most `max` characters.
fn tidy(text: &str, max: usize) -> Option<String> {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line: String = line.chars().filter(|c| !c.is_control()).take(max).collect();
    (!line.is_empty()).then_some(line)
}

/// The title and site name of an HTML page.
pub fn facts_of(html: &str) -> PageFacts {
    let document = scraper::Html::parse_document(html);
    let meta = |property: &str| -> Option<String> {
        let selector = scraper::Selector::parse(&format!(
            "meta[property=\"{property}\"], meta[name=\"{property}\"]"
        ))
        .ok()?;
        document
            .select(&selector)
            .filter_map(|e| e.value().attr("content"))
            .find_map(|c| tidy(c, 300))
    };
    let title = meta("og:title").or_else(|| {
        let selector = scraper::Selector::parse("title").ok()?;
        document
            .select(&selector)
            .find_map(|e| tidy(&e.text().collect::<String>(), 300))
    });
    PageFacts {
        title,
        site_name: meta("og:site_name").and_then(|s| tidy(&s, 100)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn og_tags_win_over_the_title_element() {
        let page = r#"<html><head><title>Plain | Site</title>
            <meta property="og:title" content="  The  real
              title ">
            <meta property="og:site_name" content="The Ledger"></head></html>"#;
        assert_eq!(
            facts_of(page),
            PageFacts {
                title: Some("The real title".into()),
                site_name: Some("The Ledger".into()),
            }
        );
    }

    #[test]
    fn the_title_element_serves_without_og_tags() {
        let page = "<title>Grain &amp; freight</title><p>Body";
        assert_eq!(facts_of(page).title.as_deref(), Some("Grain & freight"));
        assert_eq!(facts_of(page).site_name, None);
        assert_eq!(facts_of("<p>no title").title, None);
        assert_eq!(facts_of("<title>   </title>").title, None);
    }

    #[test]
    fn only_public_web_addresses_are_read() {
        let public = PublicOnly::default();
        let refused = |raw: &str| refusal(&raw.parse().unwrap(), &public).is_some();
        assert!(refused("ftp://example.com/"));
        assert!(refused("http://127.0.0.1/"));
        assert!(refused("http://[::1]/"));
        assert!(refused("http://10.0.0.1/"));
        assert!(!refused("https://example.com/"));
        assert!(!refused("https://93.184.216.34/"));
        let open = PublicOnly {
            allow_private: true,
            also: Arc::new([]),
        };
        assert!(refusal(&"http://127.0.0.1/".parse().unwrap(), &open).is_none());
        let one = PublicOnly {
            allow_private: false,
            also: Arc::new(["127.0.0.1".parse().unwrap()]),
        };
        assert!(refusal(&"http://127.0.0.1/".parse().unwrap(), &one).is_none());
        assert!(refusal(&"http://127.0.0.2/".parse().unwrap(), &one).is_some());
    }
}
