//! The transactional mail queue (confirmation emails), separate from issue delivery.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::with_pool;

/// One queued email, leased to the caller until its lease ends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// What to send (`confirm`, `welcome`, `notice`).
    pub kind: String,
    /// The subscriber it is for.
    pub subscriber_id: Option<i64>,
    /// Tries so far, this one included.
    pub attempts: i32,
    /// A notice's recipient and text (JSON), for kinds that carry them.
    pub payload: Option<String>,
}

/// A notice to an editor: whom, and what it says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// The editor's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Queues the same notice to every editor, due at once.
#[tracing::instrument(skip(db, text))]
pub async fn enqueue_notice_to_editors(
    db: &Db,
    subject: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let editors = super::editors::list(db).await?;
    for editor in &editors {
        let payload = serde_json::to_string(&Notice {
            to: editor.email.clone(),
            subject: subject.to_owned(),
            text: text.to_owned(),
        })
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        with_pool!(db, write, |pool| {
            sqlx::query(
            "INSERT INTO mail_outbox (kind, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ('notice', $1, 'pending', 0, $2, $2)"
        )
        .bind(payload)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
    }
    Ok(editors.len())
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

/// Queues the welcome email for `subscriber_id`, due at once, if the editor has written one
/// and it is switched on. Returned unexecuted so it runs inside the confirmation's transaction.
pub(super) fn enqueue_welcome<DB>(
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
         SELECT 'welcome', $1, 'pending', 0, $2, $2 FROM welcome_email WHERE id = 1 AND enabled",
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
                 RETURNING id, kind, subscriber_id, attempts, payload",
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
                 RETURNING id, kind, subscriber_id, attempts, payload",
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
    /// Not tried (shutdown came first): hand it back, the try not counted.
    Released,
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

/// Records the outcomes of a leased batch and releases it, in one transaction. A row whose
/// lease is no longer `lease` (it ran out and another sender took the row) is left alone.
#[tracing::instrument(skip_all, fields(n = outcomes.len()))]
pub async fn finish_batch(
    db: &Db,
    outcomes: &[(i64, Outcome)],
    lease: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ids_where = |wanted: fn(&Outcome) -> bool| -> Vec<i64> {
        outcomes
            .iter()
            .filter(|(_, o)| wanted(o))
            .map(|(id, _)| *id)
            .collect()
    };
    let sent = ids_where(|o| matches!(o, Outcome::Sent));
    let dropped = ids_where(|o| matches!(o, Outcome::Dropped));
    let released = ids_where(|o| matches!(o, Outcome::Released));
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        // The common outcomes go in one statement each; failures are few and carry their own text.
        for (ids, set) in [
            (&sent, "status = 'sent'"),
            (&dropped, "status = 'dropped'"),
            (&released, "attempts = attempts - 1"),
        ] {
            if ids.is_empty() {
                continue;
            }
            let mut query = sqlx::QueryBuilder::new("UPDATE mail_outbox SET locked_until = NULL, ");
            query.push(set);
            if std::ptr::eq(ids, &sent) {
                query.push(", sent_at = ").push_bind(now);
            }
            query
                .push(" WHERE locked_until = ")
                .push_bind(lease)
                .push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in ids.iter() {
                list.push_bind(*id);
            }
            query.push(")");
            query.build().execute(&mut *tx).await?;
        }
        for (id, outcome) in outcomes {
            let (status, next_at, error) = match outcome {
                Outcome::Retry { at, error } => ("pending", *at, error),
                Outcome::Failed { error } => ("failed", now, error),
                _ => continue,
            };
            sqlx::query(
                "UPDATE mail_outbox SET status = $2, next_attempt_at = $3, last_error = $4, locked_until = NULL \
                 WHERE id = $1 AND locked_until = $5",
            )
            .bind(id)
            .bind(status)
            .bind(next_at)
            .bind(error)
            .bind(lease)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(())
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
