//! `/api/v1/cadence`, `/api/v1/slots` and scheduling issues.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::error::ErrorBody;
use super::issues::IssueEnvelope;
use crate::domain::cadence::{Rule, parse_weekday, parse_zone};
use crate::render::local_time;
use crate::schedule::plan::{self, Placement, PlanError};
use crate::store::{cadence, issues};
use crate::web::AppState;

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Invalid(m) => ApiError::invalid("invalid_schedule", m),
            PlanError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "calendar_conflict", m),
            PlanError::Issue(e) => e.into(),
        }
    }
}

/// A cadence rule.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleJson {
    /// 1 (weekly) to 8.
    #[schema(minimum = 1, maximum = 8)]
    every_weeks: u8,
    #[schema(schema_with = super::schema::weekday)]
    weekday: String,
    #[schema(schema_with = super::schema::time_of_day)]
    time: String,
    #[schema(schema_with = super::schema::zone)]
    zone: String,
    /// The first date the rule is in force, "2026-09-01" (for a change: after today, within
    /// ten years, in the zone of the rule in force).
    effective_from: NaiveDate,
}

impl From<&Rule> for RuleJson {
    fn from(r: &Rule) -> Self {
        RuleJson {
            every_weeks: r.every_weeks,
            weekday: crate::domain::cadence::weekday_name(r.weekday).to_owned(),
            time: r.time.format("%H:%M").to_string(),
            zone: r.zone.name().to_owned(),
            effective_from: r.effective_from,
        }
    }
}

impl RuleJson {
    fn rule(&self) -> Result<Rule, ApiError> {
        let invalid = |m: String| ApiError::invalid("invalid_cadence", m);
        let time = NaiveTime::parse_from_str(self.time.trim(), "%H:%M")
            .map_err(|_| invalid(format!("{:?} is not a time like 08:00", self.time)))?;
        Rule::new(
            self.every_weeks,
            parse_weekday(&self.weekday).map_err(|e| invalid(e.0))?,
            time,
            parse_zone(&self.zone).map_err(|e| invalid(e.0))?,
            self.effective_from,
        )
        .map_err(|e| invalid(e.0))
    }
}

/// The cadence: the rule in force now and the whole history.
#[derive(Serialize, ToSchema)]
pub struct CadenceJson {
    current: RuleJson,
    /// Oldest first.
    history: Vec<RuleJson>,
}

/// One coming slot.
#[derive(Serialize, ToSchema)]
pub struct SlotJson {
    at: DateTime<Utc>,
    /// The slot in the publication's zone, in words.
    local: String,
    /// open, skipped or taken.
    state: String,
    /// The issue on it.
    issue_id: Option<i64>,
}

/// How many slots to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotParams {
    /// 1 to 200 (default 12).
    #[param(minimum = 1, maximum = 200)]
    count: Option<usize>,
}

/// Where to put an issue: `{"slot": "next"}`, `{"slot": "<instant>"}` or `{"at": "<instant>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    slot: Option<String>,
    at: Option<DateTime<Utc>>,
}

impl utoipa::PartialSchema for ScheduleBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        super::schema::placement()
    }
}

impl ToSchema for ScheduleBody {}

async fn cadence_json(state: &AppState) -> Result<CadenceJson, ApiError> {
    let cadence = cadence::load(&state.db).await?;
    Ok(CadenceJson {
        current: cadence.rule_at(state.clock.now()).into(),
        history: cadence.rules().iter().map(Into::into).collect(),
    })
}

/// The cadence and its history.
#[utoipa::path(get, path = "/api/v1/cadence", responses((status = 200, body = CadenceJson)))]
pub async fn get_cadence(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cadence_json(&state).await?))
}

/// Change the cadence from a future date; earlier slots stay where they are.
#[utoipa::path(put, path = "/api/v1/cadence", request_body = RuleJson,
    responses((status = 200, body = CadenceJson), (status = 400, body = ErrorBody),
              (status = 409, description = "A scheduled issue is on a slot the new cadence does not have", body = ErrorBody)))]
pub async fn change_cadence(
    state: web::Data<AppState>,
    body: super::JsonObject<RuleJson>,
) -> Result<HttpResponse, ApiError> {
    plan::change_cadence(&state.db, body.rule()?, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(cadence_json(&state).await?))
}

/// The coming slots, each open, skipped or taken.
#[utoipa::path(get, path = "/api/v1/slots", params(SlotParams),
    responses((status = 200, body = [SlotJson]), (status = 400, body = ErrorBody)))]
pub async fn slots(
    state: web::Data<AppState>,
    params: web::Query<SlotParams>,
) -> Result<HttpResponse, ApiError> {
    let count = params.count.unwrap_or(12);
    if !(1..=200).contains(&count) {
        return Err(ApiError::invalid(
            "invalid_count",
            "count must be between 1 and 200",
        ));
    }
    let now = state.clock.now();
    let cadence = cadence::load(&state.db).await?;
    let list: Vec<SlotJson> = plan::upcoming(&state.db, &cadence, now, count)
        .await?
        .into_iter()
        .map(|s| SlotJson {
            at: s.at,
            local: local_time(s.at, cadence.zone_at(s.at)),
            state: match (&s.issue, s.skipped) {
                (Some(_), _) => "taken",
                (None, true) => "skipped",
                (None, false) => "open",
            }
            .to_owned(),
            issue_id: s.issue.map(|i| i.id),
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

fn instant(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    plan::parse_instant(raw).ok_or_else(|| {
        ApiError::invalid(
            "invalid_slot",
            format!("{raw:?} is not an RFC 3339 instant"),
        )
    })
}

/// Skip a coming slot.
#[utoipa::path(post, path = "/api/v1/slots/{at}/skip", params(super::document::SlotAt),
    responses((status = 204, description = "Skipped"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn skip(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    plan::skip(&state.db, instant(&path)?, state.clock.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Open a skipped slot again.
#[utoipa::path(delete, path = "/api/v1/slots/{at}/skip", params(super::document::SlotAt),
    responses((status = 204, description = "Open again"), (status = 400, body = ErrorBody)))]
pub async fn unskip(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    plan::unskip(&state.db, instant(&path)?, state.clock.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Put an issue on the next open slot, on a chosen slot, or at an exact time.
#[utoipa::path(post, path = "/api/v1/issues/{id}/schedule", params(super::document::IssueId), request_body = ScheduleBody,
    responses((status = 200, body = IssueEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "The slot is taken or skipped, or the issue is already sending", body = ErrorBody)))]
pub async fn schedule(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::JsonObject<ScheduleBody>,
) -> Result<HttpResponse, ApiError> {
    let id = super::path_id(&path, "an issue")?;
    let placement = match (body.slot.as_deref(), body.at) {
        (Some("next"), None) => Placement::NextOpen,
        (Some(slot), None) => Placement::Slot(instant(slot)?),
        (None, Some(at)) => Placement::Exact(at),
        _ => {
            return Err(ApiError::invalid(
                "invalid_schedule",
                "give exactly one of `slot` (\"next\" or an instant) and `at`",
            ));
        }
    };
    let issue = plan::place(&state.db, id, placement, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(IssueEnvelope::new(issue, &state)))
}

/// Take a scheduled issue off its time, back to draft.
#[utoipa::path(post, path = "/api/v1/issues/{id}/unschedule", params(super::document::IssueId),
    responses((status = 200, body = IssueEnvelope), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unschedule(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let issue = issues::unschedule(
        &state.db,
        super::path_id(&path, "an issue")?,
        state.clock.now(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(IssueEnvelope::new(issue, &state)))
}
