//! Import jobs: the uploaded file in chunks, the job's progress, and who holds it.
//!
//! Lease times are real wall-clock time from the caller, never a test's clock: they measure
//! whether a process is alive. A batch of rows is committed together with the job's progress by
//! [`super::subscriber_import::insert`], on condition that the caller still holds the job.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::{ImportJob, RowProblem};
use crate::with_pool;

/// Bytes of the file per stored chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Problems listed per job; the rest are only counted.
pub const MAX_LISTED: i64 = 1000;

from_row!(ImportJob {
    id: plain,
    file_name: plain,
    size_bytes: plain,
    consented: plain,
    state: parsed,
    created_at: plain,
    started_at: plain,
    finished_at: plain,
    resume_offset: plain,
    rows_read: plain,
    added_active: plain,
    added_pending: plain,
    added_inactive: plain,
    duplicates: plain,
    opted_out: plain,
    invalid: plain,
    suppressed: plain,
    error: plain,
});

const COLUMNS: &str = "id, file_name, size_bytes, consented, state, created_at, started_at, finished_at, \
     resume_offset, rows_read, added_active, added_pending, added_inactive, duplicates, opted_out, \
     invalid, suppressed, error";

/// Starts a job whose file is about to be stored ([`add_chunk`], then [`queue`]).
#[tracing::instrument(skip(db))]
pub async fn create(
    db: &Db,
    file_name: &str,
    size_bytes: i64,
    consented: bool,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(with_pool!(db, write, |pool| sqlx::query_scalar(
        "INSERT INTO import_jobs (file_name, size_bytes, consented, state, created_at) \
         VALUES ($1, $2, $3, 'loading', $4) RETURNING id"
    )
    .bind(file_name)
    .bind(size_bytes)
    .bind(consented)
    .bind(now)
    .fetch_one(pool)
    .await)?)
}

/// Stores the `seq`th chunk of a loading job's file.
pub async fn add_chunk(db: &Db, id: i64, seq: i32, data: &[u8]) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "INSERT INTO import_chunks (job_id, seq, data) VALUES ($1, $2, $3)"
    )
    .bind(id)
    .bind(seq)
    .bind(data)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The whole file is stored: the job may be taken.
pub async fn queue(db: &Db, id: i64) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "UPDATE import_jobs SET state = 'queued' WHERE id = $1 AND state = 'loading'"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Removes a job whose file could not be stored.
pub async fn discard(db: &Db, id: i64) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM import_jobs WHERE id = $1 AND state = 'loading'"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Marks as failed the jobs whose upload was cut off before `before` (the process storing the
/// file died), and drops their chunks.
pub async fn fail_abandoned_uploads(
    db: &Db,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "DELETE FROM import_chunks WHERE job_id IN \
             (SELECT id FROM import_jobs WHERE state = 'loading' AND created_at < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let failed = sqlx::query(
            "UPDATE import_jobs SET state = 'failed', finished_at = $2, \
             error = 'The upload was cut off before the whole file was stored.' \
             WHERE state = 'loading' AND created_at < $1",
        )
        .bind(before)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok::<_, sqlx::Error>(failed)
    })?)
}

/// Takes the oldest open job (or job `only`) that nobody holds, for `runner` until
/// `lease_until`. A job whose holder's lease lapsed is taken over; it resumes where its last
/// committed batch ended.
#[tracing::instrument(skip(db))]
pub async fn claim(
    db: &Db,
    runner: &str,
    only: Option<i64>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<ImportJob>, StoreError> {
    // The outer condition is checked again on the locked row, so of two processes that pick
    // the same job only one gets it.
    let sql = format!(
        "UPDATE import_jobs SET state = 'running', runner = $1, lease_until = $3, \
         started_at = COALESCE(started_at, $2) \
         WHERE id = (SELECT id FROM import_jobs WHERE state IN ('queued', 'running') \
                     AND (lease_until IS NULL OR lease_until < $2) AND ($4 IS NULL OR id = $4) \
                     ORDER BY id LIMIT 1) \
         AND state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until < $2) \
         RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, write, |pool| sqlx::query_as(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(runner)
    .bind(now)
    .bind(lease_until)
    .bind(only)
    .fetch_optional(pool)
    .await)?)
}

/// Lets go of a job without finishing it (a graceful stop): any process may resume it at once.
pub async fn release(db: &Db, id: i64, runner: &str) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "UPDATE import_jobs SET runner = NULL, lease_until = NULL WHERE id = $1 AND runner = $2"
    )
    .bind(id)
    .bind(runner)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Ends a held job: done when `error` is `None`, failed otherwise. Its file is dropped. `false`
/// when the caller no longer held it.
pub async fn finish(
    db: &Db,
    id: i64,
    runner: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let state = if error.is_some() { "failed" } else { "done" };
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE import_jobs SET state = $3, error = $4, finished_at = $5, runner = NULL, \
             lease_until = NULL WHERE id = $1 AND runner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(runner)
        .bind(state)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query("DELETE FROM import_chunks WHERE job_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(changed == 1)
    })?)
}

/// The `seq`th chunk of a job's file, `None` past its end.
pub async fn chunk(db: &Db, id: i64, seq: i32) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT data FROM import_chunks WHERE job_id = $1 AND seq = $2"
    )
    .bind(id)
    .bind(seq)
    .fetch_optional(pool)
    .await)?)
}

/// One job.
pub async fn get(db: &Db, id: i64) -> Result<Option<ImportJob>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM import_jobs WHERE id = $1");
    Ok(with_pool!(db, read, |pool| sqlx::query_as(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?)
}

/// The latest `limit` jobs, newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<ImportJob>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM import_jobs ORDER BY id DESC LIMIT $1");
    Ok(with_pool!(db, read, |pool| sqlx::query_as(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?)
}

/// The listed problems of a job, by line.
pub async fn problems(db: &Db, id: i64) -> Result<Vec<RowProblem>, StoreError> {
    let rows: Vec<(i64, String)> = with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT line, reason FROM import_problems WHERE job_id = $1 ORDER BY line"
    )
    .bind(id)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(line, reason)| RowProblem { line, reason })
        .collect())
}
