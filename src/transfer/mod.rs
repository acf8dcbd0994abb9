//! Subscribers in and out as CSV, streamed both ways: the admin's upload and download and the
//! `fortnight subscribers import|export` commands share this code.

mod export;
mod import;

pub use export::{ExportStream, HEADER as EXPORT_HEADER};
pub use import::{ImportOptions, Importer, Outcome, check_header, store_file};
