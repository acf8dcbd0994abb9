//! Writing issues: the list, the editor, delete and duplicate.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::context::flash;
use super::issue_form::{Action, IssueForm};
use super::{AdminContext, chrome, parse_id, see_other};
use crate::domain::saved_link::LinkAddress;
use crate::domain::{IssueDraft, IssueInput, IssueStatus};
use crate::render::admin_issues::{IssueEditPage, IssuesPage, ScheduleBox};
use crate::render::local_time;
use crate::schedule::plan;
use crate::store::cadence;
use crate::store::issues::{self, Issue, IssueError};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Issues per list page.
const PER_PAGE: i64 = 50;

/// The list's query string.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    before: Option<i64>,
}

/// Reads a status filter; empty means any.
pub fn parse_status(raw: &str) -> Result<Option<IssueStatus>, WebError> {
    match raw {
        "" => Ok(None),
        raw => IssueStatus::try_from(raw.to_lowercase())
            .map(Some)
            .map_err(|_| {
                WebError::BadRequest(format!(
                    "Unknown status {raw:?}: use draft, scheduled, sending, sent or cancelled."
                ))
            }),
    }
}

/// `GET /admin/issues`: newest first, optionally of one status.
pub async fn list(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let status = parse_status(&query.status)?;
    let items = issues::list(&state.db, status, query.before, PER_PAGE + 1).await?;
    let older = (items.len() as i64 > PER_PAGE).then(|| items[PER_PAGE as usize - 1].id);
    html(
        StatusCode::OK,
        IssuesPage {
            chrome: chrome(&state, &ctx, &session),
            items: items.into_iter().take(PER_PAGE as usize).collect(),
            status: &query.status,
            older,
        },
    )
}

fn input_of(issue: &Issue) -> IssueInput {
    IssueInput {
        subject: issue.subject.clone(),
        slug: issue.slug.clone(),
        preheader: issue.preheader.clone(),
        body: issue.body.clone(),
        links_heading: issue.links_heading.clone(),
        links: issue.links.clone(),
    }
}

/// Open slots the editor offers.
const OPEN_SLOTS: usize = 12;

/// The schedule section for an existing issue: its time, and the open slots to choose from.
async fn schedule_box(state: &AppState, issue: &Issue) -> Result<ScheduleBox, WebError> {
    let now = state.clock.now();
    let cadence = cadence::load(&state.db).await?;
    let zone = &cadence.rule_at(now).zone;
    let open = plan::upcoming(&state.db, &cadence, now, OPEN_SLOTS * 2)
        .await?
        .into_iter()
        .filter(|s| !s.skipped && s.issue.is_none())
        .take(OPEN_SLOTS)
        .map(|s| s.row(&cadence))
        .collect();
    let segment = crate::store::tags::segment_of(&state.db, issue.id).await?;
    let (audience, audience_label, audience_fixed) =
        match (issue.audience, issue.audience_label.clone()) {
            (Some(n), Some(label)) => (n, label, true),
            _ => (
                crate::store::tags::audience(&state.db, &segment, now).await?,
                segment.describe(),
                false,
            ),
        };
    let segment = crate::store::tags::list(&state.db)
        .await?
        .into_iter()
        .map(|c| {
            let mode = segment
                .entries()
                .find(|(t, _)| t.id == c.tag.id)
                .map(|(_, mode)| mode);
            (c.tag, mode)
        })
        .collect();
    Ok(ScheduleBox {
        audience,
        audience_label,
        audience_fixed,
        segment,
        scheduled: issue
            .scheduled_at
            .filter(|_| issue.status == IssueStatus::Scheduled)
            .map(|at| local_time(at, cadence.zone_at(at))),
        on_slot: issue.slot_at.is_some(),
        missed: issue
            .missed_at
            .and(issue.scheduled_at)
            .map(|at| local_time(at, cadence.zone_at(at))),
        open,
        zone: zone.name().to_owned(),
    })
}

/// The editor page, with `status` (400 or 409 after a refused save, the input kept).
async fn editor(
    state: &AppState,
    ctx: &AdminContext,
    session: &Session,
    issue: Option<&Issue>,
    input: IssueInput,
    refused: Option<(StatusCode, String)>,
) -> Result<HttpResponse, WebError> {
    let (status, error) = match refused {
        Some((status, error)) => (status, Some(error)),
        None => (StatusCode::OK, None),
    };
    let schedule = match issue {
        Some(issue) => Some(schedule_box(state, issue).await?),
        None => None,
    };
    // The links inbox's links not yet in the roundup, offered while the issue is editable.
    let inbox = match issue.filter(|i| i.status.is_editable()) {
        Some(_) => {
            let present: Vec<String> = input
                .links
                .iter()
                .filter_map(|l| LinkAddress::parse(&l.url).ok().map(|a| a.key))
                .collect();
            crate::store::saved_links::inbox(&state.db)
                .await?
                .into_iter()
                .filter(|l| LinkAddress::parse(&l.url).is_ok_and(|a| !present.contains(&a.key)))
                .collect()
        }
        None => Vec::new(),
    };
    html(
        status,
        IssueEditPage {
            chrome: chrome(state, ctx, session),
            issue,
            input,
            error,
            schedule,
            inbox,
        },
    )
}

/// `GET /admin/issues/new`.
pub async fn new(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    editor(&state, &ctx, &session, None, IssueInput::default(), None).await
}

/// `GET /admin/issues/{id}`.
pub async fn edit(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    editor(&state, &ctx, &session, Some(&issue), input_of(&issue), None).await
}

