//! Group commit for signups. Every request hands its signup to one task, which records
//! whatever has gathered meanwhile in a single transaction. Alone, a signup goes in at once;
//! under load, hundreds share a commit, so the database's single writer (SQLite) or its
//! commit flushes (PostgreSQL) stop being the limit.

use tokio::sync::{mpsc, oneshot};

use super::subscribers::{self, SignupOutcome, SignupRequest};
use super::{Db, StoreError};

/// Most signups recorded in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<SignupOutcome, String>>;

/// A handle to the signup recorder; cheap to clone.
#[derive(Clone, Debug)]
pub struct SignupQueue {
    sender: mpsc::Sender<(SignupRequest, Reply)>,
}

impl SignupQueue {
    /// Starts the recorder on the current runtime; it stops when every handle is dropped.
    pub fn start(db: Db) -> SignupQueue {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(record(db, receiver));
        SignupQueue { sender }
    }

    /// Records one signup and waits for its outcome.
    pub async fn signup(&self, request: SignupRequest) -> Result<SignupOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the signup recorder has stopped".into());
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

async fn record(db: Db, mut receiver: mpsc::Receiver<(SignupRequest, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (requests, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        match subscribers::signup_batch(&db, &requests).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(%error, n = replies.len(), "signups could not be recorded");
                for reply in replies {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
        }
    }
}
