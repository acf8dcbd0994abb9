//! Group commit for what readers do: sign up, confirm, unsubscribe (see
//! [`super::group_commit`]). Each kind has its own recorder, which records whatever has
//! gathered meanwhile in a single transaction, so the database's single writer (SQLite) or its
//! commit flushes stop being the limit, and every answer a reader gets is on disk first.

use std::future::Future;

use super::group_commit::{Batch, GroupCommit};
use super::subscribers::{
    self, ConfirmOutcome, ConfirmRequest, SignupOutcome, SignupRequest, UnsubscribeOutcome,
    UnsubscribeRequest,
};
use super::{Db, StoreError};

/// Records signups, many to a transaction under load.
pub type SignupQueue = GroupCommit<SignupRequest>;

/// Records followed confirmation links.
pub type ConfirmQueue = GroupCommit<ConfirmRequest>;

/// Records followed unsubscribe links (and one-click posts).
pub type UnsubscribeQueue = GroupCommit<UnsubscribeRequest>;

impl Batch for SignupRequest {
    type Outcome = SignupOutcome;
    const MAX: usize = 256;
    const WHAT: &'static str = "signups";

    fn commit(
        db: &Db,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<SignupOutcome>, StoreError>> + Send {
        subscribers::signup_batch(db, batch)
    }
}

impl Batch for ConfirmRequest {
    type Outcome = ConfirmOutcome;
    const MAX: usize = 256;
    const WHAT: &'static str = "confirmations";

    fn commit(
        db: &Db,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<ConfirmOutcome>, StoreError>> + Send {
        subscribers::confirm_batch(db, batch)
    }
}

impl Batch for UnsubscribeRequest {
    type Outcome = UnsubscribeOutcome;
    const MAX: usize = 256;
    const WHAT: &'static str = "unsubscribes";

    fn commit(
        db: &Db,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<UnsubscribeOutcome>, StoreError>> + Send {
        subscribers::unsubscribe_batch(db, batch)
    }
}

impl SignupQueue {
    /// Records one signup and waits for its outcome.
    pub async fn signup(&self, request: SignupRequest) -> Result<SignupOutcome, StoreError> {
        self.submit(request).await
    }
}
