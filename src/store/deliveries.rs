//! The per-reader delivery queue of issues: enqueued in keyset batches when an issue starts,
//! claimed by living workers and finished one outcome per row (see
//! [`super::delivery_ledger`]).

use chrono::{DateTime, Utc};
use uuid::Uuid;

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
    pub reader: Option<Recipient>,
}

/// What a copy needs of its reader.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    /// The subscriber's id.
    pub subscriber_id: i64,
    /// Public random id (the Message-ID and the unsubscribe link derive from it).
    pub uid: Uuid,
    /// The address.
    pub email: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// Lifecycle state: only `active` readers are sent to.
    pub status: String,
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
        // The cursor moves first, and only from where this batch starts: only the transaction
        // that moves it enqueues the batch, so another instance's run of an overlapping batch
        // changes nothing (pauses are counted once per issue).
        let moved = sqlx::query(
            "UPDATE issues SET enqueued_through = $2 WHERE id = $1 AND enqueued_through = $3",
        )
        .bind(issue.id)
        .bind(bound)
        .bind(issue.enqueued_through)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return tx.rollback().await.map(|_| looked.max(1));
        }
        let segment = super::tags::read_segment!(&mut *tx, issue.id);
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, next_attempt_at, updated_at) SELECT ",
        );
        insert
            .push_bind(issue.id)
            .push(", id, 'pending', ")
            .push_bind(now)
            .push(", ")
            .push_bind(now)
            .push(" FROM subscribers WHERE id > ")
            .push_bind(issue.enqueued_through)
            .push(" AND id <= ")
            .push_bind(bound);
        super::tags::push_audience(&mut insert, &segment, started);
        insert.push(" ON CONFLICT (issue_id, subscriber_id) DO NOTHING");
        insert.build().execute(&mut *tx).await?;
        // Readers pausing for the next issues meant for them skip this one: one fewer to skip.
        let mut skip = sqlx::QueryBuilder::new(
            "UPDATE subscribers SET skip_issues = skip_issues - 1 WHERE skip_issues > 0 AND status = 'active' AND id > ",
        );
        skip.push_bind(issue.enqueued_through)
            .push(" AND id <= ")
            .push_bind(bound)
            .push(" AND COALESCE(confirmed_at, created_at) <= ")
            .push_bind(started);
        super::tags::push_segment(&mut skip, &segment);
        skip.build().execute(&mut *tx).await?;
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

/// Deliveries waiting to go out (pending or retrying), across all issues.
pub async fn queue_depth(db: &Db) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retrying')"
    )
    .fetch_one(pool)
    .await)?)
}
