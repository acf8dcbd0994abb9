//! The publication's rhythm: every N weeks on a weekday at a local time in a time zone, with
//! effective-dated changes. Slots are computed, never stored; computing them is pure.
//!
//! A rule effective from date E starts its slots on the first date on or after E that is its
//! weekday, then every N weeks, until the next rule's date. Local time is kept across
//! daylight-saving changes (RFC 5545): a time that does not exist that day (a spring-forward
//! gap) is read with the offset in force before the gap, so 02:30 becomes 03:30; a time that
//! occurs twice (fall-back) is the first of the two.
//!
//! Each rule makes the slots of its own dates, so at a change to a zone further east a new
//! rule's first slot can come before the old rule's last: both are kept, in time order, and
//! each slot is shown in the zone of the rule that made it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};

pub use super::zone::Zone;

/// Why a rule or a cadence was refused; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CadenceError(pub String);

/// One entry of the cadence's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// 1 = weekly, 2 = every other week, up to 8.
    pub every_weeks: u8,
    /// The day of the week slots fall on.
    pub weekday: Weekday,
    /// The local time of each slot.
    pub time: NaiveTime,
    /// The IANA time zone the weekday and time are read in.
    pub zone: Zone,
    /// The first date this rule is in force (its anchor).
    pub effective_from: NaiveDate,
}

impl Rule {
    /// A checked rule.
    pub fn new(
        every_weeks: u8,
        weekday: Weekday,
        time: NaiveTime,
        zone: Zone,
        effective_from: NaiveDate,
    ) -> Result<Rule, CadenceError> {
        if !(1..=8).contains(&every_weeks) {
            return Err(CadenceError(format!(
                "Every {every_weeks} weeks is not allowed: choose 1 (weekly) to 8."
            )));
        }
        if !(2000..=9000).contains(&effective_from.year()) {
            return Err(CadenceError(format!(
                "{effective_from} is not a usable date for a cadence."
            )));
        }
        Ok(Rule {
            every_weeks,
            weekday,
            time,
            zone,
            effective_from,
        })
    }

    /// The date of this rule's `k`-th slot (0-based).
    fn date(&self, k: i64) -> NaiveDate {
        let first = self.effective_from
            + Duration::days(
                (self.weekday.num_days_from_monday() as i64
                    - self.effective_from.weekday().num_days_from_monday() as i64)
                    .rem_euclid(7),
            );
        first + Duration::days(7 * self.every_weeks as i64 * k)
    }

    /// The instant of this rule's `k`-th slot.
    fn slot(&self, k: i64) -> DateTime<Utc> {
        self.zone.instant(self.date(k), self.time)
    }

    /// The index of the slot whose date is nearest below or at `date` (may be negative).
    fn index_near(&self, date: NaiveDate) -> i64 {
        (date - self.date(0))
            .num_days()
            .div_euclid(7 * self.every_weeks as i64)
    }

    /// In words: "every 2 weeks on Thursday at 08:00 (Asia/Shanghai)".
    pub fn describe(&self) -> String {
        let every = match self.every_weeks {
            1 => "every week".to_owned(),
            2 => "every other week".to_owned(),
            n => format!("every {n} weeks"),
        };
        format!(
            "{every} on {} at {} ({})",
            weekday_name(self.weekday),
            self.time.format("%H:%M"),
            self.zone.name()
        )
    }
}

/// "Thursday".
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The instant a local date and time name in `zone`, by the rules in the module comment.
pub fn local_instant(zone: &Zone, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    zone.instant(date, time)
}

/// A cadence: its rules in the order they took effect. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cadence {
    rules: Vec<Rule>,
}

impl Cadence {
    /// A cadence from its history, in any order; effective dates must differ.
    pub fn new(mut rules: Vec<Rule>) -> Result<Cadence, CadenceError> {
        if rules.is_empty() {
            return Err(CadenceError("A cadence needs at least one rule.".into()));
        }
        rules.sort_by_key(|r| r.effective_from);
        if rules
            .windows(2)
            .any(|w| w[0].effective_from == w[1].effective_from)
        {
            return Err(CadenceError(
                "Two rules take effect on the same date.".into(),
            ));
        }
        Ok(Cadence { rules })
    }

