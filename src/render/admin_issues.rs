//! Askama structs for the admin's issue pages (`templates/web/admin/issue*.html`).

use askama::Template;

use super::Publication;
use super::admin::Chrome;
use crate::domain::Issue;
use crate::domain::{IssueInput, IssueStatus};

/// The list of issues.
#[derive(Template)]
#[template(path = "web/admin/issues.html")]
pub struct IssuesPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// This page, newest first.
    pub items: Vec<Issue>,
    /// The status filter, as given ("" for all).
    pub status: &'a str,
    /// The id to continue from for older issues.
    pub older: Option<i64>,
}

/// The editor for a new or existing issue.
#[derive(Template)]
#[template(path = "web/admin/issue_edit.html")]
pub struct IssueEditPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue being edited; `None` for a new one.
    pub issue: Option<&'a Issue>,
    /// The values in the fields (as typed, after a refused save).
    pub input: IssueInput,
    /// Why the last save was refused.
    pub error: Option<String>,
    /// The schedule section (existing issues only).
    pub schedule: Option<ScheduleBox>,
    /// Links waiting in the inbox that the roundup does not hold yet, in the order saved.
    pub inbox: Vec<crate::domain::saved_link::SavedLink>,
}

/// The editor's live preview: the body and the links as typed, before they are saved.
#[derive(Template)]
#[template(path = "web/admin/draft_preview.html")]
pub struct DraftPreview<'a> {
    /// The subject as typed.
    pub subject: &'a str,
    /// The body as safe HTML.
    pub body_html: String,
    /// The heading over the links.
    pub links_heading: &'a str,
    /// The links as typed (not yet checked).
    pub links: &'a [crate::domain::IssueLink],
}

impl<'a> DraftPreview<'a> {
    /// The preview of what the editor typed.
    pub fn of(input: &'a IssueInput, publication: &Publication) -> DraftPreview<'a> {
        DraftPreview {
            subject: &input.subject,
            body_html: crate::render::issue::Body::html(&input.body, publication),
            links_heading: if input.links_heading.trim().is_empty() {
                "Links"
            } else {
                &input.links_heading
            },
            links: &input.links,
        }
    }
}

impl IssueEditPage<'_> {
    /// The preview of the fields as they stand, shown beside the form.
    pub fn preview(&self) -> String {
        DraftPreview::of(&self.input, self.chrome.publication)
            .render()
            .unwrap_or_default()
    }

    /// Where the form posts.
    pub fn action(&self) -> String {
        match self.issue {
            Some(issue) => format!("/admin/issues/{}", issue.id),
            None => "/admin/issues".to_owned(),
        }
    }

    /// Whether the content can still change.
    pub fn editable(&self) -> bool {
        self.issue.is_none_or(|i| i.status.is_editable())
    }
}

/// The preview: the email's HTML (in a frame) and text side by side.
#[derive(Template)]
#[template(path = "web/admin/issue_preview.html")]
pub struct IssuePreviewPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue.
    pub issue: &'a Issue,
    /// The subject line as sent.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// Frame width in pixels; `None` for the full width.
    pub width: Option<u32>,
}

/// Every status the list can filter by.
pub fn statuses() -> [IssueStatus; 5] {
    IssueStatus::ALL
}

/// One coming slot, as the admin shows it.
pub struct SlotRow {
    /// The instant, RFC 3339 (the form value that names the slot).
    pub at: String,
    /// The instant in the publication's zone, in words.
    pub local: String,
    /// Left empty on purpose.
    pub skipped: bool,
    /// The issue on it: id and subject.
    pub issue: Option<(i64, String)>,
}

/// A slot in the month view: its local time and what is on it.
pub struct CalendarSlot {
    /// "08:00", in the zone of the rule that makes the slot.
    pub time: String,
    /// What is on it.
    pub row: SlotRow,
}

/// One day of the month view; `date` is `None` for the padding before the 1st and after the
/// last day.
pub struct Day {
    /// The date.
    pub date: Option<chrono::NaiveDate>,
    /// Before today.
    pub past: bool,
    /// Today.
    pub today: bool,
    /// The slots on it.
    pub slots: Vec<CalendarSlot>,
}

/// One month of the cadence's calendar, Monday first.
pub struct Month {
    /// "December 2026".
    pub title: String,
    /// Weeks of seven days.
    pub weeks: Vec<Vec<Day>>,
}

