use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{Deployment, DeploymentId, EnvironmentId, NewDeployment};

use super::RepositoryError;
use crate::PageRequest;

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait DeploymentRepository: Send + Sync {
    async fn get(&self, id: DeploymentId) -> Result<Option<Deployment>, RepositoryError>;

    /// An environment's deployments, newest first, up to `page.fetch_limit()`.
    async fn list_for_environment(
        &self,
        environment_id: EnvironmentId,
        page: PageRequest,
    ) -> Result<Vec<Deployment>, RepositoryError>;

    /// Queues a deployment.
    async fn insert(
        &self,
        new: NewDeployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, RepositoryError>;

    /// Stores every mutable field of `deployment`.
    async fn update(&self, deployment: &Deployment) -> Result<(), RepositoryError>;
}
