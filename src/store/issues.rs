//! Issues: drafts the editor writes, and the published ones the archive and feed show.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::webhooks::{issue_data, queue_webhooks, webhook_targets};
use super::{Db, StoreError};
pub use crate::domain::Issue;
use crate::domain::webhook::EventType;
use crate::domain::{IssueDraft, IssueStatus, Slug};
use crate::with_pool;

from_row!(Issue {
    id: plain,
    uid: plain,
    slug: plain,
    subject: plain,
    preheader: plain,
    body: plain,
    links_heading: plain,
    links: json,
    status: parsed,
    created_at: plain,
    updated_at: plain,
    published_at: plain,
    scheduled_at: plain,
    slot_at: plain,
    missed_at: plain,
    paused_at: plain,
    finished_at: plain,
    summary: plain,
    audience: plain,
    audience_label: plain,
});

pub(super) const COLUMNS: &str = "id, uid, slug, subject, preheader, body, links_heading, links, status, \
                       created_at, updated_at, published_at, scheduled_at, slot_at, missed_at, \
                       paused_at, finished_at, summary, audience, audience_label";

/// Why a change to an issue was refused.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// No issue has this id.
    #[error("there is no such issue")]
    NotFound,
    /// The issue is past the state the change needs.
    #[error("the issue is {0}, so it cannot be changed this way")]
    WrongStatus(IssueStatus),
    /// Another issue already has the slug.
    #[error("another issue already uses the slug {0:?}")]
    SlugTaken(String),
    /// Another issue already holds the slot.
    #[error("another issue already holds that slot")]
    SlotTaken,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Store(StoreError::Database(e))
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Tries this many suffixed slugs (other instances may take the same number meanwhile).
const SLUG_TRIES: u32 = 5;

/// Saves a new draft. A slug the editor chose must be free; a derived one that is taken gets
/// the next free `-n` suffix.
#[tracing::instrument(skip(db, draft), fields(subject = %draft.subject))]
pub async fn create(db: &Db, draft: &IssueDraft, now: DateTime<Utc>) -> Result<Issue, IssueError> {
    let base = draft
        .slug
        .clone()
        .unwrap_or_else(|| Slug::from_subject(&draft.subject));
    if let Some(issue) = insert(db, draft, &base, now).await? {
        return Ok(issue);
    }
    if draft.slug.is_some() {
        return Err(IssueError::SlugTaken(base.as_str().to_owned()));
    }
    let mut n = next_number(db, &base).await?;
    for _ in 0..SLUG_TRIES {
        if let Some(issue) = insert(db, draft, &base.numbered(n), now).await? {
            return Ok(issue);
        }
        n += 1;
    }
    Err(IssueError::SlugTaken(base.as_str().to_owned()))
}

/// One more than the highest `-n` suffix in use on `base` (at least 2).
async fn next_number(db: &Db, base: &Slug) -> Result<u32, StoreError> {
    // Slugs hold only [a-z0-9-], so the pattern needs no escaping.
    let taken: Vec<String> = with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT slug FROM issues WHERE slug LIKE $1"
    )
    .bind(format!("{}-%", base.as_str()))
    .fetch_all(pool)
    .await)?;
    let prefix = format!("{}-", base.as_str());
    Ok(taken
        .iter()
        .filter_map(|s| s.strip_prefix(&prefix)?.parse::<u32>().ok())
        .max()
        .map_or(2, |n| n.saturating_add(1).max(2)))
}

/// The draft made for cadence slot `slot` (`draft_ahead`), while it exists.
pub async fn slot_draft(db: &Db, slot: DateTime<Utc>) -> Result<Option<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE id = (SELECT issue_id FROM slot_drafts WHERE slot_at = $1)"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(slot)
        .fetch_optional(pool)
        .await)?)
}

/// Whether cadence slot `slot` has had its draft made (`draft_ahead`).
pub async fn slot_drafted(db: &Db, slot: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM slot_drafts WHERE slot_at = $1)"
    )
    .bind(slot)
    .fetch_one(pool)
    .await)?)
}

