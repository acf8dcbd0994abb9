//! CSV import (an upload that becomes a background job, with its progress page) and export
//! (a streamed download).

use std::io::Write;

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue, LOCATION,
};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use super::subscribers::ListQuery;
use super::{AdminContext, chrome};
use crate::domain::ImportJob;
use crate::render::admin::{ImportJobPage, ImportPage};
use crate::store::import_jobs;
use crate::transfer::{ExportStream, check_header, store_file};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Largest upload accepted (about ten million rows).
const MAX_UPLOAD: u64 = 1 << 30;

/// Import jobs listed under the form.
const RECENT_JOBS: i64 = 10;

/// `GET /admin/import`: the form and the latest jobs.
pub async fn import_form(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    form_page(&state, &ctx, &session, StatusCode::OK, None).await
}

async fn form_page(
    state: &AppState,
    ctx: &AdminContext,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let jobs = import_jobs::recent(&state.db, RECENT_JOBS).await?;
    html(
        status,
        ImportPage {
            chrome: chrome(state, ctx, session),
            jobs,
            error,
        },
    )
}

/// `POST /admin/import`: the upload is spooled to a temporary file (memory stays flat), its
/// header checked, and the file stored as a job that runs in the background; the answer sends
/// the editor to the job's progress page.
pub async fn import(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    mut form: Multipart,
) -> Result<HttpResponse, WebError> {
    // The token comes first in the form, so nothing of a forged upload is read.
    let token = match form.next().await {
        Some(Ok(mut field)) if field.name() == Some("csrf") => {
            let mut token = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|_| super::guard::refused())?;
                if token.len() + chunk.len() > 256 {
                    return Err(super::guard::refused());
                }
                token.extend_from_slice(&chunk);
            }
            String::from_utf8(token).unwrap_or_default()
        }
        _ => String::new(),
    };
    if !super::guard::token_matches(&session, &token) {
        return Err(super::guard::refused());
    }
    let mut spool: Option<(std::fs::File, u64, String)> = None;
    let mut consented = false;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?;
        match field.name() {
            Some("file") => {
                let name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(file_name)
                    .unwrap_or_else(|| "upload.csv".into());
                let mut file = tempfile::tempfile().map_err(|e| WebError::Internal(e.into()))?;
                let mut size = 0u64;
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|e| {
                        WebError::BadRequest(format!("The upload was cut short: {e}"))
                    })?;
                    size += chunk.len() as u64;
                    if size > MAX_UPLOAD {
                        return Err(WebError::PayloadTooLarge);
                    }
                    file.write_all(&chunk)
                        .map_err(|e| WebError::Internal(e.into()))?;
                }
                spool = Some((file, size, name));
            }
            Some("consented") => {
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|e| WebError::BadRequest(e.to_string()))?;
                    consented |= chunk.as_ref() == b"yes";
                }
            }
            _ => while field.next().await.is_some() {},
        }
    }
    let Some((mut file, size, name)) = spool else {
        return Err(WebError::BadRequest("Choose a CSV file to import.".into()));
    };
    let rewind = |file: &mut std::fs::File| {
        std::io::Seek::rewind(file).map_err(|e| WebError::Internal(e.into()))
    };
    rewind(&mut file)?;
    let checked = check_header(std::io::BufReader::new(&mut file));
    if let Err(reason) = checked {
        let error = Some(format!("Nothing was imported. {reason}"));
        return form_page(&state, &ctx, &session, StatusCode::BAD_REQUEST, error).await;
    }
    rewind(&mut file)?;
    let id = store_file(&state.db, file, &name, size, consented, state.clock.now()).await?;
    state.import_wake.notify_one();
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/admin/import/{id}")))
        .finish())
}

/// The name an upload is shown under: its last path part, without control characters, at most
/// 200 characters.
fn file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload.csv".into()
    } else {
        clean
    }
}

async fn find_job(state: &AppState, id: &str) -> Result<ImportJob, WebError> {
    let missing = || WebError::NotFound("There is no such import.".into());
    let id: i64 = id.parse().map_err(|_| missing())?;
    import_jobs::get(&state.db, id).await?.ok_or_else(missing)
}

/// `GET /admin/import/{id}`: a job's progress, then its report.
pub async fn job(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let job = find_job(&state, &id).await?;
    let problems = import_jobs::problems(&state.db, job.id).await?;
    let mut response = html(
        StatusCode::OK,
        ImportJobPage {
            chrome: chrome(&state, &ctx, &session),
            job,
            problems,
        },
    )?;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /admin/import/{id}.json`: the job's numbers, for the progress page's poll.
pub async fn job_json(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let job = find_job(&state, &id).await?;
    let percent = job.percent();
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "job": job, "percent": percent })))
}

/// `GET /admin/export`: the filtered list as CSV, streamed a page at a time.
pub async fn export(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = query.filter(&state).await?;
    let stream = ExportStream::new(state.db.clone(), filter);
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        match stream.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, WebError>(web::Bytes::from(chunk)), stream)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "export interrupted");
                Some((Err(WebError::Store(e)), stream))
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            CONTENT_DISPOSITION,
            "attachment; filename=\"subscribers.csv\"",
        ))
        .streaming(body))
}
