//! The command line: `serve`, `worker`, `migrate`, `tick`, `doctor`, `editor …`,
//! `subscribers import|export`, `token create`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::{Application, Parts};
use crate::clock::Clock;
use crate::config::{Config, redact_url};
use crate::delivery::Handoff;
use crate::domain::SubscriberEmail;
use crate::domain::password::Password;
use crate::store::{Backend, Db, editors};

mod check;
mod dkim;
mod doctor;
mod healthcheck;
mod subscribers;
mod tokens;

/// Fortnight: a self-hosted newsletter backend for a publication with a steady rhythm.
#[derive(Debug, Parser)]
#[command(name = "fortnight", version, about)]
pub struct Cli {
    /// Settings file (default: ./fortnight.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the site and send mail until stopped.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run delivery workers only (no web server, no scheduler), to add sending capacity.
    Worker,
    /// Run one scheduler tick now (start due issues, mark missed ones, send reminders) and
    /// exit: for running the scheduler from system cron instead of `serve`.
    Tick,
    /// Manage the editors who sign in to the admin.
    #[command(subcommand)]
    Editor(EditorCommand),
    /// Check the installation: version, the time-zone rules read (and their release), the
    /// database, and the cadence's next slots.
    Doctor,
    /// Check the configuration before starting: the database answers (nothing applied), the
    /// SMTP server takes EHLO, STARTTLS and AUTH as configured (no mail sent), the time-zone
    /// rules and the pending migrations; exits non-zero with what to fix.
    Check,
    /// Probe this instance for a container's health check: its `GET /health` answers 200,
    /// or with `--worker`, a delivery worker of this host has a current heartbeat.
    Healthcheck {
        /// Check a `fortnight worker` (which serves no HTTP) instead of a server.
        #[arg(long)]
        worker: bool,
    },
    /// Import or export subscribers as CSV.
    #[command(subcommand)]
    Subscribers(subscribers::SubscribersCommand),
    /// Create API tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(dkim::DkimCommand),
    /// Write a consistent copy of the SQLite database to FILE while the server keeps running
    /// (on PostgreSQL: shows the pg_dump line to use).
    Backup {
        /// Where the copy goes (must not exist).
        file: PathBuf,
    },
    /// Put a backup back as the SQLite database, refused while any Fortnight process holds it
    /// (the database it replaces is kept as `<database>.replaced`).
    Restore {
        /// The backup to put back.
        file: PathBuf,
    },
}

