//! A send as the editor sees and steers it: progress, errors, pause, resume, cancel, retry,
//! and the moment it is finished.

use chrono::{DateTime, Utc};

use super::webhooks::{issue_data, queue_webhooks, webhook_targets};
use super::{Db, StoreError};
use crate::domain::webhook::EventType;
use crate::with_pool;

pub use crate::domain::send::{DeliveryError, Progress, Summary};

/// The counts for one issue.
pub async fn progress(db: &Db, issue_id: i64, now: DateTime<Utc>) -> Result<Progress, StoreError> {
    let rows: Vec<(String, i64, i64)> = with_pool!(db, read, |pool| {
        sqlx::query_as(
        "SELECT status, COUNT(*), \
         SUM(CASE WHEN reclaimed > 0 OR (status = 'cancelled' AND claimed_by IS NOT NULL) THEN 1 ELSE 0 END) \
         FROM deliveries WHERE issue_id = $1 GROUP BY status \
         UNION ALL SELECT 'folded', folded_sent, folded_in_doubt FROM issues WHERE id = $1"
    )
    .bind(issue_id)
    .fetch_all(pool)
    .await
    })?;
    let recent: i64 = with_pool!(db, read, |pool| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries WHERE issue_id = $1 AND status = 'sent' AND sent_at > $2"
    )
    .bind(issue_id)
    .bind(now - chrono::Duration::minutes(1))
    .fetch_one(pool)
    .await
    })?;
    let mut p = Progress {
        sent_last_minute: recent,
        ..Progress::default()
    };
    for (status, n, doubt) in rows {
        p.in_doubt += doubt;
        match status.as_str() {
            "pending" => p.pending = n,
            "retrying" => p.retrying = n,
            // Sent rows past `delivery_retention`, counted on the issue in one snapshot
            // with the rows that remain.
            "sent" | "folded" => p.sent += n,
            "failed" => p.failed = n,
            "skipped" => p.skipped = n,
            _ => p.cancelled = n,
        }
    }
    Ok(p)
}

/// What followed an issue: its readers now bounced among its failed deliveries, and the readers
/// who left between `since` (when it went out) and `until` (the next issue, or now).
pub async fn aftermath(
    db: &Db,
    issue_id: i64,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(i64, i64), StoreError> {
    Ok(with_pool!(db, read, |pool| {
        let bounced: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_id = $1 AND d.status = 'failed' AND s.status = 'bounced'",
        )
        .bind(issue_id)
        .fetch_one(pool)
        .await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed' \
             AND unsubscribed_at >= $1 AND unsubscribed_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(pool)
        .await?;
        Ok::<_, sqlx::Error>((bounced, left))
    })?)
}

/// A delivery that went wrong, as read.
#[derive(sqlx::FromRow)]
struct ErrorRow {
    email: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The latest errors of a send, newest first.
pub async fn recent_errors(
    db: &Db,
    issue_id: i64,
    limit: i64,
) -> Result<Vec<DeliveryError>, StoreError> {
    let rows: Vec<ErrorRow> = with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT s.email, d.status, d.attempts, d.last_error, d.updated_at FROM deliveries d \
         JOIN subscribers s ON s.id = d.subscriber_id \
         WHERE d.issue_id = $1 AND d.last_error IS NOT NULL AND d.status IN ('retrying', 'failed') \
         ORDER BY d.updated_at DESC LIMIT $2"
    )
    .bind(issue_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(
            |ErrorRow {
                 email,
                 status,
                 attempts,
                 last_error,
                 updated_at,
             }| DeliveryError {
                email,
                status,
                attempts,
                last_error,
                updated_at,
            },
        )
        .collect())
}

