//! Tags, the subscribers that carry them, and the segment each issue goes to.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::subscriber_admin::{Filter, push_filter};
use super::{Db, StoreError, push_list};
pub use crate::domain::tag::TagCount;
use crate::domain::tag::{Segment, SegmentMode, Tag, TagName};
use crate::with_pool;

from_row!(Tag {
    id: plain,
    name: plain,
    description: plain,
    public: plain,
    created_at: plain,
});

const COLUMNS: &str = "id, name, description, public, created_at";

/// Why a change to tags was refused.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// No tag has this id.
    #[error("there is no such tag")]
    NotFound,
    /// Another tag has this name (in any case).
    #[error("another tag is already called {0:?}")]
    NameTaken(String),
    /// Names that are not tags.
    #[error("no tag is called {}", .0.join(", "))]
    Unknown(Vec<String>),
    /// An issue not yet sent (or still sending) goes to a segment that uses the tag.
    #[error("the tag is in the audience of the issue {0:?}; change that issue's audience first")]
    InUse(String),
    /// The same tag twice in one segment.
    #[error("the tag {0:?} is used twice in one audience; give each tag one role")]
    Twice(String),
    /// The issue is no longer editable.
    #[error("the issue is already {0}, so its audience is fixed")]
    Fixed(crate::domain::IssueStatus),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TagError {
    fn from(e: sqlx::Error) -> Self {
        TagError::Store(StoreError::Database(e))
    }
}

/// A write's error: the name is taken when the unique key refused it.
fn name_taken_or(e: sqlx::Error, name: &TagName) -> TagError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            TagError::NameTaken(name.as_str().to_owned())
        }
        _ => e.into(),
    }
}

/// Every tag by name, each with its subscriber count.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<TagCount>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tags ORDER BY name_key"));
    let tags: Vec<Tag> = with_pool!(db, read, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
    let counts: Vec<(i64, i64)> = with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT tag_id, COUNT(*) FROM subscriber_tags GROUP BY tag_id"
    )
    .fetch_all(pool)
    .await)?;
    let counts: HashMap<i64, i64> = counts.into_iter().collect();
    Ok(tags
        .into_iter()
        .map(|tag| TagCount {
            subscribers: counts.get(&tag.id).copied().unwrap_or(0),
            tag,
        })
        .collect())
}

/// The tags readers may choose for themselves, by name.
pub async fn public(db: &Db) -> Result<Vec<Tag>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tags WHERE public ORDER BY name_key"
    ));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .fetch_all(pool)
        .await)?)
}

/// One tag.
pub async fn get(db: &Db, id: i64) -> Result<Option<Tag>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tags WHERE id = $1"));
    Ok(with_pool!(db, read, |pool| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// Makes a tag.
#[tracing::instrument(skip(db))]
pub async fn create(
    db: &Db,
    name: &TagName,
    description: &str,
    public: bool,
    now: DateTime<Utc>,
) -> Result<Tag, TagError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO tags (name, name_key, description, public, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {COLUMNS}"
    ));
    with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(name.as_str())
        .bind(name.key())
        .bind(description)
        .bind(public)
        .bind(now)
        .fetch_one(pool)
        .await)
    .map_err(|e| name_taken_or(e, name))
}

/// Renames a tag, or changes its description or whether readers may choose it.
#[tracing::instrument(skip(db))]
pub async fn update(
    db: &Db,
    id: i64,
    name: &TagName,
    description: &str,
    public: bool,
) -> Result<Tag, TagError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE tags SET name = $2, name_key = $3, description = $4, public = $5 WHERE id = $1 \
         RETURNING {COLUMNS}"
    ));
    let updated: Option<Tag> = with_pool!(db, write, |pool| sqlx::query_as(sql)
        .bind(id)
        .bind(name.as_str())
        .bind(name.key())
        .bind(description)
        .bind(public)
        .fetch_optional(pool)
        .await)
    .map_err(|e| name_taken_or(e, name))?;
    updated.ok_or(TagError::NotFound)
}