/// `fortnight editor …`
#[derive(Debug, Subcommand)]
pub enum EditorCommand {
    /// Add an editor; the password is asked for (or read from standard input).
    Add {
        /// The editor's sign-in address.
        email: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the editors.
    List,
    /// Remove an editor; their sessions end at once.
    Remove {
        /// The editor's sign-in address.
        email: String,
    },
    /// Set a new password for an editor.
    Password {
        /// The editor's sign-in address.
        email: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// One tick, then one round of the notice queue so that reminders and missed-issue notices
/// go out even when no server runs.
async fn tick(config: Config) -> anyhow::Result<()> {
    let db = open(&config).await?;
    let parts = Parts::assemble(config, db, Clock::System).await?;
    let report = parts
        .scheduler(Handoff::default())
        .run_due(parts.clock.now())
        .await?;
    parts
        .sender()
        .drain_once(&tokio_util::sync::CancellationToken::new())
        .await?;
    println!(
        "tick: {} issue(s) started, {} missed, {} slot reminder(s) sent, {} old delivery row(s) folded",
        report.started.len(),
        report.missed.len(),
        report.reminded.len(),
        report.folded
    );
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(config.log_format);
    match cli.command {
        Command::Serve => {
            tracing::info!(?config, "starting");
            Application::build(config)
                .await?
                .run_until_signalled()
                .await
        }
        Command::Migrate => {
            open(&config).await?;
            println!(
                "migrations applied to {}",
                redact_url(config.database_url.expose_secret())
            );
            Ok(())
        }
        Command::Tick => tick(config).await,
        Command::Worker => {
            // The claimer, the recorder, the heartbeat and steering each need a connection
            // of their own, or a renewal queues behind a claim.
            let db = open_with(&config, config.database_max_connections).await?;
            crate::app::run_workers(Parts::assemble(config, db, Clock::System).await?).await
        }
        Command::Doctor => doctor::run(&config).await,
        Command::Check => check::run(&config).await,
        Command::Healthcheck { worker } => healthcheck::run(&config, worker).await,
        Command::Editor(command) => editor(&open(&config).await?, command).await,
        Command::Subscribers(command) => {
            subscribers::run(&config, &open(&config).await?, command).await
        }
        Command::Token(command) => tokens::run(&open(&config).await?, command).await,
        Command::Dkim(command) => dkim::run(&config, command),
        Command::Backup { file } => backup(&config, &file).await,
        Command::Restore { file } => restore(&config, &file).await,
    }
}

async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use crate::store::backup;
    if Backend::of_url(config.database_url.expose_secret()) == Some(Backend::Postgres) {
        bail!(
            "the database is PostgreSQL: back it up with pg_dump, which takes a consistent \
             snapshot while the server runs:\n  {}",
            backup::pg_dump_line(&config.database_url, file)
        );
    }
    let bytes = backup::backup(&config.database_url, file).await?;
    println!("backup written to {} ({bytes} bytes)", file.display());
    Ok(())
}

async fn restore(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use crate::store::backup;
    if Backend::of_url(config.database_url.expose_secret()) == Some(Backend::Postgres) {
        bail!(
            "the database is PostgreSQL: restore a pg_dump file with pg_restore, with the \
             servers stopped:\n  pg_restore --clean --if-exists --dbname='<database URL>' '{}'",
            file.display()
        );
    }
    let replaced = backup::restore(&config.database_url, file).await?;
    println!(
        "{} restored into {}",
        file.display(),
        redact_url(config.database_url.expose_secret())
    );
    if let Some(aside) = replaced {
        println!("the database it replaced is kept as {}", aside.display());
    }
    Ok(())
}

/// Opens and migrates the configured database, with two connections (a one-off command).
async fn open(config: &Config) -> anyhow::Result<Db> {
    open_with(config, 2).await
}

/// Opens and migrates the configured database with up to `connections` connections.
async fn open_with(config: &Config, connections: u32) -> anyhow::Result<Db> {
    let url = redact_url(config.database_url.expose_secret());
    let db = Db::connect(&config.database_url, connections, config.sqlite_synchronous)
        .await
        .with_context(|| format!("cannot open the database at {url}"))?;
    db.migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

async fn editor(db: &Db, command: EditorCommand) -> anyhow::Result<()> {
    let now = Clock::System.now();
    match command {
        EditorCommand::Add {
            email,
            password_stdin,
        } => {
            let email = parse_email(&email)?;
            let hash = hashed_password(password_stdin).await?;
            if !editors::add(db, &email, &hash, now).await? {
                bail!(
                    "{} is already an editor (use `fortnight editor password` to change the password)",
                    email.as_str()
                );
            }
            println!("editor {} added", email.as_str());
        }
        EditorCommand::List => {
            for editor in editors::list(db).await? {
                let last = editor
                    .last_login_at
                    .map_or("never".to_owned(), |t| t.to_rfc3339());
                println!(
                    "{}\tadded {}\tlast sign-in {last}",
                    editor.email,
                    editor.created_at.to_rfc3339()
                );
            }
        }
        EditorCommand::Remove { email } => {
            let email = parse_email(&email)?;
            if !editors::remove(db, &email).await? {
                bail!("{} is not an editor", email.as_str());
            }
            println!("editor {} removed", email.as_str());
        }
        EditorCommand::Password {
            email,
            password_stdin,
        } => {
            let email = parse_email(&email)?;
            let hash = hashed_password(password_stdin).await?;
            if !editors::set_password(db, &email, &hash, now).await? {
                bail!("{} is not an editor", email.as_str());
            }
            println!("password of {} changed", email.as_str());
        }
    }
    Ok(())
}

fn parse_email(raw: &str) -> anyhow::Result<SubscriberEmail> {
    SubscriberEmail::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))
}

/// Reads a password (prompt, or the first line of standard input), checks it and hashes it.
async fn hashed_password(from_stdin: bool) -> anyhow::Result<String> {
    let raw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    let password = Password::parse(SecretString::from(raw)).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(tokio::task::spawn_blocking(move || password.hash()).await?)
}