/// `months` months from today's, each slot placed on its local date.
pub fn calendar(
    today: chrono::NaiveDate,
    months: u32,
    slots: Vec<(chrono::NaiveDate, CalendarSlot)>,
) -> Vec<Month> {
    use chrono::{Datelike, Months};
    let mut slots = slots.into_iter().peekable();
    let first = today.with_day(1).expect("the 1st exists");
    (0..months)
        .filter_map(|n| first.checked_add_months(Months::new(n)))
        .map(|start| {
            let end = start + Months::new(1);
            let lead = start.weekday().num_days_from_monday() as usize;
            let mut days: Vec<Day> = (0..lead).map(|_| Day::padding()).collect();
            for date in start.iter_days().take_while(|d| *d < end) {
                let mut day = Day {
                    date: Some(date),
                    past: date < today,
                    today: date == today,
                    slots: Vec::new(),
                };
                while let Some((_, slot)) = slots.next_if(|(d, _)| *d <= date) {
                    day.slots.push(slot);
                }
                days.push(day);
            }
            while !days.len().is_multiple_of(7) {
                days.push(Day::padding());
            }
            let mut weeks = Vec::new();
            let mut days = days.into_iter();
            loop {
                let week: Vec<Day> = days.by_ref().take(7).collect();
                if week.is_empty() {
                    break;
                }
                weeks.push(week);
            }
            Month {
                title: start.format("%B %Y").to_string(),
                weeks,
            }
        })
        .collect()
}

impl Day {
    fn padding() -> Day {
        Day {
            date: None,
            past: false,
            today: false,
            slots: Vec::new(),
        }
    }
}

/// One entry of the cadence's history.
pub struct RuleRow {
    /// In force from (a date).
    pub from: String,
    /// The rule in words.
    pub describe: String,
}

/// The cadence: the rule in force, its history, the coming slots and the change form.
#[derive(Template)]
#[template(path = "web/admin/cadence.html")]
pub struct CadencePage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The rule in force, in words.
    pub current: String,
    /// Every rule, oldest first.
    pub history: Vec<RuleRow>,
    /// The next slots.
    pub slots: Vec<SlotRow>,
    /// The same slots, and those up to the end of the third month, in month view.
    pub months: Vec<Month>,
    /// The earliest date a change may take effect.
    pub earliest: String,
    /// The change form's values: every, weekday (1-7), time, zone.
    pub every: u8,
    /// Weekday, Monday = 1.
    pub weekday: u32,
    /// "08:00".
    pub time: String,
    /// IANA zone.
    pub zone: String,
    /// Why the last change was refused.
    pub error: Option<String>,
    /// Which time-zone database is read: "tzdata 2026f from /usr/share/zoneinfo".
    pub tzdata: String,
    /// Every zone name, for the zone field's suggestions (type to search).
    pub zones: &'static [String],
}

/// The weekdays for a select: (value, name).
pub fn weekdays() -> Vec<(u32, &'static str)> {
    (1..=7)
        .map(|n| {
            let day = chrono::Weekday::try_from((n - 1) as u8).expect("0..=6");
            (n, crate::domain::cadence::weekday_name(day))
        })
        .collect()
}

/// The schedule section of the issue editor.
pub struct ScheduleBox {
    /// When it goes out, in words, if scheduled.
    pub scheduled: Option<String>,
    /// Whether it holds a slot (otherwise an exact time).
    pub on_slot: bool,
    /// When it missed its time, in words.
    pub missed: Option<String>,
    /// Open slots to choose from.
    pub open: Vec<SlotRow>,
    /// The publication's zone, for the exact-time field.
    pub zone: String,
    /// Who it goes to, in words.
    pub audience_label: String,
    /// How many readers that is (now, or as fixed when the send started).
    pub audience: i64,
    /// Whether the audience is fixed (the send has started).
    pub audience_fixed: bool,
    /// Every tag, each with how the segment uses it (`None`: not at all).
    pub segment: Vec<(
        crate::domain::tag::Tag,
        Option<crate::domain::tag::SegmentMode>,
    )>,
}

impl ScheduleBox {
    /// Whether the segment uses `tag` in `mode` ("" for not at all).
    pub fn uses(
        &self,
        entry: &(
            crate::domain::tag::Tag,
            Option<crate::domain::tag::SegmentMode>,
        ),
        mode: &str,
    ) -> bool {
        entry.1.map_or("", |m| m.as_str()) == mode
    }
}

/// A send in progress or done.
#[derive(Template)]
#[template(path = "web/admin/send.html")]
pub struct SendPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue.
    pub issue: &'a Issue,
    /// The numbers.
    pub s: crate::domain::send::SendStatus,
}

/// An issue's report: readers, what came back, clicks per link.
#[derive(Template)]
#[template(path = "web/admin/report.html")]
pub struct ReportPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The issue.
    pub issue: &'a Issue,
    /// The numbers.
    pub r: crate::domain::send::IssueReport,
}
