//! CSV import as a background job. The file is stored in the database in chunks; a runner
//! (in `fortnight serve`, or the `fortnight subscribers import` command itself) parses it on a
//! blocking thread and commits it in batches of 2,500 rows, each batch in one transaction with
//! the job's progress. Memory stays flat whatever the file's size, and a job cut off by a crash
//! resumes at its first uncommitted row, in any process, once the holder's lease lapses.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::{ImportJob, RowProblem, SubscriberEmail, SubscriberName, SubscriberStatus};
use crate::store::import_jobs::{self, CHUNK_BYTES, MAX_LISTED};
use crate::store::subscriber_import::{self, Checkpoint, ImportRow};
use crate::store::{Db, StoreError};

/// Rows per transaction (eleven values a row stays under SQLite's 32,766 bound parameters).
const BATCH: usize = 2500;
/// How often a runner looks for jobs nobody holds (a lapsed lease, another process's upload).
const POLL: Duration = Duration::from_secs(5);
/// An upload still loading after this long was cut off.
const ABANDONED_UPLOAD: Duration = Duration::from_secs(3600);

/// How to treat the rows of a file.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// The editor states the people on the list already consented: they arrive active.
    /// Otherwise they arrive pending and are sent a confirmation email.
    pub consented: bool,
    /// When the import runs.
    pub now: DateTime<Utc>,
}

/// Checks that a file is a CSV whose first line names an `email` column; the message says
/// what is wrong otherwise. Nothing is stored for a file that fails.
pub fn check_header<R: Read>(reader: R) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    csv.headers()
        .map_err(|e| e.to_string())
        .and_then(columns)
        .map(|_| ())
        .map_err(|reason| format!("The file cannot be read as CSV: {reason}"))
}

/// Stores a checked file as a new queued job, in chunks (each its own short transaction, so
/// signups go on while a large file is stored). Returns the job's number.
pub async fn store_file<R: Read>(
    db: &Db,
    mut file: R,
    file_name: &str,
    size_bytes: u64,
    consented: bool,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id = import_jobs::create(db, file_name, size_bytes as i64, consented, now).await?;
    let stored = async {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut seq = 0;
        loop {
            let filled = fill(&mut file, &mut buffer)
                .map_err(|e| StoreError::Unavailable(format!("the upload cannot be read: {e}")))?;
            if filled == 0 {
                break;
            }
            import_jobs::add_chunk(db, id, seq, &buffer[..filled]).await?;
            seq += 1;
        }
        import_jobs::queue(db, id).await
    }
    .await;
    if let Err(e) = stored {
        let _ = import_jobs::discard(db, id).await;
        return Err(e);
    }
    Ok(id)
}

/// Reads until `buffer` is full or the file ends.
fn fill<R: Read>(file: &mut R, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// How a runner's turn with a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every row was read (or the file was refused); the job is closed.
    Finished,
    /// The runner was asked to stop and let go of the job; any process may resume it.
    Released,
    /// Another process took the job over (this one's lease had lapsed); nothing more was written.
    Lost,
}

/// Runs import jobs: the one `fortnight serve` runs in the background, and the one the command
/// line runs for its own job.
#[derive(Clone)]
pub struct Importer {
    /// The database.
    pub db: Db,
    /// The time recorded on imported subscribers.
    pub clock: Clock,
    /// How long a job stays held after its holder's last batch (a dead holder's job resumes
    /// elsewhere after this).
    pub lease: Duration,
    /// Wakes the runner when a job is queued.
    pub wake: Arc<Notify>,
    /// Wakes the transactional mail sender (confirmations of pending newcomers).
    pub outbox_wake: Arc<Notify>,
    /// Names this process as a job's holder.
    pub runner: Arc<str>,
}

