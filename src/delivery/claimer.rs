//! The claimer: one loop per worker that claims deliveries for its slots, of the issues the gate
//! knows to be sendable. A slot asks only once it holds a rate permit, so what is claimed is what
//! the instance can send now. The claimer keeps a small reserve so that slots do not wait on the
//! database between copies, sized to what the slots use while a claim takes (at most four rows
//! per slot), serves slots from it while the next claim is under way, and gives back rows that
//! have waited too long, whose issue was paused or cancelled, or that arrive while the mail
//! server is away. Every row a worker holds counts as in doubt if the worker dies, so the
//! reserve is kept this small on purpose.
//!
//! Claims read each issue from the position the worker reached in it (see [`Cursor`]),
//! starting again from the top when rows may have become claimable behind it (a worker died,
//! rows were released, steering changed) and every few seconds regardless. The claim is made
//! in the [recorder](super::recorder)'s next round, in the commit that records the outcomes
//! gathered meanwhile, and comes back once that commit is durable.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::recorder::Recorder;
use super::worker::Run;
use crate::store::StoreError;
use crate::store::deliveries::{Claim, Claimed, Cursor, Outcome};

/// A row not handed to a slot within this long goes back (its reader may have left meanwhile).
const STALE: Duration = Duration::from_secs(1);
/// Claims start again from the top of every issue at least this often, whatever happened.
const RESCAN: Duration = Duration::from_secs(10);
/// How often the reserve is looked over when no slot asks.
const SWEEP: Duration = Duration::from_millis(250);
/// How long after a failed claim the next may start.
const BACK_OFF: Duration = Duration::from_millis(250);

type Ask = oneshot::Sender<Option<Claimed>>;

/// A slot's handle: asks the claimer for one row.
pub struct Claims {
    asks: mpsc::Sender<Ask>,
}

impl Claims {
    pub(super) fn new(asks: mpsc::Sender<Ask>) -> Claims {
        Claims { asks }
    }

    /// The next row to send, or `None` when nothing is due now.
    pub async fn next(&self) -> Option<Claimed> {
        let (reply, row) = oneshot::channel();
        self.asks.send(reply).await.ok()?;
        row.await.ok().flatten()
    }
}

/// How fast rows are used and how long a claim takes, to size the reserve.
struct Pace {
    rate: f64,
    latency: f64,
    used: usize,
    since: Instant,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            rate: 0.0,
            latency: 0.0,
            used: 0,
            since: Instant::now(),
        }
    }

    fn claimed(&mut self, took: Duration) {
        self.latency = 0.7 * self.latency + 0.3 * took.as_secs_f64();
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed >= 0.05 {
            self.rate = 0.7 * self.rate + 0.3 * (self.used as f64 / elapsed);
            self.used = 0;
            self.since = Instant::now();
        }
    }

    /// Rows to keep in hand: while rows are being used, what the slots use in two claims'
    /// time, at least one per slot and at most four.
    fn reserve(&self, slots: usize) -> usize {
        if self.rate < 1.0 {
            return 0;
        }
        ((self.rate * self.latency * 2.0).ceil() as usize).clamp(slots, 4 * slots)
    }
}

/// What a claim under way gives back: its result, the positions it took, when it started and
/// how many rows it asked for.
type ClaimResult = (
    Result<Claim, StoreError>,
    HashMap<i64, Cursor>,
    Instant,
    usize,
);

/// A claim under way.
type Pending<'a> = Pin<Box<dyn Future<Output = ClaimResult> + Send + 'a>>;

