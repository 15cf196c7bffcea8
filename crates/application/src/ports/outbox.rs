use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{DeploymentId, EnvironmentId, PreviewReport};

use super::RepositoryError;

/// A report claimed for delivery, with the GitHub ids known so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReport {
    pub id: i64,
    pub report: PreviewReport,
    pub attempts: u32,
    /// ephemera's comment on the PR, once created.
    pub comment_id: Option<i64>,
    /// The GitHub Deployment of `report.deployment`, once created.
    pub github_deployment_id: Option<i64>,
    /// The newest GitHub Deployment of the environment (to mark inactive
    /// when it is destroyed).
    pub last_github_deployment_id: Option<i64>,
}

/// The outbox of reports to GitHub.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportOutbox: Send + Sync {
    /// Leases the newest due report of an environment no one is reporting
    /// on, and marks that environment's older pending reports superseded:
    /// GitHub only needs the latest state, delivered in order.
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

    /// Reports waiting to be delivered.
    async fn backlog(&self) -> Result<i64, RepositoryError>;
}