/// Makes the draft of cadence slot `slot` from `draft`, unless the slot has had one made
/// already: the slot is claimed in the same transaction, so one draft is made per slot
/// however many instances try at once. `None` when the slot was claimed before.
#[tracing::instrument(skip(db, draft))]
pub async fn create_slot_draft(
    db: &Db,
    slot: DateTime<Utc>,
    draft: &IssueDraft,
    now: DateTime<Utc>,
) -> Result<Option<Issue>, IssueError> {
    let base = Slug::from_subject(&draft.subject);
    let sql = format!(
        "INSERT INTO issues (uid, slug, subject, preheader, body, links_heading, links, status, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $8) \
         ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let claimed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO slot_drafts (slot_at, created_at) VALUES ($1, $2) \
             ON CONFLICT (slot_at) DO NOTHING RETURNING slot_at",
        )
        .bind(slot)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            return Ok(None);
        }
        let mut made: Option<Issue> = None;
        for n in 1..=SLUG_TRIES + 1 {
            let slug = if n == 1 {
                base.clone()
            } else {
                base.numbered(n)
            };
            made = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(crate::domain::new_uid())
                .bind(slug.as_str())
                .bind(&draft.subject)
                .bind(&draft.preheader)
                .bind(&draft.body)
                .bind(&draft.links_heading)
                .bind(Json(&draft.links))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if made.is_some() {
                break;
            }
        }
        let Some(issue) = made else {
            return Err(sqlx::Error::Protocol(format!(
                "no free slug for {}",
                base.as_str()
            )));
        };
        sqlx::query("UPDATE slot_drafts SET issue_id = $2 WHERE slot_at = $1")
            .bind(slot)
            .bind(issue.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some(issue))
    }
    .await)?)
}

/// One insert; `None` when the slug is taken.
async fn insert(
    db: &Db,
    draft: &IssueDraft,
    slug: &Slug,
    now: DateTime<Utc>,
) -> Result<Option<Issue>, IssueError> {
    // ON CONFLICT on the slug alone: a uid collision (UUIDv7) would be a real error.
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO issues (uid, slug, subject, preheader, body, links_heading, links, status, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $8) \
         ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    ));
    let row = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(crate::domain::new_uid())
        .bind(slug.as_str())
        .bind(&draft.subject)
        .bind(&draft.preheader)
        .bind(&draft.body)
        .bind(&draft.links_heading)
        .bind(Json(&draft.links))
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    Ok(row)
}

/// Replaces an issue's content, if it is still editable (draft or scheduled). A draft without
/// a chosen slug keeps the one it has.
#[tracing::instrument(skip(db, draft))]
pub async fn update(
    db: &Db,
    id: i64,
    draft: &IssueDraft,
    now: DateTime<Utc>,
) -> Result<Issue, IssueError> {
    // The status test in the WHERE clause makes the check and the write one step, so an issue
    // that starts sending meanwhile is never changed under its readers.
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE issues SET subject = $2, slug = COALESCE($3, slug), preheader = $4, body = $5, \
         links_heading = $6, links = $7, updated_at = $8 \
         WHERE id = $1 AND status IN ('draft', 'scheduled') RETURNING {COLUMNS}"
    ));
    let result = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(id)
        .bind(&draft.subject)
        .bind(draft.slug.as_ref().map(Slug::as_str))
        .bind(&draft.preheader)
        .bind(&draft.body)
        .bind(&draft.links_heading)
        .bind(Json(&draft.links))
        .bind(now)
        .fetch_optional(pool)
        .await);
    match result {
        Ok(Some(issue)) => Ok(issue),
        Ok(None) => Err(why_unchanged(db, id).await),
        Err(e) if is_unique_violation(&e) => Err(IssueError::SlugTaken(
            draft
                .slug
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The reason a conditional change touched nothing: no such issue, or its status.
async fn why_unchanged(db: &Db, id: i64) -> IssueError {
    match get(db, id).await {
        Ok(Some(issue)) => IssueError::WrongStatus(issue.status),
        Ok(None) => IssueError::NotFound,
        Err(e) => e.into(),
    }
}

/// Deletes a draft. Anything further along has a history worth keeping.
#[tracing::instrument(skip(db))]
pub async fn delete_draft(db: &Db, id: i64) -> Result<(), IssueError> {
    let deleted = with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM issues WHERE id = $1 AND status = 'draft'"
    )
    .bind(id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    if deleted == 1 {
        Ok(())
    } else {
        Err(why_unchanged(db, id).await)
    }
}

/// A new draft with an issue's content (any issue, sent ones included), under a fresh slug.
#[tracing::instrument(skip(db))]
pub async fn duplicate(db: &Db, id: i64, now: DateTime<Utc>) -> Result<Issue, IssueError> {
    let original = get(db, id).await?.ok_or(IssueError::NotFound)?;
    let draft = IssueDraft {
        subject: original.subject,
        slug: None,
        preheader: original.preheader,
        body: original.body,
        links_heading: original.links_heading,
        links: original.links,
    };
    create(db, &draft, now).await
}

/// One issue by id.
#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: i64) -> Result<Option<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM issues WHERE id = $1"));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// A page of issues, newest first, optionally of one status, older than `before` (an id).
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    status: Option<IssueStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Issue>, StoreError> {
    let rows = with_pool!(db, read, |pool| {
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM issues WHERE 1 = 1"));
        if let Some(status) = status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit.clamp(1, 501));
        query.build_query_as().fetch_all(pool).await
    })?;
    Ok(rows)
}

/// A public issue by slug: sending or sent. Drafts, scheduled and cancelled issues are not
/// found, whoever asks.
#[tracing::instrument(skip(db))]
pub async fn published_by_slug(db: &Db, slug: &str) -> Result<Option<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE slug = $1 AND status IN ('sending', 'sent')"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(slug)
        .fetch_optional(pool)
        .await)?)
}

