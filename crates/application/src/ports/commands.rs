use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{CommentCommand, InstallationId, PrNumber, RepositoryFullName};

use super::RepositoryError;

/// A recorded `/preview` command a worker took to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommand {
    pub id: i64,
    pub comment_id: i64,
    pub installation_id: Option<InstallationId>,
    pub repository: RepositoryFullName,
    pub pr_number: PrNumber,
    pub author_login: String,
    pub command: CommentCommand,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    Done,
    /// Not allowed or not possible (no permission, unknown command…).
    Refused,
    /// Allowed, but carrying it out failed.
    Failed,
}

impl CommandEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// Recorded `/preview` commands as a queue: one worker at a time per
/// command (a lease, taken over when it expires).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CommandQueue: Send + Sync {
    /// Leases the oldest pending command, if any.
    async fn claim_command(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<PendingCommand>, RepositoryError>;

    /// Records how command `id` ended, with `outcome` for the PR.
    async fn finish_command(
        &self,
        id: i64,
        end: CommandEnd,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}
