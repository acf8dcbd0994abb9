//! `fortnight subscribers import FILE` and `fortnight subscribers export`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::SubscriberStatus;
use crate::store::Db;
use crate::store::subscriber_admin::Filter;
use crate::transfer::{ExportStream, ImportError, ImportOptions, ImportReport, import};

/// `fortnight subscribers …`
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Import a CSV file (header naming `email`, optionally `name`, `status`, `created`).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Everyone in the file already agreed to receive the publication: add them as active.
        /// Without this they are added as pending and sent a confirmation email.
        #[arg(long)]
        consented: bool,
    },
    /// Write the list (or part of it) as CSV.
    Export {
        /// Only subscribers with this status (pending, active, unsubscribed, bounced).
        #[arg(long)]
        status: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs a `subscribers` command.
pub async fn run(_config: &Config, db: &Db, command: SubscribersCommand) -> anyhow::Result<()> {
    match command {
        SubscribersCommand::Import { file, consented } => {
            let handle = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
            // Drawn only on a terminal; hidden when output is redirected.
            let bar = ProgressBar::new(size).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            let reader = bar.wrap_read(handle);
            let options = ImportOptions {
                consented,
                now: Clock::System.now(),
            };
            let result = import(db, reader, options).await;
            bar.finish_and_clear();
            match result {
                Ok(report) => {
                    print_report(&report);
                    Ok(())
                }
                Err(ImportError::Store { report, error }) => {
                    print_report(&report);
                    Err(anyhow::anyhow!("the import stopped: {error}"))
                }
                Err(e) => Err(e.into()),
            }
        }
        SubscribersCommand::Export { status, output } => {
            let status = status
                .map(|s| {
                    SubscriberStatus::try_from(s.to_lowercase()).map_err(|e| anyhow::anyhow!(e))
                })
                .transpose()?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut export = ExportStream::new(
                db.clone(),
                Filter {
                    status,
                    search: None,
                },
            );
            // On a terminal a spinner counts the rows (stderr, so a piped export stays clean).
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} subscribers written")
                    .expect("valid template"),
            );
            while let Some(chunk) = export.next_chunk().await? {
                out.write_all(&chunk)?;
                bar.set_position(export.rows());
            }
            out.flush()?;
            bar.finish_and_clear();
            eprintln!("{} subscribers exported", export.rows());
            Ok(())
        }
    }
}

fn print_report(report: &ImportReport) {
    println!(
        "{} rows read: {} added as active, {} added as pending (confirmation sent), {} added as unsubscribed or bounced, \
         {} duplicates merged, {} invalid",
        report.rows,
        report.added_active,
        report.added_pending,
        report.added_inactive,
        report.duplicates,
        report.invalid
    );
    if report.opted_out > 0 {
        println!(
            "{} subscribers already on the list were marked unsubscribed or bounced, as the file says",
            report.opted_out
        );
    }
    for problem in &report.problems {
        println!("  line {}: {}", problem.line, problem.reason);
    }
    if report.invalid as usize > report.problems.len() {
        println!(
            "  … and {} more invalid rows",
            report.invalid as usize - report.problems.len()
        );
    }
}
