//! A delivery worker's bookkeeping in rounds: the outcomes of the copies that finished since the
//! last round are recorded (the recorder's rounds), or rows are claimed for the slots (the
//! claimer's), or both at once. Each round is one commit, and the usual ones are a single
//! statement: a batch of accepted copies, the claim of one sending issue (on PostgreSQL with the
//! readers joined), or on PostgreSQL the two together.
//!
//! A row is held by the worker registration named in `claimed_by`; it is free when nobody holds
//! it or its holder's lease has run out (see [`super::delivery_workers`]), and then it is
//! counted as reclaimed: its copy may have gone out. Every outcome is recorded only while the
//! row is still held by the registration that claimed it, so a worker that lost its claim
//! cannot overwrite what another recorded.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::deliveries::{Claim, Claimed, Cursor, Outcome, Recipient};
use super::{Db, StoreError};
use crate::with_pool;

/// What one round does.
#[derive(Debug)]
pub struct Round<'a> {
    /// Outcomes to record.
    pub outcomes: &'a [(Claimed, Outcome)],
    /// Rows to claim.
    pub want: i64,
    /// The registration the rows are claimed for.
    pub holder: i64,
    /// The issues to claim from (sending, unpaused, oldest first).
    pub issues: &'a [i64],
    /// The business clock: what is due.
    pub now: DateTime<Utc>,
    /// The wall clock that leases are compared with.
    pub alive_at: DateTime<Utc>,
    /// Hard bounces after which a reader is marked bounced.
    pub bounce_threshold: i32,
}

/// The columns a claim returns.
const RETURNING: &str = " RETURNING id, issue_id, subscriber_id, attempts, next_attempt_at";

/// Pushes the claim of one issue's due rows (after `from`, in (due time, id) order, read from
/// the `deliveries_due` index) onto `$query`. The issue's state is checked in the statement
/// itself, so a pause or cancel that committed first is honoured. PostgreSQL skips rows another
/// instance is claiming right now; SQLite has one writer.
macro_rules! push_claim {
    ($query:expr, $round:expr, $issue_id:expr, $want:expr, $from:expr, $postgres:expr) => {
        push_claim!($query, $round, $issue_id, $want, $from, $postgres, "")
    };
    ($query:expr, $round:expr, $issue_id:expr, $want:expr, $from:expr, $postgres:expr, $also:expr) => {{
        let (round, from) = ($round, $from);
        $query
            .push("UPDATE deliveries SET claimed_by = ")
            .push_bind(round.holder)
            .push(
                ", reclaimed = reclaimed + (CASE WHEN claimed_by IS NULL THEN 0 ELSE 1 END) \
                 WHERE id IN (SELECT d.id FROM deliveries d WHERE d.issue_id = ",
            )
            .push_bind($issue_id)
            .push(" AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= ")
            .push_bind(round.now)
            .push(" AND (d.next_attempt_at, d.id) > (")
            .push_bind(from.at)
            .push(", ")
            .push_bind(from.id)
            .push(
                ") AND (d.claimed_by IS NULL OR d.claimed_by NOT IN \
                 (SELECT w.id FROM delivery_workers w WHERE w.expires_at > ",
            )
            .push_bind(round.alive_at)
            .push("))")
            .push($also)
            .push(" AND EXISTS (SELECT 1 FROM issues i WHERE i.id = ")
            .push_bind($issue_id)
            .push(
                " AND i.status = 'sending' AND i.paused_at IS NULL) \
                 ORDER BY d.next_attempt_at, d.id LIMIT ",
            )
            .push_bind($want)
            .push(if $postgres {
                " FOR UPDATE OF d SKIP LOCKED)"
            } else {
                ")"
            })
    }};
}

/// Pushes the accepted copies as the table `v(id, holder, reply)` of a `WITH` onto `$query`.
macro_rules! push_sent_values {
    ($query:expr, $sent:expr) => {{
        $query.push("v(id, holder, reply) AS (");
        $query.push_values($sent, |mut row, (id, holder, reply)| {
            row.push_bind(*id).push_bind(*holder).push_bind(*reply);
        });
        $query.push(")")
    }};
}

