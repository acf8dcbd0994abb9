//! Subscribers: signup with double opt-in, confirmation, unsubscription.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::webhooks::queue_subscriber_webhooks;
use super::{Db, StoreError, outbox};
use crate::domain::token::TokenHash;
use crate::domain::webhook::EventType;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName};
use crate::with_pool;

pub use crate::domain::Subscriber;

from_row!(Subscriber {
    id: plain,
    uid: plain,
    email: plain,
    name: plain,
    status: parsed,
    consent_at: plain,
    consent_source: plain,
    consent_ip: plain,
    created_at: plain,
    confirmed_at: plain,
    unsubscribed_at: plain,
    skip_issues: plain,
    unsubscribe_reason: plain,
});

pub(super) const COLUMNS: &str = "id, uid, email, name, status, consent_at, consent_source, consent_ip, \
                       created_at, confirmed_at, unsubscribed_at, skip_issues, unsubscribe_reason";

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
    /// Already pending and a confirmation was queued very recently; nothing new is queued.
    ConfirmationRecentlySent,
    /// Already active; nothing queued.
    AlreadyActive,
    /// Had left (or bounced); back to pending with a confirmation queued.
    Resubscribed,
    /// The address is suppressed (it bounced or complained): nothing stored, nothing sent.
    Suppressed,
}

/// A signup waiting to be recorded, with the instants that govern it.
#[derive(Debug, Clone)]
pub struct SignupRequest {
    /// The validated signup.
    pub signup: NewSignup,
    /// When it happened.
    pub now: DateTime<Utc>,
    /// A confirmation queued after this instant is not queued again.
    pub resend_after: DateTime<Utc>,
}

/// Inserts, inside `$tx`, the addresses of `$requests` not yet known as pending subscribers,
/// each with its confirmation email queued; evaluates to the keys of the addresses inserted.
macro_rules! insert_new {
    ($tx:ident, $requests:expr) => {{
        let requests: &[SignupRequest] = $requests;
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO subscribers (uid, email, email_key, name, status, consent_at, consent_source, \
             consent_ip, created_at, updated_at) ",
        );
        insert.push_values(requests, |mut row, r| {
            let s = &r.signup;
            row.push_bind(crate::domain::new_uid())
                .push_bind(s.email.as_str().to_owned())
                .push_bind(s.email.key())
                .push_bind(s.name.as_ref().map(|n| n.as_str().to_owned()))
                .push("'pending'")
                .push_bind(r.now)
                .push_bind(s.source.as_str())
                .push_bind(s.ip.clone())
                .push_bind(r.now)
                .push_bind(r.now);
        });
        // Known addresses (any case) are left alone here and handled one by one.
        insert.push(" ON CONFLICT (email_key) DO NOTHING RETURNING id, email_key, created_at");
        let rows: Vec<(i64, String, DateTime<Utc>)> =
            insert.build_query_as().fetch_all(&mut *$tx).await?;
        if !rows.is_empty() {
            let mut queue = sqlx::QueryBuilder::new(
                "INSERT INTO mail_outbox (kind, subscriber_id, status, attempts, next_attempt_at, created_at) ",
            );
            queue.push_values(&rows, |mut row, (id, _, at)| {
                row.push("'confirm'")
                    .push_bind(*id)
                    .push("'pending'")
                    .push("0")
                    .push_bind(*at)
                    .push_bind(*at);
            });
            queue.build().execute(&mut *$tx).await?;
        }
        rows.into_iter()
            .map(|(_, key, _)| key)
            .collect::<HashSet<String>>()
    }};
}

