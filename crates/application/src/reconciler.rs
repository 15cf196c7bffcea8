//! The reconciler: workers that drive each environment to what it should be
//! through the legal transitions — pending → provisioning → ready,
//! ready → updating → ready on a new commit, destroying → destroyed.
//!
//! Level-triggered: a worker claims an environment whose work is due (with
//! a lease, so no two workers in any process touch it at once), looks at
//! what is wanted (the newest queued deployment, or a destroy), calls the
//! provisioner outside any transaction while renewing its lease, then
//! records the result against the environment as it is *then* — a webhook
//! may have queued a newer commit or asked for a destroy meanwhile.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ephemera_domain::{
    CommitSha, Deployment, DeploymentId, DeploymentStatus, Environment, EnvironmentId,
    EnvironmentStatus, NewDeployment, PreviewUrlTemplate,
};
use thiserror::Error;
use tokio::sync::{Notify, watch};

use crate::ports::{
    Clock, ProvisionFailure, ProvisionRequest, Provisioned, Provisioner, RepositoryError,
    WorkQueue, WorkTx,
};

/// How workers behave; every value has a setting (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Names this worker in leases and logs (host, pid, index).
    pub worker_id: String,
    /// How long a claim holds without renewal; a crashed worker's work is
    /// taken over this long after its last renewal.
    pub lease: Duration,
    /// Attempts at one piece of work before the environment is failed.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often an idle worker looks for work (webhooks also wake it).
    pub poll: Duration,
    pub preview_url: PreviewUrlTemplate,
}

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Nothing was due.
    Idle,
    /// The environment is ready at the deployment's commit.
    Ready(EnvironmentId),
    /// The environment is destroyed.
    Destroyed(EnvironmentId),
    /// The deployment was cancelled: a newer commit or a destroy came in
    /// while it ran. The environment stays due.
    Superseded(EnvironmentId),
    /// The attempt failed and is retried after `after`.
    Retrying {
        id: EnvironmentId,
        attempt: u32,
        after: Duration,
    },
    /// Out of attempts: the environment is failed.
    Failed(EnvironmentId),
    /// The environment needed nothing after all.
    NothingToDo(EnvironmentId),
    /// Another worker took the lease over; its result was not recorded.
    LeaseLost(EnvironmentId),
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RepositoryError> for ReconcileError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

#[derive(Debug, Clone)]
enum Plan {
    Deploy {
        request: ProvisionRequest,
        deployment: DeploymentId,
        attempt: u32,
    },
    Destroy {
        request: ProvisionRequest,
        attempt: u32,
    },
}

#[derive(Debug)]
enum Done {
    Provisioned(Provisioned),
    Destroyed(String),
}

