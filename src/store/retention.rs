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
/// rest is left for the next call). Safe to run from any number of instances at once: a batch
/// holds its issue's row, so each delivery row is deleted, and counted, by exactly one
/// transaction, and an issue is marked folded only when none of its rows is left to fold.
pub async fn fold_due(
    db: &Db,
    retention: Duration,
    budget: u64,
    now: DateTime<Utc>,
) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    let before = now - retention;
    loop {
        let due: Vec<(i64, Option<DateTime<Utc>>)> = with_pool!(db, read, |pool| {
            sqlx::query_as(
                "SELECT id, published_at FROM issues WHERE finished_at IS NOT NULL \
                 AND folded_at IS NULL AND finished_at < $1 AND status IN ('sent', 'cancelled') \
                 ORDER BY finished_at, id LIMIT 10",
            )
            .bind(before)
            .fetch_all(pool)
            .await
        })?;
        if due.is_empty() {
            return Ok(folded);
        }
        let before_pass = folded;
        for (issue_id, published_at) in due {
            let since = published_at.unwrap_or(before);
            loop {
                if folded.rows >= budget {
                    return Ok(folded);
                }
                let limit = (budget - folded.rows).min(FOLD_BATCH as u64) as i64;
                match fold_batch(db, issue_id, limit, since, before, now).await? {
                    Batch::Folded(n) => folded.rows += n,
                    Batch::Done => {
                        folded.issues_done += 1;
                        break;
                    }
                    // Reopened by a retry, or marked folded by another instance meanwhile.
                    Batch::NotDue => break,
                }
            }
        }
        if folded == before_pass {
            return Ok(folded);
        }
    }
}

/// What one batch did.
enum Batch {
    /// Deleted and counted this many rows.
    Folded(u64),
    /// Found nothing left to fold, and marked the issue folded.
    Done,
    /// The issue is no longer to be folded (reopened, or already marked).
    NotDue,
}

/// Deletes and counts up to `limit` of an issue's foldable rows; when there are none left,
/// marks the issue folded.
async fn fold_batch(
    db: &Db,
    issue_id: i64,
    limit: i64,
    since: DateTime<Utc>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Batch, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        async {
            let mut tx = pool.begin().await?;
            // Holds the issue's row first: batches of one issue run one after the other
            // across instances (each then sees what the one before deleted), and a send
            // reopened by a retry of its failed copies, or already marked, is left alone.
            let due: Option<i64> = sqlx::query_scalar(
                "UPDATE issues SET folded_sent = folded_sent WHERE id = $1 AND folded_at IS NULL \
                 AND finished_at < $2 AND status IN ('sent', 'cancelled') RETURNING id",
            )
            .bind(issue_id)
            .bind(before)
            .fetch_optional(&mut *tx)
            .await?;
            if due.is_none() {
                return Ok::<Batch, sqlx::Error>(Batch::NotDue);
            }
            // No order: the index on (issue, status) gives the next batch without sorting the
            // issue's rows each time.
            let rows: Vec<(i64, i32)> = sqlx::query_as(
                "DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d \
                 WHERE d.issue_id = $1 AND d.status = 'sent' \
                 AND NOT EXISTS (SELECT 1 FROM mail_events e \
                     WHERE e.subscriber_id = d.subscriber_id AND e.issue_id = d.issue_id) \
                 LIMIT $2) \
                 RETURNING subscriber_id, reclaimed",
            )
            .bind(issue_id)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                sqlx::query("UPDATE issues SET folded_at = $2 WHERE id = $1")
                    .bind(issue_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Batch::Done);
            }
            let in_doubt = rows.iter().filter(|(_, reclaimed)| *reclaimed > 0).count() as i64;
            let mut left = sqlx::QueryBuilder::new(
                "SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed' \
                 AND unsubscribed_at >= ",
            );
            left.push_bind(since)
                .push(" AND unsubscribed_at < ")
                .push_bind(since + LEFT_WITHIN)
                .push(" AND id IN ");
            push_list(&mut left, rows.iter().map(|(subscriber, _)| *subscriber));
            let left: i64 = left.build_query_scalar().fetch_one(&mut *tx).await?;
            sqlx::query(
                "UPDATE issues SET folded_sent = folded_sent + $2, \
                 folded_in_doubt = folded_in_doubt + $3, folded_left = folded_left + $4 \
                 WHERE id = $1",
            )
            .bind(issue_id)
            .bind(rows.len() as i64)
            .bind(in_doubt)
            .bind(left)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Batch::Folded(rows.len() as u64))
        }
        .await
    })?)
}
