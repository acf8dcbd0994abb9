//! Worked examples with fixed expectations, and properties over many zones and dates.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn time(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn rule(every: u8, day: Weekday, at: &str, zone: Tz, from: &str) -> Rule {
    Rule::new(every, day, time(at), zone, date(from)).unwrap()
}

fn slots(cadence: &Cadence, after: &str, n: usize) -> Vec<String> {
    cadence
        .slots_after(utc(after), n)
        .into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

#[test]
fn london_keeps_nine_oclock_across_both_changes() {
    let c = Cadence::new(vec![rule(
        1,
        Weekday::Sun,
        "09:00",
        Tz::Europe__London,
        "2026-03-20",
    )])
    .unwrap();
    // Clocks go forward on 29 March 2026 and back on 25 October 2026.
    assert_eq!(
        slots(&c, "2026-03-20T00:00:00Z", 2),
        ["2026-03-22T09:00Z", "2026-03-29T08:00Z"]
    );
    assert_eq!(
        slots(&c, "2026-10-17T00:00:00Z", 2),
        ["2026-10-18T08:00Z", "2026-10-25T09:00Z"]
    );
}

#[test]
fn new_york_biweekly_across_both_changes() {
    let c = Cadence::new(vec![rule(
        2,
        Weekday::Sun,
        "08:30",
        Tz::America__New_York,
        "2026-03-01",
    )])
    .unwrap();
    // DST starts 8 March and ends 1 November 2026; both are slots of this rule.
    assert_eq!(
        slots(&c, "2026-02-28T00:00:00Z", 2),
        ["2026-03-01T13:30Z", "2026-03-15T12:30Z"]
    );
    let c = Cadence::new(vec![rule(
        2,
        Weekday::Sun,
        "08:30",
        Tz::America__New_York,
        "2026-10-18",
    )])
    .unwrap();
    assert_eq!(
        slots(&c, "2026-10-01T00:00:00Z", 2),
        ["2026-10-18T12:30Z", "2026-11-01T13:30Z"]
    );
}

#[test]
fn shanghai_has_no_daylight_saving() {
    let c = Cadence::new(vec![rule(
        1,
        Weekday::Thu,
        "08:00",
        Tz::Asia__Shanghai,
        "2026-01-01",
    )])
    .unwrap();
    for at in c.slots_after(utc("2026-01-01T00:00:00Z"), 60) {
        assert_eq!(at.format("%H:%M").to_string(), "00:00");
        assert_eq!(at.weekday(), Weekday::Thu);
    }
}

#[test]
fn a_time_in_the_spring_gap_moves_forward_and_a_repeated_one_takes_the_first() {
    // 02:30 does not exist in New York on 8 March 2026: it is read as 03:30 EDT.
    let c = Cadence::new(vec![rule(
        1,
        Weekday::Sun,
        "02:30",
        Tz::America__New_York,
        "2026-03-01",
    )])
    .unwrap();
    assert_eq!(
        slots(&c, "2026-03-01T00:00:00Z", 3),
        [
            "2026-03-01T07:30Z",
            "2026-03-08T07:30Z",
            "2026-03-15T06:30Z"
        ]
    );
    // 01:30 happens twice on 1 November 2026: the first (EDT) is the slot.
    let c = Cadence::new(vec![rule(
        1,
        Weekday::Sun,
        "01:30",
        Tz::America__New_York,
        "2026-11-01",
    )])
    .unwrap();
    assert_eq!(
        slots(&c, "2026-10-31T00:00:00Z", 2),
        ["2026-11-01T05:30Z", "2026-11-08T06:30Z"]
    );
    // London's gap is 01:00-02:00 on 29 March 2026.
    let c = Cadence::new(vec![rule(
        1,
        Weekday::Sun,
        "01:30",
        Tz::Europe__London,
        "2026-03-29",
    )])
    .unwrap();
    assert_eq!(slots(&c, "2026-03-28T00:00:00Z", 1), ["2026-03-29T01:30Z"]);
}

#[test]
fn weekly_until_august_then_every_other_week_from_september() {
    // 1 September 2026 is a Tuesday: not itself a slot day.
    let weekly = rule(1, Weekday::Thu, "08:00", Tz::Asia__Shanghai, "2026-01-01");
    let c = Cadence::new(vec![
        weekly.clone(),
        rule(2, Weekday::Thu, "08:00", Tz::Asia__Shanghai, "2026-09-01"),
    ])
    .unwrap();
    assert_eq!(
        slots(&c, "2026-08-15T00:00:00Z", 5),
        [
            "2026-08-20T00:00Z",
            "2026-08-27T00:00Z",
            "2026-09-03T00:00Z",
            "2026-09-17T00:00Z",
            "2026-10-01T00:00Z"
        ]
    );
    // Effective on a Thursday that is itself a slot: that Thursday is the new rule's first.
    let c = Cadence::new(vec![
        weekly,
        rule(2, Weekday::Thu, "08:00", Tz::Asia__Shanghai, "2026-09-03"),
    ])
    .unwrap();
    assert_eq!(
        slots(&c, "2026-08-25T00:00:00Z", 4),
        [
            "2026-08-27T00:00Z",
            "2026-09-03T00:00Z",
            "2026-09-17T00:00Z",
            "2026-10-01T00:00Z"
        ]
    );
    assert!(c.is_slot(utc("2026-09-17T00:00:00Z")));
    assert!(
        !c.is_slot(utc("2026-09-10T00:00:00Z")),
        "the weekly rule has ended"
    );
    assert_eq!(
        c.slot_on_or_before(utc("2026-09-16T00:00:00Z")),
        Some(utc("2026-09-03T00:00:00Z"))
    );
    assert_eq!(c.slot_on_or_before(utc("2025-12-31T00:00:00Z")), None);
}

#[test]
fn a_change_replaces_rules_not_yet_in_force() {
    let a = rule(1, Weekday::Mon, "07:00", Tz::UTC, "2026-01-01");
    let b = rule(2, Weekday::Tue, "07:00", Tz::UTC, "2026-06-01");
    let c = rule(3, Weekday::Wed, "07:00", Tz::UTC, "2026-05-01");
    let cadence = Cadence::new(vec![a.clone(), b])
        .unwrap()
        .with_change(c.clone());
    assert_eq!(cadence.rules(), [a, c]);
    assert!(Rule::new(9, Weekday::Mon, time("07:00"), Tz::UTC, date("2026-01-01")).is_err());
    assert!(Rule::new(0, Weekday::Mon, time("07:00"), Tz::UTC, date("2026-01-01")).is_err());
}

#[test]
fn parsing_zones_and_weekdays() {
    assert_eq!(parse_zone("Europe/London").unwrap(), Tz::Europe__London);
    assert!(parse_zone("Mars/Olympus").is_err());
    assert_eq!(parse_weekday("thursday").unwrap(), Weekday::Thu);
    assert_eq!(parse_weekday("4").unwrap(), Weekday::Thu);
    assert!(parse_weekday("8").is_err() && parse_weekday("someday").is_err());
}

const ZONES: &[Tz] = &[
    Tz::UTC,
    Tz::Europe__London,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::America__Los_Angeles,
    Tz::America__Sao_Paulo,
    Tz::America__St_Johns,
    Tz::Asia__Shanghai,
    Tz::Asia__Kolkata,
    Tz::Asia__Kathmandu,
    Tz::Australia__Adelaide,
    Tz::Australia__Lord_Howe,
    Tz::Pacific__Chatham,
    Tz::Pacific__Apia,
    Tz::Africa__Casablanca,
    Tz::America__Santiago,
];

prop_compose! {
    fn any_rule(from_min: i64, from_span: i64)(
        every in 1u8..=8,
        day in 0u8..7,
        minute in 0u32..1440,
        zone in prop::sample::select(ZONES),
        offset in 0..from_span,
    ) -> Rule {
        let from = date("2000-01-01") + Duration::days(from_min + offset);
        Rule::new(every, Weekday::try_from(day).unwrap(), NaiveTime::from_num_seconds_from_midnight_opt(minute * 60, 0).unwrap(), zone, from).unwrap()
    }
}

/// The slot is the rule's weekday and local time, or what the DST rules make of it.
fn honours(rule: &Rule, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&rule.zone).date_naive();
    [local, local - Duration::days(1)]
        .into_iter()
        .any(|d| d.weekday() == rule.weekday && local_instant(rule.zone, d, rule.time) == at)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn slots_rise_and_honour_their_rule(first in any_rule(0, 14_000), second in any_rule(0, 600), start in 0i64..15_000) {
        let second = Rule { effective_from: first.effective_from + Duration::days(1 + (second.effective_from - date("2000-01-01")).num_days()), ..second };
        let cadence = Cadence::new(vec![first.clone(), second.clone()]).unwrap();
        let after = (date("2000-01-01") + Duration::days(start)).and_hms_opt(0, 0, 0).unwrap().and_utc();
        let found = cadence.slots_after(after, 120);
        prop_assert_eq!(found.len(), 120);
        prop_assert!(found[0] > after);
        for pair in found.windows(2) {
            prop_assert!(pair[0] < pair[1], "not increasing: {:?}", pair);
        }
        let belongs = |rule: &Rule, at: DateTime<Utc>| {
            let d = at.with_timezone(&rule.zone).date_naive();
            let in_force = if std::ptr::eq(rule, &first) { d < second.effective_from } else { d >= second.effective_from };
            in_force && honours(rule, at)
        };
        for at in &found {
            prop_assert!(belongs(&first, *at) || belongs(&second, *at), "{} fits no rule", at);
            prop_assert!(cadence.is_slot(*at), "{} is not recognised as a slot", at);
            prop_assert_eq!(cadence.slot_on_or_before(*at + Duration::seconds(1)), Some(*at));
        }
        // Two zones can name one instant (a Monday in Santiago is a Tuesday in Chatham), so a
        // slot is the later rule's when it fits it.
        let owner = |at: DateTime<Utc>| if belongs(&second, at) { &second } else { &first };
        for pair in found.windows(2) {
            let rule = owner(pair[0]);
            if std::ptr::eq(rule, owner(pair[1])) {
                let gap = (pair[1].with_timezone(&rule.zone).date_naive() - pair[0].with_timezone(&rule.zone).date_naive()).num_days();
                prop_assert!((gap - 7 * rule.every_weeks as i64).abs() <= 1, "gap {} days for every {} weeks", gap, rule.every_weeks);
            }
        }
    }

    #[test]
    fn a_change_never_moves_earlier_slots(first in any_rule(0, 14_000), change in any_rule(0, 600)) {
        let change = Rule { effective_from: first.effective_from + Duration::days(1 + (change.effective_from - date("2000-01-01")).num_days()), ..change };
        let before = Cadence::new(vec![first.clone()]).unwrap();
        let after = before.with_change(change.clone());
        let start = first.effective_from.and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::days(2);
        let old: Vec<_> = before.slots_after(start, 200).into_iter()
            .filter(|at| at.with_timezone(&first.zone).date_naive() < change.effective_from)
            .collect();
        let new = after.slots_after(start, old.len());
        prop_assert_eq!(&new[..], &old[..]);
    }
}

#[test]
fn the_next_thousand_slots_of_a_changed_rule_are_cheap_to_compute() {
    // A smoke check of the algorithm's shape (no timing here; see benches/cadence.rs).
    let c = Cadence::new(vec![
        rule(1, Weekday::Thu, "08:00", Tz::Europe__London, "2020-01-01"),
        rule(2, Weekday::Thu, "08:00", Tz::Europe__London, "2026-09-01"),
    ])
    .unwrap();
    let found = c.slots_after(utc("2026-01-01T00:00:00Z"), 1000);
    assert_eq!(found.len(), 1000);
    assert_eq!(found[999].weekday(), Weekday::Thu);
}
