//! The welcome email's one row.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::welcome::{Welcome, WelcomeDraft};
use crate::with_pool;

from_row!(Welcome {
    subject: plain,
    preheader: plain,
    body: plain,
    enabled: plain,
    updated_at: plain,
});

/// The welcome email, if the editor has written one.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db) -> Result<Option<Welcome>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT subject, preheader, body, enabled, updated_at FROM welcome_email WHERE id = 1",
        )
        .fetch_optional(pool)
        .await
    })?)
}

/// Writes the welcome email (the first save creates it).
#[tracing::instrument(skip_all)]
pub async fn save(
    db: &Db,
    draft: &WelcomeDraft,
    now: DateTime<Utc>,
) -> Result<Welcome, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        sqlx::query_as(
            "INSERT INTO welcome_email (id, subject, preheader, body, enabled, updated_at) \
             VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, \
             preheader = excluded.preheader, body = excluded.body, enabled = excluded.enabled, \
             updated_at = excluded.updated_at \
             RETURNING subject, preheader, body, enabled, updated_at",
        )
        .bind(&draft.subject)
        .bind(&draft.preheader)
        .bind(&draft.body)
        .bind(draft.enabled)
        .bind(now)
        .fetch_one(pool)
        .await
    })?)
}