/// [`push_sent_values`] for PostgreSQL: the rows as three arrays, so that the statement's text
/// (and its prepared plan) is the same however many copies a round records.
fn push_sent_arrays(query: &mut sqlx::QueryBuilder<sqlx::Postgres>, sent: &[(i64, i64, &str)]) {
    let ids: Vec<i64> = sent.iter().map(|s| s.0).collect();
    let holders: Vec<i64> = sent.iter().map(|s| s.1).collect();
    let replies: Vec<&str> = sent.iter().map(|s| s.2).collect();
    query
        .push("v(id, holder, reply) AS (SELECT * FROM UNNEST(")
        .push_bind(ids)
        .push("::BIGINT[], ")
        .push_bind(holders)
        .push("::BIGINT[], ")
        .push_bind(replies)
        .push("::TEXT[]))");
}

/// Pushes the update of every sent row in `v` (each with its own reply, under its holder)
/// onto `$query`.
macro_rules! push_sent {
    ($query:expr, $now:expr) => {{
        $query
            .push(
                "UPDATE deliveries SET status = 'sent', smtp_reply = v.reply, \
                 claimed_by = NULL, last_error = NULL, attempts = attempts + 1, sent_at = ",
            )
            .push_bind($now)
            .push(", updated_at = ")
            .push_bind($now)
            .push(" FROM v WHERE deliveries.id = v.id AND deliveries.claimed_by = v.holder")
    }};
}

/// The claimed rows with their readers, selected from the claim `c` of a `WITH`.
const WITH_READERS: &str = " SELECT c.id, c.issue_id, c.subscriber_id, c.attempts, \
     c.next_attempt_at, s.uid, s.email, s.name, s.status \
     FROM c JOIN subscribers s ON s.id = c.subscriber_id";

/// Records `round.outcomes` and claims up to `round.want` rows, moving `cursors` (only once the
/// round has committed). The claimed rows come with their readers.
#[tracing::instrument(skip_all, fields(outcomes = round.outcomes.len(), want = round.want))]
pub async fn settle(
    db: &Db,
    round: Round<'_>,
    cursors: &mut HashMap<i64, Cursor>,
) -> Result<Claim, StoreError> {
    let mut sent: Vec<(i64, i64, &str)> = round
        .outcomes
        .iter()
        .filter_map(|(row, outcome)| match outcome {
            Outcome::Sent(reply) => Some((row.id, row.holder, reply.as_str())),
            _ => None,
        })
        .collect();
    sent.sort_unstable_by_key(|(id, _, _)| *id);
    let issues = if round.want > 0 { round.issues } else { &[] };
    // One statement when it can be: copies accepted and no claim, a claim of one issue and
    // no outcome, or (on PostgreSQL) accepted copies and the claim of one issue.
    let postgres = matches!(db, Db::Postgres(_));
    let single = (sent.len() == round.outcomes.len() && issues.is_empty())
        || (round.outcomes.is_empty() && issues.len() == 1)
        || (postgres && sent.len() == round.outcomes.len() && issues.len() == 1);
    let mut claim = if single {
        one_statement(db, &round, &sent, issues.first().copied(), cursors).await?
    } else {
        transaction(db, &round, &sent, issues, cursors).await?
    };
    for row in &mut claim.rows {
        row.holder = round.holder;
        let at = Cursor {
            at: row.next_attempt_at,
            id: row.id,
        };
        let cursor = cursors.entry(row.issue_id).or_insert(Cursor::START);
        if (at.at, at.id) > (cursor.at, cursor.id) {
            *cursor = at;
        }
    }
    if claim.rows.iter().any(|r| r.reader.is_none())
        && let Err(e) = readers(db, &mut claim.rows).await
    {
        // Without their readers the rows cannot be sent: give them back untouched.
        let back: Vec<(Claimed, Outcome)> = claim
            .rows
            .into_iter()
            .map(|row| (row, Outcome::Released { at: round.now }))
            .collect();
        let release = Round {
            outcomes: &back,
            want: 0,
            ..round
        };
        transaction(db, &release, &[], &[], &HashMap::new()).await?;
        return Err(e);
    }
    Ok(claim)
}

/// A claimed row with its reader, as the single PostgreSQL statement returns it.
#[derive(sqlx::FromRow)]
struct ClaimedWithReader {
    #[sqlx(flatten)]
    row: Claimed,
    #[sqlx(flatten)]
    reader: Recipient,
}

