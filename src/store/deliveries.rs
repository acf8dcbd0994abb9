//! The per-reader delivery queue of issues: enqueued in keyset batches when an issue starts,
//! claimed by living workers (see [`super::delivery_workers`]), and finished one outcome per
//! row.

use chrono::{DateTime, Utc};

use super::subscribers::{COLUMNS as SUBSCRIBER_COLUMNS, Subscriber};
use super::{Db, StoreError};
use crate::with_pool;

/// Subscribers written per enqueue transaction.
pub const ENQUEUE_BATCH: i64 = 5_000;

/// A delivery a worker holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Row id.
    pub id: i64,
    /// The issue.
    pub issue_id: i64,
    /// The reader.
    pub subscriber_id: i64,
    /// Tries before this one.
    pub attempts: i32,
    /// When it was due: with `id`, its place in the claim order.
    pub next_attempt_at: DateTime<Utc>,
    /// The worker (registration) that holds it; outcomes are recorded only under it.
    #[sqlx(skip)]
    pub holder: i64,
    /// The reader as they were when it was claimed (`None`: erased since).
    #[sqlx(skip)]
    pub reader: Option<Subscriber>,
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
    /// Not attempted (the send was paused or cancelled, the mail server is away, or the
    /// worker is stopping): back to the queue at `at` without counting a try.
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

/// Where a worker's claims of one issue go on from: the (due time, id) of the last row it took.
/// Rows before it are done, or held by a live worker; a row that becomes claimable again is
/// moved ahead of every position (released and retried rows are due later), except the rows of
/// a worker that died, which the caller finds by starting again from [`Cursor::START`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Due time of the last row taken.
    pub at: DateTime<Utc>,
    /// Its id.
    pub id: i64,
}

impl Cursor {
    /// Before every row.
    pub const START: Cursor = Cursor {
        at: DateTime::<Utc>::UNIX_EPOCH,
        id: 0,
    };
}

/// What one claim took.
#[derive(Debug, Default)]
pub struct Claim {
    /// The rows now held, each with its reader.
    pub rows: Vec<Claimed>,
    /// Sending issues that had fewer due rows than asked for: their send may be over.
    pub drained: Vec<i64>,
}

/// One issue's share of a claim: its due rows in (due time, id) order after the worker's
/// cursor, read from the `deliveries_due` index, so the cost follows the limit, not what is
/// done already. A row is free when nobody holds it or its holder's lease has run out (then it
/// is counted as reclaimed: its copy may have gone out). The issue's state is checked in the
/// statement itself, so a pause or cancel that committed first is honoured. PostgreSQL skips
/// rows another instance is claiming right now; SQLite has one writer.
macro_rules! claim_of_issue {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET claimed_by = $2, \
             reclaimed = reclaimed + (CASE WHEN claimed_by IS NULL THEN 0 ELSE 1 END) \
             WHERE id IN (SELECT d.id FROM deliveries d WHERE d.issue_id = $4 \
             AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $1 \
             AND (d.next_attempt_at, d.id) > ($5, $6) \
             AND (d.claimed_by IS NULL OR d.claimed_by NOT IN \
                  (SELECT w.id FROM delivery_workers w WHERE w.expires_at > $7)) \
             AND EXISTS (SELECT 1 FROM issues i WHERE i.id = $4 AND i.status = 'sending' AND i.paused_at IS NULL) \
             ORDER BY d.next_attempt_at, d.id LIMIT $3",
            $lock,
            ") RETURNING id, issue_id, subscriber_id, attempts, next_attempt_at"
        )
    };
}

