//! Retention: every send adds one delivery row per reader. Once `delivery_retention` has
//! passed since a send finished, its `sent` rows are deleted and counted on the issue instead
//! (`folded_sent`, `folded_in_doubt`, `folded_left`), a small batch per transaction so that
//! signups and sends are never held up for long. What is evidence stays: failed, skipped and
//! cancelled rows, and every copy a bounce or a complaint was reported for. The send's
//! progress and report add the folded counts to what remains, so they read the same after.

use chrono::{DateTime, Duration, Utc};

use super::{Db, StoreError, push_list};
use crate::with_pool;

/// Rows deleted per transaction.
pub const FOLD_BATCH: i64 = 1_000;

/// How long after a send readers who left count as having left because of it (the report's
/// "unsubscribed within 7 days").
pub const LEFT_WITHIN: Duration = Duration::days(7);

/// What one call of [`fold_due`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// Delivery rows deleted and counted.
    pub rows: u64,
    /// Issues that have nothing left to fold.
    pub issues_done: u64,
}

/// Folds the sent rows of sends finished before `now - retention`, up to `budget` rows (the
/// rest is left for the next call). Safe to run from any number of instances at once: each
/// row is deleted, and counted, by exactly one transaction.
pub async fn fold_due(
    db: &Db,
    retention: Duration,
    budget: u64,
    now: DateTime<Utc>,
) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    let before = now - retention;
    let due: Vec<(i64, Option<DateTime<Utc>>)> = with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, published_at FROM issues WHERE finished_at IS NOT NULL \
             AND folded_at IS NULL AND finished_at < $1 AND status IN ('sent', 'cancelled') \
             ORDER BY finished_at LIMIT 10",
        )
        .bind(before)
        .fetch_all(pool)
        .await
    })?;
    for (issue_id, published_at) in due {
        let since = published_at.unwrap_or(before);
        loop {
            if folded.rows >= budget {
                return Ok(folded);
            }
            let n = fold_batch(db, issue_id, since, before, now).await?;
            folded.rows += n;
            if n == 0 {
                folded.issues_done += 1;
                break;
            }
        }
    }
    Ok(folded)
}

/// Deletes and counts one batch of an issue's foldable rows; when there are none left, marks
/// the issue folded. Returns the rows folded.
async fn fold_batch(
    db: &Db,
    issue_id: i64,
    since: DateTime<Utc>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        // The send must still be finished and old enough (a retry of its failed copies may
        // have reopened it since it was listed). No order: the index on (issue, status) gives
        // the next batch without sorting the issue's rows each time.
        let rows: Vec<(i64, i32)> = sqlx::query_as(
            "DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d \
             JOIN issues i ON i.id = d.issue_id \
             WHERE d.issue_id = $1 AND d.status = 'sent' AND i.finished_at < $2 \
             AND i.status IN ('sent', 'cancelled') \
             AND NOT EXISTS (SELECT 1 FROM mail_events e \
                 WHERE e.issue_id = d.issue_id AND e.subscriber_id = d.subscriber_id) \
             LIMIT $3) \
             RETURNING subscriber_id, reclaimed",
        )
        .bind(issue_id)
        .bind(before)
        .bind(FOLD_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            sqlx::query(
                "UPDATE issues SET folded_at = $2 WHERE id = $1 AND folded_at IS NULL \
                 AND finished_at < $3",
            )
            .bind(issue_id)
            .bind(now)
            .bind(before)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok::<u64, sqlx::Error>(0);
        }
        let in_doubt = rows.iter().filter(|(_, reclaimed)| *reclaimed > 0).count() as i64;
        let mut left = sqlx::QueryBuilder::new(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed' AND unsubscribed_at >= ",
        );
        left.push_bind(since)
            .push(" AND unsubscribed_at < ")
            .push_bind(since + LEFT_WITHIN)
            .push(" AND id IN ");
        push_list(&mut left, rows.iter().map(|(subscriber, _)| *subscriber));
        let left: i64 = left.build_query_scalar().fetch_one(&mut *tx).await?;
        sqlx::query(
            "UPDATE issues SET folded_sent = folded_sent + $2, \
             folded_in_doubt = folded_in_doubt + $3, folded_left = folded_left + $4 WHERE id = $1",
        )
        .bind(issue_id)
        .bind(rows.len() as i64)
        .bind(in_doubt)
        .bind(left)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
    .await
    })?)
}
