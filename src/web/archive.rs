//! The public archive of published issues and its Atom feed, with caching headers.

use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    CacheControl, CacheDirective, ContentType, HttpDate, IfModifiedSince, LastModified,
};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AppState;
use super::error::WebError;
use crate::domain::Slug;
use crate::render::feed;
use crate::render::issue::{ArchiveEntry, ArchivePage, Body, IssuePage, long_date};
use crate::store::issues::{self, Issue};

/// Issues per archive page.
const PER_PAGE: i64 = 20;
/// Entries in the feed.
const FEED_ENTRIES: i64 = 20;
/// How long browsers and proxies may reuse a page without asking again.
const MAX_AGE_SECS: u32 = 300;

/// The archive's query string.
#[derive(Debug, Deserialize)]
pub struct ArchiveQuery {
    page: Option<String>,
}

/// A 200 whose body the client may cache for a while and revalidate by date, or a 304 when
/// the client's copy is as new as `last_modified`.
#[expect(
    clippy::result_large_err,
    reason = "the response is sent at once, never carried up"
)]
fn cached(
    req: &HttpRequest,
    last_modified: DateTime<Utc>,
) -> Result<HttpResponseBuilder, HttpResponse> {
    // HTTP dates have whole seconds; compare at that precision.
    let modified = HttpDate::from(SystemTime::from(
        DateTime::<Utc>::from_timestamp(last_modified.timestamp(), 0).unwrap_or_default(),
    ));
    let fresh = req
        .get_header::<IfModifiedSince>()
        .is_some_and(|IfModifiedSince(since)| {
            SystemTime::from(since) >= SystemTime::from(modified)
        });
    let mut builder = HttpResponse::build(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    builder
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(MAX_AGE_SECS),
        ]))
        .insert_header(LastModified(modified));
    if fresh {
        Err(builder.finish())
    } else {
        Ok(builder)
    }
}

fn newest(issues: &[Issue]) -> DateTime<Utc> {
    issues
        .iter()
        .filter_map(|i| i.published_at.max(Some(i.updated_at)))
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn rendered(page: impl askama::Template) -> Result<String, WebError> {
    page.render().map_err(|e| WebError::Internal(e.into()))
}

/// `GET /archive`: published issues, newest first, `PER_PAGE` to a page.
#[tracing::instrument(skip_all)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ArchiveQuery>,
) -> Result<HttpResponse, WebError> {
    let page = match query.page.as_deref() {
        None | Some("") => 1,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| WebError::BadRequest(format!("{raw:?} is not a page number.")))?,
    };
    let total = issues::published_count(&state.db).await?;
    let shown = issues::published(&state.db, (page - 1) * PER_PAGE, PER_PAGE).await?;
    if shown.is_empty() && page > 1 {
        return Err(WebError::NotFound(format!(
            "The archive has no page {page}."
        )));
    }
    let builder = match cached(&req, newest(&shown)) {
        Ok(builder) => builder,
        Err(not_modified) => return Ok(not_modified),
    };
    let body = rendered(ArchivePage {
        publication: &state.publication,
        newer: (page > 1).then_some(page - 1),
        older: (page * PER_PAGE < total).then_some(page + 1),
        entries: shown
            .into_iter()
            .map(|issue| ArchiveEntry {
                date: long_date(issue.published_at.unwrap_or(issue.updated_at)),
                slug: issue.slug,
                subject: issue.subject,
                preheader: issue.preheader,
            })
            .collect(),
    })?;
    Ok(with_html(builder, body))
}

fn with_html(mut builder: HttpResponseBuilder, body: String) -> HttpResponse {
    builder.content_type(ContentType::html()).body(body)
}

/// `GET /archive/{slug}`: an issue's web version, with the signup form below. Issues not yet
/// sent are not found, whether or not they exist.
#[tracing::instrument(skip_all)]
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = match Slug::parse(&slug) {
        Ok(slug) => issues::published_by_slug(&state.db, slug.as_str()).await?,
        Err(_) => None,
    }
    .ok_or_else(|| WebError::NotFound("There is no published issue at this address.".into()))?;
    let (older, newer) = issues::neighbours(&state.db, &issue).await?;
    // A newly published issue changes this page's "next" link, so it counts for freshness.
    let shown: Vec<Issue> = [Some(issue.clone()), older.clone(), newer.clone()]
        .into_iter()
        .flatten()
        .collect();
    let builder = match cached(&req, newest(&shown)) {
        Ok(builder) => builder,
        Err(not_modified) => return Ok(not_modified),
    };
    let link = |i: Option<Issue>| i.map(|i| (i.slug, i.subject));
    let body = issue_page(
        &state,
        &issue,
        Neighbours::Published(link(older), link(newer)),
    )?;
    let mut response = with_html(builder, body);
    allow_remote_images(&mut response);
    Ok(response)
}

/// An issue's images may live on any host, as in an email; everything else stays as strict
/// as the rest of the site.
pub fn allow_remote_images(response: &mut HttpResponse) {
    response.headers_mut().insert(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        actix_web::http::header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// Where the web version of an issue sits: in the archive between two others, or in the
/// admin's preview.
pub enum Neighbours {
    /// Published: the older and newer issues (address and subject).
    Published(Option<(String, String)>, Option<(String, String)>),
    /// The admin's preview: undated, with a way back to the issue's admin page.
    Preview,
}

/// The web version of an issue, rendered: dated with its neighbours when published, undated
/// with a link back to the admin in a preview.
pub fn issue_page(state: &AppState, issue: &Issue, at: Neighbours) -> Result<String, WebError> {
    let body = Body::of(issue, &state.publication);
    let (published, older, newer, back_to_admin) = match at {
        Neighbours::Published(older, newer) => {
            (issue.published_at.map(long_date), older, newer, None)
        }
        Neighbours::Preview => (
            None,
            None,
            None,
            Some(format!("/admin/issues/{}", issue.id)),
        ),
    };
    rendered(IssuePage {
        publication: &state.publication,
        issue,
        body_html: &body.html,
        published,
        error: None,
        email: "",
        name: "",
        older,
        newer,
        back_to_admin,
    })
}

/// `GET /feed.xml`: the Atom feed of the latest published issues.
#[tracing::instrument(skip_all)]
pub async fn feed(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let latest = issues::published(&state.db, 0, FEED_ENTRIES).await?;
    let mut builder = match cached(&req, newest(&latest)) {
        Ok(builder) => builder,
        Err(not_modified) => return Ok(not_modified),
    };
    Ok(builder
        .content_type("application/atom+xml; charset=utf-8")
        .body(feed::atom(&state.publication, &latest)))
}