impl Importer {
    /// A runner for this process.
    pub fn new(db: Db, clock: Clock, lease: Duration, outbox_wake: Arc<Notify>) -> Importer {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        Importer {
            db,
            clock,
            lease,
            wake: Arc::new(Notify::new()),
            outbox_wake,
            runner: format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4()).into(),
        }
    }

    /// Takes jobs as they are queued (or as their holders die) until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let idle = match self.run_next(None, &stop, &|_| {}).await {
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "import job interrupted; will resume");
                    true
                }
            };
            if idle {
                let swept = import_jobs::fail_abandoned_uploads(
                    &self.db,
                    Utc::now() - ABANDONED_UPLOAD,
                    self.clock.now(),
                )
                .await;
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "cannot close abandoned uploads");
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Takes the oldest job nobody holds (or job `only`) and runs it until it ends, `stop` is
    /// cancelled or the job is lost. `progress` hears the bytes of the file done after each
    /// batch. `None` when there was no such job to take.
    pub async fn run_next(
        &self,
        only: Option<i64>,
        stop: &CancellationToken,
        progress: &(dyn Fn(i64) + Sync),
    ) -> Result<Option<(ImportJob, Outcome)>, StoreError> {
        let Some(job) = import_jobs::claim(
            &self.db,
            &self.runner,
            only,
            Utc::now(),
            Utc::now() + self.lease,
        )
        .await?
        else {
            return Ok(None);
        };
        tracing::info!(
            job = job.id,
            from_byte = job.resume_offset,
            "import job taken"
        );
        let outcome = match self.run_job(&job, stop, progress).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let _ = import_jobs::release(&self.db, job.id, &self.runner).await;
                return Err(e);
            }
        };
        tracing::info!(job = job.id, ?outcome, "import job left");
        Ok(Some((job, outcome)))
    }

    async fn run_job(
        &self,
        job: &ImportJob,
        stop: &CancellationToken,
        progress: &(dyn Fn(i64) + Sync),
    ) -> Result<Outcome, StoreError> {
        let (chunks, reader) = mpsc::channel(2);
        let feeder = tokio::spawn(feed(self.db.clone(), job.id, chunks));
        let (sender, mut receiver) = mpsc::channel(2);
        let options = ImportOptions {
            consented: job.consented,
            now: self.clock.now(),
        };
        let skip_to = job.resume_offset as u64;
        let parser = tokio::task::spawn_blocking(move || {
            parse(ChunkReader::new(reader), options, skip_to, sender)
        });
        let mut listed = job.invalid.min(MAX_LISTED);
        let outcome = loop {
            let Some(parsed) = receiver.recv().await else {
                break self.close(job.id, None).await?;
            };
            let (rows, problems, read, end) = match parsed {
                Parsed::Fatal(1, reason) => {
                    break self
                        .close(job.id, Some(&format!("Nothing was imported. {reason}")))
                        .await?;
                }
                Parsed::Fatal(line, reason) => {
                    // Past the header, an unreadable stretch ends the file: note it, keep the rest.
                    let problem = RowProblem {
                        line,
                        reason: format!("the file cannot be read from here on: {reason}"),
                    };
                    (Vec::new(), vec![problem], 0, job.size_bytes)
                }
                Parsed::Broken(reason) => {
                    return Err(StoreError::Unavailable(reason));
                }
                Parsed::Rows {
                    rows,
                    problems,
                    read,
                    end,
                } => (rows, problems, read, end as i64),
            };
            let take = ((MAX_LISTED - listed).max(0) as usize).min(problems.len());
            let checkpoint = Checkpoint {
                job_id: job.id,
                runner: &self.runner,
                lease_until: Utc::now() + self.lease,
                resume_offset: end,
                rows_read: read as i64,
                invalid: problems.len() as i64,
                listed: &problems[..take],
            };
            match subscriber_import::insert(&self.db, &rows, Some(checkpoint), self.clock.now())
                .await?
            {
                None => break Outcome::Lost,
                Some(added) => {
                    listed += take as i64;
                    if added.pending > 0 {
                        self.outbox_wake.notify_one();
                    }
                    progress(end);
                }
            }
            if stop.is_cancelled() {
                import_jobs::release(&self.db, job.id, &self.runner).await?;
                break Outcome::Released;
            }
        };
        drop(receiver);
        let _ = parser.await;
        feeder.abort();
        Ok(outcome)
    }

    async fn close(&self, id: i64, error: Option<&str>) -> Result<Outcome, StoreError> {
        Ok(
            if import_jobs::finish(&self.db, id, &self.runner, error, self.clock.now()).await? {
                Outcome::Finished
            } else {
                Outcome::Lost
            },
        )
    }
}

