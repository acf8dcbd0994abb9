//! Askama structs for the admin pages (`templates/web/admin/`).

use askama::Template;

use super::Publication;
use crate::domain::tag::{Tag, TagCount};
use crate::domain::token::ApiToken;
use crate::domain::{ImportJob, RowProblem};
use crate::domain::{StatusCounts, Subscriber};

/// What every admin page shows around its content.
pub struct Chrome<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The signed-in editor's address.
    pub editor: &'a str,
    /// The CSRF token for form actions.
    pub csrf: &'a str,
    /// The message left by the previous action.
    pub flash: Option<String>,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "web/admin/login.html")]
pub struct LoginPage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The CSRF token.
    pub csrf: &'a str,
    /// The address typed, kept after a failure.
    pub email: &'a str,
    /// What went wrong.
    pub error: Option<&'a str>,
    /// The admin page to go back to once signed in (empty: the dashboard).
    pub next: &'a str,
}

/// One bar of the growth chart.
pub struct Bar {
    /// The day (YYYY-MM-DD).
    pub day: String,
    /// New subscribers that day.
    pub count: i64,
    /// Left edge, in chart units.
    pub x: usize,
    /// Height, in chart units.
    pub height: i64,
}

/// A date under the growth chart.
pub struct Tick {
    /// Position, in chart units.
    pub x: usize,
    /// The date, e.g. `1 Sep`.
    pub label: String,
}

/// The last issue sent, and what followed it.
pub struct LastSend {
    /// The issue.
    pub id: i64,
    /// Its subject.
    pub subject: String,
    /// When it went out, in the cadence's zone.
    pub when: String,
    /// Copies the relay accepted.
    pub sent: i64,
    /// Copies that failed for good.
    pub failed: i64,
    /// Of those, readers now marked bounced.
    pub bounced: i64,
    /// Readers who left between this issue and the next (or now).
    pub unsubscribed: i64,
}

/// An issue in the dashboard's recent list.
pub struct RecentIssue {
    /// The issue.
    pub id: i64,
    /// Its subject.
    pub subject: String,
    /// Draft, scheduled, sending, sent or cancelled.
    pub status: String,
    /// When it went or goes out (or was last changed), in the cadence's zone.
    pub when: String,
}

/// The dashboard.
#[derive(Template)]
#[template(path = "web/admin/dashboard.html")]
pub struct DashboardPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// Subscribers by status.
    pub counts: StatusCounts,
    /// New subscribers per day, for the last 90 days.
    pub bars: Vec<Bar>,
    /// The largest daily count (the chart's scale).
    pub peak: i64,
    /// Dates along the chart's axis.
    pub ticks: Vec<Tick>,
    /// The last issue sent and what followed it.
    pub last_send: Option<LastSend>,
    /// The latest issues, newest first.
    pub recent: Vec<RecentIssue>,
    /// The next slot and what is on it.
    pub next_slot: Option<crate::render::admin_issues::SlotRow>,
    /// Issues that missed their time and wait to be scheduled again.
    pub missed: Vec<(i64, String, String)>,
}

/// The subscriber list.
#[derive(Template)]
#[template(path = "web/admin/subscribers.html")]
pub struct SubscribersPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// Everyone on the list, by status.
    pub counts: StatusCounts,
    /// This page.
    pub items: Vec<Subscriber>,
    /// The status filter, as given.
    pub status: &'a str,
    /// The search text, as given.
    pub q: &'a str,
    /// The tag filter (a name), as given.
    pub tag: &'a str,
    /// The tags of the subscribers on this page.
    pub tags_of: std::collections::HashMap<i64, Vec<Tag>>,
    /// Every tag, for the filter and the bulk actions.
    pub all_tags: Vec<TagCount>,
    /// Query string for the next (older) page.
    pub older: Option<String>,
    /// Query string for the previous (newer) page.
    pub newer: Option<String>,
    /// Query string of the current filter (for the export link).
    pub filter_query: String,
}

/// One subscriber and their history.
#[derive(Template)]
#[template(path = "web/admin/subscriber.html")]
pub struct SubscriberPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The subscriber.
    pub s: Subscriber,
    /// The issues sent (or to be sent) to them, newest first.
    pub deliveries: Vec<crate::domain::send::ReaderDelivery>,
    /// Their tags.
    pub tags: Vec<Tag>,
    /// Every tag, to add one.
    pub all_tags: Vec<TagCount>,
}

/// The import form, and the latest import jobs.
#[derive(Template)]
#[template(path = "web/admin/import.html")]
pub struct ImportPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The latest jobs, newest first.
    pub jobs: Vec<ImportJob>,
    /// Why the file was refused, if it was.
    pub error: Option<String>,
}

