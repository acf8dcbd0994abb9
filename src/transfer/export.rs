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
    "tags",
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
    rows: u64,
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
            rows: 0,
        }
    }

    /// Subscribers written so far.
    pub fn rows(&self) -> u64 {
        self.rows
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
        self.rows += page.len() as u64;
        let ids: Vec<i64> = page.iter().map(|s| s.id).collect();
        let mut tags = crate::store::tags::of_subscribers(&self.db, &ids).await?;
        for s in &page {
            let names: Vec<String> = tags
                .remove(&s.id)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name)
                .collect();
            out.write_record(record(s, &names.join("; ")))
                .map_err(csv_error)?;
        }
        out.into_inner()
            .map(Some)
            .map_err(|e| csv_error(e.into_error().into()))
    }
}

/// A cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, tab or carriage
/// return (a formula to Excel and LibreOffice) gets a leading apostrophe. Names come from the
/// public form, so they are anyone's text.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn record(s: &Subscriber, tags: &str) -> [String; 8] {
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    [
        cell(&s.email),
        cell(s.name.as_deref().unwrap_or_default()),
        s.status.as_str().to_owned(),
        s.created_at.to_rfc3339(),
        time(s.confirmed_at),
        time(s.unsubscribed_at),
        s.consent_source.clone(),
        cell(tags),
    ]
}

fn csv_error(e: csv::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot write CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_defused() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        for risky in ["+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(risky).starts_with('\''), "{risky:?}");
        }
        assert_eq!(cell("Ada Lovelace"), "Ada Lovelace");
        assert_eq!(cell(""), "");
    }
}