/// Finishes a send whose readers are all enqueued and none pending or retrying: the issue
/// becomes `sent` with its summary. `Some` for the one caller that made the change.
pub async fn complete_if_done(
    db: &Db,
    issue_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Summary>, StoreError> {
    // Cheap first (the index on issue and status answers it): most calls come mid-send.
    let busy: bool = with_pool!(db, read, |pool| {
        sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = $1 AND status IN ('pending', 'retrying'))"
    )
    .bind(issue_id)
    .fetch_one(pool)
    .await
    })?;
    if busy {
        return Ok(None);
    }
    let progress = progress(db, issue_id, now).await?;
    if progress.remaining() > 0 {
        return Ok(None);
    }
    let started: Option<Option<DateTime<Utc>>> = with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT published_at FROM issues WHERE id = $1 AND status = 'sending' AND enqueue_done"
    )
    .bind(issue_id)
    .fetch_optional(pool)
    .await)?;
    let Some(started) = started else {
        return Ok(None);
    };
    let summary = Summary {
        duration_secs: started.map_or(0, |s| (now - s).num_seconds().max(0)),
        progress,
    };
    let json =
        serde_json::to_string(&summary).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // The remaining-work test in the WHERE clause closes the gap between the count above and
    // this update (a retry of failed deliveries may have started meanwhile).
    // Workers learn through the steering counter that the issue is no longer to be sent.
    let issue_sql = format!(
        "SELECT {} FROM issues WHERE id = $1",
        super::issues::COLUMNS
    );
    let changed = with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE issues SET status = 'sent', finished_at = $2, summary = $3, updated_at = $2 \
             WHERE id = $1 AND status = 'sending' AND enqueue_done AND NOT EXISTS \
             (SELECT 1 FROM deliveries WHERE issue_id = $1 AND status IN ('pending', 'retrying'))",
        )
        .bind(issue_id)
        .bind(now)
        .bind(json)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            crate::bump_steer!(tx).await?;
            let event = EventType::IssueSent;
            let targets = webhook_targets!(tx, event);
            if !targets.is_empty() {
                let issue: super::issues::Issue =
                    sqlx::query_as(sqlx::AssertSqlSafe(issue_sql.clone()))
                        .bind(issue_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let summary = serde_json::to_value(&summary).unwrap_or_default();
                queue_webhooks!(
                    tx,
                    &targets,
                    event,
                    [issue_data(&issue, Some(&summary))],
                    now
                );
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(changed)
    }
    .await)?;
    Ok((changed == 1).then_some(summary))
}

/// Holds workers off a sending issue. `Some(steering change)` when it changed anything; the
/// caller waits for the workers to apply it (see [`crate::delivery::steer`]).
pub async fn pause(db: &Db, issue_id: i64, now: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
    steer(
        db,
        "UPDATE issues SET paused_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'sending' AND paused_at IS NULL",
        None,
        issue_id,
        now,
    )
    .await
}

/// Lets workers at a paused issue again.
pub async fn resume(db: &Db, issue_id: i64, now: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
    steer(
        db,
        "UPDATE issues SET paused_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'sending' AND paused_at IS NOT NULL",
        None,
        issue_id,
        now,
    )
    .await
}

/// Stops a send for good: what was sent stays sent, and every delivery still to go, whether
/// waiting, retrying or held by a worker right now, is cancelled (a copy already inside an
/// SMTP transaction is then recorded as what became of it).
pub async fn cancel(db: &Db, issue_id: i64, now: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
    steer(
        db,
        "UPDATE issues SET status = 'cancelled', paused_at = NULL, finished_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'sending'",
        Some(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $2 \
             WHERE issue_id = $1 AND status IN ('pending', 'retrying')",
        ),
        issue_id,
        now,
    )
    .await
}

/// Tries the failed deliveries of a finished send again: they go back to the queue and the
/// issue back to `sending`. Returns how many were requeued.
pub async fn retry_failed(db: &Db, issue_id: i64, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let requeued = with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let reopened = sqlx::query(
            "UPDATE issues SET status = 'sending', finished_at = NULL, folded_at = NULL, \
             updated_at = $2 WHERE id = $1 AND status = 'sent'",
        )
        .bind(issue_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut requeued = 0;
        if reopened == 1 {
            requeued = sqlx::query(
                "UPDATE deliveries SET status = 'retrying', attempts = 0, next_attempt_at = $2, \
                 updated_at = $2 WHERE issue_id = $1 AND status = 'failed'",
            )
            .bind(issue_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            crate::bump_steer!(tx).await?;
        }
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(requeued)
    })?;
    Ok(requeued)
}

/// Runs one conditional update of an issue and, when it matched, `then` (with the same
/// parameters: the issue's id and `now`) and a bump of the steering counter, all in one
/// transaction. `Some(counter)` when it changed anything.
async fn steer(
    db: &Db,
    sql: &'static str,
    then: Option<&'static str>,
    issue_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    // A cancel's update of many rows can meet a worker's transaction on the same rows in the
    // other order; PostgreSQL then aborts one of the two, and this side simply runs again.
    let mut tries = 0;
    loop {
        tries += 1;
        match steer_once(db, sql, then, issue_id, now).await {
            Err(e) if tries < 5 && super::is_transient(&e) => {
                tracing::info!(error = %e, tries, "steering change met a concurrent update; again");
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
            }
            result => return Ok(result?),
        }
    }
}

async fn steer_once(
    db: &Db,
    sql: &'static str,
    then: Option<&'static str>,
    issue_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(sql)
            .bind(issue_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        if let Some(then) = then {
            sqlx::query(then)
                .bind(issue_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let seq = crate::bump_steer!(tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some(seq))
    })
}