/// One import job: its progress while it runs, its report once it ends.
#[derive(Template)]
#[template(path = "web/admin/import_job.html")]
pub struct ImportJobPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The job.
    pub job: ImportJob,
    /// The rows not imported so far (the first thousand), by line.
    pub problems: Vec<RowProblem>,
}

/// A webhook URL to give a provider, and whether it is in use.
pub struct HookRow {
    /// The provider.
    pub name: &'static str,
    /// The URL to paste into the provider's settings.
    pub url: String,
    /// Its secret or key is set here.
    pub configured: bool,
    /// When its last event arrived, or a dash.
    pub last: String,
}

/// Bounces, complaints, the suppression list and the webhooks.
#[derive(Template)]
#[template(path = "web/admin/deliverability.html")]
pub struct DeliverabilityPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// The latest events, newest first.
    pub events: Vec<crate::domain::RecordedEvent>,
    /// Suppressed addresses (those matching the search).
    pub suppressions: Vec<crate::domain::Suppression>,
    /// The search, as given.
    pub q: &'a str,
    /// One row per provider.
    pub hooks: Vec<HookRow>,
    /// The DNS names of the DKIM keys that sign every message (empty: signing is off).
    pub dkim: Vec<String>,
}

/// The API tokens.
#[derive(Template)]
#[template(path = "web/admin/tokens.html")]
pub struct TokensPage<'a> {
    /// Around the content.
    pub chrome: Chrome<'a>,
    /// Every token.
    pub tokens: Vec<ApiToken>,
    /// A token just created, shown this once.
    pub created: Option<String>,
}

/// A time for the editor, or a dash.
pub fn when(at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// The welcome email's editor, with a preview of the saved version.
#[derive(Template)]
#[template(path = "web/admin/welcome.html")]
pub struct WelcomePage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// Subject as saved or typed.
    pub subject: String,
    /// Preheader as saved or typed.
    pub preheader: String,
    /// Markdown as saved or typed.
    pub body: String,
    /// Whether readers get it.
    pub enabled: bool,
    /// Why the last save was refused.
    pub error: Option<String>,
    /// The saved version's text part, when there is one to preview.
    pub text: Option<String>,
    /// The placeholders and what they become.
    pub placeholders: &'static [(&'static str, &'static str)],
}

/// The tags, each with its subscribers.
#[derive(Template)]
#[template(path = "web/admin/tags.html")]
pub struct TagsPage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// Every tag, by name.
    pub tags: Vec<TagCount>,
}

/// The outbound webhook endpoints, and the form that registers one.
#[derive(Template)]
#[template(path = "web/admin/webhooks.html")]
pub struct WebhooksPage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// Every endpoint, oldest first.
    pub endpoints: Vec<crate::domain::webhook::Endpoint>,
    /// Every event an endpoint may ask for.
    pub events: Vec<&'static str>,
}

/// One webhook endpoint: its settings, secret, test button and delivery log.
#[derive(Template)]
#[template(path = "web/admin/webhook.html")]
pub struct WebhookPage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// The endpoint.
    pub endpoint: crate::domain::webhook::Endpoint,
    /// Every event an endpoint may ask for.
    pub events: Vec<&'static str>,
    /// Its latest deliveries, newest first.
    pub deliveries: Vec<crate::domain::webhook::WebhookDelivery>,
}

impl WebhookPage<'_> {
    /// Whether the endpoint asks for event `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.endpoint.events.names().contains(&name)
    }
}

/// A saved link with the issues it already went out in.
pub struct SavedLinkRow {
    /// The link.
    pub link: crate::domain::saved_link::SavedLink,
    /// Published issues that carried it, newest first.
    pub sent_in: Vec<crate::domain::saved_link::SentIn>,
}

/// The links inbox: the save form, the bookmarklet and the saved links.
#[derive(Template)]
#[template(path = "web/admin/links.html")]
pub struct LinksAdminPage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// The latest saved links, newest first.
    pub links: Vec<SavedLinkRow>,
    /// The bookmarklet's `javascript:` address.
    pub bookmarklet: String,
}

/// The small save form the bookmarklet opens (and a phone's share sheet), prefilled.
#[derive(Template)]
#[template(path = "web/admin/link_new.html")]
pub struct LinkNewPage<'a> {
    /// Header, flash and CSRF.
    pub chrome: Chrome<'a>,
    /// The page's address.
    pub url: String,
    /// The page's title.
    pub title: String,
    /// The selected text.
    pub note: String,
    /// The link was just saved: say so instead of showing the form.
    pub saved: bool,
}
