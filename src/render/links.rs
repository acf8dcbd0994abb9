//! The public page of every link that went out in a published issue, and its JSON Feed and
//! Atom feed.

use askama::Template;
use atom_syndication::{Entry, Feed, Link, Text};
use chrono::{DateTime, Utc};

use super::Publication;
use super::issue::{long_date, view_url};
use crate::domain::{Issue, IssueLink};

/// A link as it went out: the link, the issue and its place in the roundup (from 1).
#[derive(Clone, Debug)]
pub struct PublishedLink {
    /// The link.
    pub link: IssueLink,
    /// Its place in the issue's roundup, from 1.
    pub position: usize,
    /// The issue's subject.
    pub subject: String,
    /// The issue's web version.
    pub issue_url: String,
    /// The issue's public id.
    pub issue_uid: uuid::Uuid,
    /// When the issue went out.
    pub published_at: DateTime<Utc>,
}

impl PublishedLink {
    /// The links of `issues` (newest first), each issue's in the roundup's order.
    pub fn of(publication: &Publication, issues: &[Issue]) -> Vec<PublishedLink> {
        issues
            .iter()
            .flat_map(|issue| {
                issue
                    .links
                    .iter()
                    .enumerate()
                    .map(|(n, link)| PublishedLink {
                        link: link.clone(),
                        position: n + 1,
                        subject: issue.subject.clone(),
                        issue_url: view_url(publication, issue),
                        issue_uid: issue.uid,
                        published_at: issue.published_at.unwrap_or(issue.updated_at),
                    })
            })
            .collect()
    }

    /// Whether the title, note, address or source holds `text` (any case), and the source is
    /// `source` (any case) when one is given.
    pub fn matches(&self, text: &str, source: &str) -> bool {
        let text = text.to_lowercase();
        let holds = |field: &str| field.to_lowercase().contains(&text);
        (text.is_empty()
            || holds(&self.link.title)
            || holds(&self.link.note)
            || holds(&self.link.url)
            || holds(&self.link.source))
            && (source.is_empty() || self.link.source.to_lowercase() == source.to_lowercase())
    }

    /// When its issue went out, in words.
    pub fn date(&self) -> String {
        long_date(self.published_at)
    }

    /// A stable id for feeds: the issue's web version and the link's place in it.
    fn id(&self) -> String {
        format!("{}#link-{}", self.issue_url, self.position)
    }
}

/// The public links page.
#[derive(Template)]
#[template(path = "web/links.html")]
pub struct LinksPage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The links shown, newest first.
    pub links: Vec<PublishedLink>,
    /// The search text.
    pub q: String,
    /// The source searched for.
    pub source: String,
    /// The sources there are, for the filter.
    pub sources: Vec<String>,
    /// The page of newer links, if any.
    pub newer: Option<String>,
    /// The page of older links, if any.
    pub older: Option<String>,
}

/// A JSON Feed 1.1 of `links` (newest first).
pub fn json_feed(publication: &Publication, links: &[PublishedLink]) -> String {
    let base = &publication.base_url;
    let items: Vec<serde_json::Value> = links
        .iter()
        .map(|l| {
            let mut item = serde_json::json!({
                "id": l.id(),
                "url": l.link.url,
                "title": l.link.title,
                "content_text": if l.link.note.is_empty() { l.link.title.clone() } else { l.link.note.clone() },
                "date_published": l.published_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "external_url": l.issue_url,
            });
            if !l.link.source.is_empty() {
                item["tags"] = serde_json::json!([l.link.source]);
            }
            item
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": format!("{}: links", publication.name),
        "description": format!("Every link {} has sent, newest first.", publication.name),
        "home_page_url": format!("{base}/links"),
        "feed_url": format!("{base}/links.json"),
        "items": items,
    })
    .to_string()
}

fn link(href: String, rel: &str, mime_type: &str) -> Link {
    let mut link = Link::default();
    link.set_href(href);
    link.set_rel(rel);
    link.set_mime_type(Some(mime_type.to_owned()));
    link
}

/// An Atom document of `links` (newest first).
pub fn atom(publication: &Publication, links: &[PublishedLink]) -> String {
    let base = &publication.base_url;
    let updated = links
        .iter()
        .map(|l| l.published_at)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let entries = links
        .iter()
        .map(|l| {
            let mut entry = Entry::default();
            entry.set_id(l.id());
            entry.set_title(Text::plain(l.link.title.clone()));
            entry.set_updated(l.published_at.fixed_offset());
            entry.set_published(Some(l.published_at.fixed_offset()));
            entry.set_links(vec![
                link(l.link.url.clone(), "alternate", "text/html"),
                link(l.issue_url.clone(), "related", "text/html"),
            ]);
            let summary = match (l.link.source.is_empty(), l.link.note.is_empty()) {
                (true, true) => format!("In {}.", l.subject),
                (false, true) => format!("{}. In {}.", l.link.source, l.subject),
                (true, false) => format!("{} In {}.", l.link.note, l.subject),
                (false, false) => format!("{}: {} In {}.", l.link.source, l.link.note, l.subject),
            };
            entry.set_summary(Some(Text::plain(summary)));
            entry
        })
        .collect::<Vec<_>>();
    let mut author = atom_syndication::Person::default();
    author.set_name(publication.name.clone());
    let mut feed = Feed::default();
    feed.set_id(format!("{base}/links.xml"));
    feed.set_title(Text::plain(format!("{}: links", publication.name)));
    feed.set_updated(updated.fixed_offset());
    feed.set_authors(vec![author]);
    feed.set_links(vec![
        link(format!("{base}/links.xml"), "self", "application/atom+xml"),
        link(format!("{base}/links"), "alternate", "text/html"),
    ]);
    feed.set_entries(entries);
    feed.to_string()
}
