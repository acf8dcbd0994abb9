//! What the editor does with the calendar: see the coming slots, change the cadence from a
//! date, skip a slot, and put an issue on a slot or at an exact time. The admin and the API
//! both come here, so the rules are the same on both.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::domain::cadence::{Cadence, Rule};
use crate::store::cadence;
use crate::store::issues::{self, Issue, IssueError};
use crate::store::{Db, StoreError};

/// How far ahead "the next open slot" looks.
const LOOKAHEAD: usize = 104;
/// How far from now a time or a change may be: far enough for any plan, near enough that
/// dates stay four-digit years (stored as text on SQLite, they must sort as they compare).
const HORIZON_DAYS: i64 = 3660;

/// Reads an instant as forms and the API give it (RFC 3339).
pub fn parse_instant(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Refuses instants further than the horizon from now, in either direction.
pub fn within_horizon(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), PlanError> {
    if (at - now).num_days().abs() > HORIZON_DAYS {
        return Err(PlanError::Invalid(format!(
            "{at} is too far from today; times must be within ten years."
        )));
    }
    Ok(())
}

/// Why a planning step was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The request makes no sense as given (a past time, an instant that is not a slot).
    #[error("{0}")]
    Invalid(String),
    /// The calendar does not allow it right now (the slot is held or skipped).
    #[error("{0}")]
    Conflict(String),
    /// The issue refused (not found, already sending, slot taken).
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl From<StoreError> for PlanError {
    fn from(e: StoreError) -> Self {
        PlanError::Issue(IssueError::Store(e))
    }
}

/// One coming slot and what is on it.
#[derive(Debug, Clone)]
pub struct SlotView {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The editor chose to leave it empty.
    pub skipped: bool,
    /// The issue on it.
    pub issue: Option<Issue>,
}

impl SlotView {
    /// The row the admin shows, in the zone of the rule that makes the slot.
    pub fn row(self, cadence: &Cadence) -> crate::render::admin_issues::SlotRow {
        crate::render::admin_issues::SlotRow {
            at: self.at.to_rfc3339(),
            local: crate::render::local_time(self.at, cadence.zone_at(self.at)),
            skipped: self.skipped,
            issue: self.issue.map(|i| (i.id, i.subject)),
        }
    }
}

/// The next `count` slots after `now`, each with its issue or skip mark.
pub async fn upcoming(
    db: &Db,
    cadence: &Cadence,
    now: DateTime<Utc>,
    count: usize,
) -> Result<Vec<SlotView>, StoreError> {
    let slots = cadence.slots_after(now, count);
    let Some((first, last)) = slots.first().zip(slots.last()) else {
        return Ok(Vec::new());
    };
    let skipped = cadence::skipped_between(db, *first, *last).await?;
    let mut held = issues::on_slots(db, *first, *last).await?;
    Ok(slots
        .into_iter()
        .map(|at| SlotView {
            at,
            skipped: skipped.contains(&at),
            issue: held
                .iter()
                .position(|i| i.slot_at == Some(at))
                .map(|n| held.swap_remove(n)),
        })
        .collect())
}

/// When the next issue goes out, as readers are told (the welcome email, the confirmation
/// page): the earliest scheduled issue or the first coming slot the editor has not skipped,
/// whichever is sooner, with its date in words in the zone of the cadence then ("Thursday 3
/// December"). `None` when nothing is scheduled and the cadence has no slot ahead.
pub async fn next_issue(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
    let cadence = cadence::load(db).await?;
    let scheduled = issues::next_scheduled(db, now).await?;
    let slot = upcoming(db, &cadence, now, 8)
        .await?
        .into_iter()
        .find(|slot| !slot.skipped)
        .map(|slot| slot.at);
    let next = match (scheduled, slot) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(next.map(|at| {
        let local = cadence.zone_at(at).local(at);
        (at, local.format("%A %-d %B").to_string())
    }))
}

/// Where the editor wants an issue.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// The first coming slot that is neither skipped nor held.
    NextOpen,
    /// This slot.
    Slot(DateTime<Utc>),
    /// This instant, outside the cadence.
    Exact(DateTime<Utc>),
}

