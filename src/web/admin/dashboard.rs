//! The dashboard: the list at a glance, its growth, the next slot and missed issues.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{AdminContext, chrome};
use crate::render::admin::{Bar, DashboardPage};
use crate::render::local_time;
use crate::schedule::plan;
use crate::store::{cadence, issues, subscriber_admin};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Days shown in the growth chart.
const DAYS: usize = 90;

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
    let now = state.clock.now();
    let cadence = cadence::load(&state.db).await?;
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
            next_slot,
            missed,
        },
    )
}
