//! The per-reader delivery queue of issues: enqueued in keyset batches when an issue starts,
//! claimed by workers under a lease, and finished one outcome per row.

use chrono::{DateTime, Utc};

use super::subscribers::{COLUMNS as SUBSCRIBER_COLUMNS, Subscriber};
use super::{Db, StoreError};
use crate::with_pool;

/// Subscribers written per enqueue transaction.
pub const ENQUEUE_BATCH: i64 = 5_000;

/// A delivery a worker holds under its lease.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Row id.
    pub id: i64,
    /// The issue.
    pub issue_id: i64,
    /// The reader.
    pub subscriber_id: i64,
    /// Tries so far, this one included.
    pub attempts: i32,
}

/// What became of one claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server accepted it; its reply.
    Sent(String),
    /// A temporary failure; try again at the time given.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// A permanent failure. `bounce` counts it against the reader (a 5xx about the mailbox).
    Failed {
        /// What went wrong.
        error: String,
        /// A hard bounce.
        bounce: bool,
    },
    /// The reader left (or bounced) after the send started; nothing was sent.
    Skipped,
    /// Not attempted (the mail server is away, or the worker is stopping): back to the
    /// queue at `at` without counting a try.
    Released {
        /// When it may be claimed again.
        at: DateTime<Utc>,
    },
}

/// An issue that still has readers to enqueue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToEnqueue {
    /// The issue.
    pub id: i64,
    /// The last subscriber id enqueued.
    pub enqueued_through: i64,
    /// When sending started: readers active by then get it.
    pub published_at: Option<DateTime<Utc>>,
}

/// Sending issues whose readers are not all enqueued yet.
pub async fn to_enqueue(db: &Db) -> Result<Vec<ToEnqueue>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT id, enqueued_through, published_at FROM issues \
         WHERE status = 'sending' AND NOT enqueue_done AND paused_at IS NULL ORDER BY id"
    )
    .fetch_all(pool)
    .await)?)
}

/// Enqueues the next batch of readers for an issue: active subscribers, confirmed by the time
/// it started, after the cursor. Returns how many were looked at (0: enqueueing is done).
/// One transaction per batch; running it twice (two instances) adds nothing twice.
#[tracing::instrument(skip(db, issue), fields(issue_id = issue.id))]
pub async fn enqueue_batch(
    db: &Db,
    issue: &ToEnqueue,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let started = issue.published_at.unwrap_or(now);
    with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        // The batch's upper bound, by keyset on the primary key: memory and lock time stay
        // the same whatever the list's size.
        let bound: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(id) FROM (SELECT id FROM subscribers WHERE status = 'active' AND id > $1 \
             ORDER BY id LIMIT $2) AS batch",
        )
        .bind(issue.enqueued_through)
        .bind(ENQUEUE_BATCH)
        .fetch_one(&mut *tx)
        .await?;
        let Some(bound) = bound else {
            sqlx::query("UPDATE issues SET enqueue_done = TRUE WHERE id = $1")
                .bind(issue.id)
                .execute(&mut *tx)
                .await?;
            return tx.commit().await.map(|_| 0);
        };
        let looked = bound - issue.enqueued_through;
        sqlx::query(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, next_attempt_at, updated_at) \
             SELECT $1, id, 'pending', $2, $2 FROM subscribers WHERE status = 'active' \
             AND id > $3 AND id <= $4 AND COALESCE(confirmed_at, created_at) <= $5 \
             ON CONFLICT (issue_id, subscriber_id) DO NOTHING",
        )
        .bind(issue.id)
        .bind(now)
        .bind(issue.enqueued_through)
        .bind(bound)
        .bind(started)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE issues SET enqueued_through = $2 WHERE id = $1 AND enqueued_through < $2",
        )
        .bind(issue.id)
        .bind(bound)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<i64, sqlx::Error>(looked.max(1))
    }
    .await)
    .map_err(Into::into)
}

/// One issue's share of a claim: its due rows in due order, read from the `deliveries_due`
/// index from the issue's earliest due row, so the cost follows the limit, not the list's size.
/// The issue's state is checked in the statement itself, so a pause or cancel that committed
/// first is honoured. PostgreSQL skips rows another instance is claiming right now; SQLite has
/// one writer, so the subquery and the update cannot interleave.
macro_rules! claim_of_issue {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET locked_until = $2, attempts = attempts + 1, \
             reclaimed = reclaimed + (CASE WHEN locked_until IS NULL THEN 0 ELSE 1 END) \
             WHERE id IN (SELECT d.id FROM deliveries d WHERE d.issue_id = $4 \
             AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $1 \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) \
             AND EXISTS (SELECT 1 FROM issues i WHERE i.id = $4 AND i.status = 'sending' AND i.paused_at IS NULL) \
             ORDER BY d.next_attempt_at LIMIT $3",
            $lock,
            ") RETURNING id, issue_id, subscriber_id, attempts"
        )
    };
}

