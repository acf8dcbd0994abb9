//! A CSV import as the editor watches it: a background job with its progress and its problems.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where an import job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    /// The file is still being stored.
    Loading,
    /// Stored, waiting for a process to take it.
    Queued,
    /// Rows are being imported (or will be again, once a lapsed holder's lease runs out).
    Running,
    /// Every row was read.
    Done,
    /// Stopped for good; `error` says why.
    Failed,
}

impl ImportState {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Loading => "loading",
            ImportState::Queued => "queued",
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }

    /// Still to finish.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ImportState::Loading | ImportState::Queued | ImportState::Running
        )
    }
}

impl TryFrom<String> for ImportState {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "loading" => Ok(ImportState::Loading),
            "queued" => Ok(ImportState::Queued),
            "running" => Ok(ImportState::Running),
            "done" => Ok(ImportState::Done),
            "failed" => Ok(ImportState::Failed),
            other => Err(format!("unknown import state {other:?}")),
        }
    }
}

/// One import: the file, where the job is, and what it did so far.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    /// The job's number.
    pub id: i64,
    /// The uploaded file's name.
    pub file_name: String,
    /// The file's size.
    pub size_bytes: i64,
    /// The editor stated that everyone in the file consented (they arrive active).
    pub consented: bool,
    /// Where the job is.
    pub state: ImportState,
    /// When the file was uploaded.
    pub created_at: DateTime<Utc>,
    /// When a process first took the job.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes of the file committed so far.
    pub resume_offset: i64,
    /// Data rows read.
    pub rows_read: i64,
    /// New subscribers who arrived active.
    pub added_active: i64,
    /// New subscribers sent a confirmation email.
    pub added_pending: i64,
    /// New subscribers recorded as unsubscribed or bounced (kept so they are never mailed).
    pub added_inactive: i64,
    /// Rows whose address was already on the list or earlier in the file: merged, not doubled.
    pub duplicates: i64,
    /// Subscribers on the list whom the file marks unsubscribed or bounced, and who now are.
    pub opted_out: i64,
    /// Rows skipped as invalid.
    pub invalid: i64,
    /// Rows not added because their address is suppressed (it bounced or complained).
    pub suppressed: i64,
    /// Why a failed job stopped.
    pub error: Option<String>,
}

impl ImportJob {
    /// How much of the file is done, 0 to 100.
    pub fn percent(&self) -> i64 {
        if !self.state.is_open() {
            return 100;
        }
        if self.size_bytes <= 0 {
            return 0;
        }
        (self.resume_offset.clamp(0, self.size_bytes) * 100 / self.size_bytes).min(99)
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The line in the file (the header is line 1).
    pub line: i64,
    /// Why it was skipped.
    pub reason: String,
}
