//! Installation-wide values generated on first run and shared by every instance.

use chrono::{DateTime, Utc};

use super::{Db, StoreError};
use crate::domain::token::LinkKey;
use crate::with_pool;

const LINK_KEY: &str = "link_key";
const SESSION_KEY: &str = "session_key";

/// The key unsubscribe links are signed with: created by whichever instance asks first,
/// then read by all. It must never change, or links in sent emails stop working.
pub async fn link_key(db: &Db, now: DateTime<Utc>) -> Result<LinkKey, StoreError> {
    let stored = shared_secret(db, LINK_KEY, LinkKey::generate().as_bytes(), now).await?;
    LinkKey::from_bytes(&stored).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Protocol(
            "stored link key has the wrong length".into(),
        ))
    })
}

/// The key admin session cookies are signed with when `secret_key` is not configured.
pub async fn session_key(db: &Db, now: DateTime<Utc>) -> Result<Vec<u8>, StoreError> {
    let mut fresh = vec![0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut fresh);
    shared_secret(db, SESSION_KEY, &fresh, now).await
}

/// The value stored under `key`, storing `fresh` first if there is none. The first caller
/// wins; the others' fresh values are discarded by DO NOTHING.
#[tracing::instrument(skip(db, fresh))]
async fn shared_secret(
    db: &Db,
    key: &str,
    fresh: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<u8>, StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query("INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(fresh)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(with_pool!(db, write, |pool| {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(pool)
            .await
    })?)
}
