//! The capabilities use cases need from the outside world, one small trait
//! each. Adapters implement them; this crate's unit tests use their mockall
//! mocks, every other crate tests against the real adapters.

mod clock;
mod commands;
mod deliveries;
mod deployments;
mod environments;
mod github;
mod handover;
mod health;
mod installations;
mod leases;
mod outbox;
mod provisioner;
mod retention;
mod sign_in;
mod stats;
mod transaction;
mod webhooks;
mod work;

use thiserror::Error;

pub use clock::{Clock, SystemClock};
pub use commands::{CommandEnd, CommandNote, CommandOrigin, CommandQueue, PendingCommand};
pub use deliveries::{DeliveryFilter, DeliveryLog};
pub use deployments::DeploymentRepository;
pub use environments::{EnvironmentFilter, EnvironmentRepository};
pub use github::{
    ChangedFiles, CheckAction, CheckConclusion, CheckRun, CheckState, CheckStatus, CommitState,
    DeploymentState, FileLookup, GitHubReader, GitHubReporter, HookDelivery, OpenPullRequests,
    Permission, PullRequestRef, PullRequestState, Reaction, ReportError, RepositoryFile,
};
pub use handover::WorkAnnouncer;
pub use health::HealthProbe;
pub use installations::InstalledRepositories;
pub use leases::Leases;
pub use outbox::{DeploymentLedger, PendingReport, ReportOutbox};
pub use provisioner::{
    ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, Stopped, Teardown,
};
pub use retention::Pruner;
pub use sign_in::{GitHubSignIn, Reachable, SignedIn};
pub use stats::{GitHubObserver, NoObserver, StatsProbe, WorkObserver};
pub use transaction::EnvironmentTx;
pub use webhooks::{Claim, DeliveryHeader, NewPreviewCommand, WebhookStore, WebhookTx};
pub use work::{CapScope, WorkQueue, WorkTx};

#[cfg(test)]
pub use {
    clock::MockClock, commands::MockCommandQueue, deliveries::MockDeliveryLog,
    deployments::MockDeploymentRepository, environments::MockEnvironmentRepository,
    github::MockGitHubReader, github::MockGitHubReporter, health::MockHealthProbe,
    installations::MockInstalledRepositories, leases::MockLeases, provisioner::MockProvisioner,
    retention::MockPruner, transaction::MockWebhookTx, transaction::MockWorkTx,
    webhooks::MockWebhookStore, work::MockWorkQueue,
};

/// What a store can say went wrong, translated from its driver's errors.
#[derive(Debug, Error)]
pub enum RepositoryError {
    /// A uniqueness rule refused the write (e.g. a second environment for
    /// one repository + PR).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row that should exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// The store cannot be reached right now (connection refused, pool
    /// exhausted); worth retrying later. The driver's error is the source.
    #[error("database unavailable while {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl RepositoryError {
    /// The store could not be reached while `context`.
    pub fn unavailable(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }
}