/// The issue at a path id, or 404.
pub async fn find(state: &AppState, raw_id: &str) -> Result<Issue, WebError> {
    issues::get(&state.db, parse_id(raw_id)?)
        .await?
        .ok_or_else(|| {
            WebError::NotFound("There is no such issue (it may have been deleted).".into())
        })
}

/// A refusal the editor can fix in the form, or `Err` for the rest.
fn fixable(e: IssueError) -> Result<(StatusCode, String), WebError> {
    match e {
        IssueError::SlugTaken(slug) => Ok((
            StatusCode::CONFLICT,
            format!("Another issue already uses the address /archive/{slug}; choose another slug."),
        )),
        other => Err(other.into()),
    }
}

/// `POST /admin/issues`: saves a new draft and opens it in the editor.
pub async fn create(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let mut form = IssueForm::parse(&body)?;
    form.apply_action();
    let draft = match IssueDraft::parse(form.input.clone()) {
        Ok(draft) => draft,
        Err(e) => {
            let refused = Some((StatusCode::BAD_REQUEST, e.0));
            return editor(&state, &ctx, &session, None, form.input, refused).await;
        }
    };
    match issues::create(&state.db, &draft, state.clock.now()).await {
        Ok(issue) => {
            flash(&session, "The draft was saved.");
            Ok(see_other(&format!("/admin/issues/{}", issue.id)))
        }
        Err(e) => editor(&state, &ctx, &session, None, form.input, Some(fixable(e)?)).await,
    }
}

/// `POST /admin/issues/{id}`: saves the editor's changes (or reorders or removes a link and
/// saves), then shows the editor again.
pub async fn save(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let issue = find(&state, &id).await?;
    let mut form = IssueForm::parse(&body)?;
    form.apply_action();
    if let Action::Add(saved) = form.action {
        let Some(link) = crate::store::saved_links::get(&state.db, saved).await? else {
            let refused = Some((
                StatusCode::NOT_FOUND,
                "That link is no longer in the inbox (it was deleted); nothing was added."
                    .to_owned(),
            ));
            return editor(&state, &ctx, &session, Some(&issue), form.input, refused).await;
        };
        // A second click (or a link typed in meanwhile) does not add it twice.
        let key = LinkAddress::parse(&link.url).ok().map(|a| a.key);
        let present = form
            .input
            .links
            .iter()
            .any(|l| LinkAddress::parse(&l.url).ok().map(|a| a.key) == key);
        if !present {
            form.input.links.push(link.into_issue_link());
        }
    }
    let draft = match IssueDraft::parse(form.input.clone()) {
        Ok(draft) => draft,
        Err(e) => {
            let refused = Some((StatusCode::BAD_REQUEST, e.0));
            return editor(&state, &ctx, &session, Some(&issue), form.input, refused).await;
        }
    };
    match issues::update(&state.db, issue.id, &draft, state.clock.now()).await {
        Ok(saved) => {
            if form.action == Action::Save {
                flash(&session, "Saved.");
            }
            Ok(see_other(&format!("/admin/issues/{}#links", saved.id)))
        }
        Err(e) => {
            let refused = Some(fixable(e)?);
            editor(&state, &ctx, &session, Some(&issue), form.input, refused).await
        }
    }
}

/// `POST /admin/issues/{id}/delete`: deletes a draft.
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    confirm: web::Form<super::Confirm>,
) -> Result<HttpResponse, WebError> {
    confirm.require("Deleting a draft")?;
    issues::delete_draft(&state.db, parse_id(&id)?).await?;
    flash(&session, "The draft was deleted.");
    Ok(see_other("/admin/issues"))
}

/// `POST /admin/issues/{id}/duplicate`: a new draft with this issue's content.
pub async fn duplicate(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let copy = issues::duplicate(&state.db, parse_id(&id)?, state.clock.now()).await?;
    flash(&session, "This is a new draft, copied from the issue.");
    Ok(see_other(&format!("/admin/issues/{}", copy.id)))
}

/// `POST /admin/issues/{id}/segment`: who the issue goes to, from one `tag-{id}` field per tag
/// (`any`, `all`, `none`, or empty for unused).
pub async fn segment(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    use crate::domain::tag::{Segment, SegmentMode};
    use crate::store::tags::{self, TagError};
    let issue = find(&state, &id).await?;
    let known = tags::list(&state.db).await?;
    let mut segment = Segment::default();
    for (key, value) in url::form_urlencoded::parse(&body) {
        let Some(tag_id) = key.strip_prefix("tag-") else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let tag = known
            .iter()
            .find(|c| c.tag.id.to_string() == tag_id)
            .map(|c| c.tag.clone())
            .ok_or_else(|| WebError::BadRequest(format!("{tag_id:?} is not a tag.")))?;
        match SegmentMode::try_from(value.into_owned()) {
            Ok(SegmentMode::Any) => segment.any.push(tag),
            Ok(SegmentMode::All) => segment.all.push(tag),
            Ok(SegmentMode::None) => segment.none.push(tag),
            Err(why) => {
                return Err(WebError::BadRequest(format!(
                    "{why}: use any, all or none."
                )));
            }
        }
    }
    match tags::set_segment(&state.db, issue.id, &segment).await {
        Ok(()) => {}
        Err(TagError::Store(e)) => return Err(e.into()),
        Err(e @ TagError::Twice(_)) => return Err(WebError::BadRequest(format!("{e}."))),
        Err(e) => return Err(WebError::Conflict(format!("{e}."))),
    }
    let audience = tags::audience(&state.db, &segment, state.clock.now()).await?;
    flash(
        &session,
        format!(
            "This issue goes to {}: {audience} readers as of now.",
            segment.describe()
        ),
    );
    Ok(see_other(&format!("/admin/issues/{}#schedule", issue.id)))
}
