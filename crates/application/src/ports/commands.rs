use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{CommentCommand, CommitSha, InstallationId, PrNumber, RepositoryFullName};

use super::RepositoryError;

/// Where a command was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOrigin {
    /// A `/preview` comment (GitHub's comment id: reactions go on it).
    Comment(i64),
    /// A button of the "ephemera preview" check run of commit `head_sha`.
    Button {
        check_run_id: i64,
        head_sha: CommitSha,
    },
}

impl CommandOrigin {
    /// The comment to react on, if the command has one.
    pub fn comment_id(&self) -> Option<i64> {
        match self {
            Self::Comment(id) => Some(*id),
            Self::Button { .. } => None,
        }
    }
}

/// A recorded `/preview` command a worker took to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommand {
    pub id: i64,
    pub origin: CommandOrigin,
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

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Done, Self::Refused, Self::Failed]
            .into_iter()
            .find(|end| end.as_str() == s)
    }
}

/// A command as the PR's sticky comment lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandNote {
    pub author_login: String,
    pub command: CommentCommand,
    /// Given with a check run's button rather than a comment.
    pub button: bool,
    pub at: DateTime<Utc>,
    /// How it ended; `None` while a worker has yet to carry it out.
    pub end: Option<CommandEnd>,
    pub outcome: Option<String>,
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

    /// Records how command `id` ended, with `outcome` for the PR, and
    /// queues a report of the PR's preview so its sticky comment lists it.
    async fn finish_command(
        &self,
        id: i64,
        end: CommandEnd,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}