/// The published issues just older and just newer than `issue` (by publication time), for
/// the web version's previous/next links.
#[tracing::instrument(skip_all, fields(id = issue.id))]
pub async fn neighbours(
    db: &Db,
    issue: &Issue,
) -> Result<(Option<Issue>, Option<Issue>), StoreError> {
    let Some(at) = issue.published_at else {
        return Ok((None, None));
    };
    let older = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE status IN ('sending', 'sent') \
         AND (published_at, id) < ($1, $2) ORDER BY published_at DESC, id DESC LIMIT 1"
    ));
    let newer = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE status IN ('sending', 'sent') \
         AND (published_at, id) > ($1, $2) ORDER BY published_at, id LIMIT 1"
    ));
    let older = with_pool!(db, read, |pool| sqlx::query_as(older)
        .bind(at)
        .bind(issue.id)
        .fetch_optional(pool)
        .await)?;
    let newer = with_pool!(db, read, |pool| sqlx::query_as(newer)
        .bind(at)
        .bind(issue.id)
        .fetch_optional(pool)
        .await)?;
    Ok((older, newer))
}

/// Public issues, most recently published first: `limit` of them after skipping `offset`.
#[tracing::instrument(skip(db))]
pub async fn published(db: &Db, offset: i64, limit: i64) -> Result<Vec<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE status IN ('sending', 'sent') \
         ORDER BY published_at DESC, id DESC LIMIT $1 OFFSET $2"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?)
}

/// How many issues are public.
pub async fn published_count(db: &Db) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM issues WHERE status IN ('sending', 'sent')"
    )
    .fetch_one(pool)
    .await)?)
}

/// Starts an issue's send: draft or scheduled becomes `sending` and public, once. Returns
/// whether this call made the change (a second caller, or a second instance, gets `false`).
#[tracing::instrument(skip(db))]
pub async fn start_sending(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    start(
        db,
        "UPDATE issues SET status = 'sending', published_at = $2, updated_at = $2 \
         WHERE id = $1 AND status IN ('draft', 'scheduled')",
        id,
        now,
        None,
    )
    .await
}

/// Starts a scheduled issue whose time `scheduled_at` has come, once: only while it is still
/// scheduled for exactly that time (an editor who unscheduled or moved it meanwhile wins).
#[tracing::instrument(skip(db))]
pub async fn start_due(
    db: &Db,
    id: i64,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    start(
        db,
        "UPDATE issues SET status = 'sending', published_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'scheduled' AND scheduled_at = $3",
        id,
        now,
        Some(scheduled_at),
    )
    .await
}

