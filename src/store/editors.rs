//! Editors: the people who sign in to the admin.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::SubscriberEmail;
use crate::with_pool;

/// A stored editor (without the password hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Editor {
    /// Id.
    pub id: i64,
    /// Sign-in address.
    pub email: String,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Sessions issued before this are void (sign-out, password change).
    pub sessions_valid_after: Option<DateTime<Utc>>,
}

/// Adds an editor; `false` when the address already has an account.
#[tracing::instrument(skip(db, password_hash))]
pub async fn add(
    db: &Db,
    email: &SubscriberEmail,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id: Option<i64> = with_pool!(db, write, |pool| {
        sqlx::query_scalar(
            "INSERT INTO editors (email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(email.as_str())
        .bind(email.key())
        .bind(password_hash)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?;
    Ok(id.is_some())
}

/// Every editor, by address.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<Editor>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, email, created_at, last_login_at, sessions_valid_after FROM editors ORDER BY email_key",
        )
        .fetch_all(pool)
        .await
    })?)
}

/// The editor with this id.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: i64) -> Result<Option<Editor>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as("SELECT id, email, created_at, last_login_at, sessions_valid_after FROM editors WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })?)
}

/// The id and password hash of the editor with this address, for signing in.
#[tracing::instrument(skip_all)]
pub async fn credentials(
    db: &Db,
    email: &SubscriberEmail,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as("SELECT id, password_hash FROM editors WHERE email_key = $1")
            .bind(email.key())
            .fetch_optional(pool)
            .await
    })?)
}

/// Replaces an editor's password hash; `false` when there is no such editor.
#[tracing::instrument(skip(db, password_hash))]
pub async fn set_password(
    db: &Db,
    email: &SubscriberEmail,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // A new password also ends every session signed in with the old one.
    let changed: Option<i64> = with_pool!(db, write, |pool| {
        sqlx::query_scalar(
            "UPDATE editors SET password_hash = $2, sessions_valid_after = $3 WHERE email_key = $1 RETURNING id",
        )
        .bind(email.key())
        .bind(password_hash)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?;
    Ok(changed.is_some())
}

/// Removes an editor; `false` when there is no such editor. Their sessions end at their next
/// request, since every admin request checks that the editor still exists.
#[tracing::instrument(skip(db))]
pub async fn remove(db: &Db, email: &SubscriberEmail) -> Result<bool, StoreError> {
    let removed: Option<i64> = with_pool!(db, write, |pool| {
        sqlx::query_scalar("DELETE FROM editors WHERE email_key = $1 RETURNING id")
            .bind(email.key())
            .fetch_optional(pool)
            .await
    })?;
    Ok(removed.is_some())
}

/// Records a successful sign-in.
#[tracing::instrument(skip(db))]
pub async fn touch_login(db: &Db, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query("UPDATE editors SET last_login_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Voids every session of an editor issued before `now` (signing out everywhere).
#[tracing::instrument(skip(db))]
pub async fn end_sessions(db: &Db, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query("UPDATE editors SET sessions_valid_after = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}
