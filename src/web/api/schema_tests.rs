//! The document's patterns against the parsers they describe: what a pattern (and length)
//! allows, the parser takes; and where the pattern is exact, what the parser takes, the
//! pattern allows.

use proptest::prelude::*;
use regex::Regex;
use utoipa::openapi::schema::ArrayItems;
use utoipa::openapi::{Object, RefOr, Schema};

use super::*;
use crate::domain::cadence::parse_weekday;
use crate::domain::{IssueDraft, IssueInput, IssueLink, Slug};
use crate::domain::{SubscriberName, SubscriberStatus};

fn regex(object: &Object) -> Regex {
    Regex::new(object.pattern.as_deref().expect("a pattern")).unwrap()
}

/// Whether `value` is valid by the schema's pattern and maximum length.
fn allows(object: &Object, value: &str) -> bool {
    let short = object
        .max_length
        .is_none_or(|max| value.chars().count() <= max);
    short && regex(object).is_match(value)
}

fn link_schema(field: &str) -> Object {
    let links = links();
    let ArrayItems::RefOrSchema(item) = &links.items else {
        panic!("links have an item schema")
    };
    let RefOr::T(Schema::Object(item)) = item.as_ref() else {
        panic!("links are objects")
    };
    match &item.properties[field] {
        RefOr::T(Schema::Object(o)) => o.clone(),
        _ => panic!("{field} is an object schema"),
    }
}

fn draft(edit: impl FnOnce(&mut IssueInput)) -> bool {
    let mut input = IssueInput {
        subject: "A subject".into(),
        links: vec![IssueLink {
            title: "A title".into(),
            url: "https://example.com/".into(),
            ..IssueLink::default()
        }],
        ..IssueInput::default()
    };
    edit(&mut input);
    IssueDraft::parse(input).is_ok()
}

/// Text that probes the edges: letters, every kind of white space, control characters,
/// the characters names refuse, and lengths around every limit.
fn tricky_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("a".repeat(79)),
        Just("b".repeat(99)),
        Just("c".repeat(199)),
        Just("d".repeat(299)),
        Just("e".repeat(499)),
        "[a-zA-Z0-9 .-]{0,3}",
        prop::sample::select(vec![
            " ", "\t", "\n", "\r", "\u{b}", "\u{85}", "\u{a0}", "\u{2003}", "\u{3000}", "\u{0}",
            "\u{1f}", "\u{7f}", "\u{9f}", "\u{feff}", "<", ">", "\"", "é", "字", "-",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(pieces, 0..5).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn one_line_fields_say_what_the_issue_parser_takes(text in tricky_text()) {
        let cases: [(&str, Object, bool); 6] = [
            ("subject", subject(), draft(|i| i.subject = text.clone())),
            ("preheader", preheader(), draft(|i| i.preheader = text.clone())),
            ("links_heading", links_heading(), draft(|i| i.links_heading = text.clone())),
            ("title", link_schema("title"), draft(|i| i.links[0].title = text.clone())),
            ("source", link_schema("source"), draft(|i| i.links[0].source = text.clone())),
            ("note", link_schema("note"), draft(|i| i.links[0].note = text.clone())),
        ];
        for (field, schema, parsed) in cases {
            prop_assert_eq!(allows(&schema, &text), parsed, "{} {:?}", field, text);
        }
    }

    #[test]
    fn the_name_pattern_says_what_the_name_parser_takes(text in tricky_text()) {
        let parsed = SubscriberName::parse_optional(Some(&text)).is_ok();
        prop_assert_eq!(allows(&name(), &text), parsed, "{:?}", text);
    }

    #[test]
    fn the_tag_pattern_says_what_the_tag_parser_takes(
        text in tricky_text(),
        extra in prop::sample::select(vec!["", ",", ";", "\u{200b}", "\u{202e}", "\u{ad}", "\u{2066}", "x"]),
    ) {
        let text = format!("{text}{extra}");
        let parsed = crate::domain::tag::TagName::parse(&text).is_ok();
        prop_assert_eq!(allows(&tag_name(), &text), parsed, "{:?}", text);
    }

    #[test]
    fn a_slug_the_schema_allows_is_taken(text in "[ a-z0-9-]{0,90}") {
        if allows(&slug(), &text) {
            prop_assert!(draft(|i| i.slug = text.clone()), "{:?}", text);
        }
        if !text.starts_with(' ') && !text.ends_with(' ') {
            prop_assert_eq!(allows(&slug(), &text), text.is_empty() || Slug::parse(&text).is_ok());
        }
    }

    #[test]
    fn a_link_url_the_schema_allows_is_taken(
        url in "(https?|HTTP)://([a-z0-9]{1,5}[.-]){0,3}[a-zA-Z][a-z0-9]{0,5}(:[0-9]{1,4})?([/?#][!-~]{0,20})?"
    ) {
        prop_assert!(allows(&link_schema("url"), &url));
        prop_assert!(draft(|i| i.links[0].url = url.clone()), "{:?}", url);
    }

    #[test]
    fn the_weekday_pattern_says_what_the_weekday_parser_takes(
        text in "[ ]?(\\+?0{0,2}[0-9]|[mM][oO][nN]([dD][aA][yY])?|[tT][hH][uU][rR]?[sS]?|[sS][uU][nN][dD]?[aA]?[yY]?|x)[ ]?"
    ) {
        prop_assert_eq!(regex(&weekday()).is_match(&text), parse_weekday(&text).is_ok(), "{:?}", text);
    }

    #[test]
    fn the_time_pattern_says_what_the_time_parser_takes(text in "[ ]?[0-9]{1,3}:[0-9]{1,3}[ ]?") {
        let parsed = chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M").is_ok();
        prop_assert_eq!(regex(&time_of_day()).is_match(&text), parsed, "{:?}", text);
    }

    #[test]
    fn the_status_pattern_says_what_the_list_takes(text in "(|[pP]ending|ACTIVE|[bB]ounced|unsubscribed|sent|x)") {
        let parsed = text.is_empty() || SubscriberStatus::try_from(text.to_lowercase()).is_ok();
        prop_assert_eq!(regex(&subscriber_status()).is_match(&text), parsed, "{:?}", text);
    }
}

#[test]
fn every_zone_the_schema_lists_is_taken() {
    let zones = zone().enum_values.unwrap();
    assert!(zones.len() > 300);
    for zone in zones {
        let zone = zone.as_str().unwrap().to_owned();
        assert!(crate::domain::cadence::parse_zone(&zone).is_ok(), "{zone}");
    }
}

#[test]
fn ids_are_positive_64_bit_integers() {
    let id = serde_json::to_value(id()).unwrap();
    assert_eq!(id["minimum"], serde_json::json!(1));
    assert_eq!(id["maximum"], serde_json::json!(9223372036854775807_i64));
    assert_eq!(id["format"], "int64");
}
