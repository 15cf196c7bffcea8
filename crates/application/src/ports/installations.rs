use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{
    Installation, InstallationId, InstallationRepository as Repo, InstallationStatus,
};

use super::RepositoryError;

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InstallationRepository: Send + Sync {
    async fn get(&self, id: InstallationId) -> Result<Option<Installation>, RepositoryError>;

    /// Creates the installation or updates its account and status.
    async fn upsert(
        &self,
        id: InstallationId,
        account_login: String,
        status: InstallationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Records repositories the installation can now see.
    async fn add_repositories(
        &self,
        id: InstallationId,
        repositories: Vec<Repo>,
    ) -> Result<(), RepositoryError>;

    /// Forgets repositories the installation can no longer see.
    async fn remove_repositories(
        &self,
        id: InstallationId,
        repository_github_ids: Vec<i64>,
    ) -> Result<(), RepositoryError>;
}
