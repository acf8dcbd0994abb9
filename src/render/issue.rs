//! An issue as readers see it: the email (HTML with inlined CSS, and plain text), prepared
//! once per send, and the web version in the archive.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use askama::Template;
use lettre::message::Mailbox;

use super::{Publication, markdown};
use crate::config::Config;
use crate::domain::Issue;
use crate::domain::token::{Click, LinkKey, Open};
use crate::domain::welcome::Welcome;
use crate::mail::message::BuildError;
use crate::mail::prepared::{Heading, PreparedMessage, Slot};

/// A rendering failure: a template or the CSS inliner refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the issue: {0}")]
pub struct RenderError(String);

impl From<BuildError> for RenderError {
    fn from(e: BuildError) -> Self {
        RenderError(e.0)
    }
}

/// The settings every issue email shares, read from the configuration once.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// The sender.
    pub from: Mailbox,
    /// Where replies go, if not to the sender.
    pub reply_to: Option<Mailbox>,
    /// The mailbox named in `List-Unsubscribe` as `mailto:`, if any.
    pub unsubscribe_mailto: Option<String>,
    /// The publication's postal address, shown in every footer.
    pub postal_address: String,
    /// The `List-Id` header value.
    pub list_id: String,
    /// The domain of `Message-ID`s.
    pub id_domain: String,
    /// What is tracked, when anything is (`track_clicks`, `track_opens`): only the delivery
    /// worker's settings carry it, so previews, tests and welcomes are never tracked.
    pub tracking: Option<Tracking>,
}

/// With `clicks`, links of issue emails go through `/l/{token}`; with `opens`, the HTML part
/// ends with a pixel loaded from `/o/{token}`; tokens are signed with the link key and, with
/// `readers`, each reader's copy carries tokens naming them.
#[derive(Clone, Debug)]
pub struct Tracking {
    /// Signs the tokens.
    pub key: LinkKey,
    /// Tokens name the reader (`track_readers`).
    pub readers: bool,
    /// Links are counted (`track_clicks`).
    pub clicks: bool,
    /// Opens are counted (`track_opens`).
    pub opens: bool,
}

impl MailSettings {
    /// Reads the configuration (already validated, so the addresses parse).
    pub fn from_config(config: &Config) -> MailSettings {
        let host = config.base_url.host_str().unwrap_or("localhost").to_owned();
        let list = slug::slugify(&config.publication_name);
        let list = if list.is_empty() {
            "list".to_owned()
        } else {
            list
        };
        let name = &config.publication_name;
        let plain =
            name.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !name.contains(['"', '\\']);
        let list_id = if plain {
            format!("\"{name}\" <{list}.{host}>")
        } else {
            format!("<{list}.{host}>")
        };
        MailSettings {
            from: config.mail_from(),
            reply_to: config.reply_to(),
            unsubscribe_mailto: config.list_unsubscribe_mailto.clone(),
            postal_address: config.postal_address.clone(),
            list_id,
            id_domain: host,
            tracking: None,
        }
    }

    /// These settings with clicks and opens tracked as `track_clicks`, `track_opens` and
    /// `track_readers` say.
    pub fn tracking(mut self, config: &Config, key: &LinkKey) -> MailSettings {
        self.tracking = (config.track_clicks || config.track_opens).then(|| Tracking {
            key: key.clone(),
            readers: config.track_readers,
            clicks: config.track_clicks,
            opens: config.track_opens,
        });
        self
    }
}

/// What both parts of an issue email show.
pub struct IssueEmail<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The issue.
    pub issue: &'a Issue,
    /// The body as sanitized HTML.
    pub body_html: &'a str,
    /// The body as plain text.
    pub body_text: &'a str,
    /// "Hi Ada," (or the greeting's slot mark).
    pub greeting: &'a str,
    /// The reader's unsubscribe URL (or its slot mark).
    pub unsubscribe_url: &'a str,
    /// The reader's "manage your subscription" URL (or its slot mark).
    pub manage_url: &'a str,
    /// The web version, if there is one (a welcome email has none).
    pub view_url: Option<String>,
    /// The footer's postal address.
    pub postal_address: &'a str,
}

