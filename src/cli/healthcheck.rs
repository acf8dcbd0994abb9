//! `fortnight healthcheck`: the container's health probe, made by the binary itself (slim
//! images have no curl). By default it asks this instance's `GET /health` (the configured
//! `bind`, with an unspecified address asked on loopback); with `--worker` it looks for a
//! delivery worker of this host whose heartbeat is current, since a worker serves no HTTP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;

use crate::config::Config;
use crate::store::{Db, delivery_workers};

/// How long the probe waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the probe; an error (exit status 1) says what is wrong.
pub async fn run(config: &Config, worker: bool) -> anyhow::Result<()> {
    if worker {
        return worker_alive(config).await;
    }
    let url = format!("http://{}/health", local(config.bind));
    let response = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    println!("{url}: {body}");
    Ok(())
}

/// Where to reach a server bound to `bind` from the same host.
fn local(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bind.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), bind.port())
        }
        _ => bind,
    }
}

async fn worker_alive(config: &Config) -> anyhow::Result<()> {
    let host = lettre::transport::smtp::extension::ClientId::default().to_string();
    let db = tokio::time::timeout(
        TIMEOUT,
        Db::connect(&config.database_url, 1, config.sqlite_synchronous),
    )
    .await
    .context("the database did not answer")?
    .context("cannot open the database")?;
    let live = tokio::time::timeout(TIMEOUT, delivery_workers::live_on(&db, &host, Utc::now()))
        .await
        .context("the database did not answer")??;
    db.close().await;
    if live == 0 {
        bail!("no delivery worker of {host} has a current heartbeat");
    }
    println!("{live} delivery worker(s) of {host} alive");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_is_asked_on_loopback() {
        assert_eq!(
            local("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            local("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            local("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }
}
