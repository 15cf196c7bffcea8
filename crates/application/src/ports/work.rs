use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ephemera_domain::{Deployment, DeploymentId, Environment, EnvironmentId, SlotUse};

use super::{EnvironmentTx, RepositoryError};

/// The environments table as a work queue: leases make sure only one
/// worker, in any process, works on an environment at a time.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Leases the environment whose work has been due longest, if any:
    /// due (`work_due_at <= now`) and not leased, or its lease expired (a
    /// crashed worker's). PostgreSQL: `FOR UPDATE SKIP LOCKED`.
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<EnvironmentId>, RepositoryError>;

    /// Extends a lease still held by `owner`; `false` when it was lost.
    async fn renew(
        &self,
        id: EnvironmentId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Gives the lease back.
    async fn release(&self, id: EnvironmentId, owner: &str) -> Result<(), RepositoryError>;

    /// Live environments whose PR saw no activity for longer than their
    /// idle TTL (their own, else `default_ttl`) at `now`.
    async fn idle_since(
        &self,
        now: DateTime<Utc>,
        default_ttl: Option<Duration>,
        limit: u64,
    ) -> Result<Vec<EnvironmentId>, RepositoryError>;

    /// Ready environments with a `sleep_after` and no activity (PR event,
    /// deployment or wake) for that long at `now`.
    async fn sleepy(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<EnvironmentId>, RepositoryError>;

    async fn begin(&self) -> Result<Box<dyn WorkTx>, RepositoryError>;
}

/// One step of work on an environment, in one transaction; dropped without
/// `commit`, it rolls back.
#[async_trait]
pub trait WorkTx: EnvironmentTx {
    /// The environment, row-locked until commit.
    async fn environment(
        &mut self,
        id: EnvironmentId,
    ) -> Result<Option<Environment>, RepositoryError>;

    /// Whether `owner` still holds the environment's lease (read under the
    /// row lock): a worker that lost it must not write its result.
    async fn holds_lease(
        &mut self,
        id: EnvironmentId,
        owner: &str,
    ) -> Result<bool, RepositoryError>;

    /// Cancels the environment's queued and in-progress deployments, but
    /// `except`; returns how many.
    async fn cancel_active_deployments(
        &mut self,
        environment_id: EnvironmentId,
        except: Option<DeploymentId>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;

    /// The newest deployment that is queued or in progress.
    async fn active_deployment(
        &mut self,
        environment_id: EnvironmentId,
    ) -> Result<Option<Deployment>, RepositoryError>;

    async fn deployment(&mut self, id: DeploymentId)
    -> Result<Option<Deployment>, RepositoryError>;

    /// Whether a deployment newer than `than` is queued.
    async fn newer_queued(
        &mut self,
        environment_id: EnvironmentId,
        than: DeploymentId,
    ) -> Result<bool, RepositoryError>;

    /// What counts against a cap around `env` in `scope`: the previews
    /// holding a slot, and those waiting since before `env` (every waiting
    /// one when `env` does not wait yet). The first call in a transaction
    /// takes a lock per installation (per repository without one) that
    /// every replica's admission takes, so two replicas never both see the
    /// last free slot (PostgreSQL: a transaction advisory lock; SQLite has
    /// one writer).
    async fn slot_use(
        &mut self,
        env: &Environment,
        scope: CapScope,
    ) -> Result<SlotUse, RepositoryError>;

    /// Adds `note` to the delivery log entry of `delivery`: what became of
    /// the deployment it queued.
    async fn note_delivery(
        &mut self,
        delivery: &ephemera_domain::DeliveryId,
        note: &str,
    ) -> Result<(), RepositoryError>;

    /// A slot around `env` freed up (or a preview left the line): every
    /// preview waiting in its repository and its installation is due now,
    /// so the first in line starts and the others learn their new place.
    async fn wake_waiting(
        &mut self,
        env: &Environment,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

ephemera_domain::string_enum! {
    /// Where a cap counts previews.
    pub enum CapScope ("cap scope") {
        /// The PR's repository (`previews.max_active`).
        Repository = "repository",
        /// The App installation (`EPHEMERA_MAX_ACTIVE`).
        Installation = "installation",
    }
}
