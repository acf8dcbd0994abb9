//! `fortnight dkim generate --selector s1`: a DKIM signing key and the DNS record for it.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::Config;
use crate::mail::dkim::{self, Algorithm};

/// `fortnight dkim …`
#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Write a new private key (PEM, readable by its owner only) and print the DNS TXT record
    /// that publishes its public half, then the settings that sign with it.
    Generate {
        /// The selector: the DNS name the record goes under, `SELECTOR._domainkey.DOMAIN`.
        #[arg(long)]
        selector: String,
        /// The key type. Publish an Ed25519 key beside an RSA one, not instead of it: not
        /// every receiver verifies Ed25519 yet.
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: Algorithm,
        /// Where to write the key (default: `dkim-SELECTOR.pem` here). An existing file is
        /// never overwritten.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Runs a `dkim` command.
pub fn run(config: &Config, command: DkimCommand) -> anyhow::Result<()> {
    match command {
        DkimCommand::Generate {
            selector,
            algorithm,
            out,
        } => {
            let checked = Config {
                dkim_selector: vec![selector.clone()],
                dkim_private_key: vec![PathBuf::from("key.pem")],
                ..config.clone()
            };
            checked.validate()?;
            let domain = config.dkim_signing_domain();
            let path = out.unwrap_or_else(|| PathBuf::from(format!("dkim-{selector}.pem")));
            let generated = dkim::generate(algorithm)?;
            let mut file = create_private(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            file.write_all(generated.pem.as_bytes())?;
            file.sync_all()?;
            eprintln!("private key written to {}", path.display());
            println!(
                "{selector}._domainkey.{domain}. IN TXT {}",
                dkim::zone_strings(&generated.record)
            );
            eprintln!();
            eprintln!("Publish the record above, then add to fortnight.toml:");
            eprintln!("  dkim_selector = \"{selector}\"");
            eprintln!("  dkim_private_key = \"{}\"", path.display());
            Ok(())
        }
    }
}

/// A new file only its owner can read; an existing one is an error.
fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}
