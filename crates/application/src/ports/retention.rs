use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepositoryError;

/// Removes what is old enough to go; each call returns how many rows it
/// removed or emptied.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Pruner: Send + Sync {
    /// Delivery-log entries received before `before`.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Outbox reports no longer pending (delivered, superseded or given
    /// up) created before `before`.
    async fn prune_reports(&self, before: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Empties the logs of deployments whose environment was destroyed
    /// before `before` (the deployment rows stay), leaving `note`.
    async fn prune_logs(&self, before: DateTime<Utc>, note: &str) -> Result<u64, RepositoryError>;
}