impl IssueEmail<'_> {
    /// A rule as long as the links heading, for the text part.
    pub fn underline(&self) -> String {
        "-".repeat(self.issue.links_heading.chars().count())
    }

    /// One link of the roundup in the text part: "3. Title (Source)", the note, then the
    /// address, the title and note wrapped at 72 columns under a three-space indent like the
    /// body's paragraphs; the address is never broken.
    pub fn link_text(&self, number: &usize, link: &crate::domain::IssueLink) -> String {
        let head = if link.source.is_empty() {
            format!("{number}. {}", link.title)
        } else {
            format!("{number}. {} ({})", link.title, link.source)
        };
        let indent = "   ";
        let mut out = textwrap::fill(&head, textwrap::Options::new(72).subsequent_indent(indent));
        if !link.note.is_empty() {
            out.push('\n');
            out.push_str(&textwrap::fill(
                &link.note,
                textwrap::Options::new(72)
                    .initial_indent(indent)
                    .subsequent_indent(indent),
            ));
        }
        out.push('\n');
        out.push_str(indent);
        out.push_str(link.url.as_str());
        out
    }
}

/// The roundup as the web version shows it, for the Atom feed.
#[derive(Template)]
#[template(path = "web/roundup.html")]
pub struct RoundupHtml<'a> {
    /// The issue.
    pub issue: &'a Issue,
}

/// The HTML part, before CSS inlining.
#[derive(Template)]
#[template(path = "email/issue.html")]
pub struct IssueEmailHtml<'a> {
    /// The content.
    pub email: &'a IssueEmail<'a>,
}

/// The plain-text part.
#[derive(Template)]
#[template(path = "email/issue.txt")]
pub struct IssueEmailText<'a> {
    /// The content.
    pub email: &'a IssueEmail<'a>,
}

/// The web version, in the archive and in the admin's preview.
#[derive(Template)]
#[template(path = "web/issue.html")]
pub struct IssuePage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// The issue.
    pub issue: &'a Issue,
    /// The body as sanitized HTML.
    pub body_html: &'a str,
    /// When it was published, in words; `None` for a preview.
    pub published: Option<String>,
    /// The signup form starts empty.
    pub error: Option<String>,
    /// Always empty.
    pub email: &'a str,
    /// Always empty.
    pub name: &'a str,
    /// The published issue before this one: its address and subject.
    pub older: Option<(String, String)>,
    /// The published issue after this one.
    pub newer: Option<(String, String)>,
    /// In the admin's preview: the issue's page in the admin, to go back to.
    pub back_to_admin: Option<String>,
}

impl IssuePage<'_> {
    /// The one address of this issue, for search engines and link cards.
    pub fn canonical(&self) -> String {
        view_url(self.publication, self.issue)
    }
}

/// One line of the archive.
pub struct ArchiveEntry {
    /// Where it lives under `/archive/`.
    pub slug: String,
    /// Subject line.
    pub subject: String,
    /// Preview line.
    pub preheader: String,
    /// Publication date, in words.
    pub date: String,
}

/// A page of the archive.
#[derive(Template)]
#[template(path = "web/archive.html")]
pub struct ArchivePage<'a> {
    /// The publication.
    pub publication: &'a Publication,
    /// Issues on this page, newest first.
    pub entries: Vec<ArchiveEntry>,
    /// The page number of newer issues, if any.
    pub newer: Option<i64>,
    /// The page number of older issues, if any.
    pub older: Option<i64>,
}

/// A date as the archive shows it: "5 March 2026".
pub fn long_date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}

/// The address of an issue's web version.
pub fn view_url(publication: &Publication, issue: &Issue) -> String {
    format!("{}/archive/{}", publication.base_url, issue.slug)
}

/// An issue's body rendered once: sanitized HTML and its plain-text reading.
pub struct Body {
    /// Safe HTML.
    pub html: String,
    /// Plain text.
    pub text: String,
}

