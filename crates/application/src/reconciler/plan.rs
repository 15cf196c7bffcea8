//! Planning a step: under the environment's row lock, decide what is due
//! (deploy its newest wanted commit, or destroy it) and mark it started.
//! Each plan names the provisioner's answer it is recorded with.

use ephemera_domain::{
    CommitSha, DeploymentId, DueWork, Environment, EnvironmentId, NewDeployment,
};

use super::{ReconcileError, Reconciler, report};
use crate::ports::{
    ProvisionFailure, ProvisionRequest, Provisioned, RepositoryError, Teardown, WorkTx,
};

/// What a worker is about to do.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Deploy(DeployPlan),
    Destroy(DestroyPlan),
}

/// Roll deployment `deployment` out; answered by a [`DeployResult`].
#[derive(Debug, Clone)]
pub(super) struct DeployPlan {
    pub(super) request: ProvisionRequest,
    pub(super) deployment: DeploymentId,
    pub(super) attempt: u32,
}

/// Tear the environment down; answered by a [`DestroyResult`].
#[derive(Debug, Clone)]
pub(super) struct DestroyPlan {
    pub(super) request: ProvisionRequest,
    pub(super) attempt: u32,
}

/// The provisioner's answer to a [`DeployPlan`].
pub(super) type DeployResult = Result<Provisioned, ProvisionFailure>;

/// The provisioner's answer to a [`DestroyPlan`].
pub(super) type DestroyResult = Result<Teardown, ProvisionFailure>;

impl Reconciler {
    /// Decides what to do and marks it started, in one transaction.
    pub(super) async fn plan(&self, id: EnvironmentId) -> Result<Option<Plan>, ReconcileError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return Ok(None);
        };
        if !tx.holds_lease(id, &self.config.worker_id).await? {
            return Ok(None);
        }
        let attempt = env.next_attempt();
        match env.due_work() {
            DueWork::Settle => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return Ok(None);
            }
            DueWork::Destroy => {
                let request = self.request(&env, &env.commit_sha);
                tx.commit().await?;
                return Ok(Some(Plan::Destroy(DestroyPlan { request, attempt })));
            }
            DueWork::Deploy => {}
        }

        let mut deployment = match tx.active_deployment(env.id).await? {
            Some(d) => d,
            None if env.awaits_deployment() => {
                let new = NewDeployment {
                    environment_id: env.id,
                    commit_sha: env.commit_sha.clone(),
                    commit_message: None,
                };
                tx.queue_deployment(new, now).await?
            }
            None => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return Ok(None);
            }
        };
        let before = env.status();
        env.begin_deploy(now)?;
        if env.status() != before {
            tx.update_environment(&env).await?;
        }
        // Only the newest wanted deployment runs; any older one (queued, or
        // left in progress by a failed attempt) is superseded.
        tx.cancel_active_deployments(env.id, Some(deployment.id), now)
            .await?;
        deployment.start(now)?;
        deployment.append_log(&format!(
            "[{}] attempt {attempt} by {}: {} deploying {} to namespace {}",
            now.to_rfc3339(),
            self.config.worker_id,
            self.provisioner.name(),
            deployment.commit_sha.short(),
            env.namespace
        ));
        tx.update_deployment(&deployment).await?;
        report(tx.as_mut(), &env, Some(&deployment), now).await?;
        tx.commit().await?;
        Ok(Some(Plan::Deploy(DeployPlan {
            request: self.request(&env, &deployment.commit_sha),
            deployment: deployment.id,
            attempt,
        })))
    }

    fn request(&self, env: &Environment, commit: &CommitSha) -> ProvisionRequest {
        ProvisionRequest {
            environment_id: env.id,
            namespace: env.namespace.clone(),
            repository: env.repository.clone(),
            pr_number: env.pr_number,
            commit_sha: commit.clone(),
            branch: env.branch_name.clone(),
            installation_id: env.installation_id,
            preview_url: self.config.preview_url.render(
                &env.namespace,
                &env.repository,
                env.pr_number,
            ),
        }
    }
}

/// Nothing more to do for now.
async fn settle(tx: &mut dyn WorkTx, env: &mut Environment) -> Result<(), RepositoryError> {
    env.settle();
    tx.update_environment(env).await
}
