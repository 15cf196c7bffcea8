use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{
    Environment, EnvironmentId, EnvironmentStatus, Namespace, NewEnvironment, PrNumber,
    RepositoryFullName, StatusChange,
};

use super::RepositoryError;
use crate::PageRequest;

/// Which environments a list should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentFilter {
    pub repository: Option<RepositoryFullName>,
    pub status: Option<EnvironmentStatus>,
    /// Leave out destroyed environments.
    pub active_only: bool,
    pub pr_number: Option<PrNumber>,
    /// Only these repositories (what a signed-in person may see); `None`:
    /// any.
    pub within: Option<Vec<RepositoryFullName>>,
    /// Only PRs opened by this GitHub login (any case).
    pub author: Option<String>,
    /// Only those whose PR title, branch or repository contains this text
    /// (any case).
    pub search: Option<String>,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EnvironmentRepository: Send + Sync {
    async fn get(&self, id: EnvironmentId) -> Result<Option<Environment>, RepositoryError>;

    async fn get_by_namespace(
        &self,
        namespace: &Namespace,
    ) -> Result<Option<Environment>, RepositoryError>;

    /// Newest first, up to `page.fetch_limit()` rows older than the cursor.
    async fn list(
        &self,
        filter: &EnvironmentFilter,
        page: PageRequest,
    ) -> Result<Vec<Environment>, RepositoryError>;

    /// Records a new environment as pending in its PR's namespace;
    /// [`RepositoryError::Conflict`] when the PR already has one.
    async fn insert(
        &self,
        new: NewEnvironment,
        now: DateTime<Utc>,
    ) -> Result<Environment, RepositoryError>;

    /// Stores every mutable field of `environment`; a changed status also
    /// goes into its history.
    async fn update(&self, environment: &Environment) -> Result<(), RepositoryError>;

    /// The `limit` newest steps of the environment's status history, newest
    /// first (its first is `pending`, when it was created).
    async fn status_history(
        &self,
        id: EnvironmentId,
        limit: u64,
    ) -> Result<Vec<StatusChange>, RepositoryError>;
}
