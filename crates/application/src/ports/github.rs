use std::time::Duration;

use async_trait::async_trait;
use ephemera_domain::{CommitSha, InstallationId, PrNumber, RepositoryFullName};

ephemera_domain::string_enum! {
    /// Commit status states GitHub accepts.
    pub enum CommitState ("commit status state") {
        Pending = "pending",
        Success = "success",
        Failure = "failure",
        Error = "error",
    }
}

ephemera_domain::string_enum! {
    /// GitHub Deployment status states ephemera reports.
    pub enum DeploymentState ("deployment status state") {
        InProgress = "in_progress",
        Success = "success",
        Failure = "failure",
        Inactive = "inactive",
    }
}

impl DeploymentState {
    /// How far along the way to `inactive` a state is: a deployment only
    /// moves forward.
    pub fn rank(self) -> u8 {
        match self {
            Self::InProgress => 0,
            Self::Success | Self::Failure => 1,
            Self::Inactive => 2,
        }
    }
}

ephemera_domain::string_enum! {
    /// Reactions ephemera puts on a `/preview` command's comment.
    pub enum Reaction ("reaction") {
        /// Taken: the worker will act on it.
        Eyes = "eyes",
        /// Done.
        PlusOne = "+1",
        /// Refused or failed.
        Confused = "confused",
    }
}

ephemera_domain::string_enum! {
    /// A person's permission on a repository, as GitHub's collaborator
    /// permission API names it.
    pub enum Permission ("repository permission") {
        Admin = "admin",
        Maintain = "maintain",
        Write = "write",
        Triage = "triage",
        Read = "read",
        None = "none",
    }
}

impl Permission {
    /// Whether it lets its holder change the repository (and so steer its
    /// previews).
    pub fn can_write(self) -> bool {
        matches!(self, Self::Admin | Self::Maintain | Self::Write)
    }
}

ephemera_domain::string_enum! {
    /// Where a check run is.
    pub enum CheckStatus ("check run status") {
        Queued = "queued",
        InProgress = "in_progress",
        Completed = "completed",
    }
}

ephemera_domain::string_enum! {
    /// How a completed check run ended.
    pub enum CheckConclusion ("check run conclusion") {
        Success = "success",
        Failure = "failure",
        /// Skipped by the repository's rules (the summary says which).
        Neutral = "neutral",
        /// Superseded by a newer commit.
        Cancelled = "cancelled",
    }
}

ephemera_domain::string_enum! {
    /// What a deployment's check run was last told: where it was, or how it
    /// ended.
    pub enum CheckState ("check run state") {
        Queued = "queued",
        InProgress = "in_progress",
        Success = "success",
        Failure = "failure",
        Neutral = "neutral",
        Cancelled = "cancelled",
        /// Not reported with a check run: checks are off for it (the
        /// setting, or an App without the Checks permission).
        Off = "off",
    }
}

impl CheckState {
    /// What ephemera records a check run was told: its state and the
    /// buttons it shows (a change of either is sent), e.g.
    /// `success:redeploy,destroy`.
    pub fn told(run: &CheckRun) -> String {
        let buttons: Vec<&str> = run.actions.iter().map(|a| a.identifier.as_str()).collect();
        format!("{}:{}", Self::of(run), buttons.join(","))
    }

    /// The state `run` puts its check run in.
    pub fn of(run: &CheckRun) -> Self {
        match (run.status, run.conclusion) {
            (CheckStatus::Queued, _) => Self::Queued,
            (CheckStatus::InProgress, _) => Self::InProgress,
            (CheckStatus::Completed, Some(CheckConclusion::Success)) => Self::Success,
            (CheckStatus::Completed, Some(CheckConclusion::Failure) | None) => Self::Failure,
            (CheckStatus::Completed, Some(CheckConclusion::Neutral)) => Self::Neutral,
            (CheckStatus::Completed, Some(CheckConclusion::Cancelled)) => Self::Cancelled,
        }
    }
}

/// A button on a check run (`requested_action`); GitHub allows three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAction {
    /// At most 20 characters.
    pub label: String,
    /// At most 40 characters.
    pub description: String,
    /// Sent back in `check_run.requested_action.identifier`; at most 20
    /// characters.
    pub identifier: String,
}

/// What the "ephemera preview" check run of a commit shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub status: CheckStatus,
    /// Set exactly when `status` is completed.
    pub conclusion: Option<CheckConclusion>,
    /// The output's title and summary (Markdown), and its text (the tail
    /// of the deployment log).
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    /// The preview's URL, once there is one.
    pub details_url: Option<String>,
    pub actions: Vec<CheckAction>,
}

/// Why a report did not reach GitHub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Worth trying again (network, 5xx); `after` when GitHub said when
    /// (rate limit: `Retry-After` / `x-ratelimit-reset`).
    #[error("GitHub unavailable: {message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// The repository, PR or installation is gone (404/410): give up.
    #[error("gone on GitHub: {0}")]
    Gone(String),
    /// The App lacks a permission the request needs (a 403 that is not a
    /// rate limit); the message names it.
    #[error("not permitted by GitHub: {0}")]
    NotPermitted(String),
    /// GitHub refused the request for good (e.g. 422).
    #[error("refused by GitHub: {0}")]
    Refused(String),
}

/// Where a PR lives on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRef {
    pub installation: InstallationId,
    pub repository: RepositoryFullName,
    pub number: PrNumber,
}

/// A PR as GitHub has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestState {
    pub open: bool,
    pub head_sha: CommitSha,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// What the deploy policy needs, as GitHub says now.
    pub is_fork: bool,
    pub draft: bool,
    pub labels: Vec<String>,
    /// The branch the PR merges into (`base.ref`).
    pub base_ref: String,
}