/// A round that is one statement, in its own transaction: the sent rows, or the claim of one
/// issue (on PostgreSQL with the claimed rows' readers, and with the sent rows recorded in the
/// same statement; the claim leaves those alone even were their holder's lease to have run out).
async fn one_statement(
    db: &Db,
    round: &Round<'_>,
    sent: &[(i64, i64, &str)],
    issue_id: Option<i64>,
    cursors: &HashMap<i64, Cursor>,
) -> Result<Claim, StoreError> {
    let mut claim = Claim::default();
    let Some(issue_id) = issue_id else {
        if sent.is_empty() {
            return Ok(claim);
        }
        match db {
            Db::Postgres(pool) => {
                let mut query = sqlx::QueryBuilder::new("WITH ");
                push_sent_arrays(&mut query, sent);
                query.push(" ");
                push_sent!(query, round.now);
                query.build().execute(pool).await?;
            }
            Db::Sqlite { .. } => {
                with_pool!(db, write, |pool| {
                    let mut query = sqlx::QueryBuilder::new("WITH ");
                    push_sent_values!(query, sent);
                    query.push(" ");
                    push_sent!(query, round.now);
                    query.build().execute(pool).await.map(|_| ())
                })?;
            }
        }
        return Ok(claim);
    };
    let from = cursors.get(&issue_id).copied().unwrap_or(Cursor::START);
    match db {
        Db::Postgres(pool) => {
            let mut query = sqlx::QueryBuilder::new("WITH ");
            let mut also = "";
            if !sent.is_empty() {
                push_sent_arrays(&mut query, sent);
                query.push(", r AS (");
                push_sent!(query, round.now);
                query.push(" RETURNING deliveries.id), ");
                // The claim reads `r` first (a one-time filter), so the sent rows are locked
                // and updated before any claimed row: rows in the order `transaction` takes
                // them, which a cancel's update of the same rows in id order waits behind
                // rather than deadlocks with.
                also = " AND d.id NOT IN (SELECT v.id FROM v) AND (SELECT count(*) FROM r) >= 0";
            }
            query.push("c AS (");
            push_claim!(query, round, issue_id, round.want, from, true, also);
            query.push(RETURNING).push(")").push(WITH_READERS);
            let rows: Vec<ClaimedWithReader> = query.build_query_as().fetch_all(pool).await?;
            claim.rows = rows
                .into_iter()
                .map(|r| Claimed {
                    reader: Some(r.reader),
                    ..r.row
                })
                .collect();
        }
        Db::Sqlite { write, .. } => {
            debug_assert!(
                sent.is_empty(),
                "on SQLite a claim with outcomes is a transaction"
            );
            let mut query = sqlx::QueryBuilder::new("");
            push_claim!(query, round, issue_id, round.want, from, false);
            query.push(RETURNING);
            claim.rows = query.build_query_as().fetch_all(write).await?;
        }
    }
    if (claim.rows.len() as i64) < round.want {
        claim.drained.push(issue_id);
    }
    Ok(claim)
}

