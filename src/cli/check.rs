//! `fortnight check`: the operator's pre-flight. Reads the configuration (secrets redacted),
//! connects to the database (applying nothing) and to the SMTP server (EHLO, STARTTLS and AUTH
//! as configured, no mail sent), and reports the time-zone rules and the pending migrations.
//! Every problem is one line saying what to fix; any makes it exit non-zero.

use secrecy::ExposeSecret;

use crate::config::{Config, redact_url};
use crate::domain::zone;
use crate::mail::Mailer;
use crate::store::Db;

/// Runs the checks, printing each; an error when any failed.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut problems: Vec<String> = Vec::new();
    println!("fortnight {}", env!("CARGO_PKG_VERSION"));
    println!("configuration: read (base_url {})", config.base());
    let secrets = [
        ("secret_key", config.secret_key.is_some()),
        ("metrics_token", config.metrics_token.is_some()),
    ];
    for (key, set) in secrets {
        println!("  {key}: {}", if set { "set (not shown)" } else { "unset" });
    }

    let tzdata = zone::tzdata();
    println!("time zones: {tzdata}");
    if let Some(warning) = tzdata.stale() {
        println!("  warning: {warning}");
    }

    let url = redact_url(config.database_url.expose_secret());
    match Db::connect(&config.database_url, 1, config.sqlite_synchronous).await {
        Ok(db) => match db.ping().await {
            Ok(()) => {
                println!("database: {url} answers");
                match db.pending_migrations().await {
                    Ok(pending) if pending.is_empty() => println!("  migrations: all applied"),
                    Ok(pending) => {
                        println!(
                            "  migrations: {} pending (applied by `fortnight migrate` or at start):",
                            pending.len()
                        );
                        for (version, description) in pending {
                            println!("    {version} {description}");
                        }
                    }
                    Err(e) => problems.push(format!(
                        "database: cannot read its migrations ({e}); check that {url} is Fortnight's database"
                    )),
                }
            }
            Err(e) => problems.push(format!(
                "database: {url} does not answer ({e}); fix `database_url` or start the database"
            )),
        },
        Err(e) => problems.push(format!(
            "database: cannot open {url} ({e}); fix `database_url`"
        )),
    }

    match Mailer::with_connections(config, 1) {
        Ok(mailer) => match mailer.probe().await {
            None => println!(
                "mail: written to {} (no `smtp_url`: nothing is sent)",
                config.outbox_dir.display()
            ),
            Some(Ok(server)) => println!("mail: SMTP {server}: connected, nothing sent"),
            Some(Err(e)) => {
                let shown = config
                    .smtp_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret()))
                    .unwrap_or_default();
                problems.push(format!(
                    "mail: {shown} refused or failed ({e}); fix `smtp_url` (host, port, TLS, user and password)"
                ));
            }
        },
        Err(e) => problems.push(format!("mail: {e}")),
    }

    if problems.is_empty() {
        println!("check: ok");
        return Ok(());
    }
    for problem in &problems {
        println!("fix: {problem}");
    }
    anyhow::bail!("{} problem(s) found", problems.len())
}