/// Hands a job's stored chunks, in order, to the parser's reader.
async fn feed(db: Db, id: i64, chunks: mpsc::Sender<std::io::Result<Vec<u8>>>) {
    let mut seq = 0;
    loop {
        let next = match import_jobs::chunk(&db, id, seq).await {
            Ok(Some(data)) => Ok(data),
            Ok(None) => return,
            Err(e) => Err(std::io::Error::other(e)),
        };
        let failed = next.is_err();
        if chunks.send(next).await.is_err() || failed {
            return;
        }
        seq += 1;
    }
}

/// The stored file as one byte stream, read on the parser's blocking thread.
struct ChunkReader {
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>) -> ChunkReader {
        ChunkReader {
            chunks,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

enum Parsed {
    /// A batch, and the byte where the next one starts.
    Rows {
        rows: Vec<ImportRow>,
        problems: Vec<RowProblem>,
        read: u64,
        end: u64,
    },
    /// The file cannot be read from this line on (line 1: not a CSV with an email column).
    Fatal(i64, String),
    /// The stored file could not be read (the database failed).
    Broken(String),
}

/// Which column holds what.
struct Columns {
    email: usize,
    name: Option<usize>,
    status: Option<usize>,
    created: Option<usize>,
    tags: Option<usize>,
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
        tags: find(&["tags", "tag"]),
    })
}

/// Parses the file from its start, skipping the records that begin before `skip_to` (those a
/// resumed job already committed), and sends the rest in batches.
fn parse<R: Read>(reader: R, options: ImportOptions, skip_to: u64, sender: mpsc::Sender<Parsed>) {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let columns = match csv.headers() {
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
            let _ = sender.blocking_send(Parsed::Broken(e.to_string()));
            return;
        }
        headers => match headers.map_err(|e| e.to_string()).and_then(columns) {
            Ok(columns) => columns,
            Err(reason) => {
                let _ = sender.blocking_send(Parsed::Fatal(
                    1,
                    format!("The file cannot be read as CSV: {reason}"),
                ));
                return;
            }
        },
    };
    let (mut rows, mut problems, mut read) = (Vec::with_capacity(BATCH), Vec::new(), 0u64);
    let mut record = csv::StringRecord::new();
    let batch = |rows: &mut Vec<ImportRow>, problems: &mut Vec<RowProblem>, read: &mut u64, end| {
        Parsed::Rows {
            rows: std::mem::take(rows),
            problems: std::mem::take(problems),
            read: std::mem::take(read),
            end,
        }
    };
    loop {
        let start = csv.position().byte();
        let line = csv.position().line() as i64;
        let result = csv.read_record(&mut record);
        if start < skip_to && !matches!(result, Ok(false)) {
            if let Err(e) = &result
                && matches!(e.kind(), csv::ErrorKind::Io(_))
            {
                let _ = sender.blocking_send(Parsed::Broken(e.to_string()));
                return;
            }
            continue;
        }
        match result {
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
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                let _ = sender.blocking_send(Parsed::Broken(e.to_string()));
                return;
            }
            Err(e) => {
                let end = csv.position().byte();
                let _ = sender.blocking_send(batch(&mut rows, &mut problems, &mut read, end));
                let _ = sender.blocking_send(Parsed::Fatal(line.max(2), e.to_string()));
                return;
            }
        }
        if rows.len() + problems.len() >= BATCH {
            let end = csv.position().byte();
            if sender
                .blocking_send(batch(&mut rows, &mut problems, &mut read, end))
                .is_err()
            {
                return;
            }
        }
    }
    let end = csv.position().byte();
    let _ = sender.blocking_send(batch(&mut rows, &mut problems, &mut read, end));
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
        Some("complained" | "spam" | "complaint") => SubscriberStatus::Complained,
        Some(other) => {
            return Err(format!(
                "status: {other:?} is not active, pending, unsubscribed, bounced or complained"
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
    let tags = crate::domain::tag::TagName::parse_list(field(columns.tags).unwrap_or(""))
        .map_err(|e| format!("tags: {e}"))?;
    Ok(ImportRow {
        email,
        name,
        status,
        created_at,
        tags,
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
