//! CSV import (upload) and export (download), both streamed.

use std::io::Write;

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use super::subscribers::ListQuery;
use super::{AdminContext, chrome};
use crate::render::admin::ImportPage;
use crate::transfer::{ExportStream, ImportError, ImportOptions, import as run_import};
use crate::web::error::WebError;
use crate::web::{AppState, html};

/// Largest upload accepted (about ten million rows).
const MAX_UPLOAD: u64 = 1 << 30;

/// `GET /admin/import`.
pub async fn import_form(
    state: web::Data<AppState>,
    ctx: web::ReqData<AdminContext>,
    session: Session,
) -> Result<HttpResponse, WebError> {
    html(
        StatusCode::OK,
        ImportPage {
            chrome: chrome(&state, &ctx, &session),
            report: None,
            error: None,
        },
    )
}

/// `POST /admin/import`: the upload is spooled to a temporary file (memory stays flat), then
/// imported in batches; the page reports what happened, row by row for the rejects.
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
    let mut spool: Option<std::fs::File> = None;
    let mut consented = false;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| WebError::BadRequest(format!("The upload could not be read: {e}")))?;
        match field.name() {
            Some("file") => {
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
                spool = Some(file);
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
    let Some(mut file) = spool else {
        return Err(WebError::BadRequest("Choose a CSV file to import.".into()));
    };
    std::io::Seek::rewind(&mut file).map_err(|e| WebError::Internal(e.into()))?;
    let options = ImportOptions {
        consented,
        now: state.clock.now(),
    };
    let (report, error, status) = match run_import(&state.db, file, options).await {
        Ok(report) => (Some(report), None, StatusCode::OK),
        Err(ImportError::Malformed(reason)) => (
            None,
            Some(format!("Nothing was imported. {reason}")),
            StatusCode::BAD_REQUEST,
        ),
        Err(ImportError::Store { report, error }) => {
            tracing::error!(%error, "import interrupted");
            (Some(*report), Some("The import stopped part-way because the database failed; the report shows what was imported.".into()), StatusCode::SERVICE_UNAVAILABLE)
        }
    };
    if report.as_ref().is_some_and(|r| r.added_pending > 0) {
        state.outbox_wake.notify_one();
    }
    html(
        status,
        ImportPage {
            chrome: chrome(&state, &ctx, &session),
            report,
            error,
        },
    )
}

/// `GET /admin/export`: the filtered list as CSV, streamed a page at a time.
pub async fn export(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = query.filter()?;
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
