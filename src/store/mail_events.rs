//! Bounces and complaints reported after the send, what each did to its reader, and the
//! suppression list.

use chrono::{DateTime, Utc};

use super::webhooks::queue_subscriber_webhooks;
use super::{Db, StoreError};
use crate::domain::webhook::EventType;
use crate::domain::{Effect, EventKind, MailEvent, RecordedEvent, SubscriberEmail, Suppression};
use crate::with_pool;

from_row!(RecordedEvent {
    id: plain,
    provider: plain,
    event_id: plain,
    kind: plain,
    email: plain,
    subscriber_id: plain,
    issue_id: plain,
    diagnostic: plain,
    occurred_at: plain,
    received_at: plain,
    effect: plain,
});

from_row!(Suppression {
    email: plain,
    reason: plain,
    provider: plain,
    diagnostic: plain,
    created_at: plain,
});

/// The key an address is known by: the subscriber's key when it parses, else its lower case.
pub fn key_of(email: &str) -> String {
    SubscriberEmail::parse(email)
        .map(|e| e.key())
        .unwrap_or_else(|_| email.trim().to_lowercase())
}

/// The issue and reader ids a `Message-ID` of ours names (`<issue.reader@domain>`).
fn uids_of(message_id: &str) -> Option<(uuid::Uuid, uuid::Uuid)> {
    let inner = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, _) = inner.split_once('@')?;
    let (issue, reader) = local.split_once('.')?;
    Some((
        uuid::Uuid::try_parse(issue).ok()?,
        uuid::Uuid::try_parse(reader).ok()?,
    ))
}