/// A signup for a known address, inside `$tx`: records the new consent and (re)starts double
/// opt-in unless the subscriber is active. Evaluates to `None` when the row has vanished
/// (erased meanwhile).
macro_rules! sign_up_again {
    ($tx:ident, $request:expr) => {{
        let request: &SignupRequest = $request;
        let (new, now, resend_after) = (&request.signup, request.now, request.resend_after);
        let name = new.name.as_ref().map(|n| n.as_str());
        // The subscriber, and when a confirmation was last queued for them.
        let found: Option<(i64, String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT s.id, s.status, (SELECT MAX(o.created_at) FROM mail_outbox o \
             WHERE o.subscriber_id = s.id AND o.kind = 'confirm') FROM subscribers s WHERE s.email_key = $1",
        )
        .bind(new.email.key())
        .fetch_optional(&mut *$tx)
        .await?;
        match found {
            None => None,
            Some((_, status, _)) if status == "active" => Some(SignupOutcome::AlreadyActive),
            Some((id, status, last_queued)) => {
                // Consent is given again now: record it. The guard keeps a concurrent confirm.
                sqlx::query(
                    "UPDATE subscribers SET status = 'pending', name = COALESCE($2, name), consent_at = $3, \
                     consent_source = $4, consent_ip = $5, updated_at = $3, skip_issues = 0, \
                     unsubscribe_reason = NULL WHERE id = $1 AND status <> 'active'",
                )
                .bind(id)
                .bind(name)
                .bind(now)
                .bind(new.source.as_str())
                .bind(new.ip.as_deref())
                .execute(&mut *$tx)
                .await?;
                let recently = last_queued.is_some_and(|at| at > resend_after);
                if status == "pending" && recently {
                    Some(SignupOutcome::ConfirmationRecentlySent)
                } else {
                    outbox::enqueue_confirmation(id, now)
                        .execute(&mut *$tx)
                        .await?;
                    Some(if status == "pending" {
                        SignupOutcome::ConfirmationResent
                    } else {
                        SignupOutcome::Resubscribed
                    })
                }
            }
        }
    }};
}

/// Records signups and, where one is due, queues each confirmation email atomically with its
/// subscriber, so a signup is never stored without its email or the reverse. The whole group is
/// one transaction (one sync of the log): new addresses go in with one multi-row insert and
/// their emails with another; known addresses are updated one by one inside it. Results come
/// back in the order of `requests`.
#[tracing::instrument(skip_all, fields(n = requests.len()))]
pub async fn signup_batch(
    db: &Db,
    requests: &[SignupRequest],
) -> Result<Vec<SignupOutcome>, StoreError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        // Suppressed addresses (a bounce or a complaint) are not stored again; the reader is
        // answered as always.
        let mut query =
            sqlx::QueryBuilder::new("SELECT email_key FROM suppressions WHERE email_key IN ");
        super::push_list(&mut query, requests.iter().map(|r| r.signup.email.key()));
        let suppressed: HashSet<String> = query
            .build_query_scalar::<String>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let allowed: Vec<SignupRequest> = requests
            .iter()
            .filter(|r| !suppressed.contains(&r.signup.email.key()))
            .cloned()
            .collect();
        let mut created = insert_new!(tx, &allowed);
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            if suppressed.contains(&request.signup.email.key()) {
                outcomes.push(SignupOutcome::Suppressed);
                continue;
            }
            // The first request for a newly inserted address created it; any other is a repeat.
            if created.remove(&request.signup.email.key()) {
                outcomes.push(SignupOutcome::Created);
                continue;
            }
            // An erasure racing a re-signup (PostgreSQL) can remove the row between the two
            // steps; once more settles it.
            let mut outcome = None;
            for _ in 0..2 {
                outcome = sign_up_again!(tx, request);
                if outcome.is_some() {
                    break;
                }
                if !insert_new!(tx, std::slice::from_ref(request)).is_empty() {
                    outcome = Some(SignupOutcome::Created);
                    break;
                }
            }
            outcomes.push(outcome.ok_or(sqlx::Error::RowNotFound)?);
        }
        let joined: Vec<String> = requests
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| matches!(o, SignupOutcome::Created | SignupOutcome::Resubscribed))
            .map(|(r, _)| r.signup.email.key())
            .collect();
        let now = requests[requests.len() - 1].now;
        queue_subscriber_webhooks!(tx, EventType::SubscriberCreated, "email_key", joined, now);
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcomes)
    })?)
}

