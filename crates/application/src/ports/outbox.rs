use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{CommitSha, DeploymentId, DeploymentStatus, EnvironmentId, PreviewReport};

use super::{CommandNote, CommitState, DeploymentState, RepositoryError};

/// One deployment of the environment and what GitHub was last told of it:
/// the deliverer brings each to its final state on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLedger {
    pub deployment_id: DeploymentId,
    pub commit_sha: CommitSha,
    pub status: DeploymentStatus,
    pub error: Option<String>,
    /// Its GitHub Deployment, once created.
    pub github_deployment_id: Option<i64>,
    /// The GitHub Deployment state last reported.
    pub reported: Option<DeploymentState>,
    /// The commit status last reported for its commit.
    pub reported_commit: Option<CommitState>,
    /// The "ephemera preview" check run of its commit, once created.
    pub check_run_id: Option<i64>,
    /// What that check run was last told ([`super::CheckState::told`]), or
    /// `off`.
    pub reported_check: Option<String>,
    /// The end of its log, for the check run's output.
    pub log_tail: String,
}

/// A report claimed for delivery, with the GitHub ids known so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReport {
    pub id: i64,
    pub report: PreviewReport,
    pub attempts: u32,
    /// ephemera's comment on the PR, once created.
    pub comment_id: Option<i64>,
    /// The environment's deployments GitHub may still need to hear about,
    /// oldest first (those already final and inactive are left out, but
    /// the newest: its check run's buttons follow the preview).
    pub ledger: Vec<DeploymentLedger>,
    /// The newest `/preview` commands given on the PR, oldest first.
    pub commands: Vec<CommandNote>,
}

/// The outbox of reports to GitHub.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ReportOutbox: Send + Sync {
    /// Leases the newest report of an environment no one is reporting on
    /// whose earliest waiting report is due, and marks that environment's older pending reports superseded:
    /// the comment only needs the latest state, and each deployment's and
    /// commit's own truth comes from the ledger, so nothing is lost.
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<PendingReport>, RepositoryError>;

    async fn delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), RepositoryError>;

    /// Releases the report to be tried again at `at`.
    async fn retry(&self, id: i64, error: String, at: DateTime<Utc>)
    -> Result<(), RepositoryError>;

    /// Gives up on the report.
    async fn failed(&self, id: i64, error: String) -> Result<(), RepositoryError>;

    async fn set_comment_id(
        &self,
        environment: EnvironmentId,
        comment_id: i64,
    ) -> Result<(), RepositoryError>;

    async fn set_github_deployment_id(
        &self,
        deployment: DeploymentId,
        github_id: i64,
    ) -> Result<(), RepositoryError>;

    /// Records the check run of a deployment's commit and what it was told
    /// ([`super::CheckState::told`], or `off`; `id` once created).
    async fn record_check(
        &self,
        deployment: DeploymentId,
        id: Option<i64>,
        told: &str,
    ) -> Result<(), RepositoryError>;

    /// Records what GitHub was told about a deployment, as soon as it was
    /// told (a retried report does not repeat it).
    async fn record_reported(
        &self,
        deployment: DeploymentId,
        state: Option<DeploymentState>,
        commit: Option<CommitState>,
    ) -> Result<(), RepositoryError>;

    /// Reports waiting to be delivered.
    async fn backlog(&self) -> Result<i64, RepositoryError>;
}