/// Claims up to `limit` due deliveries of sending, unpaused issues for worker `holder` (issues
/// in the order they were created, each from its cursor in `cursors`), with their readers, in
/// one transaction. `now` is the business clock (what is due); `alive_at` is the wall clock
/// that leases are compared with. The cursors move only when the claim commits.
#[tracing::instrument(skip(db, cursors))]
pub async fn claim(
    db: &Db,
    holder: i64,
    now: DateTime<Utc>,
    alive_at: DateTime<Utc>,
    limit: i64,
    cursors: &mut std::collections::HashMap<i64, Cursor>,
) -> Result<Claim, StoreError> {
    let sql: &'static str = match db {
        Db::Sqlite { .. } => claim_of_issue!(""),
        Db::Postgres(_) => claim_of_issue!(" FOR UPDATE OF d SKIP LOCKED"),
    };
    let (mut claim, readers) = with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let sending: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM issues WHERE status = 'sending' AND paused_at IS NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut claim = Claim::default();
        for issue_id in sending {
            let want = limit - claim.rows.len() as i64;
            if want <= 0 {
                break;
            }
            let from = cursors.get(&issue_id).copied().unwrap_or(Cursor::START);
            let rows: Vec<Claimed> = sqlx::query_as(sql)
                .bind(now)
                .bind(holder)
                .bind(want)
                .bind(issue_id)
                .bind(from.at)
                .bind(from.id)
                .bind(alive_at)
                .fetch_all(&mut *tx)
                .await?;
            if (rows.len() as i64) < want {
                claim.drained.push(issue_id);
            }
            claim.rows.extend(rows);
        }
        let ids: Vec<i64> = claim.rows.iter().map(|c| c.subscriber_id).collect();
        let readers: Vec<Subscriber> = if ids.is_empty() {
            Vec::new()
        } else {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id IN ("
            ));
            let mut list = query.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build_query_as().fetch_all(&mut *tx).await?
        };
        tx.commit().await?;
        Ok::<_, sqlx::Error>((claim, readers))
    }
    .await)?;
    let mut readers: std::collections::HashMap<i64, Subscriber> =
        readers.into_iter().map(|s| (s.id, s)).collect();
    for row in &mut claim.rows {
        row.holder = holder;
        row.reader = readers.remove(&row.subscriber_id);
        let at = Cursor {
            at: row.next_attempt_at,
            id: row.id,
        };
        let cursor = cursors.entry(row.issue_id).or_insert(Cursor::START);
        if (at.at, at.id) > (cursor.at, cursor.id) {
            *cursor = at;
        }
    }
    Ok(claim)
}

/// Records outcomes in one transaction (the group commit of every copy that finished since the
/// last one). Each update requires the row to be still held by the worker that claimed it, so
/// a worker that lost its claim cannot overwrite what another recorded. A copy that was sent
/// or refused for good is recorded as such even when the send was cancelled while it was in
/// the SMTP transaction; other outcomes leave a cancelled row cancelled. A hard bounce counts
/// against the reader, who is marked bounced at `bounce_threshold`.
///
/// On PostgreSQL the commit does not wait for the WAL flush: the record survives the loss of
/// any Fortnight process at once, and only a crash of the database server itself within its
/// WAL writer delay could lose it, leaving the row held by a worker that lost the database:
/// it is then claimed again and counted in doubt. Claims are always flushed.
#[tracing::instrument(skip(db, outcomes), fields(n = outcomes.len()))]
pub async fn record(
    db: &Db,
    outcomes: &[(Claimed, Outcome)],
    now: DateTime<Utc>,
    bounce_threshold: i32,
) -> Result<(), StoreError> {
    let sent: Vec<(i64, i64, &str)> = outcomes
        .iter()
        .filter_map(|(row, outcome)| match outcome {
            Outcome::Sent(reply) => Some((row.id, row.holder, reply.as_str())),
            _ => None,
        })
        .collect();
    let postgres = matches!(db, Db::Postgres(_));
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        if postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        if !sent.is_empty() {
            let mut query = sqlx::QueryBuilder::new("WITH v(id, holder, reply) AS (");
            query.push_values(&sent, |mut row, (id, holder, reply)| {
                row.push_bind(*id).push_bind(*holder).push_bind(*reply);
            });
            query
                .push(
                    ") UPDATE deliveries SET status = 'sent', smtp_reply = v.reply, \
                     claimed_by = NULL, last_error = NULL, attempts = attempts + 1, sent_at = ",
                )
                .push_bind(now)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" FROM v WHERE deliveries.id = v.id AND deliveries.claimed_by = v.holder");
            query.build().execute(&mut *tx).await?;
        }
        for (row, outcome) in outcomes {
            let query = match outcome {
                Outcome::Sent(_) => continue,
                Outcome::Retry { at, error } => sqlx::query(
                    "UPDATE deliveries SET status = 'retrying', next_attempt_at = $3, last_error = $4, \
                     claimed_by = NULL, attempts = attempts + 1, updated_at = $5 \
                     WHERE id = $1 AND claimed_by = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(*at)
                .bind(error.as_str())
                .bind(now),
                Outcome::Failed { error, .. } => sqlx::query(
                    "UPDATE deliveries SET status = 'failed', last_error = $3, claimed_by = NULL, \
                     attempts = attempts + 1, updated_at = $4 \
                     WHERE id = $1 AND claimed_by = $2 AND status IN ('pending', 'retrying', 'cancelled')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(error.as_str())
                .bind(now),
                Outcome::Skipped => sqlx::query(
                    "UPDATE deliveries SET status = 'skipped', claimed_by = NULL, updated_at = $3 \
                     WHERE id = $1 AND claimed_by = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(now),
                Outcome::Released { at } => sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $3, claimed_by = NULL, updated_at = $4 \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(*at)
                .bind(now),
            };
            let done = query.execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                // Cancelled meanwhile: it stays cancelled, and is no longer held.
                sqlx::query(
                    "UPDATE deliveries SET claimed_by = NULL, updated_at = $3 \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            } else if matches!(outcome, Outcome::Failed { bounce: true, .. }) {
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