/// One conditional update into `sending`, with the steering counter bumped in the same
/// transaction so that every worker learns of the new send at once.
async fn start(
    db: &Db,
    sql: &'static str,
    id: i64,
    now: DateTime<Utc>,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let changed = with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        let mut query = sqlx::query(sql).bind(id).bind(now);
        if let Some(at) = scheduled_at {
            query = query.bind(at);
        }
        let changed = query.execute(&mut *tx).await?.rows_affected();
        if changed == 1 {
            // The audience is fixed now: counted, and the segment kept in words.
            let segment = super::tags::read_segment!(&mut *tx, id);
            let mut count = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM subscribers WHERE 1 = 1");
            super::tags::push_audience(&mut count, &segment, now);
            let audience: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;
            sqlx::query("UPDATE issues SET audience = $2, audience_label = $3 WHERE id = $1")
                .bind(id)
                .bind(audience)
                .bind(segment.describe())
                .execute(&mut *tx)
                .await?;
            crate::bump_steer!(tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(changed)
    })?;
    Ok(changed == 1)
}

/// Ends a send: `sending` becomes `sent`. Returns whether this call made the change.
#[tracing::instrument(skip(db))]
pub async fn finish_sending(db: &Db, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let changed = with_pool!(db, write, |pool| {
        sqlx::query(
        "UPDATE issues SET status = 'sent', updated_at = $2 WHERE id = $1 AND status = 'sending'"
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Puts a draft (or moves a scheduled issue) at `at`, holding `slot` when `at` is a cadence
/// slot. The database refuses a second issue on one slot.
#[tracing::instrument(skip(db))]
pub async fn schedule(
    db: &Db,
    id: i64,
    at: DateTime<Utc>,
    slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Issue, IssueError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE issues SET status = 'scheduled', scheduled_at = $2, slot_at = $3, missed_at = NULL, \
         updated_at = $4 WHERE id = $1 AND status IN ('draft', 'scheduled') RETURNING {COLUMNS}"
    ));
    let result = with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let issue: Option<Issue> = sqlx::query_as(sql)
            .bind(id)
            .bind(at)
            .bind(slot)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(issue) = &issue {
            let event = EventType::IssueScheduled;
            let targets = webhook_targets!(tx, event);
            queue_webhooks!(tx, &targets, event, [issue_data(issue, None)], now);
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(issue)
    }
    .await);
    match result {
        Ok(Some(issue)) => Ok(issue),
        Ok(None) => Err(why_unchanged(db, id).await),
        Err(e) if is_unique_violation(&e) => Err(IssueError::SlotTaken),
        Err(e) => Err(e.into()),
    }
}

/// Takes a scheduled issue off its time, back to draft.
#[tracing::instrument(skip(db))]
pub async fn unschedule(db: &Db, id: i64, now: DateTime<Utc>) -> Result<Issue, IssueError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE issues SET status = 'draft', scheduled_at = NULL, slot_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'scheduled' RETURNING {COLUMNS}"
    ));
    let row = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    match row {
        Some(issue) => Ok(issue),
        None => Err(why_unchanged(db, id).await),
    }
}

/// Scheduled issues whose time has come, oldest first (the partial index `issues_due` keeps
/// this cheap however many issues wait in the future).
#[tracing::instrument(skip(db))]
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE status = 'scheduled' AND scheduled_at <= $1 \
         ORDER BY scheduled_at LIMIT $2"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// Returns a scheduled issue whose time passed too long ago to draft, marked missed and off
/// its slot. Returns whether this call made the change.
#[tracing::instrument(skip(db))]
pub async fn mark_missed(
    db: &Db,
    id: i64,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = with_pool!(db, write, |pool| sqlx::query(
        "UPDATE issues SET status = 'draft', slot_at = NULL, missed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'scheduled' AND scheduled_at = $3"
    )
    .bind(id)
    .bind(now)
    .bind(scheduled_at)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// Issues holding slots between two instants (inclusive), by slot.
pub async fn on_slots(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE slot_at >= $1 AND slot_at <= $2 ORDER BY slot_at"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?)
}

/// Drafts that missed their time and have not been scheduled again.
pub async fn missed(db: &Db) -> Result<Vec<Issue>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM issues WHERE missed_at IS NOT NULL AND status = 'draft' \
         ORDER BY missed_at DESC LIMIT 20"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .fetch_all(pool)
        .await)?)
}

/// When the earliest scheduled issue after `now` goes out, if any is scheduled.
pub async fn next_scheduled(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT MIN(scheduled_at) FROM issues WHERE status = 'scheduled' AND scheduled_at > $1"
    )
    .bind(now)
    .fetch_one(pool)
    .await)?)
}
