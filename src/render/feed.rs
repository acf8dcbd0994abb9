//! The Atom feed of published issues.

use atom_syndication::{Content, Entry, Feed, Link, Person, Text};
use chrono::{DateTime, Utc};

use super::Publication;
use askama::Template;

use super::issue::{Body, RoundupHtml, view_url};
use crate::domain::Issue;

fn link(href: String, rel: &str, mime_type: Option<&str>) -> Link {
    let mut link = Link::default();
    link.set_href(href);
    link.set_rel(rel);
    link.set_mime_type(mime_type.map(str::to_owned));
    link
}

/// An Atom document of `issues` (newest first), each with its full web version as content:
/// the body and the links roundup.
/// Entry ids are the issues' uids, so an edited slug or title never repeats an entry.
pub fn atom(publication: &Publication, issues: &[Issue]) -> String {
    let published = |issue: &Issue| issue.published_at.unwrap_or(issue.updated_at);
    let updated: DateTime<Utc> = issues
        .iter()
        .map(published)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut author = Person::default();
    author.set_name(publication.name.clone());
    let entries = issues
        .iter()
        .map(|issue| {
            let mut entry = Entry::default();
            entry.set_id(format!("urn:uuid:{}", issue.uid));
            entry.set_title(Text::plain(issue.subject.clone()));
            entry.set_updated(published(issue).fixed_offset());
            entry.set_published(Some(published(issue).fixed_offset()));
            entry.set_links(vec![link(
                view_url(publication, issue),
                "alternate",
                Some("text/html"),
            )]);
            if !issue.preheader.is_empty() {
                entry.set_summary(Some(Text::plain(issue.preheader.clone())));
            }
            let mut content = Content::default();
            content.set_content_type(Some("html".to_owned()));
            let mut html = Body::of(issue, publication).html;
            // The roundup as the web version shows it (it renders nothing without links).
            if let Ok(roundup) = (RoundupHtml { issue }).render() {
                html.push_str(&roundup);
            }
            content.set_value(Some(html));
            entry.set_content(Some(content));
            entry
        })
        .collect::<Vec<_>>();
    let mut feed = Feed::default();
    feed.set_id(format!("{}/feed.xml", publication.base_url));
    feed.set_title(Text::plain(publication.name.clone()));
    feed.set_subtitle(Some(Text::plain(publication.pitch.clone())));
    feed.set_updated(updated.fixed_offset());
    feed.set_authors(vec![author]);
    feed.set_links(vec![
        link(
            format!("{}/feed.xml", publication.base_url),
            "self",
            Some("application/atom+xml"),
        ),
        link(
            format!("{}/archive", publication.base_url),
            "alternate",
            Some("text/html"),
        ),
    ]);
    feed.set_entries(entries);
    feed.to_string()
}