/// Serves the slots until they are all gone, then gives back what it still holds.
pub(super) async fn run(run: &Run, mut asks: mpsc::Receiver<Ask>, recorder: Recorder) {
    let worker = &run.worker;
    let slots = worker.config.send_concurrency;
    let mut held: VecDeque<(Claimed, Instant)> = VecDeque::new();
    let mut waiting: Vec<Ask> = Vec::new();
    let mut cursors: Option<HashMap<i64, Cursor>> = Some(HashMap::new());
    let mut pending: Option<Pending<'_>> = None;
    let mut pace = Pace::new();
    let mut rescanned = Instant::now();
    let mut next_claim = Instant::now();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open || pending.is_some() {
        tokio::select! {
            ask = asks.recv(), if open => match ask {
                Some(ask) => waiting.push(ask),
                None => open = false,
            },
            (claim, positions, started, wanted) = async { pending.as_mut().expect("a claim").await }, if pending.is_some() => {
                pending = None;
                cursors = Some(positions);
                let short = match claim {
                    Ok(claim) => {
                        pace.claimed(started.elapsed());
                        let short = claim.rows.len() < wanted;
                        took(run, &mut held, claim).await;
                        short
                    }
                    Err(e) => {
                        // The claim may have committed without the worker learning its rows:
                        // it registers anew, and those rows come back when the old lease ends.
                        tracing::warn!(error = %e, "could not claim deliveries; will retry");
                        run.rotate.store(true, Ordering::Release);
                        next_claim = Instant::now() + BACK_OFF;
                        true
                    }
                };
                if short {
                    // Nothing more is due now: whoever the claim could not serve is told so,
                    // rather than asking the database again at once.
                    serve(&mut waiting, &mut held, &mut pace);
                    for ask in waiting.drain(..) {
                        let _ = ask.send(None);
                    }
                }
            }
            _ = sweep.tick() => {}
        }
        while let Ok(ask) = asks.try_recv() {
            waiting.push(ask);
        }
        if let Some(positions) = cursors.as_mut() {
            if run.lost.swap(false, Ordering::AcqRel) {
                // Held under a registration that lapsed: others may be sending these now.
                held.clear();
                positions.clear();
            }
            if run.rescan.swap(false, Ordering::AcqRel) || rescanned.elapsed() >= RESCAN {
                positions.clear();
                rescanned = Instant::now();
            }
        }
        give_back(run, &mut held, &recorder).await;
        serve(&mut waiting, &mut held, &mut pace);
        let reserve = pace.reserve(slots);
        // Claim when slots wait, or when the reserve is down to half (so a claim brings half a
        // reserve at least, not one row at a time).
        let low = !waiting.is_empty() || held.len() * 2 < reserve;
        let issues = run.gate.sendable_issues();
        // Nothing is claimed that could not be sent now: not under a lease in question, not
        // while the server is away, not right after a failure.
        let can =
            run.gate.lease_valid() && run.away_for().is_none() && Instant::now() >= next_claim;
        if open && pending.is_none() && low && !issues.is_empty() && can {
            let wanted = (waiting.len() + reserve).saturating_sub(held.len()).max(1);
            let positions = cursors.take().expect("no claim under way");
            let (recorder, holder) = (recorder.clone(), run.holder());
            pending = Some(Box::pin(async move {
                let started = Instant::now();
                let (claim, positions) = recorder
                    .claim(holder, wanted as i64, issues, positions)
                    .await;
                (claim, positions, started, wanted)
            }));
        }
        if pending.is_none() {
            // Whoever still waits: nothing is due now.
            for ask in waiting.drain(..) {
                let _ = ask.send(None);
            }
        }
    }
    let at = worker.clock.now();
    for (row, _) in held {
        recorder.submit(row, Outcome::Released { at }).await;
    }
}

/// Takes the rows of a claim into the reserve, and finishes the sends that found nothing due.
async fn took(run: &Run, held: &mut VecDeque<(Claimed, Instant)>, claim: Claim) {
    {
        let mut drained = run.drained.lock().unwrap_or_else(|e| e.into_inner());
        for row in &claim.rows {
            drained.remove(&row.issue_id);
        }
        drained.extend(claim.drained.iter().copied());
    }
    held.extend(claim.rows.into_iter().map(|row| (row, Instant::now())));
    for issue_id in claim.drained {
        if let Err(e) = run.worker.complete(issue_id).await {
            tracing::warn!(error = %e, "could not finish a send; will retry");
        }
    }
}

/// Hands held rows to waiting slots, oldest first.
fn serve(waiting: &mut Vec<Ask>, held: &mut VecDeque<(Claimed, Instant)>, pace: &mut Pace) {
    while !waiting.is_empty() {
        let Some((row, since)) = held.pop_front() else {
            return;
        };
        let ask = waiting.remove(0);
        match ask.send(Some(row)) {
            Ok(()) => pace.used += 1,
            Err(row) => held.push_front((row.expect("sent a row"), since)),
        }
    }
}

/// Gives back the held rows that should not wait: stale ones, those of issues that may not go
/// out now, and all of them while the mail server is away.
async fn give_back(run: &Run, held: &mut VecDeque<(Claimed, Instant)>, recorder: &Recorder) {
    let away = run.away_for().is_some();
    let mut kept = VecDeque::with_capacity(held.len());
    let mut released = false;
    for (row, since) in held.drain(..) {
        if away || since.elapsed() >= STALE || !run.gate.sendable(row.issue_id) {
            let at = run.worker.clock.now();
            recorder.submit(row, Outcome::Released { at }).await;
            released = true;
        } else {
            kept.push_back((row, since));
        }
    }
    *held = kept;
    if released {
        run.rescan.store(true, Ordering::Release);
    }
}
