//! `/links`: every link that went out in a published issue, searchable, and its JSON Feed
//! (`/links.json`) and Atom feed (`/links.xml`). Drafts and scheduled issues never show.

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::error::WebError;
use crate::render::links::{LinksPage, PublishedLink, atom, json_feed};
use crate::store::issues;

/// Links to a page.
const PER_PAGE: usize = 200;
/// Links in the feeds.
const FEED_ENTRIES: usize = 100;

/// The page's query string.
#[derive(Debug, Deserialize)]
pub struct LinksQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    page: String,
}

/// Every link of every published issue, newest issue first.
async fn published(state: &AppState) -> Result<Vec<PublishedLink>, WebError> {
    let mut links = Vec::new();
    let mut offset = 0;
    loop {
        let page = issues::published(&state.db, offset, 200).await?;
        links.extend(PublishedLink::of(&state.publication, &page));
        if page.len() < 200 {
            return Ok(links);
        }
        offset += 200;
    }
}

fn search_field(name: &str, raw: &str) -> Result<String, WebError> {
    let text = raw.trim();
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(WebError::BadRequest(format!(
            "The {name} is one line of at most 200 characters."
        )));
    }
    Ok(text.to_owned())
}

/// `GET /links`.
#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    query: web::Query<LinksQuery>,
) -> Result<HttpResponse, WebError> {
    let q = search_field("search", &query.q)?;
    let source = search_field("source", &query.source)?;
    let page = match query.page.trim() {
        "" => 1,
        raw => raw
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| WebError::BadRequest(format!("{raw:?} is not a page number.")))?,
    };
    let all = published(&state).await?;
    let mut sources: Vec<String> = all
        .iter()
        .map(|l| l.link.source.clone())
        .filter(|s| !s.is_empty())
        .collect();
    sources.sort_by_key(|s| s.to_lowercase());
    sources.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let found: Vec<PublishedLink> = all.into_iter().filter(|l| l.matches(&q, &source)).collect();
    let total = found.len();
    let links: Vec<PublishedLink> = found
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    if links.is_empty() && page > 1 {
        return Err(WebError::NotFound(format!(
            "The links have no page {page}."
        )));
    }
    let page_url = |n: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            query.append_pair("q", &q);
        }
        if !source.is_empty() {
            query.append_pair("source", &source);
        }
        if n > 1 {
            query.append_pair("page", &n.to_string());
        }
        let query = query.finish();
        let base = &state.publication.base_url;
        if query.is_empty() {
            format!("{base}/links")
        } else {
            format!("{base}/links?{query}")
        }
    };
    let body = askama::Template::render(&LinksPage {
        publication: &state.publication,
        newer: (page > 1).then(|| page_url(page - 1)),
        older: (page * PER_PAGE < total).then(|| page_url(page + 1)),
        links,
        q: q.clone(),
        source: source.clone(),
        sources,
    })
    .map_err(|e| WebError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(body))
}

fn feed_response(content_type: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .body(body)
}

/// `GET /links.json`: a JSON Feed 1.1 of the latest links.
pub async fn json(state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let mut links = published(&state).await?;
    links.truncate(FEED_ENTRIES);
    Ok(feed_response(
        "application/feed+json",
        json_feed(&state.publication, &links),
    ))
}

/// `GET /links.xml`: an Atom feed of the latest links.
pub async fn feed(state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let mut links = published(&state).await?;
    links.truncate(FEED_ENTRIES);
    Ok(feed_response(
        "application/atom+xml",
        atom(&state.publication, &links),
    ))
}
