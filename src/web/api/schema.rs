//! Schemas for the document that say exactly what the parsers accept, where a plain type
//! would promise more: ids, trimmed one-line text, names, slugs, link URLs, weekdays, zones.
//! The patterns are checked against the parsers they describe in `tests`.

use utoipa::openapi::schema::{
    AdditionalProperties, Array, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{Object, OneOfBuilder, RefOr, Schema};

/// `char::is_whitespace` (Unicode White_Space), which `str::trim` removes, as a class body.
const WHITE_SPACE: &str =
    "\t-\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";
/// `char::is_control` (Unicode Cc), as a class body.
const CONTROL: &str = "\u{0}-\u{1f}\u{7f}-\u{9f}";

/// A string schema.
fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// The pattern of text that is trimmed, then must be at most `max` characters without
/// control characters or any of `banned`, and, when `required`, not empty.
fn text_pattern(max: usize, required: bool, banned: &str) -> String {
    let space = format!("[{WHITE_SPACE}]*");
    let first = format!("[^{CONTROL}{WHITE_SPACE}{banned}]");
    let rest = format!("[^{CONTROL}{banned}]{{0,{}}}", max - 1);
    let optional = if required { "" } else { "?" };
    format!("^{space}(?:{first}{rest}){optional}{space}$")
}

/// One line of text, trimmed, at most `max` characters, with a description.
fn one_line(max: usize, required: bool, description: &str) -> Object {
    let bound = if required { "1" } else { "0" };
    string()
        .pattern(Some(text_pattern(max, required, "")))
        .description(Some(format!(
            "{description} One line: {bound} to {max} characters once surrounding white space is trimmed."
        )))
        .build()
}

/// A record id: a positive 64-bit integer.
pub fn id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(i64::MAX))
        .build()
}

/// An id used as a position in a list (`before`): any 64-bit integer.
pub fn cursor() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(i64::MIN))
        .maximum(Some(i64::MAX))
        .description(Some(
            "Only records older than this id (from `next_before`).",
        ))
        .build()
}

/// A status filter: one of `values`, in any case; empty for all.
fn status_filter(values: &[&str]) -> Object {
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| format!("[{}{c}]", c.to_ascii_uppercase()))
            .collect()
    };
    let words: Vec<String> = values.iter().map(|w| any_case(w)).collect();
    string()
        .pattern(Some(format!("^(?:{})?$", words.join("|"))))
        .description(Some(format!(
            "Only this status: {} (in any case); empty for all.",
            values.join(", ")
        )))
        .build()
}

/// `status` of the subscriber list.
pub fn subscriber_status() -> Object {
    status_filter(&["pending", "active", "unsubscribed", "bounced", "complained"])
}

/// `status` of the issue list.
pub fn issue_status() -> Object {
    status_filter(&["draft", "scheduled", "sending", "sent", "cancelled"])
}

/// The list search text.
pub fn search() -> Object {
    string()
        .pattern(Some(format!("^[^{CONTROL}]{{0,254}}$")))
        .description(Some(
            "Only addresses or names containing this text: at most 254 characters, no control characters.",
        ))
        .build()
}

/// An email address as `SubscriberEmail` takes it.
pub fn email() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .min_length(Some(1))
        .max_length(Some(254))
        .description(Some(
            "An address with a dotted domain name (no IP literal), at most 254 bytes.",
        ))
        .build()
}

/// A subscriber's name: absent, null or blank for none.
pub fn name() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some(text_pattern(100, false, "<>\"")))
        .description(Some(
            "Up to 100 characters once trimmed, without control characters, `<`, `>` or `\"`; null or blank for none.",
        ))
        .build()
}

/// A tag's name, as `TagName::parse` takes it.
pub fn tag_name() -> Object {
    let banned = format!(",;{}", crate::domain::tag::INVISIBLE_CLASS);
    string()
        .pattern(Some(text_pattern(
            crate::domain::tag::TagName::MAX,
            true,
            &banned,
        )))
        .description(Some(
            "A tag's name, in any case: 1 to 50 characters once trimmed, one line, without commas, \
             semicolons or invisible characters.",
        ))
        .build()
}

