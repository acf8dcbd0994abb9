//! Group commit: every request of one kind is handed to one task, which records whatever has
//! gathered meanwhile in a single transaction and then answers each. Alone, a request goes in
//! at once; under load, hundreds share a commit. A commit is durable when it returns (SQLite
//! syncs its log with `synchronous = FULL`, PostgreSQL flushes its WAL), so the reader's answer
//! waits for the disk, and the disk is waited for once per group, not once per reader. On
//! SQLite the sync runs beside the next group's transaction rather than inside the commit.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::{Db, StoreError, is_transient};

/// A kind of request recorded in groups.
pub trait Batch: Send + Sync + Sized + 'static {
    /// What each request becomes.
    type Outcome: Send + 'static;
    /// Most requests in one transaction.
    const MAX: usize;
    /// What the requests are, for the logs.
    const WHAT: &'static str;
    /// Records `batch` in one transaction; the outcomes come back in the order of `batch`.
    fn commit(
        db: &Db,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>, StoreError>> + Send;
}

type Reply<O> = oneshot::Sender<Result<O, String>>;

/// A handle to the recorder of one kind of request; cheap to clone.
pub struct GroupCommit<R: Batch> {
    sender: mpsc::Sender<(R, Reply<R::Outcome>)>,
}

impl<R: Batch> Clone for GroupCommit<R> {
    fn clone(&self) -> Self {
        GroupCommit {
            sender: self.sender.clone(),
        }
    }
}

impl<R: Batch> std::fmt::Debug for GroupCommit<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("of", &R::WHAT).finish()
    }
}

impl<R: Batch> GroupCommit<R> {
    /// Starts the recorder on the current runtime; it stops when every handle is dropped.
    pub fn start(db: Db) -> GroupCommit<R> {
        let (sender, receiver) = mpsc::channel(4 * R::MAX);
        tokio::spawn(record(db, receiver));
        GroupCommit { sender }
    }

    /// Records one request and waits until its group is committed.
    pub async fn submit(&self, request: R) -> Result<R::Outcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let stopped =
            || StoreError::Unavailable(format!("the recorder of {} has stopped", R::WHAT));
        self.sender
            .send((request, reply))
            .await
            .map_err(|_| stopped())?;
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Unavailable)
    }
}

async fn record<R: Batch>(db: Db, mut receiver: mpsc::Receiver<(R, Reply<R::Outcome>)>) {
    // Commits return before the log is synced; each group's answers wait for a sync that
    // overlaps the next group's transaction (see `LogSync`).
    let deferring = db.deferring();
    let mut batch = Vec::with_capacity(R::MAX);
    while receiver.recv_many(&mut batch, R::MAX).await > 0 {
        let (requests, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        // Two instances' groups can meet on the same rows in opposite orders (PostgreSQL);
        // the loser runs again rather than failing a whole group of readers.
        let mut result = R::commit(&deferring, &requests).await;
        for _ in 0..3 {
            match &result {
                Err(StoreError::Database(e)) if is_transient(e) => {
                    result = R::commit(&deferring, &requests).await
                }
                _ => break,
            }
        }
        match result {
            Ok(outcomes) => {
                // The answers wait for the sync; the next group does not.
                let db = db.clone();
                tokio::spawn(async move {
                    db.sync().await;
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                });
            }
            Err(error) => {
                tracing::error!(%error, n = replies.len(), what = R::WHAT, "requests could not be recorded");
                for reply in replies {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
        }
    }
}
