//! The recorder: group commit of delivery outcomes, and of the claimer's claims. Every slot
//! hands over each outcome as soon as it has it; one loop records whatever has gathered
//! meanwhile in a single transaction, so a copy is counted within one commit of the relay's
//! answer, and the database writes one transaction for many copies. A claim the claimer asks
//! for goes into the same round, so recording and claiming cost one commit (and, on SQLite
//! with `synchronous = full`, one sync) between them. A failed commit is tried again until it
//! succeeds: the slots wait for it before they start more copies, so an outage of the database
//! stops the sending instead of widening what a crash could double.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::worker::Run;
use crate::clock::Clock;
use crate::store::deliveries::{Claim, Claimed, Cursor, Outcome};
use crate::store::delivery_ledger::{self, Round};
use crate::store::{StoreError, is_transient};

/// Most outcomes in one transaction.
const MAX_BATCH: usize = 1024;

type Item = (Claimed, Outcome, oneshot::Sender<()>);

/// A claim the claimer asks for: how many rows, of which issues, read from its positions in
/// them. The answer comes once the claim is durable, with the positions moved.
pub(super) struct ClaimRequest {
    /// The registration the claimer asked under: a claim that waited while the lease was
    /// renewed anew is dropped, not made under the new one.
    pub holder: i64,
    pub want: i64,
    pub issues: Vec<i64>,
    pub cursors: HashMap<i64, Cursor>,
    pub reply: oneshot::Sender<(Result<Claim, StoreError>, HashMap<i64, Cursor>)>,
}

/// A handle to the recorder; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    items: mpsc::Sender<Item>,
    claims: mpsc::Sender<ClaimRequest>,
}

impl Recorder {
    pub(super) fn new(items: mpsc::Sender<Item>, claims: mpsc::Sender<ClaimRequest>) -> Recorder {
        Recorder { items, claims }
    }

    /// Hands over an outcome; the receiver completes once it is committed.
    pub async fn submit(&self, row: Claimed, outcome: Outcome) -> oneshot::Receiver<()> {
        let (done, recorded) = oneshot::channel();
        let _ = self.items.send((row, outcome, done)).await;
        recorded
    }

    /// Claims rows in the next round; gives back the claim (once durable) and the positions.
    pub(super) async fn claim(
        &self,
        holder: i64,
        want: i64,
        issues: Vec<i64>,
        cursors: HashMap<i64, Cursor>,
    ) -> (Result<Claim, StoreError>, HashMap<i64, Cursor>) {
        let (reply, answer) = oneshot::channel();
        let request = ClaimRequest {
            holder,
            want,
            issues,
            cursors,
            reply,
        };
        let stopped = || StoreError::Unavailable("the delivery recorder has stopped".into());
        if let Err(refused) = self.claims.send(request).await {
            return (Err(stopped()), refused.0.cursors);
        }
        answer
            .await
            .unwrap_or_else(|_| (Err(stopped()), HashMap::new()))
    }
}

/// Records until every handle is gone and everything handed over is committed.
pub(super) async fn run(
    run: &Run,
    mut items: mpsc::Receiver<Item>,
    mut claims: mpsc::Receiver<ClaimRequest>,
) {
    let worker = &run.worker;
    let threshold = worker.config.bounce_threshold as i32;
    let deferring = worker.db.deferring();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let (mut items_open, mut claims_open) = (true, true);
    // The last round's sync, awaited before the round after next only where there is a log
    // to sync (SQLite with `full`); elsewhere it answers at once.
    let trailing_sync = worker.db.syncs_log();
    let mut syncing: Option<tokio::task::JoinHandle<()>> = None;
    while items_open {
        let mut asked = None;
        tokio::select! {
            n = items.recv_many(&mut batch, MAX_BATCH) => items_open = n > 0,
            request = claims.recv(), if claims_open => match request {
                Some(request) => asked = Some(request),
                None => claims_open = false,
            },
        }
        // Whatever else has gathered joins this round.
        while batch.len() < MAX_BATCH
            && let Ok(item) = items.try_recv()
        {
            batch.push(item);
        }
        if asked.is_none() && claims_open {
            asked = claims.try_recv().ok();
        }
        // A claim asked for before the lease came into question (a round that kept failing
        // while the database was away), or under a registration since replaced, is not made:
        // it is answered with nothing, and the claimer asks again when it may.
        if let Some(request) =
            asked.take_if(|r| !run.gate.lease_valid() || r.holder != run.holder())
        {
            let _ = request.reply.send((Ok(Claim::default()), request.cursors));
        }
        if batch.is_empty() && asked.is_none() {
            continue;
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (row, outcome, reply) in batch.drain(..) {
            outcomes.push((row, outcome));
            replies.push(reply);
        }
        let mut claimed = None;
        let mut wait = Duration::from_millis(50);
        loop {
            let mut cursors = asked
                .as_mut()
                .map(|r| std::mem::take(&mut r.cursors))
                .unwrap_or_default();
            let round = Round {
                outcomes: &outcomes,
                want: asked.as_ref().map_or(0, |r| r.want),
                holder: asked.as_ref().map_or_else(|| run.holder(), |r| r.holder),
                issues: asked.as_ref().map_or(&[], |r| r.issues.as_slice()),
                now: worker.clock.now(),
                alive_at: Clock::System.now(),
                bounce_threshold: threshold,
            };
            let result = delivery_ledger::settle(&deferring, round, &mut cursors).await;
            match (result, asked.take()) {
                (Ok(claim), request) => {
                    claimed = request.map(|r| (r.reply, Ok(claim), cursors));
                    break;
                }
                // The claim fails with the round: the claimer hears of it at once, and the
                // outcomes are tried again on their own. A round PostgreSQL aborted as a
                // deadlock or serialization failure surely claimed nothing: the claim just
                // comes back empty; after any other failure it may have committed, and the
                // claimer registers anew.
                (Err(e), Some(request)) => {
                    let aborted = matches!(&e, StoreError::Database(e) if is_transient(e));
                    let answer = if aborted {
                        Ok(Claim::default())
                    } else {
                        Err(e)
                    };
                    let _ = request.reply.send((answer, cursors));
                    if outcomes.is_empty() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
                (Err(e), None) => {
                    tracing::error!(error = %e, n = outcomes.len(), "delivery outcomes not recorded yet; will retry");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        // A slot waits for its copy's record before its next SMTP transaction, and the claimer
        // for its claim before it hands the rows out: durable first. The next round is
        // gathered and committed meanwhile; on SQLite with `full`, the round after next waits
        // for this sync, so the rounds grow to what gathers during a sync instead of more,
        // smaller commits that each write their pages to the log again and leave the syncs
        // behind them. A round that committed nothing for anyone (a claim that failed alone)
        // has nothing to sync.
        if !replies.is_empty() || claimed.is_some() {
            let db = worker.db.clone();
            let previous = syncing.replace(tokio::spawn(async move {
                db.sync().await;
                for reply in replies {
                    let _ = reply.send(());
                }
                if let Some((reply, claim, cursors)) = claimed {
                    let _ = reply.send((claim, cursors));
                }
            }));
            if let Some(previous) = previous.filter(|_| trailing_sync) {
                let _ = previous.await;
            }
        }
        if outcomes.is_empty() {
            continue;
        }
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
    // Everything handed over is durable before the recorder is done.
    if let Some(last) = syncing {
        let _ = last.await;
    }
}
