//! The cadence's history, skipped slots and slot reminders.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};

use super::{Db, StoreError};
use crate::domain::cadence::{Cadence, Rule, parse_zone};
use crate::with_pool;

#[derive(sqlx::FromRow)]
struct RuleRow {
    effective_from: NaiveDate,
    every_weeks: i32,
    weekday: i32,
    local_time: String,
    zone: String,
}

impl RuleRow {
    fn rule(self) -> Result<Rule, StoreError> {
        let corrupt =
            |what: &str| StoreError::Unavailable(format!("cadence rule {what} is unreadable"));
        let weekday = Weekday::try_from((self.weekday - 1).clamp(0, 6) as u8)
            .map_err(|_| corrupt("weekday"))?;
        let time =
            NaiveTime::parse_from_str(&self.local_time, "%H:%M").map_err(|_| corrupt("time"))?;
        let zone = parse_zone(&self.zone).map_err(|_| corrupt("zone"))?;
        Rule::new(
            self.every_weeks as u8,
            weekday,
            time,
            zone,
            self.effective_from,
        )
        .map_err(|e| StoreError::Unavailable(e.0))
    }
}

/// The cadence with its whole history.
#[tracing::instrument(skip(db))]
pub async fn load(db: &Db) -> Result<Cadence, StoreError> {
    let rows: Vec<RuleRow> = with_pool!(db, read, |pool| sqlx::query_as(
        "SELECT effective_from, every_weeks, weekday, local_time, zone FROM cadence_rules \
         ORDER BY effective_from"
    )
    .fetch_all(pool)
    .await)?;
    let rules = rows
        .into_iter()
        .map(RuleRow::rule)
        .collect::<Result<Vec<_>, _>>()?;
    Cadence::new(rules).map_err(|e| StoreError::Unavailable(e.0))
}

/// Records a change: rules from its date on (not yet in force) are replaced by it, in one
/// transaction.
#[tracing::instrument(skip(db))]
pub async fn change(db: &Db, rule: &Rule, now: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM cadence_rules WHERE effective_from >= $1")
            .bind(rule.effective_from)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO cadence_rules (effective_from, every_weeks, weekday, local_time, zone, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(rule.effective_from)
        .bind(rule.every_weeks as i32)
        .bind(rule.weekday.number_from_monday() as i32)
        .bind(rule.time.format("%H:%M").to_string())
        .bind(rule.zone.name())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })?;
    Ok(())
}

/// Skipped slots between two instants (inclusive).
pub async fn skipped_between(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    Ok(with_pool!(db, read, |pool| sqlx::query_scalar(
        "SELECT slot_at FROM skipped_slots WHERE slot_at >= $1 AND slot_at <= $2 ORDER BY slot_at"
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await)?)
}

/// Marks a slot skipped (idempotent).
pub async fn skip(db: &Db, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| {
        sqlx::query(
        "INSERT INTO skipped_slots (slot_at, created_at) VALUES ($1, $2) ON CONFLICT (slot_at) DO NOTHING"
    )
    .bind(slot)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ())
    })?;
    Ok(())
}

/// Makes a skipped slot open again (idempotent).
pub async fn unskip(db: &Db, slot: DateTime<Utc>) -> Result<(), StoreError> {
    with_pool!(db, write, |pool| sqlx::query(
        "DELETE FROM skipped_slots WHERE slot_at = $1"
    )
    .bind(slot)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Records that the reminder for `slot` is being sent; `false` when it already was, so each
/// slot gets one reminder however many ticks or instances see it.
pub async fn claim_reminder(
    db: &Db,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = with_pool!(db, write, |pool| {
        sqlx::query(
        "INSERT INTO slot_reminders (slot_at, sent_at) VALUES ($1, $2) ON CONFLICT (slot_at) DO NOTHING"
    )
    .bind(slot)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}
