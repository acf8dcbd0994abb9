//! The beat: one loop per worker that keeps its lease alive and applies steering.
//!
//! - Every quarter of `delivery_lease` it renews the worker's row. The gate lets copies start
//!   only until the last renewal's start plus the lease less a sixth of it, so a worker that
//!   cannot reach the database stops sending before anyone may take its rows.
//! - A tenth of a second apart (at once when this instance steers), it reads the steering
//!   counter; when it moved, it reads which issues may go out, updates the gate, waits until no
//!   copy is still starting on what the gate knew before, and records that it has seen the
//!   change. Pause and cancel answer once every live worker has.
//! - It notices workers whose lease ran out, so that claims look again at the rows they held.
//!
//! Lease times are wall-clock time, not the business clock: they measure whether a process
//! lives. Instances must keep their clocks in step (NTP) well within a sixth of the lease.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::worker::{Run, Worker};
use crate::clock::Clock;
use crate::store::delivery_workers as workers;

/// How often steering and dead workers are looked for.
const POLL: Duration = Duration::from_millis(100);
/// Workers whose lease ran out this long ago are forgotten.
const FORGET_AFTER: chrono::Duration = chrono::Duration::days(1);

/// A registration: the worker's id and until when its lease is certainly valid.
pub(super) struct Registration {
    pub id: i64,
    pub valid_until: Instant,
}

/// How long after a renewal began the worker may still start copies.
fn validity(lease: Duration) -> Duration {
    lease - lease / 6
}

/// Registers the worker, trying again while the database is unreachable; `None` if told to
/// stop first.
pub(super) async fn register(
    worker: &Worker,
    shutdown: &CancellationToken,
) -> Option<Registration> {
    let lease = worker.config.delivery_lease;
    let host = lettre::transport::smtp::extension::ClientId::default().to_string();
    loop {
        let started = Instant::now();
        let now = Clock::System.now();
        let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        match workers::register(&worker.db, &host, std::process::id().into(), now, expires).await {
            Ok(id) => {
                tracing::info!(worker = id, "delivery worker registered");
                return Some(Registration {
                    id,
                    valid_until: started + validity(lease),
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot register the delivery worker; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(worker.config.mail_retry_base) => {}
        }
    }
}

/// Runs until `finished` (everything recorded).
pub(super) async fn run(run: &Run, finished: &CancellationToken) {
    let worker = &run.worker;
    let lease = worker.config.delivery_lease;
    let renew_every = lease / 4;
    let poll = POLL.min(lease / 10);
    // The steering change whose sendable set the gate holds; the one whose older passes have
    // all started (what renewals report as seen); the one the last renewal reported.
    let mut applied: Option<i64> = None;
    let mut draining: Option<(i64, u64)> = None;
    let mut seen: i64 = 0;
    let mut reported: Option<i64> = None;
    let mut renewed = Instant::now();
    let mut dead: HashSet<i64> = HashSet::new();
    let mut forgotten = Instant::now();
    let mut first = true;
    loop {
        // The first round reads at once: the gate starts empty.
        if !std::mem::take(&mut first) {
            tokio::select! {
                _ = finished.cancelled() => return,
                _ = tokio::time::sleep(poll) => {}
                _ = worker.handoff.steered() => {}
            }
        }
        if run.rotate.swap(false, Ordering::AcqRel) {
            rotate(run, finished).await;
            reported = None;
        }
        let started = Instant::now();
        let fresh = steer(run, &mut applied, &mut draining).await;
        // Waiting for older passes to start never holds up the renewals: a relay slow to
        // answer MAIL FROM must not cost the worker its lease.
        if let Some((seq, version)) = draining
            && run.gate.drained(version)
        {
            seen = seq;
            draining = None;
        }
        let now = Clock::System.now();
        match workers::expired(&worker.db, now).await {
            Ok(expired) => {
                if expired.iter().any(|id| !dead.contains(id)) {
                    run.rescan.store(true, Ordering::Release);
                }
                dead = expired.into_iter().collect();
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for dead workers; will retry"),
        }
        // A renewal vouches for the steering read just before it, so it happens only after a
        // successful read: the gate then never trusts a lease longer than its knowledge.
        if fresh && (reported != Some(seen) || started - renewed >= renew_every) {
            let expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
            match workers::renew(&worker.db, run.holder(), now, expires, seen).await {
                Ok(true) => {
                    run.gate.renewed(run.holder(), started + validity(lease));
                    reported = Some(seen);
                    renewed = started;
                }
                Ok(false) => {
                    lost(run, finished).await;
                    // Read the steering again before anything is sent under the new lease.
                    (applied, draining, reported) = (None, None, None);
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the delivery lease; will retry"),
            }
        }
        if forgotten.elapsed() >= Duration::from_secs(600) {
            forgotten = Instant::now();
            if let Err(e) = workers::forget(&worker.db, now - FORGET_AFTER).await {
                tracing::warn!(error = %e, "cannot forget old workers");
            }
        }
    }
}

/// Reads the steering counter and, when it moved, the sendable issues, and applies them to the
/// gate; `draining` then names the change and the gate version to wait out. `true` when the
/// read succeeded.
async fn steer(run: &Run, applied: &mut Option<i64>, draining: &mut Option<(i64, u64)>) -> bool {
    let db = &run.worker.db;
    let seq = match workers::steer_seq(db).await {
        Ok(seq) => seq,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read steering; will retry");
            return false;
        }
    };
    if *applied == Some(seq) {
        return true;
    }
    match workers::sendable(db).await {
        Ok(ids) => {
            let version = run.gate.update(ids.into_iter().collect());
            if applied.is_some() {
                // Released or resumed rows may sit behind the claim positions.
                run.rescan.store(true, Ordering::Release);
            }
            *applied = Some(seq);
            *draining = Some((seq, version));
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the sending issues; will retry");
            false
        }
    }
}

/// The lease ran out while the worker lived (it could not reach the database for that long):
/// what it held may be another's now. Nothing more starts (the gate closes and forgets which
/// issues may go out), the rows in hand are refused by the gate as no longer its own, and the
/// worker registers anew; the caller reads the steering again before the gate reopens.
async fn lost(run: &Run, finished: &CancellationToken) {
    run.gate.lapse();
    run.gate.update(HashSet::new());
    run.lost.store(true, Ordering::Release);
    tracing::error!(
        worker = run.holder(),
        "the delivery lease ran out; rows held are given up and the worker registers again"
    );
    if let Some(again) = register(&run.worker, finished).await {
        run.holder.store(again.id, Ordering::Release);
        run.gate.renewed(again.id, again.valid_until);
    }
}

/// A claim failed in a way that may have left rows claimed that the worker does not know of:
/// it registers anew and lets the old registration run out, so those rows are claimed again
/// (in doubt) within the lease. Copies of the old registration already in their transaction
/// are still recorded under it; the others are refused by the gate and given back at once.
async fn rotate(run: &Run, finished: &CancellationToken) {
    if let Some(again) = register(&run.worker, finished).await {
        tracing::warn!(
            old = run.holder(),
            new = again.id,
            "a claim failed; the delivery worker registers anew"
        );
        run.holder.store(again.id, Ordering::Release);
        run.gate.renewed(again.id, again.valid_until);
    }
}
