//! Installation-wide values generated on first run and shared by every instance.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::token::LinkKey;
use crate::with_pool;

const LINK_KEY: &str = "link_key";

/// The key unsubscribe links are signed with: created by whichever instance asks first,
/// then read by all. It must never change, or links in sent emails stop working.
#[tracing::instrument(skip(db))]
pub async fn link_key(db: &Db, now: DateTime<Utc>) -> Result<LinkKey, StoreError> {
    let fresh = LinkKey::generate();
    // First caller wins; the others' fresh keys are discarded by DO NOTHING.
    with_pool!(db, write, |pool| {
        sqlx::query("INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(LINK_KEY)
            .bind(fresh.as_bytes())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    let stored: Vec<u8> = with_pool!(db, write, |pool| {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(LINK_KEY)
            .fetch_one(pool)
            .await
    })?;
    LinkKey::from_bytes(&stored).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Protocol(
            "stored link key has the wrong length".into(),
        ))
    })
}
