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
#[cfg(test)]
use super::{Claim, DeliveryHeader, WebhookTx, WorkTx};
#[cfg(test)]
use ephemera_domain::{
    DeliveryId, DeploymentId, GithubUser, InstalledRepository as Repo, NewEnvironment, PrNumber,
    RepositoryFullName,
};

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

    /// Stores every mutable field of `deployment`.
    async fn update_deployment(&mut self, deployment: &Deployment) -> Result<(), RepositoryError>;

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

    /// Undoes the transaction and releases its row locks now. Dropping it
    /// undoes it too, but on PostgreSQL its locks last until its pooled
    /// connection is next used, and workers skip locked rows meanwhile.
    async fn rollback(self: Box<Self>) -> Result<(), RepositoryError>;
}

// One mock for every transaction: it implements [`EnvironmentTx`] once and
// each trait built on it (their methods have distinct names), so the
// shared methods are declared once. `MockWebhookTx` and `MockWorkTx` name it
// for the use case at hand.
#[cfg(test)]
mockall::mock! {
    pub Tx {}

    #[async_trait]
    impl EnvironmentTx for Tx {
        async fn update_environment(
            &mut self,
            environment: &Environment,
        ) -> Result<(), RepositoryError>;
        async fn queue_deployment(
            &mut self,
            new: NewDeployment,
            now: DateTime<Utc>,
        ) -> Result<Deployment, RepositoryError>;
        async fn cancel_queued_deployments(
            &mut self,
            environment_id: EnvironmentId,
            now: DateTime<Utc>,
        ) -> Result<u64, RepositoryError>;
        async fn update_deployment(
            &mut self,
            deployment: &Deployment,
        ) -> Result<(), RepositoryError>;
        async fn installation_status(
            &mut self,
            id: InstallationId,
        ) -> Result<Option<InstallationStatus>, RepositoryError>;
        async fn report(
            &mut self,
            report: PreviewReport,
            now: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
        async fn commit(self: Box<Self>) -> Result<(), RepositoryError>;
        async fn rollback(self: Box<Self>) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl WebhookTx for Tx {
        async fn claim_delivery(
            &mut self,
            header: &DeliveryHeader,
            now: DateTime<Utc>,
        ) -> Result<Claim, RepositoryError>;
        async fn finish_delivery(
            &mut self,
            delivery_id: &DeliveryId,
            outcome: ephemera_domain::DeliveryOutcome,
            reason: Option<String>,
            now: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
        async fn upsert_user(
            &mut self,
            user: &GithubUser,
            now: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
        async fn environment_for_pr(
            &mut self,
            repository_id: Option<i64>,
            repository: &RepositoryFullName,
            pr_number: PrNumber,
        ) -> Result<Option<Environment>, RepositoryError>;
        async fn insert_environment(
            &mut self,
            new: NewEnvironment,
            now: DateTime<Utc>,
        ) -> Result<Environment, RepositoryError>;
        async fn upsert_installation(
            &mut self,
            id: InstallationId,
            account_login: &str,
            status: InstallationStatus,
            now: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
        async fn add_repositories(
            &mut self,
            id: InstallationId,
            repositories: &[Repo],
        ) -> Result<(), RepositoryError>;
        async fn remove_repositories(
            &mut self,
            id: InstallationId,
            repositories: &[Repo],
        ) -> Result<(), RepositoryError>;
        async fn live_environments_of_installation(
            &mut self,
            id: InstallationId,
        ) -> Result<Vec<Environment>, RepositoryError>;
        async fn live_environments_of_repository(
            &mut self,
            repository: &Repo,
        ) -> Result<Vec<Environment>, RepositoryError>;
        async fn installation_seen_at(
            &mut self,
            id: InstallationId,
        ) -> Result<Option<DateTime<Utc>>, RepositoryError>;
        async fn record_command(
            &mut self,
            command: &super::NewPreviewCommand,
            now: DateTime<Utc>,
        ) -> Result<bool, RepositoryError>;
        async fn mark_installation_seen(
            &mut self,
            id: InstallationId,
            at: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl WorkTx for Tx {
        async fn environment(
            &mut self,
            id: EnvironmentId,
        ) -> Result<Option<Environment>, RepositoryError>;
        async fn holds_lease(
            &mut self,
            id: EnvironmentId,
            owner: &str,
        ) -> Result<bool, RepositoryError>;
        async fn cancel_active_deployments(
            &mut self,
            environment_id: EnvironmentId,
            except: Option<DeploymentId>,
            now: DateTime<Utc>,
        ) -> Result<u64, RepositoryError>;
        async fn active_deployment(
            &mut self,
            environment_id: EnvironmentId,
        ) -> Result<Option<Deployment>, RepositoryError>;
        async fn deployment(
            &mut self,
            id: DeploymentId,
        ) -> Result<Option<Deployment>, RepositoryError>;
        async fn newer_queued(
            &mut self,
            environment_id: EnvironmentId,
            than: DeploymentId,
        ) -> Result<bool, RepositoryError>;
        async fn slot_use(
            &mut self,
            env: &Environment,
            scope: super::CapScope,
        ) -> Result<ephemera_domain::SlotUse, RepositoryError>;
        async fn note_delivery(
            &mut self,
            delivery: &ephemera_domain::DeliveryId,
            note: &str,
        ) -> Result<(), RepositoryError>;
        async fn wake_waiting(
            &mut self,
            env: &Environment,
            now: DateTime<Utc>,
        ) -> Result<(), RepositoryError>;
    }
}

/// The mock of [`super::WebhookTx`].
#[cfg(test)]
pub type MockWebhookTx = MockTx;

/// The mock of [`super::WorkTx`].
#[cfg(test)]
pub type MockWorkTx = MockTx;
