use std::time::Duration;

use async_trait::async_trait;
use ephemera_domain::{
    CommitSha, EnvironmentId, InstallationId, Namespace, PrNumber, RepositoryFullName,
};

/// What a provisioner is asked to create, update or destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub environment_id: EnvironmentId,
    pub namespace: Namespace,
    pub repository: RepositoryFullName,
    pub pr_number: PrNumber,
    pub commit_sha: CommitSha,
    pub branch: String,
    pub installation_id: Option<InstallationId>,
    /// Plain variables from the repository's `.github/ephemera.yml`
    /// (`env`), within the operator's bounds.
    pub variables: std::collections::BTreeMap<String, String>,
    /// The preview URL from `EPHEMERA_PREVIEW_URL_TEMPLATE`; a provisioner
    /// may report another.
    pub preview_url: String,
}

/// A finished create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub url: String,
    pub logs: String,
}

/// A finished stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub logs: String,
}

/// How far a destroy got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teardown {
    /// Everything the environment held is gone (or was never there).
    Gone { logs: String },
    /// Deletion is under way but not finished (a Kubernetes namespace
    /// still terminating): neither done nor a failure. The destroy is asked
    /// for again after `recheck`, without using up an attempt.
    InProgress { logs: String, recheck: Duration },
}

/// Why a provisioner gave up, with whatever it logged on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionFailure {
    pub message: String,
    pub logs: String,
}

impl std::fmt::Display for ProvisionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Creates, updates and destroys preview environments (dry-run, a shell
/// command, Kubernetes). Both calls must be idempotent: after a crash the
/// same request is made again.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// Short name for logs: `dry-run`, `command`, `kubernetes`.
    fn name(&self) -> &'static str;

    /// Brings the environment to the requested commit (creating it if it
    /// does not exist).
    async fn provision(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure>;

    /// Puts the environment to sleep: whatever runs is stopped (Kubernetes:
    /// its Deployments and StatefulSets scaled to zero, their replicas
    /// remembered), while its namespace, data and URL stay. Idempotent.
    async fn stop(&self, request: &ProvisionRequest) -> Result<Stopped, ProvisionFailure>;

    /// Wakes a sleeping environment as it was (the replicas remembered at
    /// [`Provisioner::stop`]); answers like [`Provisioner::provision`].
    async fn start(&self, request: &ProvisionRequest) -> Result<Provisioned, ProvisionFailure>;

    /// Removes everything the environment holds; already gone is
    /// [`Teardown::Gone`]. Called again while it answers
    /// [`Teardown::InProgress`].
    async fn destroy(&self, request: &ProvisionRequest) -> Result<Teardown, ProvisionFailure>;
}