#[derive(Clone)]
pub struct Reconciler {
    queue: Arc<dyn WorkQueue>,
    provisioner: Arc<dyn Provisioner>,
    clock: Arc<dyn Clock>,
    config: ReconcilerConfig,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("provisioner", &self.provisioner.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unexpected(err: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::Unexpected(anyhow::anyhow!("{err}"))
}

impl Reconciler {
    pub fn new(
        queue: Arc<dyn WorkQueue>,
        provisioner: Arc<dyn Provisioner>,
        clock: Arc<dyn Clock>,
        config: ReconcilerConfig,
    ) -> Self {
        Self {
            queue,
            provisioner,
            clock,
            config,
        }
    }

    /// Works until `stop` turns true: one environment at a time, waiting
    /// for `wake` or the poll interval when nothing is due.
    pub async fn run(&self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        tracing::info!(worker = %self.config.worker_id, provisioner = self.provisioner.name(), "worker started");
        while !*stop.borrow() {
            let pause = match self.run_once().await {
                Ok(RunOutcome::Idle) => Some(self.config.poll),
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "worker step failed");
                    Some(self.config.poll.max(Duration::from_secs(1)))
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = wake.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
        tracing::info!(worker = %self.config.worker_id, "worker stopped");
    }

    /// Claims the environment whose work is due longest and does one step
    /// of it. Tests call this to drain work deterministically.
    pub async fn run_once(&self) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let Some(id) = self
            .queue
            .claim(&self.config.worker_id, now, self.config.lease)
            .await?
        else {
            return Ok(RunOutcome::Idle);
        };
        let result = self.work(id).await;
        if let Err(err) = self.queue.release(id, &self.config.worker_id).await {
            tracing::warn!(environment = %id, error = %err, "could not release the lease; it expires by itself");
        }
        result
    }

    #[tracing::instrument(skip(self), fields(worker = %self.config.worker_id))]
    async fn work(&self, id: EnvironmentId) -> Result<RunOutcome, ReconcileError> {
        let Some(plan) = self.plan(id).await? else {
            return Ok(RunOutcome::NothingToDo(id));
        };
        let Some(result) = self.execute(id, &plan).await else {
            tracing::warn!(environment = %id, "lease lost while working; another worker took over");
            return Ok(RunOutcome::LeaseLost(id));
        };
        let outcome = self.record(id, plan, result).await?;
        tracing::info!(environment = %id, outcome = ?outcome, "work step done");
        Ok(outcome)
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

    /// Decides what to do and marks it started, in one transaction.
    async fn plan(&self, id: EnvironmentId) -> Result<Option<Plan>, ReconcileError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return Ok(None);
        };
        let attempt = env.work_attempts + 1;
        match env.status {
            EnvironmentStatus::Destroyed => {
                settle(tx.as_mut(), &mut env).await?;
                tx.commit().await?;
                return Ok(None);
            }
            EnvironmentStatus::Destroying => {
                let request = self.request(&env, &env.commit_sha.clone());
                tx.commit().await?;
                return Ok(Some(Plan::Destroy { request, attempt }));
            }
            _ => {}
        }

        let deployment = match tx.active_deployment(env.id).await? {
            Some(d) => d,
            None if matches!(
                env.status,
                EnvironmentStatus::Pending
                    | EnvironmentStatus::Provisioning
                    | EnvironmentStatus::Updating
            ) =>
            {
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
        let next = match env.status {
            EnvironmentStatus::Pending => EnvironmentStatus::Provisioning,
            EnvironmentStatus::Failed if env.last_deployed_at.is_none() => {
                EnvironmentStatus::Provisioning
            }
            EnvironmentStatus::Ready | EnvironmentStatus::Failed => EnvironmentStatus::Updating,
            same => same,
        };
        if next != env.status {
            env.transition_to(next, now).map_err(unexpected)?;
            tx.update_environment(&env).await?;
        }
        let mut deployment = deployment;
        if deployment.status == DeploymentStatus::Queued {
            deployment
                .transition_to(DeploymentStatus::InProgress, now)
                .map_err(unexpected)?;
        }
        deployment.append_log(&format!(
            "[{}] attempt {attempt} by {}: {} deploying {} to namespace {}",
            now.to_rfc3339(),
            self.config.worker_id,
            self.provisioner.name(),
            deployment.commit_sha.short(),
            env.namespace
        ));
        tx.update_deployment(&deployment).await?;
        tx.commit().await?;
        Ok(Some(Plan::Deploy {
            request: self.request(&env, &deployment.commit_sha),
            deployment: deployment.id,
            attempt,
        }))
    }

    /// Runs the provisioner while renewing the lease; `None` when the lease
    /// was lost (the provisioner's future is dropped, which kills a
    /// command provisioner's process).
    async fn execute(
        &self,
        id: EnvironmentId,
        plan: &Plan,
    ) -> Option<Result<Done, ProvisionFailure>> {
        let work = async {
            match plan {
                Plan::Deploy { request, .. } => self
                    .provisioner
                    .provision(request)
                    .await
                    .map(Done::Provisioned),
                Plan::Destroy { request, .. } => {
                    self.provisioner.destroy(request).await.map(Done::Destroyed)
                }
            }
        };
        let heartbeat = async {
            let every = self.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                let until = self.clock.now()
                    + chrono::Duration::from_std(self.config.lease)
                        .unwrap_or(chrono::Duration::MAX);
                match self.queue.renew(id, &self.config.worker_id, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => {
                        tracing::warn!(environment = %id, error = %err, "lease renewal failed; retrying")
                    }
                }
            }
        };
        tokio::select! {
            result = work => Some(result),
            () = heartbeat => None,
        }
    }

    /// Records the result against the environment as it is now.
    async fn record(
        &self,
        id: EnvironmentId,
        plan: Plan,
        result: Result<Done, ProvisionFailure>,
    ) -> Result<RunOutcome, ReconcileError> {
        let now = self.clock.now();
        let mut tx = self.queue.begin().await?;
        let Some(mut env) = tx.environment(id).await? else {
            return Ok(RunOutcome::NothingToDo(id));
        };
        let outcome = match plan {
            Plan::Deploy {
                deployment,
                attempt,
                ..
            } => {
                let result = match result {
                    Ok(Done::Provisioned(p)) => Ok(p),
                    Ok(Done::Destroyed(_)) => {
                        return Err(unexpected("a destroy answered a deploy"));
                    }
                    Err(f) => Err(f),
                };
                let mut dep = tx
                    .deployment(deployment)
                    .await?
                    .ok_or_else(|| unexpected(format!("deployment {deployment} vanished")))?;
                self.record_deploy(tx.as_mut(), &mut env, &mut dep, attempt, result, now)
                    .await?
            }
            Plan::Destroy { attempt, .. } => {
                self.record_destroy(tx.as_mut(), &mut env, attempt, result, now)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn record_deploy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        dep: &mut Deployment,
        attempt: u32,
        result: Result<Provisioned, ProvisionFailure>,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        let logs = match &result {
            Ok(p) => p.logs.clone(),
            Err(f) => f.logs.clone(),
        };
        let failure = result;
        if !logs.is_empty() {
            dep.append_log(&logs);
        }

        let destroying = matches!(
            env.status,
            EnvironmentStatus::Destroying | EnvironmentStatus::Destroyed
        );
        if destroying || tx.newer_queued(id, dep.id).await? {
            let why = if destroying {
                "the environment is being destroyed"
            } else {
                "superseded by a newer commit"
            };
            dep.append_log(&format!("[{}] cancelled: {why}", now.to_rfc3339()));
            dep.transition_to(DeploymentStatus::Cancelled, now)
                .map_err(unexpected)?;
            tx.update_deployment(dep).await?;
            env.work_due_at = Some(now);
            env.work_attempts = 0;
            tx.update_environment(env).await?;
            return Ok(RunOutcome::Superseded(id));
        }

        match failure {
            Ok(provisioned) => {
                dep.append_log(&format!(
                    "[{}] ready at {}",
                    now.to_rfc3339(),
                    provisioned.url
                ));
                dep.transition_to(DeploymentStatus::Success, now)
                    .map_err(unexpected)?;
                env.transition_to(EnvironmentStatus::Ready, now)
                    .map_err(unexpected)?;
                env.environment_url = Some(provisioned.url);
                env.last_deployed_at = Some(now);
                env.error_message = None;
                env.status_reason = None;
                settle_fields(env);
                tx.update_deployment(dep).await?;
                tx.update_environment(env).await?;
                Ok(RunOutcome::Ready(id))
            }
            Err(failure) => {
                if attempt < self.config.max_attempts {
                    let after = self.backoff(id, attempt);
                    dep.append_log(&format!(
                        "[{}] attempt {attempt} failed: {}; retrying in {}s",
                        now.to_rfc3339(),
                        failure.message,
                        after.as_secs_f64()
                    ));
                    env.error_message = Some(failure.message);
                    env.work_attempts = attempt;
                    env.work_due_at =
                        Some(now + chrono::Duration::from_std(after).unwrap_or_default());
                    env.updated_at = now;
                    tx.update_deployment(dep).await?;
                    tx.update_environment(env).await?;
                    Ok(RunOutcome::Retrying { id, attempt, after })
                } else {
                    dep.append_log(&format!(
                        "[{}] attempt {attempt} failed: {}; giving up",
                        now.to_rfc3339(),
                        failure.message
                    ));
                    dep.error_message = Some(failure.message.clone());
                    dep.transition_to(DeploymentStatus::Failed, now)
                        .map_err(unexpected)?;
                    env.transition_to(EnvironmentStatus::Failed, now)
                        .map_err(unexpected)?;
                    env.error_message = Some(failure.message);
                    env.status_reason = Some(format!("deployment failed after {attempt} attempts"));
                    settle_fields(env);
                    tx.update_deployment(dep).await?;
                    tx.update_environment(env).await?;
                    Ok(RunOutcome::Failed(id))
                }
            }
        }
    }

    async fn record_destroy(
        &self,
        tx: &mut dyn WorkTx,
        env: &mut Environment,
        attempt: u32,
        result: Result<Done, ProvisionFailure>,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ReconcileError> {
        let id = env.id;
        if env.status != EnvironmentStatus::Destroying {
            return Ok(RunOutcome::NothingToDo(id));
        }
        match result {
            Ok(done) => {
                if let Done::Destroyed(logs) = done {
                    tracing::info!(environment = %id, logs = %logs, "provisioner destroyed the environment");
                }
                env.transition_to(EnvironmentStatus::Destroyed, now)
                    .map_err(unexpected)?;
                env.environment_url = None;
                env.error_message = None;
                settle_fields(env);
                tx.cancel_queued_deployments(id, now).await?;
                tx.update_environment(env).await?;
                Ok(RunOutcome::Destroyed(id))
            }
            Err(failure) if attempt < self.config.max_attempts => {
                let after = self.backoff(id, attempt);
                env.error_message = Some(format!(
                    "destroy attempt {attempt} failed: {}",
                    failure.message
                ));
                env.work_attempts = attempt;
                env.work_due_at = Some(now + chrono::Duration::from_std(after).unwrap_or_default());
                env.updated_at = now;
                tx.update_environment(env).await?;
                Ok(RunOutcome::Retrying { id, attempt, after })
            }
            Err(failure) => {
                env.transition_to(EnvironmentStatus::Failed, now)
                    .map_err(unexpected)?;
                env.error_message = Some(failure.message);
                env.status_reason = Some(format!(
                    "destroy failed after {attempt} attempts; DELETE the environment to try again"
                ));
                settle_fields(env);
                tx.update_environment(env).await?;
                Ok(RunOutcome::Failed(id))
            }
        }
    }

    /// Exponential backoff with jitter: `retry_base · 2^(attempt-1)`, capped
    /// at `retry_max`, spread ±20% so that environments failing together
    /// do not retry in lockstep. The spread comes from the environment id
    /// and attempt, which keeps tests deterministic without a random source.
    fn backoff(&self, id: EnvironmentId, attempt: u32) -> Duration {
        let exp = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.config.retry_max);
        let mix = (id.get() as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(attempt).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        let spread = (mix >> 33) % 41; // 0..=40
        capped.mul_f64(0.8 + spread as f64 / 100.0)
    }
}

/// Nothing more to do for now.
fn settle_fields(env: &mut Environment) {
    env.work_due_at = None;
    env.work_attempts = 0;
}

async fn settle(tx: &mut dyn WorkTx, env: &mut Environment) -> Result<(), RepositoryError> {
    settle_fields(env);
    tx.update_environment(env).await
}
