//! Operator actions over the REST API: redeploy and destroy.

use std::sync::Arc;

use ephemera_domain::{
    Deployment, Environment, EnvironmentId, EnvironmentStatus, NewDeployment, PreviewReport,
};
use thiserror::Error;
use tokio::sync::Notify;

use crate::ports::{Clock, RepositoryError, WorkQueue};

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("no environment with id {0}")]
    NotFound(EnvironmentId),
    /// The lifecycle does not allow it now; the message says why.
    #[error("{0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<RepositoryError> for CommandError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

#[derive(Clone)]
pub struct EnvironmentCommands {
    queue: Arc<dyn WorkQueue>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for EnvironmentCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentCommands")
            .finish_non_exhaustive()
    }
}

impl EnvironmentCommands {
    pub fn new(queue: Arc<dyn WorkQueue>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        Self { queue, clock, wake }
    }

    /// Queues a deployment of the environment's current commit (older
    /// queued ones are cancelled); a worker picks it up.
    #[tracing::instrument(skip(self))]
    pub async fn redeploy(&self, id: EnvironmentId) -> Result<Deployment, CommandError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let mut env = tx
            .environment(id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        if matches!(
            env.status,
            EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
        ) {
            return Err(CommandError::Conflict(format!(
                "environment {id} is {}; reopen or push to the PR to bring it back",
                env.status
            )));
        }
        tx.cancel_queued_deployments(id, now).await?;
        let deployment = tx
            .queue_deployment(
                NewDeployment {
                    environment_id: id,
                    commit_sha: env.commit_sha.clone(),
                    commit_message: Some("redeploy requested through the API".into()),
                },
                now,
            )
            .await?;
        env.work_due_at = Some(now);
        env.work_attempts = 0;
        env.updated_at = now;
        tx.update_environment(&env).await?;
        if let Some(report) = PreviewReport::of(&env, Some(&deployment)) {
            tx.report(report).await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(deployment)
    }

    /// Asks for the environment to be destroyed. Idempotent while it is
    /// being destroyed; a conflict once it is gone.
    #[tracing::instrument(skip(self))]
    pub async fn destroy(&self, id: EnvironmentId) -> Result<Environment, CommandError> {
        self.destroy_because(id, "destroy requested through the API")
            .await
    }

    /// Queues a deployment of `sha`, a head GitHub has and ephemera missed
    /// (drift repair). Nothing happens when the environment already moved
    /// past `updated_at` or is being destroyed.
    #[tracing::instrument(skip(self))]
    pub async fn deploy_missed_head(
        &self,
        id: EnvironmentId,
        sha: ephemera_domain::CommitSha,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, CommandError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let mut env = tx
            .environment(id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        let stale = env.pr_updated_at.is_some_and(|seen| updated_at <= seen);
        if stale
            || env.commit_sha == sha
            || matches!(
                env.status,
                EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
            )
        {
            return Ok(false);
        }
        tx.cancel_queued_deployments(id, now).await?;
        env.commit_sha = sha.clone();
        env.pr_updated_at = Some(updated_at);
        let deployment = tx
            .queue_deployment(
                NewDeployment {
                    environment_id: id,
                    commit_sha: sha,
                    commit_message: Some("head found on GitHub (missed webhook)".into()),
                },
                now,
            )
            .await?;
        env.work_due_at = Some(now);
        env.work_attempts = 0;
        env.updated_at = now;
        tx.update_environment(&env).await?;
        if let Some(report) = PreviewReport::of(&env, Some(&deployment)) {
            tx.report(report).await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(true)
    }

    /// [`Self::destroy`] with the reason recorded on the environment.
    pub async fn destroy_because(
        &self,
        id: EnvironmentId,
        reason: &str,
    ) -> Result<Environment, CommandError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let mut env = tx
            .environment(id)
            .await?
            .ok_or(CommandError::NotFound(id))?;
        match env.status {
            EnvironmentStatus::Destroying => return Ok(env),
            EnvironmentStatus::Destroyed => {
                return Err(CommandError::Conflict(format!(
                    "environment {id} is already destroyed"
                )));
            }
            _ => {}
        }
        env.transition_to(EnvironmentStatus::Destroying, now)
            .map_err(|e| CommandError::Conflict(e.to_string()))?;
        env.status_reason = Some(reason.to_owned());
        env.work_due_at = Some(now);
        env.work_attempts = 0;
        tx.cancel_queued_deployments(id, now).await?;
        tx.update_environment(&env).await?;
        if let Some(report) = PreviewReport::of(&env, None) {
            tx.report(report).await?;
        }
        tx.commit().await?;
        self.wake.notify_waiters();
        Ok(env)
    }

    /// The TTL sweep: destroys live environments whose PR saw no activity
    /// for `ttl`; returns how many it asked to destroy.
    #[tracing::instrument(skip(self))]
    pub async fn destroy_idle(&self, ttl: std::time::Duration) -> Result<usize, CommandError> {
        let now = self.clock.now();
        let before = now - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let idle = self.queue.idle_since(before, 500).await?;
        let hours = ttl.as_secs_f64() / 3600.0;
        let mut count = 0;
        for id in idle {
            let mut tx = self.queue.begin().await?;
            let Some(mut env) = tx.environment(id).await? else {
                continue;
            };
            // Re-checked under the lock: a webhook may have just touched it.
            let last = env.pr_updated_at.unwrap_or(env.created_at);
            if last >= before
                || env
                    .transition_to(EnvironmentStatus::Destroying, now)
                    .is_err()
            {
                continue;
            }
            env.status_reason = Some(format!(
                "idle: no PR activity for more than {hours}h (EPHEMERA_ENVIRONMENT_TTL)"
            ));
            env.work_due_at = Some(now);
            env.work_attempts = 0;
            tx.cancel_queued_deployments(id, now).await?;
            tx.update_environment(&env).await?;
            if let Some(report) = PreviewReport::of(&env, None) {
                tx.report(report).await?;
            }
            tx.commit().await?;
            count += 1;
        }
        if count > 0 {
            tracing::info!(count, "idle environments sent to destroy");
            self.wake.notify_waiters();
        }
        Ok(count)
    }
}