/// Deletes a tag and takes it off every subscriber. Refused while an issue not yet sent, or
/// still sending, goes to a segment that names it (sent issues keep their audience in words).
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: i64) -> Result<(), TagError> {
    with_pool!(db, write, |pool| {
        async {
        let mut tx = pool.begin().await?;
        let user: Option<String> = sqlx::query_scalar(
            "SELECT i.subject FROM issue_segments g JOIN issues i ON i.id = g.issue_id \
             WHERE g.tag_id = $1 AND i.status IN ('draft', 'scheduled', 'sending') ORDER BY i.id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(subject) = user {
            return Err(TagError::InUse(subject));
        }
        // Checked again in the statement itself, so a segment saved meanwhile keeps its tag.
        let deleted = sqlx::query(
            "DELETE FROM tags WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM issue_segments g \
             JOIN issues i ON i.id = g.issue_id WHERE g.tag_id = $1 \
             AND i.status IN ('draft', 'scheduled', 'sending'))",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(TagError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
    .await
    })
}

/// The tags with these names (any case), in the order given; every name must be a tag.
pub async fn by_names(db: &Db, names: &[TagName]) -> Result<Vec<Tag>, TagError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Tag> = with_pool!(db, read, |pool| {
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM tags WHERE name_key IN "));
        push_list(&mut query, names.iter().map(TagName::key));
        query.build_query_as().fetch_all(pool).await
    })?;
    let mut tags = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for name in names {
        match found.iter().find(|t| t.name.to_lowercase() == name.key()) {
            Some(tag) => tags.push(tag.clone()),
            None => unknown.push(name.as_str().to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(tags)
    } else {
        Err(TagError::Unknown(unknown))
    }
}

/// The tags with these names, made (private) where missing: what an import does with its
/// `tags` column.
pub async fn ensure(
    db: &Db,
    names: &[TagName],
    now: DateTime<Utc>,
) -> Result<Vec<Tag>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    with_pool!(db, write, |pool| {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO tags (name, name_key, description, public, created_at) ",
        );
        insert.push_values(names, |mut row, name| {
            row.push_bind(name.as_str().to_owned())
                .push_bind(name.key())
                .push("''")
                .push("FALSE")
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (name_key) DO NOTHING");
        insert.build().execute(pool).await.map(|_| ())
    })?;
    by_names(db, names).await.map_err(|e| match e {
        TagError::Store(e) => e,
        other => StoreError::Unavailable(other.to_string()),
    })
}

/// Puts a tag on subscribers (those who carry it already are left as they are); returns how
/// many gained it.
#[tracing::instrument(skip(db, ids), fields(n = ids.len()))]
pub async fn tag(db: &Db, tag_id: i64, ids: &[i64], now: DateTime<Utc>) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(with_pool!(db, write, |pool| {
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO subscriber_tags (subscriber_id, tag_id, created_at) SELECT id, ",
        );
        query
            .push_bind(tag_id)
            .push(", ")
            .push_bind(now)
            .push(" FROM subscribers WHERE id IN ");
        push_list(&mut query, ids.iter().copied());
        query.push(" ON CONFLICT (subscriber_id, tag_id) DO NOTHING");
        query.build().execute(pool).await.map(|r| r.rows_affected())
    })?)
}

/// Takes a tag off subscribers; returns how many lost it.
#[tracing::instrument(skip(db, ids), fields(n = ids.len()))]
pub async fn untag(db: &Db, tag_id: i64, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(with_pool!(db, write, |pool| {
        let mut query = sqlx::QueryBuilder::new("DELETE FROM subscriber_tags WHERE tag_id = ");
        query.push_bind(tag_id).push(" AND subscriber_id IN ");
        push_list(&mut query, ids.iter().copied());
        query.build().execute(pool).await.map(|r| r.rows_affected())
    })?)
}

/// Puts a tag on every subscriber the filter selects, in one statement.
#[tracing::instrument(skip(db))]
pub async fn tag_matching(
    db: &Db,
    tag_id: i64,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO subscriber_tags (subscriber_id, tag_id, created_at) SELECT id, ",
        );
        query
            .push_bind(tag_id)
            .push(", ")
            .push_bind(now)
            .push(" FROM subscribers WHERE 1 = 1");
        push_filter(&mut query, filter);
        query.push(" ON CONFLICT (subscriber_id, tag_id) DO NOTHING");
        query.build().execute(pool).await.map(|r| r.rows_affected())
    })?)
}

