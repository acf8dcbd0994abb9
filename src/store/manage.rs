//! What readers change for themselves on their manage page: a pause, a new address (confirmed
//! by the new address first), leaving with a reason.

use chrono::{DateTime, Utc};

use super::outbox::Notice;
use super::webhooks::queue_subscriber_webhooks;
use super::{Db, StoreError};
use crate::domain::SubscriberEmail;
use crate::domain::token::TokenHash;
use crate::domain::webhook::EventType;
use crate::with_pool;

/// Makes a pausing reader skip the next `issues` issues meant for them (0 resumes at once).
/// Only an active reader pauses; returns whether the reader was changed.
#[tracing::instrument(skip(db))]
pub async fn pause(db: &Db, id: i64, issues: i32, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let changed = with_pool!(db, write, |pool| {
        sqlx::query(
        "UPDATE subscribers SET skip_issues = $2, updated_at = $3 WHERE id = $1 AND status = 'active'"
    )
    .bind(id)
    .bind(issues)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Takes a reader off the list from their manage page, keeping what they said; idempotent.
/// Returns whether the reader was on the list.
#[tracing::instrument(skip(db, reason))]
pub async fn unsubscribe_with_reason(
    db: &Db,
    id: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let left = with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2, updated_at = $2, \
             unsubscribe_reason = $3 WHERE id = $1 AND status IN ('pending', 'active') RETURNING id",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        let left: Vec<i64> = left.into_iter().collect();
        let changed = !left.is_empty();
        queue_subscriber_webhooks!(tx, EventType::SubscriberUnsubscribed, "id", left, now);
        tx.commit().await?;
        Ok::<_, sqlx::Error>(changed)
    }
    .await
    })?;
    Ok(left)
}

/// What asking for a new address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRequested {
    /// A confirmation is on its way to the new address.
    Queued,
    /// Another subscriber has that address.
    Taken,
    /// The address bounced or complained before: it is not mailed.
    Suppressed,
    /// Three changes were asked for within the hour already: nothing more is mailed for now.
    TooMany,
}

/// Records a request to move `subscriber_id` to `new_email` and queues the email that
/// confirms it, in one transaction.
#[tracing::instrument(skip_all)]
pub async fn request_email_change(
    db: &Db,
    subscriber_id: i64,
    new_email: &SubscriberEmail,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<ChangeRequested, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM email_changes WHERE subscriber_id = $1 AND created_at > $2",
        )
        .bind(subscriber_id)
        .bind(now - chrono::Duration::hours(1))
        .fetch_one(&mut *tx)
        .await?;
        if recent >= 3 {
            return Ok(ChangeRequested::TooMany);
        }
        let suppressed: Option<String> =
            sqlx::query_scalar("SELECT email_key FROM suppressions WHERE email_key = $1")
                .bind(new_email.key())
                .fetch_optional(&mut *tx)
                .await?;
        if suppressed.is_some() {
            return Ok(ChangeRequested::Suppressed);
        }
        let holder: Option<i64> =
            sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
                .bind(new_email.key())
                .fetch_optional(&mut *tx)
                .await?;
        if holder.is_some_and(|id| id != subscriber_id) {
            return Ok(ChangeRequested::Taken);
        }
        let change: i64 = sqlx::query_scalar(
            "INSERT INTO email_changes (subscriber_id, new_email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(subscriber_id)
        .bind(new_email.as_str())
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO mail_outbox (kind, subscriber_id, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ('email_change', $1, $2, 'pending', 0, $3, $3)",
        )
        .bind(subscriber_id)
        .bind(change.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(ChangeRequested::Queued)
    }
    .await
    })?)
}

/// The new address of a change still open, with its fresh link's hash recorded (a later
/// email's link replaces an earlier one).
#[tracing::instrument(skip(db, hash))]
pub async fn prepare_email_change(
    db: &Db,
    change_id: i64,
    hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        sqlx::query_scalar(
        "UPDATE email_changes SET token_hash = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $3 \
         RETURNING new_email"
    )
    .bind(change_id)
    .bind(&hash.0[..])
    .bind(now)
    .fetch_optional(pool)
    .await
    })?)
}

/// What following an address-change link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeConfirmed {
    /// The subscription now goes to the new address; the old one is told.
    Changed {
        /// The address it goes to now.
        new_email: String,
    },
    /// Another subscriber took the address meanwhile, or it was suppressed.
    Taken,
    /// The link was used, or is past its expiry, or the reader has left.
    Expired,
    /// No such link.
    Unknown,
}

/// A pending address change, as its link finds it.
#[derive(sqlx::FromRow)]
struct EmailChange {
    id: i64,
    subscriber_id: i64,
    new_email: String,
    used_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

/// Spends an address-change link: the subscriber's address becomes the new one and a notice
/// to the old address is queued, in one transaction.
#[tracing::instrument(skip_all)]
pub async fn confirm_email_change(
    db: &Db,
    hash: &TokenHash,
    publication: &str,
    now: DateTime<Utc>,
) -> Result<ChangeConfirmed, StoreError> {
    let outcome = with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        let found: Option<EmailChange> =
            sqlx::query_as(
                "SELECT id, subscriber_id, new_email, used_at, expires_at FROM email_changes WHERE token_hash = $1",
            )
            .bind(&hash.0[..])
            .fetch_optional(&mut *tx)
            .await?;
        let Some(EmailChange {
            id: change,
            subscriber_id,
            new_email,
            used_at,
            expires_at,
        }) = found
        else {
            return Ok(ChangeConfirmed::Unknown);
        };
        if used_at.is_some() || expires_at <= now {
            return Ok(ChangeConfirmed::Expired);
        }
        let Ok(parsed) = SubscriberEmail::parse(&new_email) else {
            return Ok(ChangeConfirmed::Unknown);
        };
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM subscribers WHERE email_key = $1 AND id <> $2",
        )
        .bind(parsed.key())
        .bind(subscriber_id)
        .fetch_optional(&mut *tx)
        .await?;
        let suppressed: Option<String> =
            sqlx::query_scalar("SELECT email_key FROM suppressions WHERE email_key = $1")
                .bind(parsed.key())
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() || suppressed.is_some() {
            return Ok(ChangeConfirmed::Taken);
        }
        let old: Option<String> = sqlx::query_scalar(
            "SELECT email FROM subscribers WHERE id = $1 AND status IN ('pending', 'active')",
        )
        .bind(subscriber_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = old else {
            return Ok(ChangeConfirmed::Expired);
        };
        sqlx::query("UPDATE email_changes SET used_at = $2 WHERE id = $1")
            .bind(change)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let moved = sqlx::query(
            "UPDATE subscribers SET email = $2, email_key = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(subscriber_id)
        .bind(parsed.as_str())
        .bind(parsed.key())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match moved {
            // A signup took the address after the check above.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Ok(ChangeConfirmed::Taken);
            }
            other => other?,
        };
        let notice = Notice {
            to: old.clone(),
            subject: format!("Your subscription to {publication} has moved"),
            text: format!(
                "Hello,\n\nYour subscription to {publication} now goes to {} instead of this address, \
                 as was asked on your subscription page and confirmed from the new address.\n\n\
                 If you did not ask for this, reply to this email.\n",
                parsed.as_str()
            ),
        };
        let payload = serde_json::to_string(&notice).unwrap_or_default();
        sqlx::query(
            "INSERT INTO mail_outbox (kind, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ('notice', $1, 'pending', 0, $2, $2)",
        )
        .bind(payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(ChangeConfirmed::Changed {
            new_email: parsed.as_str().to_owned(),
        })
    }
    .await
    })?;
    Ok(outcome)
}
