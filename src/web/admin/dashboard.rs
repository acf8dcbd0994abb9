//! The dashboard: the list at a glance, its growth, the next slot and missed issues.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{AdminContext, chrome};
use crate::domain::IssueStatus;
use crate::render::admin::{Bar, DashboardPage, LastSend, RecentIssue, Tick};
use crate::render::local_time;
use crate::schedule::plan;
use crate::store::{cadence, issues, sends, subscriber_admin};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Days shown in the growth chart.
const DAYS: usize = 90;
/// Issues in the recent list.
const RECENT: i64 = 5;

/// `GET /admin`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    let counts = subscriber_admin::counts(&state.db).await?;
    let since = state.clock.now() - chrono::Duration::days(DAYS as i64);
    let days = subscriber_admin::signups_per_day(&state.db, since).await?;
    let peak = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let start = since.date_naive();
    let bars = days
        .into_iter()
        .filter_map(|(day, count)| {
            let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").ok()?;
            let index = (date - start).num_days().clamp(0, DAYS as i64) as usize;
            Some(Bar {
                day,
                count,
                x: index * 10,
                height: (count * 130 / peak).max(1),
            })
        })
        .collect();
    // A date under the first day of each month, and under the first day shown.
    let ticks = (0..DAYS)
        .filter_map(|i| {
            let date = start + chrono::Duration::days(i as i64);
            (i == 0 || chrono::Datelike::day(&date) == 1).then(|| Tick {
                x: i * 10,
                label: date.format("%-d %b").to_string(),
            })
        })
        .filter(|t| t.x == 0 || t.x >= 60)
        .collect();
    let now = state.clock.now();
    let cadence = cadence::load(&state.db).await?;
    let local = |at: chrono::DateTime<chrono::Utc>| local_time(at, cadence.zone_at(at));
    let recent_issues = issues::list(&state.db, None, None, RECENT).await?;
    let last_sent = issues::list(&state.db, Some(IssueStatus::Sent), None, 2).await?;
    let last_send = match last_sent.first() {
        Some(issue) => {
            let since = issue.published_at.unwrap_or(issue.updated_at);
            let until = recent_issues
                .iter()
                .filter_map(|i| i.published_at)
                .filter(|at| *at > since)
                .min()
                .unwrap_or(now);
            let progress = sends::progress(&state.db, issue.id, now).await?;
            let (bounced, unsubscribed) =
                sends::aftermath(&state.db, issue.id, since, until).await?;
            Some(LastSend {
                id: issue.id,
                subject: issue.subject.clone(),
                when: local(since),
                sent: progress.sent,
                failed: progress.failed,
                bounced,
                unsubscribed,
            })
        }
        None => None,
    };
    let recent = recent_issues
        .into_iter()
        .map(|i| RecentIssue {
            id: i.id,
            when: local(i.published_at.or(i.scheduled_at).unwrap_or(i.updated_at)),
            status: i.status.as_str().to_owned(),
            subject: i.subject,
        })
        .collect();
    let next_slot = plan::upcoming(&state.db, &cadence, now, 1)
        .await?
        .into_iter()
        .next()
        .map(|s| s.row(&cadence));
    let missed = issues::missed(&state.db)
        .await?
        .into_iter()
        .map(|i| {
            let when = i
                .scheduled_at
                .map(|at| local_time(at, cadence.zone_at(at)))
                .unwrap_or_default();
            (i.id, i.subject, when)
        })
        .collect();
    html(
        StatusCode::OK,
        DashboardPage {
            chrome: chrome(&state, &ctx, &session),
            counts,
            bars,
            peak,
            ticks,
            last_send,
            recent,
            next_slot,
            missed,
        },
    )
}