/// The tag a list is filtered by: a tag's name, or empty for all.
pub fn tag_filter() -> Object {
    let banned = format!(",;{}", crate::domain::tag::INVISIBLE_CLASS);
    string()
        .pattern(Some(text_pattern(
            crate::domain::tag::TagName::MAX,
            false,
            &banned,
        )))
        .description(Some(
            "Only subscribers carrying this tag (its name, in any case); empty for all.",
        ))
        .build()
}

/// A list of tag names.
pub fn tag_names() -> Array {
    ArrayBuilder::new()
        .items(tag_name())
        .max_items(Some(100))
        .description(Some("Tag names (any case), at most 100."))
        .build()
}

/// A tag's description.
pub fn tag_description() -> Object {
    one_line(
        300,
        false,
        "What the tag means; readers see it beside a public tag.",
    )
}

/// A list of subscriber ids.
pub fn subscriber_ids() -> Array {
    ArrayBuilder::new()
        .items(id())
        .max_items(Some(1000))
        .description(Some("Subscriber ids, at most 1,000."))
        .build()
}

/// An issue's subject.
pub fn subject() -> Object {
    one_line(200, true, "The subject line.")
}

/// An issue's preheader.
pub fn preheader() -> Object {
    one_line(200, false, "The preview line mail clients show.")
}

/// The heading above the links.
pub fn links_heading() -> Object {
    one_line(80, false, "Empty for \"Links\".")
}

/// The links roundup as it is written: at most 100, in order.
pub fn links() -> Array {
    let link = ObjectBuilder::new()
        .property("title", one_line(300, true, "The linked piece's title."))
        .required("title")
        .property("url", link_url())
        .required("url")
        .property(
            "source",
            one_line(100, false, "Who published it (\"The Economist\")."),
        )
        .property("note", one_line(500, false, "A line of commentary."));
    ArrayBuilder::new()
        .items(link)
        .max_items(Some(crate::domain::MAX_LINKS))
        .description(Some("The links roundup, in order."))
        .build()
}

/// An issue's Markdown body.
pub fn body() -> Object {
    string()
        .pattern(Some(
            "^[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{7f}-\u{9f}]*$".to_owned(),
        ))
        .max_length(Some(crate::domain::MAX_BODY_BYTES))
        .description(Some(
            "Markdown (CommonMark with tables): no control characters but tabs and line breaks, \
             at most 200,000 bytes of UTF-8, every image with a description (`![what it shows](url)`).",
        ))
        .build()
}

/// An issue's slug: absent, null or blank to derive one from the subject.
pub fn slug() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some(format!(
            "^[{WHITE_SPACE}]*(?:[a-z0-9]+(?:-[a-z0-9]+)*)?[{WHITE_SPACE}]*$"
        )))
        .max_length(Some(crate::domain::Slug::MAX))
        .description(Some(
            "Lower-case letters, digits and single dashes; at most 80 characters, surrounding white space \
             included; null or blank to derive it from the subject.",
        ))
        .build()
}

/// A link's address: http or https with a host name.
pub fn link_url() -> Object {
    let any_case = "[Hh][Tt][Tt][Pp][Ss]?";
    // A name whose last label starts with a letter: a URL parser reads a host that ends in a
    // number as an IPv4 address, and refuses most of those.
    let host = "(?:[A-Za-z0-9]+[.-])*[A-Za-z][A-Za-z0-9]*";
    string()
        .pattern(Some(format!(
            "^{any_case}://{host}(?::[0-9]{{1,4}})?(?:[/?#][!-~]*)?$"
        )))
        .max_length(Some(2000))
        .description(Some(
            "A full http:// or https:// address with a host name, at most 2,000 characters \
             (surrounding white space is also taken, and trimmed).",
        ))
        .build()
}

/// A cadence's weekday: a name or its first three letters in any case, or 1 to 7 (Monday = 1).
pub fn weekday() -> Object {
    let names = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| format!("[{}{c}]", c.to_ascii_uppercase()))
            .collect()
    };
    let words: Vec<String> = names
        .iter()
        .map(|n| format!("{}(?:{})?", any_case(&n[..3]), any_case(&n[3..])))
        .collect();
    string()
        .pattern(Some(format!(
            "^[{WHITE_SPACE}]*(?:\\+?0*[1-7]|{})[{WHITE_SPACE}]*$",
            words.join("|")
        )))
        .description(Some(
            "Monday to Sunday, or its first three letters, in any case; or 1 to 7 (Monday = 1).",
        ))
        .build()
}

