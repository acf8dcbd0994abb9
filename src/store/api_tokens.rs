//! Bearer tokens for the JSON API: shown once when created, kept only as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Db, StoreError};
use crate::with_pool;

/// Every token starts with this, so leaked ones are easy to search for.
const PREFIX: &str = "fnt_";

pub use crate::domain::token::ApiToken;

from_row!(ApiToken {
    id: plain,
    name: plain,
    prefix: plain,
    created_at: plain,
    last_used_at: plain,
    revoked_at: plain,
});

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token and returns it with the only copy of its text. `editor_id` is the editor
/// who made it, `None` for one made on the command line.
#[tracing::instrument(skip(db))]
pub async fn create(
    db: &Db,
    name: &str,
    editor_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(ApiToken, String), StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let row: ApiToken = with_pool!(db, write, |pool| {
        sqlx::query_as(
            "INSERT INTO api_tokens (name, token_hash, prefix, created_by, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, name, prefix, created_at, last_used_at, revoked_at",
        )
        .bind(name)
        .bind(hash(&token))
        .bind(&token[..PREFIX.len() + 6])
        .bind(editor_id)
        .bind(now)
        .fetch_one(pool)
        .await
    })?;
    Ok((row, token))
}

/// Every token, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<ApiToken>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id DESC",
        )
        .fetch_all(pool)
        .await
    })?)
}

/// Revokes a token at once; `false` when there is no such live token.
#[tracing::instrument(skip(db))]
pub async fn revoke(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let done: Option<i64> = with_pool!(db, write, |pool| {
        sqlx::query_scalar("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id")
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await
    })?;
    Ok(done.is_some())
}

/// The live token with this text, if any. Its last use is recorded at most once a minute, so
/// API reads do not queue behind the (SQLite) writer on every request.
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiToken>, StoreError> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    let hashed = hash(token);
    let found: Option<ApiToken> = with_pool!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hashed)
        .fetch_optional(pool)
        .await
    })?;
    let stale = |t: &ApiToken| {
        t.last_used_at
            .is_none_or(|at| now - at > chrono::Duration::minutes(1))
    };
    if let Some(t) = found.as_ref().filter(|t| stale(t)) {
        with_pool!(db, write, |pool| {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(t.id)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
    }
    Ok(found)
}