impl Body {
    /// Renders the issue's Markdown.
    pub fn of(issue: &Issue, publication: &Publication) -> Body {
        let html = Body::html(&issue.body, publication);
        let text = markdown::to_text(&html);
        Body { html, text }
    }

    /// Markdown as safe HTML, relative links resolved against the publication's address.
    pub fn html(markdown: &str, publication: &Publication) -> String {
        let base = url::Url::parse(&publication.base_url)
            .unwrap_or_else(|_| url::Url::parse("http://localhost/").expect("valid"));
        markdown::to_safe_html(markdown, &base)
    }
}

/// The http(s) links of an issue's body, in order, as its email carries them.
pub fn body_links(issue: &Issue, publication: &Publication) -> Vec<String> {
    let found = Arc::new(Mutex::new(Vec::new()));
    let collect = found.clone();
    markdown::rewrite_links(&Body::html(&issue.body, publication), move |url| {
        collect.lock().expect("link list").push(url.to_owned());
        url.to_owned()
    });
    found.lock().expect("link list").clone()
}

/// Inlines the `<style>` rules into each element, keeping the dark-mode media query (it
/// cannot be inlined) in a `<style>` block for the clients that honour it.
fn inline_css(html: &str) -> Result<String, RenderError> {
    css_inline::InlineOptions::default()
        .keep_style_tags(false)
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| RenderError(e.to_string()))
}

/// Both parts of the email, with the reader's greeting and unsubscribe URL as given (slot
/// marks when preparing a send).
pub fn email_parts(email: &IssueEmail<'_>) -> Result<(String, String), RenderError> {
    let text = IssueEmailText { email }
        .render()
        .map_err(|e| RenderError(e.to_string()))?;
    let html = IssueEmailHtml { email }
        .render()
        .map_err(|e| RenderError(e.to_string()))?;
    Ok((text, inline_css(&html)?))
}

/// Renders an issue once for a whole send (or a test, with `subject_prefix` "[TEST] "): the
/// result personalises a copy per reader cheaply.
pub fn prepare(
    issue: &Issue,
    publication: &Publication,
    settings: &MailSettings,
    subject_prefix: &str,
    date: SystemTime,
) -> Result<PreparedMessage, RenderError> {
    let view = view_url(publication, issue);
    let Some(tracking) = &settings.tracking else {
        return prepare_message(
            issue,
            publication,
            settings,
            subject_prefix,
            date,
            Some(view),
        );
    };
    // With clicks tracked, every http(s) link of the body and the roundup, in order, goes
    // through `/l/`; per reader, link n is the n-th address, and the pixel comes after them.
    let base = publication.base_url.clone();
    let urls = Arc::new(Mutex::new(Vec::<String>::new()));
    let tracked = {
        let (urls, key, base) = (urls.clone(), tracking.key.clone(), base.clone());
        let (readers, clicks, issue_id) = (tracking.readers, tracking.clicks, issue.id);
        Arc::new(move |url: &str| -> String {
            if !clicks {
                return url.to_owned();
            }
            let mut list = urls.lock().expect("link list");
            list.push(url.to_owned());
            if readers {
                Slot::Link((list.len() - 1) as u16).mark()
            } else {
                let click = Click {
                    issue_id,
                    reader: None,
                    url: url.to_owned(),
                };
                format!("{base}/l/{}", key.click_token(&click))
            }
        })
    };
    let mut html = {
        let tracked = tracked.clone();
        markdown::rewrite_links(&Body::html(&issue.body, publication), move |url| {
            tracked(url)
        })
    };
    let mut copy = issue.clone();
    for link in &mut copy.links {
        link.url = tracked(&link.url);
    }
    let text = markdown::to_text(&html);
    let urls: Vec<String> = urls.lock().expect("link list").clone();
    let pixel = urls.len();
    if tracking.opens {
        let src = if tracking.readers {
            Slot::Link(pixel as u16).mark()
        } else {
            let open = Open {
                issue_id: issue.id,
                reader: None,
            };
            format!("{base}/o/{}", tracking.key.open_token(&open))
        };
        html.push_str(&format!(
            "<img src=\"{src}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">"
        ));
    }
    let body = Body { text, html };
    let prepared = prepare_body(
        &copy,
        &body,
        publication,
        settings,
        subject_prefix,
        date,
        Some(view),
    )?;
    if !tracking.readers {
        return Ok(prepared);
    }
    let (key, issue_id) = (tracking.key.clone(), issue.id);
    Ok(prepared.with_links(Arc::new(move |n, uid| {
        let reader = Some(uid);
        if n == pixel {
            let open = Open { issue_id, reader };
            return format!("{base}/o/{}", key.open_token(&open));
        }
        let click = Click {
            issue_id,
            reader,
            url: urls.get(n).cloned().unwrap_or_default(),
        };
        format!("{base}/l/{}", key.click_token(&click))
    })))
}