/// Takes a tag off every subscriber the filter selects, in one statement.
#[tracing::instrument(skip(db))]
pub async fn untag_matching(db: &Db, tag_id: i64, filter: &Filter) -> Result<u64, StoreError> {
    Ok(with_pool!(db, write, |pool| {
        let mut query = sqlx::QueryBuilder::new("DELETE FROM subscriber_tags WHERE tag_id = ");
        query
            .push_bind(tag_id)
            .push(" AND subscriber_id IN (SELECT id FROM subscribers WHERE 1 = 1");
        push_filter(&mut query, filter);
        query.push(")");
        query.build().execute(pool).await.map(|r| r.rows_affected())
    })?)
}

/// The tags of each of these subscribers, by name.
pub async fn of_subscribers(db: &Db, ids: &[i64]) -> Result<HashMap<i64, Vec<Tag>>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64, String, String, bool, DateTime<Utc>)> = with_pool!(
        db,
        read,
        |pool| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT st.subscriber_id, t.id, t.name, t.description, t.public, t.created_at \
                 FROM subscriber_tags st JOIN tags t ON t.id = st.tag_id WHERE st.subscriber_id IN ",
            );
            push_list(&mut query, ids.iter().copied());
            query.push(" ORDER BY t.name_key");
            query.build_query_as().fetch_all(pool).await
        }
    )?;
    let mut out: HashMap<i64, Vec<Tag>> = HashMap::new();
    for (subscriber, id, name, description, public, created_at) in rows {
        out.entry(subscriber).or_default().push(Tag {
            id,
            name,
            description,
            public,
            created_at,
        });
    }
    Ok(out)
}

/// Makes a subscriber's tags exactly `tag_ids`. With `public_only`, only public tags are
/// touched (what a reader chooses on their manage page); the editor's private tags stay.
#[tracing::instrument(skip(db))]
pub async fn replace(
    db: &Db,
    subscriber_id: i64,
    tag_ids: &[i64],
    public_only: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        let mut delete =
            sqlx::QueryBuilder::new("DELETE FROM subscriber_tags WHERE subscriber_id = ");
        delete.push_bind(subscriber_id);
        if public_only {
            delete.push(" AND tag_id IN (SELECT id FROM tags WHERE public)");
        }
        delete.build().execute(&mut *tx).await?;
        if !tag_ids.is_empty() {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO subscriber_tags (subscriber_id, tag_id, created_at) SELECT ",
            );
            insert
                .push_bind(subscriber_id)
                .push(", id, ")
                .push_bind(now)
                .push(" FROM tags WHERE id IN ");
            push_list(&mut insert, tag_ids.iter().copied());
            if public_only {
                insert.push(" AND public");
            }
            insert.push(" ON CONFLICT (subscriber_id, tag_id) DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await
    }
    .await)?;
    Ok(())
}

/// Appends the segment's conditions on `subscribers` (` AND ...`) to a query.
pub(super) fn push_segment<DB>(query: &mut sqlx::QueryBuilder<DB>, segment: &Segment)
where
    DB: sqlx::Database,
    i64: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    const HAS: &str = "EXISTS (SELECT 1 FROM subscriber_tags st WHERE st.subscriber_id = subscribers.id AND st.tag_id";
    if !segment.any.is_empty() {
        query.push(format!(" AND {HAS} IN "));
        push_list(query, segment.any.iter().map(|t| t.id));
        query.push(")");
    }
    for tag in &segment.all {
        query
            .push(format!(" AND {HAS} = "))
            .push_bind(tag.id)
            .push(")");
    }
    if !segment.none.is_empty() {
        query.push(format!(" AND NOT {HAS} IN "));
        push_list(query, segment.none.iter().map(|t| t.id));
        query.push(")");
    }
}

/// Appends who an issue's send is for (` AND ...`): active readers, confirmed by `started`,
/// not pausing, in the segment.
pub(super) fn push_audience<DB>(
    query: &mut sqlx::QueryBuilder<DB>,
    segment: &Segment,
    started: DateTime<Utc>,
) where
    DB: sqlx::Database,
    i64: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    DateTime<Utc>: for<'a> sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    query
        .push(
            " AND status = 'active' AND skip_issues = 0 AND COALESCE(confirmed_at, created_at) <= ",
        )
        .push_bind(started);
    push_segment(query, segment);
}

