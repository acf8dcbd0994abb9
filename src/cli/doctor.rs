//! `fortnight doctor`: what this installation runs on, for an operator to check at a glance:
//! the version, the time-zone rules it reads (and whether they are out of date), the database,
//! and the cadence's next slots as the server computes them.

use secrecy::ExposeSecret;

use crate::config::{Config, redact_url};
use crate::domain::zone;
use crate::render::local_time;
use crate::store::cadence;

/// How many coming slots the check lists.
const SLOTS: usize = 4;

/// Prints the report; fails when the database cannot be opened.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    println!("fortnight {}", env!("CARGO_PKG_VERSION"));
    let tzdata = zone::tzdata();
    println!("time zones: {tzdata}");
    if let Some(warning) = tzdata.stale() {
        println!("warning: {warning}");
    }
    let db = super::open(config).await?;
    println!(
        "database: {} (migrations applied)",
        redact_url(config.database_url.expose_secret())
    );
    let cadence = cadence::load(&db).await?;
    let now = chrono::Utc::now();
    println!("cadence: {}", cadence.rule_at(now).describe());
    for at in cadence.slots_after(now, SLOTS) {
        println!(
            "next slot: {}  {}",
            at.format("%Y-%m-%dT%H:%M:%SZ"),
            local_time(at, cadence.zone_at(at))
        );
    }
    Ok(())
}
