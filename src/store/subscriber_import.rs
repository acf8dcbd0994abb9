//! Bulk insertion of imported subscribers.

use crate::domain::webhook::EventType;
use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::{ConsentSource, RowProblem, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::with_pool;

/// One valid row of an import.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// The address.
    pub email: SubscriberEmail,
    /// The name, if given.
    pub name: Option<SubscriberName>,
    /// The status to arrive with.
    pub status: SubscriberStatus,
    /// When they originally signed up, if the file says.
    pub created_at: Option<DateTime<Utc>>,
    /// Tags to give them (made where missing), new or already on the list.
    pub tags: Vec<crate::domain::tag::TagName>,
}

/// New subscribers one batch added, by status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Added {
    /// Active.
    pub active: u64,
    /// Pending, each with a confirmation email queued.
    pub pending: u64,
    /// Unsubscribed or bounced.
    pub inactive: u64,
    /// Subscribers already on the list whom the file marks unsubscribed or bounced, and who
    /// now are (an opt-out is never lost; nobody is ever made active by an import).
    pub opted_out: u64,
    /// Rows not added because their address is suppressed (it bounced or complained).
    pub suppressed: u64,
}

impl Added {
    /// All new subscribers.
    pub fn total(&self) -> u64 {
        self.active + self.pending + self.inactive
    }
}

/// Where a batch ends in its import job, committed with the batch.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    /// The job.
    pub job_id: i64,
    /// The process that holds it: the batch commits only if it still does.
    pub runner: &'a str,
    /// The holder's lease, renewed with each batch.
    pub lease_until: DateTime<Utc>,
    /// The byte of the file where the next batch starts.
    pub resume_offset: i64,
    /// Data rows the batch read (valid and invalid).
    pub rows_read: i64,
    /// Invalid rows in the batch.
    pub invalid: i64,
    /// Those of them to list on the job.
    pub listed: &'a [RowProblem],
}

