//! Worked examples with fixed expectations, and properties over many zones and dates.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
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

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap()
}

fn rule(every: u8, day: Weekday, at: &str, zone: Zone, from: &str) -> Rule {
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
        zone("Europe/London"),
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
        zone("America/New_York"),
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
        zone("America/New_York"),
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
        zone("Asia/Shanghai"),
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
        zone("America/New_York"),
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
        zone("America/New_York"),
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
        zone("Europe/London"),
        "2026-03-29",
    )])
    .unwrap();
    assert_eq!(slots(&c, "2026-03-28T00:00:00Z", 1), ["2026-03-29T01:30Z"]);
}

#[test]
fn weekly_until_august_then_every_other_week_from_september() {
    // 1 September 2026 is a Tuesday: not itself a slot day.
    let weekly = rule(
        1,
        Weekday::Thu,
        "08:00",
        zone("Asia/Shanghai"),
        "2026-01-01",
    );
    let c = Cadence::new(vec![
        weekly.clone(),
        rule(
            2,
            Weekday::Thu,
            "08:00",
            zone("Asia/Shanghai"),
            "2026-09-01",
        ),
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
        rule(
            2,
            Weekday::Thu,
            "08:00",
            zone("Asia/Shanghai"),
            "2026-09-03",
        ),
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
    let a = rule(1, Weekday::Mon, "07:00", zone("UTC"), "2026-01-01");
    let b = rule(2, Weekday::Tue, "07:00", zone("UTC"), "2026-06-01");
    let c = rule(3, Weekday::Wed, "07:00", zone("UTC"), "2026-05-01");
    let cadence = Cadence::new(vec![a.clone(), b])
        .unwrap()
        .with_change(c.clone());
    assert_eq!(cadence.rules(), [a, c]);
    for every in [0, 9] {
        let refused = Rule::new(
            every,
            Weekday::Mon,
            time("07:00"),
            zone("UTC"),
            date("2026-01-01"),
        );
        assert!(refused.is_err(), "every {every} weeks");
    }
}

#[test]
fn parsing_zones_and_weekdays() {
    assert_eq!(parse_zone("Europe/London").unwrap(), zone("Europe/London"));
    assert!(parse_zone("Mars/Olympus").is_err());
    assert_eq!(parse_weekday("thursday").unwrap(), Weekday::Thu);
    assert_eq!(parse_weekday("4").unwrap(), Weekday::Thu);
    assert!(parse_weekday("8").is_err() && parse_weekday("someday").is_err());
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Africa/Casablanca",
    "America/Santiago",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Tongatapu",
    "America/Adak",
    "Australia/Eucla",
    "America/Chicago",
];

prop_compose! {
    fn any_rule(from_min: i64, from_span: i64)(
        every in 1u8..=8,
        day in 0u8..7,
        minute in 0u32..1440,
        zone in prop::sample::select(ZONES).prop_map(zone),
        offset in 0..from_span,
    ) -> Rule {
        let from = date("2000-01-01") + Duration::days(from_min + offset);
        Rule::new(every, Weekday::try_from(day).unwrap(), NaiveTime::from_num_seconds_from_midnight_opt(minute * 60, 0).unwrap(), zone, from).unwrap()
    }
}

/// The slot is the rule's weekday and local time, or what the DST rules make of it.
fn honours(rule: &Rule, at: DateTime<Utc>) -> bool {
    let local = rule.zone.date_of(at);
    [local, local - Duration::days(1)]
        .into_iter()
        .any(|d| d.weekday() == rule.weekday && local_instant(&rule.zone, d, rule.time) == at)
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
            let d = rule.zone.date_of(at);
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
                let gap = (rule.zone.date_of(pair[1]) - rule.zone.date_of(pair[0])).num_days();
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
            .filter(|at| first.zone.date_of(*at) < change.effective_from)
            .collect();
        // The new rule's first slots may come before the old rule's last ones (a zone further
        // east), so the old slots are all still there, not necessarily first.
        let new = after.slots_after(start, old.len() * 2 + 4);
        for at in &old {
            prop_assert!(new.contains(at), "{} was dropped", at);
        }
    }
}

#[test]
fn the_next_thousand_slots_of_a_changed_rule_are_cheap_to_compute() {
    // A smoke check of the algorithm's shape (no timing here; see benches/cadence.rs).
    let c = Cadence::new(vec![
        rule(
            1,
            Weekday::Thu,
            "08:00",
            zone("Europe/London"),
            "2020-01-01",
        ),
        rule(
            2,
            Weekday::Thu,
            "08:00",
            zone("Europe/London"),
            "2026-09-01",
        ),
    ])
    .unwrap();
    let found = c.slots_after(utc("2026-01-01T00:00:00Z"), 1000);
    assert_eq!(found.len(), 1000);
    assert_eq!(found[999].weekday(), Weekday::Thu);
}

#[test]
fn a_change_to_a_zone_further_east_keeps_both_first_and_last_slots() {
    let c = Cadence::new(vec![
        rule(1, Weekday::Sat, "23:00", zone("UTC"), "2027-01-02"),
        rule(
            1,
            Weekday::Sun,
            "08:00",
            zone("Pacific/Kiritimati"),
            "2027-01-10",
        ),
    ])
    .unwrap();
    assert_eq!(
        slots(&c, "2027-01-08T00:00:00Z", 3),
        [
            "2027-01-09T18:00Z",
            "2027-01-09T23:00Z",
            "2027-01-16T18:00Z"
        ]
    );
    for at in ["2027-01-09T18:00:00Z", "2027-01-09T23:00:00Z"] {
        assert!(c.is_slot(utc(at)), "{at} can be skipped");
    }
    assert_eq!(
        c.slot_on_or_before(utc("2027-01-09T20:00:00Z")),
        Some(utc("2027-01-09T18:00:00Z"))
    );
    assert_eq!(c.zone_at(utc("2027-01-09T23:00:00Z")).name(), "UTC");
    assert_eq!(
        c.zone_at(utc("2027-01-09T18:00:00Z")).name(),
        "Pacific/Kiritimati"
    );
}

#[test]
fn a_slot_is_labelled_in_the_zone_of_the_rule_that_made_it() {
    let c = Cadence::new(vec![
        rule(
            1,
            Weekday::Sun,
            "23:59",
            zone("America/Chicago"),
            "2027-01-03",
        ),
        rule(
            1,
            Weekday::Mon,
            "09:00",
            zone("Australia/Eucla"),
            "2027-01-11",
        ),
    ])
    .unwrap();
    let chicago = utc("2027-01-11T05:59:00Z");
    assert!(c.is_slot(chicago));
    let zone = c.zone_at(chicago);
    assert_eq!(zone.name(), "America/Chicago");
    assert_eq!(
        zone.local(chicago)
            .format("%a %-d %b %Y, %H:%M")
            .to_string(),
        "Sun 10 Jan 2027, 23:59"
    );
    // Between slots, the rule in force names the zone.
    assert_eq!(
        c.zone_at(utc("2027-01-11T06:30:00Z")).name(),
        "Australia/Eucla"
    );
}

/// Every slot the rules make between `from` and `to`, found day by day: the oracle.
fn brute_force(
    rules: &[Rule],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, usize)> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let until = rules.get(i + 1).map(|r| r.effective_from);
        let mut d = rule.effective_from;
        let mut seen = 0i64;
        while until.is_none_or(|u| d < u) && d <= to.date_naive() + Duration::days(2) {
            if d.weekday() == rule.weekday {
                if seen % rule.every_weeks as i64 == 0 {
                    let at = local_instant(&rule.zone, d, rule.time);
                    if at > from && at <= to {
                        out.push((at, i));
                    }
                }
                seen += 1;
            }
            d += Duration::days(1);
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn slots_are_exactly_what_each_rule_makes_in_time_order(
        first in any_rule(9_000, 200),
        second in any_rule(0, 40),
        third in any_rule(0, 40),
    ) {
        let second = Rule { effective_from: first.effective_from + Duration::days(1 + (second.effective_from - date("2000-01-01")).num_days()), ..second };
        let third = Rule { effective_from: second.effective_from + Duration::days(1 + (third.effective_from - date("2000-01-01")).num_days()), ..third };
        let rules = vec![first.clone(), second.clone(), third.clone()];
        let cadence = Cadence::new(rules.clone()).unwrap();
        let from = first.effective_from.and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::days(2);
        let to = third.effective_from.and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::days(120);
        let expected = brute_force(&rules, from, to);
        let found = cadence.slots_after(from, expected.len());
        let mut times: Vec<_> = expected.iter().map(|(at, _)| *at).collect();
        times.dedup();
        prop_assert_eq!(&found[..times.len().min(found.len())], &times[..]);
        for (at, _) in &expected {
            prop_assert!(cadence.is_slot(*at));
            // The label's zone is that of a rule that makes this slot.
            let maker = cadence.rule_of_slot(*at).unwrap();
            prop_assert!(expected.iter().any(|(t, j)| t == at && rules[*j] == *maker), "{} labelled by the wrong rule", at);
        }
    }
}