/// Records an event once (a second delivery of the same provider's event id changes nothing)
/// and acts on its reader in the same transaction: a bounce or a complaint ends the
/// subscription and suppresses the reader's address; a temporary failure counts once per issue,
/// and `threshold` of them on consecutive issues (the reader's latest copies, none of which got
/// through without a bounce report) end the subscription. The reader is the one the delivery names, else the one the
/// `Message-ID` names, else (only when `by_address`: a signed provider's report) the one with
/// the reported address. A report that names nobody is recorded and changes nothing, unless
/// `by_address`, when the reported address is suppressed all the same.
#[tracing::instrument(skip(db, event), fields(provider = event.provider, kind = event.kind.as_str()))]
pub async fn record(
    db: &Db,
    event: &MailEvent,
    delivery: Option<i64>,
    by_address: bool,
    threshold: i32,
    now: DateTime<Utc>,
) -> Result<Effect, StoreError> {
    let uids = event.message_id.as_deref().and_then(uids_of);
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO mail_events (provider, event_id, kind, email, diagnostic, occurred_at, \
             received_at, effect) VALUES ($1, $2, $3, $4, $5, $6, $7, 'no_change') \
             ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
        )
        .bind(event.provider)
        .bind(&event.event_id)
        .bind(event.kind.as_str())
        .bind(&event.email)
        .bind(&event.diagnostic)
        .bind(event.occurred_at)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(Effect::Duplicate);
        };
        // Who and which issue: the delivery the bounce address names, else the Message-ID,
        // else the address alone.
        let mut target: Option<(i64, Option<i64>)> = None;
        if let Some(delivery) = delivery {
            target = sqlx::query_as::<_, (i64, i64)>(
                "SELECT subscriber_id, issue_id FROM deliveries WHERE id = $1",
            )
            .bind(delivery)
            .fetch_optional(&mut *tx)
            .await?
            .map(|(s, i)| (s, Some(i)));
        }
        if target.is_none()
            && let Some((issue, reader)) = uids
        {
            target = sqlx::query_as::<_, (i64, i64)>(
                "SELECT s.id, i.id FROM subscribers s, issues i WHERE s.uid = $1 AND i.uid = $2",
            )
            .bind(reader)
            .bind(issue)
            .fetch_optional(&mut *tx)
            .await?
            .map(|(s, i)| (s, Some(i)));
        }
        if target.is_none() && by_address && !event.email.trim().is_empty() {
            target =
                sqlx::query_scalar::<_, i64>("SELECT id FROM subscribers WHERE email_key = $1")
                    .bind(key_of(&event.email))
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|s| (s, None));
        }
        let (subscriber, issue) = match target {
            Some((s, i)) => (Some(s), i),
            None => (None, None),
        };
        // The address suppressed is the reader's own, whatever address the report gives (a
        // forwarding alias, a recipient lost in a mangled bounce); with no reader, the
        // reported one, when the report is trusted for it.
        let email = match subscriber {
            Some(s) => {
                sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
                    .bind(s)
                    .fetch_one(&mut *tx)
                    .await?
            }
            None if by_address => event.email.trim().to_owned(),
            None => String::new(),
        };
        let key = key_of(&email);
        let ended = |status: &'static str| {
            sqlx::query(
                "UPDATE subscribers SET status = $2, unsubscribed_at = $3, updated_at = $3 \
                 WHERE id = $1 AND status IN ('pending', 'active')",
            )
            .bind(subscriber)
            .bind(status)
            .bind(now)
        };
        let effect = match event.kind {
            EventKind::Bounce | EventKind::Complaint => {
                let (status, reason, effect) = if event.kind == EventKind::Bounce {
                    ("bounced", "bounce", Effect::Bounced)
                } else {
                    ("complained", "complaint", Effect::Complained)
                };
                let changed = ended(status).execute(&mut *tx).await?.rows_affected();
                if !email.is_empty() {
                    sqlx::query(
                    "INSERT INTO suppressions (email_key, email, reason, provider, diagnostic, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_key) DO NOTHING",
                )
                .bind(&key)
                .bind(&email)
                .bind(reason)
                .bind(event.provider)
                .bind(&event.diagnostic)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                }
                if changed == 1 {
                    effect
                } else {
                    Effect::NoChange
                }
            }
            EventKind::SoftBounce => match (subscriber, issue) {
                // Counted only against a known issue, once per issue (a provider's several
                // deferrals of one copy are one failure), and only for a reader still on the list.
                (Some(s), Some(i)) => {
                    // The reader's row is locked first, so two reports of one copy arriving
                    // together count once.
                    sqlx::query("UPDATE subscribers SET updated_at = updated_at WHERE id = $1")
                        .bind(s)
                        .execute(&mut *tx)
                        .await?;
                    let seen: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM mail_events WHERE subscriber_id = $1 AND issue_id = $2 \
                         AND kind = 'soft_bounce' AND id <> $3",
                    )
                    .bind(s)
                    .bind(i)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let status: Option<String> = if seen > 0 {
                        None
                    } else {
                        // Consecutive issues: the reader's latest copies up to this one, newest
                        // first, each with a bounce reported; a copy that drew none breaks the run.
                        // So does a copy of a send whose rows retention has folded: the copies
                        // that went through are gone from it, and could have stood between.
                        let latest: Vec<(i64, bool)> = sqlx::query_as(
                            "SELECT d.issue_id, EXISTS (SELECT 1 FROM mail_events e \
                             WHERE e.subscriber_id = d.subscriber_id AND e.issue_id = d.issue_id \
                             AND e.kind IN ('soft_bounce', 'bounce')) AND NOT EXISTS \
                             (SELECT 1 FROM issues i WHERE i.id = d.issue_id \
                              AND (i.folded_sent > 0 OR i.folded_at IS NOT NULL)) \
                             FROM deliveries d WHERE d.subscriber_id = $1 AND d.id <= \
                             (SELECT MAX(id) FROM deliveries WHERE subscriber_id = $1 AND issue_id = $2) \
                             ORDER BY d.id DESC LIMIT $3",
                        )
                        .bind(s)
                        .bind(i)
                        .bind(i64::from(threshold.max(1)))
                        .fetch_all(&mut *tx)
                        .await?;
                        let run = latest
                            .iter()
                            .take_while(|(issue, bounced)| *issue == i || *bounced)
                            .count()
                            .max(1);
                        let reached = run as i64 >= i64::from(threshold);
                        sqlx::query_scalar(
                            "UPDATE subscribers SET hard_bounces = hard_bounces + 1, \
                             status = CASE WHEN $2 THEN 'bounced' ELSE status END, \
                             unsubscribed_at = CASE WHEN $2 THEN $3 ELSE unsubscribed_at END, \
                             updated_at = $3 WHERE id = $1 AND status = 'active' RETURNING status",
                        )
                        .bind(s)
                        .bind(reached)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?
                    };
                    match status.as_deref() {
                        Some("bounced") => Effect::BouncedAtThreshold,
                        Some(_) => Effect::Counted,
                        None => Effect::NoChange,
                    }
                }
                _ => Effect::NoChange,
            },
        };
        let event_type = match effect {
            Effect::Bounced | Effect::BouncedAtThreshold => Some(EventType::SubscriberBounced),
            Effect::Complained => Some(EventType::SubscriberComplained),
            _ => None,
        };
        if let Some(event_type) = event_type {
            queue_subscriber_webhooks!(
                tx,
                event_type,
                "id",
                subscriber.into_iter().collect::<Vec<i64>>(),
                now
            );
        }
        sqlx::query(
            "UPDATE mail_events SET subscriber_id = $2, issue_id = $3, effect = $4, \
             email = CASE WHEN email = '' THEN $5 ELSE email END WHERE id = $1",
        )
        .bind(id)
        .bind(subscriber)
        .bind(issue)
        .bind(effect.as_str())
        .bind(&email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(effect)
    })?)
}