/// Inserts one batch in one transaction. Addresses already on the list, or repeated in the
/// batch, are left as they are (an import never resubscribes anyone); pending newcomers get a
/// confirmation email queued in the same transaction. With a checkpoint, the job's progress is
/// committed in the same transaction, and `None` means the caller no longer holds the job
/// (nothing was written).
#[tracing::instrument(skip_all, fields(n = rows.len()))]
pub async fn insert(
    db: &Db,
    rows: &[ImportRow],
    checkpoint: Option<Checkpoint<'_>>,
    now: DateTime<Utc>,
) -> Result<Option<Added>, StoreError> {
    if rows.is_empty() && checkpoint.is_none() {
        return Ok(Some(Added::default()));
    }
    let result: Option<Added> = with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        if let Some(c) = checkpoint {
            // The job row first: it is locked for the batch, and a lost job writes nothing.
            let held = sqlx::query(
                "UPDATE import_jobs SET lease_until = $3 WHERE id = $1 AND runner = $2 AND state = 'running'",
            )
            .bind(c.job_id)
            .bind(c.runner)
            .bind(c.lease_until)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if held == 0 {
                return Ok(None);
            }
        }
        let mut opted_out = 0;
        for gone in [
            SubscriberStatus::Unsubscribed,
            SubscriberStatus::Bounced,
            SubscriberStatus::Complained,
        ] {
            let keys: Vec<String> = rows
                .iter()
                .filter(|r| r.status == gone)
                .map(|r| r.email.key())
                .collect();
            if keys.is_empty() {
                continue;
            }
            // Existing subscribers still on the list take the file's opt-out.
            let mut update = sqlx::QueryBuilder::new("UPDATE subscribers SET status = ");
            update
                .push_bind(gone.as_str())
                .push(", unsubscribed_at = ")
                .push_bind(now);
            update.push(", updated_at = ").push_bind(now);
            update.push(" WHERE status IN ('pending', 'active') AND email_key IN (");
            let mut list = update.separated(", ");
            for key in keys {
                list.push_bind(key);
            }
            update.push(") RETURNING id");
            let left: Vec<i64> = update.build_query_scalar().fetch_all(&mut *tx).await?;
            opted_out += left.len() as u64;
            let event = match gone {
                SubscriberStatus::Bounced => EventType::SubscriberBounced,
                SubscriberStatus::Complained => EventType::SubscriberComplained,
                _ => EventType::SubscriberUnsubscribed,
            };
            super::webhooks::queue_subscriber_webhooks!(tx, event, "id", left, now);
        }
        // Suppressed addresses (a bounce or a complaint) are not added back.
        let mut suppressed: HashSet<String> = HashSet::new();
        for chunk in rows.chunks(1000) {
            let mut query =
                sqlx::QueryBuilder::new("SELECT email_key FROM suppressions WHERE email_key IN ");
            super::push_list(&mut query, chunk.iter().map(|row| row.email.key()));
            suppressed.extend(
                query
                    .build_query_scalar::<String>()
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        let kept: Vec<&ImportRow> = rows
            .iter()
            .filter(|r| !suppressed.contains(&r.email.key()))
            .collect();
        let inserted: Vec<(i64, String)> = if kept.is_empty() {
            Vec::new()
        } else {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO subscribers (uid, email, email_key, name, status, consent_at, consent_source, \
             created_at, confirmed_at, unsubscribed_at, updated_at) ",
            );
            insert.push_values(kept.iter().copied(), |mut b, row| {
                let created = row.created_at.unwrap_or(now);
                let active = row.status == SubscriberStatus::Active;
                let gone = matches!(
                    row.status,
                    SubscriberStatus::Unsubscribed
                        | SubscriberStatus::Bounced
                        | SubscriberStatus::Complained
                );
                b.push_bind(crate::domain::new_uid())
                    .push_bind(row.email.as_str().to_owned())
                    .push_bind(row.email.key())
                    .push_bind(row.name.as_ref().map(|n| n.as_str().to_owned()))
                    .push_bind(row.status.as_str())
                    .push_bind(created)
                    .push_bind(ConsentSource::Import.as_str())
                    .push_bind(created)
                    .push_bind(active.then_some(now))
                    .push_bind(gone.then_some(now))
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT (email_key) DO NOTHING RETURNING id, status");
            insert.build_query_as().fetch_all(&mut *tx).await?
        };
        let pending: Vec<i64> = inserted
            .iter()
            .filter(|(_, s)| s == "pending")
            .map(|(id, _)| *id)
            .collect();
        if !pending.is_empty() {
            let mut queue = sqlx::QueryBuilder::new(
                "INSERT INTO mail_outbox (kind, subscriber_id, status, attempts, next_attempt_at, created_at) ",
            );
            queue.push_values(&pending, |mut b, id| {
                b.push("'confirm'")
                    .push_bind(*id)
                    .push("'pending'")
                    .push("0")
                    .push_bind(now)
                    .push_bind(now);
            });
            queue.build().execute(&mut *tx).await?;
        }
        // Tags from the file: made where missing, then given to each row's subscriber (new or
        // already on the list), in this batch's transaction.
        let mut names: Vec<&crate::domain::tag::TagName> = Vec::new();
        for name in kept.iter().flat_map(|r| &r.tags) {
            if !names.iter().any(|n| n.key() == name.key()) {
                names.push(name);
            }
        }
        if !names.is_empty() {
            let mut make = sqlx::QueryBuilder::new(
                "INSERT INTO tags (name, name_key, description, public, created_at) ",
            );
            make.push_values(&names, |mut b, name| {
                b.push_bind(name.as_str().to_owned())
                    .push_bind(name.key())
                    .push("''")
                    .push("FALSE")
                    .push_bind(now);
            });
            make.push(" ON CONFLICT (name_key) DO NOTHING");
            make.build().execute(&mut *tx).await?;
            for chunk in kept
                .iter()
                .filter(|r| !r.tags.is_empty())
                .collect::<Vec<_>>()
                .chunks(200)
            {
                let pairs: Vec<(String, String)> = chunk
                    .iter()
                    .flat_map(|r| r.tags.iter().map(|t| (r.email.key(), t.key())))
                    .collect();
                let mut give = sqlx::QueryBuilder::new(
                    "INSERT INTO subscriber_tags (subscriber_id, tag_id, created_at) \
                     SELECT s.id, t.id, ",
                );
                give.push_bind(now)
                    .push(" FROM subscribers s JOIN tags t ON (s.email_key, t.name_key) IN (");
                let mut list = give.separated(", ");
                for (email, tag) in pairs {
                    list.push("(")
                        .push_bind_unseparated(email)
                        .push_unseparated(", ")
                        .push_bind_unseparated(tag)
                        .push_unseparated(")");
                }
                give.push(") ON CONFLICT (subscriber_id, tag_id) DO NOTHING");
                give.build().execute(&mut *tx).await?;
            }
        }
        let mut added = count(&inserted, opted_out);
        added.suppressed = (rows.len() - kept.len()) as u64;
        if let Some(c) = checkpoint {
            sqlx::query(
                "UPDATE import_jobs SET resume_offset = $2, rows_read = rows_read + $3, \
                 added_active = added_active + $4, added_pending = added_pending + $5, \
                 added_inactive = added_inactive + $6, duplicates = duplicates + $7, \
                 opted_out = opted_out + $8, invalid = invalid + $9, suppressed = suppressed + $10 \
                 WHERE id = $1",
            )
            .bind(c.job_id)
            .bind(c.resume_offset)
            .bind(c.rows_read)
            .bind(added.active as i64)
            .bind(added.pending as i64)
            .bind(added.inactive as i64)
            .bind((kept.len() as u64 - added.total()) as i64)
            .bind(added.opted_out as i64)
            .bind(c.invalid)
            .bind(added.suppressed as i64)
            .execute(&mut *tx)
            .await?;
            for problem in c.listed {
                sqlx::query(
                    "INSERT INTO import_problems (job_id, line, reason) VALUES ($1, $2, $3) \
                     ON CONFLICT (job_id, line) DO NOTHING",
                )
                .bind(c.job_id)
                .bind(problem.line)
                .bind(&problem.reason)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some(added))
    })?;
    Ok(result)
}

fn count(inserted: &[(i64, String)], opted_out: u64) -> Added {
    let mut added = Added {
        opted_out,
        ..Added::default()
    };
    for (_, status) in inserted {
        match status.as_str() {
            "active" => added.active += 1,
            "pending" => added.pending += 1,
            _ => added.inactive += 1,
        }
    }
    added
}
