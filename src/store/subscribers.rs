//! Subscribers: signup with double opt-in, confirmation, unsubscription.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, outbox};
use crate::domain::token::TokenHash;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::with_pool;

/// A stored subscriber.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscriber {
    /// Internal id.
    pub id: i64,
    /// Public random id; unsubscribe links derive from it.
    pub uid: Uuid,
    /// The address as given.
    pub email: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// Lifecycle state.
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
    /// When consent was last given.
    pub consent_at: DateTime<Utc>,
    /// Where consent was last given (form, api, import, admin).
    pub consent_source: String,
    /// The address consent came from, when known.
    pub consent_ip: Option<String>,
    /// First signup.
    pub created_at: DateTime<Utc>,
    /// Latest confirmation.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Latest unsubscription.
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, uid, email, name, status, consent_at, consent_source, consent_ip, \
                       created_at, confirmed_at, unsubscribed_at";

/// A signup request that has passed validation.
#[derive(Debug, Clone)]
pub struct NewSignup {
    /// The address.
    pub email: SubscriberEmail,
    /// The optional name.
    pub name: Option<SubscriberName>,
    /// Where the signup came from.
    pub source: ConsentSource,
    /// The client's address, kept as consent evidence.
    pub ip: Option<String>,
}

/// What a signup did. Callers must answer the reader identically in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A new pending subscriber; a confirmation is queued.
    Created,
    /// Already pending; a fresh confirmation is queued.
    ConfirmationResent,
    /// Already active; nothing queued.
    AlreadyActive,
    /// Had left (or bounced); back to pending with a confirmation queued.
    Resubscribed,
}

/// Records a signup and, where one is due, queues the confirmation email in the same
/// transaction, so a signup is never stored without its email or the reverse.
#[tracing::instrument(skip_all)]
pub async fn signup(
    db: &Db,
    new: &NewSignup,
    now: DateTime<Utc>,
) -> Result<SignupOutcome, StoreError> {
    let key = new.email.key();
    let name = new.name.as_ref().map(|n| n.as_str());
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        // A new address becomes a pending row; an existing one (any case) is left for below.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers (uid, email, email_key, name, status, consent_at, consent_source, \
             consent_ip, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $5, $5) \
             ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(new.email.as_str())
        .bind(&key)
        .bind(name)
        .bind(now)
        .bind(new.source.as_str())
        .bind(new.ip.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = if let Some(id) = inserted {
            outbox::enqueue_confirmation(id, now)
                .execute(&mut *tx)
                .await?;
            SignupOutcome::Created
        } else {
            let (id, status): (i64, String) =
                sqlx::query_as("SELECT id, status FROM subscribers WHERE email_key = $1")
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await?;
            if status == "active" {
                SignupOutcome::AlreadyActive
            } else {
                // Pending, unsubscribed or bounced: consent is given again now, so record it and
                // (re)start double opt-in. The status guard keeps a concurrent confirm intact.
                sqlx::query(
                    "UPDATE subscribers SET status = 'pending', name = COALESCE($2, name), \
                     consent_at = $3, consent_source = $4, consent_ip = $5, updated_at = $3 \
                     WHERE id = $1 AND status <> 'active'",
                )
                .bind(id)
                .bind(name)
                .bind(now)
                .bind(new.source.as_str())
                .bind(new.ip.as_deref())
                .execute(&mut *tx)
                .await?;
                outbox::enqueue_confirmation(id, now)
                    .execute(&mut *tx)
                    .await?;
                if status == "pending" {
                    SignupOutcome::ConfirmationResent
                } else {
                    SignupOutcome::Resubscribed
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    })
}

/// A pending subscriber about to be sent a confirmation, with the new token recorded.
/// `None` when the subscriber is gone or no longer pending (nothing to confirm).
#[tracing::instrument(skip(db, hash))]
pub async fn prepare_confirmation(
    db: &Db,
    subscriber_id: i64,
    hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<Subscriber>, StoreError> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let found: Option<Subscriber> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE id = $1 AND status = 'pending'"
        )))
        .bind(subscriber_id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_some() {
            sqlx::query(
                "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&hash.0[..])
            .bind(subscriber_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(found)
    })
}

/// What following a confirmation link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The subscriber is now active.
    Confirmed,
    /// The link was already used, or the subscriber is already active.
    AlreadyConfirmed,
    /// The subscriber unsubscribed after this link was sent.
    NoLongerSubscribed,
    /// The link is past its expiry.
    Expired,
    /// No such link.
    Unknown,
}