/// Schedules (or moves) an issue.
pub async fn place(
    db: &Db,
    id: i64,
    placement: Placement,
    now: DateTime<Utc>,
) -> Result<Issue, PlanError> {
    if let Placement::Slot(at) | Placement::Exact(at) = placement {
        within_horizon(at, now)?;
    }
    let cadence = cadence::load(db).await?;
    let (at, slot) = match placement {
        Placement::NextOpen => {
            let open = upcoming(db, &cadence, now, LOOKAHEAD)
                .await?
                .into_iter()
                .find(|s| !s.skipped && s.issue.as_ref().is_none_or(|i| i.id == id))
                .ok_or_else(|| {
                    PlanError::Conflict(
                        "Every slot of the next two years is taken or skipped.".into(),
                    )
                })?;
            (open.at, Some(open.at))
        }
        Placement::Slot(at) => {
            if !cadence.is_slot(at) {
                return Err(PlanError::Invalid(format!(
                    "{at} is not a slot of the cadence."
                )));
            }
            if !cadence::skipped_between(db, at, at).await?.is_empty() {
                return Err(PlanError::Conflict(
                    "That slot is skipped; unskip it first.".into(),
                ));
            }
            (at, Some(at))
        }
        // An exact time that is a slot holds the slot, so the slot cannot take a second issue.
        Placement::Exact(at) if cadence.is_slot(at) => (at, Some(at)),
        Placement::Exact(at) => (at, None),
    };
    if at <= now {
        return Err(PlanError::Invalid(
            "That time has already passed; choose a time in the future.".into(),
        ));
    }
    Ok(issues::schedule(db, id, at, slot, now).await?)
}

/// The date the publication's calendar says it is now (in the current rule's zone).
pub fn today(cadence: &Cadence, now: DateTime<Utc>) -> NaiveDate {
    cadence.rule_at(now).zone.date_of(now)
}

/// Changes the cadence from `rule.effective_from`, which must be after today, so that no
/// slot that has come or is coming today moves.
pub async fn change_cadence(db: &Db, rule: Rule, now: DateTime<Utc>) -> Result<Cadence, PlanError> {
    let current = cadence::load(db).await?;
    let today = today(&current, now);
    if (rule.effective_from - today).num_days() > HORIZON_DAYS {
        return Err(PlanError::Invalid(
            "A change must take effect within ten years.".into(),
        ));
    }
    if rule.effective_from <= today {
        return Err(PlanError::Invalid(format!(
            "A change takes effect from a future date (tomorrow, {}, at the earliest), so that no past slot moves.",
            today + Duration::days(1)
        )));
    }
    let changed = current.with_change(rule.clone());
    // Issues already on coming slots must stay on slots of the new cadence.
    let from = rule
        .effective_from
        .and_hms_opt(0, 0, 0)
        .map_or(now, |d| d.and_utc())
        - Duration::days(1);
    let far = now + Duration::days(HORIZON_DAYS);
    if let Some(stranded) = issues::on_slots(db, from.max(now), far)
        .await?
        .into_iter()
        .find(|i| i.slot_at.is_some_and(|at| !changed.is_slot(at)))
    {
        return Err(PlanError::Conflict(format!(
            "\"{}\" is on a slot the new cadence does not have; move or unschedule it first.",
            stranded.subject
        )));
    }
    cadence::change(db, &rule, now).await?;
    Ok(changed)
}

/// Skips a coming slot; one that holds an issue must be freed first.
pub async fn skip(db: &Db, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), PlanError> {
    within_horizon(at, now)?;
    let cadence = cadence::load(db).await?;
    if !cadence.is_slot(at) || at <= now {
        return Err(PlanError::Invalid(format!(
            "{at} is not a coming slot of the cadence."
        )));
    }
    if !issues::on_slots(db, at, at).await?.is_empty() {
        return Err(PlanError::Conflict(
            "An issue is on that slot; unschedule or move it first.".into(),
        ));
    }
    cadence::skip(db, at, now).await?;
    Ok(())
}

/// Opens a skipped slot again.
pub async fn unskip(db: &Db, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), PlanError> {
    within_horizon(at, now)?;
    cadence::unskip(db, at).await?;
    Ok(())
}