/// A cadence's local time of day, `HH:MM`.
pub fn time_of_day() -> Object {
    string()
        .pattern(Some(format!(
            "^[{WHITE_SPACE}]*(?:[01]?[0-9]|2[0-3]):[0-5]?[0-9][{WHITE_SPACE}]*$"
        )))
        .description(Some("Local time, 24-hour, like \"08:00\"."))
        .build()
}

/// An IANA time zone name: one of those the server's zone database holds.
pub fn zone() -> Object {
    string()
        .enum_values(Some(crate::domain::zone::names().iter().cloned()))
        .description(Some("IANA time zone, like \"Europe/London\"."))
        .build()
}

/// Where to put an issue: exactly one of `slot` (`"next"` or a slot's instant) and `at`.
pub fn placement() -> RefOr<Schema> {
    let instant = || {
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build()
    };
    let null = || ObjectBuilder::new().schema_type(Type::Null).build();
    let slot = OneOfBuilder::new()
        .item(string().enum_values(Some(["next"])).build())
        .item(instant())
        .description(Some(
            "\"next\" for the next open slot, or a slot's instant (RFC 3339): one of the cadence's \
             coming slots, open, within ten years.",
        ));
    let at = string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some(
            "An exact instant outside the cadence (RFC 3339), in the future and within ten years.",
        ));
    let one_of = |name: &str, schema: RefOr<Schema>, other: &str| {
        ObjectBuilder::new()
            .property(name, schema)
            .required(name)
            .property(other, null())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .build()
    };
    Schema::OneOf(
        OneOfBuilder::new()
            .item(one_of("slot", Schema::OneOf(slot.build()).into(), "at"))
            .item(one_of("at", Schema::Object(at.build()).into(), "slot"))
            .description(Some(
                "Exactly one of `slot` and `at`; the other absent or null.",
            ))
            .build(),
    )
    .into()
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;

/// An address the WHATWG URL parser reads, as an http:// or https:// address with a host:
/// the form a pattern can say (the scheme and its slashes, surrounding white space trimmed, at
/// most `max` characters). What a pattern cannot say (a host the parser refuses, a private
/// address for a webhook) is answered 400, as `description` tells.
fn parsed_url(max: usize, description: &str) -> Object {
    string()
        .pattern(Some(format!("^[{WHITE_SPACE}]*[Hh][Tt][Tt][Pp][Ss]?://")))
        .max_length(Some(max))
        .description(Some(description.to_owned()))
        .build()
}

/// An outbound webhook endpoint's address.
pub fn webhook_url() -> Object {
    parsed_url(
        crate::domain::webhook::MAX_URL,
        "A full http:// or https:// address with a host, at most 2,000 characters once \
         encoded, without a user name or password. Unless the server sets \
         `webhooks_allow_private`, an address that is (or whose host resolves to) a loopback or \
         private address is refused with 400, which a schema cannot say.",
    )
}

/// A saved link's address.
pub fn saved_link_url() -> Object {
    parsed_url(
        crate::domain::saved_link::MAX_URL,
        "A full http:// or https:// address with a host, at most 2,000 bytes, one line. An \
         address the URL parser refuses is answered 400.",
    )
}

/// The events an endpoint wants: at least one of the event names.
pub fn webhook_events() -> Array {
    let names: Vec<&str> = crate::domain::webhook::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    ArrayBuilder::new()
        .items(string().enum_values(Some(names)))
        .min_items(Some(1))
        .description(Some("The events to send it (each name once is enough)."))
        .build()
}

/// `status` of a webhook endpoint's delivery log.
pub fn webhook_delivery_status() -> Object {
    status_filter(&["pending", "delivered", "failed"])
}

/// A webhook endpoint's note.
pub fn webhook_description() -> Object {
    one_line(300, false, "What the endpoint is for.")
}

/// A saved link's title: empty until known.
pub fn saved_link_title() -> Object {
    one_line(
        crate::domain::saved_link::MAX_TITLE,
        false,
        "The linked piece's title.",
    )
}

/// A saved link's source.
pub fn saved_link_source() -> Object {
    one_line(
        crate::domain::saved_link::MAX_SOURCE,
        false,
        "Who published it (\"The Economist\").",
    )
}

/// A saved link's note.
pub fn saved_link_note() -> Object {
    one_line(
        crate::domain::saved_link::MAX_NOTE,
        false,
        "The editor's line of commentary.",
    )
}
