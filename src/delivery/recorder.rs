//! The recorder: group commit of delivery outcomes. Every slot hands over each outcome as soon
//! as it has it; one loop records whatever has gathered meanwhile in a single transaction, so a
//! copy is counted within one commit of the relay's answer, and the database writes one
//! transaction for many copies. A failed commit is tried again until it succeeds: the slots
//! wait for it before they start more copies, so an outage of the database stops the sending
//! instead of widening what a crash could double.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::worker::Run;
use crate::clock::Clock;
use crate::store::deliveries::{Claimed, Outcome};
use crate::store::delivery_ledger::{self, Round};

/// Most outcomes in one transaction.
const MAX_BATCH: usize = 1024;

type Item = (Claimed, Outcome, oneshot::Sender<()>);

/// A handle to the recorder; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    items: mpsc::Sender<Item>,
}

impl Recorder {
    pub(super) fn new(items: mpsc::Sender<Item>) -> Recorder {
        Recorder { items }
    }

    /// Hands over an outcome; the receiver completes once it is committed.
    pub async fn submit(&self, row: Claimed, outcome: Outcome) -> oneshot::Receiver<()> {
        let (done, recorded) = oneshot::channel();
        let _ = self.items.send((row, outcome, done)).await;
        recorded
    }
}

/// Records until every handle is gone and everything handed over is committed.
pub(super) async fn run(run: &Run, mut items: mpsc::Receiver<Item>) {
    let worker = &run.worker;
    let threshold = worker.config.bounce_threshold as i32;
    let deferring = worker.db.deferring();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while items.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (row, outcome, reply) in batch.drain(..) {
            outcomes.push((row, outcome));
            replies.push(reply);
        }
        let mut wait = Duration::from_millis(50);
        loop {
            let round = Round {
                outcomes: &outcomes,
                want: 0,
                holder: run.holder(),
                issues: &[],
                now: worker.clock.now(),
                alive_at: Clock::System.now(),
                bounce_threshold: threshold,
            };
            let Err(e) = delivery_ledger::settle(&deferring, round, &mut Default::default()).await
            else {
                break;
            };
            tracing::error!(error = %e, n = outcomes.len(), "delivery outcomes not recorded yet; will retry");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        // A slot waits for its copy's record before its next SMTP transaction: durable first.
        // The next batch is gathered and committed meanwhile.
        let db = worker.db.clone();
        tokio::spawn(async move {
            db.sync().await;
            for reply in replies {
                let _ = reply.send(());
            }
        });
        crate::telemetry::record_deliveries(outcomes.iter().map(|(_, o)| o));
        if outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Released { .. }))
        {
            run.rescan.store(true, Ordering::Release);
        }
        let touched: HashSet<i64> = outcomes.iter().map(|(row, _)| row.issue_id).collect();
        let finishing: Vec<i64> = {
            let drained = run.drained.lock().unwrap_or_else(|e| e.into_inner());
            touched
                .into_iter()
                .filter(|id| drained.contains(id))
                .collect()
        };
        for issue_id in finishing {
            if let Err(e) = worker.complete(issue_id).await {
                tracing::warn!(error = %e, "could not finish a send; will retry");
            }
        }
    }
}
