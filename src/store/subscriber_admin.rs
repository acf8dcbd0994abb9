//! Subscribers as the editor manages them: lists with filters and keyset pages, counts,
//! additions, changes and erasure.

use chrono::{DateTime, Utc};

use super::subscribers::{COLUMNS, Subscriber};
use super::webhooks::queue_subscriber_webhooks;
use super::{Db, StoreError, outbox};
use crate::domain::webhook::EventType;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::with_pool;

/// Which subscribers a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status.
    pub status: Option<SubscriberStatus>,
    /// Only addresses or names containing this text (any case).
    pub search: Option<String>,
    /// Only subscribers carrying this tag (its id).
    pub tag: Option<i64>,
}

/// The subscriber at the edge of a page: its id, and its signup time when the list is in
/// signup order (`None`: in id order, as the API pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The subscriber's id.
    pub id: i64,
    /// Their signup time, in a list ordered by signup.
    pub at: Option<DateTime<Utc>>,
}

/// Where a page starts. The cursor carries what the order needs, so a page still follows
/// when the subscriber at its edge has been erased meanwhile.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// The newest subscribers: by signup time when `true`, else by id.
    First {
        /// Order by signup time (the admin) rather than by id (the API).
        by_signup: bool,
    },
    /// Subscribers older than this edge.
    Before(Edge),
    /// Subscribers newer than this edge (the page before).
    After(Edge),
}

/// One page of subscribers, newest first, with the edges to continue from.
#[derive(Debug, Clone)]
pub struct Page {
    /// The subscribers.
    pub items: Vec<Subscriber>,
    /// Pass as `Before` for the next (older) page, if there is one.
    pub older: Option<Edge>,
    /// Pass as `After` for the previous (newer) page, if there is one.
    pub newer: Option<Edge>,
}

/// `%text%` for LIKE, with LIKE's own wildcards in `text` taken literally.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Appends the filter's conditions (` AND ...`) to a query.
pub(super) fn push_filter<DB>(query: &mut sqlx::QueryBuilder<DB>, filter: &Filter)
where
    DB: sqlx::Database,
    &'static str: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(tag) = filter.tag {
        query
            .push(" AND EXISTS (SELECT 1 FROM subscriber_tags st WHERE st.subscriber_id = subscribers.id AND st.tag_id = ")
            .push_bind(tag)
            .push(")");
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = like_pattern(search);
        query
            .push(" AND (email_key LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\'");
        query
            .push(" OR lower(name) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// A page of subscribers, newest first: by signup time for the admin (imported readers keep
/// their original signup date, so this is not the order of ids), by id for the API. Keyset
/// pagination on `(created_at, id)` or `id`: page 10,000 costs what page 1 costs. Searching
/// scans, stopping as soon as the page is full.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    filter: &Filter,
    cursor: Cursor,
    limit: i64,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, 500);
    let by_signup = match cursor {
        Cursor::First { by_signup } => by_signup,
        Cursor::Before(edge) | Cursor::After(edge) => edge.at.is_some(),
    };
    let mut items: Vec<Subscriber> = with_pool!(db, read, |pool| {
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM subscribers WHERE 1 = 1"));
        push_filter(&mut query, filter);
        let (newest, oldest) = if by_signup {
            (
                " ORDER BY created_at DESC, id DESC",
                " ORDER BY created_at ASC, id ASC",
            )
        } else {
            (" ORDER BY id DESC", " ORDER BY id ASC")
        };
        match cursor {
            Cursor::First { .. } => query.push(newest),
            Cursor::Before(Edge { id, at: Some(at) }) => query
                .push(" AND (created_at < ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(id)
                .push("))")
                .push(newest),
            Cursor::After(Edge { id, at: Some(at) }) => query
                .push(" AND (created_at > ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id > ")
                .push_bind(id)
                .push("))")
                .push(oldest),
            Cursor::Before(Edge { id, at: None }) => {
                query.push(" AND id < ").push_bind(id).push(newest)
            }
            Cursor::After(Edge { id, at: None }) => {
                query.push(" AND id > ").push_bind(id).push(oldest)
            }
        };
        // One more than asked tells whether another page follows.
        query.push(" LIMIT ").push_bind(limit + 1);
        query.build_query_as().fetch_all(pool).await
    })?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    if matches!(cursor, Cursor::After(_)) {
        items.reverse();
    }
    let edge = |s: &Subscriber| Edge {
        id: s.id,
        at: by_signup.then_some(s.created_at),
    };
    let (first, last) = (items.first().map(edge), items.last().map(edge));
    let (older, newer) = match cursor {
        Cursor::First { .. } => (last.filter(|_| more), None),
        Cursor::Before(_) => (last.filter(|_| more), first),
        Cursor::After(_) => (last, first.filter(|_| more)),
    };
    Ok(Page {
        items,
        older,
        newer,
    })
}

