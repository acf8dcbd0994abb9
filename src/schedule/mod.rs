//! The scheduler: each tick starts the scheduled issues whose time has come, marks those
//! whose time passed too long ago as missed, and reminds the editors of empty slots.
//!
//! `run_due(now)` is a plain function of the time it is given; the ticker only calls it.
//! Every change it makes is a conditional update, so any number of instances may tick at once:
//! the database lets exactly one of them start (or mark) each issue.

pub mod plan;
mod ticker;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::delivery::Handoff;
use crate::render::{Publication, human_duration, local_time, short_day};
use crate::store::cadence;
use crate::store::issues::{self, Issue};
use crate::store::outbox;
use crate::store::retention;
use crate::store::saved_links;
use crate::store::{Db, StoreError};

pub use ticker::Ticker;

/// Issues looked at per tick; the rest wait for the next one.
const DUE_PER_TICK: i64 = 100;

/// Delivery rows folded per tick at most (`delivery_retention`): a million-reader send is
/// folded over 20 ticks (10 minutes at the default `tick_interval`), in batches of
/// [`retention::FOLD_BATCH`] that never hold the database for long.
const FOLD_PER_TICK: u64 = 50_000;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Issues this tick moved to `sending` and handed to delivery.
    pub started: Vec<i64>,
    /// Issues this tick found past the catch-up grace and returned to draft.
    pub missed: Vec<i64>,
    /// Empty slots this tick reminded the editors of.
    pub reminded: Vec<DateTime<Utc>>,
    /// Drafts this tick made for the next open slot (`draft_ahead`).
    pub drafted: Vec<i64>,
    /// Delivery rows this tick folded into their issues' counts (`delivery_retention`).
    pub folded: u64,
}

/// Everything a tick needs; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    /// The database.
    pub db: Db,
    /// Where started issues go.
    pub handoff: Handoff,
    /// For the links in notices.
    pub publication: Arc<Publication>,
    /// Wakes the sender of notices.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// How late an issue may still start.
    pub catch_up_grace: std::time::Duration,
    /// How long before an empty slot the editors hear of it (zero: never).
    pub reminder_before: std::time::Duration,
    /// How long before the next open slot its draft is made (zero: never).
    pub draft_ahead: std::time::Duration,
    /// How long a finished send's sent deliveries are kept before they are folded into the
    /// issue's counts (zero: kept).
    pub delivery_retention: std::time::Duration,
}

