//! Who holds deliveries, and how steering reaches them: each running delivery worker has a
//! row that it keeps alive with a heartbeat, and a single counter is bumped with every change
//! that workers must act on (a send starts, pauses, resumes, is cancelled or retried).
//!
//! Lease times (`expires_at`) are real wall-clock time from the caller, never a test's clock:
//! they measure whether a process is alive.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::with_pool;

/// Registers a worker that holds its claims until `expires_at` unless it renews them.
#[tracing::instrument(skip(db))]
pub async fn register(
    db: &Db,
    host: &str,
    pid: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(with_pool!(db, write, |pool| sqlx::query_scalar(
        "INSERT INTO delivery_workers (host, pid, started_at, expires_at) VALUES ($1, $2, $3, $4) \
         RETURNING id"
    )
    .bind(host)
    .bind(pid)
    .bind(now)
    .bind(expires_at)
    .fetch_one(pool)
    .await)?)
}

/// Pushes a worker's lease to `expires_at` and records the steering change it has applied.
/// `false` when the lease had already run out (or the row is gone): others may have taken its
/// rows, so the worker must stop using them and register again.
pub async fn renew(
    db: &Db,
    id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    seen_seq: i64,
) -> Result<bool, StoreError> {
    // The condition on expires_at makes a lapsed lease final: a worker cannot revive claims
    // that another may already be sending.
    let changed = with_pool!(db, write, |pool| {
        sqlx::query(
        "UPDATE delivery_workers SET expires_at = $3, seen_seq = $4 WHERE id = $1 AND expires_at > $2"
    )
    .bind(id)
    .bind(now)
    .bind(expires_at)
    .bind(seen_seq)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Removes a worker that stopped cleanly (after it released what it held).
pub async fn deregister(db: &Db, id: i64) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM delivery_workers WHERE id = $1"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Workers whose lease has run out: their rows may be claimed again.
pub async fn expired(db: &Db, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT id FROM delivery_workers WHERE expires_at <= $1 ORDER BY id"
    )
    .bind(now)
    .fetch_all(pool)
    .await)?)
}

/// Forgets workers whose lease ran out before `before`. Harmless at any time: a row held by a
/// worker that is not alive is claimable whether or not its worker row still exists.
pub async fn forget(db: &Db, before: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM delivery_workers WHERE expires_at < $1"
    )
    .bind(before)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The steering counter now.
pub async fn steer_seq(db: &Db) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT seq FROM delivery_steer WHERE id = 1"
    )
    .fetch_one(pool)
    .await)?)
}

/// The issues whose copies may go out now: sending and not paused.
pub async fn sendable(db: &Db) -> Result<Vec<i64>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT id FROM issues WHERE status = 'sending' AND paused_at IS NULL"
    )
    .fetch_all(pool)
    .await)?)
}

/// Live workers that have not yet applied steering change `seq`.
pub async fn lagging(db: &Db, seq: i64, now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM delivery_workers WHERE expires_at > $1 AND seen_seq < $2"
    )
    .bind(now)
    .bind(seq)
    .fetch_one(pool)
    .await)?)
}

/// Bumps the steering counter inside the transaction that makes the change, and returns the
/// new value. Used by every statement that starts, pauses, resumes, cancels or retries a send.
#[macro_export]
macro_rules! bump_steer {
    ($tx:expr) => {
        sqlx::query_scalar::<_, i64>(
            "UPDATE delivery_steer SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        )
        .fetch_one(&mut *$tx)
    };
}

/// Delivery workers of `host` whose heartbeat is current: the liveness of a worker process
/// (`fortnight healthcheck --worker`).
pub async fn live_on(db: &Db, host: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM delivery_workers WHERE host = $1 AND expires_at > $2"
    )
    .bind(host)
    .bind(now)
    .fetch_one(pool)
    .await)?)
}