/// Renders the welcome email, its placeholders already filled, the way an issue is rendered
/// (the same template, Markdown, headers and footer), without a web version. Each welcome
/// gets `Message-ID`s of its own.
pub fn prepare_welcome(
    welcome: &Welcome,
    body: &str,
    publication: &Publication,
    settings: &MailSettings,
    subject_prefix: &str,
    date: SystemTime,
) -> Result<PreparedMessage, RenderError> {
    let now = chrono::Utc::now();
    let issue = Issue {
        id: 0,
        uid: uuid::Uuid::new_v4(),
        slug: String::new(),
        subject: welcome.subject.clone(),
        preheader: welcome.preheader.clone(),
        body: body.to_owned(),
        links_heading: String::new(),
        links: Vec::new(),
        status: crate::domain::IssueStatus::Draft,
        created_at: now,
        updated_at: now,
        published_at: None,
        scheduled_at: None,
        slot_at: None,
        missed_at: None,
        paused_at: None,
        finished_at: None,
        summary: None,
        audience: None,
        audience_label: None,
    };
    prepare_message(&issue, publication, settings, subject_prefix, date, None)
}

fn prepare_message(
    issue: &Issue,
    publication: &Publication,
    settings: &MailSettings,
    subject_prefix: &str,
    date: SystemTime,
    view_url: Option<String>,
) -> Result<PreparedMessage, RenderError> {
    let body = Body::of(issue, publication);
    prepare_body(
        issue,
        &body,
        publication,
        settings,
        subject_prefix,
        date,
        view_url,
    )
}

fn prepare_body(
    issue: &Issue,
    body: &Body,
    publication: &Publication,
    settings: &MailSettings,
    subject_prefix: &str,
    date: SystemTime,
    view_url: Option<String>,
) -> Result<PreparedMessage, RenderError> {
    let (greeting, unsubscribe, manage) = (
        Slot::Greeting.mark(),
        Slot::UnsubscribeUrl.mark(),
        Slot::ManageUrl.mark(),
    );
    let email = IssueEmail {
        publication,
        issue,
        body_html: &body.html,
        body_text: &body.text,
        greeting: &greeting,
        unsubscribe_url: &unsubscribe,
        manage_url: &manage,
        view_url,
        postal_address: &settings.postal_address,
    };
    let (text, html) = email_parts(&email)?;
    let subject = format!("{subject_prefix}{}", issue.subject);
    let heading = Heading {
        from: &settings.from,
        reply_to: settings.reply_to.as_ref(),
        subject: &subject,
        date,
        list_id: &settings.list_id,
        unsubscribe_mailto: settings.unsubscribe_mailto.as_deref(),
        id_prefix: issue.uid,
        id_domain: &settings.id_domain,
    };
    Ok(PreparedMessage::new(&heading, &text, &html)?)
}

/// Both parts of a prepared message exactly as a reader without a known name receives them
/// (what the admin's preview shows): the text part and the HTML part.
pub fn preview(
    prepared: &PreparedMessage,
    unsubscribe_url: &str,
    manage_url: &str,
) -> (String, String) {
    let reader = crate::mail::prepared::Reader {
        return_path: None,
        email: "reader@example.com",
        name: None,
        uid: uuid::Uuid::nil(),
        unsubscribe_url,
        manage_url,
    };
    prepared.parts_for(&reader)
}
