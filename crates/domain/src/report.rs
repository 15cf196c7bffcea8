//! What GitHub should show about a PR's preview at one moment: the
//! snapshot an outbox report carries.

use crate::{
    CommitSha, Deployment, DeploymentId, DeploymentStatus, Environment, EnvironmentId,
    EnvironmentStatus, InstallationId, Namespace, PrNumber, RepositoryFullName,
};

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSnapshot {
    pub id: DeploymentId,
    pub status: DeploymentStatus,
    pub commit_sha: CommitSha,
    /// Start to finish, once finished.
    pub duration_seconds: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreviewReport {
    pub environment_id: EnvironmentId,
    pub installation_id: InstallationId,
    pub repository: RepositoryFullName,
    pub pr_number: PrNumber,
    pub namespace: Namespace,
    pub status: EnvironmentStatus,
    pub url: Option<String>,
    pub commit_sha: CommitSha,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub deployment: Option<DeploymentSnapshot>,
    /// On a fork PR: the commit a maintainer vouched for, so reviewers see
    /// which code runs with the provisioner's credentials.
    pub vouched_sha: Option<CommitSha>,
    /// What this server's bounds refused of the repository's
    /// `.github/ephemera.yml`.
    pub config_notes: Vec<String>,
    /// The PR comes from a fork (its commits need a maintainer's approval).
    pub is_fork: bool,
}

impl PreviewReport {
    /// Whether it shows where the preview came to rest (ready, failed,
    /// skipped, asleep or removed, its deployment finished) rather than a
    /// change under way.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.status,
            EnvironmentStatus::Ready
                | EnvironmentStatus::Failed
                | EnvironmentStatus::Skipped
                | EnvironmentStatus::Sleeping
                | EnvironmentStatus::Destroyed
        ) && self
            .deployment
            .as_ref()
            .is_none_or(|d| d.status.is_finished())
    }

    /// The report for `env` (and the deployment that changed, if one did);
    /// `None` without an installation: nothing can talk to GitHub for it.
    pub fn of(env: &Environment, deployment: Option<&Deployment>) -> Option<Self> {
        Some(Self {
            environment_id: env.id,
            installation_id: env.installation_id?,
            repository: env.repository.clone(),
            pr_number: env.pr_number,
            namespace: env.namespace.clone(),
            status: env.status(),
            url: env.environment_url().map(str::to_owned),
            commit_sha: env.commit_sha.clone(),
            reason: env.status_reason().map(str::to_owned),
            error: env.error_message().map(str::to_owned),
            deployment: deployment.map(|d| DeploymentSnapshot {
                id: d.id,
                status: d.status(),
                commit_sha: d.commit_sha.clone(),
                duration_seconds: match (d.started_at(), d.completed_at()) {
                    (Some(start), Some(end)) => {
                        Some((end - start).num_milliseconds() as f64 / 1000.0)
                    }
                    _ => None,
                },
                error: d.error_message().map(str::to_owned),
            }),
            vouched_sha: env.trusted_sha.clone().filter(|_| env.is_fork),
            config_notes: env.config_notes.clone(),
            is_fork: env.is_fork,
        })
    }
}