/// Spends a confirmation token and activates its pending subscriber.
#[tracing::instrument(skip_all)]
pub async fn confirm(
    db: &Db,
    hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<ConfirmOutcome, StoreError> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        // Spend the token only while it is unspent and unexpired.
        let spent: Option<i64> = sqlx::query_scalar(
            "UPDATE confirmation_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING subscriber_id",
        )
        .bind(&hash.0[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match spent {
            Some(subscriber_id) => {
                // Only a pending subscriber becomes active: one who left since must sign up again.
                let status: Option<String> = sqlx::query_scalar(
                    "UPDATE subscribers SET status = CASE WHEN status = 'pending' THEN 'active' ELSE status END, \
                     confirmed_at = CASE WHEN status = 'pending' THEN $2 ELSE confirmed_at END, updated_at = $2 \
                     WHERE id = $1 RETURNING status",
                )
                .bind(subscriber_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                match status.as_deref() {
                    Some("active") => ConfirmOutcome::Confirmed,
                    Some(_) => ConfirmOutcome::NoLongerSubscribed,
                    None => ConfirmOutcome::Unknown,
                }
            }
            None => {
                let used: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                    "SELECT used_at FROM confirmation_tokens WHERE token_hash = $1",
                )
                .bind(&hash.0[..])
                .fetch_optional(&mut *tx)
                .await?;
                match used {
                    None => ConfirmOutcome::Unknown,
                    Some(Some(_)) => ConfirmOutcome::AlreadyConfirmed,
                    Some(None) => ConfirmOutcome::Expired,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    })
}

/// What following an unsubscribe link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeOutcome {
    /// The subscriber has left the list now.
    Unsubscribed,
    /// The subscriber had already left (or bounced).
    AlreadyGone,
    /// No subscriber has this id (erased).
    Unknown,
}

/// Takes a subscriber off the list; idempotent.
#[tracing::instrument(skip(db))]
pub async fn unsubscribe(
    db: &Db,
    uid: &Uuid,
    now: DateTime<Utc>,
) -> Result<UnsubscribeOutcome, StoreError> {
    // Only a subscriber still on the list changes; repeating the request changes nothing.
    let changed: Option<i64> = with_pool!(db, write, |pool| {
        sqlx::query_scalar(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2, updated_at = $2 \
             WHERE uid = $1 AND status IN ('pending', 'active') RETURNING id",
        )
        .bind(uid)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?;
    if changed.is_some() {
        return Ok(UnsubscribeOutcome::Unsubscribed);
    }
    Ok(match find_by_uid(db, uid).await? {
        Some(_) => UnsubscribeOutcome::AlreadyGone,
        None => UnsubscribeOutcome::Unknown,
    })
}

/// The subscriber with this public id.
#[tracing::instrument(skip(db))]
pub async fn find_by_uid(db: &Db, uid: &Uuid) -> Result<Option<Subscriber>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM subscribers WHERE uid = $1"));
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(sql).bind(uid).fetch_optional(pool).await
    })?)
}

/// The subscriber with this address, in any case.
#[tracing::instrument(skip_all)]
pub async fn find_by_email(
    db: &Db,
    email: &SubscriberEmail,
) -> Result<Option<Subscriber>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscribers WHERE email_key = $1"
    ));
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(sql)
            .bind(email.key())
            .fetch_optional(pool)
            .await
    })?)
}
