use async_trait::async_trait;
use ephemera_domain::{InstallationId, RepositoryFullName};

use super::RepositoryError;

/// Which installation of the App can see a repository (the installations
/// the webhooks recorded), read side.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait InstalledRepositories: Send + Sync {
    /// The active installation that lists `repository` (compared as GitHub
    /// compares names, ignoring case), if any.
    async fn installation_of(
        &self,
        repository: &RepositoryFullName,
    ) -> Result<Option<InstallationId>, RepositoryError>;
}