/// The latest events, newest first, older than event `before` when given.
pub async fn recent(
    db: &Db,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT id, provider, event_id, kind, email, subscriber_id, issue_id, diagnostic, \
         occurred_at, received_at, effect FROM mail_events WHERE ($1 IS NULL OR id < $1) \
         ORDER BY id DESC LIMIT $2"
    )
    .bind(before)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await)?)
}

/// The events of one issue by kind: (bounces, soft bounces, complaints).
pub async fn counts_for_issue(db: &Db, issue_id: i64) -> Result<(i64, i64, i64), StoreError> {
    let rows: Vec<(String, i64)> = with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT kind, COUNT(*) FROM mail_events WHERE issue_id = $1 GROUP BY kind"
    )
    .bind(issue_id)
    .fetch_all(pool)
    .await)?;
    let of = |kind: &str| rows.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
    Ok((of("bounce"), of("soft_bounce"), of("complaint")))
}

/// The last event each provider delivered, for the webhook status on the admin page.
pub async fn last_by_provider(db: &Db) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT provider, MAX(received_at) FROM mail_events GROUP BY provider"
    )
    .fetch_all(pool)
    .await)?)
}

/// Suppressed addresses, newest first, optionally those containing `search`.
pub async fn suppressions(
    db: &Db,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<Suppression>, StoreError> {
    let pattern = search.map(|s| {
        format!(
            "%{}%",
            s.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    Ok(with_pool!(db, read, |pool| {
        sqlx::query_as(
        "SELECT email, reason, provider, diagnostic, created_at FROM suppressions \
         WHERE ($1 IS NULL OR email_key LIKE $1 ESCAPE '\\') ORDER BY created_at DESC, email_key LIMIT $2"
    )
    .bind(pattern)
    .bind(limit.clamp(1, 500))
    .fetch_all(pool)
    .await
    })?)
}

/// Lifts a suppression: the address may sign up or be imported again. `false` when it was
/// not suppressed.
pub async fn lift(db: &Db, email: &str) -> Result<bool, StoreError> {
    let key = key_of(email);
    Ok(with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM suppressions WHERE email_key = $1"
    )
    .bind(&key)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1))?)
}

/// Whether an address is suppressed.
pub async fn is_suppressed(db: &Db, key: &str) -> Result<bool, StoreError> {
    let found: Option<String> = with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT email_key FROM suppressions WHERE email_key = $1"
    )
    .bind(key)
    .fetch_optional(pool)
    .await)?;
    Ok(found.is_some())
}

/// Whether a provider's signature token may be used for `event_id`: the first time it is
/// seen, or again with the same event (a provider's retry). Tokens older than `forget_before`
/// are dropped (their timestamps are outside the accepted window by then).
pub async fn token_fits(
    db: &Db,
    provider: &str,
    token: &str,
    event_id: &str,
    now: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM webhook_tokens WHERE seen_at < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO webhook_tokens (provider, token, event_id, seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, token) DO NOTHING",
        )
        .bind(provider)
        .bind(token)
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let signed_for: String = sqlx::query_scalar(
            "SELECT event_id FROM webhook_tokens WHERE provider = $1 AND token = $2",
        )
        .bind(provider)
        .bind(token)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(signed_for == event_id)
    })?)
}