/// A text file read from a repository at one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryFile {
    /// Git's blob SHA of the content: the same SHA is the same text.
    pub blob_sha: String,
    pub text: String,
}

/// What reading a file from a repository found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLookup {
    Found(RepositoryFile),
    /// No such file at that ref (or the path is not a file).
    Missing,
    /// The file is larger than the caller's limit; its content was not read.
    TooLarge {
        size: u64,
    },
}

/// The paths a PR changes against its base, as GitHub lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFiles {
    /// Every changed path (for a rename, the new and the old path).
    pub paths: Vec<String>,
    /// False when GitHub's listing stopped at its cap (3,000 files): a path
    /// missing from it may still be changed.
    pub complete: bool,
}

/// One of the App's recent webhook deliveries, as GitHub lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDelivery {
    /// GitHub's numeric id (for redelivery).
    pub id: i64,
    /// The `X-GitHub-Delivery` GUID.
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    /// What the receiver answered (0 when it could not be reached).
    pub status_code: u16,
    pub delivered_at: chrono::DateTime<chrono::Utc>,
}

/// A repository's open PRs as GitHub lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenPullRequests {
    /// Nothing changed since the listing that had this ETag.
    Unchanged,
    Listed {
        /// For the next conditional request.
        etag: Option<String>,
        pulls: Vec<(PrNumber, PullRequestState)>,
        /// False when the list was cut at the page cap: a PR missing from
        /// it may still be open.
        complete: bool,
        /// Pages read: requests that count against the rate limit.
        pages: u32,
    },
}

/// What ephemera reads back from GitHub to repair drift.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait GitHubReader: Send + Sync {
    /// [`ReportError::Gone`] when the PR or repository is not visible any
    /// more.
    async fn pull_request(&self, pr: &PullRequestRef) -> Result<PullRequestState, ReportError>;

    /// The App's failed webhook deliveries since `since`, newest first,
    /// following GitHub's cursor for at most `max_pages` pages of 100.
    async fn failed_deliveries(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        max_pages: u32,
    ) -> Result<Vec<HookDelivery>, ReportError>;

    /// Asks GitHub to send delivery `id` again.
    async fn redeliver(&self, id: i64) -> Result<(), ReportError>;

    /// The repository's open PRs (every page), or [`OpenPullRequests::Unchanged`]
    /// when GitHub says the list is as it was when it answered with `etag`
    /// (a conditional request, free of rate limit). [`ReportError::Gone`]
    /// when the repository is not visible any more.
    async fn open_pull_requests(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        etag: Option<String>,
    ) -> Result<OpenPullRequests, ReportError>;

    /// The file at `path` in `repository` at `git_ref` (a commit SHA or a
    /// branch name; empty: the default branch), read with the installation's
    /// token. Read through a
    /// conditional request when the same ref was read before.
    async fn repository_file(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        path: &str,
        git_ref: &str,
        max_bytes: u64,
    ) -> Result<FileLookup, ReportError>;

    /// The files the PR changes against its base (every page).
    async fn pull_request_files(&self, pr: &PullRequestRef) -> Result<ChangedFiles, ReportError>;

    /// `login`'s permission on `repository` (GitHub's collaborator
    /// permission API; `None` for someone without access).
    async fn collaborator_permission(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        login: &str,
    ) -> Result<Permission, ReportError>;

    /// What GitHub last said was left of the rate limit, if it said.
    fn rate_limit_remaining(&self) -> Option<u64> {
        None
    }
}

/// What ephemera tells GitHub about a PR's preview.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait GitHubReporter: Send + Sync {
    /// Creates or edits ephemera's one comment on the PR (found by a hidden
    /// marker, or by `known_id`); returns its id.
    async fn upsert_comment(
        &self,
        pr: &PullRequestRef,
        known_id: Option<i64>,
        body: &str,
    ) -> Result<i64, ReportError>;

    /// Sets the `ephemera/preview` commit status on `sha`.
    async fn set_commit_status(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        state: CommitState,
        target_url: Option<String>,
        description: &str,
    ) -> Result<(), ReportError>;

    /// Creates a GitHub Deployment of `sha` to `environment`; returns its
    /// id.
    async fn create_deployment(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        environment: &str,
        description: &str,
    ) -> Result<i64, ReportError>;

    /// Puts `reaction` on the PR conversation comment `comment_id` (an
    /// existing identical reaction is fine).
    async fn react_to_comment(
        &self,
        pr: &PullRequestRef,
        comment_id: i64,
        reaction: Reaction,
    ) -> Result<(), ReportError>;

    /// Creates the "ephemera preview" check run on `sha` (its external id
    /// is the PR's number, which a fork PR's button click needs); returns
    /// its id. [`ReportError::NotPermitted`] when the App lacks the Checks
    /// permission.
    async fn create_check_run(
        &self,
        pr: &PullRequestRef,
        sha: &CommitSha,
        run: &CheckRun,
    ) -> Result<i64, ReportError>;

    /// Brings check run `id` to `run`.
    async fn update_check_run(
        &self,
        pr: &PullRequestRef,
        id: i64,
        run: &CheckRun,
    ) -> Result<(), ReportError>;

    /// Adds a status to a GitHub Deployment. A `Success` status also
    /// retires, on GitHub's side and at no extra request, every earlier
    /// deployment of the same environment whose latest status is `success`
    /// (GitHub's `auto_inactive`); any other earlier deployment is the
    /// caller's to retire.
    async fn create_deployment_status(
        &self,
        pr: &PullRequestRef,
        deployment_id: i64,
        state: DeploymentState,
        environment_url: Option<String>,
        description: &str,
    ) -> Result<(), ReportError>;
}
