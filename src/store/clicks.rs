//! Clicks on tracked links, opens counted by the pixel, and an issue's report.

use chrono::{DateTime, Utc};

use super::{Db, StoreError, sends};
use crate::domain::Issue;
use crate::domain::send::{IssueReport, LinkReport};
use crate::domain::token::{Click, Open};
use crate::with_pool;

/// Records one click, naming the reader only when `name_reader` (readers are tracked now) and
/// the link names one still on the list. A click on a link of an issue that no longer exists
/// records nothing.
#[tracing::instrument(skip_all, fields(issue_id = click.issue_id))]
pub async fn record(
    db: &Db,
    click: &Click,
    name_reader: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query(
        "INSERT INTO link_clicks (issue_id, url, subscriber_id, clicked_at) \
         SELECT i.id, $2, (SELECT s.id FROM subscribers s WHERE s.uid = $3), $4 FROM issues i WHERE i.id = $1"
    )
    .bind(click.issue_id)
    .bind(&click.url)
    .bind(click.reader.filter(|_| name_reader))
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ())
    })?;
    Ok(())
}

/// Records one open, naming the reader only when `name_reader` and the pixel names one still
/// on the list. An open of an issue that no longer exists records nothing.
#[tracing::instrument(skip_all, fields(issue_id = open.issue_id))]
pub async fn record_open(
    db: &Db,
    open: &Open,
    name_reader: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query(
            "INSERT INTO email_opens (issue_id, subscriber_id, opened_at) \
             SELECT i.id, (SELECT s.id FROM subscribers s WHERE s.uid = $2), $3 FROM issues i WHERE i.id = $1",
        )
        .bind(open.issue_id)
        .bind(open.reader.filter(|_| name_reader))
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// An issue's report: its audience, what the mail server said, what came back afterwards, the
/// readers who left within a week, and the clicks on each link (`body_links`: the body's own
/// links, in order, after the roundup's).
#[tracing::instrument(skip(db, issue, body_links), fields(issue_id = issue.id))]
pub async fn report(
    db: &Db,
    issue: &Issue,
    body_links: &[String],
    clicks_tracked: bool,
    opens_tracked: bool,
    readers_tracked: bool,
    now: DateTime<Utc>,
) -> Result<IssueReport, StoreError> {
    let progress = sends::progress(db, issue.id, now).await?;
    let since = issue.published_at.unwrap_or(now);
    let (bounced, complained, left, clicks, opens) = with_pool!(db, read, |pool| {
        async {
        let bounced: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT subscriber_id) FROM mail_events \
             WHERE issue_id = $1 AND kind IN ('bounce', 'soft_bounce')",
        )
        .bind(issue.id)
        .fetch_one(pool)
        .await?;
        let complained: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT subscriber_id) FROM mail_events WHERE issue_id = $1 AND kind = 'complaint'",
        )
        .bind(issue.id)
        .fetch_one(pool)
        .await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_id = $1 AND d.status = 'sent' AND s.status = 'unsubscribed' \
             AND s.unsubscribed_at >= $2 AND s.unsubscribed_at < $3) \
             + (SELECT folded_left FROM issues WHERE id = $1)",
        )
        .bind(issue.id)
        .bind(since)
        .bind(since + super::retention::LEFT_WITHIN)
        .fetch_one(pool)
        .await?;
        let clicks: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT url, COUNT(*), COUNT(DISTINCT subscriber_id) FROM link_clicks WHERE issue_id = $1 GROUP BY url",
        )
        .bind(issue.id)
        .fetch_all(pool)
        .await?;
        let opens: (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(DISTINCT subscriber_id) FROM email_opens WHERE issue_id = $1",
        )
        .bind(issue.id)
        .fetch_one(pool)
        .await?;
        Ok::<_, sqlx::Error>((bounced, complained, left, clicks, opens))
    }
    .await
    })?;
    let count = |url: &str| clicks.iter().find(|(u, _, _)| u == url);
    let mut links: Vec<LinkReport> = Vec::new();
    let mut add = |title: Option<String>, url: &str| {
        if links.iter().any(|l| l.url == url) {
            return;
        }
        let found = count(url);
        links.push(LinkReport {
            title,
            url: url.to_owned(),
            clicks: found.map_or(0, |c| c.1),
            readers: readers_tracked.then(|| found.map_or(0, |c| c.2)),
        });
    };
    for link in &issue.links {
        add(Some(link.title.clone()), &link.url);
    }
    for url in body_links {
        add(None, url);
    }
    Ok(IssueReport {
        audience: issue.audience,
        audience_label: issue.audience_label.clone(),
        sent: progress.sent,
        failed: progress.failed,
        bounced,
        complained,
        unsubscribed_within_7_days: left,
        clicks_tracked,
        readers_tracked,
        links,
        opens_tracked,
        opens: opens.0,
        readers_opened: readers_tracked.then_some(opens.1),
    })
}
