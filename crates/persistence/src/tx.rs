//! The one SQL transaction type behind both [`WebhookTx`] (webhook ingest)
//! and [`WorkTx`] (a worker's step): what they share is written once here.
//!
//! [`WebhookTx`]: ephemera_application::ports::WebhookTx
//! [`WorkTx`]: ephemera_application::ports::WorkTx

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_application::ports::{DeliveryHeader, EnvironmentTx, RepositoryError};
use ephemera_domain::{
    Deployment, Environment, EnvironmentId, InstallationId, InstallationStatus, NewDeployment,
    PreviewReport,
};
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use crate::error::db_err;
use crate::{deployments, environments, installations};

/// Whether transactions queue reports to GitHub (GitHub reporting is on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reporting {
    #[default]
    Off,
    /// Reports are queued; one of a change still under way is first due
    /// `hold` later, so a deployment that ends within it is reported by its
    /// outcome alone. An outcome is due at once.
    On { hold: std::time::Duration },
}

/// An open transaction; dropped without commit, it rolls back.
pub(crate) struct SqlTx {
    pub(crate) txn: DatabaseTransaction,
    reporting: Reporting,
    /// A delivery claimed in this transaction and not in the log yet: its
    /// row is written once, with its outcome, when it finishes.
    pub(crate) unlogged: Option<DeliveryHeader>,
}

impl SqlTx {
    pub(crate) async fn begin(
        db: &DatabaseConnection,
        reporting: Reporting,
    ) -> Result<Self, RepositoryError> {
        let txn = db
            .begin()
            .await
            .map_err(|e| db_err(e, "opening a transaction"))?;
        Ok(Self {
            txn,
            reporting,
            unlogged: None,
        })
    }
}

#[async_trait]
impl EnvironmentTx for SqlTx {
    async fn update_environment(
        &mut self,
        environment: &Environment,
    ) -> Result<(), RepositoryError> {
        environments::update(&self.txn, environment).await
    }

    async fn queue_deployment(
        &mut self,
        new: NewDeployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, RepositoryError> {
        deployments::insert(&self.txn, new, now).await
    }

    async fn cancel_queued_deployments(
        &mut self,
        environment_id: EnvironmentId,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        deployments::cancel_queued(&self.txn, environment_id, now).await
    }

    async fn update_deployment(&mut self, deployment: &Deployment) -> Result<(), RepositoryError> {
        deployments::update(&self.txn, deployment).await
    }

    async fn installation_status(
        &mut self,
        id: InstallationId,
    ) -> Result<Option<InstallationStatus>, RepositoryError> {
        installations::status(&self.txn, id).await
    }

    async fn report(
        &mut self,
        report: PreviewReport,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let Reporting::On { hold } = self.reporting else {
            return Ok(());
        };
        let due = if report.is_settled() {
            now
        } else {
            now + chrono::Duration::from_std(hold).unwrap_or_default()
        };
        crate::outbox::enqueue(&self.txn, &report, now, due).await
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        self.txn
            .commit()
            .await
            .map_err(|e| db_err(e, "committing the transaction"))
    }

    async fn rollback(self: Box<Self>) -> Result<(), RepositoryError> {
        self.txn
            .rollback()
            .await
            .map_err(|e| db_err(e, "rolling the transaction back"))
    }
}