/// How many readers an issue for `segment` would reach if its send started at `now`.
#[tracing::instrument(skip(db))]
pub async fn audience(db: &Db, segment: &Segment, now: DateTime<Utc>) -> Result<i64, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        let mut query = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM subscribers WHERE 1 = 1");
        push_audience(&mut query, segment, now);
        query.build_query_scalar().fetch_one(pool).await
    })?)
}

/// An issue's segment: each tag with its mode.
pub(super) const SEGMENT_SQL: &str = "SELECT g.mode, t.id, t.name, t.description, t.public, t.created_at \
     FROM issue_segments g JOIN tags t ON t.id = g.tag_id WHERE g.issue_id = $1 ORDER BY t.name_key";

/// A segment's rows as [`SEGMENT_SQL`] reads them.
pub(super) type SegmentRow = (String, i64, String, String, bool, DateTime<Utc>);

/// The segment the rows describe.
pub(super) fn segment_from_rows(rows: Vec<SegmentRow>) -> Segment {
    let mut segment = Segment::default();
    for (mode, id, name, description, public, created_at) in rows {
        let tag = Tag {
            id,
            name,
            description,
            public,
            created_at,
        };
        match SegmentMode::try_from(mode) {
            Ok(SegmentMode::Any) => segment.any.push(tag),
            Ok(SegmentMode::All) => segment.all.push(tag),
            Ok(SegmentMode::None) => segment.none.push(tag),
            Err(_) => {}
        }
    }
    segment
}

/// Reads an issue's segment inside a transaction or from a pool (`?` on a database error).
macro_rules! read_segment {
    ($executor:expr, $issue_id:expr) => {{
        let rows: Vec<$crate::store::tags::SegmentRow> =
            sqlx::query_as($crate::store::tags::SEGMENT_SQL)
                .bind($issue_id)
                .fetch_all($executor)
                .await?;
        $crate::store::tags::segment_from_rows(rows)
    }};
}
pub(super) use read_segment;

/// The segment an issue goes to (empty: everyone).
pub async fn segment_of(db: &Db, issue_id: i64) -> Result<Segment, StoreError> {
    Ok(with_pool!(db, read, |pool| async {
        Ok::<_, sqlx::Error>(read_segment!(pool, issue_id))
    }
    .await)?)
}

/// Sets the segment an issue goes to, while the issue is a draft or scheduled.
#[tracing::instrument(skip(db))]
pub async fn set_segment(db: &Db, issue_id: i64, segment: &Segment) -> Result<(), TagError> {
    with_pool!(db, write, |pool| async {
        let mut tx = pool.begin().await?;
        // The issue's row is locked, so a send cannot start between the check and the change.
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE issues SET updated_at = updated_at WHERE id = $1 RETURNING status",
        )
        .bind(issue_id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = match status.map(crate::domain::IssueStatus::try_from) {
            None => return Err(TagError::NotFound),
            Some(Ok(status)) => status,
            Some(Err(e)) => return Err(TagError::Store(StoreError::Unavailable(e))),
        };
        if !status.is_editable() {
            return Err(TagError::Fixed(status));
        }
        if let Some(tag) = segment.repeated() {
            return Err(TagError::Twice(tag.name.clone()));
        }
        sqlx::query("DELETE FROM issue_segments WHERE issue_id = $1")
            .bind(issue_id)
            .execute(&mut *tx)
            .await?;
        if !segment.is_everyone() {
            let entries: Vec<(&Tag, SegmentMode)> = segment.entries().collect();
            let mut insert =
                sqlx::QueryBuilder::new("INSERT INTO issue_segments (issue_id, tag_id, mode) ");
            insert.push_values(entries, |mut row, (tag, mode)| {
                row.push_bind(issue_id)
                    .push_bind(tag.id)
                    .push_bind(mode.as_str());
            });
            insert.push(" ON CONFLICT (issue_id, tag_id) DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await)
}
