//! The command line: `fortnight serve`, `fortnight migrate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::Application;
use crate::config::{Config, redact_url};
use crate::store::Db;

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
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            tracing::info!(?config, "starting");
            Application::build(config)
                .await?
                .run_until_signalled()
                .await
        }
        Command::Migrate => {
            let url = redact_url(config.database_url.expose_secret());
            let db = Db::connect(&config.database_url, 1)
                .await
                .with_context(|| format!("cannot open the database at {url}"))?;
            db.migrate()
                .await
                .context("cannot apply database migrations")?;
            println!("migrations applied to {url}");
            Ok(())
        }
    }
}