/// Records one outcome other than sent, inside `$tx`. A copy refused for good is recorded as
/// such even when the send was cancelled while it was in the SMTP transaction; other outcomes
/// leave a cancelled row cancelled. A hard bounce counts against the reader.
macro_rules! record_one {
    ($tx:ident, $row:expr, $outcome:expr, $now:expr, $threshold:expr) => {{
        let (row, now) = ($row, $now);
        let query = match $outcome {
            Outcome::Sent(_) => None,
            Outcome::Retry { at, error } => Some(
                sqlx::query(
                    "UPDATE deliveries SET status = 'retrying', next_attempt_at = $3, last_error = $4, \
                     claimed_by = NULL, attempts = attempts + 1, updated_at = $5 \
                     WHERE id = $1 AND claimed_by = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(*at)
                .bind(error.as_str())
                .bind(now),
            ),
            Outcome::Failed { error, .. } => Some(
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', last_error = $3, claimed_by = NULL, \
                     attempts = attempts + 1, updated_at = $4 WHERE id = $1 AND claimed_by = $2 \
                     AND status IN ('pending', 'retrying', 'cancelled')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(error.as_str())
                .bind(now),
            ),
            Outcome::Skipped => Some(
                sqlx::query(
                    "UPDATE deliveries SET status = 'skipped', claimed_by = NULL, updated_at = $3 \
                     WHERE id = $1 AND claimed_by = $2 AND status IN ('pending', 'retrying')",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(now),
            ),
            Outcome::Released { at } => Some(
                sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $3, claimed_by = NULL, updated_at = $4 \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(*at)
                .bind(now),
            ),
        };
        if let Some(query) = query {
            let done = query.execute(&mut *$tx).await?.rows_affected();
            if done == 0 {
                // Cancelled meanwhile: it stays cancelled, and is no longer held.
                sqlx::query(
                    "UPDATE deliveries SET claimed_by = NULL, updated_at = $3 \
                     WHERE id = $1 AND claimed_by = $2",
                )
                .bind(row.id)
                .bind(row.holder)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            } else if matches!($outcome, Outcome::Failed { bounce: true, .. }) {
                // The row locked and read as it was: a reader this bounce ends is reported.
                let was: Option<(String, i32)> = sqlx::query_as(
                    "UPDATE subscribers SET updated_at = updated_at WHERE id = $1 \
                     RETURNING status, hard_bounces",
                )
                .bind(row.subscriber_id)
                .fetch_optional(&mut *$tx)
                .await?;
                sqlx::query(
                    "UPDATE subscribers SET hard_bounces = hard_bounces + 1, \
                     status = CASE WHEN status = 'active' AND hard_bounces + 1 >= $2 THEN 'bounced' ELSE status END, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(row.subscriber_id)
                .bind($threshold)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
                let ends = was.is_some_and(|(status, bounces)| {
                    status == "active" && i64::from(bounces) + 1 >= i64::from($threshold)
                });
                if ends {
                    $crate::store::webhooks::queue_subscriber_webhooks!(
                        $tx,
                        $crate::domain::webhook::EventType::SubscriberBounced,
                        "id",
                        vec![row.subscriber_id],
                        now
                    );
                }
            }
        }
    }};
}

/// Any round, as one transaction: the sent rows in one statement, other outcomes one by one,
/// then each issue's claim in turn. Readers are read afterwards.
async fn transaction(
    db: &Db,
    round: &Round<'_>,
    sent: &[(i64, i64, &str)],
    issues: &[i64],
    cursors: &HashMap<i64, Cursor>,
) -> Result<Claim, StoreError> {
    let postgres = matches!(db, Db::Postgres(_));
    let mut claim = Claim::default();
    with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        if !sent.is_empty() {
            let mut query = sqlx::QueryBuilder::new("WITH ");
            push_sent_values!(query, sent);
            query.push(" ");
            push_sent!(query, round.now);
            query.build().execute(&mut *tx).await?;
        }
        // Rows in id order (the accepted batch too), so that the workers' transactions take
        // row locks in one order and wait for each other rather than deadlock; a steering
        // change that still meets one in the other order runs again (`sends::steer`).
        let mut outcomes: Vec<&(Claimed, Outcome)> = round.outcomes.iter().collect();
        outcomes.sort_by_key(|(row, _)| row.id);
        for (row, outcome) in outcomes {
            record_one!(tx, row, outcome, round.now, round.bounce_threshold);
        }
        for issue_id in issues {
            let want = round.want - claim.rows.len() as i64;
            if want <= 0 {
                break;
            }
            let from = cursors.get(issue_id).copied().unwrap_or(Cursor::START);
            let mut query = sqlx::QueryBuilder::new("");
            push_claim!(query, round, *issue_id, want, from, postgres);
            query.push(RETURNING);
            let rows: Vec<Claimed> = query.build_query_as().fetch_all(&mut *tx).await?;
            if (rows.len() as i64) < want {
                claim.drained.push(*issue_id);
            }
            claim.rows.extend(rows);
        }
        tx.commit().await
    }
    .await)?;
    Ok(claim)
}

/// Fills in the readers of claimed rows, as they are now (on SQLite, off the single writer).
async fn readers(db: &Db, rows: &mut [Claimed]) -> Result<(), StoreError> {
    let found: Vec<Recipient> = with_pool!(db, read, |pool| {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT id AS subscriber_id, uid, email, name, status FROM subscribers WHERE id IN (",
        );
        let mut list = query.separated(", ");
        for row in rows.iter() {
            list.push_bind(row.subscriber_id);
        }
        query.push(")");
        query.build_query_as().fetch_all(pool).await
    })?;
    let mut found: HashMap<i64, Recipient> =
        found.into_iter().map(|r| (r.subscriber_id, r)).collect();
    for row in rows {
        row.reader = found.remove(&row.subscriber_id);
    }
    Ok(())
}
