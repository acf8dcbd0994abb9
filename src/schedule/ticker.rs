//! The UTC ticker: tokio-cron-scheduler calls [`Scheduler::run_due`] every `tick_interval`.
//! Cadence arithmetic stays in our code (the crate fixes a job's UTC offset at creation and
//! cannot say "every other week"); the crate only keeps time.

use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler};

use super::Scheduler;
use crate::clock::Clock;

/// A running ticker; stop it with [`Ticker::stop`].
pub struct Ticker {
    jobs: JobScheduler,
}

impl Ticker {
    /// Starts ticking every `interval`, reading the time from `clock`. A failed tick (the
    /// database away) is logged; the next one tries again.
    pub async fn start(
        scheduler: Scheduler,
        clock: Clock,
        interval: Duration,
    ) -> anyhow::Result<Ticker> {
        let jobs = JobScheduler::new().await?;
        let job = Job::new_repeated_async(interval, move |_, _| {
            let scheduler = scheduler.clone();
            let now = clock.now();
            Box::pin(async move {
                if let Err(e) = scheduler.run_due(now).await {
                    tracing::error!(error = %e, "scheduler tick failed; the next tick tries again");
                }
            })
        })?;
        jobs.add(job).await?;
        jobs.start().await?;
        Ok(Ticker { jobs })
    }

    /// Stops ticking; a tick in progress finishes on its own.
    pub async fn stop(mut self) {
        if let Err(e) = self.jobs.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not stop cleanly");
        }
    }
}
