//! `fortnight subscribers import FILE` and `fortnight subscribers export`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::SubscriberStatus;
use crate::domain::{ImportJob, RowProblem};
use crate::store::Db;
use crate::store::import_jobs;
use crate::store::subscriber_admin::Filter;
use crate::transfer::{ExportStream, Importer, check_header, store_file};

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
pub async fn run(config: &Config, db: &Db, command: SubscribersCommand) -> anyhow::Result<()> {
    match command {
        SubscribersCommand::Import { file, consented } => {
            let open = || {
                std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))
            };
            let handle = open()?;
            let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
            check_header(std::io::BufReader::new(handle))
                .map_err(|reason| anyhow::anyhow!("nothing was imported. {reason}"))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "import.csv".into());
            let clock = Clock::System;
            let id = store_file(db, open()?, &name, size, consented, clock.now()).await?;
            eprintln!(
                "import job {id} stored; importing (a running `fortnight serve` resumes it if this stops)"
            );
            // Drawn only on a terminal; hidden when output is redirected.
            let bar = ProgressBar::new(size).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            let importer = Importer::new(
                db.clone(),
                clock,
                config.delivery_lease,
                Arc::new(Notify::new()),
            );
            let stop = CancellationToken::new();
            let show = |done: i64| bar.set_position(done as u64);
            let job = loop {
                // This process runs its own job; if a server took it first, follow it there.
                importer.run_next(Some(id), &stop, &show).await?;
                let job = import_jobs::get(db, id)
                    .await?
                    .context("the import job disappeared")?;
                if !job.state.is_open() {
                    break job;
                }
                show(job.resume_offset);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            };
            bar.finish_and_clear();
            let problems = import_jobs::problems(db, id).await?;
            print_report(&job, &problems);
            match job.error {
                Some(error) => Err(anyhow::anyhow!(error)),
                None => Ok(()),
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
                    tag: None,
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

fn print_report(job: &ImportJob, problems: &[RowProblem]) {
    println!(
        "{} rows read: {} added as active, {} added as pending (confirmation sent), {} added as unsubscribed or bounced, \
         {} duplicates merged, {} invalid",
        job.rows_read,
        job.added_active,
        job.added_pending,
        job.added_inactive,
        job.duplicates,
        job.invalid
    );
    if job.suppressed > 0 {
        println!(
            "{} rows not added: their address is suppressed (it bounced or complained)",
            job.suppressed
        );
    }
    if job.opted_out > 0 {
        println!(
            "{} subscribers already on the list were marked unsubscribed or bounced, as the file says",
            job.opted_out
        );
    }
    for problem in problems {
        println!("  line {}: {}", problem.line, problem.reason);
    }
    if job.invalid as usize > problems.len() {
        println!(
            "  … and {} more invalid rows",
            job.invalid as usize - problems.len()
        );
    }
}
