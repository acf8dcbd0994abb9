//! The calendar in the admin: the cadence page (coming slots, skip, change from a date) and
//! putting an issue on a slot or at an exact time.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Deserialize;

use super::context::flash;
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::cadence::{Rule, local_instant, parse_weekday, parse_zone};
use crate::render::admin_issues::{CadencePage, CalendarSlot, RuleRow, calendar};
use crate::schedule::plan::{self, Placement, PlanError};
use crate::store::cadence;
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Slots the cadence page lists.
const SHOWN: usize = 12;
/// Months in the month view, from this one.
const MONTHS: u32 = 3;
/// Slots read for the month view (three months of weekly slots, and more).
const IN_MONTHS: usize = 16;

impl From<PlanError> for WebError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Invalid(m) => WebError::BadRequest(m),
            PlanError::Conflict(m) => WebError::Conflict(m),
            PlanError::Issue(e) => e.into(),
        }
    }
}

/// The change form.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    every_weeks: String,
    #[serde(default)]
    weekday: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    effective_from: String,
}

impl ChangeForm {
    /// The rule the form describes.
    pub fn rule(&self) -> Result<Rule, String> {
        let every = self
            .every_weeks
            .trim()
            .parse::<u8>()
            .map_err(|_| format!("{:?} is not a number of weeks.", self.every_weeks))?;
        let weekday = parse_weekday(&self.weekday).map_err(|e| e.0)?;
        let time = NaiveTime::parse_from_str(self.time.trim(), "%H:%M")
            .map_err(|_| format!("{:?} is not a time like 08:00.", self.time))?;
        let zone = parse_zone(&self.zone).map_err(|e| e.0)?;
        let from = NaiveDate::parse_from_str(self.effective_from.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{:?} is not a date like 2026-09-01.", self.effective_from))?;
        Rule::new(every, weekday, time, zone, from).map_err(|e| e.0)
    }
}

/// The cadence page, with the form showing `form` (the current rule when `None`).
async fn page(
    state: &AppState,
    ctx: &AdminContext,
    session: &Session,
    refused: Option<String>,
) -> Result<HttpResponse, WebError> {
    let now = state.clock.now();
    let cadence = cadence::load(&state.db).await?;
    let current = cadence.rule_at(now).clone();
    let slots = plan::upcoming(&state.db, &cadence, now, SHOWN.max(IN_MONTHS)).await?;
    let today = plan::today(&cadence, now);
    let dated = slots
        .iter()
        .map(|s| {
            let zone = cadence.zone_at(s.at);
            let slot = CalendarSlot {
                time: zone.local(s.at).format("%H:%M").to_string(),
                row: s.clone().row(&cadence),
            };
            (zone.date_of(s.at), slot)
        })
        .collect();
    let months = calendar(today, MONTHS, dated);
    let status = if refused.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(
        status,
        CadencePage {
            chrome: chrome(state, ctx, session),
            current: current.describe(),
            history: cadence
                .rules()
                .iter()
                .map(|r| RuleRow {
                    from: r.effective_from.to_string(),
                    describe: r.describe(),
                })
                .collect(),
            slots: slots
                .into_iter()
                .take(SHOWN)
                .map(|s| s.row(&cadence))
                .collect(),
            months,
            earliest: (today + chrono::Duration::days(1)).to_string(),
            every: current.every_weeks,
            weekday: current.weekday.number_from_monday(),
            time: current.time.format("%H:%M").to_string(),
            zone: current.zone.name().to_owned(),
            error: refused,
            zones: crate::domain::zone::names(),
            tzdata: {
                let tzdata = crate::domain::zone::tzdata();
                match tzdata.stale() {
                    Some(warning) => format!("{tzdata}; {warning}"),
                    None => tzdata.to_string(),
                }
            },
        },
    )
}

/// `GET /admin/cadence`.
pub async fn show(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    page(&state, &ctx, &session, None).await
}

/// `POST /admin/cadence`: changes the cadence from a future date.
pub async fn change(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, WebError> {
    let rule = match form.rule() {
        Ok(rule) => rule,
        Err(why) => return page(&state, &ctx, &session, Some(why)).await,
    };
    match plan::change_cadence(&state.db, rule.clone(), state.clock.now()).await {
        Ok(_) => {
            flash(
                &session,
                format!("From {}: {}.", rule.effective_from, rule.describe()),
            );
            Ok(see_other("/admin/cadence"))
        }
        Err(PlanError::Invalid(why)) => page(&state, &ctx, &session, Some(why)).await,
        Err(e) => Err(e.into()),
    }
}

/// The skip and unskip forms.
#[derive(Debug, Deserialize)]
pub struct SlotForm {
    #[serde(default)]
    slot: String,
}

fn instant(raw: &str) -> Result<DateTime<Utc>, WebError> {
    plan::parse_instant(raw).ok_or_else(|| WebError::BadRequest(format!("{raw:?} is not a slot.")))
}

/// `POST /admin/cadence/skip`.
pub async fn skip(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<SlotForm>,
) -> Result<HttpResponse, WebError> {
    plan::skip(&state.db, instant(&form.slot)?, state.clock.now()).await?;
    flash(
        &session,
        "The slot is skipped: nothing goes out then, and no reminder comes.",
    );
    Ok(see_other("/admin/cadence"))
}

/// `POST /admin/cadence/unskip`.
pub async fn unskip(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<SlotForm>,
) -> Result<HttpResponse, WebError> {
    plan::unskip(&state.db, instant(&form.slot)?, state.clock.now()).await?;
    flash(&session, "The slot is open again.");
    Ok(see_other("/admin/cadence"))
}

/// The scheduling forms of the issue editor.
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    slot: String,
    #[serde(default)]
    at: String,
}

/// `POST /admin/issues/{id}/schedule`: next open slot, a chosen slot, or an exact local time.
pub async fn schedule(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<ScheduleForm>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    let now = state.clock.now();
    let placement = match form.mode.as_str() {
        "next" => Placement::NextOpen,
        "slot" => Placement::Slot(instant(&form.slot)?),
        "exact" => {
            let local = NaiveDateTime::parse_from_str(form.at.trim(), "%Y-%m-%dT%H:%M")
                .ok()
                // Four-digit years only: far dates cannot be planned, nor overflow.
                .filter(|t| (2000..=9000).contains(&t.year()))
                .ok_or_else(|| {
                    WebError::BadRequest(format!("{:?} is not a date and time.", form.at))
                })?;
            let cadence = cadence::load(&state.db).await?;
            let zone = &cadence.rule_at(now).zone;
            Placement::Exact(local_instant(zone, local.date(), local.time()))
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "Unknown scheduling choice {other:?}."
            )));
        }
    };
    let issue = plan::place(&state.db, id, placement, now).await?;
    let cadence = cadence::load(&state.db).await?;
    if let Some(at) = issue.scheduled_at {
        flash(
            &session,
            format!(
                "Scheduled for {}.",
                crate::render::local_time(at, cadence.zone_at(at))
            ),
        );
    }
    Ok(see_other(&format!("/admin/issues/{id}#schedule")))
}

/// `POST /admin/issues/{id}/unschedule`.
pub async fn unschedule(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = parse_id(&id)?;
    crate::store::issues::unschedule(&state.db, id, state.clock.now()).await?;
    flash(&session, "Unscheduled; the issue is a draft again.");
    Ok(see_other(&format!("/admin/issues/{id}")))
}