/// Leases up to `limit` due deliveries of sending, unpaused issues (issues in the order they
/// were created, each issue's rows by when they are due) and counts the attempt, in one
/// transaction. A row whose lease ran out (its worker died) is taken again and counted as
/// reclaimed.
#[tracing::instrument(skip(db))]
pub async fn claim(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let sql: &'static str = match db {
        Db::Sqlite { .. } => claim_of_issue!(""),
        Db::Postgres(_) => claim_of_issue!(" FOR UPDATE OF d SKIP LOCKED"),
    };
    Ok(with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let sending: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM issues WHERE status = 'sending' AND paused_at IS NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed: Vec<Claimed> = Vec::new();
        for issue_id in sending {
            let want = limit - claimed.len() as i64;
            if want <= 0 {
                break;
            }
            let rows: Vec<Claimed> = sqlx::query_as(sql)
                .bind(now)
                .bind(lease_until)
                .bind(want)
                .bind(issue_id)
                .fetch_all(&mut *tx)
                .await?;
            claimed.extend(rows);
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(claimed)
    }
    .await)?)
}

/// The subscribers with these ids, as they are now.
pub async fn recipients(db: &Db, ids: &[i64]) -> Result<Vec<Subscriber>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_pool!(db, read, |pool| {
        let mut query = sqlx::QueryBuilder::new(format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id IN ("
        ));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_as().fetch_all(pool).await
    })?)
}

/// Records every outcome of a batch in one transaction. Each update requires the row to be
/// still under this worker's lease, so a worker that lost its lease cannot overwrite the
/// outcome of the one that took over. A hard bounce counts against the reader, who is marked
/// bounced at `bounce_threshold`. The sent rows, nearly all of them, are written by one
/// statement; the rest one by one.
#[tracing::instrument(skip(db, outcomes), fields(n = outcomes.len()))]
pub async fn finish(
    db: &Db,
    outcomes: &[(Claimed, Outcome)],
    lease: DateTime<Utc>,
    now: DateTime<Utc>,
    bounce_threshold: i32,
) -> Result<(), StoreError> {
    let sent: Vec<(i64, &str)> = outcomes
        .iter()
        .filter_map(|(row, outcome)| match outcome {
            Outcome::Sent(reply) => Some((row.id, reply.as_str())),
            _ => None,
        })
        .collect();
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        if !sent.is_empty() {
            let mut query = sqlx::QueryBuilder::new("WITH v(id, reply) AS (");
            query.push_values(&sent, |mut row, (id, reply)| {
                row.push_bind(*id).push_bind(*reply);
            });
            query
                .push(
                    ") UPDATE deliveries SET status = 'sent', smtp_reply = v.reply, \
                     locked_until = NULL, last_error = NULL, sent_at = ",
                )
                .push_bind(now)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" FROM v WHERE deliveries.id = v.id AND deliveries.locked_until = ")
                .push_bind(lease);
            query.build().execute(&mut *tx).await?;
        }
        for (row, outcome) in outcomes {
            let query = match outcome {
                Outcome::Sent(_) => continue,
                Outcome::Retry { at, error } => sqlx::query(
                    "UPDATE deliveries SET status = 'retrying', next_attempt_at = $3, last_error = $4, \
                     locked_until = NULL, updated_at = $5 WHERE id = $1 AND locked_until = $2 \
                     AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(lease)
                .bind(*at)
                .bind(error.as_str())
                .bind(now),
                Outcome::Failed { error, .. } => sqlx::query(
                    "UPDATE deliveries SET status = 'failed', last_error = $3, locked_until = NULL, \
                     updated_at = $4 WHERE id = $1 AND locked_until = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(lease)
                .bind(error.as_str())
                .bind(now),
                Outcome::Skipped => sqlx::query(
                    "UPDATE deliveries SET status = 'skipped', locked_until = NULL, updated_at = $3 \
                     WHERE id = $1 AND locked_until = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(lease)
                .bind(now),
                Outcome::Released { at } => sqlx::query(
                    "UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = $3, locked_until = NULL, \
                     updated_at = $4 WHERE id = $1 AND locked_until = $2",
                )
                .bind(row.id)
                .bind(lease)
                .bind(*at)
                .bind(now),
            };
            let done = query.execute(&mut *tx).await?.rows_affected();
            if done == 1 && matches!(outcome, Outcome::Failed { bounce: true, .. }) {
                sqlx::query(
                    "UPDATE subscribers SET hard_bounces = hard_bounces + 1, \
                     status = CASE WHEN status = 'active' AND hard_bounces + 1 >= $2 THEN 'bounced' ELSE status END, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(row.subscriber_id)
                .bind(bounce_threshold)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    })?;
    Ok(())
}

/// Deliveries waiting to go out (pending or retrying), across all issues.
pub async fn queue_depth(db: &Db) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retrying')"
    )
    .fetch_one(pool)
    .await)?)
}
