//! CSV import: rows are parsed on a blocking thread and handed over in batches of 2,500,
//! so memory stays flat whatever the file's size; each batch is one transaction.

use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;

use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::store::subscriber_import::{self, ImportRow};
use crate::store::{Db, StoreError};

/// Rows per transaction (eleven values a row stays under SQLite's 32,766 bound parameters).
const BATCH: usize = 2500;
/// Problems listed in the report; the rest are only counted.
const MAX_LISTED: usize = 1000;

/// How to treat the rows of a file.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// The editor states the people on the list already consented: they arrive active.
    /// Otherwise they arrive pending and are sent a confirmation email.
    pub consented: bool,
    /// When the import runs.
    pub now: DateTime<Utc>,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    /// The line in the file (the header is line 1).
    pub line: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// New subscribers by the status they arrived with.
    pub added_active: u64,
    /// New subscribers sent a confirmation email.
    pub added_pending: u64,
    /// New subscribers recorded as unsubscribed or bounced (kept so they are never mailed).
    pub added_inactive: u64,
    /// Rows whose address was already on the list or earlier in the file: merged, not doubled.
    pub duplicates: u64,
    /// Of those, subscribers on the list whom the file marks unsubscribed or bounced, and who now are.
    pub opted_out: u64,
    /// Rows skipped as invalid.
    pub invalid: u64,
    /// The first thousand invalid rows, with reasons.
    pub problems: Vec<RowProblem>,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not a CSV with an `email` column; nothing was imported.
    #[error("{0}")]
    Malformed(String),
    /// The database failed; the report says what was imported before.
    #[error("the import stopped after {} rows: {error}", report.rows)]
    Store {
        /// What was imported before the failure.
        report: Box<ImportReport>,
        /// The failure.
        error: StoreError,
    },
}

enum Parsed {
    Rows(Vec<ImportRow>, Vec<RowProblem>, u64),
    Fatal(u64, String),
}

/// Imports a CSV with a header row naming at least `email` (and optionally `name`, `status`,
/// `created` or `created_at`). Addresses already on the list are left as they are.
pub async fn import<R: Read + Send + 'static>(
    db: &Db,
    reader: R,
    options: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let (sender, mut receiver) = mpsc::channel(2);
    let parser = tokio::task::spawn_blocking(move || parse(reader, options, sender));
    let mut report = ImportReport::default();
    while let Some(parsed) = receiver.recv().await {
        let (rows, problems, read) = match parsed {
            Parsed::Fatal(1, reason) => return Err(ImportError::Malformed(reason)),
            Parsed::Fatal(line, reason) => {
                // Past the header, an unreadable stretch ends the file: report it, keep what came before.
                note(
                    &mut report,
                    RowProblem {
                        line,
                        reason: format!("the file cannot be read from here on: {reason}"),
                    },
                );
                break;
            }
            Parsed::Rows(rows, problems, read) => (rows, problems, read),
        };
        report.rows += read;
        for problem in problems {
            note(&mut report, problem);
        }
        match subscriber_import::insert(db, &rows, options.now).await {
            Ok(added) => {
                report.added_active += added.active;
                report.added_pending += added.pending;
                report.added_inactive += added.inactive;
                report.opted_out += added.opted_out;
                report.duplicates += rows.len() as u64 - added.total();
            }
            Err(error) => {
                return Err(ImportError::Store {
                    report: Box::new(report),
                    error,
                });
            }
        }
    }
    drop(receiver);
    let _ = parser.await;
    Ok(report)
}

fn note(report: &mut ImportReport, problem: RowProblem) {
    report.invalid += 1;
    if report.problems.len() < MAX_LISTED {
        report.problems.push(problem);
    }
}

/// Which column holds what.
struct Columns {
    email: usize,
    name: Option<usize>,
    status: Option<usize>,
    created: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> Result<Columns, String> {
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let email = find(&["email", "email address", "e-mail"]).ok_or_else(|| {
        "The file has no `email` column. The first line must name the columns, e.g. `email,name,status,created`."
            .to_owned()
    })?;
    Ok(Columns {
        email,
        name: find(&["name", "full name"]),
        status: find(&["status"]),
        created: find(&["created", "created_at", "created date", "signup date"]),
    })
}

fn parse<R: Read>(reader: R, options: ImportOptions, sender: mpsc::Sender<Parsed>) {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let columns = match csv.headers().map_err(|e| e.to_string()).and_then(columns) {
        Ok(columns) => columns,
        Err(reason) => {
            let _ = sender.blocking_send(Parsed::Fatal(
                1,
                format!("The file cannot be read as CSV: {reason}"),
            ));
            return;
        }
    };
    let (mut rows, mut problems, mut read) = (Vec::with_capacity(BATCH), Vec::new(), 0u64);
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                read += 1;
                // A repeat within the file is merged by the insert and counted as a duplicate.
                match row(&record, &columns, options) {
                    Ok(row) => rows.push(row),
                    Err(reason) => problems.push(RowProblem { line, reason }),
                }
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                read += 1;
                problems.push(RowProblem {
                    line,
                    reason: "the row is not valid UTF-8 text".into(),
                });
            }
            Err(e) => {
                let _ = sender.blocking_send(Parsed::Rows(
                    std::mem::take(&mut rows),
                    std::mem::take(&mut problems),
                    read,
                ));
                let _ = sender.blocking_send(Parsed::Fatal(line.max(2), e.to_string()));
                return;
            }
        }
        if rows.len() + problems.len() >= BATCH {
            let batch = Parsed::Rows(
                std::mem::take(&mut rows),
                std::mem::take(&mut problems),
                std::mem::take(&mut read),
            );
            if sender.blocking_send(batch).is_err() {
                return;
            }
        }
    }
    let _ = sender.blocking_send(Parsed::Rows(rows, problems, read));
}

fn row(
    record: &csv::StringRecord,
    columns: &Columns,
    options: ImportOptions,
) -> Result<ImportRow, String> {
    let field = |i: Option<usize>| i.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
    let email = SubscriberEmail::parse(field(Some(columns.email)).unwrap_or(""))
        .map_err(|e| format!("email: {e}"))?;
    let name =
        SubscriberName::parse_optional(field(columns.name)).map_err(|e| format!("name: {e}"))?;
    let listed = match field(columns.status).map(str::to_lowercase).as_deref() {
        None | Some("active" | "subscribed" | "confirmed" | "enabled") => SubscriberStatus::Active,
        Some("pending" | "unconfirmed") => SubscriberStatus::Pending,
        Some("unsubscribed" | "unsubscribe" | "optout" | "opted out" | "blocklisted") => {
            SubscriberStatus::Unsubscribed
        }
        Some("bounced" | "cleaned" | "bounce") => SubscriberStatus::Bounced,
        Some(other) => {
            return Err(format!(
                "status: {other:?} is not active, pending, unsubscribed or bounced"
            ));
        }
    };
    // Only the editor's statement of prior consent makes anyone active without confirming.
    let status = match listed {
        SubscriberStatus::Active if !options.consented => SubscriberStatus::Pending,
        other => other,
    };
    let created_at = field(columns.created)
        .map(parse_date)
        .transpose()
        .map_err(|e| format!("created: {e}"))?;
    Ok(ImportRow {
        email,
        name,
        status,
        created_at,
    })
}

fn parse_date(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("{raw:?} is not a date like 2024-05-31 or 2024-05-31T09:00:00Z"))
}
