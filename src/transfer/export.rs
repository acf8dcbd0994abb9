//! CSV export, a page of subscribers at a time, oldest first.

use crate::store::subscriber_admin::Filter;
use crate::store::subscribers::Subscriber;
use crate::store::{Db, StoreError, subscriber_export};

/// The header line of every export (also what import reads back).
pub const HEADER: &[&str] = &[
    "email",
    "name",
    "status",
    "created",
    "confirmed",
    "unsubscribed",
    "consent_source",
];

/// Rows fetched per round trip.
const PAGE: i64 = 5000;

/// Walks the filtered list in id order, yielding CSV text a page at a time.
pub struct ExportStream {
    db: Db,
    filter: Filter,
    after: i64,
    header_sent: bool,
    done: bool,
}

impl ExportStream {
    /// An export of the subscribers `filter` selects.
    pub fn new(db: Db, filter: Filter) -> ExportStream {
        ExportStream {
            db,
            filter,
            after: 0,
            header_sent: false,
            done: false,
        }
    }

    /// The next piece of CSV, or `None` when the export is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = subscriber_export::page(&self.db, &self.filter, self.after, PAGE).await?;
        let mut out = csv::Writer::from_writer(Vec::with_capacity(page.len() * 96 + 128));
        if !self.header_sent {
            out.write_record(HEADER).map_err(csv_error)?;
            self.header_sent = true;
        }
        self.done = (page.len() as i64) < PAGE;
        if let Some(last) = page.last() {
            self.after = last.id;
        }
        for s in &page {
            out.write_record(record(s)).map_err(csv_error)?;
        }
        out.into_inner()
            .map(Some)
            .map_err(|e| csv_error(e.into_error().into()))
    }
}

fn record(s: &Subscriber) -> [String; 7] {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    [
        s.email.clone(),
        s.name.clone().unwrap_or_default(),
        s.status.as_str().to_owned(),
        s.created_at.to_rfc3339(),
        time(s.confirmed_at),
        time(s.unsubscribed_at),
        s.consent_source.clone(),
    ]
}

fn csv_error(e: csv::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot write CSV: {e}"))
}
