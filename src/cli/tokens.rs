//! `fortnight token create NAME`: an API token for scripts and deployments, without the admin.

use clap::Subcommand;

use crate::clock::Clock;
use crate::store::{Db, api_tokens};

/// `fortnight token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it on standard output. It is shown only this once and
    /// stored as a hash; revoke it in the admin (API tokens).
    Create {
        /// What the token is for, as the admin's token list shows it (1 to 100 characters).
        name: String,
    },
}

/// Runs a `token` command.
pub async fn run(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name } => {
            let name =
                crate::domain::token::token_name(&name).map_err(|why| anyhow::anyhow!("{why}"))?;
            let (_, token) = api_tokens::create(db, name, None, Clock::System.now()).await?;
            println!("{token}");
            eprintln!("API token {name:?} created; it is not shown again.");
            Ok(())
        }
    }
}