pub use crate::domain::StatusCounts;

/// Counts subscribers by status (an index-only scan of `(status, id)`).
#[tracing::instrument(skip(db))]
pub async fn counts(db: &Db) -> Result<StatusCounts, StoreError> {
    let rows: Vec<(String, i64)> = with_pool!(db, read, |pool| {
        sqlx::query_as("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
            .fetch_all(pool)
            .await
    })?;
    let mut counts = StatusCounts::default();
    for (status, n) in rows {
        match SubscriberStatus::try_from(status) {
            Ok(SubscriberStatus::Pending) => counts.pending = n,
            Ok(SubscriberStatus::Active) => counts.active = n,
            Ok(SubscriberStatus::Unsubscribed) => counts.unsubscribed = n,
            Ok(SubscriberStatus::Bounced) => counts.bounced = n,
            Ok(SubscriberStatus::Complained) => counts.complained = n,
            Err(_) => {}
        }
    }
    Ok(counts)
}

/// New subscribers per day since `since` (UTC days, oldest first), for the growth chart.
#[tracing::instrument(skip(db))]
pub async fn signups_per_day(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(match db {
        // SQLite keeps times as RFC 3339 text: the first ten characters are the UTC day.
        Db::Sqlite { read, .. } => {
            sqlx::query_as(
                "SELECT substr(created_at, 1, 10) AS day, COUNT(*) FROM subscribers \
                 WHERE created_at >= $1 GROUP BY day ORDER BY day",
            )
            .bind(since)
            .fetch_all(read)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*) FROM subscribers \
                 WHERE created_at >= $1 GROUP BY day ORDER BY day",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        }
    })
}

/// The subscriber with this id.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: i64) -> Result<Option<Subscriber>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1"));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// What adding a subscriber by hand did.
#[derive(Debug, Clone)]
pub enum Added {
    /// Added; pending with a confirmation queued, or active when consent was stated.
    New(Subscriber),
    /// The address is already on the list (any status); nothing changed.
    Exists(Subscriber),
    /// The address is suppressed (it bounced or complained); nothing changed.
    Suppressed,
}

/// Adds one subscriber: active at once when the editor states prior consent, otherwise
/// pending with a confirmation email queued in the same transaction.
#[tracing::instrument(skip_all)]
pub async fn add(
    db: &Db,
    email: &SubscriberEmail,
    name: Option<&SubscriberName>,
    source: ConsentSource,
    consented: bool,
    now: DateTime<Utc>,
) -> Result<Added, StoreError> {
    let status = if consented {
        SubscriberStatus::Active
    } else {
        SubscriberStatus::Pending
    };
    let confirmed_at = consented.then_some(now);
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO subscribers (uid, email, email_key, name, status, consent_at, consent_source, \
         created_at, confirmed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $6) \
         ON CONFLICT (email_key) DO NOTHING RETURNING {COLUMNS}"
    ));
    if super::mail_events::is_suppressed(db, &email.key()).await? {
        return Ok(Added::Suppressed);
    }
    let inserted: Option<Subscriber> = with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let row: Option<Subscriber> = sqlx::query_as(sql)
            .bind(crate::domain::new_uid())
            .bind(email.as_str())
            .bind(email.key())
            .bind(name.map(|n| n.as_str()))
            .bind(status.as_str())
            .bind(now)
            .bind(source.as_str())
            .bind(confirmed_at)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(s) = row
            .as_ref()
            .filter(|s| s.status == SubscriberStatus::Pending)
        {
            outbox::enqueue_confirmation(s.id, now)
                .execute(&mut *tx)
                .await?;
        }
        let created: Vec<i64> = row.iter().map(|s| s.id).collect();
        queue_subscriber_webhooks!(tx, EventType::SubscriberCreated, "id", created, now);
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?;
    match inserted {
        Some(s) => Ok(Added::New(s)),
        None => {
            let existing = super::subscribers::find_by_email(db, email).await?;
            existing
                .map(Added::Exists)
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
        }
    }
}

