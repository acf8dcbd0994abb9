//! Bulk insertion of imported subscribers.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
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
}

impl Added {
    /// All new subscribers.
    pub fn total(&self) -> u64 {
        self.active + self.pending + self.inactive
    }
}

/// Inserts one batch in one transaction. Addresses already on the list, or repeated in the
/// batch, are left as they are (an import never resubscribes anyone); pending newcomers get a
/// confirmation email queued in the same transaction.
#[tracing::instrument(skip_all, fields(n = rows.len()))]
pub async fn insert(db: &Db, rows: &[ImportRow], now: DateTime<Utc>) -> Result<Added, StoreError> {
    if rows.is_empty() {
        return Ok(Added::default());
    }
    let (inserted, opted_out): (Vec<(i64, String)>, u64) = with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let mut opted_out = 0;
        for gone in [SubscriberStatus::Unsubscribed, SubscriberStatus::Bounced] {
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
            update.push(")");
            opted_out += update.build().execute(&mut *tx).await?.rows_affected();
        }
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO subscribers (uid, email, email_key, name, status, consent_at, consent_source, \
             created_at, confirmed_at, unsubscribed_at, updated_at) ",
        );
        insert.push_values(rows, |mut b, row| {
            let created = row.created_at.unwrap_or(now);
            let active = row.status == SubscriberStatus::Active;
            let gone = matches!(
                row.status,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
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
        let inserted: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
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
        tx.commit().await?;
        Ok::<_, sqlx::Error>((inserted, opted_out))
    })?;
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
    Ok(added)
}
