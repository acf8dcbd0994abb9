//! The claimer: one loop per worker that claims deliveries for its slots. A slot asks only once
//! it holds a rate permit, so what is claimed is what the instance can send now. The claimer
//! keeps a small reserve so that slots do not wait on the database between copies, sized to
//! what the slots use while one claim takes (at most four rows per slot), and gives back rows
//! that have waited too long, whose issue was paused or cancelled, or that arrive while the mail
//! server is away. Every row a worker holds counts as in doubt if the worker dies, so the
//! reserve is kept this small on purpose.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::recorder::Recorder;
use super::worker::Run;
use crate::clock::Clock;
use crate::store::deliveries::{self, Claimed, Cursor, Outcome};

/// A row not handed to a slot within this long goes back (its reader may have left meanwhile).
const STALE: Duration = Duration::from_secs(1);
/// Claims start again from the top of every issue at least this often, whatever happened.
const RESCAN: Duration = Duration::from_secs(10);
/// How often the reserve is looked over when no slot asks.
const SWEEP: Duration = Duration::from_millis(250);
/// How long the claimer waits for the beat to learn of an issue it has just claimed rows of.
const LEARN: Duration = Duration::from_secs(2);

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

    /// Rows to keep in hand: what the slots use in two claims' time, at most four per slot.
    fn reserve(&self, slots: usize) -> usize {
        ((self.rate * self.latency * 2.0).ceil() as usize).min(4 * slots)
    }
}

/// Serves the slots until they are all gone, then gives back what it still holds.
pub(super) async fn run(run: &Run, mut asks: mpsc::Receiver<Ask>, recorder: Recorder) {
    let worker = &run.worker;
    let slots = worker.config.send_concurrency;
    let mut held: VecDeque<(Claimed, Instant)> = VecDeque::new();
    let mut waiting: Vec<Ask> = Vec::new();
    let mut cursors: HashMap<i64, Cursor> = HashMap::new();
    let mut pace = Pace::new();
    let mut rescanned = Instant::now();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ask = asks.recv() => match ask {
                Some(ask) => waiting.push(ask),
                None => break,
            },
            _ = sweep.tick() => {}
        }
        while let Ok(ask) = asks.try_recv() {
            waiting.push(ask);
        }
        if run.lost.swap(false, Ordering::AcqRel) {
            // Held under a registration that lapsed: others may be sending these now.
            held.clear();
            cursors.clear();
        }
        if run.rescan.swap(false, Ordering::AcqRel) || rescanned.elapsed() >= RESCAN {
            cursors.clear();
            rescanned = Instant::now();
        }
        give_back(run, &mut held, &recorder).await;
        serve(&mut waiting, &mut held, &mut pace);
        let wanted = waiting.len() + pace.reserve(slots).saturating_sub(held.len());
        if wanted > 0 && run.away_for().is_none() {
            let started = Instant::now();
            let claim = deliveries::claim(
                &worker.db,
                run.holder(),
                worker.clock.now(),
                Clock::System.now(),
                wanted as i64,
                &mut cursors,
            )
            .await;
            match claim {
                Ok(claim) => {
                    pace.claimed(started.elapsed());
                    learn_issues(run, &claim.rows).await;
                    {
                        let mut drained = run.drained.lock().unwrap_or_else(|e| e.into_inner());
                        for row in &claim.rows {
                            drained.remove(&row.issue_id);
                        }
                        drained.extend(claim.drained.iter().copied());
                    }
                    held.extend(claim.rows.into_iter().map(|row| (row, Instant::now())));
                    serve(&mut waiting, &mut held, &mut pace);
                    for issue_id in claim.drained {
                        if let Err(e) = worker.complete(issue_id).await {
                            tracing::warn!(error = %e, "could not finish a send; will retry");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim deliveries; will retry"),
            }
        }
        // Whoever still waits: nothing is due now.
        for ask in waiting.drain(..) {
            let _ = ask.send(None);
        }
    }
    let at = worker.clock.now();
    for (row, _) in held {
        recorder.submit(row, Outcome::Released { at }).await;
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

/// Makes sure the gate knows the issues of freshly claimed rows: a send that has just started
/// is sendable in the database before the beat has read it.
async fn learn_issues(run: &Run, rows: &[Claimed]) {
    let unknown: HashSet<i64> = rows
        .iter()
        .map(|r| r.issue_id)
        .filter(|id| !run.gate.sendable(*id))
        .collect();
    if unknown.is_empty() {
        return;
    }
    let version = run.gate.version();
    run.refresh.notify_one();
    let _ = tokio::time::timeout(LEARN, run.gate.newer_than(version)).await;
}