/// Records one signup (see [`signup_batch`]).
pub async fn signup(db: &Db, request: &SignupRequest) -> Result<SignupOutcome, StoreError> {
    let mut outcomes = signup_batch(db, std::slice::from_ref(request)).await?;
    Ok(outcomes.remove(0))
}

/// The subscribers among `wanted` that are still pending, with the new confirmation tokens
/// of those recorded (only their hashes), in one transaction. Subscribers that confirmed, left
/// or were erased since their email was queued are simply absent: nothing to confirm.
#[tracing::instrument(skip_all, fields(n = wanted.len()))]
pub async fn prepare_confirmations(
    db: &Db,
    wanted: &[(i64, TokenHash)],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Vec<Subscriber>, StoreError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let mut select = sqlx::QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE status = 'pending' AND id IN ("
        ));
        let mut ids = select.separated(", ");
        for (id, _) in wanted {
            ids.push_bind(*id);
        }
        select.push(")");
        let found: Vec<Subscriber> = select.build_query_as().fetch_all(&mut *tx).await?;
        let pending: std::collections::HashSet<i64> = found.iter().map(|s| s.id).collect();
        let tokens: Vec<&(i64, TokenHash)> = wanted
            .iter()
            .filter(|(id, _)| pending.contains(id))
            .collect();
        if !tokens.is_empty() {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO confirmation_tokens (token_hash, subscriber_id, created_at, expires_at) ",
            );
            insert.push_values(tokens, |mut row, (id, hash)| {
                row.push_bind(hash.0.to_vec())
                    .push_bind(*id)
                    .push_bind(now)
                    .push_bind(expires_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(found)
    })?)
}

/// The subscribers among `ids` that are active.
#[tracing::instrument(skip_all, fields(n = ids.len()))]
pub async fn active_among(db: &Db, ids: &[i64]) -> Result<Vec<Subscriber>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(with_pool!(db, read, |pool| {
        let mut select = sqlx::QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE status = 'active' AND id IN "
        ));
        super::push_list(&mut select, ids.iter().copied());
        select.build_query_as().fetch_all(pool).await
    })?)
}

/// What following a confirmation link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// The subscriber is now active.
    Confirmed,
    /// The link was already used and the subscriber is active.
    AlreadyConfirmed,
    /// The link was already used, and the subscriber has left (or bounced) since.
    UsedButGone,
    /// The subscriber unsubscribed after this link was sent.
    NoLongerSubscribed,
    /// The link is past its expiry.
    Expired,
    /// No such link.
    Unknown,
}

/// A confirmation link followed, waiting to be recorded.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    /// The link's token, hashed.
    pub hash: TokenHash,
    /// When it was followed.
    pub now: DateTime<Utc>,
}

