//! The links inbox: links saved between issues, one row per normalized address.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::saved_link::{LinkAddress, NewSavedLink, SavedLink, SentIn};
use crate::with_pool;

from_row!(SavedLink {
    id: plain,
    url: plain,
    title: plain,
    source: plain,
    note: plain,
    saved_at: plain,
    updated_at: plain,
});

const COLUMNS: &str = "id, url, title, source, note, saved_at, updated_at";

/// Saves a link: a new row, or, when its normalized address is known, the known row with the
/// address as now given and each field given (a blank one keeps what was saved), saved again
/// now (so it is back in the inbox). `true` when the link is new.
#[tracing::instrument(skip_all)]
pub async fn save(
    db: &Db,
    link: &NewSavedLink,
    now: DateTime<Utc>,
) -> Result<(SavedLink, bool), StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO saved_links (url, url_key, title, source, note, saved_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (url_key) DO UPDATE SET url = excluded.url, \
         title = CASE WHEN excluded.title = '' THEN saved_links.title ELSE excluded.title END, \
         source = CASE WHEN excluded.source = '' THEN saved_links.source ELSE excluded.source END, \
         note = CASE WHEN excluded.note = '' THEN saved_links.note ELSE excluded.note END, \
         saved_at = excluded.saved_at, updated_at = excluded.updated_at RETURNING {COLUMNS}"
    ));
    Ok(with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT id FROM saved_links WHERE url_key = $1")
                .bind(&link.address.key)
                .fetch_optional(&mut *tx)
                .await?;
        let saved: SavedLink = sqlx::query_as(sql)
            .bind(&link.address.url)
            .bind(&link.address.key)
            .bind(&link.title)
            .bind(&link.source)
            .bind(&link.note)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>((saved, known.is_none()))
    }
    .await)?)
}

/// The saved link with this normalized address.
pub async fn find_by_key(db: &Db, key: &str) -> Result<Option<SavedLink>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_links WHERE url_key = $1"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(key)
        .fetch_optional(pool)
        .await)?)
}

/// Saved links, newest first: up to `limit` saved before link `before`.
pub async fn list(db: &Db, before: Option<i64>, limit: i64) -> Result<Vec<SavedLink>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_links WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// The inbox: links saved since the latest published issue went out (all of them before the
/// first), in the order saved.
pub async fn inbox(db: &Db) -> Result<Vec<SavedLink>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM saved_links WHERE saved_at > COALESCE((SELECT MAX(published_at) \
         FROM issues WHERE status IN ('sending', 'sent')), $1) ORDER BY saved_at, id"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(DateTime::<Utc>::UNIX_EPOCH)
        .fetch_all(pool)
        .await)?)
}

/// One saved link.
pub async fn get(db: &Db, id: i64) -> Result<Option<SavedLink>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM saved_links WHERE id = $1"));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Why a change to a saved link was refused.
#[derive(Debug, thiserror::Error)]
pub enum SavedLinkError {
    /// No saved link has this id.
    #[error("there is no such saved link")]
    NotFound,
    /// Another saved link has this address (once normalized).
    #[error("this address is already saved as link {0}")]
    Taken(i64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces a saved link's fields.
#[tracing::instrument(skip(db, link))]
pub async fn update(
    db: &Db,
    id: i64,
    link: &NewSavedLink,
    now: DateTime<Utc>,
) -> Result<SavedLink, SavedLinkError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE saved_links SET url = $2, url_key = $3, title = $4, source = $5, note = $6, \
         updated_at = $7 WHERE id = $1 RETURNING {COLUMNS}"
    ));
    let result = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(id)
        .bind(&link.address.url)
        .bind(&link.address.key)
        .bind(&link.title)
        .bind(&link.source)
        .bind(&link.note)
        .bind(now)
        .fetch_optional(pool)
        .await);
    match result {
        Ok(Some(saved)) => Ok(saved),
        Ok(None) => Err(SavedLinkError::NotFound),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let other = with_pool!(db, read, |pool| sqlx::query_scalar(
                "SELECT id FROM saved_links WHERE url_key = $1"
            )
            .bind(&link.address.key)
            .fetch_optional(pool)
            .await)
            .map_err(StoreError::from)?;
            Err(SavedLinkError::Taken(other.unwrap_or_default()))
        }
        Err(e) => Err(StoreError::from(e).into()),
    }
}

/// Deletes a saved link.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: i64) -> Result<(), SavedLinkError> {
    let gone = with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM saved_links WHERE id = $1"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))
    .map_err(StoreError::from)?;
    if gone == 0 {
        return Err(SavedLinkError::NotFound);
    }
    Ok(())
}

/// The normalized addresses of the links in issues waiting for their slot: scheduled ones,
/// and the drafts the scheduler made for slots (`draft_ahead`).
pub async fn keys_in_waiting_issues(db: &Db) -> Result<HashSet<String>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM issues WHERE status = 'scheduled' OR (status = 'draft' AND id IN \
         (SELECT issue_id FROM slot_drafts WHERE issue_id IS NOT NULL))",
        super::issues::COLUMNS
    ));
    let waiting: Vec<crate::domain::Issue> =
        with_pool!(db, read, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
    Ok(waiting
        .iter()
        .flat_map(|i| &i.links)
        .filter_map(|l| LinkAddress::parse(&l.url).ok().map(|a| a.key))
        .collect())
}

/// The published issues (sending or sent) each normalized address went out in, newest first.
pub async fn sent_in(db: &Db) -> Result<HashMap<String, Vec<SentIn>>, StoreError> {
    let mut found: HashMap<String, Vec<SentIn>> = HashMap::new();
    let mut offset = 0;
    loop {
        let page = super::issues::published(db, offset, 200).await?;
        for issue in &page {
            for link in &issue.links {
                let Ok(address) = LinkAddress::parse(&link.url) else {
                    continue;
                };
                let entry = found.entry(address.key).or_default();
                if entry.iter().all(|s| s.issue_id != issue.id) {
                    entry.push(SentIn {
                        issue_id: issue.id,
                        subject: issue.subject.clone(),
                        slug: issue.slug.clone(),
                        published_at: issue.published_at,
                    });
                }
            }
        }
        if page.len() < 200 {
            return Ok(found);
        }
        offset += 200;
    }
}
