//! What ingesting a delivery can fail with.

use ephemera_domain::InvalidTransition;
use thiserror::Error;

use crate::ports::RepositoryError;

/// What applying a delivery can fail with inside its transaction: the
/// store, or a lifecycle move the domain refuses.
#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] RepositoryError),
    /// The delivery asked for a move the lifecycle does not allow: a bug
    /// in the decision, recorded as a failed delivery.
    #[error(transparent)]
    Lifecycle(#[from] InvalidTransition),
    /// The delivery lacks what its event needs (the HTTP parser refuses
    /// such a body first; this guards other callers).
    #[error("{0}")]
    Incomplete(&'static str),
}

#[derive(Debug, Error)]
pub enum IngestError {
    /// The delivery lacks what its event needs: the sender's fault.
    #[error("{0}")]
    Incomplete(&'static str),
    /// The database cannot be reached; GitHub should redeliver later.
    #[error(transparent)]
    Unavailable(RepositoryError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