impl Scheduler {
    /// One tick at `now`.
    #[tracing::instrument(skip(self))]
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        let grace =
            chrono::Duration::from_std(self.catch_up_grace).unwrap_or(chrono::Duration::hours(6));
        for issue in issues::due(&self.db, now, DUE_PER_TICK).await? {
            let Some(at) = issue.scheduled_at else {
                continue;
            };
            if now - at <= grace {
                if issues::start_due(&self.db, issue.id, at, now).await? {
                    report.started.push(issue.id);
                    self.handoff.issue_started(issue.id);
                }
            } else if issues::mark_missed(&self.db, issue.id, at, now).await? {
                report.missed.push(issue.id);
                self.tell_missed(&issue, now).await?;
            }
        }
        // A draft that cannot be made is logged; the tick's other work goes on.
        report.drafted = self.draft_next_slot(now).await.unwrap_or_else(|error| {
            tracing::error!(%error, "the next slot's draft could not be made");
            Vec::new()
        });
        report.reminded = self.remind(now).await?;
        report.folded = self.fold_old_deliveries(now).await;
        if !report.missed.is_empty() || !report.reminded.is_empty() {
            self.outbox_wake.notify_one();
        }
        if report != TickReport::default() {
            tracing::info!(?report, "tick");
        }
        Ok(report)
    }

    /// Folds up to [`FOLD_PER_TICK`] delivery rows of sends older than `delivery_retention`;
    /// a failure is logged and the next tick tries again.
    async fn fold_old_deliveries(&self, now: DateTime<Utc>) -> u64 {
        let Ok(retention) = chrono::Duration::from_std(self.delivery_retention) else {
            return 0;
        };
        if retention.is_zero() {
            return 0;
        }
        match retention::fold_due(&self.db, retention, FOLD_PER_TICK, now).await {
            Ok(folded) => folded.rows,
            Err(error) => {
                tracing::error!(%error, "old deliveries could not be folded");
                0
            }
        }
    }

    async fn tell_missed(&self, issue: &Issue, now: DateTime<Utc>) -> Result<(), StoreError> {
        let cadence = cadence::load(&self.db).await?;
        let when = issue
            .scheduled_at
            .map(|at| local_time(at, cadence.zone_at(at)))
            .unwrap_or_default();
        let text = format!(
            "\"{}\" was to go out on {when}, but no Fortnight instance was running then, and it \
             was found more than {} later. It was NOT sent; it is back among the drafts.\n\n\
             Schedule it again: {}/admin/issues/{}\n",
            issue.subject,
            human_duration(self.catch_up_grace),
            self.publication.base_url,
            issue.id
        );
        let subject = format!("Missed: \"{}\" was not sent", issue.subject);
        outbox::enqueue_notice_to_editors(&self.db, &subject, &text, now).await?;
        Ok(())
    }

    /// Makes the draft of the next open slot (not skipped, no issue on it) once it is within
    /// `draft_ahead`, with the links inbox in its roundup in the order saved. Each slot gets
    /// one, however many instances tick, and a deleted one is not made again.
    async fn draft_next_slot(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let Ok(ahead) = chrono::Duration::from_std(self.draft_ahead) else {
            return Ok(Vec::new());
        };
        if ahead.is_zero() {
            return Ok(Vec::new());
        }
        let cadence = cadence::load(&self.db).await?;
        let slots = plan::upcoming(&self.db, &cadence, now, 8).await?;
        let Some(next) = slots.into_iter().find(|s| !s.skipped && s.issue.is_none()) else {
            return Ok(Vec::new());
        };
        if next.at - now > ahead || issues::slot_drafted(&self.db, next.at).await? {
            return Ok(Vec::new());
        }
        // Links already in an issue waiting for its slot (scheduled, or an earlier slot's
        // draft) are that issue's; a link the roundup would refuse is left in the inbox.
        let taken = saved_links::keys_in_waiting_issues(&self.db).await?;
        let links: Vec<crate::domain::IssueLink> = saved_links::inbox(&self.db)
            .await?
            .into_iter()
            .filter(|l| {
                crate::domain::saved_link::LinkAddress::parse(&l.url)
                    .is_ok_and(|a| !taken.contains(&a.key))
            })
            .map(|l| l.into_issue_link())
            .filter(|link| {
                let alone = crate::domain::IssueInput {
                    subject: "-".into(),
                    links: vec![link.clone()],
                    ..Default::default()
                };
                let fits = crate::domain::IssueDraft::parse(alone).is_ok();
                if !fits {
                    tracing::warn!(url = %link.url, "a saved link left out of the slot's draft");
                }
                fits
            })
            .take(crate::domain::MAX_LINKS)
            .collect();
        let day = short_day(next.at, cadence.zone_at(next.at));
        let input = crate::domain::IssueInput {
            subject: format!("The issue of {day}"),
            links,
            ..Default::default()
        };
        let draft = crate::domain::IssueDraft::parse(input)
            .map_err(|e| StoreError::Unavailable(format!("the slot's draft: {}", e.0)))?;
        match issues::create_slot_draft(&self.db, next.at, &draft, now).await {
            Ok(Some(issue)) => Ok(vec![issue.id]),
            Ok(None) => Ok(Vec::new()),
            Err(issues::IssueError::Store(e)) => Err(e),
            Err(other) => Err(StoreError::Unavailable(other.to_string())),
        }
    }

    /// Reminds the editors, once per slot, of the coming slots within `reminder_before` that
    /// have no issue and are not skipped.
    async fn remind(&self, now: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let Ok(window) = chrono::Duration::from_std(self.reminder_before) else {
            return Ok(Vec::new());
        };
        if window.is_zero() {
            return Ok(Vec::new());
        }
        let cadence = cadence::load(&self.db).await?;
        let upcoming: Vec<_> = cadence
            .slots_after(now, 16)
            .into_iter()
            .filter(|at| *at - now <= window)
            .collect();
        let Some(last) = upcoming.last().copied() else {
            return Ok(Vec::new());
        };
        let skipped = cadence::skipped_between(&self.db, now, last).await?;
        let held: Vec<_> = issues::on_slots(&self.db, now, last)
            .await?
            .into_iter()
            .filter_map(|i| i.slot_at)
            .collect();
        let mut reminded = Vec::new();
        for slot in upcoming {
            if skipped.contains(&slot) || held.contains(&slot) {
                continue;
            }
            if cadence::claim_reminder(&self.db, slot, now).await? {
                let when = local_time(slot, cadence.zone_at(slot));
                let waiting = saved_links::inbox(&self.db).await?.len();
                let drafted = issues::slot_draft(&self.db, slot).await?;
                let bodiless = drafted.as_ref().is_none_or(|i| i.body.trim().is_empty());
                let (subject, opening) = if waiting > 0 && bodiless {
                    let day = short_day(slot, cadence.zone_at(slot));
                    let count = if waiting == 1 {
                        "1 link".to_owned()
                    } else {
                        format!("{waiting} links")
                    };
                    (
                        format!("The issue for {day} has {count} and no body yet"),
                        format!(
                            "The issue for {day} has {count} and no body yet: the links inbox \
                             ({}/admin/links) holds them, and no issue is scheduled for the slot \
                             on {when}.",
                            self.publication.base_url
                        ),
                    )
                } else {
                    (
                        format!("No issue yet for {when}"),
                        format!("No issue is scheduled for the slot on {when}."),
                    )
                };
                let text = format!(
                    "{opening}\n\n\
                     Write one and put it on the slot, or skip the slot: {}/admin/cadence\n",
                    self.publication.base_url
                );
                outbox::enqueue_notice_to_editors(&self.db, &subject, &text, now).await?;
                reminded.push(slot);
            }
        }
        Ok(reminded)
    }
}
