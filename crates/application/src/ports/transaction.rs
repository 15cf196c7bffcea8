//! What every transaction that moves an environment can do, whichever use
//! case opened it: webhook ingest ([`super::WebhookTx`]) or a worker's step
//! ([`super::WorkTx`]). Dropped without `commit`, it rolls back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{
    Deployment, Environment, EnvironmentId, InstallationId, InstallationStatus, NewDeployment,
    PreviewReport,
};

use super::RepositoryError;

#[async_trait]
pub trait EnvironmentTx: Send {
    async fn update_environment(
        &mut self,
        environment: &Environment,
    ) -> Result<(), RepositoryError>;

    async fn queue_deployment(
        &mut self,
        new: NewDeployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, RepositoryError>;

    /// Cancels the environment's queued deployments; returns how many.
    async fn cancel_queued_deployments(
        &mut self,
        environment_id: EnvironmentId,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;

    /// The installation's status, if ephemera has recorded it: the deploy
    /// policy holds new deployments of a suspended installation.
    async fn installation_status(
        &mut self,
        id: InstallationId,
    ) -> Result<Option<InstallationStatus>, RepositoryError>;

    /// Queues a report to GitHub in this transaction (a no-op when GitHub
    /// reporting is off), written at `now`.
    async fn report(
        &mut self,
        report: PreviewReport,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError>;
}