    /// The history, oldest first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule that governs slots at and after `at`: the last one whose date has come in its
    /// own zone (the first rule, if none has).
    pub fn rule_at(&self, at: DateTime<Utc>) -> &Rule {
        self.rules
            .iter()
            .rev()
            .find(|r| r.zone.date_of(at) >= r.effective_from)
            .unwrap_or(&self.rules[0])
    }

    /// The cadence after a change from `rule.effective_from` on: rules that had not yet taken
    /// effect by then are replaced, earlier ones (and so earlier slots) stay.
    pub fn with_change(&self, rule: Rule) -> Cadence {
        let mut rules: Vec<Rule> = self
            .rules
            .iter()
            .filter(|r| r.effective_from < rule.effective_from)
            .cloned()
            .collect();
        rules.push(rule);
        Cadence { rules }
    }

    /// The index of rule `i`'s last slot before its successor takes effect, if it has a
    /// successor.
    fn last_index(&self, i: usize) -> Option<i64> {
        let next = self.rules.get(i + 1)?;
        Some(self.rules[i].index_near(next.effective_from - Duration::days(1)))
    }

    /// Whether date `date` lies before rule `i`'s successor takes effect.
    fn in_segment(&self, i: usize, date: NaiveDate) -> bool {
        self.rules
            .get(i + 1)
            .is_none_or(|next| date < next.effective_from)
    }

    /// The next `count` slots strictly after `after`, in time order.
    pub fn slots_after(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count * 2);
        for (i, rule) in self.rules.iter().enumerate() {
            let mut k = (rule.index_near(rule.zone.date_of(after)) - 1).max(0);
            let mut found = 0;
            while found < count && self.in_segment(i, rule.date(k)) {
                let at = rule.slot(k);
                if at > after {
                    out.push(at);
                    found += 1;
                }
                k += 1;
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(count);
        out
    }

    /// Rule `i`'s latest slot at or before `at`, if any.
    fn rule_slot_on_or_before(&self, i: usize, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let rule = &self.rules[i];
        let mut k = rule.index_near(rule.zone.date_of(at)) + 1;
        if let Some(last) = self.last_index(i) {
            k = k.min(last);
        }
        while k >= 0 {
            let found = rule.slot(k);
            if found <= at {
                return Some(found);
            }
            k -= 1;
        }
        None
    }

    /// The latest slot at or before `at`, if any.
    pub fn slot_on_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (0..self.rules.len())
            .filter_map(|i| self.rule_slot_on_or_before(i, at))
            .max()
    }

    /// The rule that makes the slot at `at` (the later rule, should two name one instant), or
    /// `None` when `at` is not a slot.
    pub fn rule_of_slot(&self, at: DateTime<Utc>) -> Option<&Rule> {
        (0..self.rules.len())
            .rev()
            .find(|&i| self.rule_slot_on_or_before(i, at) == Some(at))
            .map(|i| &self.rules[i])
    }

    /// Whether `at` is exactly a slot.
    pub fn is_slot(&self, at: DateTime<Utc>) -> bool {
        self.rule_of_slot(at).is_some()
    }

    /// The zone an instant is shown in: that of the rule that made it when it is a slot,
    /// else that of the rule in force then.
    pub fn zone_at(&self, at: DateTime<Utc>) -> &Zone {
        &self
            .rule_of_slot(at)
            .unwrap_or_else(|| self.rule_at(at))
            .zone
    }
}

/// Reads an IANA zone name ("Europe/London").
pub fn parse_zone(raw: &str) -> Result<Zone, CadenceError> {
    Zone::parse(raw).map_err(|e| CadenceError(e.to_string()))
}

/// Reads a weekday: "thursday", "thu" or 1..=7 (Monday = 1).
pub fn parse_weekday(raw: &str) -> Result<Weekday, CadenceError> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<u8>()
        && (1..=7).contains(&n)
    {
        return Ok(Weekday::try_from(n - 1).expect("0..=6"));
    }
    raw.parse::<Weekday>()
        .map_err(|_| CadenceError(format!("{raw:?} is not a weekday.")))
}

#[cfg(test)]
#[path = "cadence_tests.rs"]
mod tests;
