//! The transactional mail queue (confirmation emails), separate from issue delivery.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::with_pool;

/// One queued email, leased to the caller until its lease ends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// What to send (`confirm`).
    pub kind: String,
    /// The subscriber it is for.
    pub subscriber_id: Option<i64>,
    /// Tries so far, this one included.
    pub attempts: i32,
}

/// Queues a confirmation email for `subscriber_id`, due at once. Returned unexecuted so it
/// runs inside the caller's transaction, on either database.
pub(super) fn enqueue_confirmation<DB>(
    subscriber_id: i64,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO mail_outbox (kind, subscriber_id, status, attempts, next_attempt_at, created_at) \
         VALUES ('confirm', $1, 'pending', 0, $2, $2)",
    )
    .bind(subscriber_id)
    .bind(now)
}

/// Leases up to `limit` due emails until `lease_until` and counts the attempt. A lease left
/// by a crashed sender has ended by `now`, so its rows are taken again.
#[tracing::instrument(skip(db))]
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    Ok(match db {
        // SQLite has one writer at a time, so the subquery and the update cannot interleave.
        Db::Sqlite { write, .. } => {
            sqlx::query_as(
                "UPDATE mail_outbox SET locked_until = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                 AND (locked_until IS NULL OR locked_until <= $1) ORDER BY next_attempt_at LIMIT $3) \
                 RETURNING id, kind, subscriber_id, attempts",
            )
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(write)
            .await?
        }
        // PostgreSQL: rows another instance is claiming right now are skipped, not waited on.
        Db::Postgres(pool) => {
            sqlx::query_as(
                "UPDATE mail_outbox SET locked_until = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                 AND (locked_until IS NULL OR locked_until <= $1) ORDER BY next_attempt_at LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, subscriber_id, attempts",
            )
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    })
}

/// How a leased email ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted by the mail server.
    Sent,
    /// Not needed any more (the subscriber confirmed, left or was erased).
    Dropped,
    /// A temporary failure: try again at the given time.
    Retry {
        /// When to try next.
        at: DateTime<Utc>,
        /// Why it failed.
        error: String,
    },
    /// A permanent failure, or out of tries.
    Failed {
        /// Why it failed.
        error: String,
    },
}

/// Records the outcome of a leased email and releases its lease.
#[tracing::instrument(skip(db))]
pub async fn finish(
    db: &Db,
    id: i64,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (status, next_at, error, sent_at) = match outcome {
        Outcome::Sent => ("sent", now, None, Some(now)),
        Outcome::Dropped => ("dropped", now, None, None),
        Outcome::Retry { at, error } => ("pending", *at, Some(error.as_str()), None),
        Outcome::Failed { error } => ("failed", now, Some(error.as_str()), None),
    };
    // The last error is kept through later successes, for the editor to read.
    with_pool!(db, write, |pool| {
        sqlx::query(
            "UPDATE mail_outbox SET status = $2, next_attempt_at = $3, last_error = COALESCE($4, last_error), \
             sent_at = $5, locked_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(next_at)
        .bind(error)
        .bind(sent_at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// The earliest time a pending email falls due, to know how long the sender may sleep.
#[tracing::instrument(skip(db))]
pub async fn next_due(db: &Db) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM mail_outbox WHERE status = 'pending'")
            .fetch_one(pool)
            .await
    })?)
}

/// Counts of queued emails by status, for health and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting or retrying.
    pub pending: i64,
    /// Accepted by the server.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
}

/// Counts the queue by status.
#[tracing::instrument(skip(db))]
pub async fn counts(db: &Db) -> Result<Counts, StoreError> {
    let rows: Vec<(String, i64)> = with_pool!(db, read, |pool| {
        sqlx::query_as("SELECT status, COUNT(*) FROM mail_outbox GROUP BY status")
            .fetch_all(pool)
            .await
    })?;
    let mut counts = Counts::default();
    for (status, n) in rows {
        match status.as_str() {
            "pending" => counts.pending = n,
            "sent" => counts.sent = n,
            "failed" => counts.failed = n,
            _ => {}
        }
    }
    Ok(counts)
}