/// Sets or clears a subscriber's name; `None` when there is no such subscriber.
#[tracing::instrument(skip(db, name))]
pub async fn rename(
    db: &Db,
    id: i64,
    name: Option<&SubscriberName>,
    now: DateTime<Utc>,
) -> Result<Option<Subscriber>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE subscribers SET name = $2, updated_at = $3 WHERE id = $1 RETURNING {COLUMNS}"
    ));
    Ok(with_pool!(db, write, |pool| {
        sqlx::query_as(sql)
            .bind(id)
            .bind(name.map(|n| n.as_str()))
            .bind(now)
            .fetch_optional(pool)
            .await
    })?)
}

/// Unsubscribes a subscriber on the editor's word; `None` when there is no such subscriber.
/// One who already left, or bounced, stays as they are.
#[tracing::instrument(skip(db))]
pub async fn unsubscribe(
    db: &Db,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Subscriber>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1"));
    Ok(with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2, updated_at = $2 \
             WHERE id = $1 AND status IN ('pending', 'active') RETURNING id",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let left: Vec<i64> = left.into_iter().collect();
        queue_subscriber_webhooks!(tx, EventType::SubscriberUnsubscribed, "id", left, now);
        let row = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    }
    .await)?)
}

/// Unsubscribes the subscribers in `ids` who are still on the list, on the editor's word;
/// returns how many left.
#[tracing::instrument(skip(db, ids), fields(n = ids.len()))]
pub async fn unsubscribe_many(db: &Db, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let mut query = sqlx::QueryBuilder::new(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ",
        );
        query.push_bind(now).push(", updated_at = ").push_bind(now);
        query.push(" WHERE status IN ('pending', 'active') AND id IN ");
        super::push_list(&mut query, ids.iter().copied());
        query.push(" RETURNING id");
        let left: Vec<i64> = query.build_query_scalar().fetch_all(&mut *tx).await?;
        let count = left.len() as u64;
        queue_subscriber_webhooks!(tx, EventType::SubscriberUnsubscribed, "id", left, now);
        tx.commit().await?;
        Ok::<_, sqlx::Error>(count)
    }
    .await)?)
}

/// Erases the subscribers in `ids` as [`erase`] does; returns how many there were.
#[tracing::instrument(skip(db, ids), fields(n = ids.len()))]
pub async fn erase_many(db: &Db, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        // Their bounce and complaint reports name them too (a suppression stays: see README).
        let mut events = sqlx::QueryBuilder::new("DELETE FROM mail_events WHERE subscriber_id IN ");
        super::push_list(&mut events, ids.iter().copied());
        events.build().execute(&mut *tx).await?;
        let mut query = sqlx::QueryBuilder::new("DELETE FROM subscribers WHERE id IN ");
        super::push_list(&mut query, ids.iter().copied());
        let gone = query.build().execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok::<_, sqlx::Error>(gone)
    })?)
}

/// Erases a subscriber (GDPR): the row goes, and with it (by cascade) their confirmation
/// tokens and queued emails, and their bounce and complaint reports. Only a suppression of the
/// address stays, if there is one, so that it is never mailed again. `false` when there was no
/// such subscriber.
#[tracing::instrument(skip(db))]
pub async fn erase(db: &Db, id: i64) -> Result<bool, StoreError> {
    Ok(erase_many(db, &[id]).await? == 1)
}

/// The issues that went (or were to go) to one reader, newest first.
#[tracing::instrument(skip(db))]
pub async fn deliveries_of(
    db: &Db,
    subscriber_id: i64,
    limit: i64,
) -> Result<Vec<crate::domain::send::ReaderDelivery>, StoreError> {
    let rows: Vec<(i64, String, String, Option<DateTime<Utc>>)> = with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT d.issue_id, i.subject, d.status, d.sent_at FROM deliveries d \
             JOIN issues i ON i.id = d.issue_id WHERE d.subscriber_id = $1 \
             ORDER BY d.id DESC LIMIT $2",
        )
        .bind(subscriber_id)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(issue_id, subject, status, sent_at)| crate::domain::send::ReaderDelivery {
                issue_id,
                subject,
                status,
                sent_at,
            },
        )
        .collect())
}