/// Spends confirmation tokens and activates their pending subscribers, all in one transaction
/// (one sync of the log); outcomes in the order of `requests`.
#[tracing::instrument(skip_all, fields(n = requests.len()))]
pub async fn confirm_batch(
    db: &Db,
    requests: &[ConfirmRequest],
) -> Result<Vec<ConfirmOutcome>, StoreError> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut confirmed = Vec::new();
        for request in requests {
            // Spend the token only while it is unspent and unexpired.
            let spent: Option<i64> = sqlx::query_scalar(
                "UPDATE confirmation_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING subscriber_id",
            )
            .bind(&request.hash.0[..])
            .bind(request.now)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match spent {
                Some(subscriber_id) => {
                    // The row locked and read as it was: a first confirmation gets the welcome.
                    let before: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
                        "UPDATE subscribers SET updated_at = updated_at WHERE id = $1 \
                         RETURNING status, confirmed_at",
                    )
                    .bind(subscriber_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let first = matches!(&before, Some((status, None)) if status == "pending");
                    // Only a pending subscriber becomes active: one who left since must sign up again.
                    let status: Option<String> = sqlx::query_scalar(
                        "UPDATE subscribers SET status = CASE WHEN status = 'pending' THEN 'active' ELSE status END, \
                         confirmed_at = CASE WHEN status = 'pending' THEN $2 ELSE confirmed_at END, updated_at = $2 \
                         WHERE id = $1 RETURNING status",
                    )
                    .bind(subscriber_id)
                    .bind(request.now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if first && status.as_deref() == Some("active") {
                        outbox::enqueue_welcome(subscriber_id, request.now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let was_pending = matches!(&before, Some((status, _)) if status == "pending");
                    if was_pending && status.as_deref() == Some("active") {
                        confirmed.push(subscriber_id);
                    }
                    match status.as_deref() {
                        Some("active") => ConfirmOutcome::Confirmed,
                        Some(_) => ConfirmOutcome::NoLongerSubscribed,
                        None => ConfirmOutcome::Unknown,
                    }
                }
                None => {
                    // Why the token could not be spent, and where its subscriber stands now.
                    let found: Option<(Option<DateTime<Utc>>, String)> = sqlx::query_as(
                        "SELECT t.used_at, s.status FROM confirmation_tokens t \
                         JOIN subscribers s ON s.id = t.subscriber_id WHERE t.token_hash = $1",
                    )
                    .bind(&request.hash.0[..])
                    .fetch_optional(&mut *tx)
                    .await?;
                    match found {
                        None => ConfirmOutcome::Unknown,
                        Some((Some(_), status)) if status == "active" => {
                            ConfirmOutcome::AlreadyConfirmed
                        }
                        Some((Some(_), _)) => ConfirmOutcome::UsedButGone,
                        Some((None, _)) => ConfirmOutcome::Expired,
                    }
                }
            };
            outcomes.push(outcome);
        }
        if let Some(last) = requests.last() {
            queue_subscriber_webhooks!(
                tx,
                EventType::SubscriberConfirmed,
                "id",
                confirmed,
                last.now
            );
        }
        tx.commit().await?;
        Ok(outcomes)
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

/// An unsubscribe link followed, waiting to be recorded.
#[derive(Debug, Clone)]
pub struct UnsubscribeRequest {
    /// The subscriber's public id, from the link.
    pub uid: Uuid,
    /// When it was followed.
    pub now: DateTime<Utc>,
}

/// Takes subscribers off the list, all in one transaction (one sync of the log); idempotent.
/// Outcomes in the order of `requests`.
#[tracing::instrument(skip_all, fields(n = requests.len()))]
pub async fn unsubscribe_batch(
    db: &Db,
    requests: &[UnsubscribeRequest],
) -> Result<Vec<UnsubscribeOutcome>, StoreError> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut left = Vec::new();
        for request in requests {
            // Only a subscriber still on the list changes; repeating the request changes nothing.
            let changed: Option<i64> = sqlx::query_scalar(
                "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $2, updated_at = $2, \
                 unsubscribe_reason = NULL WHERE uid = $1 AND status IN ('pending', 'active') RETURNING id",
            )
            .bind(request.uid)
            .bind(request.now)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = if let Some(id) = changed {
                left.push(id);
                UnsubscribeOutcome::Unsubscribed
            } else {
                // Unchanged: gone already, or erased.
                let known: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM subscribers WHERE uid = $1")
                        .bind(request.uid)
                        .fetch_optional(&mut *tx)
                        .await?;
                match known {
                    Some(_) => UnsubscribeOutcome::AlreadyGone,
                    None => UnsubscribeOutcome::Unknown,
                }
            };
            outcomes.push(outcome);
        }
        if let Some(last) = requests.last() {
            queue_subscriber_webhooks!(tx, EventType::SubscriberUnsubscribed, "id", left, last.now);
        }
        tx.commit().await?;
        Ok(outcomes)
    })
}

/// Takes one subscriber off the list (see [`unsubscribe_batch`]).
pub async fn unsubscribe(
    db: &Db,
    uid: &Uuid,
    now: DateTime<Utc>,
) -> Result<UnsubscribeOutcome, StoreError> {
    let request = UnsubscribeRequest { uid: *uid, now };
    Ok(unsubscribe_batch(db, &[request]).await?.remove(0))
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
